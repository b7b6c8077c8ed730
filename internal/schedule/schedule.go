// Package schedule runs modules on a cron schedule: a module with
// parameters on a target (a saved host list, an application or a function
// category, resolved when it fires). One web tier at a time runs the
// scheduler (a leader lease in the database); each fire is taken by a
// compare-and-set in the store and recorded once, so however many tiers
// run, a fire starts at most one run. A fire whose schedule's previous run
// still runs is recorded as skipped.
package schedule

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
	"github.com/rs/zerolog"

	"github.com/omserver/omserver-go/internal/apperr"
	"github.com/omserver/omserver-go/internal/param"
	"github.com/omserver/omserver-go/internal/runs"
	"github.com/omserver/omserver-go/internal/store"
	"github.com/omserver/omserver-go/internal/task"
)

// Submitter starts runs (runs.Service).
type Submitter interface {
	// Preview resolves a request (its applications and categories to
	// servers) and checks it, recording nothing.
	Preview(ctx context.Context, req runs.Request) (runs.Plan, error)
	Submit(ctx context.Context, req runs.Request) (string, error)
}

// Config tunes the scheduler. Zero values mean the defaults in brackets.
type Config struct {
	// Tier names this web tier in the leader lease and the fire history
	// [host-pid-random].
	Tier string
	// LeaseTTL is how long the leader lease lasts without renewal [30s]:
	// another tier takes over that long after the leader stops.
	LeaseTTL time.Duration
	// Tick is how often the leader looks for due schedules [5s].
	Tick time.Duration
	// MinInterval is the shortest time allowed between two fires of one
	// schedule [1m].
	MinInterval time.Duration
}

func (c *Config) setDefaults() {
	if c.Tier == "" {
		c.Tier = store.NewHolderID()
	}
	if c.LeaseTTL <= 0 {
		c.LeaseTTL = 30 * time.Second
	}
	if c.Tick <= 0 {
		c.Tick = 5 * time.Second
	}
	if c.MinInterval <= 0 {
		c.MinInterval = time.Minute
	}
}

// leaseName is the scheduler's row in leader_leases.
const leaseName = "scheduler"

// Scheduler manages and fires schedules.
type Scheduler struct {
	cfg  Config
	st   *store.Store
	runs Submitter
	log  zerolog.Logger
	now  func() time.Time
}

// New returns a scheduler over st that starts runs through sub.
func New(cfg Config, st *store.Store, sub Submitter, log zerolog.Logger) (*Scheduler, error) {
	if st == nil || sub == nil {
		return nil, errors.New("schedule: a store and a submitter are required")
	}
	cfg.setDefaults()
	return &Scheduler{cfg: cfg, st: st, runs: sub, log: log.With().Str("component", "schedule").Logger(),
		now: func() time.Time { return time.Now().UTC() }}, nil
}

// SetClock replaces the clock (tests drive time by hand).
func (s *Scheduler) SetClock(now func() time.Time) { s.now = now }

var parser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

func invalidf(format string, args ...any) error {
	return apperr.Errorf(apperr.Invalid, format, args...)
}

// parse checks a cron expression: five fields (minute hour day-of-month
// month day-of-week) or a descriptor (@hourly, @daily, @every 10m...),
// optionally after CRON_TZ=Area/City; fires at least MinInterval apart.
func (s *Scheduler) parse(spec string) (cron.Schedule, error) {
	spec = strings.TrimSpace(spec)
	if spec == "" || len(spec) > store.MaxCronLen {
		return nil, invalidf("a cron expression is needed (at most %d characters), such as \"0 3 * * *\"", store.MaxCronLen)
	}
	sched, err := parser.Parse(spec)
	if err != nil {
		return nil, invalidf("cron expression %q: %s (five fields: minute hour day month weekday, or @daily, @every 1h...)", spec, err)
	}
	// Check the gap over a week of fires (a range like "*/1" is obvious at
	// once; "0,1 * * * *" only between some fires).
	t := time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
	prev := sched.Next(t)
	if prev.IsZero() {
		return nil, invalidf("cron expression %q never fires", spec)
	}
	for i := 0; i < 2000; i++ {
		n := sched.Next(prev)
		if n.IsZero() || n.Sub(t) > 7*24*time.Hour {
			break
		}
		if n.Sub(prev) < s.cfg.MinInterval {
			return nil, invalidf("cron expression %q fires %s apart; the shortest allowed is %s", spec, n.Sub(prev), s.cfg.MinInterval)
		}
		prev = n
	}
	return sched, nil
}

// next is the first fire of spec strictly after t.
func (s *Scheduler) next(spec string, t time.Time) (*time.Time, error) {
	sched, err := s.parse(spec)
	if err != nil {
		return nil, err
	}
	n := sched.Next(t).UTC()
	if n.IsZero() {
		return nil, nil
	}
	return &n, nil
}

// Spec is what a caller asks to schedule.
type Spec struct {
	Name        string
	ModuleID    int64
	Params      map[string]string
	TargetKind  string
	TargetID    int64
	TargetHosts []string
	Cron        string
	Enabled     bool
	User        string // who creates or changes it
}

// check validates a spec against the catalog and the inventory.
func (s *Scheduler) check(ctx context.Context, sp Spec) (map[string]string, error) {
	if strings.TrimSpace(sp.Name) == "" || len([]rune(sp.Name)) > store.MaxScheduleNameLen {
		return nil, invalidf("a schedule needs a name of 1..%d characters", store.MaxScheduleNameLen)
	}
	mod, err := s.st.GetModule(ctx, sp.ModuleID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, invalidf("module %d does not exist", sp.ModuleID)
	}
	if err != nil {
		return nil, err
	}
	params, err := param.Schema(mod.Params).Validate(sp.Params)
	if err != nil {
		return nil, apperr.Wrap(apperr.Invalid, err)
	}
	switch sp.TargetKind {
	case store.TargetHosts:
		if len(sp.TargetHosts) == 0 || len(sp.TargetHosts) > task.MaxHosts {
			return nil, invalidf("a host list needs 1..%d servers", task.MaxHosts)
		}
		if _, err := s.st.GetServers(ctx, sp.TargetHosts); err != nil {
			if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrInvalid) {
				return nil, invalidf("%s", err.Error())
			}
			return nil, err
		}
	case store.TargetApp:
		if _, err := s.st.GetAppCateg(ctx, sp.TargetID); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return nil, invalidf("application %d does not exist", sp.TargetID)
			}
			return nil, err
		}
	case store.TargetFun:
		if _, err := s.st.GetFunCateg(ctx, sp.TargetID); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return nil, invalidf("function category %d does not exist", sp.TargetID)
			}
			return nil, err
		}
	default:
		return nil, invalidf("target %q is not hosts, app or fun", sp.TargetKind)
	}
	if _, err := s.parse(sp.Cron); err != nil {
		return nil, err
	}
	return params, nil
}

func (s *Scheduler) record(sp Spec, params map[string]string) (store.Schedule, error) {
	sc := store.Schedule{Name: strings.TrimSpace(sp.Name), ModuleID: sp.ModuleID, Params: params, TargetKind: sp.TargetKind,
		Cron: strings.TrimSpace(sp.Cron), Enabled: sp.Enabled, CreatedBy: sp.User}
	if sp.TargetKind == store.TargetHosts {
		sc.TargetHosts = sp.TargetHosts
	} else {
		sc.TargetID = sp.TargetID
	}
	if sp.Enabled {
		n, err := s.next(sc.Cron, s.now())
		if err != nil {
			return sc, err
		}
		sc.NextAt = n
	}
	return sc, nil
}

// Create validates and stores a schedule.
func (s *Scheduler) Create(ctx context.Context, sp Spec) (store.Schedule, error) {
	params, err := s.check(ctx, sp)
	if err != nil {
		return store.Schedule{}, err
	}
	sc, err := s.record(sp, params)
	if err != nil {
		return store.Schedule{}, err
	}
	if sc.ID, err = s.st.CreateSchedule(ctx, sc); err != nil {
		return store.Schedule{}, err
	}
	return s.st.GetSchedule(ctx, sc.ID)
}

// Update validates and replaces a schedule; its next fire is computed anew.
func (s *Scheduler) Update(ctx context.Context, id int64, sp Spec) (store.Schedule, error) {
	old, err := s.st.GetSchedule(ctx, id)
	if err != nil {
		return store.Schedule{}, err
	}
	params, err := s.check(ctx, sp)
	if err != nil {
		return store.Schedule{}, err
	}
	sc, err := s.record(sp, params)
	if err != nil {
		return store.Schedule{}, err
	}
	sc.ID, sc.CreatedBy = id, old.CreatedBy
	if err := s.st.UpdateSchedule(ctx, sc); err != nil {
		return store.Schedule{}, err
	}
	return s.st.GetSchedule(ctx, id)
}

// SetEnabled pauses or resumes a schedule; a resumed schedule fires next
// at its first time after now (fires missed while paused are not made up).
func (s *Scheduler) SetEnabled(ctx context.Context, id int64, enabled bool) (store.Schedule, error) {
	sc, err := s.st.GetSchedule(ctx, id)
	if err != nil {
		return store.Schedule{}, err
	}
	var next *time.Time
	if enabled {
		if next, err = s.next(sc.Cron, s.now()); err != nil {
			return store.Schedule{}, err
		}
	}
	if err := s.st.SetScheduleEnabled(ctx, id, enabled, next); err != nil {
		return store.Schedule{}, err
	}
	return s.st.GetSchedule(ctx, id)
}

// Run fires due schedules while this tier holds the leader lease, until
// ctx ends; then it gives the lease up.
func (s *Scheduler) Run(ctx context.Context) {
	t := time.NewTicker(s.cfg.Tick)
	defer t.Stop()
	defer func() {
		rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.st.ReleaseLeader(rctx, leaseName, s.cfg.Tier)
	}()
	for {
		if _, err := s.Tick(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn().Err(err).Msg("scheduler tick")
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Tick renews or takes the leader lease and, when this tier is the leader,
// fires every due schedule. It returns how many runs it started.
func (s *Scheduler) Tick(ctx context.Context) (int, error) {
	leader, err := s.st.AcquireLeader(ctx, leaseName, s.cfg.Tier, s.cfg.LeaseTTL)
	if err != nil || !leader {
		return 0, err
	}
	now := s.now()
	due, err := s.st.DueSchedules(ctx, now, 0)
	if err != nil {
		return 0, err
	}
	started := 0
	for _, sc := range due {
		if ok, err := s.fire(ctx, sc, now); err != nil {
			s.log.Error().Err(err).Int64("schedule", sc.ID).Msg("schedule fire")
		} else if ok {
			started++
		}
	}
	return started, nil
}

// fire takes one due fire of sc and starts its run, or records why not.
func (s *Scheduler) fire(ctx context.Context, sc store.Schedule, now time.Time) (bool, error) {
	log := s.log.With().Int64("schedule", sc.ID).Str("name", sc.Name).Logger()
	fireAt := *sc.NextAt
	// Fires missed while no tier ran are not made up: the next one is the
	// first after now.
	next, err := s.next(sc.Cron, now)
	if err != nil {
		next = nil // a schedule whose expression no longer parses stops firing
	}
	fireID, won, err := s.st.ClaimFire(ctx, sc.ID, fireAt, next, s.cfg.Tier)
	if err != nil || !won {
		return false, err
	}
	finish := func(outcome, runID, detail string) error {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		return s.st.FinishFire(rctx, sc.ID, fireID, outcome, runID, detail)
	}
	if sc.LastRunID != "" {
		prev, err := s.st.GetRunInfo(ctx, sc.LastRunID)
		if err == nil && prev.Status == task.RunRunning {
			log.Info().Str("previous_run", prev.ID).Msg("schedule fire skipped: the previous run still runs")
			return false, finish(store.FireSkipped, "", "the previous run "+prev.ID+" is still running")
		}
	}
	// The target is resolved now, at fire time: a schedule on an
	// application or a category runs on the servers it has today.
	req := runs.Request{ModuleID: sc.ModuleID, Params: sc.Params, User: fmt.Sprintf("schedule:%d", sc.ID)}
	switch sc.TargetKind {
	case store.TargetApp:
		req.AppIDs = []int64{sc.TargetID}
	case store.TargetFun:
		req.FunIDs = []int64{sc.TargetID}
	default:
		req.Hosts = sc.TargetHosts
	}
	plan, err := s.runs.Preview(ctx, req)
	if err != nil {
		return false, finish(store.FireFailed, "", "resolving the target: "+err.Error())
	}
	hosts := plan.Hosts
	// Whoever saved the schedule confirmed what it runs where; a large or
	// risky run is confirmed with the host count resolved just now.
	req.ConfirmedHosts = len(hosts)
	id, err := s.runs.Submit(ctx, req)
	if err != nil {
		log.Warn().Err(err).Msg("scheduled run not started")
		return false, finish(store.FireFailed, "", err.Error())
	}
	log.Info().Str("run_id", id).Int("hosts", len(hosts)).Time("fire_at", fireAt).Msg("scheduled run started")
	return true, finish(store.FireStarted, id, fmt.Sprintf("%d hosts", len(hosts)))
}
