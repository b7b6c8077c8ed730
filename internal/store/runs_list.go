package store

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/omserver/omserver-go/internal/task"
)

// RunFilter selects runs for ListRuns; zero fields do not filter.
type RunFilter struct {
	Limit  int    // default DefaultRunLimit, at most MaxLimit
	Cursor string // Next of the previous page; "" for the newest runs

	Username string
	ModuleID int64
	Status   task.RunStatus
	// Host is an address or a hostname: runs that target it.
	Host string
	// From and To bound created_at: From <= created_at < To.
	From, To time.Time
}

// DefaultRunLimit is the page size of run lists.
const DefaultRunLimit = 50

// RunPage is one page of runs, newest first. Next is the cursor of the
// following (older) page, "" on the last page.
type RunPage struct {
	Runs []Run
	Next string
}

const runsCursor = "runs"

// ListRuns returns one page of runs, newest first (by created_at, then id),
// with their host counts and per-status counts but never their hosts: it
// reads the runs table only (and run_targets when filtering by host).
func (s *Store) ListRuns(ctx context.Context, f RunFilter) (RunPage, error) {
	limit, err := pageLimit("runs", f.Limit, DefaultRunLimit)
	if err != nil {
		return RunPage{}, err
	}
	if f.Status != "" && !f.Status.Valid() {
		return RunPage{}, invalid("runs: status %q unknown (running, done, failed, cancelled or interrupted)", f.Status)
	}
	if f.ModuleID < 0 {
		return RunPage{}, invalid("runs: module id %d is negative", f.ModuleID)
	}
	if utf8.RuneCountInString(f.Username) > MaxRunUserLen {
		return RunPage{}, invalid("runs: user name longer than %d", MaxRunUserLen)
	}
	if len(f.Host) > MaxServerNameLen*4 || utf8.RuneCountInString(f.Host) > MaxServerNameLen {
		return RunPage{}, invalid("runs: host longer than %d", MaxServerNameLen)
	}
	if !f.From.IsZero() && !f.To.IsZero() && !f.From.Before(f.To) {
		return RunPage{}, invalid("runs: the date range is empty (from %s is not before to %s)",
			f.From.UTC().Format(time.RFC3339), f.To.UTC().Format(time.RFC3339))
	}
	var (
		afterAt time.Time
		afterID string
	)
	more, err := decodeCursor(runsCursor, f.Cursor, &afterAt, &afterID)
	if err != nil {
		return RunPage{}, err
	}

	// With a host, run_targets (host, created_at, run_id) drives the scan;
	// otherwise one of the runs indexes ending with (created_at, id) does.
	key := "r"
	from := "runs r"
	var where []string
	var args []any
	if f.Host != "" {
		key = "t"
		from = "run_targets t JOIN runs r ON r.id = t.run_id"
		if _, err := netip.ParseAddr(f.Host); err == nil {
			where, args = append(where, "t.host_ip = ?"), append(args, f.Host)
		} else {
			where, args = append(where, "t.host_name = ?"), append(args, f.Host)
		}
	}
	at, id := key+".created_at", key+".id"
	if key == "t" {
		id = "t.run_id"
	}
	if f.Username != "" {
		where, args = append(where, "r.username = ?"), append(args, f.Username)
	}
	if f.ModuleID > 0 {
		where, args = append(where, "r.module_id = ?"), append(args, f.ModuleID)
	}
	if f.Status != "" {
		where, args = append(where, "r.status = ?"), append(args, f.Status)
	}
	if !f.From.IsZero() {
		where, args = append(where, at+" >= ?"), append(args, dbTime(f.From))
	}
	if !f.To.IsZero() {
		where, args = append(where, at+" < ?"), append(args, dbTime(f.To))
	}
	if more {
		// (created_at, id) < (afterAt, afterID), written so that the first
		// conjunct is an index range.
		t := dbTime(afterAt)
		where = append(where, fmt.Sprintf("%s <= ? AND (%s < ? OR %s < ?)", at, at, id))
		args = append(args, t, t, afterID)
	}
	q := `SELECT ` + runCols + ` FROM ` + from
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	q += fmt.Sprintf(` ORDER BY %s DESC, %s DESC LIMIT ?`, at, id)
	var rows []runRow
	if err := s.db.SelectContext(ctx, &rows, q, append(args, limit+1)...); err != nil {
		return RunPage{}, fmt.Errorf("store: list runs: %w", err)
	}
	page := RunPage{Runs: make([]Run, 0, min(len(rows), limit))}
	seen := make(map[string]bool, len(rows))
	for i, r := range rows {
		if i == limit {
			last := rows[limit-1]
			page.Next = encodeCursor(runsCursor, last.CreatedAt.UTC(), last.ID)
			break
		}
		if seen[r.ID] {
			// The same address twice in one run (under two names) joins
			// that run twice.
			continue
		}
		seen[r.ID] = true
		run, err := r.run()
		if err != nil {
			return RunPage{}, err
		}
		page.Runs = append(page.Runs, run)
	}
	return page, nil
}

// NoResult is the RunHostFilter status of hosts without a recorded result
// (still waiting, or left without one when the run ended).
const NoResult = "noresult"

// RunHostFilter selects hosts of a run for ListRunHosts.
type RunHostFilter struct {
	Limit  int    // default DefaultLimit, at most MaxLimit
	Cursor string // Next of the previous page; "" for the first hosts
	// Status keeps hosts whose result has this status (a task.Status), or
	// those without a result (NoResult); "" keeps every host.
	Status string
}

// RunHost is one host of a run, at its position in the run's host list,
// with its result when one is recorded.
type RunHost struct {
	Pos    int
	Host   task.Host
	Result *task.HostResult
}

// RunHostPage is one page of a run's hosts in the run's order. Next is the
// cursor of the following page, "" on the last page.
type RunHostPage struct {
	Hosts []RunHost
	Next  string
}

const runHostsCursor = "run-hosts"

// resultMatch joins a host of a run (t) to its result (h): by address, or
// by name for a host that has none. A master may report a host by address
// alone, so a name does not have to match.
const resultMatch = `h.run_id = t.run_id AND h.host_ip = t.host_ip AND (t.host_ip <> '' OR h.host_name = t.host_name)`

// ListRunHosts returns one page of a run's hosts, in the run's order, with
// their results. Its cost is the page's, whatever the run's size, except
// under a status filter, which scans the run's hosts until the page is
// full (bounded by task.MaxHosts). An unknown run is ErrNotFound.
func (s *Store) ListRunHosts(ctx context.Context, runID string, f RunHostFilter) (RunHostPage, error) {
	limit, err := pageLimit("hosts of run "+runID, f.Limit, DefaultLimit)
	if err != nil {
		return RunHostPage{}, err
	}
	if f.Status != "" && f.Status != NoResult && !task.Status(f.Status).Valid() {
		return RunHostPage{}, invalid("hosts of run %s: status %q unknown (ok, failed, unreachable, timeout, cancelled or %s)",
			runID, clipText(f.Status, 40), NoResult)
	}
	after := int64(-1)
	if _, err := decodeCursor(runHostsCursor, f.Cursor, &after); err != nil {
		return RunHostPage{}, err
	}
	if err := exists(ctx, s.db, `SELECT 1 FROM runs WHERE id = ?`, runID); err != nil {
		return RunHostPage{}, classify(err, "run "+runID)
	}
	q := `SELECT t.pos, t.host_ip, t.host_name FROM run_targets t WHERE t.run_id = ? AND t.pos > ?`
	args := []any{runID, after}
	switch f.Status {
	case "":
	case NoResult:
		q += ` AND NOT EXISTS (SELECT 1 FROM run_hosts h WHERE ` + resultMatch + `)`
	default:
		q += ` AND EXISTS (SELECT 1 FROM run_hosts h WHERE ` + resultMatch + ` AND h.status = ?)`
		args = append(args, f.Status)
	}
	q += ` ORDER BY t.pos LIMIT ?`
	var targets []struct {
		Pos  int    `db:"pos"`
		IP   string `db:"host_ip"`
		Name string `db:"host_name"`
	}
	if err := s.db.SelectContext(ctx, &targets, q, append(args, limit+1)...); err != nil {
		return RunHostPage{}, fmt.Errorf("store: hosts of run %s: %w", runID, err)
	}
	page := RunHostPage{Hosts: make([]RunHost, 0, min(len(targets), limit))}
	if len(targets) > limit {
		targets = targets[:limit]
		page.Next = encodeCursor(runHostsCursor, int64(targets[limit-1].Pos))
	}
	if len(targets) == 0 {
		return page, nil
	}
	// The page's results, by one lookup per address on the run's unique key.
	var ips, names []string
	for _, t := range targets {
		if t.IP != "" {
			ips = append(ips, t.IP)
		} else {
			names = append(names, t.Name)
		}
	}
	byIP := map[string]task.HostResult{}
	byName := map[string]task.HostResult{}
	for _, set := range []struct {
		col  string
		vals []string
		into map[string]task.HostResult
	}{{"host_ip", ips, byIP}, {"host_name", names, byName}} {
		if len(set.vals) == 0 {
			continue
		}
		cond := "h.host_ip = ''"
		if set.col == "host_ip" {
			cond = "h.host_ip <> ''"
		}
		marks := strings.TrimSuffix(strings.Repeat("?, ", len(set.vals)), ", ")
		rq := `SELECT ` + hostCols + ` FROM run_hosts h WHERE h.run_id = ? AND ` + cond + ` AND h.` + set.col +
			` IN (` + marks + `) ORDER BY h.id`
		rargs := []any{runID}
		for _, v := range set.vals {
			rargs = append(rargs, v)
		}
		var rows []hostRow
		if err := s.db.SelectContext(ctx, &rows, rq, rargs...); err != nil {
			return RunHostPage{}, fmt.Errorf("store: results of run %s: %w", runID, err)
		}
		for _, h := range rows {
			k := h.HostIP
			if set.col == "host_name" {
				k = h.HostName
			}
			set.into[k] = h.result(runID) // the latest recorded wins
		}
	}
	for _, t := range targets {
		rh := RunHost{Pos: t.Pos, Host: task.Host{IP: t.IP, Name: t.Name}}
		res, ok := byIP[t.IP]
		if t.IP == "" {
			res, ok = byName[t.Name]
		}
		if ok {
			rh.Result = &res
		}
		page.Hosts = append(page.Hosts, rh)
	}
	return page, nil
}
