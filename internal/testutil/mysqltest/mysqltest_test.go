package mysqltest

import (
	"database/sql"
	"fmt"
	"runtime"
	"strings"
	"testing"
)

func TestNewAndLoadDump(t *testing.T) {
	var name string
	t.Run("inner", func(t *testing.T) {
		dsn := New(t)
		db, err := sql.Open("mysql", dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if err := db.QueryRow("SELECT DATABASE()").Scan(&name); err != nil || !strings.HasPrefix(name, "omtest_") {
			t.Fatalf("database = %q, %v", name, err)
		}
		LoadDump(t, dsn, DumpPath(t))
		var n int
		if err := db.QueryRow("SELECT COUNT(*) FROM server_list").Scan(&n); err != nil || n != 4 {
			t.Fatalf("servers after loading the dump = %d, %v", n, err)
		}
	})
	// The inner test's cleanup dropped its database.
	db, err := sql.Open("mysql", DefaultDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?", name).Scan(&n); err != nil || n != 0 {
		t.Fatalf("database %s still exists after the test: %d, %v", name, n, err)
	}
}

// recorder captures how New gives up, without failing the real test.
type recorder struct {
	testing.TB
	fatal, skip string
}

func (r *recorder) Helper() {}
func (r *recorder) Fatalf(format string, args ...any) {
	r.fatal = fmt.Sprintf(format, args...)
	runtime.Goexit()
}
func (r *recorder) Skipf(format string, args ...any) {
	r.skip = fmt.Sprintf(format, args...)
	runtime.Goexit()
}
func (r *recorder) Cleanup(func()) {}

func TestUnreachableServerNamesTheFix(t *testing.T) {
	t.Setenv(EnvDSN, "root@tcp(127.0.0.1:1)/")
	r := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		New(r)
	}()
	<-done
	msg := r.fatal
	if testing.Short() {
		msg = r.skip
	}
	if !strings.Contains(msg, "127.0.0.1:1") || (!testing.Short() && !strings.Contains(msg, "apt-get install mariadb-server")) {
		t.Fatalf("fatal %q skip %q; want a message naming the server and what to install", r.fatal, r.skip)
	}
}
