package web

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/omserver/omserver-go/internal/apperr"
	"github.com/omserver/omserver-go/internal/runs"
	"github.com/omserver/omserver-go/internal/store"
	"github.com/omserver/omserver-go/internal/task"
)

// Runs: the dashboard that starts them, the API (start, list, read,
// cancel, live events) and the pages (history, one run).

func (s *Server) pageDashboard(w http.ResponseWriter, r *http.Request) error {
	s.render(w, r, http.StatusOK, "dashboard", "title.dashboard", nil)
	return nil
}

// runRequest is the body of POST /api/v1/runs: the module, its parameters
// and the targets (listed servers, and/or whole applications and function
// categories). ConfirmedHosts is the host count the operator typed, for
// runs that need it; DryRun validates and answers the plan (module,
// parameters, every host, whether a typed confirmation is needed) without
// starting anything.
type runRequest struct {
	ModuleID       int64             `json:"module_id"`
	Hosts          []string          `json:"hosts"`
	AppIDs         []int64           `json:"app_ids,omitempty"`
	FunIDs         []int64           `json:"fun_ids,omitempty"`
	Params         map[string]string `json:"params"`
	ConfirmedHosts int               `json:"confirmed_hosts,omitempty"`
	DryRun         bool              `json:"dry_run,omitempty"`
	Rollout        *rolloutRequest   `json:"rollout,omitempty"`
}

// rolloutRequest narrows the module's rollout: smaller batches, a lower
// failure threshold, a canary, a longer pause (a wider request is
// narrowed to the module's by the master).
type rolloutRequest struct {
	BatchSize         int    `json:"batch_size"`
	BatchPercent      int    `json:"batch_percent"`
	Canary            bool   `json:"canary"`
	CanaryWait        string `json:"canary_wait"`    // "2m"
	CanaryConfirm     bool   `json:"canary_confirm"` // pause until an operator continues
	MaxFailures       int    `json:"max_failures"`
	MaxFailurePercent int    `json:"max_failure_percent"`
}

func (r *rolloutRequest) rollout() (*task.Rollout, error) {
	if r == nil {
		return nil, nil
	}
	out := &task.Rollout{BatchSize: r.BatchSize, BatchPercent: r.BatchPercent, Canary: r.Canary || r.CanaryConfirm,
		CanaryConfirm: r.CanaryConfirm, MaxFailures: r.MaxFailures, MaxFailurePercent: r.MaxFailurePercent}
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
	return s.startRun(w, r, req)
}

// startRun previews (dry run) or starts a run and answers for the API.
func (s *Server) startRun(w http.ResponseWriter, r *http.Request, req runRequest) error {
	p := authOf(r)
	ro, err := req.Rollout.rollout()
	if err != nil {
		return err
	}
	rr := runs.Request{ModuleID: req.ModuleID, Hosts: req.Hosts, AppIDs: req.AppIDs, FunIDs: req.FunIDs,
		Params: req.Params, User: p.Name, Role: p.Role, ConfirmedHosts: req.ConfirmedHosts, Rollout: ro}
	if req.DryRun {
		plan, err := s.runs.Preview(r.Context(), rr)
		if err != nil {
			return err
		}
		sort.Slice(plan.Hosts, func(i, j int) bool { return hostLess(plan.Hosts[i].IP, plan.Hosts[j].IP) })
		writeJSON(w, http.StatusOK, plan)
		return nil
	}
	id, err := s.runs.Submit(r.Context(), rr)
	if err != nil {
		return err
	}
	what := strings.Join(req.Hosts, ",")
	if len(req.AppIDs) > 0 || len(req.FunIDs) > 0 {
		what += fmt.Sprintf(" apps %v categories %v", req.AppIDs, req.FunIDs)
	}
	s.audit(r, p.Name, "run.start", fmt.Sprintf("run %s module %d hosts %s", id, req.ModuleID, clipRunes(what, 2000)))
	w.Header().Set("Location", "/api/v1/runs/"+id)
	writeJSON(w, http.StatusAccepted, map[string]string{"run_id": id})
	return nil
}

// rerunRequest is the body of POST /api/v1/runs/{id}/rerun: the whole run
// again, or only its hosts that did not end ok, with the same parameters.
type rerunRequest struct {
	OnlyFailed     bool `json:"only_failed"`
	ConfirmedHosts int  `json:"confirmed_hosts,omitempty"`
	DryRun         bool `json:"dry_run,omitempty"`
}

func (s *Server) apiRunRerun(w http.ResponseWriter, r *http.Request) error {
	var b rerunRequest
	if err := s.decodeJSON(r, &b); err != nil {
		return err
	}
	id, err := runIDParam(r)
	if err != nil {
		return err
	}
	run, results, err := s.st.GetRun(r.Context(), id)
	if err != nil {
		return err
	}
	if run.Status == task.RunRunning {
		return apperr.Errorf(apperr.Conflict, "run %s is still running: re-run it when it has finished", run.ID)
	}
	ok := make(map[string]bool, len(results))
	for _, res := range results {
		if res.Status == task.StatusOK {
			ok[res.Host.IP] = true
		}
	}
	var hosts []string
	for _, h := range run.Hosts {
		if !b.OnlyFailed || !ok[h.IP] {
			hosts = append(hosts, h.IP)
		}
	}
	if len(hosts) == 0 {
		return invalidf("every host of run %s ended ok: there is no failed host to re-run", run.ID)
	}
	return s.startRun(w, r, runRequest{ModuleID: run.ModuleID, Hosts: hosts, Params: run.Params,
		ConfirmedHosts: b.ConfirmedHosts, DryRun: b.DryRun})
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

// runHostsOf reads the run the URL names and the page of its hosts the
// query asks for (status filter, cursor, limit).
func (s *Server) runHostsOf(r *http.Request) (store.Run, store.RunHostPage, store.RunHostFilter, error) {
	id, err := runIDParam(r)
	if err != nil {
		return store.Run{}, store.RunHostPage{}, store.RunHostFilter{}, err
	}
	f, err := runHostFilter(r)
	if err != nil {
		return store.Run{}, store.RunHostPage{}, f, err
	}
	run, err := s.st.GetRunInfo(r.Context(), id)
	if err != nil {
		return store.Run{}, store.RunHostPage{}, f, err
	}
	page, err := s.st.ListRunHosts(r.Context(), id, f)
	return run, page, f, err
}

func (s *Server) apiRunHosts(w http.ResponseWriter, r *http.Request) error {
	run, page, _, err := s.runHostsOf(r)
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

// apiRunContinue lets a rollout paused after its canary batch for an
// operator's decision start its next batch.
func (s *Server) apiRunContinue(w http.ResponseWriter, r *http.Request) error {
	id, err := runIDParam(r)
	if err != nil {
		return err
	}
	if err := s.runs.Continue(r.Context(), id); err != nil {
		return err
	}
	s.audit(r, authOf(r).Name, "run.continue", "run "+id)
	writeJSON(w, http.StatusAccepted, map[string]string{"run_id": id, "status": "continuing"})
	return nil
}

// --- pages ---

// hostStatusOrder is how per-status counts are listed: failures first,
// success last, so a failure is never hidden behind a long green count.
var hostStatusOrder = []string{"failed", "timeout", "unreachable", "cancelled", "skipped", "noresult", "pending", "ok"}

// statusRank orders groups of equal size: the worse status first.
func statusRank(st string) int {
	for i, s := range hostStatusOrder {
		if s == st {
			return i
		}
	}
	return len(hostStatusOrder)
}

// statusCount is one per-status count of a run's hosts.
type statusCount struct {
	Status string
	N      int
}

// countsOf lists a run's host counts by status in display order, from the
// counts stored on the run; hosts without a result are "pending" while the
// run goes on, "noresult" after.
func countsOf(run store.Run) []statusCount {
	var out []statusCount
	done := 0
	for _, n := range run.Summary {
		done += n
	}
	missing := run.HostCount - done
	for _, st := range hostStatusOrder {
		n := run.Summary[task.Status(st)]
		switch st {
		case "pending":
			if run.Status == task.RunRunning {
				n = missing
			}
		case "noresult":
			if run.Status != task.RunRunning {
				n = missing
			}
		}
		if n > 0 {
			out = append(out, statusCount{st, n})
		}
	}
	return out
}

// runLine is a run in the history table.
type runLine struct {
	store.Run
	Duration time.Duration
	Counts   []statusCount
}

// runStatusesFilter are the states the history can be filtered by.
var runStatusesFilter = []task.RunStatus{task.RunRunning, task.RunOK, task.RunPartial, task.RunFailed, task.RunCancelled, task.RunInterrupted, task.RunDone}

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
		l := runLine{Run: run, Counts: countsOf(run)}
		if run.FinishedAt != nil {
			l.Duration = run.FinishedAt.Sub(run.CreatedAt)
		}
		lines = append(lines, l)
	}
	q := r.URL.Query()
	filtered := false
	for _, k := range []string{"user", "module_id", "status", "host", "from", "to"} {
		filtered = filtered || q.Get(k) != ""
	}
	s.render(w, r, http.StatusOK, "runs", "title.runs", struct {
		Runs                                 []runLine
		Links                                pageLinks
		User, Module, Status, Host, From, To string
		Statuses                             []task.RunStatus
		Filtered                             bool
	}{lines, pageLinks{First: firstURL(r, "cursor"), Next: nextURL(r, "cursor", page.Next)},
		f.Username, q.Get("module_id"), string(f.Status), f.Host, q.Get("from"), q.Get("to"),
		runStatusesFilter, filtered})
	return nil
}

type paramKV struct{ Name, Value string }

// hostLine is one host of a run as the run page lists it.
type hostLine struct {
	IP, Name, Status, Duration string
}

// hostGroup is hosts whose result is identical: same status, exit code,
// error and output. The output is shown once for the group.
type hostGroup struct {
	Status, Error                    string
	ExitCode                         int
	Stdout, Stderr                   string
	StdoutTruncated, StderrTruncated bool
	Hosts                            []hostLine
}

// statusLink is one choice of the run page's host filter, with its count.
type statusLink struct {
	Status  string
	N       int
	URL     string
	Current bool
}

type runDetail struct {
	store.Run
	User     string
	Started  time.Time
	Duration time.Duration
	Params   []paramKV
	Finished int // hosts with a result
	Failed   int // hosts whose result is not ok, or that have none (the re-run set)
	Counts   []statusCount
	Groups   []hostGroup
	Filters  []statusLink
	Links    pageLinks
	// Paged is true when the groups are not every host of the run (a
	// filter, or more pages): they group this page's hosts only, and live
	// results of other hosts do not belong on this page.
	Paged bool
}

func (s *Server) pageRun(w http.ResponseWriter, r *http.Request) error {
	run, page, f, err := s.runHostsOf(r)
	if err != nil {
		return err
	}
	d := buildRunDetail(run, page.Hosts)
	d.Links = pageLinks{First: firstURL(r, "cursor"), Next: nextURL(r, "cursor", page.Next)}
	d.Paged = f.Status != "" || f.Cursor != "" || page.Next != ""
	d.Filters = runFilters(r, run, f.Status)
	s.render(w, r, http.StatusOK, "run", "title.run", d)
	return nil
}

// runFilters are the host filter's choices: all hosts, then each status
// that has hosts, in display order.
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
	if current == "pending" {
		current = store.NoResult
	}
	out := []statusLink{{Status: "", N: run.HostCount, URL: link(""), Current: current == ""}}
	for _, c := range countsOf(run) {
		key := c.Status
		if key == "pending" {
			key = store.NoResult
		}
		out = append(out, statusLink{Status: c.Status, N: c.N, URL: link(key), Current: current == key})
	}
	return out
}

// buildRunDetail groups one page of the run's hosts by identical result
// (hosts without one form a "no result" group, or "pending" while the run
// goes on): smallest groups first (the outliers), worse status first among
// equals; hosts inside a group by address, numerically.
func buildRunDetail(run store.Run, hosts []store.RunHost) runDetail {
	d := runDetail{Run: run, User: run.Username, Started: run.CreatedAt, Counts: countsOf(run)}
	for _, n := range run.Summary {
		d.Finished += n
	}
	d.Failed = run.HostCount - run.Summary[task.StatusOK]
	if run.FinishedAt != nil {
		d.Duration = run.FinishedAt.Sub(run.CreatedAt)
	}
	for k, v := range run.Params {
		d.Params = append(d.Params, paramKV{k, v})
	}
	sort.Slice(d.Params, func(i, j int) bool { return d.Params[i].Name < d.Params[j].Name })
	type key struct {
		status, errText, stdout, stderr string
		exit                            int
		outT, errT                      bool
	}
	index := map[key]int{}
	for _, h := range hosts {
		var k key
		line := hostLine{IP: h.Host.IP, Name: h.Host.Name}
		if res := h.Result; res != nil {
			k = key{string(res.Status), res.Error, res.Stdout, res.Stderr, res.ExitCode, res.StdoutTruncated, res.StderrTruncated}
			line.Duration = fmtDuration(res.Duration)
		} else {
			k = key{status: store.NoResult, exit: -1}
			if run.Status == task.RunRunning {
				k.status = "pending"
			}
		}
		line.Status = k.status
		i, seen := index[k]
		if !seen {
			i = len(d.Groups)
			index[k] = i
			d.Groups = append(d.Groups, hostGroup{Status: k.status, Error: k.errText, ExitCode: k.exit, Stdout: k.stdout, Stderr: k.stderr,
				StdoutTruncated: k.outT, StderrTruncated: k.errT})
		}
		d.Groups[i].Hosts = append(d.Groups[i].Hosts, line)
	}
	for i := range d.Groups {
		hs := d.Groups[i].Hosts
		sort.Slice(hs, func(a, b int) bool { return hostLess(hs[a].IP, hs[b].IP) })
	}
	sort.SliceStable(d.Groups, func(a, b int) bool {
		ga, gb := d.Groups[a], d.Groups[b]
		if len(ga.Hosts) != len(gb.Hosts) {
			return len(ga.Hosts) < len(gb.Hosts)
		}
		if ra, rb := statusRank(ga.Status), statusRank(gb.Status); ra != rb {
			return ra < rb
		}
		return hostLess(ga.Hosts[0].IP, gb.Hosts[0].IP)
	})
	return d
}

// hostLess orders addresses numerically (127.0.1.2 before 127.0.1.10;
// IPv4 before IPv6); anything that is not an address comes after, by text.
func hostLess(a, b string) bool {
	pa, ea := netip.ParseAddr(a)
	pb, eb := netip.ParseAddr(b)
	switch {
	case ea == nil && eb == nil:
		pa, pb = pa.Unmap(), pb.Unmap()
		if pa.Is4() != pb.Is4() {
			return pa.Is4()
		}
		return pa.Less(pb)
	case ea == nil:
		return true
	case eb == nil:
		return false
	}
	return a < b
}

// groupArg is what the "group" template gets: the page (for translations)
// and one group.
type groupArg struct {
	Page  pageData
	Group hostGroup
}

// --- downloads ---

// runOutputText writes a run as plain text: a header, then each host (by
// address) with its status, exit code, error and output.
func runOutputText(w io.Writer, run store.Run, results []task.HostResult) {
	fmt.Fprintf(w, "run %s\nmodule %d %s\nuser %s\nstatus %s\nstarted %s\n", run.ID, run.ModuleID, run.ModuleName, run.Username, run.Status, fmtTime(run.CreatedAt))
	if run.FinishedAt != nil {
		fmt.Fprintf(w, "finished %s\n", fmtTime(run.FinishedAt))
	}
	names := make([]string, 0, len(run.Params))
	for k := range run.Params {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		fmt.Fprintf(w, "param %s=%s\n", k, run.Params[k])
	}
	byIP := make(map[string]task.HostResult, len(results))
	for _, res := range results {
		byIP[res.Host.IP] = res
	}
	hosts := append([]task.Host(nil), run.Hosts...)
	sort.Slice(hosts, func(i, j int) bool { return hostLess(hosts[i].IP, hosts[j].IP) })
	for _, h := range hosts {
		label := h.IP
		if h.Name != "" {
			label += " (" + h.Name + ")"
		}
		res, ok := byIP[h.IP]
		if !ok {
			fmt.Fprintf(w, "\n=== %s no result\n", label)
			continue
		}
		fmt.Fprintf(w, "\n=== %s %s exit=%d", label, res.Status, res.ExitCode)
		if res.Error != "" {
			fmt.Fprintf(w, " error=%q", res.Error)
		}
		fmt.Fprintf(w, " duration=%s\n", res.Duration)
		if res.Stdout != "" {
			_, _ = io.WriteString(w, strings.TrimSuffix(res.Stdout, "\n")+"\n")
			if res.StdoutTruncated {
				_, _ = io.WriteString(w, "[stdout truncated]\n")
			}
		}
		if res.Stderr != "" {
			_, _ = io.WriteString(w, "--- stderr\n"+strings.TrimSuffix(res.Stderr, "\n")+"\n")
			if res.StderrTruncated {
				_, _ = io.WriteString(w, "[stderr truncated]\n")
			}
		}
	}
}

// pageRunDownload answers /runs/{id}/output.txt and output.json as files.
func (s *Server) pageRunDownload(format string) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		id, err := runIDParam(r)
		if err != nil {
			return err
		}
		run, results, err := s.st.GetRun(r.Context(), id)
		if err != nil {
			return err
		}
		name := "run-" + run.ID + "." + format
		w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
		if format == "json" {
			writeJSON(w, http.StatusOK, runView{Run: run, Results: results, HostsNext: nil})
			return nil
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		runOutputText(w, run, results)
		return nil
	}
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
			case task.EventBatch:
				sent = st.send("batch", ev.Batch)
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
