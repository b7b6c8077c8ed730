package web

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/omserver/omserver-go/internal/store"
)

// Inventory: function categories, applications and servers (the original's
// three tables), read by everyone, changed by admins, as API and pages.

func (s *Server) apiFunCategs(w http.ResponseWriter, r *http.Request) error {
	list, err := s.st.ListFunCategs(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, list)
	return nil
}

func (s *Server) apiAppCategs(w http.ResponseWriter, r *http.Request) error {
	funID, given, err := queryID(r, "fun_id")
	if err != nil {
		return err
	}
	if given {
		if _, err := s.st.GetFunCateg(r.Context(), funID); err != nil {
			return err
		}
	}
	list, err := s.st.ListAppCategs(r.Context(), funID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, list)
	return nil
}

func (s *Server) apiServers(w http.ResponseWriter, r *http.Request) error {
	appID, given, err := queryID(r, "app_id")
	if err != nil {
		return err
	}
	if given {
		if _, err := s.st.GetAppCateg(r.Context(), appID); err != nil {
			return err
		}
	}
	list, err := s.st.ListServers(r.Context(), appID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, list)
	return nil
}

// --- changes (admin), shared by the API and the pages ---

func (s *Server) createFunCateg(r *http.Request, name string) (store.FunCateg, error) {
	id, err := s.st.CreateFunCateg(r.Context(), name)
	if err != nil {
		return store.FunCateg{}, err
	}
	s.audit(r, authOf(r).Name, "fun_categ.create", fmt.Sprintf("%d %q", id, name))
	return store.FunCateg{ID: id, Name: name}, nil
}

func (s *Server) renameFunCateg(r *http.Request, id int64, name string) error {
	if err := s.st.UpdateFunCateg(r.Context(), id, name); err != nil {
		return err
	}
	s.audit(r, authOf(r).Name, "fun_categ.update", fmt.Sprintf("%d %q", id, name))
	return nil
}

func (s *Server) deleteFunCateg(r *http.Request) error {
	id, err := idParam(r, "id", "function category")
	if err != nil {
		return err
	}
	if err := s.st.DeleteFunCateg(r.Context(), id); err != nil {
		return err
	}
	s.audit(r, authOf(r).Name, "fun_categ.delete", strconv.FormatInt(id, 10))
	return nil
}

func (s *Server) createAppCateg(r *http.Request, c store.AppCateg) (store.AppCateg, error) {
	id, err := s.st.CreateAppCateg(r.Context(), c)
	if err != nil {
		return store.AppCateg{}, err
	}
	c.ID = id
	s.audit(r, authOf(r).Name, "app_categ.create", fmt.Sprintf("%d %q in %d", id, c.Name, c.FunCategID))
	return c, nil
}

func (s *Server) updateAppCateg(r *http.Request, c store.AppCateg) error {
	if err := s.st.UpdateAppCateg(r.Context(), c); err != nil {
		return err
	}
	s.audit(r, authOf(r).Name, "app_categ.update", fmt.Sprintf("%d %q in %d", c.ID, c.Name, c.FunCategID))
	return nil
}

func (s *Server) deleteAppCateg(r *http.Request) error {
	id, err := idParam(r, "id", "application category")
	if err != nil {
		return err
	}
	if err := s.st.DeleteAppCateg(r.Context(), id); err != nil {
		return err
	}
	s.audit(r, authOf(r).Name, "app_categ.delete", strconv.FormatInt(id, 10))
	return nil
}

func (s *Server) saveServer(r *http.Request, sv store.Server) (created bool, err error) {
	if created, err = s.st.UpsertServer(r.Context(), sv); err != nil {
		return false, err
	}
	s.audit(r, authOf(r).Name, "server.save", fmt.Sprintf("%s %q app %d", sv.IP, sv.Name, sv.AppID))
	return created, nil
}

func (s *Server) deleteServer(r *http.Request, ip string) error {
	if err := store.CheckServer(store.Server{IP: ip, Name: "x", AppID: 1}); err != nil {
		return invalidf("%q is not a server address", clipRunes(ip, 64))
	}
	if err := s.st.DeleteServer(r.Context(), ip); err != nil {
		return err
	}
	s.audit(r, authOf(r).Name, "server.delete", ip)
	return nil
}

// importBody is the JSON form of a bulk import: CSV text, one server per
// line as name,wip,lip,os, all into one application category.
type importBody struct {
	AppID int64  `json:"app_id"`
	CSV   string `json:"csv"`
}

// importServers parses the CSV text and imports it all or nothing.
func (s *Server) importServers(r *http.Request, b importBody) (int, int, error) {
	if b.AppID <= 0 {
		return 0, 0, invalidf("app_id must be a positive application category id")
	}
	if _, err := s.st.GetAppCateg(r.Context(), b.AppID); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return 0, 0, invalidf("application category %d does not exist", b.AppID)
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
			return 0, 0, invalidf("nothing imported: %s", err)
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
			return nil, invalidf("nothing imported: line %d: %d fields, want 4 (name,wip,lip,os)", n, len(f))
		}
		for j := range f {
			f[j] = strings.TrimSpace(f[j])
		}
		sv := store.Server{Name: f[0], WIP: f[1], IP: f[2], OS: f[3], AppID: appID}
		if err := store.CheckServer(sv); err != nil {
			return nil, invalidf("nothing imported: line %d: %s", n, err)
		}
		if prev, dup := lineOf[sv.IP]; dup {
			return nil, invalidf("nothing imported: line %d: address %s is already on line %d", n, sv.IP, prev)
		}
		lineOf[sv.IP] = n
		out = append(out, sv)
		if len(out) > store.MaxImport {
			return nil, invalidf("nothing imported: more than %d servers", store.MaxImport)
		}
	}
	if len(out) == 0 {
		return nil, invalidf("nothing imported: no server lines (want name,wip,lip,os per line)")
	}
	return out, nil
}

// --- API ---

type nameBody struct {
	Name string `json:"name"`
}

func (s *Server) apiFunCreate(w http.ResponseWriter, r *http.Request) error {
	var b nameBody
	if err := s.decodeJSON(r, &b); err != nil {
		return err
	}
	c, err := s.createFunCateg(r, b.Name)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, c)
	return nil
}

func (s *Server) apiFunUpdate(w http.ResponseWriter, r *http.Request) error {
	id, err := idParam(r, "id", "function category")
	if err != nil {
		return err
	}
	var b nameBody
	if err := s.decodeJSON(r, &b); err != nil {
		return err
	}
	if err := s.renameFunCateg(r, id, b.Name); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, store.FunCateg{ID: id, Name: b.Name})
	return nil
}

func (s *Server) apiFunDelete(w http.ResponseWriter, r *http.Request) error {
	if err := s.deleteFunCateg(r); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type appBody struct {
	FunCategID int64  `json:"fun_categ_id"`
	Name       string `json:"name"`
}

func (s *Server) apiAppCreate(w http.ResponseWriter, r *http.Request) error {
	var b appBody
	if err := s.decodeJSON(r, &b); err != nil {
		return err
	}
	c, err := s.createAppCateg(r, store.AppCateg{FunCategID: b.FunCategID, Name: b.Name})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, c)
	return nil
}

func (s *Server) apiAppUpdate(w http.ResponseWriter, r *http.Request) error {
	id, err := idParam(r, "id", "application category")
	if err != nil {
		return err
	}
	var b appBody
	if err := s.decodeJSON(r, &b); err != nil {
		return err
	}
	c := store.AppCateg{ID: id, FunCategID: b.FunCategID, Name: b.Name}
	if err := s.updateAppCateg(r, c); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, c)
	return nil
}

func (s *Server) apiAppDelete(w http.ResponseWriter, r *http.Request) error {
	if err := s.deleteAppCateg(r); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) apiServerUpsert(w http.ResponseWriter, r *http.Request) error {
	var sv store.Server
	if err := s.decodeJSON(r, &sv); err != nil {
		return err
	}
	created, err := s.saveServer(r, sv)
	if err != nil {
		return err
	}
	code := http.StatusOK
	if created {
		code = http.StatusCreated
	}
	writeJSON(w, code, sv)
	return nil
}

func (s *Server) apiServerDelete(w http.ResponseWriter, r *http.Request) error {
	if err := s.deleteServer(r, urlParam(r, "ip")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) apiServerImport(w http.ResponseWriter, r *http.Request) error {
	var b importBody
	if err := s.decodeJSON(r, &b); err != nil {
		return err
	}
	ins, upd, err := s.importServers(r, b)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]int{"inserted": ins, "updated": upd})
	return nil
}

// --- pages ---

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

func (s *Server) pageInventory(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	funs, err := s.st.ListFunCategs(ctx)
	if err != nil {
		return err
	}
	apps, err := s.st.ListAppCategs(ctx, 0)
	if err != nil {
		return err
	}
	servers, err := s.st.ListServers(ctx, 0)
	if err != nil {
		return err
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
	return nil
}

// inventoryForm handles one inventory form: parse it, apply change, and
// come back to the inventory page with ok as the flash code.
func (s *Server) inventoryForm(ok string, change func(r *http.Request) error) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if err := s.parseForm(r); err != nil {
			return err
		}
		if err := change(r); err != nil {
			return err
		}
		http.Redirect(w, r, "/inventory?ok="+ok, http.StatusSeeOther)
		return nil
	}
}

func formID(r *http.Request, name string) (int64, error) {
	raw := strings.TrimSpace(r.PostForm.Get(name))
	id, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || id <= 0 {
		return 0, invalidf("%s %q is not a positive integer id", name, clipRunes(raw, 40))
	}
	return id, nil
}

func formValue(r *http.Request, name string) string { return strings.TrimSpace(r.PostForm.Get(name)) }

func (s *Server) formFunCreate(r *http.Request) error {
	_, err := s.createFunCateg(r, formValue(r, "name"))
	return err
}

func (s *Server) formFunRename(r *http.Request) error {
	id, err := idParam(r, "id", "function category")
	if err != nil {
		return err
	}
	return s.renameFunCateg(r, id, formValue(r, "name"))
}

func (s *Server) formAppCreate(r *http.Request) error {
	funID, err := formID(r, "fun_id")
	if err != nil {
		return err
	}
	_, err = s.createAppCateg(r, store.AppCateg{FunCategID: funID, Name: formValue(r, "name")})
	return err
}

func (s *Server) formAppUpdate(r *http.Request) error {
	funID, err := formID(r, "fun_id")
	if err != nil {
		return err
	}
	id, err := idParam(r, "id", "application category")
	if err != nil {
		return err
	}
	return s.updateAppCateg(r, store.AppCateg{ID: id, FunCategID: funID, Name: formValue(r, "name")})
}

func (s *Server) formServerSave(r *http.Request) error {
	appID, err := formID(r, "app_id")
	if err != nil {
		return err
	}
	_, err = s.saveServer(r, store.Server{IP: formValue(r, "lip"), Name: formValue(r, "name"),
		WIP: formValue(r, "wip"), OS: formValue(r, "os"), AppID: appID})
	return err
}

func (s *Server) formServerDelete(r *http.Request) error {
	return s.deleteServer(r, formValue(r, "lip"))
}

func (s *Server) formImport(r *http.Request) error {
	appID, err := formID(r, "app_id")
	if err != nil {
		return err
	}
	_, _, err = s.importServers(r, importBody{AppID: appID, CSV: r.PostForm.Get("csv")})
	return err
}
