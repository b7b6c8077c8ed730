package master

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/omserver/omserver-go/internal/backend"
	"github.com/omserver/omserver-go/internal/task"
)

// recording is a backend that records when each host ran and fails the
// hosts listed in fail.
type recording struct {
	mu    sync.Mutex
	start map[string]time.Time
	end   map[string]time.Time
	fail  map[string]bool
}

func (*recording) Name() string { return "fake" }
func (f *recording) Run(ctx context.Context, h task.Host, _ []backend.Step, _ backend.Options) task.HostResult {
	f.mu.Lock()
	f.start[h.IP] = time.Now()
	f.mu.Unlock()
	time.Sleep(20 * time.Millisecond)
	f.mu.Lock()
	f.end[h.IP] = time.Now()
	f.mu.Unlock()
	if f.fail[h.IP] {
		return task.HostResult{Host: h, Status: task.StatusFailed, ExitCode: 1}
	}
	return task.HostResult{Host: h, Status: task.StatusOK}
}

func newRecording(fail ...string) *recording {
	f := &recording{start: map[string]time.Time{}, end: map[string]time.Time{}, fail: map[string]bool{}}
	for _, ip := range fail {
		f.fail[ip] = true
	}
	return f
}

const rolloutModule = "id: 5001\nname: restart\nrollout:\n  batch: 2\n  canary: true\n  canary_wait: 300ms\n  max_failures: 1\nsteps:\n  - run: \"true\"\n"

func TestRolloutBatchesCanaryAndThreshold(t *testing.T) {
	dir := writeModules(t, map[string]string{"Mid_5001.yaml": rolloutModule})
	hs := hosts(7) // batches of 2: [0 1] canary, pause, [2 3] [4 5] [6]
	f := newRecording(hs[2].IP, hs[3].IP)
	m := newMaster(t, Config{}, dir, map[string]backend.Backend{"fake": f})
	c := newCollector(len(hs))
	if err := m.Run(context.Background(), newTask("roll", 5001, hs, nil), c.emit); err != nil {
		t.Fatal(err)
	}
	by := map[string]task.HostResult{}
	for _, r := range c.results {
		by[r.Host.IP] = r
	}
	if len(by) != 7 {
		t.Fatalf("%d results", len(by))
	}
	// Batch 2 starts only after the canary batch ended and the pause.
	if gap := f.start[hs[2].IP].Sub(f.end[hs[1].IP]); gap < 300*time.Millisecond {
		t.Fatalf("batch 2 started %s after the canary batch, want the 300ms pause", gap)
	}
	if f.start[hs[2].IP].Before(f.end[hs[0].IP]) {
		t.Fatal("batch 2 started before the canary batch ended")
	}
	// Two failures in batch 2 exceed max_failures 1: the rest is skipped,
	// never run.
	for _, h := range hs[4:] {
		r := by[h.IP]
		if r.Status != task.StatusSkipped || !strings.Contains(r.Error, "2 host(s) failed, more than the 1 allowed") {
			t.Errorf("%s: %s %q", h.IP, r.Status, r.Error)
		}
		if _, ran := f.start[h.IP]; ran {
			t.Errorf("%s ran after the rollout stopped", h.IP)
		}
	}
	if by[hs[0].IP].Status != task.StatusOK || by[hs[3].IP].Status != task.StatusFailed {
		t.Fatalf("results %+v", by)
	}

	// A task may narrow (one host per batch, no failures allowed) but not
	// widen (its batch of 100 is ignored in favour of the module's 2).
	f = newRecording(hs[0].IP)
	m = newMaster(t, Config{}, dir, map[string]backend.Backend{"fake": f})
	tk := newTask("narrow", 5001, hs[:3], nil)
	tk.Rollout = &task.Rollout{BatchSize: 1, CanaryWait: time.Millisecond, MaxFailurePercent: 1} // 1% of 3: no failure allowed
	c = newCollector(3)
	if err := m.Run(context.Background(), tk, c.emit); err != nil {
		t.Fatal(err)
	}
	if len(f.start) != 1 || c.results[1].Status != task.StatusSkipped {
		t.Fatalf("narrowed: %d hosts ran, results %+v", len(f.start), c.results)
	}
	f = newRecording()
	m = newMaster(t, Config{}, dir, map[string]backend.Backend{"fake": f})
	tk = newTask("wide", 5001, hs[:4], nil)
	tk.Rollout = &task.Rollout{BatchSize: 100, MaxFailures: 50}
	c = newCollector(4)
	if err := m.Run(context.Background(), tk, c.emit); err != nil {
		t.Fatal(err)
	}
	if gap := f.start[hs[2].IP].Sub(f.end[hs[1].IP]); gap < 300*time.Millisecond {
		t.Fatalf("a wider request widened the batches (gap %s)", gap)
	}
}

// Cancel during the canary pause: the batches not started are cancelled,
// never run.
func TestRolloutCancelBetweenBatches(t *testing.T) {
	dir := writeModules(t, map[string]string{"Mid_5001.yaml": strings.Replace(rolloutModule, "300ms", "1h", 1)})
	hs := hosts(5)
	f := newRecording()
	m := newMaster(t, Config{}, dir, map[string]backend.Backend{"fake": f})
	c := newCollector(len(hs))
	done := make(chan error, 1)
	go func() { done <- m.Run(context.Background(), newTask("pausing", 5001, hs, nil), c.emit) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		f.mu.Lock()
		n := len(f.end)
		f.mu.Unlock()
		if n == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the canary batch did not finish")
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	if !m.Cancel("pausing") {
		t.Fatal("the paused run was not found to cancel")
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("cancel did not end the paused rollout")
	}
	cancelled := 0
	for _, r := range c.results {
		if r.Status == task.StatusCancelled {
			cancelled++
		}
	}
	if cancelled != 3 || len(f.start) != 2 {
		t.Fatalf("%d cancelled, %d ran; want 3 and 2", cancelled, len(f.start))
	}
}

const confirmModule = "id: 5002\nname: restart carefully\nrollout:\n  batch: 1\n  canary_confirm: true\n  canary_wait: WAIT\nsteps:\n  - run: \"true\"\n"

// A canary that waits for an operator: nothing after the canary batch
// runs until Continue, which only a waiting run accepts; the batches are
// reported as they start and pause.
func TestRolloutWaitsForContinue(t *testing.T) {
	dir := writeModules(t, map[string]string{"Mid_5002.yaml": strings.Replace(confirmModule, "WAIT", "1h", 1)})
	hs := hosts(3)
	f := newRecording()
	m := newMaster(t, Config{}, dir, map[string]backend.Backend{"fake": f})
	c := newCollector(len(hs))
	done := make(chan error, 1)
	go func() { done <- m.Run(context.Background(), newTask("confirm", 5002, hs, nil), c.emit) }()
	waitFor(t, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return len(c.batches) == 2
	})
	time.Sleep(100 * time.Millisecond) // the pause holds: nothing else starts
	f.mu.Lock()
	started := len(f.start)
	f.mu.Unlock()
	if started != 1 {
		t.Fatalf("%d hosts ran before Continue, want the canary's 1", started)
	}
	if m.Continue("another-run") {
		t.Fatal("Continue accepted a run that does not wait")
	}
	if !m.Continue("confirm") {
		t.Fatal("Continue did not find the paused run")
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the rollout did not go on after Continue")
	}
	if m.Continue("confirm") {
		t.Fatal("Continue accepted a run that no longer waits")
	}
	for _, r := range c.results {
		if r.Status != task.StatusOK {
			t.Fatalf("host %s: %s", r.Host.IP, r.Status)
		}
	}
	var got []string
	for _, b := range c.batches {
		got = append(got, fmt.Sprintf("%d/%d:%d paused=%v confirm=%v", b.Index, b.Count, b.Hosts, b.Paused, b.Confirm))
	}
	want := []string{"1/3:1 paused=false confirm=false", "2/3:1 paused=true confirm=true", "2/3:1 paused=false confirm=false", "3/3:1 paused=false confirm=false"}
	if strings.Join(got, ", ") != strings.Join(want, ", ") {
		t.Fatalf("batch events %v, want %v", got, want)
	}
	if until := c.batches[1].Until; until.Before(time.Now().Add(50*time.Minute)) || until.After(time.Now().Add(61*time.Minute)) {
		t.Fatalf("the pause says it lasts until %s, want about an hour from now", until)
	}
}

// Nobody continues within the bound: the rest is skipped, not run.
func TestRolloutNobodyContinues(t *testing.T) {
	dir := writeModules(t, map[string]string{"Mid_5002.yaml": strings.Replace(confirmModule, "WAIT", "200ms", 1)})
	hs := hosts(3)
	f := newRecording()
	m := newMaster(t, Config{}, dir, map[string]backend.Backend{"fake": f})
	c := newCollector(len(hs))
	if err := m.Run(context.Background(), newTask("unconfirmed", 5002, hs, nil), c.emit); err != nil {
		t.Fatal(err)
	}
	skippedN := 0
	for _, r := range c.results {
		if r.Status == task.StatusSkipped {
			skippedN++
			if !strings.Contains(r.Error, "no operator continued it") {
				t.Fatalf("skipped host %s says %q", r.Host.IP, r.Error)
			}
		}
	}
	if skippedN != 2 || len(f.start) != 1 {
		t.Fatalf("%d skipped, %d ran; want 2 and 1", skippedN, len(f.start))
	}
}
