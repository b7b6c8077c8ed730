package web

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/omserver/omserver-go/internal/apperr"
	"github.com/omserver/omserver-go/internal/runs"
	"github.com/omserver/omserver-go/internal/store"
	"github.com/omserver/omserver-go/internal/task"
)

func result(ip, name string, st task.Status, out string) task.HostResult {
	return task.HostResult{Host: task.Host{IP: ip, Name: name}, Status: st, ExitCode: 0, Stdout: out,
		Started: time.Now().UTC(), Duration: 1500 * time.Millisecond}
}

func TestRunLifecycle(t *testing.T) {
	e := newEnv(t)
	id := e.startRun("operator", `{"module_id":1001,"hosts":["192.168.1.20","192.168.1.10"],"params":{"sys_param_1":"20"}}`)
	call := e.master.nextCall(t)

	// The run is recorded before dispatch: the row exists while the master
	// is still working on it, with who, what, where and which parameters.
	run, results, err := e.st.GetRun(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if run.Status != task.RunRunning || run.Username != "operator" || run.ModuleID != 1001 || run.ModuleName != "查看系统日志" ||
		run.Params["sys_param_1"] != "20" || len(run.Hosts) != 2 || run.Hosts[0].IP != "192.168.1.20" || run.Hosts[0].Name != "sn2013-08-020" || len(results) != 0 {
		t.Fatalf("recorded run %+v with %d results", run, len(results))
	}
	// The task the master got matches the record.
	if call.Task.RunID != id || call.Task.ModuleID != 1001 || call.Task.Params["sys_param_1"] != "20" || call.Task.User != "operator" || call.Task.Validate() != nil {
		t.Fatalf("task %+v", call.Task)
	}

	events := e.openEvents(id, "viewer")
	if ev := events.next(); ev.Name != "run" || !strings.Contains(ev.Data, id) {
		t.Fatalf("first event %+v", ev)
	}
	call.send(t, result("192.168.1.10", "sn2012-07-010", task.StatusOK, "first"))
	ev := events.next()
	var got task.HostResult
	if err := json.Unmarshal([]byte(ev.Data), &got); err != nil || ev.Name != "result" || got.Host.IP != "192.168.1.10" || got.Stdout != "first" || got.RunID != id {
		t.Fatalf("event %+v", ev)
	}
	// A result for a host not in the run, and a second one for a host, are dropped.
	call.send(t, result("10.9.9.9", "intruder", task.StatusOK, "nope"))
	call.send(t, result("192.168.1.10", "sn2012-07-010", task.StatusFailed, "again"))
	call.send(t, result("192.168.1.20", "sn2013-08-020", task.StatusFailed, "second"))
	ev = events.next()
	if ev.Name != "result" || !strings.Contains(ev.Data, `"stdout":"second"`) {
		t.Fatalf("event %+v", ev)
	}
	call.Finish <- nil
	ev = events.next()
	if ev.Name != "done" || !strings.Contains(ev.Data, `"status":"done"`) {
		t.Fatalf("event %+v", ev)
	}

	run = e.waitStatus(id, task.RunDone)
	_, results, _ = e.st.GetRun(context.Background(), id)
	if len(results) != 2 || results[0].Stdout != "first" || results[1].Stdout != "second" || results[1].Status != task.StatusFailed {
		t.Fatalf("stored results in arrival order: %+v", results)
	}
	if run.FinishedAt == nil {
		t.Fatal("no finish time")
	}

	// A late subscriber gets the stored results and the end.
	late := e.openEvents(id, "operator")
	var names []string
	for {
		ev := late.next()
		names = append(names, ev.Name)
		if ev.Name == "done" {
			break
		}
	}
	if strings.Join(names, ",") != "run,result,result,done" {
		t.Fatalf("replay %v", names)
	}

	// The API shows it too.
	e.do(req{method: "GET", path: "/api/v1/runs/" + id, as: "viewer"}).want(t, http.StatusOK, `"status":"done"`, `"stdout":"first"`)
	e.do(req{method: "GET", path: "/api/v1/runs", as: "viewer"}).want(t, http.StatusOK, id, `"host_count":2`, `"summary":{"failed":1,"ok":1}`, `"next":null`)
	e.do(req{method: "GET", path: "/runs", as: "viewer"}).want(t, http.StatusOK, id)
	e.do(req{method: "GET", path: "/runs/" + id, as: "viewer"}).want(t, http.StatusOK, `data-host="192.168.1.20"`, "status-failed", "status-ok")
	// Cancelling a finished run is refused.
	e.do(req{method: "POST", path: "/api/v1/runs/" + id + "/cancel", as: "operator"}).want(t, http.StatusConflict, "not running")
}

func TestRunDefaultsAndModuleWithoutParams(t *testing.T) {
	e := newEnv(t)
	id := e.startRun("admin", `{"module_id":1005,"hosts":["192.168.1.21"]}`)
	call := e.master.nextCall(t)
	// The browser's default of module 1005 (the last "selected" option).
	if call.Task.Params["sys_param_1"] != "resinjar" {
		t.Fatalf("default not applied: %v", call.Task.Params)
	}
	call.Finish <- nil
	e.waitStatus(id, task.RunDone)

	id = e.startRun("operator", `{"module_id":1003,"hosts":["192.168.1.10"],"params":{}}`)
	call = e.master.nextCall(t)
	if len(call.Task.Params) != 0 {
		t.Fatalf("params %v", call.Task.Params)
	}
	call.Finish <- nil
	// No result at all: the detail page says so.
	e.waitStatus(id, task.RunDone)
	e.do(req{method: "GET", path: "/runs/" + id, as: "viewer"}).want(t, http.StatusOK, "status-noresult", "no result")
}

func TestRunMasterError(t *testing.T) {
	e := newEnv(t)
	id := e.startRun("operator", `{"module_id":1003,"hosts":["192.168.1.10","192.168.1.20"]}`)
	call := e.master.nextCall(t)
	events := e.openEvents(id, "operator")
	events.next() // run
	call.send(t, result("192.168.1.10", "", task.StatusOK, "v"))
	events.next()
	call.Finish <- errors.New("relay: no master reachable: connection refused")
	ev := events.next()
	if ev.Name != "done" || !strings.Contains(ev.Data, `"status":"failed"`) || !strings.Contains(ev.Data, "no master reachable") {
		t.Fatalf("done event %+v", ev)
	}
	run := e.waitStatus(id, task.RunFailed)
	if !strings.Contains(run.Error, "no master reachable") {
		t.Fatalf("error %q", run.Error)
	}
	e.do(req{method: "GET", path: "/runs/" + id, as: "viewer"}).want(t, http.StatusOK, "no master reachable", "status-noresult")
}

// TestRunMasterLostMidRun: a master lost after accepting the run leaves it
// interrupted (hosts may have run it), with the results that had arrived.
func TestRunMasterLostMidRun(t *testing.T) {
	e := newEnv(t)
	id := e.startRun("operator", `{"module_id":1003,"hosts":["192.168.1.10","192.168.1.20"]}`)
	call := e.master.nextCall(t)
	call.send(t, result("192.168.1.10", "", task.StatusOK, "kept"))
	// What a relay client gives when the master accepted the run and was
	// lost during it.
	call.Finish <- fmt.Errorf("master 127.0.0.1:7070 went away during the run: %w", task.ErrInterrupted)
	run := e.waitStatus(id, task.RunInterrupted)
	if !strings.Contains(run.Error, "went away") {
		t.Fatalf("error %q", run.Error)
	}
	got, results, err := e.st.GetRun(context.Background(), id)
	if err != nil || got.Status != task.RunInterrupted || len(results) != 1 || results[0].Stdout != "kept" {
		t.Fatalf("stored run %+v results %+v err %v", got, results, err)
	}
}

func TestRunCancel(t *testing.T) {
	e := newEnv(t)
	id := e.startRun("operator", `{"module_id":1003,"hosts":["192.168.1.10","192.168.1.20"]}`)
	call := e.master.nextCall(t)
	// A viewer cannot cancel.
	e.do(req{method: "POST", path: "/api/v1/runs/" + id + "/cancel", as: "viewer"}).want(t, http.StatusForbidden)
	e.do(req{method: "POST", path: "/api/v1/runs/" + id + "/cancel", as: "operator"}).want(t, http.StatusAccepted, "cancelling")
	select {
	case got := <-e.master.cancels:
		if got != id {
			t.Fatalf("master cancel of %q", got)
		}
	case <-time.After(testTimeout):
		t.Fatal("master was not told to cancel")
	}
	// The master reports the hosts it stopped, then ends.
	call.send(t, result("192.168.1.10", "", task.StatusCancelled, ""))
	call.Finish <- nil
	e.waitStatus(id, task.RunCancelled)
	_, results, _ := e.st.GetRun(context.Background(), id)
	if len(results) != 1 || results[0].Status != task.StatusCancelled {
		t.Fatalf("results %+v", results)
	}
	entries, _ := e.auditLog(50)
	found := false
	for _, a := range entries {
		found = found || (a.Action == "run.cancel" && a.Username == "operator" && strings.Contains(a.Detail, id))
	}
	if !found {
		t.Fatal("cancel not in the audit log")
	}
}

// When the master cannot be told, the cancel fails as unavailable (try
// again): cutting the stream here would stop nothing, since runs go on on
// their masters without the web tier.
func TestRunCancelMasterDown(t *testing.T) {
	e := newEnv(t)
	e.master.mu.Lock()
	e.master.cancelErr = apperr.Errorf(apperr.Unavailable, "master 127.0.0.1:7070 is unreachable")
	e.master.mu.Unlock()
	id := e.startRun("operator", `{"module_id":1003,"hosts":["192.168.1.10"]}`)
	call := e.master.nextCall(t)
	r := e.do(req{method: "POST", path: "/api/v1/runs/" + id + "/cancel", as: "admin"}).want(t, http.StatusServiceUnavailable, "unreachable")
	if r.header.Get("Retry-After") == "" {
		t.Fatal("503 without Retry-After")
	}
	if run, _, _ := e.st.GetRun(context.Background(), id); run.Status != task.RunRunning {
		t.Fatalf("a cancel the master never got changed the run to %s", run.Status)
	}
	e.master.mu.Lock()
	e.master.cancelErr = nil
	e.master.mu.Unlock()
	e.do(req{method: "POST", path: "/api/v1/runs/" + id + "/cancel", as: "admin"}).want(t, http.StatusAccepted)
	call.Finish <- nil
	e.waitStatus(id, task.RunCancelled)
}

func TestRunRefusedChangesNothing(t *testing.T) {
	e := newEnv(t)
	long := strings.Repeat("a", 300)
	cases := []struct {
		name, body string
		code       int
		msg        string
	}{
		{"unknown host", `{"module_id":1003,"hosts":["192.168.1.10","10.1.2.3"]}`, 400, "10.1.2.3"},
		{"no hosts", `{"module_id":1003,"hosts":[]}`, 400, "no hosts"},
		{"duplicate host", `{"module_id":1003,"hosts":["192.168.1.10","192.168.1.10"]}`, 400, "listed twice"},
		{"unknown module", `{"module_id":999,"hosts":["192.168.1.10"]}`, 400, "module 999 does not exist"},
		{"bad module id", `{"module_id":-1,"hosts":["192.168.1.10"]}`, 400, "module_id"},
		{"select not an option", `{"module_id":1007,"hosts":["192.168.1.10"],"params":{"sys_param_1":"sshd; rm -rf /"}}`, 400, "not one of the options"},
		{"number out of range", `{"module_id":1001,"hosts":["192.168.1.10"],"params":{"sys_param_1":"0"}}`, 400, "sys_param_1"},
		{"number too big", `{"module_id":1001,"hosts":["192.168.1.10"],"params":{"sys_param_1":"100000"}}`, 400, "sys_param_1"},
		{"number not a number", `{"module_id":1001,"hosts":["192.168.1.10"],"params":{"sys_param_1":"5;id"}}`, 400, "sys_param_1"},
		{"control character", `{"module_id":1001,"hosts":["192.168.1.10"],"params":{"sys_param_1":"5\n"}}`, 400, "not a base-10 integer"},
		{"unknown parameter", `{"module_id":1003,"hosts":["192.168.1.10"],"params":{"sys_param_9":"x"}}`, 400, "unknown parameter"},
		{"too long", `{"module_id":1001,"hosts":["192.168.1.10"],"params":{"sys_param_1":"` + long + `"}}`, 400, "sys_param_1"},
		{"unknown field", `{"module_id":1003,"hosts":["192.168.1.10"],"user":"root"}`, 400, "unknown field"},
		{"not json", `module_id=1003`, 400, "not valid JSON"},
		{"empty", ``, 400, "empty"},
	}
	before := e.snapshot()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := e.do(req{method: "POST", path: "/api/v1/runs", as: "operator", body: c.body, ctype: "application/json"})
			r.want(t, c.code)
			if msg := r.jsonError(t); !strings.Contains(msg, c.msg) {
				t.Fatalf("message %q lacks %q", msg, c.msg)
			}
		})
	}
	e.assertUnchanged(before)
	e.master.assertNoCall(t)
}

func TestOversizedBody(t *testing.T) {
	e := newEnv(t) // 64 KiB limit
	before := e.snapshot()
	big := `{"module_id":1003,"hosts":["` + strings.Repeat("1", 70<<10) + `"]}`
	r := e.do(req{method: "POST", path: "/api/v1/runs", as: "operator", body: big})
	r.want(t, http.StatusRequestEntityTooLarge)
	if !strings.Contains(r.jsonError(t), "too large") {
		t.Fatalf("message %q", r.body)
	}
	e.do(req{method: "POST", path: "/inventory/import", as: "admin", body: form("app_id", "1", "csv", strings.Repeat("x", 70<<10))}).
		want(t, http.StatusRequestEntityTooLarge, "too large")
	e.assertUnchanged(before)
	e.master.assertNoCall(t)
}

// A body without a declared length is cut by the reader and still 413.
func TestOversizedChunkedBody(t *testing.T) {
	e := newEnv(t)
	pr, pw := io.Pipe()
	go func() {
		_, _ = pw.Write([]byte(`{"name":"` + strings.Repeat("x", 70<<10) + `"}`))
		pw.Close()
	}()
	hr, _ := http.NewRequest("POST", e.ts.URL+"/api/v1/fun-categs", pr)
	hr.Header.Set("Content-Type", "application/json")
	hr.AddCookie(&http.Cookie{Name: sessionCookie, Value: e.cookie["admin"]})
	res, err := http.DefaultClient.Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d", res.StatusCode)
	}
}

// A web tier that stops leaves its runs running on their masters and hands
// their leases back at once; it marks nothing interrupted.
func TestShutdownLeavesRunsToTheNextTier(t *testing.T) {
	e := newEnv(t)
	id := e.startRun("operator", `{"module_id":1003,"hosts":["192.168.1.10"]}`)
	e.master.nextCall(t) // never finished by the test
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	run, _, _ := e.st.GetRun(context.Background(), id)
	if run.Status != task.RunRunning || run.Master != fakeAddr {
		t.Fatalf("after the tier stopped: %+v", run)
	}
	l, err := e.st.GetLease(context.Background(), id)
	if err != nil || l.ExpiresAt.After(time.Now()) {
		t.Fatalf("lease after the tier stopped: %+v, %v; want it released", l, err)
	}
	// New runs are refused while shutting down.
	e.do(req{method: "POST", path: "/api/v1/runs", as: "operator", body: `{"module_id":1003,"hosts":["192.168.1.10"]}`}).want(t, http.StatusServiceUnavailable)
}

// A run left running by a tier that stopped (its lease expired) is taken
// over at start and resumed on its master after its last stored event.
func TestStartTakesOverLeftRuns(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	hosts := []task.Host{{IP: "192.168.1.10"}, {IP: "192.168.1.20"}}
	err := e.st.CreateLeasedRun(ctx, store.Run{ID: "leftover", ModuleID: 1003, ModuleName: "x", Username: "operator",
		Hosts: hosts}, "a-tier-that-died", time.Now().Add(-time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.st.SetRunMaster(ctx, "leftover", fakeAddr); err != nil {
		t.Fatal(err)
	}
	if err := e.st.RecordRunResult(ctx, "leftover", 4, result("192.168.1.10", "", task.StatusOK, "stored before")); err != nil {
		t.Fatal(err)
	}
	if err := e.srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	call := e.master.nextCall(t)
	if !call.Resume || call.Task.RunID != "leftover" || call.After != 4 {
		t.Fatalf("after start the master got %+v; want a resume of leftover after event 4", call)
	}
	call.send(t, result("192.168.1.20", "", task.StatusOK, "after the takeover"))
	call.Finish <- nil
	run := e.waitStatus("leftover", task.RunDone)
	_, results, _ := e.st.GetRun(ctx, "leftover")
	if len(results) != 2 || run.AckedSeq != 6 {
		t.Fatalf("results %+v, acked %d", results, run.AckedSeq)
	}
	if l, err := e.st.GetLease(ctx, "leftover"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a finished run keeps a lease: %+v %v", l, err)
	}
	e.do(req{method: "GET", path: "/runs/leftover", as: "viewer"}).want(t, http.StatusOK, "after the takeover")
}

// The http.Server from HTTPServer ends event streams when it shuts down, so
// its Shutdown does not wait for a long run; the run itself goes on.
func TestHTTPServerShutdownEndsStreams(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Listen = "127.0.0.1:0" })
	srv := e.srv.HTTPServer()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	id := e.startRun("operator", `{"module_id":1003,"hosts":["192.168.1.10"]}`)
	call := e.master.nextCall(t)

	hr, _ := http.NewRequest("GET", "http://"+ln.Addr().String()+"/api/v1/runs/"+id+"/events", nil)
	hr.AddCookie(&http.Cookie{Name: sessionCookie, Value: e.cookie["viewer"]})
	res, err := http.DefaultClient.Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	buf := make([]byte, 64)
	if _, err := res.Body.Read(buf); err != nil { // the "run" event: the stream is live
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("http shutdown waited for the stream: %v", err)
	}
	if run, _, _ := e.st.GetRun(ctx, id); run.Status != task.RunRunning {
		t.Fatalf("run is %s; closing streams must not touch runs", run.Status)
	}
	call.Finish <- nil
	e.waitStatus(id, task.RunDone)
}

// gatedWriter is a ResponseWriter whose writes block after the first free
// ones until the gate opens: a browser that stopped reading.
type gatedWriter struct {
	hdr     http.Header
	mu      sync.Mutex
	buf     bytes.Buffer
	writes  int
	free    int
	blocked chan struct{}
	gate    chan struct{}
	once    sync.Once
}

func (w *gatedWriter) Header() http.Header { return w.hdr }
func (w *gatedWriter) WriteHeader(int)     {}
func (w *gatedWriter) Flush()              {}
func (w *gatedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	w.writes++
	n := w.writes
	w.mu.Unlock()
	if n > w.free {
		w.once.Do(func() { close(w.blocked) })
		<-w.gate
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

// A browser that falls behind is cut loose by the broker (the run goes on),
// then resynchronised from the database: it still sees every host once.
func TestSSEResyncAfterLag(t *testing.T) {
	e := newEnv(t)
	n := runs.SubscriberBuffer + 20
	ipOf := func(i int) string { return "10.50." + itoa(int64(i/200)) + "." + itoa(int64(i%200+1)) }
	var hosts []string
	var csv strings.Builder
	for i := range n {
		ip := ipOf(i)
		hosts = append(hosts, `"`+ip+`"`)
		csv.WriteString("h" + itoa(int64(i)) + ",," + ip + ",Linux\n")
	}
	e.do(req{method: "POST", path: "/api/v1/servers/import", as: "admin", body: mustJSON(t, importBody{AppID: 2, CSV: csv.String()})}).want(t, http.StatusOK)
	id := e.startRun("operator", `{"module_id":1003,"hosts":[`+strings.Join(hosts, ",")+`]}`)
	call := e.master.nextCall(t)

	w := &gatedWriter{hdr: http.Header{}, free: 1, blocked: make(chan struct{}), gate: make(chan struct{})}
	r := httptest.NewRequest("GET", "/api/v1/runs/"+id+"/events", nil)
	r.AddCookie(&http.Cookie{Name: sessionCookie, Value: e.cookie["viewer"]})
	served := make(chan struct{})
	go func() { e.srv.Handler().ServeHTTP(w, r); close(served) }()

	call.send(t, result(ipOf(0), "", task.StatusOK, "x"))
	select {
	case <-w.blocked: // the handler is subscribed and stuck writing
	case <-time.After(testTimeout):
		t.Fatal("the handler never wrote")
	}
	for i := 1; i < n; i++ {
		call.send(t, result(ipOf(i), "", task.StatusOK, "x"))
	}
	call.Finish <- nil
	e.waitStatus(id, task.RunDone)
	close(w.gate)
	select {
	case <-served:
	case <-time.After(testTimeout):
		t.Fatal("the stream did not end")
	}
	seen := map[string]int{}
	done := 0
	for _, block := range strings.Split(w.buf.String(), "\n\n") {
		switch {
		case strings.HasPrefix(block, "event: result\n"):
			var res task.HostResult
			if err := json.Unmarshal([]byte(strings.TrimPrefix(block, "event: result\ndata: ")), &res); err != nil {
				t.Fatal(err)
			}
			seen[res.Host.IP]++
		case strings.HasPrefix(block, "event: done\n"):
			done++
		}
	}
	if len(seen) != n || done != 1 {
		t.Fatalf("saw %d hosts (want %d) and %d done events", len(seen), n, done)
	}
	for ip, k := range seen {
		if k != 1 {
			t.Fatalf("host %s sent %d times", ip, k)
		}
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// A result the database refuses is still shown live, and the run's record
// says that something is missing.
func TestResultStoreFailureIsShownAndNoted(t *testing.T) {
	e := newEnv(t)
	id := e.startRun("operator", `{"module_id":1003,"hosts":["192.168.1.10","192.168.1.20"]}`)
	call := e.master.nextCall(t)
	events := e.openEvents(id, "operator")
	events.next() // run
	// Once the first result arrived, the stream has read the database and
	// only follows live results.
	call.send(t, result("192.168.1.20", "", task.StatusOK, "stored"))
	if ev := events.next(); ev.Name != "result" || !strings.Contains(ev.Data, "stored") {
		t.Fatalf("event %+v", ev)
	}
	db := e.st.DB()
	if _, err := db.Exec(`ALTER TABLE run_hosts RENAME TO run_hosts_away`); err != nil {
		t.Fatal(err)
	}
	call.send(t, result("192.168.1.10", "", task.StatusOK, "still seen"))
	if ev := events.next(); ev.Name != "result" || !strings.Contains(ev.Data, "still seen") {
		t.Fatalf("event %+v", ev)
	}
	if _, err := db.Exec(`ALTER TABLE run_hosts_away RENAME TO run_hosts`); err != nil {
		t.Fatal(err)
	}
	call.Finish <- nil
	run := e.waitStatus(id, task.RunDone)
	if !strings.Contains(run.Error, "1 host result(s) could not be recorded") {
		t.Fatalf("run error %q", run.Error)
	}
}

// TestStreamsPerUserBounded: one user cannot hold more live event streams
// than the limit (each lasts as long as the run); others are unaffected,
// and a closed stream frees its place.
func TestStreamsPerUserBounded(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxStreamsPerUser = 2 })
	id := e.startRun("operator", `{"module_id":1003,"hosts":["192.168.1.10"]}`)
	call := e.master.nextCall(t)
	defer func() { call.Finish <- nil }()
	first := e.openEvents(id, "viewer")
	first.next()
	e.openEvents(id, "viewer").next()
	r := e.do(req{method: "GET", path: "/api/v1/runs/" + id + "/events", as: "viewer"}).want(t, http.StatusTooManyRequests)
	if msg := r.jsonError(t); !strings.Contains(msg, "live run streams open") {
		t.Fatalf("message %q", msg)
	}
	e.openEvents(id, "operator").next()
	first.cancel()
	deadline := time.Now().Add(testTimeout)
	for {
		hr, _ := http.NewRequest(http.MethodGet, e.ts.URL+"/api/v1/runs/"+id+"/events", nil)
		hr.AddCookie(&http.Cookie{Name: sessionCookie, Value: e.cookie["viewer"]})
		ctx, cancel := context.WithCancel(context.Background())
		res, err := http.DefaultClient.Do(hr.WithContext(ctx))
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		code := res.StatusCode
		cancel()
		res.Body.Close()
		if code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a closed stream never freed its place (status %d)", code)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
