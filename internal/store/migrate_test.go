package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"

	"github.com/omserver/omserver-go/internal/param"
	"github.com/omserver/omserver-go/internal/testutil/mysqltest"
	"github.com/omserver/omserver-go/migrations"
)

// latestVersion is the highest migration version shipped (both dialects
// have the same; migrations.TestDialectsShareVersions checks it).
var latestVersion = func() int64 {
	fsys, err := migrations.FS(migrations.SQLite)
	if err != nil {
		panic(err)
	}
	names, err := fs.Glob(fsys, "*.sql")
	if err != nil {
		panic(err)
	}
	var v int64
	for _, n := range names {
		if n, err := strconv.ParseInt(n[:strings.IndexByte(n, '_')], 10, 64); err == nil && n > v {
			v = n
		}
	}
	return v
}()

// checkFreshSchema verifies a freshly migrated database of either dialect.
func checkFreshSchema(t *testing.T, s *Store) {
	ctx := testCtx(t)
	v, err := s.SchemaVersion(ctx)
	if err != nil || v != latestVersion {
		t.Fatalf("schema version = %d, %v; want %d", v, err, latestVersion)
	}
	// A second Migrate is a no-op.
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("second migrate: %v", err)
	}
	if v2, err := s.SchemaVersion(ctx); err != nil || v2 != v {
		t.Fatalf("version after second migrate = %d, %v; want %d", v2, err, v)
	}
	for _, table := range []string{"server_fun_categ", "server_app_categ", "server_list", "module_list", "server_history",
		"users", "sessions", "api_tokens", "runs", "run_hosts", "audit_log", "omaudit_tokens"} {
		var n int
		if err := s.db.GetContext(ctx, &n, "SELECT COUNT(*) FROM "+table); err != nil || n != 0 {
			t.Errorf("table %s: count %d, %v; want an empty table", table, n, err)
		}
	}
	// Module ids continue the original numbering.
	id, err := s.CreateModule(ctx, Module{Name: "new", Caption: "c"})
	if err != nil || id != 1001 {
		t.Errorf("first module id = %d, %v; want 1001", id, err)
	}
	// The widened key column holds an IPv6 address.
	fid, _ := s.CreateFunCateg(ctx, "Linux.Web")
	aid, _ := s.CreateAppCateg(ctx, AppCateg{FunCategID: fid, Name: "app"})
	v6 := "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff"
	if _, err := s.UpsertServer(ctx, Server{IP: v6, Name: "a-rather-long-hostname.example.internal", AppID: aid}); err != nil {
		t.Fatalf("upsert IPv6 server: %v", err)
	}
	if got, err := s.GetServer(ctx, v6); err != nil || got.IP != v6 {
		t.Fatalf("get IPv6 server = %+v, %v", got, err)
	}
}

func TestMigrateEmptySQLite(t *testing.T) {
	checkFreshSchema(t, migrated(openSQLite)(t))
}

func TestMigrateEmptyMariaDB(t *testing.T) {
	checkFreshSchema(t, migrated(openMySQL)(t))
}

// originalTables lists each original table with its original columns and
// key, to compare their full content before and after migrating.
var originalTables = []struct{ name, cols, order string }{
	{"server_fun_categ", "ID, server_categ_name", "ID"},
	{"server_app_categ", "ID, server_categ_id, app_categ_name", "ID"},
	{"server_list", "server_name, server_wip, server_lip, server_op, server_app_id", "server_lip"},
	{"module_list", "ID, module_name, module_caption, module_extend", "ID"},
	{"server_history", "ID, history_id, history_ip, history_user, history_datetime, db_datetime, history_command", "ID"},
}

// snapshot returns every row of every original table as text.
func snapshot(t *testing.T, db *sql.DB) map[string][][]string {
	t.Helper()
	out := map[string][][]string{}
	for _, tb := range originalTables {
		rows, err := db.Query(fmt.Sprintf("SELECT %s FROM %s ORDER BY %s", tb.cols, tb.name, tb.order))
		if err != nil {
			t.Fatalf("snapshot %s: %v", tb.name, err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			raw := make([]sql.NullString, len(cols))
			ptrs := make([]any, len(cols))
			for i := range raw {
				ptrs[i] = &raw[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatalf("snapshot %s: %v", tb.name, err)
			}
			row := make([]string, len(cols))
			for i, v := range raw {
				row[i] = fmt.Sprintf("%v:%s", v.Valid, v.String)
			}
			out[tb.name] = append(out[tb.name], row)
		}
		if err := rows.Err(); err != nil {
			t.Fatalf("snapshot %s: %v", tb.name, err)
		}
		rows.Close()
	}
	return out
}

// rawDB opens dsn without the store's settings, but in UTC so TIMESTAMP
// values compare equal.
func rawDB(t *testing.T, dsn string) *sql.DB {
	t.Helper()
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Params = map[string]string{"time_zone": "'+00:00'"}
	db, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestMigrateOriginalDump(t *testing.T) {
	ctx := testCtx(t)
	dsn := mysqltest.New(t)
	mysqltest.LoadDump(t, dsn, mysqltest.DumpPath(t))
	raw := rawDB(t, dsn)
	before := snapshot(t, raw)
	if n := len(before["server_history"]); n != 30 {
		t.Fatalf("dump loaded %d history rows, want 30", n)
	}

	s, err := Open(ctx, DialectMySQL, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("migrate dump database: %v", err)
	}
	after := snapshot(t, raw)
	if !reflect.DeepEqual(before, after) {
		for _, tb := range originalTables {
			if !reflect.DeepEqual(before[tb.name], after[tb.name]) {
				t.Errorf("table %s changed:\nbefore %v\nafter  %v", tb.name, before[tb.name], after[tb.name])
			}
		}
	}
	v, err := s.SchemaVersion(ctx)
	if err != nil || v != latestVersion {
		t.Fatalf("version = %d, %v", v, err)
	}
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("second migrate: %v", err)
	}
	if v2, _ := s.SchemaVersion(ctx); v2 != v {
		t.Fatalf("second migrate moved version %d -> %d", v, v2)
	}
	if !reflect.DeepEqual(before, snapshot(t, raw)) {
		t.Fatal("second migrate changed original rows")
	}

	// Widened columns: both ends of the history foreign key hold IPv6, and
	// the constraint is still enforced.
	for _, c := range []struct{ table, col, want string }{
		{"server_list", "server_lip", "varchar(45)"},
		{"server_history", "history_ip", "varchar(45)"},
		{"server_list", "server_name", "varchar(64)"},
		{"module_list", "module_name", "varchar(64)"},
		{"server_history", "history_user", "varchar(64)"},
		{"server_history", "history_command", "varchar(4096)"},
	} {
		var typ string
		err := raw.QueryRow(`SELECT COLUMN_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND COLUMN_NAME = ?`, c.table, c.col).Scan(&typ)
		if err != nil || typ != c.want {
			t.Errorf("%s.%s type = %q, %v; want %s", c.table, c.col, typ, err, c.want)
		}
	}
	v6 := "fe80::1234:5678:9abc:def0"
	if _, err := s.UpsertServer(ctx, Server{IP: v6, Name: "v6host", OS: "Linux", AppID: 1}); err != nil {
		t.Fatalf("IPv6 server: %v", err)
	}
	if _, err := raw.Exec(`INSERT INTO server_history (history_id, history_ip, history_user, history_datetime, history_command) VALUES (1, ?, 'root', '2024-01-01 00:00:00', 'uptime')`, v6); err != nil {
		t.Fatalf("history for IPv6 server: %v", err)
	}
	_, err = raw.Exec(`INSERT INTO server_history (history_id, history_ip, history_user, history_datetime, history_command) VALUES (1, '10.9.9.9', 'root', '2024-01-01 00:00:00', 'x')`)
	var me *mysql.MySQLError
	if !errors.As(err, &me) || me.Number != mysqlNoReferencedRow {
		t.Fatalf("history for unknown IP: err = %v; want foreign key error 1452", err)
	}
	if err := s.DeleteServer(ctx, "192.168.1.20"); !errors.Is(err, ErrInUse) {
		t.Fatalf("delete server with history: %v; want ErrInUse", err)
	}
	// Emoji needs utf8mb4: the converted original tables accept it.
	if _, err := s.CreateFunCateg(ctx, "Linux.🚀"); err != nil {
		t.Fatalf("utf8mb4 name: %v", err)
	}

	// Module ids continue after 1007.
	id, err := s.CreateModule(ctx, Module{Name: "新模块", Caption: "c"})
	if err != nil || id != 1008 {
		t.Fatalf("new module id = %d, %v; want 1008", id, err)
	}

	// The dump's modules come back with their parsed parameter schema.
	m, err := s.GetModule(ctx, 1001)
	if err != nil {
		t.Fatal(err)
	}
	lo, hi := int64(1), int64(999)
	want1001 := []param.Param{{Name: "sys_param_1", Label: "返回信息行数：", Type: param.Number, MaxLength: 3, Default: "50", Min: &lo, Max: &hi}}
	if m.Name != "查看系统日志" || !reflect.DeepEqual(m.Params, want1001) {
		t.Errorf("module 1001 = %q %+v; want params %+v", m.Name, m.Params, want1001)
	}
	m, err = s.GetModule(ctx, 1005)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Params) != 1 || m.Params[0].Type != param.Choice || len(m.Params[0].Options) != 8 ||
		m.Params[0].Default != "resinjar" || !reflect.DeepEqual(m.Params[0].Options[1], param.Option{Value: "nginx_config", Label: "nginx配置文件"}) {
		t.Errorf("module 1005 params = %+v", m.Params)
	}
	all, err := s.ListModules(ctx)
	if err != nil || len(all) != 8 {
		t.Fatalf("list modules = %d, %v", len(all), err)
	}
	if len(all[2].Params) != 0 || all[2].ID != 1003 {
		t.Errorf("module 1003 should have no parameters: %+v", all[2])
	}
	// Seeding a migrated original database changes nothing.
	if wrote, err := s.SeedOriginal(ctx); err != nil || wrote {
		t.Errorf("seed on dump = %v, %v; want nothing written", wrote, err)
	}
	if !strings.Contains(fmt.Sprint(snapshot(t, raw)["module_list"]), "查看系统版本") {
		t.Error("module 1003 missing after seeding")
	}
}

func TestSeedOriginal(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store) {
		ctx := testCtx(t)
		wrote, err := s.SeedOriginal(ctx)
		if err != nil || !wrote {
			t.Fatalf("seed = %v, %v", wrote, err)
		}
		if wrote, err := s.SeedOriginal(ctx); err != nil || wrote {
			t.Fatalf("second seed = %v, %v; want no-op", wrote, err)
		}
		fc, _ := s.ListFunCategs(ctx)
		if len(fc) != 13 || fc[10] != (FunCateg{ID: 11, Name: "Linux.Web"}) {
			t.Errorf("function categories = %+v", fc)
		}
		apps, _ := s.ListAppCategs(ctx, 11)
		if len(apps) != 2 || apps[1].Name != "bbs.domain.com" {
			t.Errorf("apps = %+v", apps)
		}
		ms, err := s.ListModules(ctx)
		if err != nil || len(ms) != 7 || ms[0].ID != 1001 || ms[6].ID != 1007 {
			t.Fatalf("modules = %+v, %v", ms, err)
		}
		if id, err := s.CreateModule(ctx, Module{Name: "next", Caption: ""}); err != nil || id != 1008 {
			t.Errorf("next module id = %d, %v; want 1008", id, err)
		}
	})
}

// The store must refuse to run against an unknown driver, and Open must
// report an unreachable server rather than returning a dead handle.
func TestOpenErrors(t *testing.T) {
	ctx := context.Background()
	if _, err := Open(ctx, "postgres", "x"); err == nil || !strings.Contains(err.Error(), "unknown driver") {
		t.Errorf("unknown driver: %v", err)
	}
	if _, err := Open(ctx, DialectMySQL, "root@tcp(127.0.0.1:1)/x?timeout=2s"); err == nil {
		t.Error("unreachable mysql: no error")
	}
	if _, err := Open(ctx, DialectMySQL, "::not a dsn"); err == nil {
		t.Error("bad dsn: no error")
	}
	if _, err := Open(ctx, DialectMySQL, "root@tcp(127.0.0.1:3306)/"); err == nil || !strings.Contains(err.Error(), "no database") {
		t.Errorf("dsn without database: %v", err)
	}
	if _, err := Open(ctx, DialectSQLite, "/nonexistent-dir/x.db"); err == nil || !strings.Contains(err.Error(), "nonexistent-dir") {
		t.Errorf("sqlite in missing directory: %v", err)
	}
	if _, err := Open(ctx, DialectSQLite, ""); err == nil {
		t.Error("sqlite empty path: no error")
	}
	// An in-memory database works (one connection, so one database).
	mem, err := Open(ctx, DialectSQLite, ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Close()
	if err := mem.Migrate(ctx); err != nil {
		t.Fatalf("migrate in-memory: %v", err)
	}
	if _, err := mem.ListModules(ctx); err != nil {
		t.Errorf("in-memory database lost its schema: %v", err)
	}
}

// A database restored from a mysqldump file can hold history rows whose
// server is gone (mysqldump turns foreign key checks off while loading).
// Migrating keeps them, and the constraint is back for new rows.
func TestMigrateDumpWithOrphanHistory(t *testing.T) {
	ctx := testCtx(t)
	dsn := mysqltest.New(t)
	mysqltest.LoadDump(t, dsn, mysqltest.DumpPath(t))
	raw := rawDB(t, dsn)
	conn, err := raw.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`SET foreign_key_checks = 0`,
		`INSERT INTO server_history (ID, history_id, history_ip, history_user, history_datetime, db_datetime, history_command) VALUES (2000, 7, '192.168.9.99', 'root', '2014-07-01 10:00:00', '2014-07-01 02:00:00', 'reboot')`,
		`SET foreign_key_checks = 1`,
	} {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	conn.Close()
	before := snapshot(t, raw)
	s, err := Open(ctx, DialectMySQL, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("migrate with orphan history: %v", err)
	}
	if after := snapshot(t, raw); !reflect.DeepEqual(before, after) {
		t.Fatalf("original rows changed:\n%v\n%v", before["server_history"], after["server_history"])
	}
	_, err = raw.ExecContext(ctx, `INSERT INTO server_history (history_id, history_ip, history_user, history_datetime, history_command) VALUES (1, '10.9.9.9', 'root', '2024-01-01 00:00:00', 'x')`)
	var me *mysql.MySQLError
	if !errors.As(err, &me) || me.Number != mysqlNoReferencedRow {
		t.Fatalf("constraint not enforced after migrate: %v", err)
	}
}

// Two web tiers starting at once against one MariaDB database: the
// migration lock lets one migrate while the other waits, and both succeed.
func TestMigrateConcurrentMariaDB(t *testing.T) {
	ctx := testCtx(t)
	dsn := mysqltest.New(t)
	mysqltest.LoadDump(t, dsn, mysqltest.DumpPath(t))
	errs := make(chan error, 3)
	for range 3 {
		go func() {
			s, err := Open(ctx, DialectMySQL, dsn)
			if err != nil {
				errs <- err
				return
			}
			defer s.Close()
			errs <- s.Migrate(ctx)
		}()
	}
	for range 3 {
		if err := <-errs; err != nil {
			t.Errorf("concurrent migrate: %v", err)
		}
	}
	s, err := Open(ctx, DialectMySQL, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if v, err := s.SchemaVersion(ctx); err != nil || v != latestVersion {
		t.Fatalf("version = %d, %v", v, err)
	}
}

// MySQL DDL is not transactional: a migration interrupted halfway is not
// recorded and runs again. Simulate a crash inside 00002 (foreign key
// already dropped, one column widened) and inside 00003 (column and one
// table already created): the next Migrate must complete, with the data
// intact and the constraint back.
func TestMigrateResumesAfterInterruption(t *testing.T) {
	ctx := testCtx(t)
	dsn := mysqltest.New(t)
	mysqltest.LoadDump(t, dsn, mysqltest.DumpPath(t))
	raw := rawDB(t, dsn)
	before := snapshot(t, raw)
	s, err := Open(ctx, DialectMySQL, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	p, err := s.provider()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.UpTo(ctx, 1); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		"ALTER TABLE `server_history` DROP FOREIGN KEY `server_history_ibfk_1`",
		"ALTER TABLE `server_list` MODIFY `server_lip` varchar(45) NOT NULL DEFAULT ''",
		"ALTER TABLE `module_list` ADD COLUMN `module_params` text NULL",
		"CREATE TABLE `users` (`id` bigint NOT NULL AUTO_INCREMENT PRIMARY KEY, `name` varchar(64) NOT NULL UNIQUE, `password_hash` varchar(255) NOT NULL, `role` varchar(16) NOT NULL, `disabled` tinyint(1) NOT NULL DEFAULT 0, `created_at` datetime(6) NOT NULL)",
	} {
		if _, err := raw.ExecContext(ctx, q); err != nil {
			t.Fatalf("simulate partial migration: %s: %v", q, err)
		}
	}
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("migrate after interruption: %v", err)
	}
	if v, _ := s.SchemaVersion(ctx); v != latestVersion {
		t.Fatalf("version %d", v)
	}
	if after := snapshot(t, raw); !reflect.DeepEqual(before, after) {
		t.Fatal("original rows changed")
	}
	var n int
	if err := raw.QueryRowContext(ctx, `SELECT COUNT(*) FROM information_schema.TABLE_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = DATABASE()
		AND CONSTRAINT_NAME = 'server_history_ibfk_1' AND CONSTRAINT_TYPE = 'FOREIGN KEY'`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("history foreign key after resume: %d, %v", n, err)
	}
	if _, err := s.CreateUser(ctx, User{Name: "admin", PasswordHash: fakeHash, Role: RoleAdmin}); err != nil {
		t.Fatalf("users table after resume: %v", err)
	}
}
