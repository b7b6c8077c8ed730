package web

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/crypto/bcrypt"

	"github.com/omserver/omserver-go/internal/store"
	"github.com/omserver/omserver-go/internal/task"
)

// testTimeout bounds every wait in these tests so a bug hangs nothing.
const testTimeout = 20 * time.Second

// fakeCall is one Dispatch (or Resume) call on the fake master; the test
// drives it.
type fakeCall struct {
	Task    task.Task            // for a Resume, only RunID is set
	Resume  bool                 // a Resume call, after seq After
	After   uint64               //
	Results chan task.HostResult // test sends; the fake streams them as events
	Outputs chan task.Output     // test sends; the fake emits output chunks
	Batches chan task.Batch      // test sends; the fake emits rollout batch events
	Finish  chan error           // test sends: nil ends the run (done event), else the call's error
}

// fakeAddr is the fake master's address, recorded as the runs' master.
const fakeAddr = "fake-master:7070"

// fakeMaster is a MasterClient whose runs the test controls by channels.
// Like a master, it ends a run it was asked to cancel as cancelled.
type fakeMaster struct {
	calls     chan *fakeCall
	cancels   chan string
	continues chan string // runs a Continue reached while they waited
	cancelErr error
	waiting   map[string]bool // runs whose last batch event paused for a continue
	mu        sync.Mutex
	healthErr error
	cancelled map[string]bool
	seq       map[string]uint64
	acked     map[string]uint64
	// catalog is what Catalog answers; nil: the fake serves none (the web
	// tier then falls back to its own module table).
	catalog []task.ModuleInfo
}

func newFakeMaster() *fakeMaster {
	return &fakeMaster{calls: make(chan *fakeCall, 16), cancels: make(chan string, 16), continues: make(chan string, 16),
		cancelled: map[string]bool{}, waiting: map[string]bool{}, seq: map[string]uint64{}, acked: map[string]uint64{}}
}

func (f *fakeMaster) Dispatch(ctx context.Context, t task.Task, target func(string) error, onEvent func(task.Event) error) (string, error) {
	if err := target(fakeAddr); err != nil {
		return "", err
	}
	return fakeAddr, f.stream(ctx, &fakeCall{Task: t}, onEvent)
}

func (f *fakeMaster) Resume(ctx context.Context, addr, runID string, after uint64, onEvent func(task.Event) error) error {
	f.mu.Lock()
	if f.seq[runID] < after {
		f.seq[runID] = after
	}
	f.mu.Unlock()
	return f.stream(ctx, &fakeCall{Task: task.Task{RunID: runID}, Resume: true, After: after}, onEvent)
}

func (f *fakeMaster) stream(ctx context.Context, c *fakeCall, onEvent func(task.Event) error) error {
	c.Results, c.Outputs, c.Batches, c.Finish = make(chan task.HostResult), make(chan task.Output), make(chan task.Batch), make(chan error, 1)
	f.calls <- c
	id := c.Task.RunID
	next := func() uint64 {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.seq[id]++
		return f.seq[id]
	}
	for {
		select {
		case r := <-c.Results:
			if err := onEvent(task.Event{Seq: next(), RunID: id, Type: task.EventResult, Result: &r}); err != nil {
				return err
			}
		case o := <-c.Outputs:
			if err := onEvent(task.Event{Seq: next(), RunID: id, Type: task.EventOutput, Output: &o}); err != nil {
				return err
			}
		case b := <-c.Batches:
			f.mu.Lock()
			f.waiting[id] = b.Paused && b.Confirm
			f.mu.Unlock()
			if err := onEvent(task.Event{Seq: next(), RunID: id, Type: task.EventBatch, Batch: &b}); err != nil {
				return err
			}
		case err := <-c.Finish:
			if err != nil {
				return err
			}
			end := &task.RunEnd{Status: task.RunDone}
			f.mu.Lock()
			if f.cancelled[id] {
				end = &task.RunEnd{Status: task.RunCancelled, Error: "cancelled on request"}
			}
			f.mu.Unlock()
			return onEvent(task.Event{Seq: next(), RunID: id, Type: task.EventDone, End: end})
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (f *fakeMaster) Ack(ctx context.Context, addr, runID string, seq uint64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if seq > f.acked[runID] {
		f.acked[runID] = seq
	}
	return nil
}

func (f *fakeMaster) Cancel(ctx context.Context, runID string) error {
	f.mu.Lock()
	err := f.cancelErr
	if err == nil {
		f.cancelled[runID] = true
	}
	f.mu.Unlock()
	f.cancels <- runID
	return err
}

// Continue reaches a run whose rollout waits, as a master's does.
func (f *fakeMaster) Continue(ctx context.Context, runID string) error {
	f.mu.Lock()
	ok := f.waiting[runID]
	delete(f.waiting, runID)
	f.mu.Unlock()
	if !ok {
		return fmt.Errorf("fake master: %w", task.ErrRunNotFound)
	}
	f.continues <- runID
	return nil
}

func (f *fakeMaster) Catalog(ctx context.Context) ([]task.ModuleInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.catalog == nil {
		return nil, errors.New("the fake master serves no catalog")
	}
	return append([]task.ModuleInfo(nil), f.catalog...), nil
}

// setCatalog makes the fake master serve the web's modules ids as they
// are in the web's table, with change applied to each.
func (e *env) setCatalog(ids []int64, change func(*task.ModuleInfo)) {
	e.t.Helper()
	var cat []task.ModuleInfo
	for _, id := range ids {
		m, err := e.st.GetModule(context.Background(), id)
		if err != nil {
			e.t.Fatal(err)
		}
		pj, err := json.Marshal(m.Params)
		if err != nil {
			e.t.Fatal(err)
		}
		mi := task.ModuleInfo{ID: int(id), Name: m.Name, Caption: m.Caption, Params: pj, Version: "v1-" + itoa(id)}
		if change != nil {
			change(&mi)
		}
		cat = append(cat, mi)
	}
	e.master.mu.Lock()
	e.master.catalog = cat
	e.master.mu.Unlock()
	e.srv.runs.ForgetCatalog()
}

func (f *fakeMaster) Health(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.healthErr
}

// nextCall waits for the master to be asked to run something.
func (f *fakeMaster) nextCall(t testing.TB) *fakeCall {
	t.Helper()
	select {
	case c := <-f.calls:
		return c
	case <-time.After(testTimeout):
		t.Fatal("the master was never asked to run the task")
		return nil
	}
}

func (f *fakeMaster) assertNoContinue(t testing.TB) {
	t.Helper()
	select {
	case id := <-f.continues:
		t.Fatalf("a continue reached the master for run %s", id)
	default:
	}
}

func (f *fakeMaster) assertNoCall(t testing.TB) {
	t.Helper()
	select {
	case c := <-f.calls:
		t.Fatalf("the master was asked to run %+v; nothing should have been dispatched", c.Task)
	default:
	}
}

// print sends an output chunk of a host that is still running.
func (c *fakeCall) print(t testing.TB, ip, data string) {
	t.Helper()
	select {
	case c.Outputs <- task.Output{Host: task.Host{IP: ip}, Stream: task.Stdout, Data: data}:
	case <-time.After(testTimeout):
		t.Fatal("the run did not take the output chunk")
	}
}

func (c *fakeCall) send(t testing.TB, r task.HostResult) {
	t.Helper()
	select {
	case c.Results <- r:
	case <-time.After(testTimeout):
		t.Fatal("the run did not take the result")
	}
}

// env is a server over a fresh SQLite store with a small inventory, three
// users (admin, operator, viewer) and the original modules.
type env struct {
	t      testing.TB
	st     *store.Store
	srv    *Server
	ts     *httptest.Server
	master *fakeMaster
	users  map[string]store.User
	cookie map[string]string // user name -> session token
}

const testPassword = "correct horse battery"

func newEnv(t testing.TB, mutate ...func(*Config)) *env {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, store.DialectSQLite, filepath.Join(t.TempDir(), "web.sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := st.SeedOriginal(ctx); err != nil {
		t.Fatal(err)
	}
	for _, sv := range []store.Server{
		{IP: "192.168.1.10", Name: "sn2012-07-010", WIP: "10.11.100.10", OS: "Linux", AppID: 1},
		{IP: "192.168.1.20", Name: "sn2013-08-020", WIP: "10.11.100.20", OS: "Linux", AppID: 1},
		{IP: "192.168.1.21", Name: "sn2013-08-021", WIP: "10.11.100.21", OS: "Linux", AppID: 2},
	} {
		if _, err := st.UpsertServer(ctx, sv); err != nil {
			t.Fatal(err)
		}
	}
	return newEnvOn(t, st, mutate...)
}

// newEnvOn builds the server over an existing, migrated store and adds the
// three users with sessions.
func newEnvOn(t testing.TB, st *store.Store, mutate ...func(*Config)) *env {
	t.Helper()
	ctx := context.Background()
	// Low-cost hashes keep the tests fast; cost does not change behaviour.
	hash, err := bcrypt.GenerateFromPassword([]byte(testPassword), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, st: st, master: newFakeMaster(), users: map[string]store.User{}, cookie: map[string]string{}}
	for _, name := range []string{"admin", "operator", "viewer"} {
		u := store.User{Name: name, Role: name, PasswordHash: string(hash)}
		id, err := st.CreateUser(ctx, u)
		if err != nil {
			t.Fatal(err)
		}
		u.ID = id
		e.users[name] = u
		tok, _ := newSecret()
		if err := st.CreateSession(ctx, store.HashToken(tok), id, time.Now().Add(time.Hour), "test"); err != nil {
			t.Fatal(err)
		}
		e.cookie[name] = tok
	}
	cfg := Config{LoginRateBurst: 3, MaxBodyBytes: 64 << 10, MasterName: "fake"}
	for _, m := range mutate {
		m(&cfg)
	}
	srv, err := New(cfg, st, e.master, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	e.srv = srv
	e.ts = httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		e.ts.Close()
	})
	return e
}

// req is one HTTP request in a test.
type req struct {
	method, path string
	as           string // user name whose session cookie is sent; "" for none
	body         string
	ctype        string
	header       map[string]string
}

type resp struct {
	code   int
	body   string
	header http.Header
}

func (e *env) do(r req) resp {
	e.t.Helper()
	var body io.Reader
	if r.body != "" {
		body = strings.NewReader(r.body)
	}
	hr, err := http.NewRequest(r.method, e.ts.URL+r.path, body)
	if err != nil {
		e.t.Fatal(err)
	}
	if r.ctype != "" {
		hr.Header.Set("Content-Type", r.ctype)
	} else if r.body != "" && strings.HasPrefix(r.path, "/api/") {
		hr.Header.Set("Content-Type", "application/json")
	} else if r.body != "" {
		hr.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if r.as != "" {
		hr.AddCookie(&http.Cookie{Name: sessionCookie, Value: e.cookie[r.as]})
	}
	for k, v := range r.header {
		hr.Header.Set(k, v)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }, Timeout: testTimeout}
	res, err := client.Do(hr)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return resp{code: res.StatusCode, body: string(b), header: res.Header}
}

// want asserts the status and that the body contains every fragment.
func (r resp) want(t testing.TB, code int, fragments ...string) resp {
	t.Helper()
	if r.code != code {
		t.Fatalf("status %d, want %d; body: %.400s", r.code, code, r.body)
	}
	for _, f := range fragments {
		if !strings.Contains(r.body, f) {
			t.Fatalf("body lacks %q: %.600s", f, r.body)
		}
	}
	return r
}

func (r resp) jsonError(t testing.TB) string {
	t.Helper()
	var e apiError
	if err := json.Unmarshal([]byte(r.body), &e); err != nil || e.Error == "" {
		t.Fatalf("not a JSON error body: %q", r.body)
	}
	return e.Error
}

func form(kv ...string) string {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Add(kv[i], kv[i+1])
	}
	return v.Encode()
}

// snapshot captures everything a refused request must leave unchanged.
type snapshot struct {
	Funs    []store.FunCateg
	Apps    []store.AppCateg
	Servers []store.Server
	Modules []store.Module
	Users   []store.User
	Runs    int
}

func (e *env) snapshot() snapshot {
	e.t.Helper()
	ctx := context.Background()
	var s snapshot
	var err error
	if s.Funs, err = e.st.ListFunCategs(ctx); err != nil {
		e.t.Fatal(err)
	}
	apps, err := e.st.ListAppCategsPage(ctx, store.AppFilter{PageRequest: store.PageRequest{Limit: store.MaxLimit}})
	if err != nil || apps.Next != "" {
		e.t.Fatalf("applications: %v (more than a page: %q)", err, apps.Next)
	}
	for _, a := range apps.AppCategs {
		s.Apps = append(s.Apps, a.AppCateg)
	}
	servers, err := e.st.ListServersPage(ctx, store.ServerFilter{PageRequest: store.PageRequest{Limit: store.MaxLimit}})
	if err != nil || servers.Next != "" {
		e.t.Fatalf("servers: %v (more than a page: %q)", err, servers.Next)
	}
	for _, sv := range servers.Servers {
		s.Servers = append(s.Servers, sv.Server)
	}
	if s.Modules, err = e.st.ListModules(ctx); err != nil {
		e.t.Fatal(err)
	}
	if s.Users, err = e.st.ListUsers(ctx); err != nil {
		e.t.Fatal(err)
	}
	runs, err := e.st.ListRuns(ctx, store.RunFilter{Limit: store.MaxLimit})
	if err != nil || runs.Next != "" {
		e.t.Fatalf("runs: %v (more than a page: %q)", err, runs.Next)
	}
	s.Runs = len(runs.Runs)
	return s
}

// auditLog returns the newest entries of the audit log.
func (e *env) auditLog(limit int) ([]store.AuditEntry, error) {
	page, err := e.st.ListAudit(context.Background(), store.AuditFilter{PageRequest: store.PageRequest{Limit: limit}})
	return page.Entries, err
}

func (e *env) assertUnchanged(before snapshot) {
	e.t.Helper()
	after := e.snapshot()
	b, _ := json.Marshal(before)
	a, _ := json.Marshal(after)
	if string(a) != string(b) {
		e.t.Fatalf("the database changed:\nbefore %s\nafter  %s", b, a)
	}
}

// sseEvent is one parsed server-sent event.
type sseEvent struct {
	Name string
	Data string
}

// sseClient reads events from an open stream.
type sseClient struct {
	t      testing.TB
	res    *http.Response
	events chan sseEvent
	cancel context.CancelFunc
}

func (e *env) openEvents(runID, as string) *sseClient {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	hr, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.ts.URL+"/api/v1/runs/"+runID+"/events", nil)
	hr.AddCookie(&http.Cookie{Name: sessionCookie, Value: e.cookie[as]})
	res, err := http.DefaultClient.Do(hr)
	if err != nil {
		cancel()
		e.t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(res.Body)
		cancel()
		e.t.Fatalf("events: status %d: %s", res.StatusCode, b)
	}
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		e.t.Fatalf("events: content type %q", ct)
	}
	s := &sseClient{t: e.t, res: res, events: make(chan sseEvent, 100), cancel: cancel}
	go func() {
		defer close(s.events)
		sc := bufio.NewScanner(res.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.Name != "" {
					s.events <- ev
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, "event: "):
				ev.Name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				ev.Data += strings.TrimPrefix(line, "data: ")
			}
		}
	}()
	e.t.Cleanup(func() { cancel(); res.Body.Close() })
	return s
}

func (s *sseClient) next() sseEvent {
	s.t.Helper()
	select {
	case ev, ok := <-s.events:
		if !ok {
			s.t.Fatal("event stream ended early")
		}
		return ev
	case <-time.After(testTimeout):
		s.t.Fatal("no event arrived")
		return sseEvent{}
	}
}

// waitStatus polls the stored run until it reaches status (bounded).
func (e *env) waitStatus(id string, status task.RunStatus) store.Run {
	e.t.Helper()
	deadline := time.Now().Add(testTimeout)
	for {
		run, _, err := e.st.GetRun(context.Background(), id)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			e.t.Fatal(err)
		}
		if err == nil && run.Status == status {
			return run
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("run %s is %q, want %q", id, run.Status, status)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (e *env) startRun(as, body string) string {
	e.t.Helper()
	r := e.do(req{method: "POST", path: "/api/v1/runs", as: as, body: body}).want(e.t, http.StatusAccepted)
	var out struct {
		RunID string `json:"run_id"`
	}
	if err := json.Unmarshal([]byte(r.body), &out); err != nil || out.RunID == "" {
		e.t.Fatalf("bad run answer %q", r.body)
	}
	return out.RunID
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func testNow() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }
