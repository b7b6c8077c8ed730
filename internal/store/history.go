package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/jmoiron/sqlx"
)

// 安全审计 (security audit): the original server_history table, one row per
// interactive shell command a target's collector reported, and the ingest
// tokens that authenticate collectors (table omaudit_tokens).

// Limits of a history row. The user and command columns were widened by
// migration 00040 (the original had char(15) and char(255)).
const (
	MaxHistoryUserLen    = 32   // bytes; Linux user names are at most 32
	MaxHistoryCommandLen = 4096 // bytes
	MaxHistoryID         = 1<<31 - 1
	// HistoryTimeLayout is how the original collector sent a command's
	// time (date "+%F %T" of the target, its local time, no zone).
	HistoryTimeLayout = "2006-01-02 15:04:05"
	// MaxHistoryHosts bounds the hosts one history query may name.
	MaxHistoryHosts = 1000
	// MaxHistoryPage is the most rows one history query returns.
	MaxHistoryPage = 500
)

// HistoryRow is one command of the 安全审计 stream. At is the time the
// target reported for the command, in its own local time without a zone
// (kept in a UTC time.Time, so its clock reading is exact); Stored is when
// the web tier stored it (UTC), the original's db_datetime.
type HistoryRow struct {
	ID        int64     `db:"ID"`
	HistoryID int64     `db:"history_id"`
	IP        string    `db:"history_ip"`
	User      string    `db:"history_user"`
	At        time.Time `db:"history_datetime"`
	Stored    time.Time `db:"db_datetime"`
	Command   string    `db:"history_command"`
}

const historyCols = `ID, history_id, history_ip, history_user, history_datetime, db_datetime, history_command`

// CheckHistoryRow validates a row for storage (ID and Stored are ignored):
// a canonical IP, a history id that fits the original int(11) column, a
// user and command of valid UTF-8 within the limits, no control characters
// but tab and newline in the command and none at all in the user, and a
// time of whole seconds.
func CheckHistoryRow(r HistoryRow) error {
	addr, err := netip.ParseAddr(r.IP)
	if err != nil || addr.Zone() != "" || addr.String() != r.IP {
		return invalid("history: host %q is not an IP address in canonical form", clipText(r.IP, 64))
	}
	if r.HistoryID < 0 || r.HistoryID > MaxHistoryID {
		return invalid("history: history id %d is out of range 0..%d", r.HistoryID, MaxHistoryID)
	}
	if r.User == "" || len(r.User) > MaxHistoryUserLen {
		return invalid("history: user must be 1..%d bytes", MaxHistoryUserLen)
	}
	if !utf8.ValidString(r.User) || strings.IndexFunc(r.User, func(c rune) bool { return unicode.IsControl(c) || unicode.IsSpace(c) }) >= 0 {
		return invalid("history: user %q is not valid UTF-8 without spaces or control characters", clipText(r.User, 40))
	}
	if strings.TrimSpace(r.Command) == "" || len(r.Command) > MaxHistoryCommandLen {
		return invalid("history: command must be 1..%d bytes and not blank", MaxHistoryCommandLen)
	}
	if !utf8.ValidString(r.Command) {
		return invalid("history: command is not valid UTF-8")
	}
	if i := strings.IndexFunc(r.Command, func(c rune) bool { return unicode.IsControl(c) && c != '\t' && c != '\n' }); i >= 0 {
		return invalid("history: command has a control character at byte %d", i)
	}
	if r.At.IsZero() || r.At.Nanosecond() != 0 || r.At.Year() < 1970 || r.At.Year() > 9999 {
		return invalid("history: time must be a date and time to the second (%s)", HistoryTimeLayout)
	}
	return nil
}

// historyDigest identifies a row's content, so a resend of the same row
// (a collector's spool after an outage) is stored once. The history id
// alone is not unique: bash numbers each session's history separately and
// reuses numbers once its history file is trimmed.
func historyDigest(r HistoryRow) string {
	h := sha256.New()
	for _, f := range []string{r.IP, strconv.FormatInt(r.HistoryID, 10), r.User, r.At.Format(HistoryTimeLayout), r.Command} {
		h.Write([]byte(f))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// AddHistory stores a row and returns its id. A row equal to one already
// stored (same host, history id, user, time and command) is not stored
// again: its existing id is returned with dup set. The host must be a
// server of the inventory (ErrNotFound otherwise).
func (s *Store) AddHistory(ctx context.Context, r HistoryRow) (id int64, dup bool, err error) {
	if err := CheckHistoryRow(r); err != nil {
		return 0, false, err
	}
	digest := historyDigest(r)
	if err := exists(ctx, s.db, `SELECT 1 FROM server_list WHERE server_lip = ?`, r.IP); err != nil {
		if isNotFound(err) {
			return 0, false, fmt.Errorf("history: server %s is not in the inventory: %w", r.IP, ErrNotFound)
		}
		return 0, false, fmt.Errorf("store: look up server %s: %w", r.IP, err)
	}
	// The original's db_datetime is a TIMESTAMP: whole seconds.
	stored := s.now().UTC().Truncate(time.Second)
	res, err := s.db.ExecContext(ctx, `INSERT INTO server_history (history_id, history_ip, history_user, history_datetime, db_datetime, history_command, row_digest)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, r.HistoryID, r.IP, r.User, r.At.UTC(), stored, r.Command, digest)
	if err != nil {
		err = classify(err, "add history")
		if !errors.Is(err, ErrConflict) {
			return 0, false, err
		}
		if err := s.db.GetContext(ctx, &id, `SELECT ID FROM server_history WHERE row_digest = ?`, digest); err != nil {
			return 0, false, classify(err, "find the stored copy of a resent history row")
		}
		return id, true, nil
	}
	id, err = res.LastInsertId()
	if err != nil {
		return 0, false, fmt.Errorf("store: add history: %w", err)
	}
	return id, false, nil
}

// HistoryQuery selects rows of server_history. Filters combine with AND;
// zero values do not filter.
type HistoryQuery struct {
	Hosts   []string  // any of these IPs (at most MaxHistoryHosts)
	User    string    // exactly this user
	Command string    // the command contains this text (case-insensitive for ASCII)
	From    time.Time // the reported time is at or after From
	To      time.Time // the reported time is at or before To
	// Key pagination, at most one of them: rows with an id below BeforeID
	// (older), or the oldest rows with an id above AfterID (newer). Newer
	// asks for the latter even with AfterID 0 (every row, oldest first: a
	// live stream that started on an empty table).
	BeforeID int64
	AfterID  int64
	Newer    bool
	Limit    int // 1..MaxHistoryPage; default 50
}

// HistoryPage is one page of rows, newest first. More says that further
// rows exist in the direction of travel: older ones (no key, or BeforeID)
// or newer ones (AfterID, Newer).
type HistoryPage struct {
	Rows []HistoryRow
	More bool
}

// ListHistory returns one page of rows, newest first, by key: no OFFSET and
// no COUNT over the table.
func (s *Store) ListHistory(ctx context.Context, q HistoryQuery) (HistoryPage, error) {
	if q.Limit == 0 {
		q.Limit = 50
	}
	if q.Limit < 1 || q.Limit > MaxHistoryPage {
		return HistoryPage{}, invalid("history: limit must be 1..%d", MaxHistoryPage)
	}
	forward := q.AfterID > 0 || q.Newer
	if q.BeforeID != 0 && forward {
		return HistoryPage{}, invalid("history: give either before or after, not both")
	}
	if q.BeforeID < 0 || q.AfterID < 0 {
		return HistoryPage{}, invalid("history: before and after must be positive ids")
	}
	if len(q.Hosts) > MaxHistoryHosts {
		return HistoryPage{}, invalid("history: %d hosts is more than the limit of %d", len(q.Hosts), MaxHistoryHosts)
	}
	var where []string
	var args []any
	if len(q.Hosts) > 0 {
		in, inArgs, err := sqlx.In(`history_ip IN (?)`, q.Hosts)
		if err != nil {
			return HistoryPage{}, fmt.Errorf("store: list history: %w", err)
		}
		where = append(where, in)
		args = append(args, inArgs...)
	}
	if q.User != "" {
		where = append(where, `history_user = ?`)
		args = append(args, q.User)
	}
	if q.Command != "" {
		if len(q.Command) > MaxHistoryCommandLen || !utf8.ValidString(q.Command) {
			return HistoryPage{}, invalid("history: the command searched for must be valid UTF-8 of at most %d bytes", MaxHistoryCommandLen)
		}
		where = append(where, `history_command LIKE ? ESCAPE '!'`)
		args = append(args, "%"+likeEscape(q.Command)+"%")
	}
	if !q.From.IsZero() {
		where = append(where, `history_datetime >= ?`)
		args = append(args, q.From.UTC())
	}
	if !q.To.IsZero() {
		where = append(where, `history_datetime <= ?`)
		args = append(args, q.To.UTC())
	}
	order := `ID DESC`
	switch {
	case q.BeforeID > 0:
		where = append(where, `ID < ?`)
		args = append(args, q.BeforeID)
	case forward:
		where = append(where, `ID > ?`)
		args = append(args, q.AfterID)
		order = `ID ASC`
	}
	query := `SELECT ` + historyCols + ` FROM server_history`
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, ` AND `)
	}
	query += ` ORDER BY ` + order + ` LIMIT ?`
	args = append(args, q.Limit+1)
	rows := []HistoryRow{}
	if err := s.db.SelectContext(ctx, &rows, s.db.Rebind(query), args...); err != nil {
		return HistoryPage{}, fmt.Errorf("store: list history: %w", err)
	}
	page := HistoryPage{Rows: rows}
	if len(rows) > q.Limit {
		page.Rows, page.More = rows[:q.Limit], true
	}
	if forward {
		for i, j := 0, len(page.Rows)-1; i < j; i, j = i+1, j-1 {
			page.Rows[i], page.Rows[j] = page.Rows[j], page.Rows[i]
		}
	}
	for i := range page.Rows {
		page.Rows[i].At = page.Rows[i].At.UTC()
		page.Rows[i].Stored = page.Rows[i].Stored.UTC()
	}
	return page, nil
}

// MaxPurgeBatch bounds the rows one PurgeHistory call deletes.
const MaxPurgeBatch = 10000

// PurgeHistory deletes at most batch rows stored before cutoff, oldest
// first, and returns how many it deleted: callers repeat it while it
// returns batch, so no statement holds locks on the whole table.
func (s *Store) PurgeHistory(ctx context.Context, cutoff time.Time, batch int) (int64, error) {
	if batch < 1 || batch > MaxPurgeBatch {
		return 0, invalid("history: purge batch must be 1..%d", MaxPurgeBatch)
	}
	var ids []int64
	if err := s.db.SelectContext(ctx, &ids, `SELECT ID FROM server_history WHERE db_datetime < ? ORDER BY db_datetime, ID LIMIT ?`,
		cutoff.UTC().Truncate(time.Second), batch); err != nil {
		return 0, fmt.Errorf("store: select history to purge: %w", err)
	}
	if len(ids) == 0 {
		return 0, nil
	}
	q, args, err := sqlx.In(`DELETE FROM server_history WHERE ID IN (?)`, ids)
	if err != nil {
		return 0, fmt.Errorf("store: purge history: %w", err)
	}
	res, err := s.db.ExecContext(ctx, s.db.Rebind(q), args...)
	if err != nil {
		return 0, classify(err, "purge history")
	}
	return res.RowsAffected()
}

// IngestToken authenticates a collector sending history rows. A token
// bound to a server (ServerIP) may send only that server's rows; one
// without (a fleet token) any inventory server's. Only the SHA-256 of the
// token is stored (HashToken).
type IngestToken struct {
	ID         int64
	Name       string
	ServerIP   string // "" for a fleet token
	CreatedBy  string
	CreatedAt  time.Time
	LastUsedAt *time.Time
}

type ingestTokenRow struct {
	ID        int64          `db:"id"`
	Name      string         `db:"name"`
	ServerIP  sql.NullString `db:"server_ip"`
	CreatedBy string         `db:"created_by"`
	CreatedAt time.Time      `db:"created_at"`
	LastUsed  sql.NullTime   `db:"last_used_at"`
}

func (r ingestTokenRow) token() IngestToken {
	return IngestToken{ID: r.ID, Name: r.Name, ServerIP: r.ServerIP.String, CreatedBy: r.CreatedBy,
		CreatedAt: r.CreatedAt.UTC(), LastUsedAt: nullTime(r.LastUsed)}
}

const ingestTokenCols = `id, name, server_ip, created_by, created_at, last_used_at`

// CreateIngestToken records a token; serverIP "" makes a fleet token, any
// other value must be a server of the inventory.
func (s *Store) CreateIngestToken(ctx context.Context, name, serverIP, tokenHash, createdBy string) (int64, error) {
	if err := checkName("ingest token", name, MaxTokenNameLen); err != nil {
		return 0, err
	}
	if err := checkTokenHash(tokenHash); err != nil {
		return 0, err
	}
	if createdBy == "" || len(createdBy) > MaxRunUserLen {
		return 0, invalid("ingest token: the creating user must be named")
	}
	var server any
	if serverIP != "" {
		server = serverIP
	}
	var id int64
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		if serverIP != "" {
			if err := exists(ctx, tx, `SELECT 1 FROM server_list WHERE server_lip = ?`, serverIP); err != nil {
				if isNotFound(err) {
					return invalid("ingest token: server %q is not in the inventory", clipText(serverIP, 64))
				}
				return fmt.Errorf("store: look up server: %w", err)
			}
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO omaudit_tokens (name, server_ip, token_hash, created_by, created_at) VALUES (?, ?, ?, ?, ?)`,
			name, server, tokenHash, createdBy, dbTime(s.now()))
		if err != nil {
			return classify(err, "create ingest token")
		}
		id, err = res.LastInsertId()
		return err
	})
	return id, err
}

// GetIngestToken returns the token with this hash (ErrNotFound if none).
func (s *Store) GetIngestToken(ctx context.Context, tokenHash string) (IngestToken, error) {
	if checkTokenHash(tokenHash) != nil {
		return IngestToken{}, fmt.Errorf("ingest token: %w", ErrNotFound)
	}
	var r ingestTokenRow
	err := s.db.GetContext(ctx, &r, `SELECT `+ingestTokenCols+` FROM omaudit_tokens WHERE token_hash = ?`, tokenHash)
	if err != nil {
		return IngestToken{}, classify(err, "ingest token")
	}
	return r.token(), nil
}

// ingestTouchEvery is how stale a token's last use may get before it is
// written again: one write per token per minute, not one per command.
const ingestTouchEvery = time.Minute

// TouchIngestToken records that token id was used now (at most once a
// minute per token).
func (s *Store) TouchIngestToken(ctx context.Context, id int64) error {
	now := dbTime(s.now())
	_, err := s.db.ExecContext(ctx, `UPDATE omaudit_tokens SET last_used_at = ? WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)`,
		now, id, now.Add(-ingestTouchEvery))
	return classify(err, "record ingest token use")
}

// MaxIngestTokenPage is the most tokens one ListIngestTokens call returns.
const MaxIngestTokenPage = 500

// ListIngestTokens returns up to limit tokens with ids above afterID, by
// id, and whether more follow.
func (s *Store) ListIngestTokens(ctx context.Context, afterID int64, limit int) ([]IngestToken, bool, error) {
	if limit < 1 || limit > MaxIngestTokenPage || afterID < 0 {
		return nil, false, invalid("ingest tokens: limit must be 1..%d and after not negative", MaxIngestTokenPage)
	}
	var rows []ingestTokenRow
	if err := s.db.SelectContext(ctx, &rows, `SELECT `+ingestTokenCols+` FROM omaudit_tokens WHERE id > ? ORDER BY id LIMIT ?`, afterID, limit+1); err != nil {
		return nil, false, fmt.Errorf("store: list ingest tokens: %w", err)
	}
	more := len(rows) > limit
	if more {
		rows = rows[:limit]
	}
	out := make([]IngestToken, len(rows))
	for i, r := range rows {
		out[i] = r.token()
	}
	return out, more, nil
}

// DeleteIngestToken revokes a token (ErrNotFound if there is none).
func (s *Store) DeleteIngestToken(ctx context.Context, id int64) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM omaudit_tokens WHERE id = ?`, id)
	if err != nil {
		return classify(err, "delete ingest token")
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("ingest token %d: %w", id, ErrNotFound)
	}
	return nil
}
