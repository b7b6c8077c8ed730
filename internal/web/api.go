package web

import (
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/omserver/omserver-go/internal/caption"
	"github.com/omserver/omserver-go/internal/param"
	"github.com/omserver/omserver-go/internal/store"
	"github.com/omserver/omserver-go/internal/task"
)

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

func (s *Server) apiMe(w http.ResponseWriter, r *http.Request) {
	p := authOf(r)
	writeJSON(w, http.StatusOK, map[string]any{"id": p.UserID, "name": p.Name, "role": p.Role})
}

func (s *Server) apiFunCategs(w http.ResponseWriter, r *http.Request) {
	list, err := s.st.ListFunCategs(r.Context())
	if err != nil {
		s.apiStoreError(w, r, "list function categories", err)
		return
	}
	writeJSON(w, http.StatusOK, list)
}

func (s *Server) apiAppCategs(w http.ResponseWriter, r *http.Request) {
	funID, given, err := queryID(r, "fun_id")
	if err != nil {
		writeJSONError(w, http.StatusBadRequest, err.Error())
		return
	}
	if given {
		if _, err := s.st.GetFunCateg(r.Context(), funID); err != nil {
			s.apiStoreError(w, r, "function category", err)
			return
		}
	}
	list, err := s.st.ListAppCategs(r.Context(), funID)
	if err != nil {
		s.apiStoreError(w, r, "list applications", err)
		return
	}
	writeJSON(w, http.StatusOK, list)
}

func (s *Server) apiServers(w http.ResponseWriter, r *http.Request) {
	appID, given, err := queryID(r, "app_id")
	if err != nil {
		writeJSONError(w, http.StatusBadRequest, err.Error())
		return
	}
	if given {
		if _, err := s.st.GetAppCateg(r.Context(), appID); err != nil {
			s.apiStoreError(w, r, "application category", err)
			return
		}
	}
	list, err := s.st.ListServers(r.Context(), appID)
	if err != nil {
		s.apiStoreError(w, r, "list servers", err)
		return
	}
	writeJSON(w, http.StatusOK, list)
}

func (s *Server) apiModules(w http.ResponseWriter, r *http.Request) {
	list, err := s.st.ListModules(r.Context())
	if err != nil {
		s.apiStoreError(w, r, "list modules", err)
		return
	}
	out := make([]moduleView, len(list))
	for i, m := range list {
		out[i] = toModuleView(m)
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) apiModule(w http.ResponseWriter, r *http.Request) {
	id, err := idParam(r, "id")
	if err != nil {
		writeJSONError(w, http.StatusBadRequest, "module "+err.Error())
		return
	}
	m, err := s.st.GetModule(r.Context(), id)
	if err != nil {
		s.apiStoreError(w, r, "module", err)
		return
	}
	writeJSON(w, http.StatusOK, toModuleView(m))
}

// --- runs ---

func (s *Server) apiRunCreate(w http.ResponseWriter, r *http.Request) {
	var req runRequest
	if !s.decodeJSON(w, r, &req) {
		return
	}
	p := authOf(r)
	id, err := s.runs.start(r.Context(), p, req)
	var br *badRequest
	switch {
	case errors.As(err, &br):
		writeJSONError(w, http.StatusBadRequest, br.msg)
		return
	case errors.Is(err, errShuttingDown):
		writeJSONError(w, http.StatusServiceUnavailable, "the web tier is shutting down; try again shortly")
		return
	case err != nil:
		s.serverError(w, r, "start run", err)
		return
	}
	s.audit(r, p.Name, "run.start", fmt.Sprintf("run %s module %d hosts %s", id, req.ModuleID, strings.Join(req.Hosts, ",")))
	w.Header().Set("Location", "/api/v1/runs/"+id)
	writeJSON(w, http.StatusAccepted, map[string]string{"run_id": id})
}

// runIDParam validates a run id from the URL (our ids are 32 hex digits;
// older or imported ids may be any short token without odd characters).
func runIDParam(r *http.Request) (string, error) {
	id := urlParam(r, "id")
	if id == "" || len(id) > task.MaxRunIDBytes {
		return "", fmt.Errorf("run id %q is not valid", clipRunes(id, 80))
	}
	for _, c := range id {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '-' || c == '_') {
			return "", fmt.Errorf("run id %q is not valid", clipRunes(id, 80))
		}
	}
	return id, nil
}

// runView is a run with its results, for the API.
type runView struct {
	store.Run
	Results []task.HostResult `json:"results"`
}

func (s *Server) apiRun(w http.ResponseWriter, r *http.Request) {
	id, err := runIDParam(r)
	if err != nil {
		writeJSONError(w, http.StatusBadRequest, err.Error())
		return
	}
	run, results, err := s.st.GetRun(r.Context(), id)
	if err != nil {
		s.apiStoreError(w, r, "run", err)
		return
	}
	writeJSON(w, http.StatusOK, runView{Run: run, Results: results})
}

func (s *Server) apiRuns(w http.ResponseWriter, r *http.Request) {
	page, per, err := pageParam(r, 50)
	if err != nil {
		writeJSONError(w, http.StatusBadRequest, err.Error())
		return
	}
	f := store.RunFilter{Limit: per, Offset: (page - 1) * per, Username: r.URL.Query().Get("user"), Status: r.URL.Query().Get("status")}
	if mid, _, err := queryID(r, "module_id"); err != nil {
		writeJSONError(w, http.StatusBadRequest, err.Error())
		return
	} else {
		f.ModuleID = mid
	}
	runs, total, err := s.st.ListRuns(r.Context(), f)
	if err != nil {
		s.apiStoreError(w, r, "list runs", err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"runs": runs, "total": total, "page": page, "per_page": per})
}

func (s *Server) apiRunCancel(w http.ResponseWriter, r *http.Request) {
	id, err := runIDParam(r)
	if err != nil {
		writeJSONError(w, http.StatusBadRequest, err.Error())
		return
	}
	run, _, err := s.st.GetRun(r.Context(), id)
	if err != nil {
		s.apiStoreError(w, r, "run", err)
		return
	}
	if run.Status != runRunning {
		writeJSONError(w, http.StatusConflict, "run "+id+" is "+run.Status+", not running: nothing to cancel")
		return
	}
	p := authOf(r)
	if err := s.runs.cancel(r.Context(), id); err != nil {
		if errors.Is(err, errNotRunning) {
			writeJSONError(w, http.StatusConflict, "run "+id+" is not running in this web tier: nothing to cancel")
			return
		}
		s.serverError(w, r, "cancel run", err)
		return
	}
	s.audit(r, p.Name, "run.cancel", "run "+id)
	writeJSON(w, http.StatusAccepted, map[string]string{"run_id": id, "status": "cancelling"})
}

// --- tokens (every user manages their own) ---

type tokenView struct {
	ID       int64      `json:"id"`
	Name     string     `json:"name"`
	Created  time.Time  `json:"created_at"`
	LastUsed *time.Time `json:"last_used_at,omitempty"`
	Token    string     `json:"token,omitempty"` // only in the answer to create
}

func (s *Server) apiTokens(w http.ResponseWriter, r *http.Request) {
	list, err := s.st.ListAPITokens(r.Context(), authOf(r).UserID)
	if err != nil {
		s.apiStoreError(w, r, "list tokens", err)
		return
	}
	out := make([]tokenView, len(list))
	for i, t := range list {
		out[i] = tokenView{ID: t.ID, Name: t.Name, Created: t.CreatedAt, LastUsed: t.LastUsedAt}
	}
	writeJSON(w, http.StatusOK, out)
}

// createToken makes a token for the caller and returns it in clear, once.
func (s *Server) createToken(r *http.Request, name string) (tokenView, error) {
	secret, err := newSecret()
	if err != nil {
		return tokenView{}, err
	}
	tok := tokenPrefix + secret
	p := authOf(r)
	id, err := s.st.CreateAPIToken(r.Context(), p.UserID, strings.TrimSpace(name), store.HashToken(tok))
	if err != nil {
		return tokenView{}, err
	}
	s.audit(r, p.Name, "token.create", fmt.Sprintf("token %d %q", id, name))
	return tokenView{ID: id, Name: name, Created: time.Now().UTC(), Token: tok}, nil
}

func (s *Server) apiTokenCreate(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Name string `json:"name"`
	}
	if !s.decodeJSON(w, r, &req) {
		return
	}
	tv, err := s.createToken(r, req.Name)
	if err != nil {
		s.apiStoreError(w, r, "create token", err)
		return
	}
	writeJSON(w, http.StatusCreated, tv)
}

func (s *Server) apiTokenDelete(w http.ResponseWriter, r *http.Request) {
	id, err := idParam(r, "id")
	if err != nil {
		writeJSONError(w, http.StatusBadRequest, "token "+err.Error())
		return
	}
	p := authOf(r)
	if err := s.st.DeleteAPIToken(r.Context(), p.UserID, id); err != nil {
		s.apiStoreError(w, r, "delete token", err)
		return
	}
	s.audit(r, p.Name, "token.delete", fmt.Sprintf("token %d", id))
	w.WriteHeader(http.StatusNoContent)
}

// --- admin: inventory ---

type nameBody struct {
	Name string `json:"name"`
}

func (s *Server) apiFunCreate(w http.ResponseWriter, r *http.Request) {
	var b nameBody
	if !s.decodeJSON(w, r, &b) {
		return
	}
	err := s.funNameFree(r.Context(), b.Name, 0)
	var id int64
	if err == nil {
		id, err = s.st.CreateFunCateg(r.Context(), b.Name)
	}
	if err != nil {
		s.apiStoreError(w, r, "create function category", err)
		return
	}
	s.audit(r, authOf(r).Name, "fun_categ.create", fmt.Sprintf("%d %q", id, b.Name))
	writeJSON(w, http.StatusCreated, store.FunCateg{ID: id, Name: b.Name})
}

func (s *Server) apiFunUpdate(w http.ResponseWriter, r *http.Request) {
	id, err := idParam(r, "id")
	if err != nil {
		writeJSONError(w, http.StatusBadRequest, "function category "+err.Error())
		return
	}
	var b nameBody
	if !s.decodeJSON(w, r, &b) {
		return
	}
	if err := s.funNameFree(r.Context(), b.Name, id); err != nil {
		s.apiStoreError(w, r, "update function category", err)
		return
	}
	if err := s.st.UpdateFunCateg(r.Context(), id, b.Name); err != nil {
		s.apiStoreError(w, r, "update function category", err)
		return
	}
	s.audit(r, authOf(r).Name, "fun_categ.update", fmt.Sprintf("%d %q", id, b.Name))
	writeJSON(w, http.StatusOK, store.FunCateg{ID: id, Name: b.Name})
}

func (s *Server) apiFunDelete(w http.ResponseWriter, r *http.Request) {
	id, err := idParam(r, "id")
	if err != nil {
		writeJSONError(w, http.StatusBadRequest, "function category "+err.Error())
		return
	}
	if err := s.st.DeleteFunCateg(r.Context(), id); err != nil {
		s.apiStoreError(w, r, "delete function category", err)
		return
	}
	s.audit(r, authOf(r).Name, "fun_categ.delete", strconv.FormatInt(id, 10))
	w.WriteHeader(http.StatusNoContent)
}

type appBody struct {
	FunCategID int64  `json:"fun_categ_id"`
	Name       string `json:"name"`
}

func (s *Server) apiAppCreate(w http.ResponseWriter, r *http.Request) {
	var b appBody
	if !s.decodeJSON(w, r, &b) {
		return
	}
	err := s.appNameFree(r.Context(), b.FunCategID, b.Name, 0)
	var id int64
	if err == nil {
		id, err = s.st.CreateAppCateg(r.Context(), store.AppCateg{FunCategID: b.FunCategID, Name: b.Name})
	}
	if err != nil {
		s.apiStoreError(w, r, "create application category", err)
		return
	}
	s.audit(r, authOf(r).Name, "app_categ.create", fmt.Sprintf("%d %q in %d", id, b.Name, b.FunCategID))
	writeJSON(w, http.StatusCreated, store.AppCateg{ID: id, FunCategID: b.FunCategID, Name: b.Name})
}

func (s *Server) apiAppUpdate(w http.ResponseWriter, r *http.Request) {
	id, err := idParam(r, "id")
	if err != nil {
		writeJSONError(w, http.StatusBadRequest, "application category "+err.Error())
		return
	}
	var b appBody
	if !s.decodeJSON(w, r, &b) {
		return
	}
	c := store.AppCateg{ID: id, FunCategID: b.FunCategID, Name: b.Name}
	if err := s.appNameFree(r.Context(), b.FunCategID, b.Name, id); err != nil {
		s.apiStoreError(w, r, "update application category", err)
		return
	}
	if err := s.st.UpdateAppCateg(r.Context(), c); err != nil {
		s.apiStoreError(w, r, "update application category", err)
		return
	}
	s.audit(r, authOf(r).Name, "app_categ.update", fmt.Sprintf("%d %q in %d", id, b.Name, b.FunCategID))
	writeJSON(w, http.StatusOK, c)
}

func (s *Server) apiAppDelete(w http.ResponseWriter, r *http.Request) {
	id, err := idParam(r, "id")
	if err != nil {
		writeJSONError(w, http.StatusBadRequest, "application category "+err.Error())
		return
	}
	if err := s.st.DeleteAppCateg(r.Context(), id); err != nil {
		s.apiStoreError(w, r, "delete application category", err)
		return
	}
	s.audit(r, authOf(r).Name, "app_categ.delete", strconv.FormatInt(id, 10))
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) apiServerUpsert(w http.ResponseWriter, r *http.Request) {
	var sv store.Server
	if !s.decodeJSON(w, r, &sv) {
		return
	}
	err := legacyName("server", sv.Name)
	var created bool
	if err == nil {
		created, err = s.st.UpsertServer(r.Context(), sv)
	}
	if err != nil {
		s.apiStoreError(w, r, "save server", err)
		return
	}
	s.audit(r, authOf(r).Name, "server.save", fmt.Sprintf("%s %q app %d", sv.IP, sv.Name, sv.AppID))
	code := http.StatusOK
	if created {
		code = http.StatusCreated
	}
	writeJSON(w, code, sv)
}

func (s *Server) apiServerDelete(w http.ResponseWriter, r *http.Request) {
	ip := urlParam(r, "ip")
	if err := store.CheckServer(store.Server{IP: ip, Name: "x", AppID: 1}); err != nil {
		writeJSONError(w, http.StatusBadRequest, fmt.Sprintf("%q is not a server address", clipRunes(ip, 64)))
		return
	}
	if err := s.st.DeleteServer(r.Context(), ip); err != nil {
		s.apiStoreError(w, r, "delete server", err)
		return
	}
	s.audit(r, authOf(r).Name, "server.delete", ip)
	w.WriteHeader(http.StatusNoContent)
}

// importBody is the JSON form of a bulk import: CSV text, one server per
// line as name,wip,lip,os, all into one application category.
type importBody struct {
	AppID int64  `json:"app_id"`
	CSV   string `json:"csv"`
}

func (s *Server) apiServerImport(w http.ResponseWriter, r *http.Request) {
	var b importBody
	if !s.decodeJSON(w, r, &b) {
		return
	}
	ins, upd, err := s.importServers(r, b)
	if err != nil {
		var br *badRequest
		if errors.As(err, &br) {
			writeJSONError(w, http.StatusBadRequest, br.msg)
			return
		}
		s.apiStoreError(w, r, "import servers", err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]int{"inserted": ins, "updated": upd})
}

// importServers parses the CSV text and imports it all or nothing.
func (s *Server) importServers(r *http.Request, b importBody) (int, int, error) {
	if b.AppID <= 0 {
		return 0, 0, badReq("app_id must be a positive application category id")
	}
	if _, err := s.st.GetAppCateg(r.Context(), b.AppID); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return 0, 0, badReq("application category %d does not exist", b.AppID)
		}
		return 0, 0, err
	}
	servers, err := parseServerCSV(b.CSV, b.AppID)
	if err != nil {
		return 0, 0, err
	}
	ins, upd, err := s.st.ImportServers(r.Context(), servers)
	if err != nil {
		if errors.Is(err, store.ErrInvalid) || errors.Is(err, store.ErrConflict) {
			return 0, 0, badReq("nothing imported: %s", cleanStoreMsg(err))
		}
		return 0, 0, err
	}
	s.audit(r, authOf(r).Name, "server.import", fmt.Sprintf("%d inserted, %d updated into app %d", ins, upd, b.AppID))
	return ins, upd, nil
}

// parseServerCSV reads "name,wip,lip,os" lines. Blank lines and lines
// starting with # are skipped; every error names its line.
func parseServerCSV(text string, appID int64) ([]store.Server, error) {
	var out []store.Server
	lineOf := map[string]int{}
	lines := strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n")
	for i, line := range lines {
		n := i + 1
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, ",")
		if len(f) != 4 {
			return nil, badReq("nothing imported: line %d: %d fields, want 4 (name,wip,lip,os)", n, len(f))
		}
		for j := range f {
			f[j] = strings.TrimSpace(f[j])
		}
		sv := store.Server{Name: f[0], WIP: f[1], IP: f[2], OS: f[3], AppID: appID}
		if err := store.CheckServer(sv); err != nil {
			return nil, badReq("nothing imported: line %d: %s", n, cleanStoreMsg(err))
		}
		if prev, dup := lineOf[sv.IP]; dup {
			return nil, badReq("nothing imported: line %d: address %s is already on line %d", n, sv.IP, prev)
		}
		lineOf[sv.IP] = n
		out = append(out, sv)
		if len(out) > store.MaxImport {
			return nil, badReq("nothing imported: more than %d servers", store.MaxImport)
		}
	}
	if len(out) == 0 {
		return nil, badReq("nothing imported: no server lines (want name,wip,lip,os per line)")
	}
	return out, nil
}

// --- admin: modules ---

type moduleBody struct {
	ID      int64         `json:"id"`
	Name    string        `json:"name"`
	Caption string        `json:"caption"`
	Params  []param.Param `json:"params"`
}

func (s *Server) apiModuleCreate(w http.ResponseWriter, r *http.Request) {
	var b moduleBody
	if !s.decodeJSON(w, r, &b) {
		return
	}
	if b.ID < 0 {
		writeJSONError(w, http.StatusBadRequest, "module id must be positive, or 0 for the next free id")
		return
	}
	err := legacyModule(b.Name, b.Caption)
	var id int64
	if err == nil {
		id, err = s.st.CreateModule(r.Context(), store.Module{ID: b.ID, Name: b.Name, Caption: b.Caption, Params: b.Params})
	}
	if err != nil {
		s.apiStoreError(w, r, "create module", err)
		return
	}
	s.audit(r, authOf(r).Name, "module.create", fmt.Sprintf("%d %q", id, b.Name))
	m, err := s.st.GetModule(r.Context(), id)
	if err != nil {
		s.apiStoreError(w, r, "module", err)
		return
	}
	writeJSON(w, http.StatusCreated, toModuleView(m))
}

func (s *Server) apiModuleUpdate(w http.ResponseWriter, r *http.Request) {
	id, err := idParam(r, "id")
	if err != nil {
		writeJSONError(w, http.StatusBadRequest, "module "+err.Error())
		return
	}
	var b moduleBody
	if !s.decodeJSON(w, r, &b) {
		return
	}
	if b.ID != 0 && b.ID != id {
		writeJSONError(w, http.StatusBadRequest, fmt.Sprintf("body id %d does not match the URL's module %d", b.ID, id))
		return
	}
	if err := s.saveModule(r, id, b); err != nil {
		s.apiStoreError(w, r, "update module", err)
		return
	}
	m, err := s.st.GetModule(r.Context(), id)
	if err != nil {
		s.apiStoreError(w, r, "module", err)
		return
	}
	writeJSON(w, http.StatusOK, toModuleView(m))
}

// saveModule updates a module. Params are authoritative when given; a
// module updated with no parameters keeps none (its legacy form is replaced
// by an empty one).
func (s *Server) saveModule(r *http.Request, id int64, b moduleBody) error {
	if err := legacyModule(b.Name, b.Caption); err != nil {
		return err
	}
	m := store.Module{ID: id, Name: b.Name, Caption: b.Caption, Params: b.Params}
	if len(b.Params) == 0 {
		m.Extend = ""
	}
	if err := s.st.UpdateModule(r.Context(), m); err != nil {
		return err
	}
	s.audit(r, authOf(r).Name, "module.update", fmt.Sprintf("%d %q", id, b.Name))
	return nil
}

func (s *Server) apiModuleDelete(w http.ResponseWriter, r *http.Request) {
	id, err := idParam(r, "id")
	if err != nil {
		writeJSONError(w, http.StatusBadRequest, "module "+err.Error())
		return
	}
	if err := s.st.DeleteModule(r.Context(), id); err != nil {
		s.apiStoreError(w, r, "delete module", err)
		return
	}
	s.audit(r, authOf(r).Name, "module.delete", strconv.FormatInt(id, 10))
	w.WriteHeader(http.StatusNoContent)
}

// --- admin: users ---

func (s *Server) apiUsers(w http.ResponseWriter, r *http.Request) {
	list, err := s.st.ListUsers(r.Context())
	if err != nil {
		s.apiStoreError(w, r, "list users", err)
		return
	}
	writeJSON(w, http.StatusOK, list)
}

// createUser validates and adds a user; errors are badRequest or store errors.
func (s *Server) createUser(r *http.Request, name, roleName, password string) (store.User, error) {
	if !store.ValidRole(roleName) {
		return store.User{}, badReq("role %q is not admin, operator or viewer", clipRunes(roleName, 20))
	}
	hash, err := HashPassword(password)
	if err != nil {
		return store.User{}, badReq("%s", err.Error())
	}
	u := store.User{Name: strings.TrimSpace(name), Role: roleName, PasswordHash: hash}
	id, err := s.st.CreateUser(r.Context(), u)
	if err != nil {
		return store.User{}, err
	}
	u.ID = id
	s.audit(r, authOf(r).Name, "user.create", fmt.Sprintf("%d %s as %s", id, u.Name, roleName))
	return u, nil
}

func (s *Server) apiUserCreate(w http.ResponseWriter, r *http.Request) {
	var b struct {
		Name     string `json:"name"`
		Role     string `json:"role"`
		Password string `json:"password"`
	}
	if !s.decodeJSON(w, r, &b) {
		return
	}
	u, err := s.createUser(r, b.Name, b.Role, b.Password)
	if err != nil {
		var br *badRequest
		if errors.As(err, &br) {
			writeJSONError(w, http.StatusBadRequest, br.msg)
			return
		}
		s.apiStoreError(w, r, "create user", err)
		return
	}
	// Read back, so the answer carries what was stored (its creation time).
	if stored, err := s.st.GetUser(r.Context(), u.ID); err == nil {
		u = stored
	}
	writeJSON(w, http.StatusCreated, u)
}

// updateUser applies a role, a disabled flag and/or a new password. Every
// change is validated before any is applied; an admin cannot demote or
// disable themselves (so the last admin cannot lock everyone out by accident).
func (s *Server) updateUser(r *http.Request, id int64, roleName string, disabled *bool, newPassword string) error {
	u, err := s.st.GetUser(r.Context(), id)
	if err != nil {
		return err
	}
	me := authOf(r)
	if roleName != "" && !store.ValidRole(roleName) {
		return badReq("role %q is not admin, operator or viewer", clipRunes(roleName, 20))
	}
	if id == me.UserID && ((roleName != "" && roleName != store.RoleAdmin) || (disabled != nil && *disabled)) {
		return badReq("you cannot demote or disable your own account")
	}
	var hash string
	if newPassword != "" {
		if hash, err = HashPassword(newPassword); err != nil {
			return badReq("%s", err.Error())
		}
	}
	var changes []string
	if roleName != "" && roleName != u.Role {
		if err := s.st.UpdateUserRole(r.Context(), id, roleName); err != nil {
			return err
		}
		changes = append(changes, "role "+roleName)
	}
	if disabled != nil && *disabled != u.Disabled {
		if err := s.st.SetUserDisabled(r.Context(), id, *disabled); err != nil {
			return err
		}
		// Its sessions end now, not merely while it is disabled: enabling
		// the account again must not bring back a session that may have
		// been the reason for disabling it.
		if *disabled {
			if _, err := s.st.DeleteUserSessions(r.Context(), id); err != nil {
				return err
			}
		}
		changes = append(changes, fmt.Sprintf("disabled=%t", *disabled))
	}
	if hash != "" {
		if err := s.st.SetUserPassword(r.Context(), id, hash); err != nil {
			return err
		}
		if _, err := s.st.DeleteUserSessions(r.Context(), id); err != nil {
			return err
		}
		changes = append(changes, "password reset")
	}
	if len(changes) > 0 {
		s.audit(r, me.Name, "user.update", fmt.Sprintf("%d %s: %s", id, u.Name, strings.Join(changes, ", ")))
	}
	return nil
}

func (s *Server) apiUserUpdate(w http.ResponseWriter, r *http.Request) {
	id, err := idParam(r, "id")
	if err != nil {
		writeJSONError(w, http.StatusBadRequest, "user "+err.Error())
		return
	}
	var b struct {
		Role     string `json:"role"`
		Disabled *bool  `json:"disabled"`
		Password string `json:"password"`
	}
	if !s.decodeJSON(w, r, &b) {
		return
	}
	if err := s.updateUser(r, id, b.Role, b.Disabled, b.Password); err != nil {
		var br *badRequest
		if errors.As(err, &br) {
			writeJSONError(w, http.StatusBadRequest, br.msg)
			return
		}
		s.apiStoreError(w, r, "update user", err)
		return
	}
	u, err := s.st.GetUser(r.Context(), id)
	if err != nil {
		s.apiStoreError(w, r, "user", err)
		return
	}
	writeJSON(w, http.StatusOK, u)
}

func (s *Server) apiAudit(w http.ResponseWriter, r *http.Request) {
	page, per, err := pageParam(r, 100)
	if err != nil {
		writeJSONError(w, http.StatusBadRequest, err.Error())
		return
	}
	list, total, err := s.st.ListAudit(r.Context(), per, (page-1)*per)
	if err != nil {
		s.apiStoreError(w, r, "list audit log", err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"entries": list, "total": total, "page": page, "per_page": per})
}
