// Package store is the web tier's database: the original OMServer tables
// (inventory and modules) plus users, sessions, API tokens, runs and the
// audit log. One code path serves MySQL/MariaDB (production) and embedded
// SQLite (zero-setup default); the SQL is portable except where noted, and
// branches on Dialect() there.
//
// Every method validates its input first and returns an error wrapping
// ErrInvalid, ErrNotFound, ErrInUse or ErrConflict (test with errors.Is), so
// that a caller can map them to HTTP statuses; a refused call changes nothing.
// All times are stored and returned in UTC.
package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jmoiron/sqlx"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
	_ "modernc.org/sqlite" // registers the "sqlite" driver (pure Go)

	"github.com/omserver/omserver-go/internal/apperr"
	"github.com/omserver/omserver-go/migrations"
)

// Dialects (driver names accepted by Open).
const (
	DialectSQLite = "sqlite"
	DialectMySQL  = "mysql"
)

// Sentinel errors; every error the store returns for bad input or missing
// rows wraps one of them with a message saying what was wrong. Each carries
// its apperr category, so callers map it without reading the text; any
// other error (the database is down, a query failed) is uncategorised, and
// its text is for the log only.
var (
	ErrNotFound = apperr.New(apperr.NotFound, "not found")
	ErrInUse    = apperr.New(apperr.Conflict, "in use")
	ErrConflict = apperr.New(apperr.Conflict, "conflict")
	ErrInvalid  = apperr.New(apperr.Invalid, "invalid input")
)

// Store is a handle on the database. It is safe for concurrent use.
type Store struct {
	db      *sqlx.DB
	dialect string
	now     func() time.Time
}

// Open connects to the database and checks it answers.
//
// driver is "sqlite" or "mysql". For sqlite, dsn is a file path (or a
// "file:" URI); foreign keys, WAL journaling and a busy timeout are switched
// on through _pragma parameters. For mysql, dsn is a go-sql-driver DSN
// (user:pass@tcp(host:3306)/db); parseTime=true, loc=UTC and charset utf8mb4
// are forced.
func Open(ctx context.Context, driver, dsn string) (*Store, error) {
	var (
		db  *sqlx.DB
		err error
	)
	switch driver {
	case DialectSQLite:
		if err := checkSQLitePath(dsn); err != nil {
			return nil, err
		}
		db, err = openMarked("sqlite", sqliteDSN(dsn))
		if err == nil {
			// One writer at a time is all SQLite can do; a small pool avoids
			// "database is locked" storms while WAL still lets readers in.
			db.SetMaxOpenConns(4)
			if strings.Contains(dsn, ":memory:") || strings.Contains(dsn, "mode=memory") {
				// Every connection to :memory: is a different, empty database.
				db.SetMaxOpenConns(1)
			}
		}
	case DialectMySQL:
		var cfg *mysql.Config
		cfg, err = mysql.ParseDSN(dsn)
		if err != nil {
			return nil, fmt.Errorf("store: mysql dsn: %w", err)
		}
		if cfg.DBName == "" {
			return nil, fmt.Errorf("store: mysql dsn names no database (user:pass@tcp(host:3306)/omserver)")
		}
		cfg.ParseTime = true
		cfg.Loc = time.UTC
		cfg.Collation = "utf8mb4_general_ci"
		if cfg.Params == nil {
			cfg.Params = map[string]string{}
		}
		delete(cfg.Params, "charset")
		// The session time zone must be UTC so TIMESTAMP columns of the
		// original tables read back unchanged.
		cfg.Params["time_zone"] = "'+00:00'"
		db, err = openMarked("mysql", cfg.FormatDSN())
		if err == nil {
			db.SetConnMaxLifetime(5 * time.Minute)
			db.SetMaxOpenConns(20)
		}
	default:
		return nil, fmt.Errorf("store: unknown driver %q (sqlite or mysql)", driver)
	}
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", driver, err)
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: connect to %s: %w", driver, unavailable(err))
	}
	return &Store{db: db, dialect: driver, now: func() time.Time { return time.Now().UTC() }}, nil
}

// checkSQLitePath gives a clear error when a plain file path cannot be
// created, instead of the driver's "unable to open database file".
func checkSQLitePath(dsn string) error {
	if dsn == "" {
		return fmt.Errorf("store: sqlite: empty database path")
	}
	if strings.HasPrefix(dsn, "file:") || strings.Contains(dsn, ":memory:") {
		return nil
	}
	path, _, _ := strings.Cut(dsn, "?")
	dir := filepath.Dir(path)
	st, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("store: sqlite: directory of %s: %w", path, err)
	}
	if !st.IsDir() {
		return fmt.Errorf("store: sqlite: %s is not a directory", dir)
	}
	return nil
}

// sqliteDSN adds the pragmas every connection needs, keeping any the caller set.
func sqliteDSN(dsn string) string {
	pragmas := []string{"foreign_keys(1)", "journal_mode(WAL)", "busy_timeout(10000)", "synchronous(NORMAL)"}
	var b strings.Builder
	b.WriteString(dsn)
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	for _, p := range pragmas {
		name := p[:strings.IndexByte(p, '(')]
		if strings.Contains(dsn, "_pragma="+name) {
			continue
		}
		b.WriteString(sep + "_pragma=" + p)
		sep = "&"
	}
	if !strings.Contains(dsn, "_time_format=") {
		b.WriteString(sep + "_time_format=sqlite")
		sep = "&"
	}
	// Transactions here read, then write. A deferred transaction that tries
	// to upgrade to a writer while another one writes fails at once with
	// SQLITE_BUSY (busy_timeout does not apply); BEGIN IMMEDIATE takes the
	// write lock first and so waits its turn.
	if !strings.Contains(dsn, "_txlock=") {
		b.WriteString(sep + "_txlock=immediate")
	}
	return b.String()
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// Dialect returns "sqlite" or "mysql".
func (s *Store) Dialect() string { return s.dialect }

// DB exposes the underlying handle for tests and health checks.
func (s *Store) DB() *sqlx.DB { return s.db }

// Ping checks the database answers (for /healthz).
func (s *Store) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }

func (s *Store) provider() (*goose.Provider, error) {
	fsys, err := migrations.FS(s.dialect)
	if err != nil {
		return nil, err
	}
	d := goose.DialectSQLite3
	// Version ranges are handed out per feature (see migrations/README.md):
	// a database may hold a higher range before a lower one lands, and the
	// lower one must still apply.
	opts := []goose.ProviderOption{goose.WithAllowOutofOrder(true)}
	if s.dialect == DialectMySQL {
		d = goose.DialectMySQL
		// Several web tiers may start against one MySQL database at once:
		// a lock row (table goose_lock) lets exactly one of them migrate.
		locker, err := lock.NewMySQLTableLocker(lock.WithTableLockTimeout(time.Second, 300))
		if err != nil {
			return nil, fmt.Errorf("store: migration lock: %w", err)
		}
		opts = append(opts, goose.WithLocker(locker))
	}
	p, err := goose.NewProvider(d, s.db.DB, fsys, opts...)
	if err != nil {
		return nil, fmt.Errorf("store: migrations: %w", err)
	}
	return p, nil
}

// Migrate applies every pending embedded migration. Calling it on an
// up-to-date database does nothing.
func (s *Store) Migrate(ctx context.Context) error {
	p, err := s.provider()
	if err != nil {
		return err
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	return nil
}

// MigrateTo applies the embedded migrations up to and including version,
// for tools that build a database of an older schema (the benchmark's
// generator writes runs as version 3 stored them); Migrate applies the rest.
func (s *Store) MigrateTo(ctx context.Context, version int64) error {
	p, err := s.provider()
	if err != nil {
		return err
	}
	if _, err := p.UpTo(ctx, version); err != nil {
		return fmt.Errorf("store: migrate to %d: %w", version, err)
	}
	return nil
}

// SchemaVersion returns the applied migration version (0 before Migrate).
func (s *Store) SchemaVersion(ctx context.Context) (int64, error) {
	p, err := s.provider()
	if err != nil {
		return 0, err
	}
	v, err := p.GetDBVersion(ctx)
	if err != nil {
		return 0, fmt.Errorf("store: schema version: %w", err)
	}
	return v, nil
}

// HashToken returns the hex SHA-256 of a session or API token: the database
// only ever holds this hash, never the token.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// inTx runs fn in a transaction, committing only if fn returns nil.
func (s *Store) inTx(ctx context.Context, fn func(tx *sqlx.Tx) error) error {
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: begin: %w", unavailable(err))
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return unavailable(err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: commit: %w", unavailable(err))
	}
	return nil
}

// Error codes of the two drivers that map to sentinels.
const (
	mysqlDupEntry        = 1062
	mysqlRowIsReferenced = 1451
	mysqlNoReferencedRow = 1452
	sqliteUnique         = 2067 // SQLITE_CONSTRAINT_UNIQUE
	sqlitePrimaryKey     = 1555 // SQLITE_CONSTRAINT_PRIMARYKEY
	sqliteForeignKey     = 787  // SQLITE_CONSTRAINT_FOREIGNKEY
)

type coder interface{ Code() int }

// classify wraps err with the sentinel its driver code means, if any.
func classify(err error, what string) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		switch me.Number {
		case mysqlDupEntry:
			return fmt.Errorf("%s: already exists: %w", what, ErrConflict)
		case mysqlRowIsReferenced:
			return fmt.Errorf("%s: still referenced: %w", what, ErrInUse)
		case mysqlNoReferencedRow:
			return fmt.Errorf("%s: refers to a row that does not exist: %w", what, ErrInvalid)
		}
	}
	var se coder
	if errors.As(err, &se) {
		switch se.Code() {
		case sqliteUnique, sqlitePrimaryKey:
			return fmt.Errorf("%s: already exists: %w", what, ErrConflict)
		case sqliteForeignKey:
			return fmt.Errorf("%s: foreign key constraint failed: %w", what, ErrInUse)
		}
	}
	return fmt.Errorf("store: %s: %w", what, unavailable(err))
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), ErrInvalid)
}
