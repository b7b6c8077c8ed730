package store

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
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

// AuditFilter selects audit log entries for ListAudit; zero fields do not
// filter.
type AuditFilter struct {
	PageRequest
	Username string
	Action   string
}

// AuditPage is one page of the audit log, newest first; Next is the
// cursor of the following (older) page, "" on the last.
type AuditPage struct {
	Entries []AuditEntry
	Next    string
}

const auditCursor = "audit"

// ListAudit returns one page of the audit log, newest first (by id).
func (s *Store) ListAudit(ctx context.Context, f AuditFilter) (AuditPage, error) {
	limit, err := pageLimit("audit log", f.Limit, DefaultLimit)
	if err != nil {
		return AuditPage{}, err
	}
	if len(f.Action) > 64 || utf8.RuneCountInString(f.Username) > MaxRunUserLen {
		return AuditPage{}, invalid("audit log: user or action filter too long")
	}
	var before int64
	more, err := decodeCursor(auditCursor, f.Cursor, &before)
	if err != nil {
		return AuditPage{}, err
	}
	q := `SELECT id, at, username, action, detail, remote_addr FROM audit_log`
	var where []string
	var args []any
	if more {
		where, args = append(where, "id < ?"), append(args, before)
	}
	if f.Username != "" {
		where, args = append(where, "username = ?"), append(args, f.Username)
	}
	if f.Action != "" {
		where, args = append(where, "action = ?"), append(args, f.Action)
	}
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	out := []AuditEntry{}
	if err := s.db.SelectContext(ctx, &out, q+` ORDER BY id DESC LIMIT ?`, append(args, limit+1)...); err != nil {
		return AuditPage{}, fmt.Errorf("store: list audit log: %w", err)
	}
	for i := range out {
		out[i].At = out[i].At.UTC()
	}
	page := AuditPage{Entries: out}
	if len(out) > limit {
		page.Entries = out[:limit]
		page.Next = encodeCursor(auditCursor, out[limit-1].ID)
	}
	return page, nil
}
