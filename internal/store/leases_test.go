package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/omserver/omserver-go/internal/apperr"
	"github.com/omserver/omserver-go/internal/task"
	"github.com/omserver/omserver-go/internal/testutil/mysqltest"
	"github.com/omserver/omserver-go/internal/testutil/netcut"
)

func leasedRun(id string) Run {
	return Run{ID: id, ModuleID: 1003, ModuleName: "m", Username: "alice", Hosts: []task.Host{{IP: "127.0.0.1", Name: "a"}, {IP: "127.0.0.2", Name: "b"}}}
}

func TestRunDeliveryWrites(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store) {
		ctx := testCtx(t)
		now := time.Now().UTC()
		if err := s.CreateLeasedRun(ctx, leasedRun("d1"), "web-a", now.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateLeasedRun(ctx, leasedRun("d2"), "", now); !errors.Is(err, ErrInvalid) {
			t.Fatalf("lease without owner: %v", err)
		}
		if err := s.SetRunMaster(ctx, "d1", "127.0.0.1:7071"); err != nil {
			t.Fatal(err)
		}
		res := task.HostResult{Host: task.Host{IP: "127.0.0.1", Name: "a"}, Status: task.StatusOK, Stdout: "x"}
		for _, seq := range []uint64{3, 3, 2} { // replayed and older events change nothing
			if err := s.RecordRunResult(ctx, "d1", seq, res); err != nil {
				t.Fatal(err)
			}
		}
		run, results, err := s.GetRun(ctx, "d1")
		if err != nil || run.AckedSeq != 3 || len(results) != 1 || run.Master != "127.0.0.1:7071" {
			t.Fatalf("after results: %+v %v %v", run, results, err)
		}
		if err := s.FinishRunAt(ctx, "d1", task.RunDone, "", 5); err != nil {
			t.Fatal(err)
		}
		run, _, _ = s.GetRun(ctx, "d1")
		if run.AckedSeq != 5 || run.Status != task.RunDone {
			t.Fatalf("finished: %+v", run)
		}
		if _, err := s.GetLease(ctx, "d1"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("a finished run keeps its lease: %v", err)
		}
		if err := s.SetRunMaster(ctx, "d1", "x:1"); !errors.Is(err, ErrConflict) {
			t.Fatalf("master of a finished run: %v", err)
		}
		if err := s.FinishRunAt(ctx, "d1", task.RunInterrupted, "", 6); !errors.Is(err, ErrConflict) {
			t.Fatalf("second finish: %v", err)
		}
	})
}

func TestRunLeases(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store) {
		ctx := testCtx(t)
		t0 := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
		for _, id := range []string{"a", "b"} {
			if err := s.CreateLeasedRun(ctx, leasedRun(id), "web-1", t0.Add(30*time.Second)); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.CreateRun(ctx, leasedRun("orphan")); err != nil { // no lease (older tier version)
			t.Fatal(err)
		}
		if err := s.CreateRun(ctx, Run{ID: "ended", ModuleID: 1, Username: "u", Hosts: []task.Host{{IP: "1"}}, Status: task.RunDone}); err != nil {
			t.Fatal(err)
		}

		// While web-1's leases live, web-2 may only take the orphan.
		ids, err := s.ClaimableRuns(ctx, "web-2", t0.Add(10*time.Second), 10)
		if err != nil || !reflect.DeepEqual(ids, []string{"orphan"}) {
			t.Fatalf("claimable for web-2: %v, %v", ids, err)
		}
		// web-1 (restarted with the same id) may take its own back.
		ids, _ = s.ClaimableRuns(ctx, "web-1", t0.Add(10*time.Second), 10)
		if !reflect.DeepEqual(ids, []string{"a", "b", "orphan"}) {
			t.Fatalf("claimable for web-1: %v", ids)
		}
		if ok, err := s.ClaimRun(ctx, "a", "web-2", t0.Add(10*time.Second), t0.Add(40*time.Second)); ok || err != nil {
			t.Fatalf("web-2 claimed a live lease: %v %v", ok, err)
		}
		if ok, err := s.ClaimRun(ctx, "orphan", "web-2", t0, t0.Add(30*time.Second)); !ok || err != nil {
			t.Fatalf("web-2 could not claim the orphan: %v %v", ok, err)
		}
		if ok, _ := s.ClaimRun(ctx, "ended", "web-2", t0, t0.Add(30*time.Second)); ok {
			t.Fatal("a finished run was claimed")
		}
		if ok, _ := s.ClaimRun(ctx, "nope", "web-2", t0, t0.Add(30*time.Second)); ok {
			t.Fatal("an unknown run was claimed")
		}

		// The heartbeat keeps web-1's leases; without it they expire.
		held, err := s.RenewLeases(ctx, "web-1", t0.Add(60*time.Second))
		if err != nil || !reflect.DeepEqual(held, []string{"a", "b"}) {
			t.Fatalf("renew: %v, %v", held, err)
		}
		if ids, _ := s.ClaimableRuns(ctx, "web-2", t0.Add(50*time.Second), 10); len(ids) != 1 || ids[0] != "orphan" {
			t.Fatalf("claimable after the heartbeat: %v", ids)
		}
		later := t0.Add(61 * time.Second)
		if ok, err := s.ClaimRun(ctx, "a", "web-2", later, later.Add(30*time.Second)); !ok || err != nil {
			t.Fatalf("web-2 could not take over an expired lease: %v %v", ok, err)
		}
		// web-1 learns at its next heartbeat that it lost run a.
		held, _ = s.RenewLeases(ctx, "web-1", later.Add(30*time.Second))
		if !reflect.DeepEqual(held, []string{"b"}) {
			t.Fatalf("web-1 still holds %v", held)
		}
		// A tier that stops releases its leases at once.
		if err := s.ReleaseLeases(ctx, "web-1"); err != nil {
			t.Fatal(err)
		}
		l, err := s.GetLease(ctx, "b")
		if err != nil || l.Owner != "web-1" {
			t.Fatalf("lease of b: %+v %v", l, err)
		}
		if ok, _ := s.ClaimRun(ctx, "b", "web-3", time.Now().UTC(), time.Now().UTC().Add(time.Minute)); !ok {
			t.Fatal("a released lease could not be claimed")
		}
		if _, err := s.ClaimableRuns(ctx, "web-2", later, 0); !errors.Is(err, ErrInvalid) {
			t.Fatalf("limit 0: %v", err)
		}
		if _, err := s.RenewLeases(ctx, strings.Repeat("x", MaxOwnerLen+1), later); !errors.Is(err, ErrInvalid) {
			t.Fatalf("long tier id: %v", err)
		}
	})
}

// TestClaimRunRace has several tiers claim the same expired runs at once:
// each run ends with exactly one owner.
func TestClaimRunRace(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store) {
		ctx := testCtx(t)
		past := time.Now().UTC().Add(-time.Minute)
		for i := range 5 {
			if err := s.CreateLeasedRun(ctx, leasedRun(fmt.Sprint("race", i)), "dead", past); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.CreateRun(ctx, leasedRun("nolease")); err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		wins := map[string][]string{}
		var wg sync.WaitGroup
		for tier := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				me := fmt.Sprint("tier", tier)
				for _, id := range []string{"race0", "race1", "race2", "race3", "race4", "nolease"} {
					now := time.Now().UTC()
					ok, err := s.ClaimRun(ctx, id, me, now, now.Add(time.Minute))
					if err != nil {
						t.Errorf("%s claim %s: %v", me, id, err)
						return
					}
					if ok {
						mu.Lock()
						wins[id] = append(wins[id], me)
						mu.Unlock()
					}
				}
			}()
		}
		wg.Wait()
		for _, id := range []string{"race0", "race1", "race2", "race3", "race4", "nolease"} {
			if len(wins[id]) != 1 {
				t.Errorf("run %s claimed by %v, want exactly one tier", id, wins[id])
			}
		}
	})
}

// TestUnavailableDatabaseIsClassified cuts the connection to a running
// MariaDB (through a loopback proxy the test owns) and checks that reads
// and writes fail as ErrUnavailable (apperr.Unavailable), token lookups
// included, then work again once the database is reachable.
func TestUnavailableDatabaseIsClassified(t *testing.T) {
	dsn := mysqltest.New(t)
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	p := netcut.New(t, cfg.Addr)
	cfg.Addr = p.Addr
	cfg.Timeout = 2 * time.Second
	s, err := Open(context.Background(), DialectMySQL, cfg.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := testCtx(t)
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	uid, err := s.CreateUser(ctx, User{Name: "u", PasswordHash: "$2a$12$abcdefghijklmnopqrstuuJ3mW6W6W6W6W6W6W6W6W6W6W6W6W6W6", Role: RoleOperator})
	if err != nil {
		t.Fatal(err)
	}
	tok := HashToken("oms_t")
	if _, err := s.CreateAPIToken(ctx, uid, "t", tok); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateRun(ctx, leasedRun("u1")); err != nil {
		t.Fatal(err)
	}

	p.Cut()
	s.DB().SetMaxIdleConns(0) // no pooled connection survives the cut
	checks := map[string]func() error{
		"token lookup": func() error { _, err := s.GetUserByAPIToken(ctx, tok); return err },
		"session":      func() error { _, _, err := s.GetSession(ctx, HashToken("x")); return err },
		"result": func() error {
			return s.RecordRunResult(ctx, "u1", 1, task.HostResult{Host: task.Host{IP: "127.0.0.1"}, Status: task.StatusOK})
		},
		"finish":       func() error { return s.FinishRunAt(ctx, "u1", task.RunDone, "", 2) },
		"get run":      func() error { _, _, err := s.GetRun(ctx, "u1"); return err },
		"list users":   func() error { _, err := s.ListUsers(ctx); return err },
		"renew leases": func() error { _, err := s.RenewLeases(ctx, "me", time.Now()); return err },
	}
	for name, fn := range checks {
		err := fn()
		if !errors.Is(err, ErrUnavailable) || apperr.KindOf(err) != apperr.Unavailable {
			t.Errorf("%s with the database unreachable: %v (category %v), want ErrUnavailable", name, err, apperr.KindOf(err))
		}
	}
	p.Restore()
	if _, err := s.GetUserByAPIToken(ctx, tok); err != nil {
		t.Fatalf("token lookup once the database is back: %v", err)
	}
	if _, err := s.GetUserByAPIToken(ctx, HashToken("oms_unknown")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown token: %v", err)
	}
}

// TestFullDiskIsUnavailable puts a SQLite store on a small tmpfs, fills
// it, and checks that writes fail as ErrUnavailable while reads (token
// lookups included, whose last-use write is best effort) still work.
func TestFullDiskIsUnavailable(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = syscall.Unmount(dir, syscall.MNT_DETACH) })
	s, err := Open(context.Background(), DialectSQLite, filepath.Join(dir, "om.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := testCtx(t)
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	uid, err := s.CreateUser(ctx, User{Name: "u", PasswordHash: "$2a$12$abcdefghijklmnopqrstuuJ3mW6W6W6W6W6W6W6W6W6W6W6W6W6W6", Role: RoleOperator})
	if err != nil {
		t.Fatal(err)
	}
	tok := HashToken("oms_t")
	if _, err := s.CreateAPIToken(ctx, uid, "t", tok); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateRun(ctx, leasedRun("f1")); err != nil {
		t.Fatal(err)
	}
	filler, err := os.Create(filepath.Join(dir, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 64<<10)
	for {
		if _, err := filler.Write(chunk); err != nil {
			break
		}
	}
	filler.Close()
	big := task.HostResult{Host: task.Host{IP: "127.0.0.1"}, Status: task.StatusOK, Stdout: strings.Repeat("z", 1<<20)}
	err = s.RecordRunResult(ctx, "f1", 1, big)
	if !errors.Is(err, ErrUnavailable) || apperr.KindOf(err) != apperr.Unavailable {
		t.Fatalf("write on a full disk: %v (category %v), want ErrUnavailable", err, apperr.KindOf(err))
	}
	if _, err := s.GetUserByAPIToken(ctx, tok); err != nil {
		t.Fatalf("token lookup on a full disk: %v", err)
	}
	if err := os.Remove(filepath.Join(dir, "filler")); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordRunResult(ctx, "f1", 1, big); err != nil {
		t.Fatalf("write once space is back: %v", err)
	}
}
