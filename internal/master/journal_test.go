package master

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/omserver/omserver-go/internal/backend"
	"github.com/omserver/omserver-go/internal/task"
)

func openTestJournal(t testing.TB, path string, cfg JournalConfig) *Journal {
	t.Helper()
	j, err := OpenJournal(path, cfg, zerolog.Nop())
	if err != nil {
		t.Fatalf("OpenJournal: %v", err)
	}
	t.Cleanup(func() { j.Close() })
	return j
}

func resultEvent(seq uint64, ip string) task.Event {
	return task.Event{Seq: seq, Type: task.EventResult, Result: &task.HostResult{Host: task.Host{IP: ip}, Status: task.StatusOK, Stdout: "out " + ip}}
}

func doneEvent(seq uint64) task.Event {
	return task.Event{Seq: seq, Type: task.EventDone, End: &task.RunEnd{Status: task.RunDone}}
}

// followAll collects a run's events after seq until Follow returns.
func followAll(t testing.TB, j *Journal, id string, after uint64) ([]task.Event, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var got []task.Event
	err := j.Follow(ctx, id, after, func(ev task.Event) error {
		got = append(got, ev)
		return nil
	})
	return got, err
}

func seqsOf(evs []task.Event) string {
	var b strings.Builder
	for _, ev := range evs {
		fmt.Fprintf(&b, "%d%c ", ev.Seq, ev.Type[0])
	}
	return strings.TrimSpace(b.String())
}

func TestJournalAcceptsARunIDOnceAcrossRestarts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "journal.db")
	j, err := OpenJournal(path, JournalConfig{}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	tk := newTask("r1", 1, hosts(2), nil)
	if err := j.Accept(tk); err != nil {
		t.Fatalf("Accept: %v", err)
	}
	if err := j.Accept(tk); !errors.Is(err, task.ErrDuplicateRun) {
		t.Fatalf("second Accept: %v, want ErrDuplicateRun", err)
	}
	// A second process cannot open the same file while this one has it.
	if _, err := OpenJournal(path, JournalConfig{}, zerolog.Nop()); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second open: %v, want 'in use'", err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	j2 := openTestJournal(t, path, JournalConfig{})
	if err := j2.Accept(tk); !errors.Is(err, task.ErrDuplicateRun) {
		t.Fatalf("Accept after a restart: %v, want ErrDuplicateRun", err)
	}
	if err := j2.Accept(newTask("r2", 1, hosts(1), nil)); err != nil {
		t.Fatalf("a new id after restart: %v", err)
	}
}

func TestJournalFollowReplaysThenTails(t *testing.T) {
	j := openTestJournal(t, filepath.Join(t.TempDir(), "j.db"), JournalConfig{})
	if err := j.Accept(newTask("r", 1, hosts(3), nil)); err != nil {
		t.Fatal(err)
	}
	j.Append("r", resultEvent(1, "a"))
	// A follower that starts before the rest is written gets it live.
	type out struct {
		evs []task.Event
		err error
	}
	res := make(chan out, 1)
	go func() {
		evs, err := followAll(t, j, "r", 0)
		res <- out{evs, err}
	}()
	time.Sleep(50 * time.Millisecond)
	j.Append("r", resultEvent(2, "b"))
	j.Append("r", resultEvent(3, "c"))
	j.Append("r", doneEvent(4))
	o := <-res
	if o.err != nil || seqsOf(o.evs) != "1r 2r 3r 4d" {
		t.Fatalf("Follow from 0: %s, %v", seqsOf(o.evs), o.err)
	}
	if o.evs[1].Result.Stdout != "out b" || o.evs[3].End.Status != task.RunDone || o.evs[2].RunID != "r" {
		t.Fatalf("events not kept as written: %+v", o.evs)
	}
	// Resuming from any point gives exactly the rest.
	for after, want := range map[uint64]string{2: "3r 4d", 3: "4d", 4: ""} {
		evs, err := followAll(t, j, "r", after)
		if err != nil || seqsOf(evs) != want {
			t.Errorf("Follow after %d: %q, %v; want %q", after, seqsOf(evs), err, want)
		}
	}
	if _, err := followAll(t, j, "nope", 0); !errors.Is(err, task.ErrRunNotFound) {
		t.Fatalf("Follow of an unknown run: %v", err)
	}
}

func TestJournalRestartKeepsFinishedRunsAndLosesRunningOnes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j.db")
	j, err := OpenJournal(path, JournalConfig{}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"finished", "running"} {
		if err := j.Accept(newTask(id, 1, hosts(2), nil)); err != nil {
			t.Fatal(err)
		}
	}
	j.Append("finished", resultEvent(1, "a"))
	j.Append("finished", resultEvent(2, "b"))
	j.Append("finished", doneEvent(3))
	j.Append("running", resultEvent(1, "a"))
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}

	j2 := openTestJournal(t, path, JournalConfig{})
	evs, err := followAll(t, j2, "finished", 0)
	if err != nil || seqsOf(evs) != "1r 2r 3d" {
		t.Fatalf("finished run after restart: %s, %v", seqsOf(evs), err)
	}
	evs, err = followAll(t, j2, "running", 0)
	if !errors.Is(err, task.ErrInterrupted) || seqsOf(evs) != "1r" {
		t.Fatalf("run in progress at the restart: %s, %v; want its stored result then ErrInterrupted", seqsOf(evs), err)
	}
}

func TestJournalAckDropsEventsButRemembersTheRun(t *testing.T) {
	j := openTestJournal(t, filepath.Join(t.TempDir(), "j.db"), JournalConfig{})
	tk := newTask("r", 1, hosts(1), nil)
	if err := j.Accept(tk); err != nil {
		t.Fatal(err)
	}
	j.Append("r", resultEvent(1, "a"))
	waitWritten(t, j, "r", 1)
	if err := j.Ack("r", 5); !errors.Is(err, task.ErrInvalidTask) {
		t.Fatalf("ack past the last event: %v", err)
	}
	// Acknowledged while running: kept (a follower may still want them).
	if err := j.Ack("r", 1); err != nil {
		t.Fatal(err)
	}
	j.Append("r", doneEvent(2))
	if evs, err := followAll(t, j, "r", 0); err != nil || seqsOf(evs) != "1r 2d" {
		t.Fatalf("before the final ack: %s, %v", seqsOf(evs), err)
	}
	before := j.bytes
	if err := j.Ack("r", 2); err != nil {
		t.Fatal(err)
	}
	if j.bytes >= before || j.bytes != 0 {
		t.Fatalf("event bytes %d -> %d after the final ack", before, j.bytes)
	}
	if _, err := followAll(t, j, "r", 0); !errors.Is(err, task.ErrEventsDropped) {
		t.Fatalf("Follow after the final ack: %v, want ErrEventsDropped", err)
	}
	if evs, err := followAll(t, j, "r", 2); err != nil || len(evs) != 0 {
		t.Fatalf("Follow after the done event: %v, %v", evs, err)
	}
	if err := j.Accept(tk); !errors.Is(err, task.ErrDuplicateRun) {
		t.Fatalf("Accept after the ack: %v", err)
	}
	if err := j.Ack("nope", 1); !errors.Is(err, task.ErrRunNotFound) {
		t.Fatalf("Ack of an unknown run: %v", err)
	}
}

func TestJournalSizeBound(t *testing.T) {
	j := openTestJournal(t, filepath.Join(t.TempDir(), "j.db"), JournalConfig{MaxBytes: 3000})
	big := func(seq uint64) task.Event {
		ev := resultEvent(seq, "a")
		ev.Result.Stdout = strings.Repeat("x", 900)
		return ev
	}
	clock := time.Now()
	j.now = func() time.Time { clock = clock.Add(time.Second); return clock }
	// Two ended runs nobody acknowledged, then one running.
	for _, id := range []string{"old", "newer"} {
		if err := j.Accept(newTask(id, 1, hosts(1), nil)); err != nil {
			t.Fatal(err)
		}
		j.Append(id, big(1))
		j.Append(id, doneEvent(2))
	}
	if err := j.Accept(newTask("live", 1, hosts(2), nil)); err != nil {
		t.Fatal(err)
	}
	j.Append("live", big(1))
	waitWritten(t, j, "live", 1)
	if j.bytes <= 3000 {
		t.Fatalf("%d event bytes; the test needs more than the bound", j.bytes)
	}
	// Over the bound: a new run makes room from the oldest ended run only.
	if err := j.Accept(newTask("next", 1, hosts(1), nil)); err != nil {
		t.Fatalf("Accept over the bound with ended runs to drop: %v", err)
	}
	if _, err := followAll(t, j, "old", 0); !errors.Is(err, task.ErrEventsDropped) {
		t.Fatalf("oldest ended run: %v, want its events dropped", err)
	}
	if evs, err := followAll(t, j, "newer", 0); err != nil || seqsOf(evs) != "1r 2d" {
		t.Fatalf("newer ended run: %s, %v (dropped more than needed)", seqsOf(evs), err)
	}
	// Running runs alone over the bound: nothing is dropped, new runs are
	// refused as the journal being unavailable.
	j.Append("live", big(2))
	j.Append("next", big(1))
	j.Append("next", big(2))
	waitWritten(t, j, "next", 2)
	waitWritten(t, j, "live", 2)
	if err := j.Accept(newTask("refused", 1, hosts(1), nil)); !errors.Is(err, task.ErrJournal) {
		t.Fatalf("Accept with running runs filling the bound: %v, want ErrJournal", err)
	}
	j.Append("live", doneEvent(3))
	if evs, err := followAll(t, j, "live", 0); err != nil || seqsOf(evs) != "1r 2r 3d" {
		t.Fatalf("the running run's events: %s, %v", seqsOf(evs), err)
	}
}

func TestJournalAgeBound(t *testing.T) {
	j := openTestJournal(t, filepath.Join(t.TempDir(), "j.db"), JournalConfig{MaxAge: time.Hour})
	clock := time.Now()
	j.now = func() time.Time { return clock }
	for _, id := range []string{"ended", "still running"} {
		if err := j.Accept(newTask(id, 1, hosts(1), nil)); err != nil {
			t.Fatal(err)
		}
	}
	j.Append("ended", doneEvent(1))
	if _, err := followAll(t, j, "ended", 0); err != nil {
		t.Fatal(err)
	}
	clock = clock.Add(2 * time.Hour)
	j.prune()
	if _, err := followAll(t, j, "ended", 0); !errors.Is(err, task.ErrRunNotFound) {
		t.Fatalf("an ended run past the age bound: %v, want it forgotten", err)
	}
	if err := j.Accept(newTask("still running", 1, hosts(1), nil)); !errors.Is(err, task.ErrDuplicateRun) {
		t.Fatalf("a running run past the age bound: %v, want it kept", err)
	}
}

// waitWritten waits until the journal holds run id's event seq.
func waitWritten(t testing.TB, j *Journal, id string, seq uint64) {
	t.Helper()
	waitFor(t, func() bool {
		_, rec, err := j.read(id, seq)
		return err == nil && rec.LastSeq >= seq
	})
}

func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestJournalOnAFullDisk puts the journal on a small tmpfs, fills it, and
// checks that new runs are refused (nothing ran), events written during
// the outage wait in memory, and everything arrives once space is freed.
func TestJournalOnAFullDisk(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = syscall.Unmount(dir, syscall.MNT_DETACH) })
	j := openTestJournal(t, filepath.Join(dir, "j.db"), JournalConfig{})
	if err := j.Accept(newTask("before", 1, hosts(3), nil)); err != nil {
		t.Fatal(err)
	}
	filler := filepath.Join(dir, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 64<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			break
		}
	}
	f.Close()

	ev := resultEvent(1, "a")
	ev.Result.Stdout = strings.Repeat("y", 200<<10)
	j.Append("before", ev)
	j.Append("before", resultEvent(2, "b"))
	waitFor(t, func() bool { return j.Err() != nil })
	if err := j.Accept(newTask("during", 1, hosts(1), nil)); !errors.Is(err, task.ErrJournal) {
		t.Fatalf("Accept while events cannot be written: %v, want ErrJournal", err)
	}

	got := make(chan string, 1)
	go func() {
		evs, err := followAll(t, j, "before", 0)
		got <- fmt.Sprintf("%s %v", seqsOf(evs), err)
	}()
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	j.Append("before", resultEvent(3, "c"))
	j.Append("before", doneEvent(4))
	if s := <-got; s != "1r 2r 3r 4d <nil>" {
		t.Fatalf("events after space came back: %s", s)
	}
	if j.Err() != nil {
		t.Fatalf("journal still failing: %v", j.Err())
	}
	if err := j.Accept(newTask("after", 1, hosts(1), nil)); err != nil {
		t.Fatalf("Accept once space came back: %v", err)
	}
}

func TestStartRunsOnceAndFollowsFromTheJournal(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j.db")
	dir := writeModules(t, testModules)
	fk := newFake(true, 3)
	j, err := OpenJournal(path, JournalConfig{}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	m := newMaster(t, Config{Journal: j}, dir, map[string]backend.Backend{"fake": fk})
	tk := newTask("run-1", 1, hosts(3), nil)
	if err := m.Start(tk); err != nil {
		t.Fatalf("Start: %v", err)
	}
	if err := m.Start(tk); !errors.Is(err, task.ErrDuplicateRun) {
		t.Fatalf("second Start: %v, want ErrDuplicateRun", err)
	}
	for range 3 {
		<-fk.started
	}
	// The run is independent of any caller: nobody follows it now.
	close(fk.gate("10.0.0.1"))
	close(fk.gate("10.0.0.2"))
	close(fk.gate("10.0.0.3"))
	evs, err := followAll(t, j, "run-1", 0)
	if err != nil || seqsOf(evs) != "1r 2r 3r 4d" || evs[3].End == nil || evs[3].End.Status != task.RunDone {
		t.Fatalf("events: %s, %v", seqsOf(evs), err)
	}
	if n := fk.calls.Load(); n != 3 {
		t.Fatalf("backend called %d times, want 3", n)
	}
	// A cancelled run ends with a done event saying so.
	run2 := []task.Host{{IP: "10.9.0.1", Name: "x1"}, {IP: "10.9.0.2", Name: "x2"}}
	if err := m.Start(newTask("run-2", 1, run2, nil)); err != nil {
		t.Fatal(err)
	}
	<-fk.started
	<-fk.started
	if !m.Cancel("run-2") {
		t.Fatal("Cancel did not find the run")
	}
	evs, err = followAll(t, j, "run-2", 0)
	if err != nil || len(evs) != 3 || evs[2].End == nil || evs[2].End.Status != task.RunCancelled || !strings.Contains(evs[2].End.Error, "on request") {
		t.Fatalf("cancelled run: %s %+v, %v", seqsOf(evs), evs[len(evs)-1].End, err)
	}
	for _, ev := range evs[:2] {
		if ev.Result.Status != task.StatusCancelled {
			t.Fatalf("host of a cancelled run: %s", ev.Result.Status)
		}
	}
	if err := m.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}

	// A new master process on the same journal refuses both ids.
	j2 := openTestJournal(t, path, JournalConfig{})
	m2 := newMaster(t, Config{Journal: j2}, dir, map[string]backend.Backend{"fake": fk})
	for _, id := range []string{"run-1", "run-2"} {
		if err := m2.Start(newTask(id, 1, hosts(3), nil)); !errors.Is(err, task.ErrDuplicateRun) {
			t.Fatalf("Start of %s after a restart: %v, want ErrDuplicateRun", id, err)
		}
	}
	if n := fk.calls.Load(); n != 5 {
		t.Fatalf("backend called %d times, want 5 (nothing re-run)", n)
	}
	// Refused before anything ran: nothing is journaled either.
	if err := m2.Start(newTask("bad", 999, hosts(1), nil)); !errors.Is(err, task.ErrUnknownModule) {
		t.Fatalf("unknown module: %v", err)
	}
	if _, err := followAll(t, j2, "bad", 0); !errors.Is(err, task.ErrRunNotFound) {
		t.Fatalf("a refused run is in the journal: %v", err)
	}
	if err := (&Master{}).Start(newTask("x", 1, hosts(1), nil)); !errors.Is(err, task.ErrJournal) {
		t.Fatalf("Start without a journal: %v", err)
	}
}

func TestShutdownDrainsStartedRunsThenCancels(t *testing.T) {
	j := openTestJournal(t, filepath.Join(t.TempDir(), "j.db"), JournalConfig{})
	fk := newFake(true, 2)
	m := newMaster(t, Config{Journal: j}, writeModules(t, testModules), map[string]backend.Backend{"fake": fk})
	if err := m.Start(newTask("r", 1, hosts(2), nil)); err != nil {
		t.Fatal(err)
	}
	<-fk.started
	<-fk.started
	close(fk.gate("10.0.0.1"))
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := m.Shutdown(ctx); err == nil {
		t.Fatal("Shutdown reported a clean stop although it cancelled a run")
	}
	if err := m.Start(newTask("late", 1, hosts(1), nil)); !errors.Is(err, task.ErrShuttingDown) {
		t.Fatalf("Start while stopping: %v", err)
	}
	evs, err := followAll(t, j, "r", 0)
	if err != nil || len(evs) != 3 {
		t.Fatalf("events: %s, %v", seqsOf(evs), err)
	}
	statuses := map[task.Status]int{}
	for _, ev := range evs[:2] {
		statuses[ev.Result.Status]++
	}
	if statuses[task.StatusOK] != 1 || statuses[task.StatusCancelled] != 1 ||
		evs[2].End.Status != task.RunCancelled || !strings.Contains(evs[2].End.Error, "shutting down") {
		t.Fatalf("after the drain: %v, end %+v", statuses, evs[2].End)
	}
}
