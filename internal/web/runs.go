package web

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
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
	Rollout  *rolloutRequest   `json:"rollout"`
}

// rolloutRequest narrows the module's rollout: smaller batches, a lower
// failure threshold, a canary, a longer pause (a wider request is
// narrowed to the module's by the master).
type rolloutRequest struct {
	BatchSize         int    `json:"batch_size"`
	BatchPercent      int    `json:"batch_percent"`
	Canary            bool   `json:"canary"`
	CanaryWait        string `json:"canary_wait"` // "2m"
	MaxFailures       int    `json:"max_failures"`
	MaxFailurePercent int    `json:"max_failure_percent"`
}

func (r *rolloutRequest) rollout() (*task.Rollout, error) {
	if r == nil {
		return nil, nil
	}
	out := &task.Rollout{BatchSize: r.BatchSize, BatchPercent: r.BatchPercent, Canary: r.Canary,
		MaxFailures: r.MaxFailures, MaxFailurePercent: r.MaxFailurePercent}
	if r.CanaryWait != "" {
		d, err := time.ParseDuration(r.CanaryWait)
		if err != nil {
			return nil, invalidf("rollout canary_wait %q is not a duration like 2m", clipRunes(r.CanaryWait, 40))
		}
		out.CanaryWait = d
	}
	return out, nil
}

func (s *Server) apiRunCreate(w http.ResponseWriter, r *http.Request) error {
	var req runRequest
	if err := s.decodeJSON(r, &req); err != nil {
		return err
	}
	p := authOf(r)
	ro, err := req.Rollout.rollout()
	if err != nil {
		return err
	}
	id, err := s.runs.Submit(r.Context(), runs.Request{ModuleID: req.ModuleID, Hosts: req.Hosts, Params: req.Params, User: p.Name, Role: p.Role, Rollout: ro})
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

// runView is a run for the API: its record and counts, and the results of
// its first hosts (in the run's order); HostsNext pages through the rest at
// /api/v1/runs/{id}/hosts.
type runView struct {
	store.Run
	Results   []task.HostResult `json:"results"`
	HostsNext *string           `json:"hosts_next"`
}

func (s *Server) apiRun(w http.ResponseWriter, r *http.Request) error {
	id, err := runIDParam(r)
	if err != nil {
		return err
	}
	p, err := pageRequest(r, store.DefaultLimit)
	if err != nil {
		return err
	}
	run, err := s.st.GetRunInfo(r.Context(), id)
	if err != nil {
		return err
	}
	hosts, err := s.st.ListRunHosts(r.Context(), id, store.RunHostFilter{Limit: p.Limit})
	if err != nil {
		return err
	}
	v := runView{Run: run, Results: []task.HostResult{}}
	for _, h := range hosts.Hosts {
		if h.Result != nil {
			v.Results = append(v.Results, *h.Result)
		}
	}
	if hosts.Next != "" {
		q := url.Values{"cursor": {hosts.Next}, "limit": {strconv.Itoa(p.Limit)}}
		v.HostsNext = jsonNext("/api/v1/runs/" + id + "/hosts?" + q.Encode())
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

// hostItem is one host of a run in the API: its position in the run, its
// status (a result's, or "pending" while the run goes on, "noresult" once
// it ended without one) and its result, if any.
type hostItem struct {
	Pos    int              `json:"pos"`
	IP     string           `json:"ip"`
	Name   string           `json:"name,omitempty"`
	Status string           `json:"status"`
	Result *task.HostResult `json:"result"`
}

// hostStatus is the status shown for a host of run.
func hostStatus(run store.Run, h store.RunHost) string {
	switch {
	case h.Result != nil:
		return string(h.Result.Status)
	case run.Status == task.RunRunning:
		return "pending"
	}
	return store.NoResult
}

// runHostFilter reads ?status= (a host status, "noresult", or "pending"
// for the same) and the page.
func runHostFilter(r *http.Request) (store.RunHostFilter, error) {
	p, err := pageRequest(r, store.DefaultLimit)
	if err != nil {
		return store.RunHostFilter{}, err
	}
	st := queryText(r, "status")
	if st == "pending" {
		st = store.NoResult
	}
	return store.RunHostFilter{Limit: p.Limit, Cursor: p.Cursor, Status: st}, nil
}

func (s *Server) apiRunHosts(w http.ResponseWriter, r *http.Request) error {
	id, err := runIDParam(r)
	if err != nil {
		return err
	}
	f, err := runHostFilter(r)
	if err != nil {
		return err
	}
	run, err := s.st.GetRunInfo(r.Context(), id)
	if err != nil {
		return err
	}
	page, err := s.st.ListRunHosts(r.Context(), id, f)
	if err != nil {
		return err
	}
	items := make([]hostItem, 0, len(page.Hosts))
	for _, h := range page.Hosts {
		items = append(items, hostItem{Pos: h.Pos, IP: h.Host.IP, Name: h.Host.Name, Status: hostStatus(run, h), Result: h.Result})
	}
	writeJSON(w, http.StatusOK, map[string]any{"hosts": items, "next": jsonNext(nextURL(r, "cursor", page.Next))})
	return nil
}

// runFilter reads the run list's filters: ?user=, ?module_id=, ?status=
// (a run status), ?host= (address or hostname), ?from= and ?to= (dates or
// times, UTC), and the page.
func runFilter(r *http.Request) (store.RunFilter, error) {
	p, err := pageRequest(r, store.DefaultRunLimit)
	if err != nil {
		return store.RunFilter{}, err
	}
	f := store.RunFilter{Limit: p.Limit, Cursor: p.Cursor, Username: queryText(r, "user"),
		Status: task.RunStatus(queryText(r, "status")), Host: queryText(r, "host")}
	if f.ModuleID, _, err = queryID(r, "module_id"); err != nil {
		return store.RunFilter{}, err
	}
	if f.From, err = dateParam(r, "from", false); err != nil {
		return store.RunFilter{}, err
	}
	if f.To, err = dateParam(r, "to", true); err != nil {
		return store.RunFilter{}, err
	}
	return f, nil
}

func (s *Server) apiRuns(w http.ResponseWriter, r *http.Request) error {
	f, err := runFilter(r)
	if err != nil {
		return err
	}
	page, err := s.st.ListRuns(r.Context(), f)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"runs": page.Runs, "next": jsonNext(nextURL(r, "cursor", page.Next))})
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

// runLine is a run in the history table.
type runLine struct {
	store.Run
	Counts string // "2 ok, 1 failed"
}

// hostStatuses are the result statuses, in the order the pages list them.
var hostStatuses = []task.Status{task.StatusOK, task.StatusFailed, task.StatusUnreachable, task.StatusTimeout, task.StatusCancelled, task.StatusSkipped}

// countsText is a run's outcome at a glance: its recorded results per
// status, and the hosts still without one.
func countsText(run store.Run) string {
	var parts []string
	seen := 0
	for _, st := range hostStatuses {
		if n := run.Summary[st]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, st))
			seen += n
		}
	}
	if rest := run.HostCount - seen; rest > 0 {
		word := "no result"
		if run.Status == task.RunRunning {
			word = "pending"
		}
		parts = append(parts, fmt.Sprintf("%d %s", rest, word))
	}
	return strings.Join(parts, ", ")
}

func (s *Server) pageRuns(w http.ResponseWriter, r *http.Request) error {
	f, err := runFilter(r)
	if err != nil {
		return err
	}
	page, err := s.st.ListRuns(r.Context(), f)
	if err != nil {
		return err
	}
	lines := make([]runLine, 0, len(page.Runs))
	for _, run := range page.Runs {
		lines = append(lines, runLine{Run: run, Counts: countsText(run)})
	}
	q := r.URL.Query()
	s.render(w, r, http.StatusOK, "runs", "Runs", struct {
		Runs                                 []runLine
		Links                                pageLinks
		User, Module, Status, Host, From, To string
		Statuses                             []task.RunStatus
	}{lines, pageLinks{First: firstURL(r, "cursor"), Next: nextURL(r, "cursor", page.Next)},
		f.Username, q.Get("module_id"), string(f.Status), f.Host, q.Get("from"), q.Get("to"),
		[]task.RunStatus{task.RunRunning, task.RunDone, task.RunFailed, task.RunCancelled, task.RunInterrupted}})
	return nil
}

type paramKV struct{ Name, Value string }

type hostLine struct {
	IP, Name, Status, StatusText, Error, Duration string
	ExitCode                                      int
	Stdout, Stderr                                string
	StdoutTruncated, StderrTruncated              bool
}

// statusLink is one choice of the run page's host filter, with its count.
type statusLink struct {
	Status, Label string
	N             int
	URL           string
	Current       bool
}

type runDetail struct {
	store.Run
	User     string
	Started  time.Time
	Finished *time.Time
	Params   []paramKV
	Hosts    []hostLine
	Filters  []statusLink
	Links    pageLinks
	// Paged is true when Hosts is not every host of the run (a filter, or
	// more pages): live results of other hosts do not belong on this page.
	Paged bool
}

func (s *Server) pageRun(w http.ResponseWriter, r *http.Request) error {
	id, err := runIDParam(r)
	if err != nil {
		return err
	}
	f, err := runHostFilter(r)
	if err != nil {
		return err
	}
	run, err := s.st.GetRunInfo(r.Context(), id)
	if err != nil {
		return err
	}
	page, err := s.st.ListRunHosts(r.Context(), id, f)
	if err != nil {
		return err
	}
	d := buildRunDetail(run, page.Hosts)
	d.Links = pageLinks{First: firstURL(r, "cursor"), Next: nextURL(r, "cursor", page.Next)}
	d.Paged = f.Status != "" || f.Cursor != "" || page.Next != ""
	d.Filters = runFilters(r, run, f.Status)
	s.render(w, r, http.StatusOK, "run", "Run "+run.ID, d)
	return nil
}

// runFilters are the host filter's choices: all hosts, each status that
// has results, and the hosts without one.
func runFilters(r *http.Request, run store.Run, current string) []statusLink {
	link := func(status string) string {
		q := url.Values{}
		if status != "" {
			q.Set("status", status)
		}
		if lim := r.URL.Query().Get("limit"); lim != "" {
			q.Set("limit", lim)
		}
		if len(q) == 0 {
			return r.URL.Path
		}
		return r.URL.Path + "?" + q.Encode()
	}
	out := []statusLink{{Status: "", Label: "all", N: run.HostCount, URL: link(""), Current: current == ""}}
	seen := 0
	for _, st := range hostStatuses {
		n := run.Summary[st]
		seen += n
		if n > 0 || current == string(st) {
			out = append(out, statusLink{Status: string(st), Label: string(st), N: n, URL: link(string(st)), Current: current == string(st)})
		}
	}
	if rest := run.HostCount - seen; rest > 0 || current == store.NoResult {
		label := "no result"
		if run.Status == task.RunRunning {
			label = "pending"
		}
		out = append(out, statusLink{Status: store.NoResult, Label: label, N: max(rest, 0), URL: link(store.NoResult), Current: current == store.NoResult})
	}
	return out
}

// buildRunDetail lists one page of the run's hosts in the run's order,
// each with its result or, when it has none, "no result" (or "waiting"
// while the run goes on).
func buildRunDetail(run store.Run, hosts []store.RunHost) runDetail {
	d := runDetail{Run: run, User: run.Username, Started: run.CreatedAt, Finished: run.FinishedAt}
	for k, v := range run.Params {
		d.Params = append(d.Params, paramKV{k, v})
	}
	sort.Slice(d.Params, func(i, j int) bool { return d.Params[i].Name < d.Params[j].Name })
	for _, h := range hosts {
		res := h.Result
		if res == nil {
			line := hostLine{IP: h.Host.IP, Name: h.Host.Name, Status: "noresult", StatusText: "no result", ExitCode: -1}
			if run.Status == task.RunRunning {
				line.Status, line.StatusText = "pending", "waiting"
			}
			d.Hosts = append(d.Hosts, line)
			continue
		}
		line := hostLine{
			IP: h.Host.IP, Name: h.Host.Name, Status: string(res.Status), StatusText: string(res.Status), Error: res.Error,
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
