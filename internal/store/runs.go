package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jmoiron/sqlx"

	"github.com/omserver/omserver-go/internal/task"
)

// Run is one execution of a module on a set of hosts, recorded before it is
// dispatched. ModuleName is the module's name at the time of the run.
type Run struct {
	ID         string            `json:"id"`
	ModuleID   int64             `json:"module_id"`
	ModuleName string            `json:"module_name"`
	Username   string            `json:"username"`
	Params     map[string]string `json:"params"`
	// Hosts is the run's full host list: given to CreateRun and filled by
	// GetRun only. Lists and GetRunInfo leave it empty (HostCount says how
	// many there are; ListRunHosts pages through them).
	Hosts      []task.Host    `json:"hosts,omitempty"`
	HostCount  int            `json:"host_count"`
	Status     task.RunStatus `json:"status"`
	Error      string         `json:"error,omitempty"`
	Master     string         `json:"master,omitempty"` // address of the master that ran it
	CreatedAt  time.Time      `json:"created_at"`
	FinishedAt *time.Time     `json:"finished_at,omitempty"`
	// AckedSeq is the sequence number of the last event of the master's
	// stream whose effect is stored: a web tier resumes the stream after it.
	AckedSeq uint64 `json:"acked_seq"`
	// Summary counts the recorded host results by status, read from the
	// counts kept on the run (statuses without results are absent; ignored
	// by CreateRun).
	Summary map[task.Status]int `json:"summary"`
}

// runRow is a row of runs without the hosts column, which only GetRun reads.
type runRow struct {
	ID           string         `db:"id"`
	ModuleID     int64          `db:"module_id"`
	ModuleName   string         `db:"module_name"`
	Username     string         `db:"username"`
	Params       string         `db:"params"`
	Status       task.RunStatus `db:"status"`
	Error        string         `db:"error"`
	Master       string         `db:"master"`
	CreatedAt    time.Time      `db:"created_at"`
	FinishedAt   sql.NullTime   `db:"finished_at"`
	HostCount    int            `db:"host_count"`
	NOK          int            `db:"n_ok"`
	NFailed      int            `db:"n_failed"`
	NUnreachable int            `db:"n_unreachable"`
	NTimeout     int            `db:"n_timeout"`
	NCancelled   int            `db:"n_cancelled"`
	NSkipped     int            `db:"n_skipped"`
	AckedSeq     int64          `db:"acked_seq"`
}

// runCols are the columns of runRow, in table r.
const runCols = `r.id, r.module_id, r.module_name, r.username, r.params, r.status, r.error, r.master, r.created_at,
	r.finished_at, r.host_count, r.n_ok, r.n_failed, r.n_unreachable, r.n_timeout, r.n_cancelled, r.n_skipped, r.acked_seq`

// countColumn is the column of runs counting results of status st ("" for
// a status that has none, which AddRunResult never records).
func countColumn(st task.Status) string {
	switch st {
	case task.StatusOK:
		return "n_ok"
	case task.StatusFailed:
		return "n_failed"
	case task.StatusUnreachable:
		return "n_unreachable"
	case task.StatusTimeout:
		return "n_timeout"
	case task.StatusCancelled:
		return "n_cancelled"
	case task.StatusSkipped:
		return "n_skipped"
	}
	return ""
}

func (r runRow) run() (Run, error) {
	out := Run{ID: r.ID, ModuleID: r.ModuleID, ModuleName: r.ModuleName, Username: r.Username, Status: r.Status,
		Error: r.Error, Master: r.Master, CreatedAt: r.CreatedAt.UTC(), FinishedAt: nullTime(r.FinishedAt), HostCount: r.HostCount,
		AckedSeq: uint64(max(r.AckedSeq, 0))}
	if err := json.Unmarshal([]byte(r.Params), &out.Params); err != nil {
		return Run{}, fmt.Errorf("store: run %s: stored parameters: %w", r.ID, err)
	}
	if out.Params == nil {
		out.Params = map[string]string{}
	}
	out.Summary = map[task.Status]int{}
	for st, n := range map[task.Status]int{task.StatusOK: r.NOK, task.StatusFailed: r.NFailed,
		task.StatusUnreachable: r.NUnreachable, task.StatusTimeout: r.NTimeout, task.StatusCancelled: r.NCancelled, task.StatusSkipped: r.NSkipped} {
		if n > 0 {
			out.Summary[st] = n
		}
	}
	return out, nil
}

// Limits on what a run record holds.
const (
	MaxRunErrorLen  = 4096
	MaxMasterLen    = 255
	MaxRunUserLen   = 64
	maxOutputStored = 16 << 20 // a MEDIUMTEXT holds 16 MiB - 1
)

func clipText(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// CreateRun records a run before it is dispatched. Status defaults to
// running and CreatedAt to now.
func (s *Store) CreateRun(ctx context.Context, r Run) error {
	return s.createRun(ctx, r, "", time.Time{})
}

// CreateLeasedRun records a running run and, in the same transaction, its
// lease for the web tier owner until the given time (see ClaimRun).
func (s *Store) CreateLeasedRun(ctx context.Context, r Run, owner string, until time.Time) error {
	if err := checkOwner(owner); err != nil {
		return err
	}
	if r.Status != "" && r.Status != task.RunRunning {
		return invalid("run %s: only a running run has a lease", r.ID)
	}
	return s.createRun(ctx, r, owner, until)
}

func (s *Store) createRun(ctx context.Context, r Run, owner string, until time.Time) error {
	if r.ID == "" || len(r.ID) > task.MaxRunIDBytes || !utf8.ValidString(r.ID) {
		return invalid("run: id must be 1..%d bytes of UTF-8", task.MaxRunIDBytes)
	}
	if r.ModuleID <= 0 {
		return invalid("run %s: module id %d is not positive", r.ID, r.ModuleID)
	}
	if len(r.Hosts) == 0 || len(r.Hosts) > task.MaxHosts {
		return invalid("run %s: %d hosts (need 1..%d)", r.ID, len(r.Hosts), task.MaxHosts)
	}
	seen := make(map[task.Host]bool, len(r.Hosts))
	for i, h := range r.Hosts {
		if h.IP == "" && h.Name == "" {
			return invalid("run %s: host %d has neither address nor name", r.ID, i+1)
		}
		if len(h.IP) > MaxIPLen || utf8.RuneCountInString(h.Name) > MaxServerNameLen {
			return invalid("run %s: host %d (%q) is too long", r.ID, i+1, h.String())
		}
		if seen[h] {
			return invalid("run %s: host %s listed twice", r.ID, h)
		}
		seen[h] = true
	}
	if len(r.Params) > task.MaxParams {
		return invalid("run %s: %d parameters, more than %d", r.ID, len(r.Params), task.MaxParams)
	}
	if r.Username == "" || utf8.RuneCountInString(r.Username) > MaxRunUserLen {
		return invalid("run %s: user name missing or longer than %d", r.ID, MaxRunUserLen)
	}
	if utf8.RuneCountInString(r.ModuleName) > MaxModuleNameLen || len(r.Master) > MaxMasterLen {
		return invalid("run %s: module name or master address too long", r.ID)
	}
	if r.Status == "" {
		r.Status = task.RunRunning
	}
	if !r.Status.Valid() {
		return invalid("run %s: status %q unknown", r.ID, r.Status)
	}
	if r.CreatedAt.IsZero() {
		r.CreatedAt = s.now()
	}
	params := r.Params
	if params == nil {
		params = map[string]string{}
	}
	pj, err := json.Marshal(params)
	if err != nil {
		return fmt.Errorf("store: run %s: encode parameters: %w", r.ID, err)
	}
	hj, err := json.Marshal(r.Hosts)
	if err != nil {
		return fmt.Errorf("store: run %s: encode hosts: %w", r.ID, err)
	}
	var finished any
	if r.FinishedAt != nil {
		finished = dbTime(*r.FinishedAt)
	}
	created := dbTime(r.CreatedAt)
	return s.inTx(ctx, func(tx *sqlx.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO runs (id, module_id, module_name, username, params, hosts, status, error,
			master, created_at, finished_at, host_count) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			r.ID, r.ModuleID, r.ModuleName, r.Username, string(pj), string(hj), r.Status, clipText(r.Error, MaxRunErrorLen),
			r.Master, created, finished, len(r.Hosts))
		if err != nil {
			return classify(err, "create run "+r.ID)
		}
		if err := insertRunTargets(ctx, tx, r.ID, created, r.Hosts); err != nil {
			return err
		}
		if owner == "" {
			return nil
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO run_leases (run_id, owner, expires_at) VALUES (?, ?, ?)`, r.ID, owner, dbTime(until))
		return classify(err, "lease run "+r.ID)
	})
}

// SetRunMaster records the master a running run was (or is about to be)
// sent to, so that any web tier knows where to follow or cancel it.
func (s *Store) SetRunMaster(ctx context.Context, id, master string) error {
	if master == "" || len(master) > MaxMasterLen {
		return invalid("run %s: master address must be 1..%d bytes", id, MaxMasterLen)
	}
	return s.inTx(ctx, func(tx *sqlx.Tx) error {
		var cur task.RunStatus
		if err := tx.GetContext(ctx, &cur, `SELECT status FROM runs WHERE id = ?`, id); err != nil {
			return classify(err, "run "+id)
		}
		if cur != task.RunRunning {
			return fmt.Errorf("run %s is already %s: %w", id, cur, ErrConflict)
		}
		_, err := tx.ExecContext(ctx, `UPDATE runs SET master = ? WHERE id = ?`, master, id)
		return classify(err, "record master of run "+id)
	})
}

// targetChunk rows per INSERT keep the placeholders (5 a row) under every
// driver's limit.
const targetChunk = 500

// insertRunTargets writes the run's hosts, one row each in the run's order,
// for paging them (ListRunHosts) and listing runs by host (ListRuns).
func insertRunTargets(ctx context.Context, tx *sqlx.Tx, id string, created time.Time, hosts []task.Host) error {
	for start := 0; start < len(hosts); start += targetChunk {
		end := min(start+targetChunk, len(hosts))
		var q strings.Builder
		q.WriteString(`INSERT INTO run_targets (run_id, pos, host_ip, host_name, created_at) VALUES `)
		args := make([]any, 0, 5*(end-start))
		for i := start; i < end; i++ {
			if i > start {
				q.WriteString(", ")
			}
			q.WriteString("(?, ?, ?, ?, ?)")
			args = append(args, id, i, hosts[i].IP, hosts[i].Name, created)
		}
		if _, err := tx.ExecContext(ctx, q.String(), args...); err != nil {
			return classify(err, "create run "+id+": hosts")
		}
	}
	return nil
}

// AddRunResult records one host's result. It is idempotent per (run, host):
// recording the same host again replaces the earlier row, never adds one.
// Output is cut to what the column holds (the truncated flag is then set).
func (s *Store) AddRunResult(ctx context.Context, runID string, r task.HostResult) error {
	return s.RecordRunResult(ctx, runID, 0, r)
}

// RecordRunResult is AddRunResult for the result carried by event seq of
// the master's stream: in the same transaction the run's acked_seq moves
// up to seq (never down), so a web tier resuming the stream starts after
// the last result stored.
func (s *Store) RecordRunResult(ctx context.Context, runID string, seq uint64, r task.HostResult) error {
	if !r.Status.Valid() {
		return invalid("run %s: host %s: status %q unknown", runID, r.Host, r.Status)
	}
	if r.Host.IP == "" && r.Host.Name == "" {
		return invalid("run %s: result without host", runID)
	}
	if len(r.Host.IP) > MaxIPLen || utf8.RuneCountInString(r.Host.Name) > MaxServerNameLen {
		return invalid("run %s: host %q too long", runID, r.Host.String())
	}
	stdout, stderr := clipText(r.Stdout, maxOutputStored), clipText(r.Stderr, maxOutputStored)
	outTrunc := r.StdoutTruncated || len(stdout) < len(r.Stdout)
	errTrunc := r.StderrTruncated || len(stderr) < len(r.Stderr)
	var started any
	if !r.Started.IsZero() {
		started = dbTime(r.Started)
	}
	args := []any{runID, r.Host.IP, r.Host.Name, string(r.Status), r.ExitCode, stdout, stderr, outTrunc, errTrunc,
		clipText(r.Error, MaxRunErrorLen), started, r.Duration.Milliseconds(), nullString(r.Signature)}
	q := `INSERT INTO run_hosts (run_id, host_ip, host_name, status, exit_code, stdout, stderr, stdout_truncated,
		stderr_truncated, error, started_at, duration_ms, signature) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	// Upsert syntax is the one place the dialects differ.
	if s.dialect == DialectMySQL {
		q += ` ON DUPLICATE KEY UPDATE status = VALUES(status), exit_code = VALUES(exit_code), stdout = VALUES(stdout),
		stderr = VALUES(stderr), stdout_truncated = VALUES(stdout_truncated), stderr_truncated = VALUES(stderr_truncated),
		error = VALUES(error), started_at = VALUES(started_at), duration_ms = VALUES(duration_ms), signature = VALUES(signature)`
	} else {
		q += ` ON CONFLICT (run_id, host_ip, host_name) DO UPDATE SET status = excluded.status, exit_code = excluded.exit_code,
		stdout = excluded.stdout, stderr = excluded.stderr, stdout_truncated = excluded.stdout_truncated,
		stderr_truncated = excluded.stderr_truncated, error = excluded.error, started_at = excluded.started_at,
		duration_ms = excluded.duration_ms, signature = excluded.signature`
	}
	return s.inTx(ctx, func(tx *sqlx.Tx) error {
		if err := bumpRunCounts(ctx, tx, runID, r); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, q, args...); err != nil {
			return classify(err, fmt.Sprintf("run %s: record host %s", runID, r.Host))
		}
		if seq == 0 {
			return nil
		}
		_, err := tx.ExecContext(ctx, `UPDATE runs SET acked_seq = ? WHERE id = ? AND acked_seq < ?`, int64(seq), runID, int64(seq))
		return classify(err, "run "+runID+": record stored event")
	})
}

// bumpRunCounts keeps the run's per-status counts in step with the result
// about to be written in tx: one more of r's status, one fewer of the
// status it replaces. The UPDATE comes first: it locks the run's row, so
// results of one run recorded at once read and replace each other in turn
// and the counts never drift. An unknown run is ErrNotFound.
func bumpRunCounts(ctx context.Context, tx *sqlx.Tx, runID string, r task.HostResult) error {
	col := countColumn(r.Status)
	res, err := tx.ExecContext(ctx, `UPDATE runs SET `+col+` = `+col+` + 1 WHERE id = ?`, runID)
	if err != nil {
		return classify(err, "run "+runID+": count result")
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("store: run %s: count result: %w", runID, err)
	} else if n == 0 {
		return fmt.Errorf("run %s: %w", runID, ErrNotFound)
	}
	var prev task.Status
	err = tx.GetContext(ctx, &prev, `SELECT status FROM run_hosts WHERE run_id = ? AND host_ip = ? AND host_name = ?`,
		runID, r.Host.IP, r.Host.Name)
	if isNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("store: run %s: previous result of %s: %w", runID, r.Host, err)
	}
	if pc := countColumn(prev); pc != "" {
		if _, err := tx.ExecContext(ctx, `UPDATE runs SET `+pc+` = `+pc+` - 1 WHERE id = ?`, runID); err != nil {
			return classify(err, "run "+runID+": count result")
		}
	}
	return nil
}

// FinishRun moves a running run to a final status. A run that is not
// running any more is ErrConflict; an unknown one ErrNotFound.
func (s *Store) FinishRun(ctx context.Context, id string, status task.RunStatus, errText string) error {
	return s.FinishRunAt(ctx, id, status, errText, 0)
}

// FinishRunAt is FinishRun for the end carried by event seq of the
// master's stream (0: none): acked_seq moves up to seq, and the run's lease
// is deleted, in the same transaction.
func (s *Store) FinishRunAt(ctx context.Context, id string, status task.RunStatus, errText string, seq uint64) error {
	if !status.Finished() {
		return invalid("run %s: %q is not a final status", id, status)
	}
	return s.inTx(ctx, func(tx *sqlx.Tx) error {
		var cur task.RunStatus
		if err := tx.GetContext(ctx, &cur, `SELECT status FROM runs WHERE id = ?`, id); err != nil {
			return classify(err, "run "+id)
		}
		if cur != task.RunRunning {
			return fmt.Errorf("run %s is already %s: %w", id, cur, ErrConflict)
		}
		_, err := tx.ExecContext(ctx, `UPDATE runs SET status = ?, error = ?, finished_at = ?,
			acked_seq = CASE WHEN acked_seq < ? THEN ? ELSE acked_seq END WHERE id = ? AND status = ?`,
			status, clipText(errText, MaxRunErrorLen), dbTime(s.now()), int64(seq), int64(seq), id, task.RunRunning)
		if err != nil {
			return classify(err, "finish run "+id)
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM run_leases WHERE run_id = ?`, id)
		return classify(err, "release lease of run "+id)
	})
}

type hostRow struct {
	HostIP          string       `db:"host_ip"`
	HostName        string       `db:"host_name"`
	Status          string       `db:"status"`
	ExitCode        int          `db:"exit_code"`
	Stdout          string       `db:"stdout"`
	Stderr          string       `db:"stderr"`
	StdoutTruncated bool         `db:"stdout_truncated"`
	StderrTruncated bool         `db:"stderr_truncated"`
	Error           string       `db:"error"`
	StartedAt       sql.NullTime `db:"started_at"`
	DurationMS      int64        `db:"duration_ms"`
}

// hostCols are the columns of hostRow, in table h.
const hostCols = `h.host_ip, h.host_name, h.status, h.exit_code, h.stdout, h.stderr, h.stdout_truncated,
	h.stderr_truncated, h.error, h.started_at, h.duration_ms`

func (h hostRow) result(runID string) task.HostResult {
	hr := task.HostResult{RunID: runID, Host: task.Host{IP: h.HostIP, Name: h.HostName}, Status: task.Status(h.Status),
		ExitCode: h.ExitCode, Stdout: h.Stdout, Stderr: h.Stderr, StdoutTruncated: h.StdoutTruncated,
		StderrTruncated: h.StderrTruncated, Error: h.Error, Duration: time.Duration(h.DurationMS) * time.Millisecond}
	if h.StartedAt.Valid {
		hr.Started = h.StartedAt.Time.UTC()
	}
	return hr
}

// GetRun returns a run with its full host list and every result recorded
// so far, in arrival order: for following a run live and for the run
// service, bounded by task.MaxHosts. Pages and API answers use GetRunInfo
// and ListRunHosts. Durations come back at millisecond precision.
func (s *Store) GetRun(ctx context.Context, id string) (Run, []task.HostResult, error) {
	run, err := s.GetRunInfo(ctx, id)
	if err != nil {
		return Run{}, nil, err
	}
	var hosts string
	if err := s.db.GetContext(ctx, &hosts, `SELECT hosts FROM runs WHERE id = ?`, id); err != nil {
		return Run{}, nil, classify(err, "run "+id)
	}
	if err := json.Unmarshal([]byte(hosts), &run.Hosts); err != nil {
		return Run{}, nil, fmt.Errorf("store: run %s: stored hosts: %w", id, err)
	}
	var rows []hostRow
	if err := s.db.SelectContext(ctx, &rows, `SELECT `+hostCols+` FROM run_hosts h WHERE h.run_id = ? ORDER BY h.id`, id); err != nil {
		return Run{}, nil, fmt.Errorf("store: run %s: results: %w", id, err)
	}
	results := make([]task.HostResult, 0, len(rows))
	for _, h := range rows {
		results = append(results, h.result(id))
	}
	return run, results, nil
}

// GetRunInfo returns a run's record and counts, without its hosts.
func (s *Store) GetRunInfo(ctx context.Context, id string) (Run, error) {
	var rr runRow
	if err := s.db.GetContext(ctx, &rr, `SELECT `+runCols+` FROM runs r WHERE r.id = ?`, id); err != nil {
		return Run{}, classify(err, "run "+id)
	}
	return rr.run()
}

// GetRunRecord returns a run's record with its host list but without its
// results: what the web tier needs to follow or take over a run.
func (s *Store) GetRunRecord(ctx context.Context, id string) (Run, error) {
	run, err := s.GetRunInfo(ctx, id)
	if err != nil {
		return Run{}, err
	}
	var hosts string
	if err := s.db.GetContext(ctx, &hosts, `SELECT hosts FROM runs WHERE id = ?`, id); err != nil {
		return Run{}, classify(err, "run "+id)
	}
	if err := json.Unmarshal([]byte(hosts), &run.Hosts); err != nil {
		return Run{}, fmt.Errorf("store: run %s: stored hosts: %w", id, err)
	}
	return run, nil
}
