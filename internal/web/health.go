package web

import (
	"context"
	"net/http"
	"time"

	"github.com/omserver/omserver-go/internal/relay"
)

// masterHealthReporter is a MasterClient that can say how each master is
// (relay.Client does): answering, and accepting this tier's relay login.
type masterHealthReporter interface {
	HealthAll(ctx context.Context) []relay.MasterHealth
}

// masterState is one master in /healthz: no error details, which may name
// files or addresses of the network behind the master.
type masterState struct {
	Addr     string `json:"addr"`
	Status   string `json:"status"` // ok | unavailable
	LoggedIn bool   `json:"logged_in"`
	Modules  int    `json:"modules,omitempty"`
}

// handleHealth reports the web tier, its database and the masters. A
// master counts as usable only when this tier can log in to it (Health
// alone needs no login and would say "ok" with a wrong relay password).
func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	out := map[string]any{"web": "ok", "database": "ok", "master": "ok", "master_name": s.cfg.MasterName, "tier": s.runs.TierID()}
	code := http.StatusOK
	if err := s.st.Ping(ctx); err != nil {
		s.log.Error().Err(err).Msg("health: database")
		out["database"] = "unavailable"
		code = http.StatusServiceUnavailable
	}
	if hr, ok := s.master.(masterHealthReporter); ok {
		usable := 0
		var states []masterState
		for _, h := range hr.HealthAll(ctx) {
			st := masterState{Addr: h.Addr, Status: "ok", LoggedIn: h.LoggedIn, Modules: h.Modules}
			if h.Err != nil {
				s.log.Warn().Err(h.Err).Str("master", h.Addr).Msg("health: master not usable")
				st.Status = "unavailable"
			} else {
				usable++
			}
			states = append(states, st)
		}
		out["masters"] = states
		if usable == 0 {
			out["master"] = "unavailable"
			code = http.StatusServiceUnavailable
		}
	} else if err := s.master.Health(ctx); err != nil {
		s.log.Warn().Err(err).Msg("health: master")
		out["master"] = "unavailable"
		code = http.StatusServiceUnavailable
	}
	if code != http.StatusOK {
		w.Header().Set("Retry-After", "5")
	}
	writeJSON(w, code, out)
}
