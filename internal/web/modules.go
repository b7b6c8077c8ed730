package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/omserver/omserver-go/internal/apperr"
	"github.com/omserver/omserver-go/internal/caption"
	"github.com/omserver/omserver-go/internal/legacyform"
	"github.com/omserver/omserver-go/internal/param"
	"github.com/omserver/omserver-go/internal/runs"
	"github.com/omserver/omserver-go/internal/store"
)

// Modules: the catalog operators pick from, and the admin's add/edit forms.

// moduleView is a module as the API and pages show it: the caption as
// stored (for editing), as plain text, and as sanitised HTML (for display);
// never the stored form HTML.
type moduleView struct {
	ID          int64         `json:"id"`
	Name        string        `json:"name"`
	Caption     string        `json:"caption"`
	CaptionText string        `json:"caption_text"`
	CaptionHTML template.HTML `json:"caption_html"` // only ever from caption.HTML
	Params      []param.Param `json:"params"`
}

func toModuleView(m store.Module) moduleView {
	ps := m.Params
	if ps == nil {
		ps = []param.Param{}
	}
	return moduleView{ID: m.ID, Name: m.Name, Caption: m.Caption, CaptionText: captionText(m.Caption),
		CaptionHTML: caption.HTML(m.Caption), Params: ps}
}

func (s *Server) moduleViews(r *http.Request) ([]moduleView, error) {
	list, err := s.st.ListModules(r.Context())
	if err != nil {
		return nil, err
	}
	out := make([]moduleView, len(list))
	for i, m := range list {
		out[i] = toModuleView(m)
	}
	return out, nil
}

// runnableView is a module the dashboard offers: in the web's table and on
// the master, described by the master (name, caption, parameter schema).
type runnableView struct {
	moduleView
	Risky bool `json:"risky,omitempty"`
}

// apiModules lists the web's module table; with ?runnable=1, only the
// modules the master has, as the master declares them (what the dashboard
// offers). When the master's catalog cannot be read, ?runnable=1 lists the
// table as it is (the master still refuses what it lacks) and says so in
// the X-Omserver-Catalog header.
func (s *Server) apiModules(w http.ResponseWriter, r *http.Request) error {
	out, err := s.moduleViews(r)
	if err != nil {
		return err
	}
	if r.URL.Query().Get("runnable") == "" {
		writeJSON(w, http.StatusOK, out)
		return nil
	}
	cat, _, err := s.runs.Catalog(r.Context())
	if err != nil {
		s.log.Warn().Err(err).Msg("module catalog unavailable; offering the web's module table")
		w.Header().Set("X-Omserver-Catalog", "unavailable")
		list := make([]runnableView, len(out))
		for i, m := range out {
			list[i] = runnableView{moduleView: m}
		}
		writeJSON(w, http.StatusOK, list)
		return nil
	}
	list := []runnableView{}
	for _, m := range out {
		mm, ok := cat[m.ID]
		if !ok {
			continue
		}
		list = append(list, runnableView{moduleView: masterView(mm), Risky: mm.Risky})
	}
	writeJSON(w, http.StatusOK, list)
	return nil
}

// masterView shows a master's module as the API shows the web's.
func masterView(mm runs.MasterModule) moduleView {
	return toModuleView(store.Module{ID: mm.ID, Name: mm.Name, Caption: mm.Caption, Params: mm.Params})
}

// moduleOf reads the module the URL's {id} names.
func (s *Server) moduleOf(r *http.Request) (store.Module, error) {
	id, err := idParam(r, "id", "module")
	if err != nil {
		return store.Module{}, err
	}
	return s.st.GetModule(r.Context(), id)
}

func (s *Server) apiModule(w http.ResponseWriter, r *http.Request) error {
	m, err := s.moduleOf(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toModuleView(m))
	return nil
}

type moduleBody struct {
	ID      int64         `json:"id"`
	Name    string        `json:"name"`
	Caption string        `json:"caption"`
	Params  []param.Param `json:"params"`
}

// createModule adds a module (id 0: the next free one) and returns it as
// stored.
func (s *Server) createModule(r *http.Request, b moduleBody) (store.Module, error) {
	if b.ID < 0 {
		return store.Module{}, invalidf("module id must be positive, or 0 for the next free id")
	}
	id, err := s.st.CreateModule(r.Context(), store.Module{ID: b.ID, Name: b.Name, Caption: b.Caption, Params: b.Params})
	if err != nil {
		return store.Module{}, err
	}
	s.audit(r, authOf(r).Name, "module.create", fmt.Sprintf("%d %q", id, b.Name))
	return s.st.GetModule(r.Context(), id)
}

// saveModule updates a module. Params are authoritative when given; a
// module updated with no parameters keeps none (its legacy form is replaced
// by an empty one).
func (s *Server) saveModule(r *http.Request, id int64, b moduleBody) error {
	m := store.Module{ID: id, Name: b.Name, Caption: b.Caption, Params: b.Params}
	if err := s.st.UpdateModule(r.Context(), m); err != nil {
		return err
	}
	s.audit(r, authOf(r).Name, "module.update", fmt.Sprintf("%d %q", id, b.Name))
	return nil
}

func (s *Server) apiModuleCreate(w http.ResponseWriter, r *http.Request) error {
	var b moduleBody
	if err := s.decodeJSON(r, &b); err != nil {
		return err
	}
	m, err := s.createModule(r, b)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, toModuleView(m))
	return nil
}

func (s *Server) apiModuleUpdate(w http.ResponseWriter, r *http.Request) error {
	id, err := idParam(r, "id", "module")
	if err != nil {
		return err
	}
	var b moduleBody
	if err := s.decodeJSON(r, &b); err != nil {
		return err
	}
	if b.ID != 0 && b.ID != id {
		return invalidf("body id %d does not match the URL's module %d", b.ID, id)
	}
	if err := s.saveModule(r, id, b); err != nil {
		return err
	}
	m, err := s.st.GetModule(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toModuleView(m))
	return nil
}

func (s *Server) deleteModule(r *http.Request) error {
	id, err := idParam(r, "id", "module")
	if err != nil {
		return err
	}
	if err := s.st.DeleteModule(r.Context(), id); err != nil {
		return err
	}
	s.audit(r, authOf(r).Name, "module.delete", strconv.FormatInt(id, 10))
	return nil
}

func (s *Server) apiModuleDelete(w http.ResponseWriter, r *http.Request) error {
	if err := s.deleteModule(r); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// --- pages ---

// moduleRow is one module of the modules page, with how it stands against
// the master's catalog.
type moduleRow struct {
	moduleView
	Risky bool
	// State: "same" (installed on the master as here), "different" (the
	// master's name, caption or parameters differ), "missing" (not on the
	// master: runs of it fail), "master_only" (on the master, not here),
	// "unknown" (the master's catalog could not be read).
	State string
	Diffs []string
}

type modulesPage struct {
	Rows         []moduleRow
	CatalogError string
	MasterCount  int
}

func (s *Server) pageModules(w http.ResponseWriter, r *http.Request) error {
	mp, err := s.modulesData(r)
	if err != nil {
		return err
	}
	s.render(w, r, http.StatusOK, "modules", "title.modules", mp)
	return nil
}

// modulesData is the web's module table against the master's catalog.
func (s *Server) modulesData(r *http.Request) (modulesPage, error) {
	out, err := s.moduleViews(r)
	if err != nil {
		return modulesPage{}, err
	}
	var mp modulesPage
	cat, order, cerr := s.runs.Catalog(r.Context())
	if cerr != nil {
		mp.CatalogError = cerr.Error()
		for _, m := range out {
			mp.Rows = append(mp.Rows, moduleRow{moduleView: m, State: "unknown"})
		}
		return mp, nil
	}
	mp.MasterCount = len(cat)
	here := make(map[int64]bool, len(out))
	for _, m := range out {
		here[m.ID] = true
		mm, ok := cat[m.ID]
		if !ok {
			mp.Rows = append(mp.Rows, moduleRow{moduleView: m, State: "missing"})
			continue
		}
		row := moduleRow{moduleView: m, Risky: mm.Risky, State: "same", Diffs: moduleDiffs(m, mm)}
		if len(row.Diffs) > 0 {
			row.State = "different"
		}
		mp.Rows = append(mp.Rows, row)
	}
	for _, id := range order {
		if !here[id] {
			mm := cat[id]
			mp.Rows = append(mp.Rows, moduleRow{moduleView: masterView(mm), Risky: mm.Risky, State: "master_only"})
		}
	}
	sort.SliceStable(mp.Rows, func(i, j int) bool { return mp.Rows[i].ID < mp.Rows[j].ID })
	return mp, nil
}

// moduleDiffs says how the web's module differs from the master's: its
// name, caption, and each parameter (missing on either side, or declared
// differently).
func moduleDiffs(m moduleView, mm runs.MasterModule) []string {
	var d []string
	if m.Name != mm.Name {
		d = append(d, fmt.Sprintf("name: %q here, %q on the master", m.Name, mm.Name))
	}
	if captionGist(m.Caption) != captionGist(mm.Caption) {
		d = append(d, "caption differs")
	}
	ours := map[string]param.Param{}
	for _, p := range m.Params {
		ours[p.Name] = p
	}
	theirs := map[string]bool{}
	for _, p := range mm.Params {
		theirs[p.Name] = true
		op, ok := ours[p.Name]
		switch {
		case !ok:
			d = append(d, fmt.Sprintf("parameter %s: only on the master", p.Name))
		case !sameParam(op, p):
			d = append(d, fmt.Sprintf("parameter %s: %s here, %s on the master", p.Name, paramSummary(op), paramSummary(p)))
		}
	}
	for _, p := range m.Params {
		if !theirs[p.Name] {
			d = append(d, fmt.Sprintf("parameter %s: only here (the master refuses it)", p.Name))
		}
	}
	return d
}

// originalCaptionHeading is the heading every original OMServer caption
// starts with ("[<b>功能说明</b>]<br>"); a YAML module says the same
// without it.
const originalCaptionHeading = "[功能说明]"

// captionGist is what a caption says to the reader: its text without
// markup, the original's heading or runs of white space, so a module
// imported from the original OMServer and the same module declared in
// YAML compare equal.
func captionGist(s string) string {
	t := strings.Join(strings.Fields(captionText(s)), " ")
	return strings.TrimSpace(strings.TrimPrefix(t, originalCaptionHeading))
}

// sameParam compares two declarations as their JSON (what the API sends),
// as the reader and the validator see them (declGist).
func sameParam(a, b param.Param) bool {
	ja, err1 := json.Marshal(declGist(a))
	jb, err2 := json.Marshal(declGist(b))
	return err1 == nil && err2 == nil && string(ja) == string(jb)
}

// declGist returns p with its label and its options' labels trimmed of
// white space and a trailing colon (the original's forms end a label with
// one, "返回信息行数：", that a YAML label leaves to the page), and without
// a number's digit count (the original's maxlength="3"), which its bounds
// already decide.
func declGist(p param.Param) param.Param {
	if p.Type == param.Number {
		p.MaxLength = 0
	}
	trim := func(s string) string {
		return strings.TrimSpace(strings.TrimRight(strings.TrimSpace(s), ":："))
	}
	p.Label = trim(p.Label)
	opts := make([]param.Option, len(p.Options))
	for i, o := range p.Options {
		o.Label = trim(o.Label)
		opts[i] = o
	}
	p.Options = opts
	return p
}

// paramSummary is a short description of a declaration for a drift note.
func paramSummary(p param.Param) string {
	s := string(p.Type)
	if p.Default != "" {
		s += " default " + strconv.Quote(p.Default)
	}
	if len(p.Options) > 0 {
		vals := make([]string, len(p.Options))
		for i, o := range p.Options {
			vals[i] = o.Value
		}
		s += " of " + strings.Join(vals, "/")
	}
	if p.Min != nil || p.Max != nil {
		lo, hi := "", ""
		if p.Min != nil {
			lo = strconv.FormatInt(*p.Min, 10)
		}
		if p.Max != nil {
			hi = strconv.FormatInt(*p.Max, 10)
		}
		s += " in [" + lo + ", " + hi + "]"
	}
	return s
}

// pageModuleImport copies a module from the master's catalog into the
// web's table (adding it, or replacing name, caption and parameters), so
// the dashboard and the legacy module_list/module_info answer as the
// master runs it.
func (s *Server) pageModuleImport(w http.ResponseWriter, r *http.Request) error {
	id, err := idParam(r, "id", "module")
	if err != nil {
		return err
	}
	s.runs.ForgetCatalog()
	cat, _, err := s.runs.Catalog(r.Context())
	if err != nil {
		return apperr.Wrap(apperr.Unavailable, err)
	}
	mm, ok := cat[id]
	if !ok {
		return notFoundf("module %d is not on the master", id)
	}
	m := store.Module{ID: id, Name: mm.Name, Caption: mm.Caption, Params: mm.Params}
	_, err = s.st.GetModule(r.Context(), id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		_, err = s.st.CreateModule(r.Context(), m)
	case err == nil || errors.Is(err, store.ErrInvalid):
		// An unreadable legacy form is replaced as well.
		err = s.st.UpdateModule(r.Context(), m)
	}
	if err != nil {
		return err
	}
	s.audit(r, authOf(r).Name, "module.import", fmt.Sprintf("%d %q from the master (version %.12s)", id, mm.Name, mm.Version))
	http.Redirect(w, r, "/modules?ok=imported_module", http.StatusSeeOther)
	return nil
}

// paramRow is one structured row of the module form.
type paramRow struct {
	Name, Label, Type, MaxLength, Min, Max, Default, Options string
}

type moduleForm struct {
	IsNew   bool
	ID      int64
	Name    string
	Caption string
	Rows    []paramRow
	// Locked: the module's parameters use what the rows cannot express
	// (formEditable); they are listed, not offered for editing, and a save
	// keeps them as they are.
	Locked []string
}

// formEditable reports whether the form's rows can show ps without losing
// anything: legacy names, text/number/select kinds, and none of what only a
// module file declares (boolean, fixed, multiline, pattern, required, a
// select without a default).
func formEditable(ps []param.Param) bool {
	for _, p := range ps {
		switch {
		case !legacyform.ValidName(p.Name),
			p.Type != param.Text && p.Type != param.Number && p.Type != param.Choice,
			p.Multiline, p.Pattern != "", p.Required, p.Value != "",
			p.Type == param.Choice && p.Default == "":
			return false
		}
	}
	return true
}

// lockedRows describes parameters the form does not edit.
func lockedRows(ps []param.Param) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.Name + ": " + paramSummary(p)
		if p.Required {
			out[i] += ", required"
		}
		if p.Pattern != "" {
			out[i] += ", pattern " + strconv.Quote(p.Pattern)
		}
		if p.Multiline {
			out[i] += ", multi-line"
		}
		if p.Value != "" {
			out[i] += ", value " + strconv.Quote(p.Value)
		}
	}
	return out
}

// blankRows is how many empty parameter rows the form offers.
const blankRows = 3

func rowsFromParams(ps []param.Param) []paramRow {
	rows := make([]paramRow, 0, len(ps)+blankRows)
	for _, p := range ps {
		row := paramRow{Name: p.Name, Label: p.Label, Type: string(p.Type), Default: p.Default}
		if p.MaxLength > 0 {
			row.MaxLength = strconv.Itoa(p.MaxLength)
		}
		if p.Min != nil {
			row.Min = strconv.FormatInt(*p.Min, 10)
		}
		if p.Max != nil {
			row.Max = strconv.FormatInt(*p.Max, 10)
		}
		var opts []string
		for _, o := range p.Options {
			opts = append(opts, o.Value+"="+o.Label)
		}
		row.Options = strings.Join(opts, "\n")
		rows = append(rows, row)
	}
	for range blankRows {
		rows = append(rows, paramRow{Type: string(param.Text)})
	}
	return rows
}

// paramsFromForm turns the structured rows back into a schema; the store
// validates the schema as a whole.
func paramsFromForm(r *http.Request) ([]param.Param, []paramRow, error) {
	n, err := strconv.Atoi(r.PostForm.Get("rows"))
	if err != nil || n < 0 || n > param.MaxParams+blankRows {
		return nil, nil, invalidf("the form's row count is missing or out of range")
	}
	var out []param.Param
	var rows []paramRow
	for i := range n {
		get := func(k string) string { return strings.TrimSpace(r.PostForm.Get(fmt.Sprintf("p%d_%s", i, k))) }
		row := paramRow{Name: get("name"), Label: get("label"), Type: get("type"), MaxLength: get("maxlength"),
			Min: get("min"), Max: get("max"), Default: get("default"), Options: get("options")}
		rows = append(rows, row)
		if row.Name == "" {
			continue
		}
		p, err := paramFromRow(i+1, row)
		if err != nil {
			return nil, rows, err
		}
		out = append(out, p)
	}
	if err := legacyform.Validate(out); err != nil {
		return nil, rows, invalidf("%s", strings.TrimPrefix(err.Error(), "legacyform: "))
	}
	return out, rows, nil
}

// paramFromRow reads one form row (n counts from 1, for messages).
func paramFromRow(n int, row paramRow) (param.Param, error) {
	p := param.Param{Name: row.Name, Label: row.Label, Type: param.Type(row.Type), Default: row.Default}
	if !legacyform.ValidName(p.Name) {
		return p, invalidf("row %d: name %q must be sys_param_N", n, clipRunes(p.Name, 40))
	}
	switch {
	case row.MaxLength != "":
		v, err := strconv.Atoi(row.MaxLength)
		if err != nil {
			return p, invalidf("row %d (%s): max length %q is not a number", n, p.Name, row.MaxLength)
		}
		p.MaxLength = v
	case p.Type == param.Text:
		p.MaxLength = legacyform.DefaultMaxLength
	case p.Type == param.Number:
		p.MaxLength = 20
	}
	for _, mm := range []struct {
		raw string
		dst **int64
		nm  string
	}{{row.Min, &p.Min, "min"}, {row.Max, &p.Max, "max"}} {
		if mm.raw == "" {
			continue
		}
		v, err := strconv.ParseInt(mm.raw, 10, 64)
		if err != nil {
			return p, invalidf("row %d (%s): %s %q is not an integer", n, p.Name, mm.nm, mm.raw)
		}
		*mm.dst = &v
	}
	if p.Type != param.Choice {
		if row.Options != "" {
			return p, invalidf("row %d (%s): only a select parameter has options", n, p.Name)
		}
		return p, nil
	}
	for ln, line := range strings.Split(row.Options, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		v, l, found := strings.Cut(line, "=")
		if !found {
			l = v
		}
		v, l = strings.TrimSpace(v), strings.TrimSpace(l)
		if v == "" {
			return p, invalidf("row %d (%s): option line %d has an empty value", n, p.Name, ln+1)
		}
		p.Options = append(p.Options, param.Option{Value: v, Label: l})
	}
	if p.Default == "" && len(p.Options) > 0 {
		p.Default = p.Options[0].Value
	}
	return p, nil
}

func (s *Server) pageModuleNew(w http.ResponseWriter, r *http.Request) error {
	s.render(w, r, http.StatusOK, "module_edit", "title.module_new", moduleForm{IsNew: true, Rows: rowsFromParams(nil)})
	return nil
}

func (s *Server) pageModuleEdit(w http.ResponseWriter, r *http.Request) error {
	m, err := s.moduleOf(r)
	if err != nil {
		return err
	}
	form := moduleForm{ID: m.ID, Name: m.Name, Caption: m.Caption}
	if formEditable(m.Params) {
		form.Rows = rowsFromParams(m.Params)
	} else {
		form.Locked = lockedRows(m.Params)
	}
	s.render(w, r, http.StatusOK, "module_edit", "title.module_edit", form)
	return nil
}

// pageModuleSave creates (/modules/new) or updates (/modules/{id}/edit). A
// refused form is shown again with the admin's input and the reason.
func (s *Server) pageModuleSave(w http.ResponseWriter, r *http.Request) error {
	if err := s.parseForm(r); err != nil {
		return err
	}
	isNew := urlParam(r, "id") == ""
	form := moduleForm{IsNew: isNew, Name: strings.TrimSpace(r.PostForm.Get("name")), Caption: r.PostForm.Get("caption")}
	if isNew {
		if raw := strings.TrimSpace(r.PostForm.Get("id")); raw != "" {
			id, err := strconv.ParseInt(raw, 10, 64)
			if err != nil || id <= 0 {
				return s.moduleFormAgain(w, r, form, nil, invalidf("ID must be a positive integer or empty"))
			}
			form.ID = id
		}
	} else {
		id, err := idParam(r, "id", "module")
		if err != nil {
			return err
		}
		form.ID = id
	}
	var params []param.Param
	var rows []paramRow
	if !isNew {
		// Parameters the form cannot show are kept as stored, whatever
		// the request carries.
		m, err := s.st.GetModule(r.Context(), form.ID)
		if err != nil {
			return err
		}
		if !formEditable(m.Params) {
			params, form.Locked = m.Params, lockedRows(m.Params)
		}
	}
	if form.Locked == nil {
		var err error
		if params, rows, err = paramsFromForm(r); err != nil {
			return s.moduleFormAgain(w, r, form, rows, err)
		}
	}
	b := moduleBody{ID: form.ID, Name: form.Name, Caption: form.Caption, Params: params}
	done := "saved"
	var err error
	if isNew {
		_, err = s.createModule(r, b)
		done = "created"
	} else {
		err = s.saveModule(r, form.ID, b)
	}
	if err != nil {
		return s.moduleFormAgain(w, r, form, rows, err)
	}
	http.Redirect(w, r, "/modules?ok="+done, http.StatusSeeOther)
	return nil
}

// moduleFormAgain shows a refused module form again with the admin's input
// and why it was refused; an unexpected failure is returned as it is.
func (s *Server) moduleFormAgain(w http.ResponseWriter, r *http.Request, form moduleForm, rows []paramRow, err error) error {
	if apperr.KindOf(err) == apperr.Internal {
		return err
	}
	if rows == nil && form.Locked == nil {
		rows = rowsFromParams(nil)
	}
	form.Rows = rows
	s.renderWith(w, r, statusOf(apperr.KindOf(err)), "module_edit", "title.module_edit", form, "", s.tr(r, "form.not_saved")+" "+err.Error())
	return nil
}

func (s *Server) pageModuleDelete(w http.ResponseWriter, r *http.Request) error {
	if err := s.deleteModule(r); err != nil {
		return err
	}
	http.Redirect(w, r, "/modules?ok=deleted", http.StatusSeeOther)
	return nil
}
