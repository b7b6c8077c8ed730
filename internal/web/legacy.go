package web

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

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

func legacyText(w http.ResponseWriter, body string) {
	writeText(w, http.StatusOK, body)
}

// legacyID reads a required positive integer query parameter.
func legacyID(w http.ResponseWriter, r *http.Request, name string) (int64, bool) {
	raw := r.URL.Query().Get(name)
	if raw == "" {
		writeText(w, http.StatusBadRequest, "missing query parameter "+name)
		return 0, false
	}
	id, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || id <= 0 {
		writeText(w, http.StatusBadRequest, "query parameter "+name+"="+strconv.Quote(clipRunes(raw, 40))+" is not a positive integer")
		return 0, false
	}
	return id, true
}

func (s *Server) legacyFunCateg(w http.ResponseWriter, r *http.Request) {
	list, err := s.st.ListFunCategs(r.Context())
	if err != nil {
		s.serverError(w, r, "list function categories", err)
		return
	}
	names := []string{legacyFunPlaceholder}
	ids := []string{"-1"}
	for _, c := range list {
		names = append(names, c.Name)
		ids = append(ids, strconv.FormatInt(c.ID, 10))
	}
	legacyText(w, strings.Join(names, ",")+"|"+strings.Join(ids, ","))
}

func (s *Server) legacyAppCateg(w http.ResponseWriter, r *http.Request) {
	funID, ok := legacyID(w, r, "fun_categId")
	if !ok {
		return
	}
	list, err := s.st.ListAppCategs(r.Context(), funID)
	if err != nil {
		s.serverError(w, r, "list application categories", err)
		return
	}
	names := []string{legacyAppPlaceholder}
	ids := []string{"-1"}
	for _, c := range list {
		names = append(names, c.Name)
		ids = append(ids, strconv.FormatInt(c.ID, 10))
	}
	legacyText(w, strings.Join(names, ",")+"|"+strings.Join(ids, ","))
}

func (s *Server) legacyServerList(w http.ResponseWriter, r *http.Request) {
	appID, ok := legacyID(w, r, "app_categId")
	if !ok {
		return
	}
	list, err := s.st.ListServers(r.Context(), appID)
	if err != nil {
		s.serverError(w, r, "list servers", err)
		return
	}
	legacyText(w, formatServerList(list))
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

func (s *Server) legacyModuleList(w http.ResponseWriter, r *http.Request) {
	list, err := s.st.ListModules(r.Context())
	if err != nil {
		s.serverError(w, r, "list modules", err)
		return
	}
	names := []string{legacyModulePlaceholder}
	ids := []string{"-1"}
	for _, m := range list {
		names = append(names, m.Name)
		ids = append(ids, strconv.FormatInt(m.ID, 10))
	}
	legacyText(w, strings.Join(names, ",")+"|"+strings.Join(ids, ","))
}

// legacyModuleInfo answers "id@@name@@caption@@extend" as stored. It is
// served as text/plain with nosniff, so the stored HTML in it is never
// interpreted by a browser.
func (s *Server) legacyModuleInfo(w http.ResponseWriter, r *http.Request) {
	id, ok := legacyID(w, r, "Module_Id")
	if !ok {
		return
	}
	m, err := s.st.GetModule(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		writeText(w, http.StatusNotFound, "module "+strconv.FormatInt(id, 10)+" does not exist")
		return
	}
	if err != nil {
		s.serverError(w, r, "get module", err)
		return
	}
	legacyText(w, strconv.FormatInt(m.ID, 10)+"@@"+m.Name+"@@"+m.Caption+"@@"+m.Extend)
}

// handleHealth reports the web tier, its database and the master.
func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	out := map[string]string{"web": "ok", "database": "ok", "master": "ok", "master_name": s.cfg.MasterName}
	code := http.StatusOK
	if err := s.st.Ping(ctx); err != nil {
		s.log.Error().Err(err).Msg("health: database")
		out["database"] = "unavailable"
		code = http.StatusServiceUnavailable
	}
	if err := s.master.Health(ctx); err != nil {
		s.log.Warn().Err(err).Msg("health: master")
		out["master"] = "unavailable"
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, out)
}
