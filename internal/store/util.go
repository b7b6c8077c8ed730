package store

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/jmoiron/sqlx"
)

// exists returns nil if q finds a row, sql.ErrNoRows if not.
func exists(ctx context.Context, q sqlx.QueryerContext, query string, args ...any) error {
	var one int
	return sqlx.GetContext(ctx, q, &one, query, args...)
}

func isNotFound(err error) bool {
	return errors.Is(err, sql.ErrNoRows) || errors.Is(err, ErrNotFound)
}

// dbTime normalises a time for storage: UTC, microseconds (DATETIME(6)).
func dbTime(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// nullTime converts a nullable column to *time.Time in UTC.
func nullTime(n sql.NullTime) *time.Time {
	if !n.Valid {
		return nil
	}
	t := n.Time.UTC()
	return &t
}
