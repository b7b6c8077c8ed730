package master

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/omserver/omserver-go/internal/backend"
	"github.com/omserver/omserver-go/internal/backend/local"
	"github.com/omserver/omserver-go/internal/module"
	"github.com/omserver/omserver-go/internal/task"
)

const shippedDir = "../../modules"

// testModules are small modules for the dispatcher tests.
var testModules = map[string]string{
	"Mid_1.yaml": "id: 1\nname: echo\nsteps: [{run: echo one}]\n",
	"Mid_2.yaml": `id: 2
name: text
timeout: 7s
params:
  - {name: sys_param_1, type: text, max_length: 64, pattern: '[A-Za-z0-9._/-]+'}
steps: [{run: 'echo {{sys_param_1}}'}]
`,
	"Mid_3.yaml": "id: 3\nname: salt only\nbackend: salt\nsteps: [{run: uptime}]\n",
	"Mid_4.yaml": `id: 4
name: sleeper
params:
  - {name: pidfile, type: text, max_length: 200, pattern: '/[A-Za-z0-9._/-]+'}
steps: [{run: 'sleep 300 & echo $! > {{pidfile}}; wait'}]
`,
}

func writeModules(t testing.TB, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// fake is a backend whose hosts block until released (when block is set),
// recording every call and the highest number of concurrent calls.
type fake struct {
	name    string
	block   bool
	started chan task.Host // receives each host as its Run begins (buffered by the test)
	mu      sync.Mutex
	release map[string]chan struct{}
	calls   atomic.Int64
	active  atomic.Int64
	max     atomic.Int64
	steps   [][]backend.Step
	opts    []backend.Options
}

func newFake(block bool, hosts int) *fake {
	return &fake{name: "fake", block: block, started: make(chan task.Host, hosts+1), release: map[string]chan struct{}{}}
}

func (f *fake) Name() string { return f.name }

func (f *fake) gate(ip string) chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	ch, ok := f.release[ip]
	if !ok {
		ch = make(chan struct{})
		f.release[ip] = ch
	}
	return ch
}

func (f *fake) Run(ctx context.Context, h task.Host, steps []backend.Step, opts backend.Options) task.HostResult {
	f.calls.Add(1)
	f.mu.Lock()
	f.steps = append(f.steps, steps)
	f.opts = append(f.opts, opts)
	f.mu.Unlock()
	n := f.active.Add(1)
	defer f.active.Add(-1)
	for {
		m := f.max.Load()
		if n <= m || f.max.CompareAndSwap(m, n) {
			break
		}
	}
	res := task.HostResult{Host: h, ExitCode: 0, Status: task.StatusOK, Stdout: h.IP, Started: time.Now()}
	if f.block && !strings.HasPrefix(h.Name, "free") {
		f.started <- h
		select {
		case <-f.gate(h.IP):
		case <-ctx.Done():
			res.Status, res.ExitCode, res.Error = task.StatusCancelled, -1, "cancelled"
		}
	}
	return res
}

func hosts(n int) []task.Host {
	hs := make([]task.Host, n)
	for i := range hs {
		hs[i] = task.Host{IP: fmt.Sprintf("10.0.%d.%d", i/250, i%250+1), Name: fmt.Sprintf("h%d", i)}
	}
	return hs
}

func newTask(runID string, moduleID int, hs []task.Host, params map[string]string) task.Task {
	return task.Task{RunID: runID, ModuleID: moduleID, Hosts: hs, Params: params, User: "tester", IssuedAt: time.Now(), Nonce: "n-" + runID}
}

func newMaster(t testing.TB, cfg Config, dir string, backends map[string]backend.Backend) *Master {
	t.Helper()
	if cfg.DefaultBackend == "" {
		cfg.DefaultBackend = "fake"
	}
	m, err := New(cfg, dir, backends, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// collector gathers emitted results and checks emit is never called
// concurrently.
type collector struct {
	inEmit  atomic.Bool
	overlap atomic.Bool
	mu      sync.Mutex
	results []task.HostResult
	seqs    []uint64 // of every event, in emit order
	done    int      // done events seen
	outputs int      // output events seen
	batches []task.Batch
	ch      chan task.HostResult
}

func newCollector(n int) *collector { return &collector{ch: make(chan task.HostResult, n)} }

func (c *collector) emit(ev task.Event) {
	if !c.inEmit.CompareAndSwap(false, true) {
		c.overlap.Store(true)
	}
	defer c.inEmit.Store(false)
	c.mu.Lock()
	c.seqs = append(c.seqs, ev.Seq)
	switch ev.Type {
	case task.EventDone:
		c.done++
		c.mu.Unlock()
		return
	case task.EventOutput:
		c.outputs++
		c.mu.Unlock()
		return
	case task.EventBatch:
		c.batches = append(c.batches, *ev.Batch)
		c.mu.Unlock()
		return
	}
	r := *ev.Result
	c.results = append(c.results, r)
	c.mu.Unlock()
	c.ch <- r
}

// checkSeqs asserts the events were numbered 1..n without gaps and ended
// with exactly one done event.
func (c *collector) checkSeqs(t *testing.T) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, s := range c.seqs {
		if s != uint64(i+1) {
			t.Fatalf("event %d has seq %d; want gap-free numbering from 1: %v", i, s, c.seqs)
		}
	}
	if c.done != 1 || len(c.seqs) != len(c.results)+c.outputs+1 {
		t.Fatalf("%d done events for %d results and %d events", c.done, len(c.results), len(c.seqs))
	}
}

// TestCatalogSaysRisky: the catalog carries a module file's risky mark,
// so the web tier can ask for a stronger confirmation.
func TestCatalogSaysRisky(t *testing.T) {
	m := newMaster(t, Config{}, shippedDir, map[string]backend.Backend{"fake": newFake(false, 0)})
	cat, err := m.Catalog()
	if err != nil {
		t.Fatal(err)
	}
	var risky []int
	for _, mi := range cat {
		if mi.Risky {
			risky = append(risky, mi.ID)
		}
	}
	if fmt.Sprint(risky) != "[1005 1007]" {
		t.Fatalf("risky modules in the catalog: %v", risky)
	}
}

func TestShippedModulesLoadIntoMaster(t *testing.T) {
	m := newMaster(t, Config{}, shippedDir, map[string]backend.Backend{"fake": newFake(false, 0)})
	var ids []int
	for _, s := range m.Modules() {
		ids = append(ids, s.ID)
	}
	if fmt.Sprint(ids) != "[1001 1002 1003 1004 1005 1006 1007 1008]" {
		t.Fatalf("modules %v", ids)
	}
	if m.cfg.Forks != DefaultForks || DefaultForks < 50 {
		t.Fatalf("default forks %d", m.cfg.Forks)
	}
}

func TestModule1003RunsLocally(t *testing.T) {
	m := newMaster(t, Config{DefaultBackend: "local"}, shippedDir, map[string]backend.Backend{"local": local.New(zerolog.Nop())})
	c := newCollector(2)
	err := m.Run(context.Background(), newTask("r1003", 1003, []task.Host{{IP: "127.0.0.1", Name: "localhost"}, {IP: "192.0.2.7", Name: "web7"}}, nil), c.emit)
	if err != nil {
		t.Fatal(err)
	}
	c.checkSeqs(t)
	byIP := map[string]task.HostResult{}
	for _, r := range c.results {
		byIP[r.Host.IP] = r
		if r.RunID != "r1003" {
			t.Errorf("run id %q", r.RunID)
		}
	}
	if r := byIP["127.0.0.1"]; r.Status != task.StatusOK || r.ExitCode != 0 || !strings.Contains(r.Stdout, "Linux") {
		t.Errorf("1003 on localhost: %s exit %d %q %q %s", r.Status, r.ExitCode, r.Stdout, r.Stderr, r.Error)
	}
	if r := byIP["192.0.2.7"]; r.Status != task.StatusUnreachable || !strings.Contains(r.Error, "refusing 192.0.2.7*web7") {
		t.Errorf("1003 on another host via local: %s %s", r.Status, r.Error)
	}
}

// Every refused task returns an error before anything runs: the recording
// backend sees no call and emit is never called.
func TestRefusedTasksRunNothing(t *testing.T) {
	dir := writeModules(t, testModules)
	mods, err := module.LoadDir(shippedDir)
	if err != nil {
		t.Fatal(err)
	}
	for id, s := range mods {
		data, err := os.ReadFile(s.File)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("Mid_%d.yaml", id)), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.CopyFS(filepath.Join(dir, "files"), os.DirFS(filepath.Join(shippedDir, "files"))); err != nil {
		t.Fatal(err)
	}
	rec := newFake(false, 0)
	m := newMaster(t, Config{}, dir, map[string]backend.Backend{"fake": rec})
	h := hosts(3)
	cases := []struct {
		name   string
		task   task.Task
		target error
		errHas string
	}{
		{"unknown module", newTask("a", 1099, h, nil), task.ErrUnknownModule, "module 1099 is not installed on this master"},
		{"choice outside options", newTask("b", 1007, h, map[string]string{"sys_param_1": "sshd"}), task.ErrInvalidParams, `"sshd" is not one of the options`},
		{"choice injection", newTask("c", 1006, h, map[string]string{"sys_param_1": "nginx; rm -rf /"}), task.ErrInvalidParams, "is not one of the options"},
		{"number out of range", newTask("d", 1001, h, map[string]string{"sys_param_1": "1000"}), task.ErrInvalidParams, "1000 is more than the maximum 999"},
		{"number not an integer", newTask("e", 1001, h, map[string]string{"sys_param_1": "50; rm -rf /"}), task.ErrInvalidParams, "is not a base-10 integer"},
		{"unknown parameter", newTask("f", 1003, h, map[string]string{"cmd": "id"}), task.ErrInvalidParams, `unknown parameter "cmd"`},
		{"text semicolon", newTask("g", 2, h, map[string]string{"sys_param_1": "; rm -rf /"}), task.ErrInvalidParams, "does not match the pattern"},
		{"text command substitution", newTask("h", 2, h, map[string]string{"sys_param_1": "$(id)"}), task.ErrInvalidParams, "does not match the pattern"},
		{"text backticks", newTask("i", 2, h, map[string]string{"sys_param_1": "`id`"}), task.ErrInvalidParams, "does not match the pattern"},
		{"text newline", newTask("j", 2, h, map[string]string{"sys_param_1": "a\nid"}), task.ErrInvalidParams, "control character or line break"},
		{"text at-at", newTask("k", 2, h, map[string]string{"sys_param_1": "a@@b"}), task.ErrInvalidParams, "does not match the pattern"},
		{"text missing", newTask("l", 2, h, nil), task.ErrInvalidParams, "missing and has no default"},
		{"backend missing", newTask("m", 3, h, nil), task.ErrUnknownBackend, `needs backend "salt"`},
		{"no hosts", newTask("n", 1, nil, nil), nil, "no hosts"},
		{"no run id", newTask("", 1, h, nil), nil, "run id"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			emitted := 0
			err := m.Run(context.Background(), tc.task, func(task.Event) { emitted++ })
			if err == nil {
				t.Fatal("task accepted")
			}
			if tc.target != nil && !errors.Is(err, tc.target) {
				t.Errorf("error %v is not %v", err, tc.target)
			}
			if !strings.Contains(err.Error(), tc.errHas) {
				t.Errorf("error %q does not contain %q", err, tc.errHas)
			}
			if emitted != 0 || rec.calls.Load() != 0 {
				t.Fatalf("refused task ran: %d emitted, %d backend calls", emitted, rec.calls.Load())
			}
		})
	}
	// The same master runs a valid task, so the refusals above were not
	// an artefact of a broken setup.
	if err := m.Run(context.Background(), newTask("ok", 2, h, map[string]string{"sys_param_1": "web-1.example"}), func(task.Event) {}); err != nil {
		t.Fatal(err)
	}
	if rec.calls.Load() != 3 || rec.steps[0][0].Command != "echo 'web-1.example'" {
		t.Fatalf("valid task: %d calls, steps %+v", rec.calls.Load(), rec.steps)
	}
}

// TestLargeRunNeedsConfirmation: a task on more hosts than the master's
// large-run threshold runs nowhere unless its typed host count matches;
// the web tier checks the same, but the master never trusts it.
func TestLargeRunNeedsConfirmation(t *testing.T) {
	dir := writeModules(t, testModules)
	rec := newFake(false, 0)
	m := newMaster(t, Config{LargeRunHosts: 2}, dir, map[string]backend.Backend{"fake": rec})
	for _, tc := range []struct {
		name      string
		hosts     int
		confirmed int
		ok        bool
	}{
		{"at the threshold, unconfirmed", 2, 0, true},
		{"over, unconfirmed", 3, 0, false},
		{"over, wrong count", 3, 2, false},
		{"over, confirmed", 3, 3, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := rec.calls.Load()
			tk := newTask("large-"+strings.ReplaceAll(tc.name, " ", "-"), 1, hosts(tc.hosts), nil)
			tk.ConfirmedHosts = tc.confirmed
			err := m.Run(context.Background(), tk, func(task.Event) {})
			ran := rec.calls.Load() - before
			if tc.ok {
				if err != nil || ran != int64(tc.hosts) {
					t.Fatalf("err %v, %d hosts ran", err, ran)
				}
				return
			}
			if !errors.Is(err, task.ErrUnconfirmed) || ran != 0 {
				t.Fatalf("err %v, %d hosts ran; want ErrUnconfirmed and nothing run", err, ran)
			}
		})
	}
}

func TestForksBoundConcurrency(t *testing.T) {
	for _, tc := range []struct{ forks, hosts int }{{3, 10}, {5, 2}, {1, 4}, {50, 120}} {
		t.Run(fmt.Sprintf("forks=%d/hosts=%d", tc.forks, tc.hosts), func(t *testing.T) {
			f := newFake(true, tc.hosts)
			m := newMaster(t, Config{Forks: tc.forks}, writeModules(t, testModules), map[string]backend.Backend{"fake": f})
			c := newCollector(tc.hosts)
			hs := hosts(tc.hosts)
			done := make(chan error, 1)
			go func() { done <- m.Run(context.Background(), newTask("forks", 1, hs, nil), c.emit) }()
			want := min(tc.forks, tc.hosts)
			// Exactly `want` hosts start while none is released...
			var running []task.Host
			for range want {
				running = append(running, <-f.started)
			}
			if got := f.active.Load(); got != int64(want) {
				t.Fatalf("%d concurrent calls, want %d", got, want)
			}
			// ...then each release lets one more start.
			for finished := 0; finished < tc.hosts; finished++ {
				h := running[0]
				running = running[1:]
				close(f.gate(h.IP))
				<-c.ch
				if finished+want < tc.hosts {
					running = append(running, <-f.started)
				}
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if f.max.Load() != int64(want) {
				t.Fatalf("max concurrency %d, want %d", f.max.Load(), want)
			}
			if len(c.results) != tc.hosts || c.overlap.Load() {
				t.Fatalf("%d results, overlapping emits %v", len(c.results), c.overlap.Load())
			}
		})
	}
}

// Two runs share the master-wide bound of Forks.
func TestForksBoundIsMasterWide(t *testing.T) {
	f := newFake(true, 8)
	m := newMaster(t, Config{Forks: 3}, writeModules(t, testModules), map[string]backend.Backend{"fake": f})
	hs := hosts(8)
	ca, cb := newCollector(4), newCollector(4)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _ = m.Run(context.Background(), newTask("A", 1, hs[:4], nil), ca.emit) }()
	go func() { defer wg.Done(); _ = m.Run(context.Background(), newTask("B", 1, hs[4:], nil), cb.emit) }()
	var running []task.Host
	for range 3 {
		running = append(running, <-f.started)
	}
	for left := 8; left > 0; left-- {
		close(f.gate(running[0].IP))
		running = running[1:]
		if left > 3 {
			running = append(running, <-f.started)
		}
	}
	wg.Wait()
	if f.max.Load() != 3 {
		t.Fatalf("max concurrency over two runs %d, want 3", f.max.Load())
	}
	if len(ca.results)+len(cb.results) != 8 {
		t.Fatalf("results %d+%d", len(ca.results), len(cb.results))
	}
}

// Results stream in completion order, each as soon as its host is done.
func TestStreamingInCompletionOrder(t *testing.T) {
	f := newFake(true, 5)
	m := newMaster(t, Config{}, writeModules(t, testModules), map[string]backend.Backend{"fake": f})
	hs := hosts(5)
	c := newCollector(5)
	done := make(chan error, 1)
	go func() { done <- m.Run(context.Background(), newTask("order", 1, hs, nil), c.emit) }()
	for range hs {
		<-f.started
	}
	for _, i := range []int{3, 0, 4, 1, 2} {
		close(f.gate(hs[i].IP))
		r := <-c.ch // emitted before the next host is released
		if r.Host != hs[i] || r.Status != task.StatusOK || r.RunID != "order" {
			t.Fatalf("got %s %s, want host %s ok", r.Host, r.Status, hs[i])
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestCancel(t *testing.T) {
	f := newFake(true, 4)
	m := newMaster(t, Config{Forks: 2}, writeModules(t, testModules), map[string]backend.Backend{"fake": f})
	hs := hosts(4)
	c := newCollector(4)
	done := make(chan error, 1)
	go func() { done <- m.Run(context.Background(), newTask("cx", 1, hs, nil), c.emit) }()
	first := <-f.started
	<-f.started
	close(f.gate(first.IP))
	if r := <-c.ch; r.Status != task.StatusOK {
		t.Fatalf("first host %s", r.Status)
	}
	<-f.started // the third host took the freed slot
	if !m.Cancel("cx") {
		t.Fatal("Cancel did not find the run")
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	statuses := map[task.Status]int{}
	for _, r := range c.results {
		statuses[r.Status]++
	}
	if statuses[task.StatusOK] != 1 || statuses[task.StatusCancelled] != 3 || len(c.results) != 4 {
		t.Fatalf("statuses %v over %d results", statuses, len(c.results))
	}
	if f.calls.Load() != 3 {
		t.Fatalf("backend called %d times; the fourth host must not start after cancel", f.calls.Load())
	}
	if m.Cancel("cx") {
		t.Fatal("Cancel found a finished run")
	}
}

// Cancelling a run on the real local backend stops `sleep 300`: the
// process is gone afterwards.
func TestCancelStopsLocalProcess(t *testing.T) {
	m := newMaster(t, Config{DefaultBackend: "local"}, writeModules(t, testModules), map[string]backend.Backend{"local": local.New(zerolog.Nop())})
	pidFile := filepath.Join(t.TempDir(), "sleep.pid")
	c := newCollector(1)
	done := make(chan error, 1)
	go func() {
		done <- m.Run(context.Background(), newTask("sleep", 4, []task.Host{{IP: "127.0.0.1"}}, map[string]string{"pidfile": pidFile}), c.emit)
	}()
	var pid int
	for deadline := time.Now().Add(30 * time.Second); pid == 0 && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if data, err := os.ReadFile(pidFile); err == nil && strings.HasSuffix(string(data), "\n") {
			fmt.Sscan(string(data), &pid)
		}
	}
	if pid == 0 {
		t.Fatal("sleep did not start")
	}
	if !m.Cancel("sleep") {
		t.Fatal("Cancel did not find the run")
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if r := c.results[0]; r.Status != task.StatusCancelled {
		t.Fatalf("status %s %s", r.Status, r.Error)
	}
	if !processGone(pid) {
		syscall.Kill(pid, syscall.SIGKILL)
		t.Fatalf("sleep %d still running after cancel", pid)
	}
}

func processGone(pid int) bool {
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return true
		}
		if f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:])); len(f) > 0 && f[0] == "Z" {
			return true
		}
	}
	return false
}

func TestContextCancelAndDuplicateRun(t *testing.T) {
	f := newFake(true, 2)
	m := newMaster(t, Config{}, writeModules(t, testModules), map[string]backend.Backend{"fake": f})
	ctx, cancel := context.WithCancel(context.Background())
	c := newCollector(2)
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx, newTask("dup", 1, hosts(2), nil), c.emit) }()
	<-f.started
	<-f.started
	err := m.Run(context.Background(), newTask("dup", 1, hosts(1), nil), func(task.Event) { t.Error("duplicate run emitted") })
	if !errors.Is(err, task.ErrDuplicateRun) {
		t.Fatalf("duplicate run id: %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for _, r := range c.results {
		if r.Status != task.StatusCancelled {
			t.Errorf("host %s: %s", r.Host, r.Status)
		}
	}
	// The id is free again once the run is over.
	f.block = false
	if err := m.Run(context.Background(), newTask("dup", 1, hosts(1), nil), func(task.Event) {}); err != nil {
		t.Fatal(err)
	}
}

func TestTimeoutsPassedToBackend(t *testing.T) {
	f := newFake(false, 0)
	m := newMaster(t, Config{HostTimeout: 42 * time.Second, ConnectTimeout: 3 * time.Second, OutputCap: 1234}, writeModules(t, testModules), map[string]backend.Backend{"fake": f})
	if err := m.Run(context.Background(), newTask("t1", 1, hosts(1), nil), func(task.Event) {}); err != nil {
		t.Fatal(err)
	}
	if err := m.Run(context.Background(), newTask("t2", 2, hosts(1), map[string]string{"sys_param_1": "x"}), func(task.Event) {}); err != nil {
		t.Fatal(err)
	}
	want := []backend.Options{
		{ConnectTimeout: 3 * time.Second, Timeout: 42 * time.Second, OutputCap: 1234}, // module without timeout
		{ConnectTimeout: 3 * time.Second, Timeout: 7 * time.Second, OutputCap: 1234},  // module timeout: 7s
	}
	for i := range f.opts {
		if f.opts[i].OnOutput == nil {
			t.Fatalf("host %d got no live output hook", i)
		}
		f.opts[i].OnOutput = nil // a func compares only with nil
	}
	if fmt.Sprint(f.opts) != fmt.Sprint(want) {
		t.Fatalf("options %+v, want %+v", f.opts, want)
	}
}

func TestNewRefusesBadSetup(t *testing.T) {
	good := writeModules(t, testModules)
	broken := writeModules(t, map[string]string{"Mid_1.yaml": "id: 1\nname: x\nsteps: [{run: 'echo {{nope}}'}]\n"})
	fb := map[string]backend.Backend{"fake": newFake(false, 0)}
	for _, tc := range []struct {
		name   string
		cfg    Config
		dir    string
		errHas string
	}{
		{"invalid module", Config{DefaultBackend: "fake"}, broken, "Mid_1.yaml: steps[0].run: {{nope}} refers to an undeclared parameter"},
		{"missing dir", Config{DefaultBackend: "fake"}, filepath.Join(good, "nope"), "modules directory"},
		{"no default backend", Config{}, good, "no default backend"},
		{"unknown default backend", Config{DefaultBackend: "ssh"}, good, `default backend "ssh"`},
		{"negative forks", Config{DefaultBackend: "fake", Forks: -1}, good, "forks -1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := New(tc.cfg, tc.dir, fb, zerolog.Nop())
			if err == nil || m != nil || !strings.Contains(err.Error(), tc.errHas) {
				t.Fatalf("New = %v, %v; want error containing %q", m, err, tc.errHas)
			}
		})
	}
}

func moduleIDs(m *Master) string {
	var ids []int
	for _, s := range m.Modules() {
		ids = append(ids, s.ID)
	}
	return fmt.Sprint(ids)
}

func TestReload(t *testing.T) {
	dir := writeModules(t, testModules)
	f := newFake(true, 1)
	m := newMaster(t, Config{}, dir, map[string]backend.Backend{"fake": f})
	if moduleIDs(m) != "[1 2 3 4]" {
		t.Fatalf("modules %s", moduleIDs(m))
	}
	// A run in progress keeps the steps it started with.
	c := newCollector(1)
	done := make(chan error, 1)
	h := hosts(1)
	go func() { done <- m.Run(context.Background(), newTask("during", 1, h, nil), c.emit) }()
	<-f.started

	// A broken new file: the reload is refused and the old set stays.
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("Mid_1.yaml", "id: 1\nname: echo\nsteps: [{run: echo two}]\n")
	write("Mid_5.yaml", "id: 5\nname: broken\nsteps: [{run: uptime}]\nextra: 1\n")
	err := m.Reload()
	if err == nil || !strings.Contains(err.Error(), "Mid_5.yaml: extra: unknown key") {
		t.Fatalf("Reload with a broken file = %v", err)
	}
	if s, _ := m.Module(1); moduleIDs(m) != "[1 2 3 4]" || s.Steps[0].Run != "echo one" {
		t.Fatalf("old set not kept: %s %q", moduleIDs(m), s.Steps[0].Run)
	}

	// Fixed: the new set is swapped in while the run is still going.
	write("Mid_5.yaml", "id: 5\nname: fixed\nsteps: [{run: uptime}]\n")
	if err := m.Reload(); err != nil {
		t.Fatal(err)
	}
	if s, _ := m.Module(1); moduleIDs(m) != "[1 2 3 4 5]" || s.Steps[0].Run != "echo two" {
		t.Fatalf("new set not loaded: %s", moduleIDs(m))
	}
	close(f.gate(h[0].IP))
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if r := c.results[0]; r.Status != task.StatusOK || f.steps[0][0].Command != "echo one" {
		t.Fatalf("running task disturbed by reload: %s, command %q", r.Status, f.steps[0][0].Command)
	}
	// The next run uses the new set.
	f.block = false
	if err := m.Run(context.Background(), newTask("after", 1, h, nil), func(task.Event) {}); err != nil {
		t.Fatal(err)
	}
	if f.steps[1][0].Command != "echo two" {
		t.Fatalf("run after reload used %q", f.steps[1][0].Command)
	}
}

func TestReloadOnSignal(t *testing.T) {
	dir := writeModules(t, testModules)
	m := newMaster(t, Config{}, dir, map[string]backend.Backend{"fake": newFake(false, 0)})
	ctx, cancel := context.WithCancel(context.Background())
	sig := make(chan os.Signal)
	stopped := make(chan struct{})
	go func() { m.ReloadOnSignal(ctx, sig); close(stopped) }()

	if err := os.WriteFile(filepath.Join(dir, "Mid_9.yaml"), []byte("id: 9\nname: nine\nsteps: [{run: uptime}]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// The loop receives the next signal only after the previous reload
	// returned, so once a second send completes the first reload is done.
	sig <- syscall.SIGHUP
	sig <- syscall.SIGHUP
	if got := moduleIDs(m); got != "[1 2 3 4 9]" {
		t.Fatalf("after SIGHUP: %s", got)
	}
	// A broken file: the reload is refused and the set stays.
	if err := os.WriteFile(filepath.Join(dir, "Mid_10.yaml"), []byte("id: 10\nname: broken\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	sig <- syscall.SIGHUP
	sig <- syscall.SIGHUP
	if got := moduleIDs(m); got != "[1 2 3 4 9]" {
		t.Fatalf("after SIGHUP with a broken file: %s", got)
	}
	cancel()
	<-stopped
}

func TestShutdown(t *testing.T) {
	t.Run("waits for running tasks", func(t *testing.T) {
		f := newFake(true, 1)
		m := newMaster(t, Config{}, writeModules(t, testModules), map[string]backend.Backend{"fake": f})
		h := hosts(1)
		c := newCollector(1)
		done := make(chan error, 1)
		go func() { done <- m.Run(context.Background(), newTask("s1", 1, h, nil), c.emit) }()
		<-f.started
		shut := make(chan error, 1)
		go func() { shut <- m.Shutdown(context.Background()) }()
		// New runs are refused once shutdown has begun.
		for {
			err := m.Run(context.Background(), newTask("late", 1, []task.Host{{IP: "127.0.0.9", Name: "free"}}, nil), func(task.Event) {})
			if errors.Is(err, task.ErrShuttingDown) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		close(f.gate(h[0].IP))
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if err := <-shut; err != nil {
			t.Fatalf("graceful shutdown: %v", err)
		}
		if c.results[0].Status != task.StatusOK {
			t.Fatalf("task finished %s", c.results[0].Status)
		}
	})
	t.Run("cancels at the deadline", func(t *testing.T) {
		f := newFake(true, 3)
		m := newMaster(t, Config{Forks: 2}, writeModules(t, testModules), map[string]backend.Backend{"fake": f})
		c := newCollector(3)
		done := make(chan error, 1)
		go func() { done <- m.Run(context.Background(), newTask("s2", 1, hosts(3), nil), c.emit) }()
		<-f.started
		<-f.started
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		err := m.Shutdown(ctx)
		if err == nil || !strings.Contains(err.Error(), "cancelled 1 running task") {
			t.Fatalf("Shutdown = %v", err)
		}
		// Shutdown returned only after every result was emitted.
		c.mu.Lock()
		n := len(c.results)
		c.mu.Unlock()
		if n != 3 {
			t.Fatalf("%d results emitted when Shutdown returned, want 3", n)
		}
		for _, r := range c.results {
			if r.Status != task.StatusCancelled {
				t.Errorf("%s: %s", r.Host, r.Status)
			}
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
}

// panicky panics for one host and answers "done" for the others.
type panicky struct{}

func (panicky) Name() string { return "fake" }
func (panicky) Run(_ context.Context, h task.Host, _ []backend.Step, _ backend.Options) task.HostResult {
	if h.Name == "h1" {
		panic("boom")
	}
	return task.HostResult{Host: h, Status: "done?"}
}

// A panicking backend fails its host only; a backend's invalid status is
// reported as failed; every host still gets exactly one result.
func TestBackendMisbehaviour(t *testing.T) {
	m := newMaster(t, Config{}, writeModules(t, testModules), map[string]backend.Backend{"fake": panicky{}})
	c := newCollector(3)
	if err := m.Run(context.Background(), newTask("bad", 1, hosts(3), nil), c.emit); err != nil {
		t.Fatal(err)
	}
	if len(c.results) != 3 {
		t.Fatalf("%d results", len(c.results))
	}
	for _, r := range c.results {
		want := "returned invalid status"
		if r.Host.Name == "h1" {
			want = "backend fake panicked: boom"
		}
		if r.Status != task.StatusFailed || !strings.Contains(r.Error, want) || r.Started.IsZero() {
			t.Errorf("%s: %s %q", r.Host, r.Status, r.Error)
		}
	}
}

// instant is a backend that returns at once.
type instant struct{}

func (instant) Name() string { return "fake" }
func (instant) Run(_ context.Context, h task.Host, _ []backend.Step, _ backend.Options) task.HostResult {
	return task.HostResult{Host: h, Status: task.StatusOK, Started: time.Now(), Duration: time.Microsecond}
}

// BenchmarkDispatch measures the dispatcher alone: 1000 hosts per run on
// an instant backend, default forks.
func BenchmarkDispatch(b *testing.B) {
	m := newMaster(b, Config{}, writeModules(b, testModules), map[string]backend.Backend{"fake": instant{}})
	hs := hosts(1000)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		n := 0
		if err := m.Run(context.Background(), newTask(fmt.Sprintf("bench-%d", i), 2, hs, map[string]string{"sys_param_1": "x"}), func(ev task.Event) {
			if ev.Type == task.EventResult {
				n++
			}
		}); err != nil {
			b.Fatal(err)
		}
		if n != len(hs) {
			b.Fatalf("%d results", n)
		}
	}
	b.ReportMetric(float64(b.N*len(hs))/b.Elapsed().Seconds(), "hosts/s")
}

func TestCatalogDescribesLoadedModules(t *testing.T) {
	dir := writeModules(t, testModules)
	m, err := New(Config{DefaultBackend: "fake"}, dir, map[string]backend.Backend{"fake": newFake(false, 1)}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	cat, err := m.Catalog()
	if err != nil {
		t.Fatal(err)
	}
	if len(cat) != 4 || cat[0].ID != 1 || cat[1].ID != 2 || cat[3].ID != 4 {
		t.Fatalf("catalog ids: %+v", cat)
	}
	two := cat[1]
	if two.Name != "text" || !strings.Contains(string(two.Params), `"name":"sys_param_1"`) || !strings.Contains(string(two.Params), `"max_length":64`) {
		t.Fatalf("module 2 in the catalog: %+v (params %s)", two, two.Params)
	}
	if string(cat[0].Params) != "[]" {
		t.Fatalf("a module without parameters has schema %s, want []", cat[0].Params)
	}
	if want := moduleVersion([]byte(testModules["Mid_2.yaml"])); two.Version != want || len(want) != 64 {
		t.Fatalf("version %q, want the SHA-256 of the file %q", two.Version, want)
	}

	// The same content with CRLF line endings has the same version; an
	// edit picked up by Reload changes it, and only that module's.
	crlf := strings.ReplaceAll(testModules["Mid_1.yaml"], "\n", "\r\n")
	if err := os.WriteFile(filepath.Join(dir, "Mid_1.yaml"), []byte(crlf), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "Mid_2.yaml"), []byte(strings.Replace(testModules["Mid_2.yaml"], "7s", "8s", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := m.Reload(); err != nil {
		t.Fatal(err)
	}
	after, err := m.Catalog()
	if err != nil {
		t.Fatal(err)
	}
	if after[0].Version != cat[0].Version {
		t.Error("CRLF line endings changed the version")
	}
	if after[1].Version == cat[1].Version {
		t.Error("an edited module kept its version")
	}
	if after[2].Version != cat[2].Version || after[3].Version != cat[3].Version {
		t.Error("unchanged modules changed version")
	}
}

// TestLiveOutputPrecedesResult: a host's printed lines reach emit while the
// command still runs, as output events numbered before its result.
func TestLiveOutputPrecedesResult(t *testing.T) {
	state := t.TempDir()
	gate := filepath.Join(state, "go-on")
	dir := writeModules(t, map[string]string{"Mid_9.yaml": fmt.Sprintf(`id: 9
name: two lines
steps:
  - run: 'echo first; i=0; while [ ! -e %s ] && [ $i -lt 300 ]; do sleep 0.05; i=$((i+1)); done; echo second >&2'
`, gate)})
	m := newMaster(t, Config{DefaultBackend: "local"}, dir, map[string]backend.Backend{"local": local.New(zerolog.Nop())})
	var (
		mu     sync.Mutex
		events []task.Event
	)
	firstSeen := make(chan struct{})
	var once sync.Once
	done := make(chan error, 1)
	go func() {
		done <- m.Run(context.Background(), newTask("live", 9, []task.Host{{IP: "127.0.0.1", Name: "localhost"}}, nil), func(ev task.Event) {
			mu.Lock()
			events = append(events, ev)
			mu.Unlock()
			if ev.Type == task.EventOutput && strings.Contains(ev.Output.Data, "first") {
				once.Do(func() { close(firstSeen) })
			}
		})
	}()
	select {
	case <-firstSeen: // the command is still waiting for the gate
	case <-time.After(15 * time.Second):
		t.Fatal("no live output while the command ran")
	}
	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	var kinds []string
	for i, ev := range events {
		if ev.Seq != uint64(i+1) {
			t.Fatalf("event %d has seq %d", i, ev.Seq)
		}
		k := string(ev.Type)
		if ev.Output != nil {
			k += ":" + string(ev.Output.Stream) + ":" + strings.TrimSpace(ev.Output.Data)
		}
		kinds = append(kinds, k)
	}
	want := "output:stdout:first output:stderr:second result done"
	if strings.Join(kinds, " ") != want {
		t.Fatalf("events %q, want %q", strings.Join(kinds, " "), want)
	}
	if r := events[2].Result; r.Stdout != "first\n" || r.Stderr != "second\n" {
		t.Fatalf("result keeps %q / %q", r.Stdout, r.Stderr)
	}
}
