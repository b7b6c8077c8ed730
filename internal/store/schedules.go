package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jmoiron/sqlx"
)

// Schedules: a module with parameters run on a target by a cron expression
// (internal/schedule interprets them). Each fire is taken by a
// compare-and-set of next_at and recorded once in schedule_fires (unique
// per schedule and fire time): of several tiers at most one starts a run
// for it.

// Schedule target kinds.
const (
	TargetHosts = "hosts" // a saved list of server addresses
	TargetApp   = "app"   // every server of an application
	TargetFun   = "fun"   // every server of a function category
)

// Fire outcomes.
const (
	FirePending = "pending" // taken, the run not started yet
	FireStarted = "started"
	FireSkipped = "skipped" // the previous run still ran
	FireFailed  = "failed"  // the run could not start (target empty, module gone...)
)

// Schedule is one schedule.
type Schedule struct {
	ID          int64             `json:"id"`
	Name        string            `json:"name"`
	ModuleID    int64             `json:"module_id"`
	Params      map[string]string `json:"params"`
	TargetKind  string            `json:"target_kind"`
	TargetID    int64             `json:"target_id,omitempty"`
	TargetHosts []string          `json:"target_hosts,omitempty"`
	Cron        string            `json:"cron"`
	Enabled     bool              `json:"enabled"`
	NextAt      *time.Time        `json:"next_at,omitempty"`
	LastRunID   string            `json:"last_run_id,omitempty"`
	CreatedBy   string            `json:"created_by"`
	CreatedAt   time.Time         `json:"created_at"`
	UpdatedAt   time.Time         `json:"updated_at"`
}

type scheduleRow struct {
	ID          int64        `db:"id"`
	Name        string       `db:"name"`
	ModuleID    int64        `db:"module_id"`
	Params      string       `db:"params"`
	TargetKind  string       `db:"target_kind"`
	TargetID    int64        `db:"target_id"`
	TargetHosts string       `db:"target_hosts"`
	Cron        string       `db:"cron"`
	Enabled     bool         `db:"enabled"`
	NextAt      sql.NullTime `db:"next_at"`
	LastRunID   string       `db:"last_run_id"`
	CreatedBy   string       `db:"created_by"`
	CreatedAt   time.Time    `db:"created_at"`
	UpdatedAt   time.Time    `db:"updated_at"`
}

const scheduleCols = `id, name, module_id, params, target_kind, target_id, target_hosts, cron, enabled, next_at, last_run_id, created_by, created_at, updated_at`

func (r scheduleRow) schedule() (Schedule, error) {
	sc := Schedule{ID: r.ID, Name: r.Name, ModuleID: r.ModuleID, TargetKind: r.TargetKind, TargetID: r.TargetID, Cron: r.Cron,
		Enabled: r.Enabled, NextAt: nullTime(r.NextAt), LastRunID: r.LastRunID, CreatedBy: r.CreatedBy,
		CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC()}
	if err := json.Unmarshal([]byte(r.Params), &sc.Params); err != nil {
		return Schedule{}, fmt.Errorf("store: schedule %d: parameters: %w", r.ID, err)
	}
	if err := json.Unmarshal([]byte(r.TargetHosts), &sc.TargetHosts); err != nil {
		return Schedule{}, fmt.Errorf("store: schedule %d: hosts: %w", r.ID, err)
	}
	if sc.Params == nil {
		sc.Params = map[string]string{}
	}
	return sc, nil
}

// Limits of schedules.
const (
	MaxSchedules        = 500
	MaxScheduleNameLen  = 64
	MaxCronLen          = 128
	MaxFireDetailLen    = 1024
	maxFirePage         = 200
	maxLeaseNameLen     = 32
	maxLeaseOwnerLen    = 64
	scheduleWhat        = "schedule"
	maxScheduleHostsLen = 16 << 20
)

func checkSchedule(sc Schedule) error {
	if strings.TrimSpace(sc.Name) == "" || utf8.RuneCountInString(sc.Name) > MaxScheduleNameLen || !utf8.ValidString(sc.Name) {
		return invalid("schedule: name must be 1..%d characters", MaxScheduleNameLen)
	}
	if sc.ModuleID <= 0 {
		return invalid("schedule %q: module id %d is not positive", sc.Name, sc.ModuleID)
	}
	switch sc.TargetKind {
	case TargetHosts:
		if len(sc.TargetHosts) == 0 || sc.TargetID != 0 {
			return invalid("schedule %q: a host list target needs hosts and no application or category", sc.Name)
		}
	case TargetApp, TargetFun:
		if sc.TargetID <= 0 || len(sc.TargetHosts) != 0 {
			return invalid("schedule %q: an application or category target needs its id and no host list", sc.Name)
		}
	default:
		return invalid("schedule %q: target kind %q is not hosts, app or fun", sc.Name, sc.TargetKind)
	}
	if sc.Cron == "" || len(sc.Cron) > MaxCronLen {
		return invalid("schedule %q: cron expression must be 1..%d bytes", sc.Name, MaxCronLen)
	}
	if sc.CreatedBy == "" || utf8.RuneCountInString(sc.CreatedBy) > MaxRunUserLen {
		return invalid("schedule %q: creator missing or too long", sc.Name)
	}
	return nil
}

func scheduleJSON(sc Schedule) (params, hosts string, err error) {
	p := sc.Params
	if p == nil {
		p = map[string]string{}
	}
	h := sc.TargetHosts
	if h == nil {
		h = []string{}
	}
	pb, err := json.Marshal(p)
	if err != nil {
		return "", "", fmt.Errorf("store: schedule parameters: %w", err)
	}
	hb, err := json.Marshal(h)
	if err != nil {
		return "", "", fmt.Errorf("store: schedule hosts: %w", err)
	}
	if len(hb) > maxScheduleHostsLen {
		return "", "", invalid("schedule %q: host list too long", sc.Name)
	}
	return string(pb), string(hb), nil
}

func nullableTime(t *time.Time) any {
	if t == nil {
		return nil
	}
	return dbTime(*t)
}

// CreateSchedule adds a schedule and returns its id.
func (s *Store) CreateSchedule(ctx context.Context, sc Schedule) (int64, error) {
	if err := checkSchedule(sc); err != nil {
		return 0, err
	}
	params, hosts, err := scheduleJSON(sc)
	if err != nil {
		return 0, err
	}
	var id int64
	err = s.inTx(ctx, func(tx *sqlx.Tx) error {
		var n int
		if err := tx.GetContext(ctx, &n, `SELECT COUNT(*) FROM schedules`); err != nil {
			return fmt.Errorf("store: count schedules: %w", err)
		}
		if n >= MaxSchedules {
			return invalid("there are already %d schedules, the most allowed", n)
		}
		now := dbTime(s.now())
		res, err := tx.ExecContext(ctx, `INSERT INTO schedules (name, module_id, params, target_kind, target_id, target_hosts, cron, enabled,
			next_at, last_run_id, created_by, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, '', ?, ?, ?)`,
			sc.Name, sc.ModuleID, params, sc.TargetKind, sc.TargetID, hosts, sc.Cron, sc.Enabled, nullableTime(sc.NextAt), sc.CreatedBy, now, now)
		if err != nil {
			return classify(err, fmt.Sprintf("create schedule %q", sc.Name))
		}
		id, err = res.LastInsertId()
		return err
	})
	return id, err
}

// UpdateSchedule replaces what a schedule runs, where, when and whether
// (its creator, creation time and last run are kept).
func (s *Store) UpdateSchedule(ctx context.Context, sc Schedule) error {
	if err := checkSchedule(sc); err != nil {
		return err
	}
	params, hosts, err := scheduleJSON(sc)
	if err != nil {
		return err
	}
	res, err := s.db.ExecContext(ctx, `UPDATE schedules SET name = ?, module_id = ?, params = ?, target_kind = ?, target_id = ?,
		target_hosts = ?, cron = ?, enabled = ?, next_at = ?, updated_at = ? WHERE id = ?`,
		sc.Name, sc.ModuleID, params, sc.TargetKind, sc.TargetID, hosts, sc.Cron, sc.Enabled, nullableTime(sc.NextAt), dbTime(s.now()), sc.ID)
	if err != nil {
		return classify(err, fmt.Sprintf("update schedule %q", sc.Name))
	}
	return mustAffect(res, fmt.Sprintf("%s %d", scheduleWhat, sc.ID))
}

// SetScheduleEnabled pauses (enabled false) or resumes a schedule; next is
// its next fire when resumed.
func (s *Store) SetScheduleEnabled(ctx context.Context, id int64, enabled bool, next *time.Time) error {
	res, err := s.db.ExecContext(ctx, `UPDATE schedules SET enabled = ?, next_at = ?, updated_at = ? WHERE id = ?`,
		enabled, nullableTime(next), dbTime(s.now()), id)
	if err != nil {
		return classify(err, fmt.Sprintf("schedule %d", id))
	}
	return mustAffect(res, fmt.Sprintf("%s %d", scheduleWhat, id))
}

// DeleteSchedule removes a schedule and its history.
func (s *Store) DeleteSchedule(ctx context.Context, id int64) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM schedules WHERE id = ?`, id)
	if err != nil {
		return classify(err, fmt.Sprintf("delete schedule %d", id))
	}
	return mustAffect(res, fmt.Sprintf("%s %d", scheduleWhat, id))
}

// GetSchedule returns one schedule.
func (s *Store) GetSchedule(ctx context.Context, id int64) (Schedule, error) {
	var r scheduleRow
	if err := s.db.GetContext(ctx, &r, `SELECT `+scheduleCols+` FROM schedules WHERE id = ?`, id); err != nil {
		return Schedule{}, classify(err, fmt.Sprintf("%s %d", scheduleWhat, id))
	}
	return r.schedule()
}

// ListSchedules returns every schedule (at most MaxSchedules) by name.
func (s *Store) ListSchedules(ctx context.Context) ([]Schedule, error) {
	return s.selectSchedules(ctx, `SELECT `+scheduleCols+` FROM schedules ORDER BY name LIMIT ?`, MaxSchedules)
}

// DueSchedules returns enabled schedules whose next fire is at or before now.
func (s *Store) DueSchedules(ctx context.Context, now time.Time, limit int) ([]Schedule, error) {
	if limit <= 0 || limit > MaxSchedules {
		limit = MaxSchedules
	}
	return s.selectSchedules(ctx, `SELECT `+scheduleCols+` FROM schedules WHERE enabled = ? AND next_at IS NOT NULL AND next_at <= ?
		ORDER BY next_at, id LIMIT ?`, true, dbTime(now), limit)
}

func (s *Store) selectSchedules(ctx context.Context, q string, args ...any) ([]Schedule, error) {
	var rows []scheduleRow
	if err := s.db.SelectContext(ctx, &rows, q, args...); err != nil {
		return nil, fmt.Errorf("store: list schedules: %w", err)
	}
	out := make([]Schedule, 0, len(rows))
	for _, r := range rows {
		sc, err := r.schedule()
		if err != nil {
			return nil, err
		}
		out = append(out, sc)
	}
	return out, nil
}

// ClaimFire takes the fire of schedule id at fireAt for tier: next_at moves
// from fireAt to next (compare-and-set) and a pending fire row is written,
// in one transaction. It reports false, changing nothing, when another tier
// took this fire first (next_at moved on, or the fire row exists).
func (s *Store) ClaimFire(ctx context.Context, id int64, fireAt time.Time, next *time.Time, tier string) (int64, bool, error) {
	var fireID int64
	won := false
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE schedules SET next_at = ? WHERE id = ? AND enabled = ? AND next_at = ?`,
			nullableTime(next), id, true, dbTime(fireAt))
		if err != nil {
			return classify(err, fmt.Sprintf("schedule %d: take fire", id))
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return err
		}
		res, err = tx.ExecContext(ctx, `INSERT INTO schedule_fires (schedule_id, fire_at, started_at, outcome, tier) VALUES (?, ?, ?, ?, ?)`,
			id, dbTime(fireAt), dbTime(s.now()), FirePending, clipText(tier, 64))
		if err != nil {
			err = classify(err, fmt.Sprintf("schedule %d: record fire", id))
			if errors.Is(err, ErrConflict) {
				return errFireTaken
			}
			return err
		}
		if fireID, err = res.LastInsertId(); err != nil {
			return err
		}
		won = true
		return nil
	})
	if errors.Is(err, errFireTaken) {
		return 0, false, nil
	}
	return fireID, won, err
}

var errFireTaken = errors.New("fire already taken")

// FinishFire records a fire's outcome; a started run becomes the
// schedule's last run (the next fire is skipped while it runs).
func (s *Store) FinishFire(ctx context.Context, scheduleID, fireID int64, outcome, runID, detail string) error {
	switch outcome {
	case FireStarted, FireSkipped, FireFailed:
	default:
		return invalid("schedule fire: outcome %q unknown", outcome)
	}
	return s.inTx(ctx, func(tx *sqlx.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE schedule_fires SET outcome = ?, run_id = ?, detail = ? WHERE id = ? AND schedule_id = ?`,
			outcome, runID, clipText(detail, MaxFireDetailLen), fireID, scheduleID)
		if err != nil {
			return classify(err, fmt.Sprintf("schedule fire %d", fireID))
		}
		if err := mustAffect(res, fmt.Sprintf("schedule fire %d", fireID)); err != nil {
			return err
		}
		if runID != "" {
			if _, err := tx.ExecContext(ctx, `UPDATE schedules SET last_run_id = ? WHERE id = ?`, runID, scheduleID); err != nil {
				return classify(err, fmt.Sprintf("schedule %d: last run", scheduleID))
			}
		}
		return nil
	})
}

// Fire is one fire of a schedule, for its history.
type Fire struct {
	ID         int64     `db:"id" json:"id"`
	ScheduleID int64     `db:"schedule_id" json:"schedule_id"`
	FireAt     time.Time `db:"fire_at" json:"fire_at"`
	StartedAt  time.Time `db:"started_at" json:"started_at"`
	Outcome    string    `db:"outcome" json:"outcome"`
	RunID      string    `db:"run_id" json:"run_id,omitempty"`
	Detail     string    `db:"detail" json:"detail,omitempty"`
	Tier       string    `db:"tier" json:"tier"`
}

// ListFires returns a schedule's fires newest first, with ids below before
// (0: from the newest), at most limit (default 50, at most 200).
func (s *Store) ListFires(ctx context.Context, scheduleID, before int64, limit int) ([]Fire, error) {
	if limit <= 0 {
		limit = 50
	}
	if limit > maxFirePage || before < 0 {
		return nil, invalid("schedule history: limit must be 1..%d and before not negative", maxFirePage)
	}
	q := `SELECT id, schedule_id, fire_at, started_at, outcome, run_id, detail, tier FROM schedule_fires WHERE schedule_id = ?`
	args := []any{scheduleID}
	if before > 0 {
		q += ` AND id < ?`
		args = append(args, before)
	}
	out := []Fire{}
	if err := s.db.SelectContext(ctx, &out, q+` ORDER BY id DESC LIMIT ?`, append(args, limit)...); err != nil {
		return nil, fmt.Errorf("store: schedule history: %w", err)
	}
	for i := range out {
		out[i].FireAt, out[i].StartedAt = out[i].FireAt.UTC(), out[i].StartedAt.UTC()
	}
	return out, nil
}

// AcquireLeader takes or renews the lease name for owner until now+ttl. It
// reports whether owner holds it: a lease held by another owner is taken
// only after it expired.
func (s *Store) AcquireLeader(ctx context.Context, name, owner string, ttl time.Duration) (bool, error) {
	if name == "" || len(name) > maxLeaseNameLen || owner == "" || len(owner) > maxLeaseOwnerLen || ttl <= 0 {
		return false, invalid("lease: name, owner or ttl out of range")
	}
	now := dbTime(s.now())
	until := dbTime(now.Add(ttl))
	res, err := s.db.ExecContext(ctx, `UPDATE leader_leases SET owner = ?, until = ? WHERE name = ? AND (owner = ? OR until < ?)`,
		owner, until, name, owner, now)
	if err != nil {
		return false, classify(err, "lease "+name)
	}
	if n, _ := res.RowsAffected(); n == 1 {
		return true, nil
	}
	_, err = s.db.ExecContext(ctx, `INSERT INTO leader_leases (name, owner, until) VALUES (?, ?, ?)`, name, owner, until)
	if err == nil {
		return true, nil
	}
	if errors.Is(classify(err, "lease "+name), ErrConflict) {
		return false, nil // another owner holds it
	}
	return false, classify(err, "lease "+name)
}

// ReleaseLeader gives up owner's lease at once (on shutdown).
func (s *Store) ReleaseLeader(ctx context.Context, name, owner string) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM leader_leases WHERE name = ? AND owner = ?`, name, owner)
	return classify(err, "release lease "+name)
}
