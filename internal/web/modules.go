package web

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/omserver/omserver-go/internal/apperr"
	"github.com/omserver/omserver-go/internal/legacyform"
	"github.com/omserver/omserver-go/internal/store"
)

// Modules: the catalog operators pick from, and the admin's add/edit forms.

// moduleView is a module as the API and pages show it: the caption both as
// stored (for editing) and as plain text (for display); never the stored
// form HTML.
type moduleView struct {
	ID          int64              `json:"id"`
	Name        string             `json:"name"`
	Caption     string             `json:"caption"`
	CaptionText string             `json:"caption_text"`
	Params      []legacyform.Param `json:"params"`
}

func toModuleView(m store.Module) moduleView {
	ps := m.Params
	if ps == nil {
		ps = []legacyform.Param{}
	}
	return moduleView{ID: m.ID, Name: m.Name, Caption: m.Caption, CaptionText: captionText(m.Caption), Params: ps}
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

func (s *Server) apiModules(w http.ResponseWriter, r *http.Request) error {
	out, err := s.moduleViews(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
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
	ID      int64              `json:"id"`
	Name    string             `json:"name"`
	Caption string             `json:"caption"`
	Params  []legacyform.Param `json:"params"`
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
	out, err := s.moduleViews(r)
	if err != nil {
		return err
	}
	mp := modulesPage{CatalogError: "this master does not serve its module catalog"}
	for _, m := range out {
		mp.Rows = append(mp.Rows, moduleRow{moduleView: m, State: "unknown"})
	}
	s.render(w, r, http.StatusOK, "modules", "title.modules", mp)
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
}

// blankRows is how many empty parameter rows the form offers.
const blankRows = 3

func rowsFromParams(ps []legacyform.Param) []paramRow {
	rows := make([]paramRow, 0, len(ps)+blankRows)
	for _, p := range ps {
		row := paramRow{Name: p.Name, Label: p.Label, Type: p.Type, Default: p.Default}
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
		rows = append(rows, paramRow{Type: legacyform.TypeText})
	}
	return rows
}

// paramsFromForm turns the structured rows back into a schema; the store
// validates the schema as a whole.
func paramsFromForm(r *http.Request) ([]legacyform.Param, []paramRow, error) {
	n, err := strconv.Atoi(r.PostForm.Get("rows"))
	if err != nil || n < 0 || n > legacyform.MaxParams+blankRows {
		return nil, nil, invalidf("the form's row count is missing or out of range")
	}
	var out []legacyform.Param
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
func paramFromRow(n int, row paramRow) (legacyform.Param, error) {
	p := legacyform.Param{Name: row.Name, Label: row.Label, Type: row.Type, Default: row.Default}
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
	case p.Type == legacyform.TypeText:
		p.MaxLength = legacyform.DefaultMaxLength
	case p.Type == legacyform.TypeNumber:
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
	if p.Type != legacyform.TypeSelect {
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
		p.Options = append(p.Options, legacyform.Option{Value: v, Label: l})
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
	s.render(w, r, http.StatusOK, "module_edit", "title.module_edit", moduleForm{ID: m.ID, Name: m.Name, Caption: m.Caption, Rows: rowsFromParams(m.Params)})
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
	params, rows, err := paramsFromForm(r)
	if err != nil {
		return s.moduleFormAgain(w, r, form, rows, err)
	}
	b := moduleBody{ID: form.ID, Name: form.Name, Caption: form.Caption, Params: params}
	done := "saved"
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
	if rows == nil {
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
