package web

import (
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/omserver/omserver-go/internal/apperr"

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
// line as name,wip,lip,os, all into one application category. DryRun
// answers the preview without changing anything.
type importBody struct {
	AppID  int64  `json:"app_id"`
	CSV    string `json:"csv"`
	DryRun bool   `json:"dry_run,omitempty"`
}

// importRow is one line of an import preview.
type importRow struct {
	Line   int    `json:"line"`
	Change string `json:"change"` // insert, update, move (to another application), same
	IP     string `json:"ip"`
	Name   string `json:"name"`
	Before string `json:"before,omitempty"` // the server as it is now, for update and move
}

// importPreview is what an import would do, line by line.
type importPreview struct {
	Inserts int         `json:"inserts"`
	Updates int         `json:"updates"`
	Moves   int         `json:"moves"`
	Same    int         `json:"same"`
	Rows    []importRow `json:"rows"`
	// Digest identifies this preview (the lines and the servers as they
	// were): applying needs it, so nothing is applied that was not shown.
	Digest string `json:"digest"`
}

// previewImport parses the CSV and compares it with the inventory.
func (s *Server) previewImport(r *http.Request, b importBody) ([]store.Server, importPreview, error) {
	if b.AppID <= 0 {
		return nil, importPreview{}, invalidf("app_id must be a positive application category id")
	}
	if _, err := s.st.GetAppCateg(r.Context(), b.AppID); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, importPreview{}, invalidf("application category %d does not exist", b.AppID)
		}
		return nil, importPreview{}, err
	}
	servers, lines, err := parseServerCSVLines(b.CSV, b.AppID)
	if err != nil {
		return nil, importPreview{}, err
	}
	ips := make([]string, len(servers))
	for i, sv := range servers {
		ips[i] = sv.IP
	}
	existing, err := s.st.FindServers(r.Context(), ips)
	if err != nil {
		return nil, importPreview{}, err
	}
	apps := map[int64]string{}
	appName := func(id int64) string {
		if n, ok := apps[id]; ok {
			return n
		}
		n := fmt.Sprintf("#%d", id)
		if a, err := s.st.GetAppCateg(r.Context(), id); err == nil {
			n = a.Name
		}
		apps[id] = n
		return n
	}
	var p importPreview
	h := sha256.New()
	fmt.Fprintf(h, "app %d\n", b.AppID)
	for i, sv := range servers {
		row := importRow{Line: lines[i], IP: sv.IP, Name: sv.Name}
		old, found := existing[sv.IP]
		switch {
		case !found:
			row.Change = "insert"
			p.Inserts++
		case old.AppID != sv.AppID:
			row.Change = "move"
			p.Moves++
		case old.Name != sv.Name || old.WIP != sv.WIP || old.OS != sv.OS:
			row.Change = "update"
			p.Updates++
		default:
			row.Change = "same"
			p.Same++
		}
		if found && row.Change != "same" {
			row.Before = fmt.Sprintf("%s, %s, %s in %s", old.Name, old.WIP, old.OS, appName(old.AppID))
		}
		p.Rows = append(p.Rows, row)
		fmt.Fprintf(h, "%q %q %q %q > %s %q\n", sv.IP, sv.Name, sv.WIP, sv.OS, row.Change, row.Before)
	}
	p.Digest = hex.EncodeToString(h.Sum(nil))[:32]
	return servers, p, nil
}

// errStalePreview: the inventory or the lines changed since the preview
// the admin saw; they get the new one instead of an import.
var errStalePreview = apperr.New(apperr.Conflict, "the lines or the inventory changed since the preview: check the new preview and apply again")

// importServers applies an import whose preview has digest (empty: apply
// without a preview, as scripts do) all or nothing.
func (s *Server) importServers(r *http.Request, b importBody, digest string) (int, int, importPreview, error) {
	servers, p, err := s.previewImport(r, b)
	if err != nil {
		return 0, 0, p, err
	}
	if digest != "" && digest != p.Digest {
		return 0, 0, p, errStalePreview
	}
	ins, upd, err := s.st.ImportServers(r.Context(), servers)
	if err != nil {
		if errors.Is(err, store.ErrInvalid) || errors.Is(err, store.ErrConflict) {
			return 0, 0, p, invalidf("nothing imported: %s", err)
		}
		return 0, 0, p, err
	}
	s.audit(r, authOf(r).Name, "server.import", fmt.Sprintf("%d inserted, %d updated (%d moved from another application) into app %d", ins, upd, p.Moves, b.AppID))
	return ins, upd, p, nil
}

// importColumns names the fields of an import line, for messages and the
// optional header line.
var importColumns = []string{"name", "wip", "lip", "os"}

// parseServerCSV reads servers as CSV (RFC 4180, as spreadsheets export
// it: quoted fields may hold commas and quotes), one per line as
// name,wip,lip,os; see parseServerCSVLines.
func parseServerCSV(text string, appID int64) ([]store.Server, error) {
	out, _, err := parseServerCSVLines(text, appID)
	return out, err
}

// parseServerCSVLines also returns each server's line number. A UTF-8 byte
// order mark, blank lines, lines starting with # and a first line that is
// the header name,wip,lip,os are skipped; every error names its line and
// nothing is imported.
func parseServerCSVLines(text string, appID int64) ([]store.Server, []int, error) {
	text = strings.TrimPrefix(text, "\uFEFF")
	cr := csv.NewReader(strings.NewReader(text))
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	cr.Comment = '#'
	cr.ReuseRecord = true
	var out []store.Server
	var lines []int
	lineOf := map[string]int{}
	for first := true; ; first = false {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				return nil, nil, invalidf("nothing imported: line %d: %s", pe.Line, pe.Err)
			}
			return nil, nil, invalidf("nothing imported: %s", err)
		}
		n, _ := cr.FieldPos(0)
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue
		}
		if len(rec) != 4 {
			return nil, nil, invalidf("nothing imported: line %d: %d fields, want 4 (%s); quote a field that holds a comma", n, len(rec), strings.Join(importColumns, ","))
		}
		f := make([]string, 4)
		for j := range rec {
			f[j] = strings.TrimSpace(rec[j])
		}
		if first && strings.EqualFold(strings.Join(f, ","), strings.Join(importColumns, ",")) {
			continue
		}
		sv := store.Server{Name: f[0], WIP: f[1], IP: f[2], OS: f[3], AppID: appID}
		if err := store.CheckServer(sv); err != nil {
			return nil, nil, invalidf("nothing imported: line %d: %s", n, err)
		}
		if prev, dup := lineOf[sv.IP]; dup {
			return nil, nil, invalidf("nothing imported: line %d: address %s is already on line %d", n, sv.IP, prev)
		}
		lineOf[sv.IP] = n
		out = append(out, sv)
		lines = append(lines, n)
		if len(out) > store.MaxImport {
			return nil, nil, invalidf("nothing imported: more than %d servers", store.MaxImport)
		}
	}
	if len(out) == 0 {
		return nil, nil, invalidf("nothing imported: no server lines (want %s per line)", strings.Join(importColumns, ","))
	}
	return out, lines, nil
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
	if b.DryRun {
		_, p, err := s.previewImport(r, b)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, p)
		return nil
	}
	ins, upd, p, err := s.importServers(r, b, "")
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]int{"inserted": ins, "updated": upd, "moved": p.Moves})
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
	// The admin's forms, as given when refused, and an import's preview.
	ServerForm serverForm
	ImportForm importForm
}

// serverForm is the add-or-update form, as given (re-shown when refused).
type serverForm struct {
	AppID              int64
	Name, WIP, LIP, OS string
	Error              string
}

// importForm is the bulk import form, as given, with its preview.
type importForm struct {
	AppID   int64
	CSV     string
	Error   string
	Preview *importPreview
}

func (s *Server) inventoryData(r *http.Request) (inventoryPage, error) {
	ctx := r.Context()
	var v inventoryPage
	q := r.URL.Query()
	funs, err := s.st.ListFunCategsPage(ctx, store.PageRequest{Limit: store.MaxLimit, Cursor: q.Get("funs_cursor")})
	if err != nil {
		return inventoryPage{}, err
	}
	v.Funs, v.FunLinks = funs.FunCategs, pageLinks{First: firstURL(r, "funs_cursor"), Next: nextURL(r, "funs_cursor", funs.Next)}

	sf, err := s.serverFilter(r, "cursor")
	if err != nil {
		return inventoryPage{}, err
	}
	v.FunID, v.AppID, v.Q, v.IP, v.Name, v.OS = sf.FunID, sf.AppID, sf.Q, sf.IP, sf.Name, sf.OS
	v.Filtered = sf.FunID > 0 || sf.AppID > 0 || sf.Q != "" || sf.IP != "" || sf.Name != "" || sf.OS != ""
	if sf.FunID > 0 {
		f, err := s.st.GetFunCateg(ctx, sf.FunID)
		if err != nil {
			return inventoryPage{}, err
		}
		v.FunName = f.Name
	}
	if sf.AppID > 0 {
		a, err := s.st.GetAppCateg(ctx, sf.AppID)
		if err != nil {
			return inventoryPage{}, err
		}
		v.AppName = a.Name
	}
	apps, err := s.st.ListAppCategsPage(ctx, store.AppFilter{FunID: sf.FunID,
		PageRequest: store.PageRequest{Limit: store.DefaultLimit, Cursor: q.Get("apps_cursor")}})
	if err != nil {
		return inventoryPage{}, err
	}
	v.Apps, v.AppLinks = apps.AppCategs, pageLinks{First: firstURL(r, "apps_cursor"), Next: nextURL(r, "apps_cursor", apps.Next)}

	servers, err := s.st.ListServersPage(ctx, sf)
	if err != nil {
		return inventoryPage{}, err
	}
	v.Servers, v.SrvLinks = servers.Servers, pageLinks{First: firstURL(r, "cursor"), Next: nextURL(r, "cursor", servers.Next)}
	return v, nil
}

func (s *Server) pageInventory(w http.ResponseWriter, r *http.Request) error {
	d, err := s.inventoryData(r)
	if err != nil {
		return err
	}
	s.render(w, r, http.StatusOK, "inventory", "title.inventory", d)
	return nil
}

// inventoryAgain shows the inventory page again with a refused form's
// input and why; an unexpected failure is returned as it is.
func (s *Server) inventoryAgain(w http.ResponseWriter, r *http.Request, status int, fill func(*inventoryPage)) error {
	d, err := s.inventoryData(r)
	if err != nil {
		return err
	}
	fill(&d)
	s.renderWith(w, r, status, "inventory", "title.inventory", d, "", "")
	return nil
}

// formAppID reads app_id leniently: a refused form is re-shown, so a bad
// value becomes 0 (no application chosen) and the check says why.
func formAppID(r *http.Request) int64 {
	id, _ := strconv.ParseInt(formValue(r, "app_id"), 10, 64)
	return id
}

// pageServerSave adds or updates one server; a refused form comes back with
// the input and the reason.
func (s *Server) pageServerSave(w http.ResponseWriter, r *http.Request) error {
	if err := s.parseForm(r); err != nil {
		return err
	}
	f := serverForm{AppID: formAppID(r), Name: formValue(r, "name"), WIP: formValue(r, "wip"), LIP: formValue(r, "lip"), OS: formValue(r, "os")}
	err := s.formServerSave(r)
	if err == nil {
		http.Redirect(w, r, "/inventory?ok=saved", http.StatusSeeOther)
		return nil
	}
	if apperr.KindOf(err) == apperr.Internal {
		return err
	}
	f.Error = s.tr(r, "form.not_saved") + " " + err.Error()
	return s.inventoryAgain(w, r, statusOf(apperr.KindOf(err)), func(d *inventoryPage) { d.ServerForm = f })
}

// pageImport previews an import (action=preview) or applies the previewed
// one (action=apply, with the preview's digest). The form always comes
// back with its input; applying something other than what was previewed
// shows the new preview instead.
func (s *Server) pageImport(w http.ResponseWriter, r *http.Request) error {
	if err := s.parseForm(r); err != nil {
		return err
	}
	b := importBody{AppID: formAppID(r), CSV: r.PostForm.Get("csv")}
	f := importForm{AppID: b.AppID, CSV: b.CSV}
	again := func(status int, err error, p *importPreview) error {
		if err != nil && apperr.KindOf(err) == apperr.Internal {
			return err
		}
		if err != nil {
			f.Error = err.Error()
		}
		f.Preview = p
		return s.inventoryAgain(w, r, status, func(d *inventoryPage) { d.ImportForm = f })
	}
	if r.PostForm.Get("action") != "apply" {
		_, p, err := s.previewImport(r, b)
		if err != nil {
			return again(statusOf(apperr.KindOf(err)), err, nil)
		}
		return again(http.StatusOK, nil, &p)
	}
	digest := r.PostForm.Get("preview_digest")
	if digest == "" {
		return again(http.StatusBadRequest, invalidf("preview the import first: nothing is applied unseen"), nil)
	}
	_, _, p, err := s.importServers(r, b, digest)
	if errors.Is(err, errStalePreview) {
		return again(http.StatusConflict, err, &p)
	}
	if err != nil {
		return again(statusOf(apperr.KindOf(err)), err, nil)
	}
	http.Redirect(w, r, "/inventory?ok=imported", http.StatusSeeOther)
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
			if apperr.KindOf(err) == apperr.Internal {
				return err
			}
			// Refused: the inventory page again, saying why (not a bare
			// error page).
			d, derr := s.inventoryData(r)
			if derr != nil {
				return derr
			}
			s.renderWith(w, r, statusOf(apperr.KindOf(err)), "inventory", "title.inventory", d, "", s.tr(r, "form.not_saved")+" "+err.Error())
			return nil
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
