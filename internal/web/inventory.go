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

// The reads are paged by key (see paging.go): function categories and
// applications by id, servers by internal address, with the filters of
// serverFilter. Every answer is {"<list>": [...], "next": URL or null}.

func (s *Server) apiFunCategs(w http.ResponseWriter, r *http.Request) error {
	p, err := pageRequest(r, store.DefaultLimit)
	if err != nil {
		return err
	}
	page, err := s.st.ListFunCategsPage(r.Context(), p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"fun_categs": page.FunCategs, "next": jsonNext(nextURL(r, "cursor", page.Next))})
	return nil
}

// appFilter reads ?fun_id= (which must exist) and ?q= (name contains).
func (s *Server) appFilter(r *http.Request) (store.AppFilter, error) {
	p, err := pageRequest(r, store.DefaultLimit)
	if err != nil {
		return store.AppFilter{}, err
	}
	f := store.AppFilter{PageRequest: p, Name: queryText(r, "q")}
	funID, given, err := queryID(r, "fun_id")
	if err != nil {
		return store.AppFilter{}, err
	}
	if given {
		if _, err := s.st.GetFunCateg(r.Context(), funID); err != nil {
			return store.AppFilter{}, err
		}
		f.FunID = funID
	}
	return f, nil
}

func (s *Server) apiAppCategs(w http.ResponseWriter, r *http.Request) error {
	f, err := s.appFilter(r)
	if err != nil {
		return err
	}
	page, err := s.st.ListAppCategsPage(r.Context(), f)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"app_categs": page.AppCategs, "next": jsonNext(nextURL(r, "cursor", page.Next))})
	return nil
}

// serverFilter reads the server search of the API and the inventory page:
// ?app_id= and ?fun_id= (which must exist), ?ip= (address starts with),
// ?name= (hostname contains), ?os= (exactly), ?q= (address starts with or
// hostname contains), and the page (cursorParam names its cursor).
func (s *Server) serverFilter(r *http.Request, cursorParam string) (store.ServerFilter, error) {
	p, err := pageRequest(r, store.DefaultLimit)
	if err != nil {
		return store.ServerFilter{}, err
	}
	p.Cursor = r.URL.Query().Get(cursorParam)
	f := store.ServerFilter{PageRequest: p, IP: queryText(r, "ip"), Name: queryText(r, "name"), OS: queryText(r, "os"), Q: queryText(r, "q")}
	appID, given, err := queryID(r, "app_id")
	if err != nil {
		return store.ServerFilter{}, err
	}
	if given {
		if _, err := s.st.GetAppCateg(r.Context(), appID); err != nil {
			return store.ServerFilter{}, err
		}
		f.AppID = appID
	}
	funID, given, err := queryID(r, "fun_id")
	if err != nil {
		return store.ServerFilter{}, err
	}
	if given {
		if _, err := s.st.GetFunCateg(r.Context(), funID); err != nil {
			return store.ServerFilter{}, err
		}
		f.FunID = funID
	}
	return f, nil
}

func (s *Server) apiServers(w http.ResponseWriter, r *http.Request) error {
	f, err := s.serverFilter(r, "cursor")
	if err != nil {
		return err
	}
	page, err := s.st.ListServersPage(r.Context(), f)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"servers": page.Servers, "next": jsonNext(nextURL(r, "cursor", page.Next))})
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

// inventoryPage is one view of the inventory: the function categories
// with their application counts, one page of applications (of the chosen
// function category, if any) with their server counts, and one page of
// the servers that match the search. Every list is a page, whatever the
// size of the fleet.
type inventoryPage struct {
	Funs     []store.FunCategRow
	FunLinks pageLinks
	Apps     []store.AppCategRow
	AppLinks pageLinks
	Servers  []store.ServerRow
	SrvLinks pageLinks
	// The search as asked, to fill the form again.
	FunID, AppID     int64
	Q, IP, Name, OS  string
	FunName, AppName string
	Filtered         bool
}

func (s *Server) pageInventory(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	var v inventoryPage
	q := r.URL.Query()
	funs, err := s.st.ListFunCategsPage(ctx, store.PageRequest{Limit: store.MaxLimit, Cursor: q.Get("funs_cursor")})
	if err != nil {
		return err
	}
	v.Funs, v.FunLinks = funs.FunCategs, pageLinks{First: firstURL(r, "funs_cursor"), Next: nextURL(r, "funs_cursor", funs.Next)}

	sf, err := s.serverFilter(r, "cursor")
	if err != nil {
		return err
	}
	v.FunID, v.AppID, v.Q, v.IP, v.Name, v.OS = sf.FunID, sf.AppID, sf.Q, sf.IP, sf.Name, sf.OS
	v.Filtered = sf.FunID > 0 || sf.AppID > 0 || sf.Q != "" || sf.IP != "" || sf.Name != "" || sf.OS != ""
	if sf.FunID > 0 {
		f, err := s.st.GetFunCateg(ctx, sf.FunID)
		if err != nil {
			return err
		}
		v.FunName = f.Name
	}
	if sf.AppID > 0 {
		a, err := s.st.GetAppCateg(ctx, sf.AppID)
		if err != nil {
			return err
		}
		v.AppName = a.Name
	}
	apps, err := s.st.ListAppCategsPage(ctx, store.AppFilter{FunID: sf.FunID,
		PageRequest: store.PageRequest{Limit: store.DefaultLimit, Cursor: q.Get("apps_cursor")}})
	if err != nil {
		return err
	}
	v.Apps, v.AppLinks = apps.AppCategs, pageLinks{First: firstURL(r, "apps_cursor"), Next: nextURL(r, "apps_cursor", apps.Next)}

	servers, err := s.st.ListServersPage(ctx, sf)
	if err != nil {
		return err
	}
	v.Servers, v.SrvLinks = servers.Servers, pageLinks{First: firstURL(r, "cursor"), Next: nextURL(r, "cursor", servers.Next)}
	s.render(w, r, http.StatusOK, "inventory", "Inventory", v)
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
