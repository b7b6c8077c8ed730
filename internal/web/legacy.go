package web

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/omserver/omserver-go/internal/apperr"
	"github.com/omserver/omserver-go/internal/store"
)

// The original OMServer's read endpoints (Django views of the autoadmin
// app), answering in their exact text formats for the scripts that parse
// them: a list of names, "|", then the matching ids, each list joined by
// ","; the selects' placeholder comes first with id -1.
const (
	legacyFunPlaceholder    = "<-请选择功能类别->"
	legacyAppPlaceholder    = "<-请选择应用类别->"
	legacyModulePlaceholder = "请选择功能模块..."
)

// legacyID reads a required positive integer query parameter.
func legacyID(r *http.Request, name string) (int64, error) {
	raw := r.URL.Query().Get(name)
	if raw == "" {
		return 0, invalidf("missing query parameter %s", name)
	}
	id, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || id <= 0 {
		return 0, invalidf("query parameter %s=%s is not a positive integer", name, strconv.Quote(clipRunes(raw, 40)))
	}
	return id, nil
}

// legacyList answers "name,name|id,id" with the select's placeholder first.
func legacyList(w http.ResponseWriter, placeholder string, n int, item func(i int) (string, int64)) {
	names := make([]string, 1, n+1)
	ids := make([]string, 1, n+1)
	names[0], ids[0] = placeholder, "-1"
	for i := range n {
		name, id := item(i)
		names = append(names, name)
		ids = append(ids, strconv.FormatInt(id, 10))
	}
	writeText(w, http.StatusOK, strings.Join(names, ",")+"|"+strings.Join(ids, ","))
}

func (s *Server) legacyFunCateg(w http.ResponseWriter, r *http.Request) error {
	list, err := s.st.ListFunCategs(r.Context())
	if err != nil {
		return err
	}
	legacyList(w, legacyFunPlaceholder, len(list), func(i int) (string, int64) { return list[i].Name, list[i].ID })
	return nil
}

func (s *Server) legacyAppCateg(w http.ResponseWriter, r *http.Request) error {
	funID, err := legacyID(r, "fun_categId")
	if err != nil {
		return err
	}
	list, err := s.st.ListAppCategs(r.Context(), funID)
	if err != nil {
		return err
	}
	legacyList(w, legacyAppPlaceholder, len(list), func(i int) (string, int64) { return list[i].Name, list[i].ID })
	return nil
}

func (s *Server) legacyServerList(w http.ResponseWriter, r *http.Request) error {
	appID, err := legacyID(r, "app_categId")
	if err != nil {
		return err
	}
	list, err := s.st.ListServers(r.Context(), appID)
	if err != nil {
		return err
	}
	writeText(w, http.StatusOK, formatServerList(list))
	return nil
}

// formatServerList renders "ip,ip|ip*name,ip*name".
func formatServerList(list []store.Server) string {
	var b strings.Builder
	for i, sv := range list {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(sv.IP)
	}
	b.WriteByte('|')
	for i, sv := range list {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(sv.IP)
		b.WriteByte('*')
		b.WriteString(sv.Name)
	}
	return b.String()
}

func (s *Server) legacyModuleList(w http.ResponseWriter, r *http.Request) error {
	list, err := s.st.ListModules(r.Context())
	if err != nil {
		return err
	}
	legacyList(w, legacyModulePlaceholder, len(list), func(i int) (string, int64) { return list[i].Name, list[i].ID })
	return nil
}

// legacyModuleInfo answers "id@@name@@caption@@extend" as stored. It is
// served as text/plain with nosniff, so the stored HTML in it is never
// interpreted by a browser.
func (s *Server) legacyModuleInfo(w http.ResponseWriter, r *http.Request) error {
	id, err := legacyID(r, "Module_Id")
	if err != nil {
		return err
	}
	m, err := s.st.GetModule(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		return apperr.Errorf(apperr.NotFound, "module %d does not exist", id)
	}
	if err != nil {
		return err
	}
	writeText(w, http.StatusOK, strconv.FormatInt(m.ID, 10)+"@@"+m.Name+"@@"+m.Caption+"@@"+m.Extend)
	return nil
}
