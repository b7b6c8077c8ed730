package web

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/omserver/omserver-go/internal/runs"
	"github.com/omserver/omserver-go/internal/store"
	"github.com/omserver/omserver-go/internal/task"
)

// Runs: the dashboard that starts them, the API (start, list, read,
// cancel, live events) and the pages (history, one run).

func (s *Server) pageDashboard(w http.ResponseWriter, r *http.Request) error {
	s.render(w, r, http.StatusOK, "dashboard", "Dashboard", nil)
	return nil
}

// runRequest is the body of POST /api/v1/runs.
type runRequest struct {
	ModuleID int64             `json:"module_id"`
	Hosts    []string          `json:"hosts"`
	Params   map[string]string `json:"params"`
}

func (s *Server) apiRunCreate(w http.ResponseWriter, r *http.Request) error {
	var req runRequest
	if err := s.decodeJSON(r, &req); err != nil {
		return err
	}
	p := authOf(r)
	id, err := s.runs.Submit(r.Context(), runs.Request{ModuleID: req.ModuleID, Hosts: req.Hosts, Params: req.Params, User: p.Name})
	if err != nil {
		return err
	}
	s.audit(r, p.Name, "run.start", fmt.Sprintf("run %s module %d hosts %s", id, req.ModuleID, strings.Join(req.Hosts, ",")))
	w.Header().Set("Location", "/api/v1/runs/"+id)
	writeJSON(w, http.StatusAccepted, map[string]string{"run_id": id})
	return nil
}

// runIDParam validates a run id from the URL (our ids are 32 hex digits;
// older or imported ids may be any short token without odd characters).
func runIDParam(r *http.Request) (string, error) {
	id := urlParam(r, "id")
	if id == "" || len(id) > task.MaxRunIDBytes {
		return "", invalidf("run id %q is not valid", clipRunes(id, 80))
	}
	for _, c := range id {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '-' || c == '_') {
			return "", invalidf("run id %q is not valid", clipRunes(id, 80))
		}
	}
	return id, nil
}

// runView is a run with its results, for the API.
type runView struct {
	store.Run
	Results []task.HostResult `json:"results"`
}

// runOf reads the run the URL's {id} names, with its results.
func (s *Server) runOf(r *http.Request) (store.Run, []task.HostResult, error) {
	id, err := runIDParam(r)
	if err != nil {
		return store.Run{}, nil, err
	}
	return s.st.GetRun(r.Context(), id)
}

func (s *Server) apiRun(w http.ResponseWriter, r *http.Request) error {
	run, results, err := s.runOf(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, runView{Run: run, Results: results})
	return nil
}

func (s *Server) apiRuns(w http.ResponseWriter, r *http.Request) error {
	page, per, err := pageParam(r, 50)
	if err != nil {
		return err
	}
	f := store.RunFilter{Limit: per, Offset: (page - 1) * per, Username: r.URL.Query().Get("user"), Status: task.RunStatus(r.URL.Query().Get("status"))}
	if f.ModuleID, _, err = queryID(r, "module_id"); err != nil {
		return err
	}
	list, total, err := s.st.ListRuns(r.Context(), f)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"runs": list, "total": total, "page": page, "per_page": per})
	return nil
}

func (s *Server) apiRunCancel(w http.ResponseWriter, r *http.Request) error {
	id, err := runIDParam(r)
	if err != nil {
		return err
	}
	if err := s.runs.Cancel(r.Context(), id); err != nil {
		return err
	}
	s.audit(r, authOf(r).Name, "run.cancel", "run "+id)
	writeJSON(w, http.StatusAccepted, map[string]string{"run_id": id, "status": "cancelling"})
	return nil
}

// --- pages ---

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

func (s *Server) pageRuns(w http.ResponseWriter, r *http.Request) error {
	page, per, err := pageParam(r, 50)
	if err != nil {
		return err
	}
	list, total, err := s.st.ListRuns(r.Context(), store.RunFilter{Limit: per, Offset: (page - 1) * per})
	if err != nil {
		return err
	}
	s.render(w, r, http.StatusOK, "runs", "Runs", struct {
		Runs []store.Run
		pager
	}{list, newPager(page, per, total)})
	return nil
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

func (s *Server) pageRun(w http.ResponseWriter, r *http.Request) error {
	run, results, err := s.runOf(r)
	if err != nil {
		return err
	}
	s.render(w, r, http.StatusOK, "run", "Run "+run.ID, buildRunDetail(run, results))
	return nil
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
			if run.Status == task.RunRunning {
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

// --- live events (server-sent events) ---

// sseHeartbeat keeps proxies from closing an idle stream.
const sseHeartbeat = 15 * time.Second

// maxResyncs bounds how often one stream may fall behind and resynchronise
// from the database before it is ended (the browser then reconnects).
const maxResyncs = 50

// apiRunEvents streams a run as server-sent events: "run" (the run record),
// then "output" chunks while hosts print and one "result" per host (stored
// results first, then live ones), then "done" with the final status. A
// reconnecting client gets the whole stream again (output chunks only from
// then on); each host's result appears once per stream.
func (s *Server) apiRunEvents(w http.ResponseWriter, r *http.Request) error {
	id, err := runIDParam(r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	run, _, err := s.st.GetRun(ctx, id)
	if err != nil {
		return err
	}
	who := authOf(r)
	if !s.streamN.acquire(who.UserID, s.cfg.MaxStreamsPerUser) {
		w.Header().Set("Retry-After", "10")
		writeJSON(w, http.StatusTooManyRequests, apiError{Error: fmt.Sprintf(
			"you already have %d live run streams open (the limit); close some run pages or dashboards and try again", s.cfg.MaxStreamsPerUser)})
		return nil
	}
	defer s.streamN.release(who.UserID)
	st := &sseStream{w: w, rc: http.NewResponseController(w), sent: make(map[string]bool)}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	s.metrics.sseSubscribers.Inc()
	defer s.metrics.sseSubscribers.Dec()

	if !st.send("run", map[string]any{"id": run.ID, "module_id": run.ModuleID, "module_name": run.ModuleName, "hosts": run.Hosts, "status": run.Status}) {
		return nil
	}
	heartbeat := time.NewTicker(sseHeartbeat)
	defer heartbeat.Stop()
	for range maxResyncs {
		// Subscribe before reading the database: a result stored after the
		// read is then certainly published to us (results are stored, then
		// published), and one in both is sent once.
		sub, live := s.runs.Subscribe(id)
		cur, results, err := s.st.GetRun(ctx, id)
		if err != nil {
			if live {
				s.runs.Unsubscribe(id, sub)
			}
			s.log.Error().Err(err).Str("run_id", id).Msg("sse: reload run")
			return nil
		}
		if !st.results(results) {
			if live {
				s.runs.Unsubscribe(id, sub)
			}
			return nil
		}
		if !live {
			// Not running here: finished (or left by another process).
			st.send("done", runs.End{Status: cur.Status, Error: cur.Error})
			return nil
		}
		if !s.follow(r, id, sub, heartbeat, st) {
			return nil
		}
		// The subscriber fell behind and was dropped: resynchronise.
	}
	s.log.Warn().Str("run_id", id).Msg("sse: client kept falling behind; stream ended")
	return nil
}

// sseStream writes one client's events and remembers which hosts' results
// it has sent.
type sseStream struct {
	w    http.ResponseWriter
	rc   *http.ResponseController
	sent map[string]bool
}

func (st *sseStream) send(event string, v any) bool {
	b, err := json.Marshal(v)
	if err != nil {
		return false
	}
	if _, err := fmt.Fprintf(st.w, "event: %s\ndata: %s\n\n", event, b); err != nil {
		return false
	}
	return st.rc.Flush() == nil
}

// results sends the results of hosts not sent yet.
func (st *sseStream) results(list []task.HostResult) bool {
	for _, res := range list {
		if st.sent[res.Host.IP] {
			continue
		}
		st.sent[res.Host.IP] = true
		if !st.send("result", res) {
			return false
		}
	}
	return true
}

func (st *sseStream) heartbeat() bool {
	if _, err := io.WriteString(st.w, ": keep-alive\n\n"); err != nil {
		return false
	}
	return st.rc.Flush() == nil
}

// follow relays live events until the run ends (false: stream over) or the
// subscription lags (true: resynchronise).
func (s *Server) follow(r *http.Request, id string, sub *runs.Subscription, heartbeat *time.Ticker, st *sseStream) bool {
	for {
		select {
		case ev, ok := <-sub.C:
			if !ok {
				if end, ended := sub.End(); ended {
					st.send("done", end)
					return false
				}
				return sub.Lagged()
			}
			sent := true
			switch ev.Type {
			case task.EventResult:
				sent = st.results([]task.HostResult{*ev.Result})
			case task.EventOutput:
				// Output after a host's result cannot happen; a chunk for a
				// host already closed in this stream is skipped.
				if !st.sent[ev.Output.Host.IP] {
					sent = st.send("output", ev.Output)
				}
			}
			if !sent {
				s.runs.Unsubscribe(id, sub)
				return false
			}
		case <-heartbeat.C:
			if !st.heartbeat() {
				s.runs.Unsubscribe(id, sub)
				return false
			}
		case <-r.Context().Done():
			s.runs.Unsubscribe(id, sub)
			return false
		case <-s.streams.Done():
			s.runs.Unsubscribe(id, sub)
			return false
		}
	}
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
