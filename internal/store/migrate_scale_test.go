package store

import (
	"fmt"
	"io/fs"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/omserver/omserver-go/internal/task"
	"github.com/omserver/omserver-go/migrations"
)

// Migration 00020 backfills runs recorded before it: host counts from the
// hosts JSON, per-status counts from run_hosts and one run_targets row per
// host in the run's order, so old runs list, page and filter by host like
// new ones. A second Migrate changes nothing.
func TestMigrateBackfillsRunCounts(t *testing.T) {
	for _, b := range []struct {
		name string
		open func(testing.TB) *Store
	}{{"sqlite", openSQLite}, {"mariadb", openMySQL}} {
		t.Run(b.name, func(t *testing.T) {
			ctx := testCtx(t)
			s := b.open(t)
			p, err := s.provider()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := p.UpTo(ctx, 3); err != nil {
				t.Fatal(err)
			}
			at := time.Date(2025, 12, 1, 9, 30, 0, 250000000, time.UTC)
			old := []struct {
				id, hosts string
				results   map[string]string // ip -> status
			}{
				{"old-1", `[{"ip":"10.0.0.1","name":"a"},{"ip":"10.0.0.2","name":"b"},{"ip":"10.0.0.3"}]`,
					map[string]string{"10.0.0.1": "ok", "10.0.0.2": "failed", "10.0.0.3": "ok"}},
				{"old-2", `[{"ip":"10.0.0.2","name":"b"},{"name":"minion"}]`, map[string]string{"10.0.0.2": "timeout"}},
				{"old-3", `[{"ip":"10.0.0.9"}]`, nil},
			}
			for i, r := range old {
				if _, err := s.db.ExecContext(ctx, `INSERT INTO runs (id, module_id, module_name, username, params, hosts, status, error, master, created_at)
					VALUES (?, 1003, 'm', 'alice', '{}', ?, 'done', '', '', ?)`, r.id, r.hosts, dbTime(at.Add(time.Duration(i)*time.Minute))); err != nil {
					t.Fatal(err)
				}
				for ip, st := range r.results {
					if _, err := s.db.ExecContext(ctx, `INSERT INTO run_hosts (run_id, host_ip, host_name, status, exit_code, stdout, stderr, error)
						VALUES (?, ?, '', ?, 0, ?, '', '')`, r.id, ip, st, "out "+ip); err != nil {
						t.Fatal(err)
					}
				}
			}
			for range 2 {
				if err := s.Migrate(ctx); err != nil {
					t.Fatal(err)
				}
			}
			page, err := s.ListRuns(ctx, RunFilter{})
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for _, r := range page.Runs {
				got[r.ID] = fmt.Sprint(r.HostCount, " ", r.Summary)
			}
			want := map[string]string{"old-1": "3 map[failed:1 ok:2]", "old-2": "2 map[timeout:1]", "old-3": "1 map[]"}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("backfilled runs = %v; want %v", got, want)
			}
			hosts, err := s.ListRunHosts(ctx, "old-2", RunHostFilter{})
			if err != nil || len(hosts.Hosts) != 2 || hosts.Hosts[0].Host != (task.Host{IP: "10.0.0.2", Name: "b"}) ||
				hosts.Hosts[0].Result == nil || hosts.Hosts[0].Result.Status != task.StatusTimeout ||
				hosts.Hosts[1].Host != (task.Host{Name: "minion"}) || hosts.Hosts[1].Result != nil {
				t.Fatalf("backfilled hosts = %+v, %v", hosts, err)
			}
			byHost, err := s.ListRuns(ctx, RunFilter{Host: "10.0.0.2"})
			if err != nil || !reflect.DeepEqual(ids(byHost.Runs), []string{"old-2", "old-1"}) {
				t.Fatalf("old runs by host = %v, %v", ids(byHost.Runs), err)
			}
			// New results keep counting from the backfilled values.
			if err := s.AddRunResult(ctx, "old-3", task.HostResult{Host: task.Host{IP: "10.0.0.9"}, Status: task.StatusCancelled}); err != nil {
				t.Fatal(err)
			}
			if info, _ := s.GetRunInfo(ctx, "old-3"); !reflect.DeepEqual(info.Summary, map[task.Status]int{task.StatusCancelled: 1}) {
				t.Fatalf("after a new result: %v", info.Summary)
			}
		})
	}
}

// MySQL DDL is not transactional, so an interrupted 00020 runs again from
// its first statement: running its Up section a second time over a
// migrated database with runs must succeed and change no count or host row.
func TestMigration20RepeatsOnMariaDB(t *testing.T) {
	ctx := testCtx(t)
	s := migrated(openMySQL)(t)
	hosts := []task.Host{{IP: "10.0.0.1", Name: "a"}, {IP: "10.0.0.2"}}
	if err := s.CreateRun(ctx, Run{ID: "r", ModuleID: 1003, Username: "u", Hosts: hosts}); err != nil {
		t.Fatal(err)
	}
	if err := s.AddRunResult(ctx, "r", task.HostResult{Host: hosts[1], Status: task.StatusFailed}); err != nil {
		t.Fatal(err)
	}
	fsys, err := migrations.FS(DialectMySQL)
	if err != nil {
		t.Fatal(err)
	}
	text, err := fs.ReadFile(fsys, "00020_scale_reads.sql")
	if err != nil {
		t.Fatal(err)
	}
	up, _, _ := strings.Cut(strings.SplitN(string(text), "-- +goose Up", 2)[1], "-- +goose Down")
	conn, err := s.db.Conn(ctx) // session variables (@ddl) live on one connection
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, stmt := range strings.Split(up, ";\n") {
		if strings.TrimSpace(stmt) == "" {
			continue
		}
		if _, err := conn.ExecContext(ctx, stmt); err != nil {
			t.Fatalf("second run of %.80q: %v", stmt, err)
		}
	}
	info, err := s.GetRunInfo(ctx, "r")
	if err != nil || info.HostCount != 2 || !reflect.DeepEqual(info.Summary, map[task.Status]int{task.StatusFailed: 1}) {
		t.Fatalf("after a repeat: %+v, %v", info, err)
	}
	page, err := s.ListRunHosts(ctx, "r", RunHostFilter{})
	if err != nil || len(page.Hosts) != 2 {
		t.Fatalf("hosts after a repeat = %+v, %v", page, err)
	}
}
