package store

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/omserver/omserver-go/internal/task"
)

func TestRuns(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store) {
		ctx := testCtx(t)
		clock := time.Date(2026, 3, 4, 5, 6, 7, 123456000, time.UTC)
		s.now = func() time.Time { return clock }
		hosts := []task.Host{{IP: "192.168.1.10", Name: "sn2012-07-010"}, {IP: "::1", Name: "localhost"}}
		run := Run{ID: "run-1", ModuleID: 1001, ModuleName: "查看系统日志", Username: "alice",
			Params: map[string]string{"sys_param_1": "50"}, Hosts: hosts, Master: "127.0.0.1:7070"}
		if err := s.CreateRun(ctx, run); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name string
			r    Run
		}{
			{"no id", Run{ModuleID: 1, Username: "a", Hosts: hosts}},
			{"long id", Run{ID: strings.Repeat("x", 65), ModuleID: 1, Username: "a", Hosts: hosts}},
			{"no hosts", Run{ID: "x", ModuleID: 1, Username: "a"}},
			{"no module", Run{ID: "x", Username: "a", Hosts: hosts}},
			{"no user", Run{ID: "x", ModuleID: 1, Hosts: hosts}},
			{"bad status", Run{ID: "x", ModuleID: 1, Username: "a", Hosts: hosts, Status: "weird"}},
			{"duplicate host", Run{ID: "x", ModuleID: 1, Username: "a", Hosts: []task.Host{hosts[0], hosts[0]}}},
			{"empty host", Run{ID: "x", ModuleID: 1, Username: "a", Hosts: []task.Host{{}}}},
			{"host name too long", Run{ID: "x", ModuleID: 1, Username: "a", Hosts: []task.Host{{IP: "::1", Name: strings.Repeat("n", 65)}}}},
		} {
			if err := s.CreateRun(ctx, tc.r); !errors.Is(err, ErrInvalid) {
				t.Errorf("%s: CreateRun = %v; want ErrInvalid", tc.name, err)
			}
		}
		if err := s.CreateRun(ctx, run); !errors.Is(err, ErrConflict) {
			t.Errorf("same id twice = %v", err)
		}

		res := task.HostResult{Host: hosts[1], Status: task.StatusOK, ExitCode: 0, Stdout: "Linux 6.1\n<script>x</script>",
			Stderr: "warn", StdoutTruncated: true, Started: clock.Add(time.Second), Duration: 1500 * time.Millisecond}
		for range 3 { // idempotent per host
			if err := s.AddRunResult(ctx, "run-1", res); err != nil {
				t.Fatal(err)
			}
		}
		failed := task.HostResult{Host: hosts[0], Status: task.StatusUnreachable, ExitCode: -1, Error: "connection refused"}
		if err := s.AddRunResult(ctx, "run-1", failed); err != nil {
			t.Fatal(err)
		}
		if err := s.AddRunResult(ctx, "no-such-run", res); !errors.Is(err, ErrNotFound) {
			t.Errorf("result for unknown run = %v", err)
		}
		if err := s.AddRunResult(ctx, "run-1", task.HostResult{Host: hosts[0], Status: "great"}); !errors.Is(err, ErrInvalid) {
			t.Errorf("bad status = %v", err)
		}
		got, results, err := s.GetRun(ctx, "run-1")
		if err != nil {
			t.Fatal(err)
		}
		want := run
		want.Status, want.CreatedAt, want.HostCount = task.RunRunning, clock, 2
		want.Summary = map[task.Status]int{task.StatusOK: 1, task.StatusUnreachable: 1}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("run = %+v\nwant %+v", got, want)
		}
		wantRes := res
		wantRes.RunID = "run-1"
		failed.RunID = "run-1"
		if !reflect.DeepEqual(results, []task.HostResult{wantRes, failed}) {
			t.Errorf("results = %+v\nwant %+v", results, []task.HostResult{wantRes, failed})
		}
		// A later result for the same host replaces the earlier one.
		res.Status, res.Stdout = task.StatusFailed, "second"
		if err := s.AddRunResult(ctx, "run-1", res); err != nil {
			t.Fatal(err)
		}
		_, results, _ = s.GetRun(ctx, "run-1")
		if len(results) != 2 || results[0].Stdout != "second" {
			t.Errorf("after replace = %+v", results)
		}

		if err := s.FinishRun(ctx, "run-1", task.RunRunning, ""); !errors.Is(err, ErrInvalid) {
			t.Errorf("finish as running = %v", err)
		}
		clock = clock.Add(time.Minute)
		if err := s.FinishRun(ctx, "run-1", task.RunDone, ""); err != nil {
			t.Fatal(err)
		}
		if err := s.FinishRun(ctx, "run-1", task.RunCancelled, ""); !errors.Is(err, ErrConflict) {
			t.Errorf("finish twice = %v", err)
		}
		if err := s.FinishRun(ctx, "nope", task.RunDone, ""); !errors.Is(err, ErrNotFound) {
			t.Errorf("finish unknown = %v", err)
		}
		got, _, _ = s.GetRun(ctx, "run-1")
		if got.Status != task.RunDone || got.FinishedAt == nil || !got.FinishedAt.Equal(clock) {
			t.Errorf("finished run = %+v", got)
		}
		if _, _, err := s.GetRun(ctx, "nope"); !errors.Is(err, ErrNotFound) {
			t.Errorf("get unknown = %v", err)
		}

		// More runs for the list and interruption.
		for i := range 5 {
			clock = clock.Add(time.Second)
			user := "bob"
			if i%2 == 0 {
				user = "alice"
			}
			if err := s.CreateRun(ctx, Run{ID: fmt.Sprintf("r%d", i), ModuleID: 1003, Username: user, Hosts: hosts[:1]}); err != nil {
				t.Fatal(err)
			}
		}
		page, err := s.ListRuns(ctx, RunFilter{Limit: 2})
		if err != nil || len(page.Runs) != 2 || page.Runs[0].ID != "r4" || page.Runs[1].ID != "r3" || page.Next == "" {
			t.Errorf("list = %v, %q, %v", ids(page.Runs), page.Next, err)
		}
		page, _ = s.ListRuns(ctx, RunFilter{Limit: 2, Cursor: page.Next, Username: "alice"})
		if !reflect.DeepEqual(ids(page.Runs), []string{"r2", "r0"}) {
			t.Errorf("alice after r3 = %v", ids(page.Runs))
		}
		page, _ = s.ListRuns(ctx, RunFilter{ModuleID: 1001})
		if len(page.Runs) != 1 || page.Runs[0].ID != "run-1" || page.Next != "" {
			t.Fatalf("module filter = %v", ids(page.Runs))
		}
		if want := map[task.Status]int{task.StatusFailed: 1, task.StatusUnreachable: 1}; !reflect.DeepEqual(page.Runs[0].Summary, want) {
			t.Errorf("listed summary = %v; want %v", page.Runs[0].Summary, want)
		}
		if page.Runs[0].HostCount != 2 || page.Runs[0].Hosts != nil {
			t.Errorf("listed run carries %d hosts (%v); want a count of 2 and no host list", page.Runs[0].HostCount, page.Runs[0].Hosts)
		}
		if _, err := s.ListRuns(ctx, RunFilter{Limit: 100000}); !errors.Is(err, ErrInvalid) {
			t.Errorf("huge limit = %v", err)
		}
		if _, err := s.ListRuns(ctx, RunFilter{Status: "x"}); !errors.Is(err, ErrInvalid) {
			t.Errorf("bad status filter = %v", err)
		}
		if err := s.AddRunResult(ctx, "r1", task.HostResult{Host: hosts[0], Status: task.StatusOK, Stdout: "partial"}); err != nil {
			t.Fatal(err)
		}
		// Nothing marks runs interrupted behind their tier's back: a run
		// is interrupted only by the tier following it (docs/DELIVERY.md).
		page, _ = s.ListRuns(ctx, RunFilter{Status: task.RunRunning})
		if len(page.Runs) != 5 {
			t.Errorf("running runs = %v, want 5", ids(page.Runs))
		}
	})
}

func ids(rs []Run) []string {
	out := []string{}
	for _, r := range rs {
		out = append(out, r.ID)
	}
	return out
}

func TestAudit(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store) {
		ctx := testCtx(t)
		if err := s.AddAudit(ctx, AuditEntry{Username: "a"}); !errors.Is(err, ErrInvalid) {
			t.Errorf("no action = %v", err)
		}
		for i := range 3 {
			if err := s.AddAudit(ctx, AuditEntry{Username: "alice", Action: "login", Detail: fmt.Sprint(i), RemoteAddr: "127.0.0.1"}); err != nil {
				t.Fatal(err)
			}
		}
		page, err := s.ListAudit(ctx, AuditFilter{PageRequest: PageRequest{Limit: 2}})
		list := page.Entries
		if err != nil || page.Next == "" || len(list) != 2 || list[0].Detail != "2" || list[0].At.IsZero() || list[0].At.Location() != time.UTC {
			t.Errorf("audit = %+v, %q, %v", list, page.Next, err)
		}
		if _, err := s.ListAudit(ctx, AuditFilter{PageRequest: PageRequest{Limit: -1}}); !errors.Is(err, ErrInvalid) {
			t.Errorf("negative limit = %v", err)
		}
	})
}

// BenchmarkAddRunResult measures recording one host result in SQLite (the
// demo's database), the per-host write on the hot path of every run.
func BenchmarkAddRunResult(b *testing.B) {
	ctx := context.Background()
	s, err := Open(ctx, DialectSQLite, filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	if err := s.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	if err := s.CreateRun(ctx, Run{ID: "bench", ModuleID: 1003, Username: "bench", Hosts: []task.Host{{IP: "127.0.0.1"}}}); err != nil {
		b.Fatal(err)
	}
	out := strings.Repeat("Linux version 6.1.0 (debian-kernel@lists.debian.org)\n", 40)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		r := task.HostResult{Host: task.Host{IP: fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)}, Status: task.StatusOK,
			Stdout: out, Started: time.Now(), Duration: time.Millisecond}
		if err := s.AddRunResult(ctx, "bench", r); err != nil {
			b.Fatal(err)
		}
	}
}

// Results of one run arrive concurrently (one goroutine per host stream);
// every one must be recorded, with no "database is locked" on SQLite and no
// deadlock on MariaDB.
func TestAddRunResultConcurrent(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store) {
		ctx := testCtx(t)
		const n = 40
		hosts := make([]task.Host, n)
		for i := range hosts {
			hosts[i] = task.Host{IP: fmt.Sprintf("10.0.0.%d", i+1)}
		}
		if err := s.CreateRun(ctx, Run{ID: "c", ModuleID: 1003, Username: "u", Hosts: hosts}); err != nil {
			t.Fatal(err)
		}
		errs := make(chan error, 2*n)
		for i := range 2 * n { // every host twice: idempotent under concurrency too
			go func() {
				errs <- s.AddRunResult(ctx, "c", task.HostResult{Host: hosts[i%n], Status: task.StatusOK, Stdout: "x"})
			}()
		}
		for range 2 * n {
			if err := <-errs; err != nil {
				t.Error(err)
			}
		}
		run, res, err := s.GetRun(ctx, "c")
		if err != nil || len(res) != n {
			t.Fatalf("recorded %d results, %v; want %d", len(res), err, n)
		}
		// The counts kept on the run agree with the rows, under concurrency.
		if want := map[task.Status]int{task.StatusOK: n}; !reflect.DeepEqual(run.Summary, want) {
			t.Fatalf("summary = %v; want %v", run.Summary, want)
		}
	})
}
