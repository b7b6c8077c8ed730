package relay

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/omserver/omserver-go/internal/backend"
	"github.com/omserver/omserver-go/internal/backend/local"
	"github.com/omserver/omserver-go/internal/master"
	"github.com/omserver/omserver-go/internal/task"
)

// These tests run the real master with the local backend behind the relay,
// over loopback TLS. 127.0.0.1, .2 and .3 are all this host to the local
// backend, so one machine gives three logical hosts.

// shippedModules is the repository's modules directory.
const shippedModules = "../../modules"

func newMaster(t *testing.T, modulesDir string) *master.Master {
	t.Helper()
	log := testLogger(t)
	j, err := master.OpenJournal(filepath.Join(t.TempDir(), "journal.db"), master.JournalConfig{}, log)
	if err != nil {
		t.Fatal(err)
	}
	m, err := master.New(master.Config{DefaultBackend: local.Name, Journal: j}, modulesDir,
		map[string]backend.Backend{local.Name: local.New(log)}, log)
	if err != nil {
		j.Close()
		t.Fatalf("master.New(%s): %v", modulesDir, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = m.Shutdown(ctx)
		j.Close()
	})
	return m
}

// writeModule writes modules/Mid_<id>.yaml into dir.
func writeModule(t *testing.T, dir string, id int, body string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("Mid_%d.yaml", id)), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// collect gathers results from onResult safely.
type collect struct {
	mu  sync.Mutex
	got []task.HostResult
}

func (c *collect) add(r task.HostResult) { c.mu.Lock(); c.got = append(c.got, r); c.mu.Unlock() }
func (c *collect) all() []task.HostResult {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]task.HostResult(nil), c.got...)
}

func TestEndToEndModule1003(t *testing.T) {
	p := newPKI(t)
	for _, scheme := range schemes {
		t.Run(scheme, func(t *testing.T) {
			m := newMaster(t, shippedModules)
			addr := startServer(t, serverConfig(p, scheme), m)
			c := newTestClient(t, clientConfig(p, scheme, addr))
			var res collect
			tk := newTask("e2e-1003-"+scheme, 1003, hosts("127.0.0.1", "127.0.0.2"), nil)
			if err := c.Run(testCtx(t), tk, onResults(res.add)); err != nil {
				t.Fatalf("Run: %v", err)
			}
			got := res.all()
			if len(got) != 2 {
				t.Fatalf("got %d results, want 2", len(got))
			}
			seen := map[string]bool{}
			for _, r := range got {
				seen[r.Host.IP] = true
				if r.Status != task.StatusOK || r.ExitCode != 0 || r.RunID != tk.RunID {
					t.Errorf("host %s: %+v", r.Host, r)
				}
				if !strings.Contains(r.Stdout, "Linux") {
					t.Errorf("host %s: stdout lacks uname output: %q", r.Host, r.Stdout)
				}
			}
			if !seen["127.0.0.1"] || !seen["127.0.0.2"] {
				t.Fatalf("results for %v", seen)
			}
			hs := c.HealthAll(testCtx(t))
			if hs[0].Err != nil || hs[0].Modules != 8 {
				t.Fatalf("health: %+v", hs[0])
			}
		})
	}
}

// TestEndToEndCompletionOrder makes three hosts finish in a known order:
// each takes a ticket (1..3) as it starts; ticket 3 finishes at once and
// ticket k waits until the test has RECEIVED ticket k+1's result. So
// results must arrive 3, 2, 1, and each arrives while the others still run.
func TestEndToEndCompletionOrder(t *testing.T) {
	p := newPKI(t)
	dir := t.TempDir()
	state := t.TempDir()
	writeModule(t, dir, 9001, fmt.Sprintf(`id: 9001
name: ordered finish
timeout: 60s
steps:
  - run: |
      D='%s'
      n=0
      for i in 1 2 3; do
        if mkdir "$D/ticket.$i" 2>/dev/null; then n=$i; break; fi
      done
      [ "$n" -gt 0 ] || { echo "no ticket left" >&2; exit 1; }
      if [ "$n" -lt 3 ]; then
        next=$((n + 1))
        i=0
        while [ ! -e "$D/received.$next" ]; do
          i=$((i + 1))
          [ "$i" -le 1200 ] || { echo "gave up waiting for $next" >&2; exit 1; }
          sleep 0.05
        done
      fi
      echo "ticket=$n"
`, state))
	m := newMaster(t, dir)
	addr := startServer(t, serverConfig(p, "aead"), m)
	c := newTestClient(t, clientConfig(p, "aead", addr))

	var order []string
	tk := newTask("e2e-order", 9001, hosts("127.0.0.1", "127.0.0.2", "127.0.0.3"), nil)
	err := c.Run(testCtx(t), tk, onResults(func(r task.HostResult) {
		if r.Status != task.StatusOK {
			t.Errorf("host %s: %s %s %s", r.Host, r.Status, r.Error, r.Stderr)
			return
		}
		ticket := strings.TrimSpace(strings.TrimPrefix(r.Stdout, "ticket="))
		order = append(order, ticket)
		// Only now may the host holding the previous ticket finish.
		if err := os.WriteFile(filepath.Join(state, "received."+ticket), nil, 0o644); err != nil {
			t.Error(err)
		}
	}))
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if strings.Join(order, ",") != "3,2,1" {
		t.Fatalf("results arrived in ticket order %v, want 3,2,1", order)
	}
}

// longModule writes a module that starts a long sleep and records its PID.
func longModule(t *testing.T, dir, state string) {
	writeModule(t, dir, 9002, fmt.Sprintf(`id: 9002
name: long sleeper
timeout: 300s
steps:
  - run: |
      sleep 300 &
      echo $! > '%s'/pid.$$
      wait
`, state))
}

// waitPIDs waits until n pid files exist in dir and returns the PIDs.
func waitPIDs(t *testing.T, dir string, n int) []int {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		files, _ := filepath.Glob(filepath.Join(dir, "pid.*"))
		if len(files) >= n {
			var pids []int
			for _, f := range files {
				b, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
				if err != nil {
					continue // written but not flushed yet; retry
				}
				pids = append(pids, pid)
			}
			if len(pids) >= n {
				return pids
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d commands started", len(files), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitGone waits until no process has pid (or it is a zombie being reaped).
func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			return
		}
		if st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil && strings.Contains(string(st), ") Z ") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %d still runs after the run was cancelled", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestEndToEndCancel(t *testing.T) {
	p := newPKI(t)
	dir, state := t.TempDir(), t.TempDir()
	longModule(t, dir, state)
	m := newMaster(t, dir)
	addr := startServer(t, serverConfig(p, "aead"), m)
	c := newTestClient(t, clientConfig(p, "aead", addr))

	var res collect
	tk := newTask("e2e-cancel", 9002, hosts("127.0.0.1", "127.0.0.2"), nil)
	errc := make(chan error, 1)
	go func() { errc <- c.Run(testCtx(t), tk, onResults(res.add)) }()
	pids := waitPIDs(t, state, 2)
	// The same run id again while it runs is refused, and runs nothing.
	dup := tk
	dup.Nonce, dup.IssuedAt = "", time.Time{}
	err := c.Run(testCtx(t), dup, onResults(func(task.HostResult) { t.Error("the duplicate run produced a result") }))
	assertRelayError(t, err, ErrDuplicateRun, codes.AlreadyExists, "already running")
	c.mu.Lock()
	owner := c.runs[tk.RunID]
	c.mu.Unlock()
	if owner == nil || owner.addr != addr {
		t.Fatalf("the refused duplicate made the client forget where run %s runs", tk.RunID)
	}
	if err := c.Cancel(testCtx(t), tk.RunID); err != nil {
		t.Fatalf("Cancel: %v", err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("Run: %v", err)
	}
	got := res.all()
	if len(got) != 2 {
		t.Fatalf("got %d results, want 2", len(got))
	}
	for _, r := range got {
		if r.Status != task.StatusCancelled {
			t.Errorf("host %s: status %s (%s), want cancelled", r.Host, r.Status, r.Error)
		}
	}
	for _, pid := range pids {
		waitGone(t, pid)
	}
}

func TestEndToEndClientGoneRunGoesOn(t *testing.T) {
	p := newPKI(t)
	dir, state := t.TempDir(), t.TempDir()
	longModule(t, dir, state)
	m := newMaster(t, dir)
	addr := startServer(t, serverConfig(p, "legacy"), m)
	c := newTestClient(t, clientConfig(p, "legacy", addr))

	ctx, cancel := context.WithCancel(testCtx(t))
	errc := make(chan error, 1)
	tk := newTask("e2e-gone", 9002, hosts("127.0.0.1"), nil)
	go func() { errc <- c.Run(ctx, tk, onResults(func(task.HostResult) {})) }()
	pids := waitPIDs(t, state, 1)
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run: %v, want context.Canceled", err)
	}
	// The web tier went away; the command goes on.
	time.Sleep(300 * time.Millisecond)
	if err := syscall.Kill(pids[0], 0); err != nil {
		t.Fatalf("the command stopped when its caller went away: %v", err)
	}
	// Another reader follows it from the start and cancels it.
	c2 := newTestClient(t, clientConfig(p, "legacy", addr))
	var evs []task.Event
	done := make(chan error, 1)
	go func() {
		done <- c2.Resume(testCtx(t), addr, tk.RunID, 0, func(ev task.Event) error { evs = append(evs, ev); return nil })
	}()
	if err := c2.Cancel(testCtx(t), tk.RunID); err != nil {
		t.Fatalf("Cancel from another client: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Resume: %v", err)
	}
	if len(evs) != 2 || evs[0].Result.Status != task.StatusCancelled || evs[1].End.Status != task.RunCancelled {
		t.Fatalf("events: %+v", evs)
	}
	waitGone(t, pids[0])
}

func TestEndToEndRefusals(t *testing.T) {
	p := newPKI(t)
	m := newMaster(t, shippedModules)
	addr := startServer(t, serverConfig(p, "aead"), m)
	c := newTestClient(t, clientConfig(p, "aead", addr))
	cases := []struct {
		name string
		tk   task.Task
		code codes.Code
		want string
	}{
		{name: "unknown module", tk: newTask("e1", 4242, hosts("127.0.0.1"), nil), code: codes.NotFound,
			want: "module 4242 is not installed on this master"},
		{name: "shell metacharacters", tk: newTask("e2", 1001, hosts("127.0.0.1"), map[string]string{"sys_param_1": "; rm -rf /"}),
			code: codes.InvalidArgument, want: "sys_param_1"},
		{name: "out of range", tk: newTask("e3", 1001, hosts("127.0.0.1"), map[string]string{"sys_param_1": "100000"}),
			code: codes.InvalidArgument, want: "sys_param_1"},
		{name: "undeclared parameter", tk: newTask("e4", 1003, hosts("127.0.0.1"), map[string]string{"cmd": "id"}),
			code: codes.InvalidArgument, want: "cmd"},
		{name: "choice outside options", tk: newTask("e5", 1007, hosts("127.0.0.1"), map[string]string{"sys_param_1": "sshd"}),
			code: codes.InvalidArgument, want: "sys_param_1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n := 0
			err := c.Run(testCtx(t), tc.tk, onResults(func(task.HostResult) { n++ }))
			assertRelayError(t, err, ErrRejected, tc.code, tc.want)
			t.Logf("refused as: %v", err)
			if n != 0 {
				t.Fatalf("%d hosts ran", n)
			}
		})
	}
}

// A rollout that waits for an operator, through the relay to the real
// master: the canary host runs, the pause arrives as a batch event, a
// Continue for another run finds nothing, the right one starts the next
// batch, and each host's command ran exactly once (a counter on disk).
func TestEndToEndRolloutContinue(t *testing.T) {
	p := newPKI(t)
	dir, state := t.TempDir(), t.TempDir()
	writeModule(t, dir, 9003, fmt.Sprintf(`id: 9003
name: counted canary
timeout: 30s
rollout:
  batch: 1
  canary_confirm: true
steps:
  - run: echo ran >> '%s'/count
`, state))
	m := newMaster(t, dir)
	addr := startServer(t, serverConfig(p, "aead"), m)
	c := newTestClient(t, clientConfig(p, "aead", addr))
	count := func() int {
		b, _ := os.ReadFile(filepath.Join(state, "count"))
		return strings.Count(string(b), "ran")
	}

	var mu sync.Mutex
	var batches []task.Batch
	var res collect
	paused := make(chan struct{})
	tk := newTask("e2e-continue", 9003, hosts("127.0.0.1", "127.0.0.2", "127.0.0.3"), nil)
	errc := make(chan error, 1)
	go func() {
		errc <- c.Run(testCtx(t), tk, func(ev task.Event) {
			switch ev.Type {
			case task.EventResult:
				res.add(*ev.Result)
			case task.EventBatch:
				mu.Lock()
				batches = append(batches, *ev.Batch)
				mu.Unlock()
				if ev.Batch.Paused {
					close(paused)
				}
			}
		})
	}()
	select {
	case <-paused:
	case err := <-errc:
		t.Fatalf("the run ended without pausing: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("no pause after the canary batch")
	}
	if n := count(); n != 1 {
		t.Fatalf("%d commands ran before Continue, want the canary's 1", n)
	}
	if err := c.Continue(testCtx(t), "e2e-other"); !errors.Is(err, ErrRunNotFound) {
		t.Fatalf("Continue of a run that does not wait: %v, want ErrRunNotFound", err)
	}
	if err := c.Continue(testCtx(t), tk.RunID); err != nil {
		t.Fatalf("Continue: %v", err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if err := c.Continue(testCtx(t), tk.RunID); !errors.Is(err, ErrRunNotFound) {
		t.Fatalf("a second Continue: %v, want ErrRunNotFound", err)
	}
	if n, got := count(), res.all(); n != 3 || len(got) != 3 {
		t.Fatalf("%d commands ran, %d results; want 3 and 3", n, len(got))
	}
	for _, r := range res.all() {
		if r.Status != task.StatusOK {
			t.Errorf("host %s: %s %s", r.Host.IP, r.Status, r.Error)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(batches) != 4 || !batches[1].Paused || !batches[1].Confirm || batches[1].Index != 2 || batches[3].Index != 3 {
		t.Fatalf("batch events %+v", batches)
	}
}
