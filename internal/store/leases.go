package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"time"
	"unicode/utf8"

	"github.com/jmoiron/sqlx"

	"github.com/omserver/omserver-go/internal/task"
)

// Run leases: a run in progress belongs to one web tier (its owner), which
// follows it on the master and stores its results. The owner renews its
// leases with a heartbeat; when a lease expires (the tier died, or lost
// the database for longer than the lease), another tier claims the run and
// resumes it from the master's journal. The owner's id is the tier's
// configured id, stable across restarts, so a restarted tier takes its own
// runs back at once. Times are the tiers' clocks (they must agree within a
// fraction of the lease, as NTP gives).

// MaxOwnerLen bounds a web tier id.
const MaxOwnerLen = 128

func checkOwner(owner string) error {
	if owner == "" || len(owner) > MaxOwnerLen || !utf8.ValidString(owner) {
		return invalid("run lease: tier id must be 1..%d bytes of UTF-8", MaxOwnerLen)
	}
	return nil
}

// Lease is who owns a running run, until when.
type Lease struct {
	RunID     string    `db:"run_id" json:"run_id"`
	Owner     string    `db:"owner" json:"owner"`
	ExpiresAt time.Time `db:"expires_at" json:"expires_at"`
}

// GetLease returns a run's lease; ErrNotFound when it has none.
func (s *Store) GetLease(ctx context.Context, runID string) (Lease, error) {
	var l Lease
	err := s.db.GetContext(ctx, &l, `SELECT run_id, owner, expires_at FROM run_leases WHERE run_id = ?`, runID)
	if err != nil {
		return Lease{}, classify(err, "lease of run "+runID)
	}
	l.ExpiresAt = l.ExpiresAt.UTC()
	return l, nil
}

// ClaimRun gives owner the lease of a running run until the given time
// when the run has no lease, its lease expired before now, or owner holds
// it already. It reports whether owner holds the lease afterwards; a run
// that is not running (or does not exist) is never claimed.
func (s *Store) ClaimRun(ctx context.Context, runID, owner string, now, until time.Time) (bool, error) {
	if err := checkOwner(owner); err != nil {
		return false, err
	}
	// Single statements, no transaction around them: in InnoDB an UPDATE
	// that matches nothing and an INSERT of the same key in two
	// transactions deadlock. Each statement is atomic, which is all a
	// claim needs: the UPDATE takes an expired (or own) lease, the INSERT
	// an absent one, and the primary key lets one tier win.
	var cur task.RunStatus
	err := s.db.GetContext(ctx, &cur, `SELECT status FROM runs WHERE id = ?`, runID)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, classify(err, "run "+runID)
	}
	if cur != task.RunRunning {
		return false, nil
	}
	res, err := s.db.ExecContext(ctx, `UPDATE run_leases SET owner = ?, expires_at = ? WHERE run_id = ? AND (owner = ? OR expires_at < ?)`,
		owner, dbTime(until), runID, owner, dbTime(now))
	if err != nil {
		return false, classify(err, "claim run "+runID)
	}
	if n, _ := res.RowsAffected(); n > 0 {
		return true, nil
	}
	_, err = s.db.ExecContext(ctx, `INSERT INTO run_leases (run_id, owner, expires_at) VALUES (?, ?, ?)`, runID, owner, dbTime(until))
	switch err = classify(err, "claim run "+runID); {
	case err == nil:
		return true, nil
	case errors.Is(err, ErrConflict):
		return false, nil // another tier holds a live lease
	}
	return false, err
}

// RenewLeases moves every lease owner holds to the given time (the
// owner's heartbeat) and returns the runs it still holds: a run missing
// from the list was taken over by another tier (or finished) and must no
// longer be driven by owner.
func (s *Store) RenewLeases(ctx context.Context, owner string, until time.Time) ([]string, error) {
	if err := checkOwner(owner); err != nil {
		return nil, err
	}
	var ids []string
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE run_leases SET expires_at = ? WHERE owner = ?`, dbTime(until), owner); err != nil {
			return classify(err, "renew run leases")
		}
		ids = ids[:0]
		return classify(tx.SelectContext(ctx, &ids, `SELECT run_id FROM run_leases WHERE owner = ? ORDER BY run_id`, owner), "run leases")
	})
	return ids, err
}

// ReleaseLeases lets another tier take owner's runs at once (a tier that
// stops cleanly): the leases expire now.
func (s *Store) ReleaseLeases(ctx context.Context, owner string) error {
	if err := checkOwner(owner); err != nil {
		return err
	}
	_, err := s.db.ExecContext(ctx, `UPDATE run_leases SET expires_at = ? WHERE owner = ?`, dbTime(s.now().Add(-time.Second)), owner)
	return classify(err, "release run leases")
}

// MaxClaimable bounds one ClaimableRuns answer.
const MaxClaimable = 500

// ClaimableRuns lists, oldest first, up to limit running runs that owner
// may claim: without a lease, with a lease that expired before now, or
// with a lease of owner's own (from before its restart).
func (s *Store) ClaimableRuns(ctx context.Context, owner string, now time.Time, limit int) ([]string, error) {
	if err := checkOwner(owner); err != nil {
		return nil, err
	}
	if limit <= 0 || limit > MaxClaimable {
		return nil, invalid("claimable runs: limit must be 1..%d", MaxClaimable)
	}
	var ids []string
	err := s.db.SelectContext(ctx, &ids, `SELECT r.id FROM runs r LEFT JOIN run_leases l ON l.run_id = r.id
		WHERE r.status = ? AND (l.run_id IS NULL OR l.expires_at < ? OR l.owner = ?)
		ORDER BY r.created_at, r.id LIMIT ?`, task.RunRunning, dbTime(now), owner, limit)
	if err != nil {
		return nil, classify(err, "claimable runs")
	}
	return ids, nil
}

// describeLease is how a lease reads in messages.
func describeLease(l Lease, now time.Time) string {
	if l.ExpiresAt.Before(now) {
		return fmt.Sprintf("tier %s (lease expired %s ago)", l.Owner, now.Sub(l.ExpiresAt).Round(time.Second))
	}
	return fmt.Sprintf("tier %s (lease for %s more)", l.Owner, l.ExpiresAt.Sub(now).Round(time.Second))
}

// DescribeLease says which tier owns a run, for logs and error messages.
func (s *Store) DescribeLease(ctx context.Context, runID string) string {
	l, err := s.GetLease(ctx, runID)
	if err != nil {
		return "no tier"
	}
	return describeLease(l, s.now())
}

// NewHolderID names one process as a lease holder (schedules, the
// notification outbox): host, process id and random bytes, so two
// processes on one host, or one restarted, never share a lease. It fits
// the 64-byte holder columns.
func NewHolderID() string {
	host, _ := os.Hostname()
	var b [4]byte
	_, _ = rand.Read(b[:])
	id := fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
	if len(id) > 64 {
		id = id[len(id)-64:]
	}
	return id
}
