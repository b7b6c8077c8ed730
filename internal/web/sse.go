package web

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/omserver/omserver-go/internal/task"
)

// sseHeartbeat keeps proxies from closing an idle stream.
const sseHeartbeat = 15 * time.Second

// maxResyncs bounds how often one stream may fall behind and resynchronise
// from the database before it is ended (the browser then reconnects).
const maxResyncs = 50

// apiRunEvents streams a run as server-sent events: "run" (the run record),
// then one "result" per host (stored results first, then live ones), then
// "done" with the final status. A reconnecting client gets the whole
// stream again; each host appears once per stream.
func (s *Server) apiRunEvents(w http.ResponseWriter, r *http.Request) {
	id, err := runIDParam(r)
	if err != nil {
		writeJSONError(w, http.StatusBadRequest, err.Error())
		return
	}
	ctx := r.Context()
	run, _, err := s.st.GetRun(ctx, id)
	if err != nil {
		s.apiStoreError(w, r, "run", err)
		return
	}
	who := authOf(r)
	if !s.streamN.acquire(who.UserID, s.cfg.MaxStreamsPerUser) {
		w.Header().Set("Retry-After", "10")
		writeJSONError(w, http.StatusTooManyRequests, fmt.Sprintf(
			"you already have %d live run streams open (the limit); close some run pages or dashboards and try again", s.cfg.MaxStreamsPerUser))
		return
	}
	defer s.streamN.release(who.UserID)
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	s.metrics.sseSubscribers.Inc()
	defer s.metrics.sseSubscribers.Dec()

	send := func(event string, v any) bool {
		b, err := json.Marshal(v)
		if err != nil {
			return false
		}
		if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, b); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	if !send("run", map[string]any{"id": run.ID, "module_id": run.ModuleID, "module_name": run.ModuleName, "hosts": run.Hosts, "status": run.Status}) {
		return
	}

	sent := make(map[string]bool)
	sendNew := func(results []task.HostResult) bool {
		for _, res := range results {
			if sent[res.Host.IP] {
				continue
			}
			sent[res.Host.IP] = true
			if !send("result", res) {
				return false
			}
		}
		return true
	}
	heartbeat := time.NewTicker(sseHeartbeat)
	defer heartbeat.Stop()

	for range maxResyncs {
		// Subscribe before reading the database: a result stored after the
		// read is then certainly published to us (results are stored, then
		// published), and one in both is sent once.
		ar := s.runs.get(id)
		var sub *subscription
		if ar != nil {
			sub = ar.broker.subscribe()
		}
		cur, results, err := s.st.GetRun(ctx, id)
		if err != nil {
			if sub != nil {
				ar.broker.unsubscribe(sub)
			}
			s.log.Error().Err(err).Str("run_id", id).Msg("sse: reload run")
			return
		}
		if !sendNew(results) {
			if sub != nil {
				ar.broker.unsubscribe(sub)
			}
			return
		}
		if sub == nil {
			// Not running here: finished (or left by another process).
			send("done", runEnd{Status: cur.Status, Error: cur.Error})
			return
		}
		if !s.follow(ctx, ar, sub, heartbeat, sendNew, send, w) {
			return
		}
		// The subscriber fell behind and was dropped: resynchronise.
	}
	s.log.Warn().Str("run_id", id).Msg("sse: client kept falling behind; stream ended")
}

// streamCounter counts the open event streams per user: each holds a
// connection and a goroutine for as long as a run lasts, so one user (or
// one leaked token) must not be able to open them without bound.
type streamCounter struct {
	mu sync.Mutex
	n  map[int64]int
}

func (c *streamCounter) acquire(user int64, max int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = make(map[int64]int)
	}
	if c.n[user] >= max {
		return false
	}
	c.n[user]++
	return true
}

func (c *streamCounter) release(user int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n[user] <= 1 {
		delete(c.n, user)
		return
	}
	c.n[user]--
}

// follow relays live results until the run ends (false: stream over) or the
// subscription lags (true: resynchronise).
func (s *Server) follow(ctx interface{ Done() <-chan struct{} }, ar *activeRun, sub *subscription, heartbeat *time.Ticker,
	sendNew func([]task.HostResult) bool, send func(string, any) bool, w http.ResponseWriter) bool {
	for {
		select {
		case res, ok := <-sub.C:
			if !ok {
				if end, ended := sub.End(); ended {
					send("done", end)
					return false
				}
				return sub.Lagged()
			}
			if !sendNew([]task.HostResult{res}) {
				ar.broker.unsubscribe(sub)
				return false
			}
		case <-heartbeat.C:
			if _, err := io.WriteString(w, ": keep-alive\n\n"); err != nil {
				ar.broker.unsubscribe(sub)
				return false
			}
			if err := http.NewResponseController(w).Flush(); err != nil {
				ar.broker.unsubscribe(sub)
				return false
			}
		case <-ctx.Done():
			ar.broker.unsubscribe(sub)
			return false
		case <-s.streams.Done():
			ar.broker.unsubscribe(sub)
			return false
		}
	}
}
