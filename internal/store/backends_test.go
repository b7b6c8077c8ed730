package store

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/omserver/omserver-go/internal/testutil/mysqltest"
)

// backend opens a fresh, migrated store of one dialect.
type backend struct {
	name string
	open func(t testing.TB) *Store
}

func openSQLite(t testing.TB) *Store {
	t.Helper()
	s, err := Open(context.Background(), DialectSQLite, filepath.Join(t.TempDir(), "omserver.db"))
	if err != nil {
		t.Fatalf("open sqlite: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func openMySQL(t testing.TB) *Store {
	t.Helper()
	dsn := mysqltest.New(t)
	s, err := Open(context.Background(), DialectMySQL, dsn)
	if err != nil {
		t.Fatalf("open mysql: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func migrated(open func(testing.TB) *Store) func(testing.TB) *Store {
	return func(t testing.TB) *Store {
		t.Helper()
		s := open(t)
		if err := s.Migrate(context.Background()); err != nil {
			t.Fatalf("migrate: %v", err)
		}
		return s
	}
}

func backends() []backend {
	return []backend{
		{"sqlite", migrated(openSQLite)},
		{"mariadb", migrated(openMySQL)},
	}
}

// forEachBackend runs fn against a fresh migrated store of each dialect.
func forEachBackend(t *testing.T, fn func(t *testing.T, s *Store)) {
	t.Helper()
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			fn(t, b.open(t))
		})
	}
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}
