package store

import (
	"context"
	"fmt"
	"time"
)

// AuditEntry is one line of the audit log: who did what, when, from where.
type AuditEntry struct {
	ID         int64     `db:"id" json:"id"`
	At         time.Time `db:"at" json:"at"`
	Username   string    `db:"username" json:"username"`
	Action     string    `db:"action" json:"action"` // e.g. "login", "run", "module.create"
	Detail     string    `db:"detail" json:"detail"`
	RemoteAddr string    `db:"remote_addr" json:"remote_addr"`
}

// MaxAuditDetailLen caps an entry's detail.
const MaxAuditDetailLen = 8192

// AddAudit appends an entry; At defaults to now.
func (s *Store) AddAudit(ctx context.Context, e AuditEntry) error {
	if e.Action == "" || len(e.Action) > 64 {
		return invalid("audit: action must be 1..64 bytes")
	}
	if e.At.IsZero() {
		e.At = s.now()
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO audit_log (at, username, action, detail, remote_addr) VALUES (?, ?, ?, ?, ?)`,
		dbTime(e.At), clipText(e.Username, MaxRunUserLen), clipText(e.Action, 64), clipText(e.Detail, MaxAuditDetailLen),
		clipText(e.RemoteAddr, MaxRemoteAddrLen))
	return classify(err, "add audit entry")
}

// ListAudit returns one page of the audit log, newest first, and the total
// number of entries. limit defaults to 100, at most 1000.
func (s *Store) ListAudit(ctx context.Context, limit, offset int) ([]AuditEntry, int, error) {
	if limit <= 0 {
		limit = 100
	}
	if limit > 1000 || offset < 0 {
		return nil, 0, invalid("audit: limit must be 1..1000 and offset not negative")
	}
	var total int
	if err := s.db.GetContext(ctx, &total, `SELECT COUNT(*) FROM audit_log`); err != nil {
		return nil, 0, fmt.Errorf("store: count audit log: %w", err)
	}
	out := []AuditEntry{}
	if err := s.db.SelectContext(ctx, &out, `SELECT id, at, username, action, detail, remote_addr FROM audit_log ORDER BY id DESC LIMIT ? OFFSET ?`, limit, offset); err != nil {
		return nil, 0, fmt.Errorf("store: list audit log: %w", err)
	}
	for i := range out {
		out[i].At = out[i].At.UTC()
	}
	return out, total, nil
}
