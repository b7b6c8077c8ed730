package runs

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/rs/zerolog"

	"github.com/omserver/omserver-go/internal/apperr"
	"github.com/omserver/omserver-go/internal/store"
	"github.com/omserver/omserver-go/internal/task"
	"github.com/omserver/omserver-go/internal/testutil/mysqltest"
	"github.com/omserver/omserver-go/internal/testutil/netcut"
)

// fakeMaster is a Dispatcher that behaves like a master with a journal:
// the test appends a run's events; Dispatch and Resume stream them (after
// a seq, live until the done event) to any number of readers; Ack and
// Cancel are recorded. A run it "lost" ends its streams with
// task.ErrInterrupted.
type fakeMaster struct {
	addr string

	mu        sync.Mutex
	runs      map[string]*fakeRun
	acks      map[string]uint64
	cancels   []string
	resumes   int
	down      bool
	wake      chan struct{}
	dispatchs chan string
}

type fakeRun struct {
	events []task.Event
	lost   bool
}

func newFakeMaster() *fakeMaster {
	return &fakeMaster{addr: "127.0.0.1:7070", runs: map[string]*fakeRun{}, acks: map[string]uint64{},
		wake: make(chan struct{}), dispatchs: make(chan string, 16)}
}

func (f *fakeMaster) broadcast() {
	close(f.wake)
	f.wake = make(chan struct{})
}

// emit appends an event to a run (numbered after the last).
func (f *fakeMaster) emit(id string, ev task.Event) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.runs[id]
	ev.Seq, ev.RunID = uint64(len(r.events)+1), id
	r.events = append(r.events, ev)
	f.broadcast()
}

func (f *fakeMaster) result(id, ip, out string) {
	f.emit(id, task.Event{Type: task.EventResult, Result: &task.HostResult{Host: task.Host{IP: ip}, Status: task.StatusOK, Stdout: out}})
}

func (f *fakeMaster) done(id string) {
	f.mu.Lock()
	end := task.RunEnd{Status: task.RunDone}
	for _, c := range f.cancels {
		if c == id {
			end = task.RunEnd{Status: task.RunCancelled, Error: "cancelled on request"}
		}
	}
	f.mu.Unlock()
	f.emit(id, task.Event{Type: task.EventDone, End: &end})
}

func (f *fakeMaster) setDown(down bool) {
	f.mu.Lock()
	f.down = down
	f.broadcast()
	f.mu.Unlock()
}

func (f *fakeMaster) Dispatch(ctx context.Context, t task.Task, target func(string) error, onEvent func(task.Event) error) (string, error) {
	if err := target(f.addr); err != nil {
		return "", err
	}
	f.mu.Lock()
	if _, dup := f.runs[t.RunID]; dup {
		f.mu.Unlock()
		return f.addr, task.ErrDuplicateRun
	}
	f.runs[t.RunID] = &fakeRun{}
	f.mu.Unlock()
	f.dispatchs <- t.RunID
	err := f.stream(ctx, t.RunID, 0, onEvent)
	if errors.Is(err, errFakeDown) {
		// As the relay client says it: the run may go on there.
		err = apperr.Errorf(apperr.Unavailable, "lost contact with the master during the run: %v", err)
	}
	return f.addr, err
}

func (f *fakeMaster) Resume(ctx context.Context, addr, id string, after uint64, onEvent func(task.Event) error) error {
	f.mu.Lock()
	f.resumes++
	f.mu.Unlock()
	return f.stream(ctx, id, after, onEvent)
}

// errFakeDown is what a stream gets while the fake master is "down".
var errFakeDown = fmt.Errorf("fake master down: %w", task.ErrMasterDown)

func (f *fakeMaster) stream(ctx context.Context, id string, after uint64, onEvent func(task.Event) error) error {
	for {
		f.mu.Lock()
		if f.down {
			f.mu.Unlock()
			return errFakeDown
		}
		r, ok := f.runs[id]
		if !ok {
			f.mu.Unlock()
			return task.ErrRunNotFound
		}
		var todo []task.Event
		for _, ev := range r.events {
			if ev.Seq > after {
				todo = append(todo, ev)
			}
		}
		lost, wake := r.lost, f.wake
		f.mu.Unlock()
		for _, ev := range todo {
			if err := onEvent(ev); err != nil {
				return err
			}
			after = ev.Seq
			if ev.Type == task.EventDone {
				return nil
			}
		}
		if lost {
			return fmt.Errorf("%w: the master stopped during run %s", task.ErrInterrupted, id)
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (f *fakeMaster) Ack(ctx context.Context, addr, id string, seq uint64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if seq > f.acks[id] {
		f.acks[id] = seq
	}
	return nil
}

func (f *fakeMaster) acked(id string) uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.acks[id]
}

func (f *fakeMaster) Cancel(ctx context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.runs[id]; !ok {
		return task.ErrRunNotFound
	}
	f.cancels = append(f.cancels, id)
	return nil
}

// Continue: the fake runs no rollouts, so no run ever waits.
func (f *fakeMaster) Continue(ctx context.Context, id string) error {
	return task.ErrRunNotFound
}

// mysqlStore opens a migrated MariaDB store through a cuttable link, with
// the original modules and three servers.
func mysqlStore(t *testing.T) (*store.Store, *netcut.Proxy, string) {
	t.Helper()
	dsn := mysqltest.New(t)
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	p := netcut.New(t, cfg.Addr)
	cfg.Addr = p.Addr
	cfg.Timeout = 2 * time.Second
	ctx := context.Background()
	st, err := store.Open(ctx, store.DialectMySQL, cfg.FormatDSN())
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
	for _, ip := range []string{"192.168.1.10", "192.168.1.20", "192.168.1.30"} {
		if _, err := st.UpsertServer(ctx, store.Server{IP: ip, Name: "h" + ip[len(ip)-2:], OS: "Linux", AppID: 1}); err != nil {
			t.Fatal(err)
		}
	}
	return st, p, cfg.FormatDSN()
}

func newService(t *testing.T, st *store.Store, m Dispatcher, tier string) *Service {
	t.Helper()
	s, err := New(Config{TierID: tier, LeaseTTL: 3 * time.Second, MasterLostAfter: 5 * time.Second}, st, m, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
	})
	return s
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 20s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func waitRun(t *testing.T, st *store.Store, id string, want task.RunStatus) (store.Run, []task.HostResult) {
	t.Helper()
	var run store.Run
	var results []task.HostResult
	waitFor(t, "run "+id+" "+string(want), func() bool {
		var err error
		run, results, err = st.GetRun(context.Background(), id)
		return err == nil && run.Status == want
	})
	return run, results
}

func nextDispatch(t *testing.T, m *fakeMaster) string {
	t.Helper()
	select {
	case id := <-m.dispatchs:
		return id
	case <-time.After(20 * time.Second):
		t.Fatal("nothing dispatched")
		return ""
	}
}

func submit(t *testing.T, s *Service, hosts ...string) string {
	t.Helper()
	id, err := s.Submit(context.Background(), Request{ModuleID: 1003, Hosts: hosts, User: "alice"})
	if err != nil {
		t.Fatalf("Submit: %v", err)
	}
	return id
}

// TestDatabaseOutageMidRun: results that arrive while the database is
// unreachable are stored once it is back; nothing is acknowledged to the
// master meanwhile; the run does not stay running.
func TestDatabaseOutageMidRun(t *testing.T) {
	st, link, _ := mysqlStore(t)
	m := newFakeMaster()
	s := newService(t, st, m, "tier-a")
	id := submit(t, s, "192.168.1.10", "192.168.1.20", "192.168.1.30")
	nextDispatch(t, m)
	m.result(id, "192.168.1.10", "before")
	waitFor(t, "first result acknowledged", func() bool { return m.acked(id) == 1 })

	link.Cut()
	st.DB().SetMaxIdleConns(0)
	m.result(id, "192.168.1.20", "during")
	m.result(id, "192.168.1.30", "during")
	m.done(id)
	time.Sleep(1500 * time.Millisecond)
	if got := m.acked(id); got != 1 {
		t.Fatalf("acknowledged event %d while the database was down", got)
	}
	link.Restore()
	st.DB().SetMaxIdleConns(2)
	run, results := waitRun(t, st, id, task.RunOK)
	if len(results) != 3 || run.AckedSeq != 4 || run.Master != m.addr {
		t.Fatalf("after the outage: %+v with %d results", run, len(results))
	}
	waitFor(t, "done acknowledged", func() bool { return m.acked(id) == 4 })
}

// TestTwoTiersShareRuns: a run started on tier A is shown live on tier B
// (which follows the master read-only), cancelled from B, and, when A
// dies, taken over by B once A's lease expires, from its last stored event.
func TestTwoTiersShareRuns(t *testing.T) {
	st, _, dsn := mysqlStore(t)
	stB, err := store.Open(context.Background(), store.DialectMySQL, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer stB.Close()
	m := newFakeMaster()
	a := newService(t, st, m, "tier-a")
	b := newService(t, stB, m, "tier-b")

	id := submit(t, a, "192.168.1.10", "192.168.1.20", "192.168.1.30")
	nextDispatch(t, m)
	m.result(id, "192.168.1.10", "one")
	waitFor(t, "stored", func() bool { return m.acked(id) == 1 })

	// B shows it live: from the master, after what A stored.
	sub, live := b.Subscribe(id)
	if !live {
		t.Fatal("tier B does not see the run as running")
	}
	m.result(id, "192.168.1.20", "two")
	select {
	case ev := <-sub.C:
		if ev.Type != task.EventResult || ev.Result.Stdout != "two" {
			t.Fatalf("tier B got %+v", ev)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("tier B saw nothing live")
	}
	b.Unsubscribe(id, sub)
	if b.Running(id) {
		t.Fatal("tier B claims a run tier A holds")
	}

	// A dies without handing its lease back (kill -9): its lease expires,
	// B takes the run over and resumes after A's last stored event.
	a.mu.Lock()
	a.closing = true
	a.mu.Unlock()
	a.cancelBase()
	a.wg.Wait()
	waitFor(t, "tier B takes the run over", func() bool { return b.Running(id) })
	l, err := stB.GetLease(context.Background(), id)
	if err != nil || l.Owner != "tier-b" {
		t.Fatalf("lease after the takeover: %+v %v", l, err)
	}
	// Cancel from B reaches the master; the master ends the run cancelled.
	if err := b.Cancel(context.Background(), id); err != nil {
		t.Fatalf("cancel from tier B: %v", err)
	}
	m.result(id, "192.168.1.30", "three")
	m.done(id)
	run, results := waitRun(t, stB, id, task.RunCancelled)
	if len(results) != 3 || run.AckedSeq != 4 {
		t.Fatalf("after the takeover: %+v with %d results", run, len(results))
	}
}

// TestMasterLostRun: a run whose master lost it (restarted during it) is
// interrupted with the results it had; a run whose master stays
// unreachable is interrupted after MasterLostAfter; a run that reached no
// master fails without anything run.
func TestMasterLostRun(t *testing.T) {
	st, _, _ := mysqlStore(t)
	m := newFakeMaster()
	s := newService(t, st, m, "tier-a")

	id := submit(t, s, "192.168.1.10", "192.168.1.20")
	nextDispatch(t, m)
	m.result(id, "192.168.1.10", "kept")
	m.mu.Lock()
	m.runs[id].lost = true
	m.broadcast()
	m.mu.Unlock()
	run, results := waitRun(t, st, id, task.RunInterrupted)
	if len(results) != 1 || results[0].Stdout != "kept" || run.Error == "" {
		t.Fatalf("lost run: %+v %+v", run, results)
	}

	id2 := submit(t, s, "192.168.1.10")
	nextDispatch(t, m)
	start := time.Now()
	m.setDown(true)
	run, _ = waitRun(t, st, id2, task.RunInterrupted)
	if took := time.Since(start); took < 4*time.Second {
		t.Fatalf("interrupted after %s, before MasterLostAfter", took)
	}
	t.Logf("unreachable master: %s", run.Error)
	m.setDown(false)

	// A run recorded with no master (its tier died before sending it)
	// and whose lease expired: nothing ran.
	ctx := context.Background()
	if err := st.CreateLeasedRun(ctx, store.Run{ID: "unsent", ModuleID: 1003, ModuleName: "x", Username: "alice",
		Hosts: []task.Host{{IP: "192.168.1.10"}}}, "dead", time.Now().Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	run, _ = waitRun(t, st, "unsent", task.RunFailed)
	if run.Error == "" {
		t.Fatal("no reason given")
	}
}
