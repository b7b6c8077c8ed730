package store

import (
	"context"
	"crypto/ed25519"
	"database/sql"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/omserver/omserver-go/internal/ledger"
	"github.com/omserver/omserver-go/internal/task"
)

// The tamper-evident record: the audit log and finished runs' host results
// are hash-chained (internal/ledger defines the hashes). Each append locks
// the chain's head row in chain_heads inside its transaction (SELECT ...
// FOR UPDATE on MySQL; SQLite transactions here take the write lock first),
// so appenders on several web tiers queue instead of forking the chain.

type chainHead struct {
	Seq     int64  `db:"seq"`
	Hash    string `db:"hash"`
	StartID int64  `db:"start_id"`
}

// lockHead reads and locks a chain's head for the rest of tx.
func (s *Store) lockHead(ctx context.Context, tx *sqlx.Tx, name string) (chainHead, error) {
	q := `SELECT seq, hash, start_id FROM chain_heads WHERE name = ?`
	if s.dialect == DialectMySQL {
		q += ` FOR UPDATE`
	}
	var h chainHead
	if err := tx.GetContext(ctx, &h, q, name); err != nil {
		return chainHead{}, fmt.Errorf("store: chain %s: head: %w", name, err)
	}
	return h, nil
}

func setHead(ctx context.Context, tx *sqlx.Tx, name string, seq int64, hash string) error {
	if _, err := tx.ExecContext(ctx, `UPDATE chain_heads SET seq = ?, hash = ? WHERE name = ?`, seq, hash, name); err != nil {
		return fmt.Errorf("store: chain %s: move head: %w", name, err)
	}
	return nil
}

// appendAudit inserts e as the next row of the audit chain, in tx.
func (s *Store) appendAudit(ctx context.Context, tx *sqlx.Tx, e AuditEntry) error {
	head, err := s.lockHead(ctx, tx, ledger.ChainAudit)
	if err != nil {
		return err
	}
	seq := head.Seq + 1
	hash := ledger.AuditHash(head.Hash, seq, ledger.AuditRow{At: e.At, Username: e.Username, Action: e.Action, Detail: e.Detail, RemoteAddr: e.RemoteAddr})
	if _, err := tx.ExecContext(ctx, `INSERT INTO audit_log (at, username, action, detail, remote_addr, chain_seq, prev_hash, row_hash)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, dbTime(e.At), e.Username, e.Action, e.Detail, e.RemoteAddr, seq, head.Hash, hash); err != nil {
		return classify(err, "add audit entry")
	}
	return setHead(ctx, tx, ledger.ChainAudit, seq, hash)
}

// resultRow is a stored host result with its run's chained fields.
type resultRow struct {
	ID              int64          `db:"id"`
	RunID           string         `db:"run_id"`
	HostIP          string         `db:"host_ip"`
	HostName        string         `db:"host_name"`
	Status          string         `db:"status"`
	ExitCode        int            `db:"exit_code"`
	Stdout          string         `db:"stdout"`
	Stderr          string         `db:"stderr"`
	StdoutTruncated bool           `db:"stdout_truncated"`
	StderrTruncated bool           `db:"stderr_truncated"`
	Error           string         `db:"error"`
	StartedAt       sql.NullTime   `db:"started_at"`
	DurationMS      int64          `db:"duration_ms"`
	Signature       sql.NullString `db:"signature"`
	ChainSeq        sql.NullInt64  `db:"chain_seq"`
	PrevHash        sql.NullString `db:"prev_hash"`
	RowHash         sql.NullString `db:"row_hash"`
	// The run's fields (NULL when the run's record is gone).
	ModuleID     sql.NullInt64  `db:"module_id"`
	RunUser      sql.NullString `db:"username"`
	Params       sql.NullString `db:"params"`
	RunCreatedAt sql.NullTime   `db:"created_at"`
}

const resultRowCols = `h.id, h.run_id, h.host_ip, h.host_name, h.status, h.exit_code, h.stdout, h.stderr, h.stdout_truncated,
	h.stderr_truncated, h.error, h.started_at, h.duration_ms, h.signature, h.chain_seq, h.prev_hash, h.row_hash,
	r.module_id, r.username, r.params, r.created_at`

func (h resultRow) ledger() (ledger.RunRow, ledger.ResultRow) {
	run := ledger.RunRow{RunID: h.RunID, ModuleID: h.ModuleID.Int64, Username: h.RunUser.String, Params: h.Params.String}
	if h.RunCreatedAt.Valid {
		run.CreatedAt = h.RunCreatedAt.Time
	}
	r := ledger.ResultRow{HostIP: h.HostIP, HostName: h.HostName, Status: h.Status, ExitCode: h.ExitCode, Stdout: h.Stdout,
		Stderr: h.Stderr, StdoutTruncated: h.StdoutTruncated, StderrTruncated: h.StderrTruncated, Error: h.Error,
		DurationMS: h.DurationMS, Signature: h.Signature.String}
	if h.StartedAt.Valid {
		r.Started = h.StartedAt.Time
	}
	return run, r
}

// hostResult rebuilds the result as the master sent it, for its signature.
func (h resultRow) hostResult() task.HostResult {
	r := task.HostResult{RunID: h.RunID, Host: task.Host{IP: h.HostIP, Name: h.HostName}, Status: task.Status(h.Status),
		ExitCode: h.ExitCode, Stdout: h.Stdout, Stderr: h.Stderr, StdoutTruncated: h.StdoutTruncated,
		StderrTruncated: h.StderrTruncated, Error: h.Error, Duration: time.Duration(h.DurationMS) * time.Millisecond,
		Signature: h.Signature.String}
	if h.StartedAt.Valid {
		r.Started = h.StartedAt.Time.UTC()
	}
	return r
}

// SealRunResults appends the results of a finished run that are not yet
// chained to the results chain, in the order they were stored, and returns
// how many it sealed. Sealing a run twice seals nothing the second time; a
// run still running is ErrConflict.
func (s *Store) SealRunResults(ctx context.Context, runID string) (int, error) {
	sealed := 0
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		head, err := s.lockHead(ctx, tx, ledger.ChainResults)
		if err != nil {
			return err
		}
		var status task.RunStatus
		if err := tx.GetContext(ctx, &status, `SELECT status FROM runs WHERE id = ?`, runID); err != nil {
			return classify(err, "run "+runID)
		}
		if !status.Finished() {
			return fmt.Errorf("run %s is %s: only a finished run's results are sealed: %w", runID, status, ErrConflict)
		}
		var rows []resultRow
		if err := tx.SelectContext(ctx, &rows, `SELECT `+resultRowCols+` FROM run_hosts h JOIN runs r ON r.id = h.run_id
			WHERE h.run_id = ? AND h.chain_seq IS NULL AND h.id > ? ORDER BY h.id`, runID, head.StartID); err != nil {
			return fmt.Errorf("store: run %s: results to seal: %w", runID, err)
		}
		seq, prev := head.Seq, head.Hash
		for _, row := range rows {
			seq++
			run, res := row.ledger()
			hash := ledger.ResultHash(prev, seq, run, res)
			if _, err := tx.ExecContext(ctx, `UPDATE run_hosts SET chain_seq = ?, prev_hash = ?, row_hash = ? WHERE id = ?`,
				seq, prev, hash, row.ID); err != nil {
				return fmt.Errorf("store: run %s: seal result %d: %w", runID, row.ID, err)
			}
			prev = hash
		}
		sealed = len(rows)
		if sealed == 0 {
			return nil
		}
		return setHead(ctx, tx, ledger.ChainResults, seq, prev)
	})
	return sealed, err
}

// UnsealedRuns returns up to limit finished runs with results not yet in
// the chain (a tier stopped between recording a run's end and sealing it).
func (s *Store) UnsealedRuns(ctx context.Context, limit int) ([]string, error) {
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	var start int64
	if err := s.db.GetContext(ctx, &start, `SELECT start_id FROM chain_heads WHERE name = ?`, ledger.ChainResults); err != nil {
		return nil, fmt.Errorf("store: results chain: %w", err)
	}
	var ids []string
	err := s.db.SelectContext(ctx, &ids, `SELECT DISTINCT h.run_id FROM run_hosts h JOIN runs r ON r.id = h.run_id
		WHERE h.chain_seq IS NULL AND h.id > ? AND r.status <> ? LIMIT ?`, start, task.RunRunning, limit)
	if err != nil {
		return nil, fmt.Errorf("store: unsealed runs: %w", err)
	}
	return ids, nil
}

// ChainBreak is the first row where a chain does not verify.
type ChainBreak struct {
	Table  string `json:"table"`
	RowID  int64  `json:"row_id"`
	Seq    int64  `json:"seq,omitempty"`
	Reason string `json:"reason"`
}

func (b ChainBreak) String() string {
	if b.Seq > 0 {
		return fmt.Sprintf("%s row id %d (chain seq %d): %s", b.Table, b.RowID, b.Seq, b.Reason)
	}
	return fmt.Sprintf("%s row id %d: %s", b.Table, b.RowID, b.Reason)
}

// ChainReport is the outcome of verifying one chain.
type ChainReport struct {
	Chain    string      `json:"chain"`
	Rows     int64       `json:"rows"`               // chained rows checked
	Legacy   int64       `json:"legacy"`             // rows from before the chain began
	Unsealed int64       `json:"unsealed,omitempty"` // results of finished runs not sealed yet (a warning)
	Signed   int64       `json:"signed,omitempty"`   // results whose master signature verified
	Unsigned int64       `json:"unsigned,omitempty"` // results without a signature
	HeadSeq  int64       `json:"head_seq"`
	HeadHash string      `json:"head_hash"`
	Break    *ChainBreak `json:"break,omitempty"`
}

// OK reports whether the chain verified.
func (r ChainReport) OK() bool { return r.Break == nil }

// VerifyOptions tune VerifyChain.
type VerifyOptions struct {
	// PublicKey checks each result's master signature when set.
	PublicKey ed25519.PublicKey
	// RequireSigned makes an unsigned result a break (with PublicKey).
	RequireSigned bool
}

const verifyPage = 500

// VerifyChain walks a chain (ledger.ChainAudit or ledger.ChainResults)
// from its first row, checking every row's link, hash and sequence number
// and the head, and reports the first row that does not verify. Rows are
// read a page at a time, so memory stays bounded on any table size.
func (s *Store) VerifyChain(ctx context.Context, name string, opt VerifyOptions) (ChainReport, error) {
	table := map[string]string{ledger.ChainAudit: "audit_log", ledger.ChainResults: "run_hosts"}[name]
	if table == "" {
		return ChainReport{}, invalid("chain %q unknown (audit or results)", name)
	}
	rep := ChainReport{Chain: name}
	var head chainHead
	if err := s.db.GetContext(ctx, &head, `SELECT seq, hash, start_id FROM chain_heads WHERE name = ?`, name); err != nil {
		return rep, fmt.Errorf("store: chain %s: head: %w", name, err)
	}
	rep.HeadSeq, rep.HeadHash = head.Seq, head.Hash
	if err := s.db.GetContext(ctx, &rep.Legacy, `SELECT COUNT(*) FROM `+table+` WHERE id <= ?`, head.StartID); err != nil {
		return rep, fmt.Errorf("store: chain %s: count legacy rows: %w", name, err)
	}
	brk := func(id, seq int64, format string, args ...any) (ChainReport, error) {
		rep.Break = &ChainBreak{Table: table, RowID: id, Seq: seq, Reason: fmt.Sprintf(format, args...)}
		return rep, nil
	}
	expect, prev := int64(1), ledger.GenesisHash
	var lastID int64
	for {
		var page []chainedRow
		var err error
		if name == ledger.ChainAudit {
			page, err = s.auditPage(ctx, expect)
		} else {
			page, err = s.resultPage(ctx, expect)
		}
		if err != nil {
			return rep, err
		}
		for _, row := range page {
			switch {
			case row.seq != expect:
				return brk(row.id, row.seq, "chain seq %d where %d was expected: the row(s) before it were deleted", row.seq, expect)
			case row.prev != prev:
				return brk(row.id, row.seq, "its previous hash does not match the row before it: a row before it was changed, removed or put in")
			case row.missing != "":
				return brk(row.id, row.seq, "%s", row.missing)
			case row.hash != row.stored:
				return brk(row.id, row.seq, "its content does not match its hash: the row was changed")
			}
			if row.result != nil && opt.PublicKey != nil {
				switch err := ledger.VerifyResult(opt.PublicKey, *row.result); err {
				case nil:
					rep.Signed++
				case ledger.ErrUnsigned:
					rep.Unsigned++
					if opt.RequireSigned {
						return brk(row.id, row.seq, "the result is not signed by the master")
					}
				default:
					return brk(row.id, row.seq, "the master's signature does not verify: the result is not what the master sent")
				}
			} else if row.result != nil && row.result.Signature == "" {
				rep.Unsigned++
			}
			prev, lastID = row.stored, row.id
			rep.Rows++
			expect++
		}
		if len(page) < verifyPage {
			break
		}
	}
	if rep.Rows != head.Seq || prev != head.Hash {
		return brk(lastID, rep.Rows, "the chain ends at seq %d but its head says %d (%s…): the last row(s) were deleted or the head was changed", rep.Rows, head.Seq, head.Hash[:min(12, len(head.Hash))])
	}
	// A row inserted around the chain (not through it) is a break too;
	// results of finished runs not sealed yet are only counted.
	if name == ledger.ChainAudit {
		var id sql.NullInt64
		if err := s.db.GetContext(ctx, &id, `SELECT MIN(id) FROM audit_log WHERE chain_seq IS NULL AND id > ?`, head.StartID); err != nil {
			return rep, fmt.Errorf("store: chain audit: unchained rows: %w", err)
		}
		if id.Valid {
			return brk(id.Int64, 0, "the row is not in the chain: it was put in around it")
		}
	} else {
		if err := s.db.GetContext(ctx, &rep.Unsealed, `SELECT COUNT(*) FROM run_hosts h JOIN runs r ON r.id = h.run_id
			WHERE h.chain_seq IS NULL AND h.id > ? AND r.status <> ?`, head.StartID, task.RunRunning); err != nil {
			return rep, fmt.Errorf("store: chain results: unsealed rows: %w", err)
		}
	}
	return rep, nil
}

// chainedRow is one row of a chain, its hash recomputed.
type chainedRow struct {
	id, seq      int64
	prev, stored string
	hash         string           // recomputed
	missing      string           // why the row cannot be checked, if it cannot
	result       *task.HostResult // results only
}

func (s *Store) auditPage(ctx context.Context, from int64) ([]chainedRow, error) {
	var rows []struct {
		AuditEntry
		ChainSeq int64  `db:"chain_seq"`
		PrevHash string `db:"prev_hash"`
		RowHash  string `db:"row_hash"`
	}
	if err := s.db.SelectContext(ctx, &rows, `SELECT id, at, username, action, detail, remote_addr, chain_seq, prev_hash, row_hash
		FROM audit_log WHERE chain_seq >= ? ORDER BY chain_seq LIMIT ?`, from, verifyPage); err != nil {
		return nil, fmt.Errorf("store: chain audit: read: %w", err)
	}
	out := make([]chainedRow, len(rows))
	for i, r := range rows {
		out[i] = chainedRow{id: r.ID, seq: r.ChainSeq, prev: r.PrevHash, stored: r.RowHash,
			hash: ledger.AuditHash(r.PrevHash, r.ChainSeq, ledger.AuditRow{At: r.At, Username: r.Username, Action: r.Action, Detail: r.Detail, RemoteAddr: r.RemoteAddr})}
	}
	return out, nil
}

func (s *Store) resultPage(ctx context.Context, from int64) ([]chainedRow, error) {
	var rows []resultRow
	if err := s.db.SelectContext(ctx, &rows, `SELECT `+resultRowCols+` FROM run_hosts h LEFT JOIN runs r ON r.id = h.run_id
		WHERE h.chain_seq >= ? ORDER BY h.chain_seq LIMIT ?`, from, verifyPage); err != nil {
		return nil, fmt.Errorf("store: chain results: read: %w", err)
	}
	out := make([]chainedRow, len(rows))
	for i, r := range rows {
		run, res := r.ledger()
		hr := r.hostResult()
		out[i] = chainedRow{id: r.ID, seq: r.ChainSeq.Int64, prev: r.PrevHash.String, stored: r.RowHash.String,
			hash: ledger.ResultHash(r.PrevHash.String, r.ChainSeq.Int64, run, res), result: &hr}
		if !r.ModuleID.Valid {
			out[i].missing = "the record of its run " + r.RunID + " is gone"
		}
	}
	return out, nil
}

// nullString stores "" as NULL.
func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}
