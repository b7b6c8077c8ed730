package web

import (
	"context"
	"net/http"
	"time"
)

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
