// Package migrations holds the database schema of OMServer-Go as embedded SQL
// migrations for pressly/goose, one set per dialect with the same version
// numbers and the same logical schema:
//
//	00001 the five original OMServer tables, CREATE TABLE IF NOT EXISTS with
//	      the original definitions (a no-op on a database loaded from the dump)
//	00002 widening of original columns (MySQL: IPv6-sized addresses, longer
//	      names, utf8mb4); nothing is dropped or renamed
//	00003 module_list.module_params and the new tables: users, sessions,
//	      api_tokens, runs, run_hosts, audit_log
//	00010 runs.acked_seq and run_leases (run delivery, docs/DELIVERY.md)
//	00020 per-status counts and host count on runs, run_targets (the hosts
//	      of a run by position), indexes for paged, filtered lists
//	00040 安全审计: server_history widened, row_digest and search indexes;
//	      omaudit_tokens (collector ingest tokens)
package migrations

import (
	"embed"
	"fmt"
	"io/fs"
)

//go:embed sqlite/*.sql mysql/*.sql
var files embed.FS

// Dialect names accepted by FS.
const (
	SQLite = "sqlite"
	MySQL  = "mysql"
)

// FS returns the migrations of one dialect ("sqlite" or "mysql") as a file
// system whose root holds the numbered .sql files, ready for goose.NewProvider.
func FS(dialect string) (fs.FS, error) {
	switch dialect {
	case SQLite, MySQL:
		sub, err := fs.Sub(files, dialect)
		if err != nil {
			return nil, fmt.Errorf("migrations: %s: %w", dialect, err)
		}
		return sub, nil
	}
	return nil, fmt.Errorf("migrations: unknown dialect %q (sqlite or mysql)", dialect)
}
