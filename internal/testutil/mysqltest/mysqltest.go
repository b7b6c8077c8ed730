// Package mysqltest gives each test its own database on a real MariaDB or
// MySQL server, and loads the original OMServer dump into it.
//
// The server is OMSERVER_TEST_MYSQL_DSN (a go-sql-driver DSN without a
// database name), by default root@tcp(127.0.0.1:3306)/. When it cannot be
// reached the test fails, naming what to install and start; only under
// `go test -short` is it skipped.
package mysqltest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

// EnvDSN names the environment variable holding the server's DSN.
const EnvDSN = "OMSERVER_TEST_MYSQL_DSN"

// DefaultDSN is used when EnvDSN is unset: the local MariaDB's root account
// with an empty password, as .ci/run sets it up.
const DefaultDSN = "root@tcp(127.0.0.1:3306)/"

const installHint = "install and start MariaDB: apt-get install mariadb-server; " +
	"start-stop-daemon --start --background --exec /usr/sbin/mariadbd " +
	"(or set " + EnvDSN + " to a reachable server's DSN)"

func serverConfig(t testing.TB) *mysql.Config {
	t.Helper()
	dsn := os.Getenv(EnvDSN)
	if dsn == "" {
		dsn = DefaultDSN
	}
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatalf("mysqltest: %s=%q is not a valid DSN: %v", EnvDSN, dsn, err)
	}
	cfg.DBName = ""
	cfg.Timeout = 5 * time.Second
	return cfg
}

// New creates an empty database named omtest_<random> and returns a DSN
// for it; the database is dropped when the test ends.
func New(t testing.TB) string {
	t.Helper()
	cfg := serverConfig(t)
	db, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		t.Fatalf("mysqltest: open: %v", err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		if testing.Short() {
			t.Skipf("mysqltest: MariaDB at %s unreachable (%v); skipped under -short", cfg.Addr, err)
		}
		t.Fatalf("mysqltest: MariaDB at %s unreachable: %v; %s", cfg.Addr, err, installHint)
	}
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatalf("mysqltest: random name: %v", err)
	}
	name := "omtest_" + hex.EncodeToString(b[:])
	if _, err := db.ExecContext(ctx, "CREATE DATABASE `"+name+"` CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci"); err != nil {
		t.Fatalf("mysqltest: create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		db, err := sql.Open("mysql", cfg.FormatDSN())
		if err != nil {
			t.Errorf("mysqltest: drop %s: %v", name, err)
			return
		}
		defer db.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := db.ExecContext(ctx, "DROP DATABASE IF EXISTS `"+name+"`"); err != nil {
			t.Errorf("mysqltest: drop database %s: %v", name, err)
		}
	})
	cfg.DBName = name
	return cfg.FormatDSN()
}

// LoadDump executes the SQL file at path (such as the original OMServer.sql)
// in the database of dsn, in one multi-statement batch.
func LoadDump(t testing.TB, dsn, path string) {
	t.Helper()
	script, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("mysqltest: read dump: %v", err)
	}
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatalf("mysqltest: dsn: %v", err)
	}
	cfg.MultiStatements = true
	db, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		t.Fatalf("mysqltest: open: %v", err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// One connection, so the dump's session settings (SET NAMES, SQL_MODE)
	// apply to all of its statements.
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatalf("mysqltest: connect: %v", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, string(script)); err != nil {
		t.Fatalf("mysqltest: load %s: %v", filepath.Base(path), err)
	}
}

// DumpPath returns the path of the original OMServer dump committed beside
// this package (a copy of shared/reference/OMServer.sql).
func DumpPath(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("mysqltest: cannot locate the package directory")
	}
	p := filepath.Join(filepath.Dir(file), "testdata", "OMServer.sql")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("mysqltest: dump: %v", err)
	}
	return p
}

// Describe is a short description of the server for test logs.
func Describe(dsn string) string {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return "?"
	}
	return fmt.Sprintf("%s/%s", cfg.Addr, cfg.DBName)
}
