package store

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// HistoryEntry is one row of the original server_history table: a shell
// command a target server's collector reported (the original's omaudit).
type HistoryEntry struct {
	ID        int64     `db:"ID" json:"id"`
	HistoryID int64     `db:"history_id" json:"history_id"` // the collector's event number
	IP        string    `db:"history_ip" json:"ip"`
	User      string    `db:"history_user" json:"user"`
	At        time.Time `db:"history_datetime" json:"at"` // when the command ran, as the target reported it
	StoredAt  time.Time `db:"db_datetime" json:"stored_at"`
	Command   string    `db:"history_command" json:"command"`
}

// HistoryFilter selects server_history rows for ListServerHistory.
type HistoryFilter struct {
	PageRequest
	// IPs keeps the commands of these servers (at most MaxLimit); none
	// keeps every server's.
	IPs  []string
	User string
	// After, when positive, asks for the rows added after this ID, oldest
	// first (the live stream: the original polled with its LastID), and
	// ignores Cursor; otherwise the page is newest first from Cursor.
	After int64
}

// HistoryPage is one page of server_history. Next is the cursor of the
// following (older) page in the newest-first order; Last is the highest ID
// on the page, for the next After.
type HistoryPage struct {
	Entries []HistoryEntry
	Next    string
	Last    int64
}

const historyCursor = "server-history"

// ListServerHistory returns one page of server_history by ID (the table's
// key, in arrival order): newest first from a cursor, or oldest first after
// an ID. Either reads Limit+1 rows of an index range.
func (s *Store) ListServerHistory(ctx context.Context, f HistoryFilter) (HistoryPage, error) {
	limit, err := pageLimit("server history", f.Limit, DefaultLimit)
	if err != nil {
		return HistoryPage{}, err
	}
	if len(f.IPs) > MaxLimit {
		return HistoryPage{}, invalid("server history: %d servers, more than %d", len(f.IPs), MaxLimit)
	}
	for _, ip := range f.IPs {
		if ip == "" || len(ip) > MaxIPLen {
			return HistoryPage{}, invalid("server history: %q is not a server address", clipText(ip, 50))
		}
	}
	if len(f.User) > 64 || f.After < 0 {
		return HistoryPage{}, invalid("server history: user filter too long or negative After")
	}
	var before int64
	more := false
	if f.After == 0 {
		if more, err = decodeCursor(historyCursor, f.Cursor, &before); err != nil {
			return HistoryPage{}, err
		}
	}
	var where []string
	var args []any
	order := "ID DESC"
	switch {
	case f.After > 0:
		where, args, order = append(where, "ID > ?"), append(args, f.After), "ID"
	case more:
		where, args = append(where, "ID < ?"), append(args, before)
	}
	if len(f.IPs) > 0 {
		where = append(where, "history_ip IN ("+strings.TrimSuffix(strings.Repeat("?, ", len(f.IPs)), ", ")+")")
		for _, ip := range f.IPs {
			args = append(args, ip)
		}
	}
	if f.User != "" {
		where, args = append(where, "history_user = ?"), append(args, f.User)
	}
	q := `SELECT ID, history_id, history_ip, history_user, history_datetime, db_datetime, history_command FROM server_history`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	out := []HistoryEntry{}
	if err := s.db.SelectContext(ctx, &out, q+` ORDER BY `+order+` LIMIT ?`, append(args, limit+1)...); err != nil {
		return HistoryPage{}, fmt.Errorf("store: list server history: %w", err)
	}
	page := HistoryPage{Entries: out}
	if len(out) > limit {
		page.Entries = out[:limit]
		if f.After == 0 {
			page.Next = encodeCursor(historyCursor, out[limit-1].ID)
		}
	}
	for i := range page.Entries {
		e := &page.Entries[i]
		e.At, e.StoredAt = e.At.UTC(), e.StoredAt.UTC()
		page.Last = max(page.Last, e.ID)
	}
	return page, nil
}
