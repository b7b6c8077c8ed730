package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jmoiron/sqlx"
)

// Notification channels and their outbox. The store keeps a channel's
// settings as opaque JSON (internal/notify validates and interprets them);
// the outbox holds each notification until it is sent, with a lease so
// that of several web tiers over one database exactly one sends it.

// NotifyChannel is one configured destination of notifications.
type NotifyChannel struct {
	ID        int64     `db:"id"`
	Name      string    `db:"name"`
	Kind      string    `db:"kind"`
	Enabled   bool      `db:"enabled"`
	Events    string    `db:"events"` // comma-separated event names
	Config    string    `db:"config"` // JSON, secrets included
	CreatedAt time.Time `db:"created_at"`
	UpdatedAt time.Time `db:"updated_at"`
}

// Outbox row states.
const (
	OutboxPending = "pending"
	OutboxSent    = "sent"
	OutboxDead    = "dead" // gave up after the last attempt
)

// OutboxItem is one notification for one channel.
type OutboxItem struct {
	ID           int64        `db:"id"`
	ChannelID    int64        `db:"channel_id"`
	Event        string       `db:"event"`
	RunID        string       `db:"run_id"`
	Payload      string       `db:"payload"`
	Status       string       `db:"status"`
	Attempts     int          `db:"attempts"`
	NextAt       time.Time    `db:"next_at"`
	ClaimedBy    string       `db:"claimed_by"`
	ClaimedUntil sql.NullTime `db:"claimed_until"`
	LastError    string       `db:"last_error"`
	CreatedAt    time.Time    `db:"created_at"`
	SentAt       sql.NullTime `db:"sent_at"`
}

// Limits of the notification tables.
const (
	MaxNotifyChannels     = 100
	MaxNotifyNameLen      = 64
	MaxNotifyConfigLen    = 16 << 10
	MaxNotifyPayloadLen   = 1 << 20
	MaxNotifyErrorLen     = 1024
	maxNotifyEventsLen    = 255
	maxNotifyClaimBatch   = 100
	maxNotifyOutboxPage   = 200
	notifyOwnerMaxLen     = 64
	notifyChannelColumns  = `id, name, kind, enabled, events, config, created_at, updated_at`
	notifyOutboxColumns   = `id, channel_id, event, run_id, payload, status, attempts, next_at, claimed_by, claimed_until, last_error, created_at, sent_at`
	notifyChannelNameWhat = "notification channel"
)

func checkNotifyChannel(c NotifyChannel) error {
	if strings.TrimSpace(c.Name) == "" || utf8.RuneCountInString(c.Name) > MaxNotifyNameLen || !utf8.ValidString(c.Name) {
		return invalid("%s: name must be 1..%d characters", notifyChannelNameWhat, MaxNotifyNameLen)
	}
	if c.Kind == "" || len(c.Kind) > 16 {
		return invalid("%s %q: kind missing", notifyChannelNameWhat, c.Name)
	}
	if len(c.Events) > maxNotifyEventsLen {
		return invalid("%s %q: too many events", notifyChannelNameWhat, c.Name)
	}
	if len(c.Config) == 0 || len(c.Config) > MaxNotifyConfigLen {
		return invalid("%s %q: settings must be 1..%d bytes", notifyChannelNameWhat, c.Name, MaxNotifyConfigLen)
	}
	return nil
}

func fixChannel(c NotifyChannel) NotifyChannel {
	c.CreatedAt, c.UpdatedAt = c.CreatedAt.UTC(), c.UpdatedAt.UTC()
	return c
}

// CreateNotifyChannel adds a channel and returns its id (ErrConflict if the
// name is taken, ErrInvalid beyond MaxNotifyChannels).
func (s *Store) CreateNotifyChannel(ctx context.Context, c NotifyChannel) (int64, error) {
	if err := checkNotifyChannel(c); err != nil {
		return 0, err
	}
	var id int64
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		var n int
		if err := tx.GetContext(ctx, &n, `SELECT COUNT(*) FROM notify_channels`); err != nil {
			return fmt.Errorf("store: count notification channels: %w", err)
		}
		if n >= MaxNotifyChannels {
			return invalid("there are already %d notification channels, the most allowed", n)
		}
		now := dbTime(s.now())
		res, err := tx.ExecContext(ctx, `INSERT INTO notify_channels (name, kind, enabled, events, config, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			c.Name, c.Kind, c.Enabled, c.Events, c.Config, now, now)
		if err != nil {
			return classify(err, fmt.Sprintf("create %s %q", notifyChannelNameWhat, c.Name))
		}
		id, err = res.LastInsertId()
		return err
	})
	return id, err
}

// UpdateNotifyChannel replaces a channel's name, kind, state, events and
// settings.
func (s *Store) UpdateNotifyChannel(ctx context.Context, c NotifyChannel) error {
	if err := checkNotifyChannel(c); err != nil {
		return err
	}
	res, err := s.db.ExecContext(ctx, `UPDATE notify_channels SET name = ?, kind = ?, enabled = ?, events = ?, config = ?, updated_at = ? WHERE id = ?`,
		c.Name, c.Kind, c.Enabled, c.Events, c.Config, dbTime(s.now()), c.ID)
	if err != nil {
		return classify(err, fmt.Sprintf("update %s %q", notifyChannelNameWhat, c.Name))
	}
	return mustAffect(res, fmt.Sprintf("%s %d", notifyChannelNameWhat, c.ID))
}

// DeleteNotifyChannel removes a channel and its outbox rows.
func (s *Store) DeleteNotifyChannel(ctx context.Context, id int64) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM notify_channels WHERE id = ?`, id)
	if err != nil {
		return classify(err, fmt.Sprintf("delete %s %d", notifyChannelNameWhat, id))
	}
	return mustAffect(res, fmt.Sprintf("%s %d", notifyChannelNameWhat, id))
}

// GetNotifyChannel returns one channel.
func (s *Store) GetNotifyChannel(ctx context.Context, id int64) (NotifyChannel, error) {
	var c NotifyChannel
	err := s.db.GetContext(ctx, &c, `SELECT `+notifyChannelColumns+` FROM notify_channels WHERE id = ?`, id)
	if err != nil {
		return NotifyChannel{}, classify(err, fmt.Sprintf("%s %d", notifyChannelNameWhat, id))
	}
	return fixChannel(c), nil
}

// ListNotifyChannels returns every channel (at most MaxNotifyChannels), by name.
func (s *Store) ListNotifyChannels(ctx context.Context) ([]NotifyChannel, error) {
	out := []NotifyChannel{}
	if err := s.db.SelectContext(ctx, &out, `SELECT `+notifyChannelColumns+` FROM notify_channels ORDER BY name LIMIT ?`, MaxNotifyChannels); err != nil {
		return nil, fmt.Errorf("store: list notification channels: %w", err)
	}
	for i := range out {
		out[i] = fixChannel(out[i])
	}
	return out, nil
}

// EnqueueNotifications adds pending outbox rows, due now, in one transaction.
func (s *Store) EnqueueNotifications(ctx context.Context, items []OutboxItem) error {
	if len(items) == 0 {
		return nil
	}
	for _, it := range items {
		if it.ChannelID <= 0 || it.Event == "" || len(it.Event) > 32 || len(it.RunID) > 64 {
			return invalid("notification: channel, event or run id out of range")
		}
		if len(it.Payload) == 0 || len(it.Payload) > MaxNotifyPayloadLen {
			return invalid("notification: payload must be 1..%d bytes", MaxNotifyPayloadLen)
		}
	}
	now := dbTime(s.now())
	return s.inTx(ctx, func(tx *sqlx.Tx) error {
		for _, it := range items {
			if _, err := tx.ExecContext(ctx, `INSERT INTO notify_outbox (channel_id, event, run_id, payload, status, attempts, next_at, created_at)
				VALUES (?, ?, ?, ?, ?, 0, ?, ?)`, it.ChannelID, it.Event, it.RunID, it.Payload, OutboxPending, now, now); err != nil {
				return classify(err, "enqueue notification")
			}
		}
		return nil
	})
}

// ClaimNotifications leases up to limit due rows to owner until now+lease
// and returns them. A row is due when pending, its next attempt time has
// come and no other owner's lease on it is still running. Each row is taken
// by a conditional UPDATE, so of two tiers claiming at once exactly one gets
// it, on MySQL and SQLite alike.
func (s *Store) ClaimNotifications(ctx context.Context, owner string, lease time.Duration, limit int) ([]OutboxItem, error) {
	if owner == "" || len(owner) > notifyOwnerMaxLen || lease <= 0 {
		return nil, invalid("notification claim: owner must be 1..%d bytes and the lease positive", notifyOwnerMaxLen)
	}
	if limit <= 0 || limit > maxNotifyClaimBatch {
		limit = maxNotifyClaimBatch
	}
	now := dbTime(s.now())
	var ids []int64
	if err := s.db.SelectContext(ctx, &ids, `SELECT id FROM notify_outbox WHERE status = ? AND next_at <= ?
		AND (claimed_until IS NULL OR claimed_until < ?) ORDER BY next_at, id LIMIT ?`, OutboxPending, now, now, limit); err != nil {
		return nil, fmt.Errorf("store: due notifications: %w", err)
	}
	until := dbTime(now.Add(lease))
	var got []int64
	for _, id := range ids {
		res, err := s.db.ExecContext(ctx, `UPDATE notify_outbox SET claimed_by = ?, claimed_until = ?
			WHERE id = ? AND status = ? AND (claimed_until IS NULL OR claimed_until < ?)`, owner, until, id, OutboxPending, now)
		if err != nil {
			return nil, fmt.Errorf("store: claim notification %d: %w", id, err)
		}
		if n, err := res.RowsAffected(); err == nil && n == 1 {
			got = append(got, id)
		}
	}
	if len(got) == 0 {
		return nil, nil
	}
	q, args, err := sqlx.In(`SELECT `+notifyOutboxColumns+` FROM notify_outbox WHERE id IN (?) AND claimed_by = ? ORDER BY id`, got, owner)
	if err != nil {
		return nil, fmt.Errorf("store: claimed notifications: %w", err)
	}
	var out []OutboxItem
	if err := s.db.SelectContext(ctx, &out, s.db.Rebind(q), args...); err != nil {
		return nil, fmt.Errorf("store: claimed notifications: %w", err)
	}
	for i := range out {
		out[i] = fixOutbox(out[i])
	}
	return out, nil
}

func fixOutbox(it OutboxItem) OutboxItem {
	it.NextAt, it.CreatedAt = it.NextAt.UTC(), it.CreatedAt.UTC()
	if it.ClaimedUntil.Valid {
		it.ClaimedUntil.Time = it.ClaimedUntil.Time.UTC()
	}
	if it.SentAt.Valid {
		it.SentAt.Time = it.SentAt.Time.UTC()
	}
	return it
}

// NotificationSent records a successful send by the lease's owner. It is
// ErrConflict when owner no longer holds the row (its lease expired and
// another tier took it).
func (s *Store) NotificationSent(ctx context.Context, id int64, owner string) error {
	now := dbTime(s.now())
	res, err := s.db.ExecContext(ctx, `UPDATE notify_outbox SET status = ?, attempts = attempts + 1, sent_at = ?, last_error = '',
		claimed_until = NULL WHERE id = ? AND claimed_by = ? AND status = ?`, OutboxSent, now, id, owner, OutboxPending)
	if err != nil {
		return classify(err, fmt.Sprintf("notification %d sent", id))
	}
	return ownedRow(res, id)
}

// NotificationFailed records a failed attempt by the lease's owner: the row
// is due again at next, or dead when giveUp is set.
func (s *Store) NotificationFailed(ctx context.Context, id int64, owner, errText string, next time.Time, giveUp bool) error {
	status := OutboxPending
	if giveUp {
		status = OutboxDead
	}
	res, err := s.db.ExecContext(ctx, `UPDATE notify_outbox SET status = ?, attempts = attempts + 1, next_at = ?, last_error = ?,
		claimed_until = NULL WHERE id = ? AND claimed_by = ? AND status = ?`,
		status, dbTime(next), clipText(errText, MaxNotifyErrorLen), id, owner, OutboxPending)
	if err != nil {
		return classify(err, fmt.Sprintf("notification %d failed", id))
	}
	return ownedRow(res, id)
}

func ownedRow(res sql.Result, id int64) error {
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("store: notification %d: %w", id, err)
	}
	if n != 1 {
		return fmt.Errorf("notification %d is no longer held by this tier: %w", id, ErrConflict)
	}
	return nil
}

// ListNotifyOutbox returns a channel's notifications newest first, those
// with an id below before (0: from the newest), at most limit (default 50,
// at most 200): pages by key, never by offset.
func (s *Store) ListNotifyOutbox(ctx context.Context, channelID, before int64, limit int) ([]OutboxItem, error) {
	if limit <= 0 {
		limit = 50
	}
	if limit > maxNotifyOutboxPage || before < 0 {
		return nil, invalid("notifications: limit must be 1..%d and before not negative", maxNotifyOutboxPage)
	}
	q := `SELECT ` + notifyOutboxColumns + ` FROM notify_outbox WHERE channel_id = ?`
	args := []any{channelID}
	if before > 0 {
		q += ` AND id < ?`
		args = append(args, before)
	}
	q += ` ORDER BY id DESC LIMIT ?`
	out := []OutboxItem{}
	if err := s.db.SelectContext(ctx, &out, q, append(args, limit)...); err != nil {
		return nil, fmt.Errorf("store: list notifications: %w", err)
	}
	for i := range out {
		out[i] = fixOutbox(out[i])
	}
	return out, nil
}

// mustAffect turns an UPDATE or DELETE that touched no row into ErrNotFound.
func mustAffect(res sql.Result, what string) error {
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("store: %s: %w", what, err)
	}
	if n == 0 {
		return fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	return nil
}
