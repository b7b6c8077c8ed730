package schedule

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/omserver/omserver-go/internal/apperr"
	"github.com/omserver/omserver-go/internal/runs"
	"github.com/omserver/omserver-go/internal/store"
	"github.com/omserver/omserver-go/internal/task"
	"github.com/omserver/omserver-go/internal/testutil/mysqltest"
)

// recorder is a Submitter that records each run as running in the store,
// as runs.Service does before dispatching.
type recorder struct {
	st  *store.Store
	n   atomic.Int64
	mu  sync.Mutex
	got []runs.Request
}

// Preview resolves targets as runs.Service does: the listed hosts, then
// the servers of the applications and categories.
func (r *recorder) Preview(ctx context.Context, req runs.Request) (runs.Plan, error) {
	var hosts []task.Host
	for _, h := range req.Hosts {
		hosts = append(hosts, task.Host{IP: h})
	}
	more, err := r.st.TargetServers(ctx, req.AppIDs, req.FunIDs, task.MaxHosts)
	if err != nil {
		return runs.Plan{}, err
	}
	for _, sv := range more {
		hosts = append(hosts, task.Host{IP: sv.IP, Name: sv.Name})
	}
	if len(hosts) == 0 {
		return runs.Plan{}, apperr.Errorf(apperr.Invalid, "no hosts: the chosen applications and categories have no servers")
	}
	return runs.Plan{ModuleID: req.ModuleID, Hosts: hosts}, nil
}

// Submit records the run with its resolved hosts; the recorded request
// lists them in Hosts.
func (r *recorder) Submit(ctx context.Context, req runs.Request) (string, error) {
	id := fmt.Sprintf("run-%d-%d", time.Now().UnixNano(), r.n.Add(1))
	plan, err := r.Preview(ctx, req)
	if err != nil {
		return "", err
	}
	if req.ConfirmedHosts != len(plan.Hosts) {
		return "", fmt.Errorf("confirmed %d hosts of %d", req.ConfirmedHosts, len(plan.Hosts))
	}
	hosts := plan.Hosts
	req.Hosts, req.AppIDs, req.FunIDs = nil, nil, nil
	for _, h := range hosts {
		req.Hosts = append(req.Hosts, h.IP)
	}
	if err := r.st.CreateRun(ctx, store.Run{ID: id, ModuleID: req.ModuleID, ModuleName: "m", Username: req.User, Params: req.Params, Hosts: hosts}); err != nil {
		return "", err
	}
	r.mu.Lock()
	r.got = append(r.got, req)
	r.mu.Unlock()
	return id, nil
}

func (r *recorder) requests() []runs.Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]runs.Request(nil), r.got...)
}

// clock is a hand-driven clock shared by schedulers.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

var t0 = time.Date(2026, 3, 2, 10, 1, 30, 0, time.UTC)

func openAt(t *testing.T, driver, dsn string) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return st
}

// seeded is a store with the original modules and four servers in two
// applications of one function category.
func seeded(t *testing.T, driver, dsn string) *store.Store {
	t.Helper()
	st := openAt(t, driver, dsn)
	ctx := context.Background()
	if _, err := st.SeedOriginal(ctx); err != nil {
		t.Fatal(err)
	}
	for _, sv := range []store.Server{
		{IP: "127.0.0.11", Name: "a1", AppID: 1}, {IP: "127.0.0.12", Name: "a2", AppID: 1},
		{IP: "127.0.0.21", Name: "b1", AppID: 2}, {IP: "127.0.0.22", Name: "b2", AppID: 2},
	} {
		if _, err := st.UpsertServer(ctx, sv); err != nil {
			t.Fatal(err)
		}
	}
	return st
}

// leaseTTL is short so that a takeover can be waited for (leases run on
// the database's real clock, fires on the test's clock).
const leaseTTL = 3 * time.Second

func newScheduler(t *testing.T, st *store.Store, sub Submitter, c *clock, tier string) *Scheduler {
	t.Helper()
	s, err := New(Config{Tier: tier, LeaseTTL: leaseTTL}, st, sub, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	s.SetClock(c.now)
	return s
}

func sqliteDSN(t *testing.T) string { return filepath.Join(t.TempDir(), "s.db") }

func TestCronValidation(t *testing.T) {
	st := openAt(t, store.DialectSQLite, sqliteDSN(t))
	s := newScheduler(t, st, &recorder{st: st}, &clock{t: t0}, "x")
	for _, tt := range []struct {
		spec string
		want string
	}{
		{"0 3 * * *", ""},
		{"*/5 * * * 1-5", ""},
		{"@daily", ""},
		{"CRON_TZ=Asia/Shanghai 30 2 * * *", ""},
		{"@every 30s", "shortest allowed"},
		{"0,30 * * * * *", "cron expression"},
		{"61 * * * *", "cron expression"},
		{"", "needed"},
		{"0 0 30 2 *", "never fires"},
	} {
		_, err := s.parse(tt.spec)
		if tt.want == "" {
			if err != nil {
				t.Errorf("%q refused: %v", tt.spec, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: err = %v, want %q", tt.spec, err, tt.want)
		}
	}
}

func TestFireSkipPauseAndTarget(t *testing.T) {
	st := seeded(t, store.DialectSQLite, sqliteDSN(t))
	ctx := context.Background()
	c := &clock{t: t0}
	rec := &recorder{st: st}
	s := newScheduler(t, st, rec, c, "tier-a")

	// Refused specs change nothing.
	for _, bad := range []Spec{
		{Name: "x", ModuleID: 999, TargetKind: store.TargetApp, TargetID: 1, Cron: "@hourly", User: "op"},
		{Name: "x", ModuleID: 1001, Params: map[string]string{"sys_param_1": "abc"}, TargetKind: store.TargetApp, TargetID: 1, Cron: "@hourly", User: "op"},
		{Name: "x", ModuleID: 1003, TargetKind: store.TargetHosts, TargetHosts: []string{"127.9.9.9"}, Cron: "@hourly", User: "op"},
		{Name: "x", ModuleID: 1003, TargetKind: store.TargetApp, TargetID: 99, Cron: "@hourly", User: "op"},
		{Name: "x", ModuleID: 1003, TargetKind: store.TargetFun, TargetID: 1, Cron: "every hour", User: "op"},
	} {
		if _, err := s.Create(ctx, bad); err == nil {
			t.Errorf("spec %+v accepted", bad)
		}
	}
	if list, _ := st.ListSchedules(ctx); len(list) != 0 {
		t.Fatalf("refused specs stored %d schedules", len(list))
	}

	sc, err := s.Create(ctx, Spec{Name: "os of app 1", ModuleID: 1003, TargetKind: store.TargetApp, TargetID: 1, Cron: "*/5 * * * *", Enabled: true, User: "op"})
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2026, 3, 2, 10, 5, 0, 0, time.UTC); sc.NextAt == nil || !sc.NextAt.Equal(want) {
		t.Fatalf("next fire %v, want %v", sc.NextAt, want)
	}
	// Not due yet.
	if n, err := s.Tick(ctx); err != nil || n != 0 {
		t.Fatalf("early tick started %d, %v", n, err)
	}
	// A server added to the application before the fire is in the run:
	// the target is resolved when it fires.
	if _, err := st.UpsertServer(ctx, store.Server{IP: "127.0.0.13", Name: "a3", AppID: 1}); err != nil {
		t.Fatal(err)
	}
	c.set(time.Date(2026, 3, 2, 10, 5, 0, 200, time.UTC))
	if n, err := s.Tick(ctx); err != nil || n != 1 {
		t.Fatalf("due tick started %d, %v", n, err)
	}
	got := rec.requests()
	if len(got) != 1 || strings.Join(got[0].Hosts, ",") != "127.0.0.11,127.0.0.12,127.0.0.13" || got[0].User != fmt.Sprintf("schedule:%d", sc.ID) {
		t.Fatalf("requests %+v", got)
	}
	// The next fire comes while that run still runs: skipped, recorded.
	c.set(time.Date(2026, 3, 2, 10, 10, 1, 0, time.UTC))
	if n, _ := s.Tick(ctx); n != 0 {
		t.Fatalf("a fire started while the previous run runs")
	}
	fires, err := st.ListFires(ctx, sc.ID, 0, 10)
	if err != nil || len(fires) != 2 || fires[0].Outcome != store.FireSkipped || !strings.Contains(fires[0].Detail, "still running") || fires[1].Outcome != store.FireStarted || fires[1].RunID == "" {
		t.Fatalf("history %+v, %v", fires, err)
	}
	// Once it finished, the next fire runs again.
	if err := st.FinishRun(ctx, fires[1].RunID, task.RunDone, ""); err != nil {
		t.Fatal(err)
	}
	c.set(time.Date(2026, 3, 2, 10, 15, 0, 0, time.UTC))
	if n, _ := s.Tick(ctx); n != 1 {
		t.Fatal("the fire after the run ended did not start")
	}
	// Paused: nothing fires; resumed: the next time after now, missed
	// fires not made up.
	if _, err := s.SetEnabled(ctx, sc.ID, false); err != nil {
		t.Fatal(err)
	}
	c.set(time.Date(2026, 3, 2, 11, 0, 0, 0, time.UTC))
	if n, _ := s.Tick(ctx); n != 0 {
		t.Fatal("a paused schedule fired")
	}
	resumed, err := s.SetEnabled(ctx, sc.ID, true)
	if err != nil || resumed.NextAt == nil || !resumed.NextAt.Equal(time.Date(2026, 3, 2, 11, 5, 0, 0, time.UTC)) {
		t.Fatalf("resumed %+v, %v", resumed.NextAt, err)
	}

	// An application with no servers: the fire fails, and says why.
	empty, err := st.CreateAppCateg(ctx, store.AppCateg{FunCategID: 11, Name: "empty.app"})
	if err != nil {
		t.Fatal(err)
	}
	sc2, err := s.Create(ctx, Spec{Name: "empty", ModuleID: 1003, TargetKind: store.TargetApp, TargetID: empty, Cron: "*/5 * * * *", Enabled: true, User: "op"})
	if err != nil {
		t.Fatal(err)
	}
	c.set(time.Date(2026, 3, 2, 11, 5, 0, 0, time.UTC))
	s.Tick(ctx)
	if f, _ := st.ListFires(ctx, sc2.ID, 0, 1); len(f) != 1 || f[0].Outcome != store.FireFailed || !strings.Contains(f[0].Detail, "no servers") {
		t.Fatalf("empty target history %+v", f)
	}
	// A function category target covers every application in it.
	sc3, err := s.Create(ctx, Spec{Name: "whole fun", ModuleID: 1003, TargetKind: store.TargetFun, TargetID: 11, Cron: "*/5 * * * *", Enabled: true, User: "op"})
	if err != nil {
		t.Fatal(err)
	}
	c.set(time.Date(2026, 3, 2, 11, 10, 0, 0, time.UTC))
	s.Tick(ctx)
	f, _ := st.ListFires(ctx, sc3.ID, 0, 1)
	if len(f) != 1 || f[0].Outcome != store.FireStarted || f[0].Detail != "5 hosts" {
		t.Fatalf("fun target history %+v", f)
	}
}

// Two schedulers (two web tiers, each with its own database handle) tick
// at the same moments: every fire starts exactly one run, on SQLite and
// MariaDB; and when the leader stops, the other takes over after the lease.
func TestTwoSchedulersOneRunPerFire(t *testing.T) {
	for _, b := range []struct {
		name, driver string
		dsn          func(t *testing.T) string
	}{
		{"sqlite", store.DialectSQLite, sqliteDSN},
		{"mariadb", store.DialectMySQL, func(t *testing.T) string { return mysqltest.New(t) }},
	} {
		t.Run(b.name, func(t *testing.T) {
			dsn := b.dsn(t)
			stA := seeded(t, b.driver, dsn)
			stB := openAt(t, b.driver, dsn)
			ctx := context.Background()
			c := &clock{t: t0}
			rec := &recorder{st: stA}
			a := newScheduler(t, stA, rec, c, "tier-a")
			bb := newScheduler(t, stB, rec, c, "tier-b")
			var ids []int64
			for i := 0; i < 3; i++ {
				sc, err := a.Create(ctx, Spec{Name: fmt.Sprintf("s%d", i), ModuleID: 1003, TargetKind: store.TargetHosts,
					TargetHosts: []string{"127.0.0.11"}, Cron: "*/5 * * * *", Enabled: true, User: "op"})
				if err != nil {
					t.Fatal(err)
				}
				ids = append(ids, sc.ID)
			}
			fires := 0
			for k := 1; k <= 4; k++ {
				c.set(t0.Add(time.Duration(k) * 5 * time.Minute))
				var wg sync.WaitGroup
				for _, s := range []*Scheduler{a, bb, a, bb} {
					wg.Add(1)
					go func() {
						defer wg.Done()
						if _, err := s.Tick(ctx); err != nil {
							t.Error(err)
						}
					}()
				}
				wg.Wait()
				fires += len(ids)
				if got := len(rec.requests()); got != fires {
					t.Fatalf("after %d fire times: %d runs started, want %d", k, got, fires)
				}
				// Finish the runs so the next fire is not skipped.
				for _, id := range ids {
					sc, _ := stA.GetSchedule(ctx, id)
					_ = stA.FinishRun(ctx, sc.LastRunID, task.RunDone, "")
				}
			}
			// One tier, the leader, did every fire.
			leader := ""
			for _, id := range ids {
				hist, _ := stA.ListFires(ctx, id, 0, 10)
				for _, f := range hist {
					if leader == "" {
						leader = f.Tier
					}
					if f.Tier != leader || f.Outcome != store.FireStarted {
						t.Fatalf("fire %+v; the leader is %s", f, leader)
					}
				}
			}
			// The leader stops ticking: after its lease, the other fires.
			other := a
			if leader == "tier-a" {
				other = bb
			}
			time.Sleep(leaseTTL + 200*time.Millisecond)
			c.set(t0.Add(5*5*time.Minute + 2*time.Minute))
			if n, err := other.Tick(ctx); err != nil || n != len(ids) {
				t.Fatalf("the other tier after the lease: %d, %v", n, err)
			}

			// Without the lease (a paused leader waking up late), the
			// per-fire compare-and-set still lets one claim win.
			sc, _ := stA.GetSchedule(ctx, ids[0])
			var wins atomic.Int32
			var wg sync.WaitGroup
			for i := 0; i < 8; i++ {
				st := stA
				if i%2 == 1 {
					st = stB
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					next := sc.NextAt.Add(5 * time.Minute)
					if _, won, err := st.ClaimFire(ctx, sc.ID, *sc.NextAt, &next, fmt.Sprintf("t%d", i)); err != nil {
						t.Error(err)
					} else if won {
						wins.Add(1)
					}
				}()
			}
			wg.Wait()
			if wins.Load() != 1 {
				t.Fatalf("%d claims of one fire won", wins.Load())
			}
		})
	}
}
