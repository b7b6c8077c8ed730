package master

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/omserver/omserver-go/internal/backend"
	"github.com/omserver/omserver-go/internal/backend/ssh"
	"github.com/omserver/omserver-go/internal/task"
	"github.com/omserver/omserver-go/internal/testutil/sshdtest"
)

// counterModule writes a module that counts its executions on the target
// in dir and fails with OVERLAP when another execution is inside it at the
// same time (mkdir is atomic).
func counterModule(t *testing.T, modules, dir string, id int, extra string) {
	t.Helper()
	body := fmt.Sprintf(`id: %d
name: counter %d
%ssteps:
  - run: |
      D=%s
      mkdir "$D/busy" 2>/dev/null || { echo OVERLAP; exit 3; }
      n=$(cat "$D/count" 2>/dev/null || echo 0)
      echo $((n + 1)) > "$D/count"
      sleep 1
      rmdir "$D/busy"
      echo done
`, id, id, extra, dir)
	if err := os.WriteFile(filepath.Join(modules, fmt.Sprintf("Mid_%d.yaml", id)), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Two runs at once on the same host over the real sshd: with the per-host
// lock they take turns (the counter says 2, nobody saw the other inside,
// the second said whom it waited for); read-only modules share the host;
// a module that refuses to wait fails the busy host without running.
func TestPerHostLockOverSSH(t *testing.T) {
	srv := sshdtest.Start(t)
	be, err := ssh.New(ssh.Config{User: srv.User, Port: srv.Port, IdentityFiles: []string{srv.KeyFile}, KnownHostsFile: srv.KnownHostsFile}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	target, err := os.MkdirTemp("", "omslock-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(target) })
	if err := os.Chmod(target, 0o777); err != nil { // the omstest login writes here
		t.Fatal(err)
	}
	modules := t.TempDir()
	counterModule(t, modules, target, 3001, "")
	counterModule(t, modules, target, 3002, "read_only: true\n")
	counterModule(t, modules, target, 3003, "lock: refuse\n")
	m, err := New(Config{DefaultBackend: "ssh"}, modules, map[string]backend.Backend{"ssh": be}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	host := []task.Host{{IP: "127.0.0.1", Name: "localhost"}}
	type outcome struct {
		results []task.HostResult
		output  string
	}
	runTwo := func(a, b int) [2]outcome {
		var out [2]outcome
		var wg sync.WaitGroup
		for i, mod := range []int{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if i == 1 {
					time.Sleep(300 * time.Millisecond) // the first is inside by then
				}
				var mu sync.Mutex
				err := m.Run(context.Background(), newTask(fmt.Sprintf("run-%d-%d-%d", a, b, i), mod, host, nil), func(ev task.Event) {
					mu.Lock()
					defer mu.Unlock()
					switch ev.Type {
					case task.EventResult:
						out[i].results = append(out[i].results, *ev.Result)
					case task.EventOutput:
						out[i].output += ev.Output.Data
					}
				})
				if err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		return out
	}
	count := func() string {
		b, _ := os.ReadFile(filepath.Join(target, "count"))
		os.Remove(filepath.Join(target, "count"))
		return strings.TrimSpace(string(b))
	}

	got := runTwo(3001, 3001)
	for i, o := range got {
		if len(o.results) != 1 || o.results[0].Status != task.StatusOK || strings.Contains(o.results[0].Stdout, "OVERLAP") {
			t.Fatalf("run %d: %+v", i, o.results)
		}
	}
	if c := count(); c != "2" {
		t.Fatalf("counter %q, want 2", c)
	}
	if !strings.Contains(got[1].output, "waiting for run run-3001-3001-0 on host 127.0.0.1*localhost") {
		t.Fatalf("the second run did not say whom it waited for: %q", got[1].output)
	}

	// Read-only modules share the host: the second gets inside while the
	// first is (the probe sees it), which is what the lock prevents above.
	// Which of the two gets inside second depends on their SSH handshakes.
	got = runTwo(3002, 3002)
	overlaps := 0
	for _, o := range got {
		if strings.Contains(o.results[0].Stdout, "OVERLAP") {
			overlaps++
		}
		if strings.Contains(o.output, "waiting") {
			t.Fatalf("a read-only run waited for another: %q", o.output)
		}
	}
	if overlaps != 1 {
		t.Fatalf("read-only runs did not share the host: %+v / %+v", got[0].results, got[1].results)
	}
	count()

	// A read-only run still waits for a writing one.
	got = runTwo(3001, 3002)
	if got[1].results[0].Status != task.StatusOK || !strings.Contains(got[1].output, "waiting for run") {
		t.Fatalf("read-only run during a writing one: %+v %q", got[1].results, got[1].output)
	}
	count()

	// lock: refuse fails the busy host at once; nothing ran there.
	got = runTwo(3001, 3003)
	r := got[1].results[0]
	if r.Status != task.StatusFailed || !strings.Contains(r.Error, "host busy: run run-3001-3003-0") || r.Stdout != "" {
		t.Fatalf("refusing module: %+v", r)
	}
	if c := count(); c != "1" {
		t.Fatalf("counter %q, want 1 (the refused run must not execute)", c)
	}
}

// A bounded wait gives up with a clear error; module max_hosts refuses a
// bigger task before anything runs.
func TestLockWaitBoundAndModuleBudget(t *testing.T) {
	dir := writeModules(t, map[string]string{
		"Mid_4001.yaml": "id: 4001\nname: slow\nlock_wait: 200ms\nmax_hosts: 2\nsteps:\n  - run: \"true\"\n",
	})
	f := newFake(true, 4)
	m := newMaster(t, Config{}, dir, map[string]backend.Backend{"fake": f})
	hs := hosts(1)
	done := make(chan error, 1)
	go func() { done <- m.Run(context.Background(), newTask("holder", 4001, hs, nil), func(task.Event) {}) }()
	<-f.started // the holder is running on the host
	c := newCollector(1)
	if err := m.Run(context.Background(), newTask("waiter", 4001, hs, nil), c.emit); err != nil {
		t.Fatal(err)
	}
	if r := c.results[0]; r.Status != task.StatusFailed || !strings.Contains(r.Error, "waited 200ms for run holder") {
		t.Fatalf("waiter %+v", r)
	}
	close(f.gate(hs[0].IP))
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	err := m.Run(context.Background(), newTask("big", 4001, hosts(3), nil), func(task.Event) { t.Error("a refused task emitted") })
	if err == nil || !strings.Contains(err.Error(), "at most 2 hosts") {
		t.Fatalf("over the module budget: %v", err)
	}
}
