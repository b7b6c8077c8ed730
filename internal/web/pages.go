package web

import (
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/omserver/omserver-go/internal/legacyform"
	"github.com/omserver/omserver-go/internal/param"
	"github.com/omserver/omserver-go/internal/store"
	"github.com/omserver/omserver-go/internal/task"
)

// parseForm reads a form body, answering 413/400 itself on failure.
func (s *Server) parseForm(w http.ResponseWriter, r *http.Request) bool {
	if err := r.ParseForm(); err != nil {
		s.formError(w, r, err)
		return false
	}
	return true
}

func (s *Server) formError(w http.ResponseWriter, r *http.Request, err error) {
	if isTooLarge(err) {
		s.renderError(w, r, http.StatusRequestEntityTooLarge, s.tooLargeMessage())
		return
	}
	s.renderError(w, r, http.StatusBadRequest, "The form could not be read: "+err.Error())
}

// pageFail shows a refused change: validation and store errors as 4xx with
// their message, anything else as 500.
func (s *Server) pageFail(w http.ResponseWriter, r *http.Request, what string, err error) {
	var br *badRequest
	if errors.As(err, &br) {
		s.renderError(w, r, http.StatusBadRequest, what+": "+br.msg)
		return
	}
	code, msg := storeStatus(err)
	if code == http.StatusInternalServerError {
		s.serverError(w, r, what, err)
		return
	}
	s.renderError(w, r, code, what+": "+msg)
}

func (s *Server) pageDashboard(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, http.StatusOK, "dashboard", "Dashboard", nil)
}

// --- runs ---

type pager struct {
	Page, Prev, Next int
}

func newPager(page, per, total int) pager {
	p := pager{Page: page}
	if page > 1 {
		p.Prev = page - 1
	}
	if page*per < total {
		p.Next = page + 1
	}
	return p
}

func (s *Server) pageRuns(w http.ResponseWriter, r *http.Request) {
	page, per, err := pageParam(r, 50)
	if err != nil {
		s.renderError(w, r, http.StatusBadRequest, err.Error())
		return
	}
	runs, total, err := s.st.ListRuns(r.Context(), store.RunFilter{Limit: per, Offset: (page - 1) * per})
	if err != nil {
		s.pageFail(w, r, "list runs", err)
		return
	}
	s.render(w, r, http.StatusOK, "runs", "Runs", struct {
		Runs []store.Run
		pager
	}{runs, newPager(page, per, total)})
}

type paramKV struct{ Name, Value string }

type hostLine struct {
	IP, Name, Status, StatusText, Error, Duration string
	ExitCode                                      int
	Stdout, Stderr                                string
	StdoutTruncated, StderrTruncated              bool
}

type runDetail struct {
	store.Run
	User     string
	Started  time.Time
	Finished *time.Time
	Params   []paramKV
	Hosts    []hostLine
}

func (s *Server) pageRun(w http.ResponseWriter, r *http.Request) {
	id, err := runIDParam(r)
	if err != nil {
		s.renderError(w, r, http.StatusBadRequest, err.Error())
		return
	}
	run, results, err := s.st.GetRun(r.Context(), id)
	if err != nil {
		s.pageFail(w, r, "run", err)
		return
	}
	s.render(w, r, http.StatusOK, "run", "Run "+id, buildRunDetail(run, results))
}

// buildRunDetail lists every host of the run in the run's order, with its
// result or, when it has none, "no result" (or "waiting" while running).
func buildRunDetail(run store.Run, results []task.HostResult) runDetail {
	d := runDetail{Run: run, User: run.Username, Started: run.CreatedAt, Finished: run.FinishedAt}
	for k, v := range run.Params {
		d.Params = append(d.Params, paramKV{k, v})
	}
	sort.Slice(d.Params, func(i, j int) bool { return d.Params[i].Name < d.Params[j].Name })
	byIP := make(map[string]task.HostResult, len(results))
	for _, res := range results {
		byIP[res.Host.IP] = res
	}
	for _, h := range run.Hosts {
		res, ok := byIP[h.IP]
		if !ok {
			line := hostLine{IP: h.IP, Name: h.Name, Status: "noresult", StatusText: "no result", ExitCode: -1}
			if run.Status == runRunning {
				line.Status, line.StatusText = "pending", "waiting"
			}
			d.Hosts = append(d.Hosts, line)
			continue
		}
		line := hostLine{
			IP: h.IP, Name: h.Name, Status: string(res.Status), StatusText: string(res.Status), Error: res.Error,
			ExitCode: res.ExitCode, Stdout: res.Stdout, Stderr: res.Stderr,
			StdoutTruncated: res.StdoutTruncated, StderrTruncated: res.StderrTruncated,
		}
		if res.Duration > 0 {
			line.Duration = res.Duration.Round(time.Millisecond).String()
		}
		d.Hosts = append(d.Hosts, line)
	}
	return d
}

// --- modules ---

func (s *Server) pageModules(w http.ResponseWriter, r *http.Request) {
	list, err := s.st.ListModules(r.Context())
	if err != nil {
		s.pageFail(w, r, "list modules", err)
		return
	}
	out := make([]moduleView, len(list))
	for i, m := range list {
		out[i] = toModuleView(m)
	}
	s.render(w, r, http.StatusOK, "modules", "Modules", out)
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
		return nil, nil, badReq("the form's row count is missing or out of range")
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
		p := param.Param{Name: row.Name, Label: row.Label, Type: param.Type(row.Type), Default: row.Default}
		if !legacyform.ValidName(p.Name) {
			return nil, rows, badReq("row %d: name %q must be sys_param_N", i+1, clipRunes(p.Name, 40))
		}
		if row.MaxLength != "" {
			v, err := strconv.Atoi(row.MaxLength)
			if err != nil {
				return nil, rows, badReq("row %d (%s): max length %q is not a number", i+1, p.Name, row.MaxLength)
			}
			p.MaxLength = v
		} else if p.Type == param.Text {
			p.MaxLength = legacyform.DefaultMaxLength
		} else if p.Type == param.Number {
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
				return nil, rows, badReq("row %d (%s): %s %q is not an integer", i+1, p.Name, mm.nm, mm.raw)
			}
			*mm.dst = &v
		}
		if p.Type == param.Choice {
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
					return nil, rows, badReq("row %d (%s): option line %d has an empty value", i+1, p.Name, ln+1)
				}
				p.Options = append(p.Options, param.Option{Value: v, Label: l})
			}
			if p.Default == "" && len(p.Options) > 0 {
				p.Default = p.Options[0].Value
			}
		} else if row.Options != "" {
			return nil, rows, badReq("row %d (%s): only a select parameter has options", i+1, p.Name)
		}
		out = append(out, p)
	}
	if err := legacyform.Validate(out); err != nil {
		return nil, rows, badReq("%s", strings.TrimPrefix(err.Error(), "legacyform: "))
	}
	return out, rows, nil
}

func (s *Server) pageModuleNew(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, http.StatusOK, "module_edit", "Add a module", moduleForm{IsNew: true, Rows: rowsFromParams(nil)})
}

func (s *Server) pageModuleEdit(w http.ResponseWriter, r *http.Request) {
	id, err := idParam(r, "id")
	if err != nil {
		s.renderError(w, r, http.StatusBadRequest, "module "+err.Error())
		return
	}
	m, err := s.st.GetModule(r.Context(), id)
	if err != nil {
		s.pageFail(w, r, "module", err)
		return
	}
	s.render(w, r, http.StatusOK, "module_edit", "Edit module", moduleForm{ID: m.ID, Name: m.Name, Caption: m.Caption, Rows: rowsFromParams(m.Params)})
}

// pageModuleSave creates (/modules/new) or updates (/modules/{id}/edit). A
// refused form is shown again with the admin's input and the reason.
func (s *Server) pageModuleSave(w http.ResponseWriter, r *http.Request) {
	if !s.parseForm(w, r) {
		return
	}
	isNew := urlParam(r, "id") == ""
	form := moduleForm{IsNew: isNew, Name: strings.TrimSpace(r.PostForm.Get("name")), Caption: r.PostForm.Get("caption")}
	if isNew {
		if raw := strings.TrimSpace(r.PostForm.Get("id")); raw != "" {
			id, err := strconv.ParseInt(raw, 10, 64)
			if err != nil || id <= 0 {
				s.renderWith(w, r, http.StatusBadRequest, "module_edit", "Add a module", withRows(form, rowsFromParams(nil)), "", "ID must be a positive integer or empty.")
				return
			}
			form.ID = id
		}
	} else {
		id, err := idParam(r, "id")
		if err != nil {
			s.renderError(w, r, http.StatusBadRequest, "module "+err.Error())
			return
		}
		form.ID = id
	}
	params, rows, err := paramsFromForm(r)
	if err != nil {
		var br *badRequest
		if errors.As(err, &br) {
			if rows == nil {
				rows = rowsFromParams(nil)
			}
			s.renderWith(w, r, http.StatusBadRequest, "module_edit", "Module", withRows(form, rows), "", "Not saved: "+br.msg)
			return
		}
		s.serverError(w, r, "module form", err)
		return
	}
	m := store.Module{ID: form.ID, Name: form.Name, Caption: form.Caption, Params: params}
	if isNew {
		err := legacyModule(m.Name, m.Caption)
		var id int64
		if err == nil {
			id, err = s.st.CreateModule(r.Context(), m)
		}
		if err == nil {
			s.audit(r, authOf(r).Name, "module.create", fmt.Sprintf("%d %q", id, m.Name))
		}
		err = s.moduleSaveResult(w, r, form, rows, err)
		if err == nil {
			http.Redirect(w, r, "/modules?ok=created", http.StatusSeeOther)
		}
		return
	}
	err = s.saveModule(r, form.ID, moduleBody{Name: m.Name, Caption: m.Caption, Params: params})
	if s.moduleSaveResult(w, r, form, rows, err) == nil {
		http.Redirect(w, r, "/modules?ok=saved", http.StatusSeeOther)
	}
}

func withRows(f moduleForm, rows []paramRow) moduleForm { f.Rows = rows; return f }

// moduleSaveResult answers a refused save with the form again; it returns
// err so the caller redirects only on success.
func (s *Server) moduleSaveResult(w http.ResponseWriter, r *http.Request, form moduleForm, rows []paramRow, err error) error {
	if err == nil {
		return nil
	}
	code, msg := storeStatus(err)
	if code == http.StatusInternalServerError {
		s.serverError(w, r, "save module", err)
		return err
	}
	s.renderWith(w, r, code, "module_edit", "Module", withRows(form, rows), "", "Not saved: "+msg)
	return err
}

func (s *Server) pageModuleDelete(w http.ResponseWriter, r *http.Request) {
	id, err := idParam(r, "id")
	if err != nil {
		s.renderError(w, r, http.StatusBadRequest, "module "+err.Error())
		return
	}
	if err := s.st.DeleteModule(r.Context(), id); err != nil {
		s.pageFail(w, r, "delete module", err)
		return
	}
	s.audit(r, authOf(r).Name, "module.delete", strconv.FormatInt(id, 10))
	http.Redirect(w, r, "/modules?ok=deleted", http.StatusSeeOther)
}

// --- inventory ---

type appLine struct {
	store.AppCateg
	FunID   int64
	FunName string
}

type serverLine struct {
	store.Server
	LIP     string
	AppName string
}

func (s *Server) pageInventory(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	funs, err := s.st.ListFunCategs(ctx)
	if err != nil {
		s.pageFail(w, r, "list function categories", err)
		return
	}
	apps, err := s.st.ListAppCategs(ctx, 0)
	if err != nil {
		s.pageFail(w, r, "list applications", err)
		return
	}
	servers, err := s.st.ListServers(ctx, 0)
	if err != nil {
		s.pageFail(w, r, "list servers", err)
		return
	}
	funName := map[int64]string{}
	for _, f := range funs {
		funName[f.ID] = f.Name
	}
	appName := map[int64]string{}
	var appLines []appLine
	for _, a := range apps {
		appLines = append(appLines, appLine{AppCateg: a, FunID: a.FunCategID, FunName: funName[a.FunCategID]})
		appName[a.ID] = a.Name
	}
	var srvLines []serverLine
	for _, sv := range servers {
		srvLines = append(srvLines, serverLine{Server: sv, LIP: sv.IP, AppName: appName[sv.AppID]})
	}
	s.render(w, r, http.StatusOK, "inventory", "Inventory", struct {
		Funs    []store.FunCateg
		Apps    []appLine
		Servers []serverLine
	}{funs, appLines, srvLines})
}

func (s *Server) inventoryDone(w http.ResponseWriter, r *http.Request, what string, err error, ok string) {
	if err != nil {
		s.pageFail(w, r, what, err)
		return
	}
	http.Redirect(w, r, "/inventory?ok="+ok, http.StatusSeeOther)
}

func (s *Server) pageFunSave(w http.ResponseWriter, r *http.Request) {
	if !s.parseForm(w, r) {
		return
	}
	name := strings.TrimSpace(r.PostForm.Get("name"))
	who := authOf(r).Name
	if urlParam(r, "id") == "" {
		err := s.funNameFree(r.Context(), name, 0)
		var id int64
		if err == nil {
			id, err = s.st.CreateFunCateg(r.Context(), name)
		}
		if err == nil {
			s.audit(r, who, "fun_categ.create", fmt.Sprintf("%d %q", id, name))
		}
		s.inventoryDone(w, r, "add function category", err, "created")
		return
	}
	id, err := idParam(r, "id")
	if err != nil {
		s.renderError(w, r, http.StatusBadRequest, "function category "+err.Error())
		return
	}
	err = s.funNameFree(r.Context(), name, id)
	if err == nil {
		err = s.st.UpdateFunCateg(r.Context(), id, name)
	}
	if err == nil {
		s.audit(r, who, "fun_categ.update", fmt.Sprintf("%d %q", id, name))
	}
	s.inventoryDone(w, r, "rename function category", err, "saved")
}

func (s *Server) pageFunDelete(w http.ResponseWriter, r *http.Request) {
	id, err := idParam(r, "id")
	if err != nil {
		s.renderError(w, r, http.StatusBadRequest, "function category "+err.Error())
		return
	}
	err = s.st.DeleteFunCateg(r.Context(), id)
	if err == nil {
		s.audit(r, authOf(r).Name, "fun_categ.delete", strconv.FormatInt(id, 10))
	}
	s.inventoryDone(w, r, "delete function category", err, "deleted")
}

func formID(r *http.Request, name string) (int64, error) {
	raw := strings.TrimSpace(r.PostForm.Get(name))
	id, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || id <= 0 {
		return 0, badReq("%s %q is not a positive integer id", name, clipRunes(raw, 40))
	}
	return id, nil
}

func (s *Server) pageAppSave(w http.ResponseWriter, r *http.Request) {
	if !s.parseForm(w, r) {
		return
	}
	funID, err := formID(r, "fun_id")
	if err != nil {
		s.pageFail(w, r, "application category", err)
		return
	}
	c := store.AppCateg{FunCategID: funID, Name: strings.TrimSpace(r.PostForm.Get("name"))}
	who := authOf(r).Name
	if urlParam(r, "id") == "" {
		err := s.appNameFree(r.Context(), funID, c.Name, 0)
		var id int64
		if err == nil {
			id, err = s.st.CreateAppCateg(r.Context(), c)
		}
		if err == nil {
			s.audit(r, who, "app_categ.create", fmt.Sprintf("%d %q in %d", id, c.Name, funID))
		}
		s.inventoryDone(w, r, "add application category", err, "created")
		return
	}
	if c.ID, err = idParam(r, "id"); err != nil {
		s.renderError(w, r, http.StatusBadRequest, "application category "+err.Error())
		return
	}
	err = s.appNameFree(r.Context(), funID, c.Name, c.ID)
	if err == nil {
		err = s.st.UpdateAppCateg(r.Context(), c)
	}
	if err == nil {
		s.audit(r, who, "app_categ.update", fmt.Sprintf("%d %q in %d", c.ID, c.Name, funID))
	}
	s.inventoryDone(w, r, "rename application category", err, "saved")
}

func (s *Server) pageAppDelete(w http.ResponseWriter, r *http.Request) {
	id, err := idParam(r, "id")
	if err != nil {
		s.renderError(w, r, http.StatusBadRequest, "application category "+err.Error())
		return
	}
	err = s.st.DeleteAppCateg(r.Context(), id)
	if err == nil {
		s.audit(r, authOf(r).Name, "app_categ.delete", strconv.FormatInt(id, 10))
	}
	s.inventoryDone(w, r, "delete application category", err, "deleted")
}

func (s *Server) pageServerSave(w http.ResponseWriter, r *http.Request) {
	if !s.parseForm(w, r) {
		return
	}
	appID, err := formID(r, "app_id")
	if err != nil {
		s.pageFail(w, r, "save server", err)
		return
	}
	f := r.PostForm
	sv := store.Server{IP: strings.TrimSpace(f.Get("lip")), Name: strings.TrimSpace(f.Get("name")),
		WIP: strings.TrimSpace(f.Get("wip")), OS: strings.TrimSpace(f.Get("os")), AppID: appID}
	if err = legacyName("server", sv.Name); err == nil {
		_, err = s.st.UpsertServer(r.Context(), sv)
	}
	if err == nil {
		s.audit(r, authOf(r).Name, "server.save", fmt.Sprintf("%s %q app %d", sv.IP, sv.Name, sv.AppID))
	}
	s.inventoryDone(w, r, "save server", err, "saved")
}

func (s *Server) pageServerDelete(w http.ResponseWriter, r *http.Request) {
	if !s.parseForm(w, r) {
		return
	}
	ip := strings.TrimSpace(r.PostForm.Get("lip"))
	err := s.st.DeleteServer(r.Context(), ip)
	if err == nil {
		s.audit(r, authOf(r).Name, "server.delete", ip)
	}
	s.inventoryDone(w, r, "delete server", err, "deleted")
}

func (s *Server) pageImport(w http.ResponseWriter, r *http.Request) {
	if !s.parseForm(w, r) {
		return
	}
	appID, err := formID(r, "app_id")
	if err != nil {
		s.pageFail(w, r, "import servers", err)
		return
	}
	_, _, err = s.importServers(r, importBody{AppID: appID, CSV: r.PostForm.Get("csv")})
	s.inventoryDone(w, r, "import servers", err, "imported")
}

// --- users ---

func (s *Server) pageUsers(w http.ResponseWriter, r *http.Request) {
	list, err := s.st.ListUsers(r.Context())
	if err != nil {
		s.pageFail(w, r, "list users", err)
		return
	}
	s.render(w, r, http.StatusOK, "users", "Users", list)
}

func (s *Server) pageUserCreate(w http.ResponseWriter, r *http.Request) {
	if !s.parseForm(w, r) {
		return
	}
	f := r.PostForm
	if _, err := s.createUser(r, f.Get("name"), f.Get("role"), f.Get("password")); err != nil {
		s.pageFail(w, r, "add user", err)
		return
	}
	http.Redirect(w, r, "/users?ok=created", http.StatusSeeOther)
}

func (s *Server) pageUserUpdate(w http.ResponseWriter, r *http.Request) {
	id, err := idParam(r, "id")
	if err != nil {
		s.renderError(w, r, http.StatusBadRequest, "user "+err.Error())
		return
	}
	if !s.parseForm(w, r) {
		return
	}
	f := r.PostForm
	var disabled *bool
	switch f.Get("disabled") {
	case "true":
		t := true
		disabled = &t
	case "false":
		v := false
		disabled = &v
	case "":
	default:
		s.renderError(w, r, http.StatusBadRequest, "disabled must be true or false")
		return
	}
	if err := s.updateUser(r, id, f.Get("role"), disabled, f.Get("password")); err != nil {
		s.pageFail(w, r, "update user", err)
		return
	}
	http.Redirect(w, r, "/users?ok=saved", http.StatusSeeOther)
}

func (s *Server) pageAudit(w http.ResponseWriter, r *http.Request) {
	page, per, err := pageParam(r, 100)
	if err != nil {
		s.renderError(w, r, http.StatusBadRequest, err.Error())
		return
	}
	list, total, err := s.st.ListAudit(r.Context(), per, (page-1)*per)
	if err != nil {
		s.pageFail(w, r, "audit log", err)
		return
	}
	type entry struct {
		At                           time.Time
		User, Action, Detail, Remote string
	}
	out := make([]entry, len(list))
	for i, e := range list {
		out[i] = entry{e.At, e.Username, e.Action, e.Detail, e.RemoteAddr}
	}
	s.render(w, r, http.StatusOK, "audit", "Audit log", struct {
		Entries []entry
		pager
	}{out, newPager(page, per, total)})
}

// --- tokens ---

type tokensPage struct {
	NewToken string
	Tokens   []tokenLine
}

type tokenLine struct {
	ID       int64
	Name     string
	Created  time.Time
	LastUsed *time.Time
}

func (s *Server) tokensData(r *http.Request, newToken string) (tokensPage, error) {
	list, err := s.st.ListAPITokens(r.Context(), authOf(r).UserID)
	if err != nil {
		return tokensPage{}, err
	}
	tp := tokensPage{NewToken: newToken}
	for _, t := range list {
		tp.Tokens = append(tp.Tokens, tokenLine{t.ID, t.Name, t.CreatedAt, t.LastUsedAt})
	}
	return tp, nil
}

func (s *Server) pageTokens(w http.ResponseWriter, r *http.Request) {
	tp, err := s.tokensData(r, "")
	if err != nil {
		s.pageFail(w, r, "list tokens", err)
		return
	}
	s.render(w, r, http.StatusOK, "tokens", "API tokens", tp)
}

// pageTokenCreate shows the new token on the answer itself (not after a
// redirect): it must never travel in a URL.
func (s *Server) pageTokenCreate(w http.ResponseWriter, r *http.Request) {
	if !s.parseForm(w, r) {
		return
	}
	tv, err := s.createToken(r, r.PostForm.Get("name"))
	if err != nil {
		s.pageFail(w, r, "create token", err)
		return
	}
	tp, err := s.tokensData(r, tv.Token)
	if err != nil {
		s.pageFail(w, r, "list tokens", err)
		return
	}
	s.renderWith(w, r, http.StatusCreated, "tokens", "API tokens", tp, "Token created.", "")
}

func (s *Server) pageTokenDelete(w http.ResponseWriter, r *http.Request) {
	id, err := idParam(r, "id")
	if err != nil {
		s.renderError(w, r, http.StatusBadRequest, "token "+err.Error())
		return
	}
	p := authOf(r)
	if err := s.st.DeleteAPIToken(r.Context(), p.UserID, id); err != nil {
		s.pageFail(w, r, "revoke token", err)
		return
	}
	s.audit(r, p.Name, "token.delete", strconv.FormatInt(id, 10))
	http.Redirect(w, r, "/tokens?ok=deleted", http.StatusSeeOther)
}
