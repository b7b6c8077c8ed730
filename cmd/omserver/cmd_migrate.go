package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/omserver/omserver-go/internal/config"
	"github.com/omserver/omserver-go/internal/store"
)

// cmdMigrate applies the embedded migrations to the configured database.
func cmdMigrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("migrate", stderr)
	cfgPath := fs.String("config", "", "configuration file")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	st, err := openStore(ctx, cfg.Web.Database)
	if err != nil {
		return err
	}
	defer st.Close()
	before, err := st.SchemaVersion(ctx)
	if err != nil {
		before = 0 // a database that never saw our migrations, e.g. the original OMServer's
	}
	if err := st.Migrate(ctx); err != nil {
		return err
	}
	after, err := st.SchemaVersion(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "database (%s) migrated from schema version %d to %d\n", st.Dialect(), before, after)
	return nil
}

// openStore opens the configured database.
func openStore(ctx context.Context, db config.DatabaseConfig) (*store.Store, error) {
	if db.DSN == "" {
		return nil, fmt.Errorf("web.database.dsn is empty (or set %s)", config.EnvDatabaseDSN)
	}
	if db.Driver == "sqlite" && !strings.HasPrefix(db.DSN, "file:") && db.DSN != ":memory:" {
		if err := os.MkdirAll(filepath.Dir(db.DSN), 0o700); err != nil {
			return nil, fmt.Errorf("database directory: %w", err)
		}
	}
	st, err := store.Open(ctx, db.Driver, db.DSN)
	if err != nil {
		return nil, fmt.Errorf("opening %s database: %w", db.Driver, err)
	}
	return st, nil
}
