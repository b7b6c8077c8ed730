package store

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/omserver/omserver-go/internal/testutil/mysqltest"
)

// historyInventory adds the servers the history tests send for.
func historyInventory(t *testing.T, s *Store) {
	t.Helper()
	ctx := testCtx(t)
	fid, err := s.CreateFunCateg(ctx, "Linux.Web")
	if err != nil {
		t.Fatal(err)
	}
	aid, err := s.CreateAppCateg(ctx, AppCateg{FunCategID: fid, Name: "www"})
	if err != nil {
		t.Fatal(err)
	}
	for _, ip := range []string{"192.168.1.10", "192.168.1.20", "2001:db8::7"} {
		if _, err := s.UpsertServer(ctx, Server{IP: ip, Name: "h" + strings.NewReplacer(".", "-", ":", "-").Replace(ip), AppID: aid}); err != nil {
			t.Fatal(err)
		}
	}
}

func hrow(ip string, id int64, user, at, cmd string) HistoryRow {
	ts, err := time.Parse(HistoryTimeLayout, at)
	if err != nil {
		panic(err)
	}
	return HistoryRow{IP: ip, HistoryID: id, User: user, At: ts, Command: cmd}
}

func countHistory(t *testing.T, s *Store) int {
	t.Helper()
	var n int
	if err := s.db.Get(&n, `SELECT COUNT(*) FROM server_history`); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestHistoryAdd(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store) {
		ctx := testCtx(t)
		historyInventory(t, s)
		clock := time.Date(2026, 5, 6, 7, 8, 9, 500_000_000, time.UTC)
		s.now = func() time.Time { return clock }

		r := hrow("192.168.1.10", 501, "root", "2026-05-06 15:08:01", "ls -l /tmp | grep '<x>' # 中文")
		id, dup, err := s.AddHistory(ctx, r)
		if err != nil || dup || id <= 0 {
			t.Fatalf("AddHistory = %d, %v, %v", id, dup, err)
		}
		// The same row again (a spool resend) is not stored twice.
		id2, dup, err := s.AddHistory(ctx, r)
		if err != nil || !dup || id2 != id {
			t.Fatalf("resend = %d, %v, %v; want %d, dup", id2, dup, err, id)
		}
		// Same history id, other content: bash reuses numbers, so it is a new row.
		other := r
		other.Command = "pwd"
		if id3, dup, err := s.AddHistory(ctx, other); err != nil || dup || id3 == id {
			t.Fatalf("same history id, other command = %d, %v, %v", id3, dup, err)
		}
		if n := countHistory(t, s); n != 2 {
			t.Fatalf("%d rows, want 2", n)
		}
		page, err := s.ListHistory(ctx, HistoryQuery{})
		if err != nil {
			t.Fatal(err)
		}
		got := page.Rows[1]
		want := r
		want.ID = id
		want.Stored = clock.Truncate(time.Second)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("stored row\n got %+v\nwant %+v", got, want)
		}

		long := strings.Repeat("x", MaxHistoryCommandLen)
		if _, _, err := s.AddHistory(ctx, hrow("2001:db8::7", 0, strings.Repeat("u", MaxHistoryUserLen), "1999-12-31 23:59:59", long)); err != nil {
			t.Fatalf("row at the limits: %v", err)
		}
		before := countHistory(t, s)
		for _, tc := range []struct {
			name string
			r    HistoryRow
			want error
		}{
			{"unknown host", hrow("192.168.9.9", 1, "root", "2026-01-01 00:00:00", "ls"), ErrNotFound},
			{"not an IP", hrow("web1", 1, "root", "2026-01-01 00:00:00", "ls"), ErrInvalid},
			{"non-canonical IP", hrow("2001:DB8::7", 1, "root", "2026-01-01 00:00:00", "ls"), ErrInvalid},
			{"negative id", hrow("192.168.1.10", -1, "root", "2026-01-01 00:00:00", "ls"), ErrInvalid},
			{"id too big", hrow("192.168.1.10", MaxHistoryID+1, "root", "2026-01-01 00:00:00", "ls"), ErrInvalid},
			{"no user", hrow("192.168.1.10", 1, "", "2026-01-01 00:00:00", "ls"), ErrInvalid},
			{"user too long", hrow("192.168.1.10", 1, strings.Repeat("u", MaxHistoryUserLen+1), "2026-01-01 00:00:00", "ls"), ErrInvalid},
			{"user with space", hrow("192.168.1.10", 1, "ro ot", "2026-01-01 00:00:00", "ls"), ErrInvalid},
			{"user bad utf8", hrow("192.168.1.10", 1, "r\xffoot", "2026-01-01 00:00:00", "ls"), ErrInvalid},
			{"blank command", hrow("192.168.1.10", 1, "root", "2026-01-01 00:00:00", "  \t"), ErrInvalid},
			{"command too long", hrow("192.168.1.10", 1, "root", "2026-01-01 00:00:00", long+"x"), ErrInvalid},
			{"command bad utf8", hrow("192.168.1.10", 1, "root", "2026-01-01 00:00:00", "ls \xc3"), ErrInvalid},
			{"command with escape", hrow("192.168.1.10", 1, "root", "2026-01-01 00:00:00", "echo \x1b[2J"), ErrInvalid},
			{"zero time", HistoryRow{IP: "192.168.1.10", HistoryID: 1, User: "root", Command: "ls"}, ErrInvalid},
			{"fractional time", HistoryRow{IP: "192.168.1.10", HistoryID: 1, User: "root", Command: "ls", At: time.Date(2026, 1, 1, 0, 0, 0, 1, time.UTC)}, ErrInvalid},
		} {
			if _, _, err := s.AddHistory(ctx, tc.r); !errors.Is(err, tc.want) {
				t.Errorf("%s: err = %v; want %v", tc.name, err, tc.want)
			}
		}
		if n := countHistory(t, s); n != before {
			t.Fatalf("refused rows stored: %d rows, want %d", n, before)
		}
		// A multi-line command (bash's lithist) keeps its newline and tab.
		if _, _, err := s.AddHistory(ctx, hrow("192.168.1.20", 9, "ops", "2026-01-01 00:00:00", "for i in 1 2\ndo\techo $i\ndone")); err != nil {
			t.Fatalf("multi-line command: %v", err)
		}
	})
}

func TestHistoryList(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store) {
		ctx := testCtx(t)
		historyInventory(t, s)
		hosts := []string{"192.168.1.10", "192.168.1.20"}
		users := []string{"root", "alice", "bob"}
		var ids []int64
		for i := range 30 {
			r := hrow(hosts[i%2], int64(100+i), users[i%3], fmt.Sprintf("2026-01-01 10:%02d:00", i), fmt.Sprintf("cmd-%02d %s", i, []string{"50%_off", "plain", "a!b"}[i%3]))
			id, _, err := s.AddHistory(ctx, r)
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, id)
		}
		cmds := func(p HistoryPage) []string {
			out := make([]string, len(p.Rows))
			for i, r := range p.Rows {
				out[i] = r.Command[:6]
			}
			return out
		}
		list := func(q HistoryQuery) HistoryPage {
			t.Helper()
			p, err := s.ListHistory(ctx, q)
			if err != nil {
				t.Fatalf("ListHistory(%+v): %v", q, err)
			}
			return p
		}

		// Newest first, by key: walk every page backwards and forwards.
		p := list(HistoryQuery{Limit: 7})
		if !p.More || len(p.Rows) != 7 || p.Rows[0].ID != ids[29] || p.Rows[6].ID != ids[23] {
			t.Fatalf("first page %v more=%v", cmds(p), p.More)
		}
		var seen []int64
		q := HistoryQuery{Limit: 7}
		for {
			p := list(q)
			for _, r := range p.Rows {
				seen = append(seen, r.ID)
			}
			if !p.More {
				break
			}
			q.BeforeID = p.Rows[len(p.Rows)-1].ID
		}
		if len(seen) != 30 || seen[0] != ids[29] || seen[29] != ids[0] {
			t.Fatalf("walked %d rows: %v", len(seen), seen)
		}
		// After: the oldest rows above the key, still shown newest first.
		p = list(HistoryQuery{AfterID: ids[9], Limit: 5})
		if !p.More || len(p.Rows) != 5 || p.Rows[0].ID != ids[14] || p.Rows[4].ID != ids[10] {
			t.Fatalf("after page %v more=%v", cmds(p), p.More)
		}
		p = list(HistoryQuery{Newer: true, Limit: 2})
		if !p.More || len(p.Rows) != 2 || p.Rows[0].ID != ids[1] || p.Rows[1].ID != ids[0] {
			t.Fatalf("from the start %v more=%v", cmds(p), p.More)
		}
		p = list(HistoryQuery{AfterID: ids[27], Limit: 5})
		if p.More || len(p.Rows) != 2 || p.Rows[0].ID != ids[29] {
			t.Fatalf("last after page %v more=%v", cmds(p), p.More)
		}

		for _, tc := range []struct {
			name string
			q    HistoryQuery
			want []string
		}{
			{"host", HistoryQuery{Hosts: []string{"192.168.1.20"}, Limit: 3}, []string{"cmd-29", "cmd-27", "cmd-25"}},
			{"both hosts", HistoryQuery{Hosts: hosts, Limit: 2}, []string{"cmd-29", "cmd-28"}},
			{"user", HistoryQuery{User: "alice", Limit: 3}, []string{"cmd-28", "cmd-25", "cmd-22"}},
			{"user and host", HistoryQuery{User: "alice", Hosts: []string{"192.168.1.10"}, Limit: 3}, []string{"cmd-28", "cmd-22", "cmd-16"}},
			{"percent is literal", HistoryQuery{Command: "50%_", Limit: 2}, []string{"cmd-27", "cmd-24"}},
			{"underscore is literal", HistoryQuery{Command: "%_o", Limit: 1}, []string{"cmd-27"}},
			{"escape char is literal", HistoryQuery{Command: "a!b", Limit: 1}, []string{"cmd-29"}},
			{"case-insensitive", HistoryQuery{Command: "PLAIN", Limit: 1}, []string{"cmd-28"}},
			{"time range", HistoryQuery{From: hrow("", 0, "", "2026-01-01 10:03:00", "").At, To: hrow("", 0, "", "2026-01-01 10:05:00", "").At},
				[]string{"cmd-05", "cmd-04", "cmd-03"}},
			{"range and before", HistoryQuery{From: hrow("", 0, "", "2026-01-01 10:03:00", "").At, BeforeID: ids[4]}, []string{"cmd-03"}},
			{"nothing", HistoryQuery{User: "mallory"}, []string{}},
		} {
			if got := cmds(list(tc.q)); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("%s: %v; want %v", tc.name, got, tc.want)
			}
		}
		for _, bad := range []HistoryQuery{
			{Limit: MaxHistoryPage + 1},
			{Limit: -1},
			{BeforeID: 5, AfterID: 3},
			{BeforeID: 5, Newer: true},
			{BeforeID: -1},
			{Hosts: make([]string, MaxHistoryHosts+1)},
			{Command: "\xff"},
		} {
			if _, err := s.ListHistory(ctx, bad); !errors.Is(err, ErrInvalid) {
				t.Errorf("ListHistory(%+v) = %v; want ErrInvalid", bad, err)
			}
		}
	})
}

func TestHistoryPurge(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store) {
		ctx := testCtx(t)
		historyInventory(t, s)
		start := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
		clock := start
		s.now = func() time.Time { return clock }
		for i := range 25 {
			clock = start.Add(time.Duration(i) * time.Hour)
			if _, _, err := s.AddHistory(ctx, hrow("192.168.1.10", int64(i), "root", "2026-02-01 00:00:00", fmt.Sprint("c", i))); err != nil {
				t.Fatal(err)
			}
		}
		cutoff := start.Add(12 * time.Hour) // rows 0..11 are older
		var total int64
		for range 10 {
			n, err := s.PurgeHistory(ctx, cutoff, 5)
			if err != nil {
				t.Fatal(err)
			}
			if n > 5 {
				t.Fatalf("one batch deleted %d rows, more than 5", n)
			}
			total += n
			if n < 5 {
				break
			}
		}
		if total != 12 || countHistory(t, s) != 13 {
			t.Fatalf("purged %d, %d left; want 12 and 13", total, countHistory(t, s))
		}
		p, err := s.ListHistory(ctx, HistoryQuery{Limit: 500})
		if err != nil {
			t.Fatal(err)
		}
		if oldest := p.Rows[len(p.Rows)-1]; oldest.Command != "c12" {
			t.Fatalf("oldest kept row is %q, want c12", oldest.Command)
		}
		if _, err := s.PurgeHistory(ctx, cutoff, 0); !errors.Is(err, ErrInvalid) {
			t.Fatalf("batch 0: %v", err)
		}
	})
}

func TestIngestTokens(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store) {
		ctx := testCtx(t)
		historyInventory(t, s)
		clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		s.now = func() time.Time { return clock }
		fleet, err := s.CreateIngestToken(ctx, "fleet", "", HashToken("a"), "admin")
		if err != nil {
			t.Fatal(err)
		}
		host, err := s.CreateIngestToken(ctx, "web1", "192.168.1.10", HashToken("b"), "admin")
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name, nm, ip, hash, by string
			want                   error
		}{
			{"unknown server", "x", "192.168.9.9", HashToken("c"), "admin", ErrInvalid},
			{"same hash", "x", "", HashToken("a"), "admin", ErrConflict},
			{"bad hash", "x", "", "abc", "admin", ErrInvalid},
			{"no name", "", "", HashToken("d"), "admin", ErrInvalid},
			{"no creator", "x", "", HashToken("e"), "", ErrInvalid},
		} {
			if _, err := s.CreateIngestToken(ctx, tc.nm, tc.ip, tc.hash, tc.by); !errors.Is(err, tc.want) {
				t.Errorf("%s: %v; want %v", tc.name, err, tc.want)
			}
		}
		got, err := s.GetIngestToken(ctx, HashToken("b"))
		if err != nil || got.ID != host || got.ServerIP != "192.168.1.10" || got.Name != "web1" || got.CreatedBy != "admin" || got.LastUsedAt != nil {
			t.Fatalf("GetIngestToken = %+v, %v", got, err)
		}
		if _, err := s.GetIngestToken(ctx, HashToken("nope")); !errors.Is(err, ErrNotFound) {
			t.Fatalf("unknown token: %v", err)
		}
		if _, err := s.GetIngestToken(ctx, "not-a-hash"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("malformed hash: %v", err)
		}
		// Use is recorded, at most once a minute.
		if err := s.TouchIngestToken(ctx, fleet); err != nil {
			t.Fatal(err)
		}
		first := clock
		clock = clock.Add(30 * time.Second)
		if err := s.TouchIngestToken(ctx, fleet); err != nil {
			t.Fatal(err)
		}
		got, _ = s.GetIngestToken(ctx, HashToken("a"))
		if got.LastUsedAt == nil || !got.LastUsedAt.Equal(first) {
			t.Fatalf("last used %v, want %v", got.LastUsedAt, first)
		}
		clock = clock.Add(time.Minute)
		_ = s.TouchIngestToken(ctx, fleet)
		got, _ = s.GetIngestToken(ctx, HashToken("a"))
		if got.LastUsedAt == nil || !got.LastUsedAt.Equal(clock) {
			t.Fatalf("last used %v, want %v", got.LastUsedAt, clock)
		}

		for i := range 5 {
			if _, err := s.CreateIngestToken(ctx, fmt.Sprint("t", i), "", HashToken(fmt.Sprint("t", i)), "admin"); err != nil {
				t.Fatal(err)
			}
		}
		var names []string
		after := int64(0)
		for {
			list, more, err := s.ListIngestTokens(ctx, after, 3)
			if err != nil {
				t.Fatal(err)
			}
			for _, tk := range list {
				names = append(names, tk.Name)
			}
			if !more {
				break
			}
			after = list[len(list)-1].ID
		}
		if strings.Join(names, ",") != "fleet,web1,t0,t1,t2,t3,t4" {
			t.Fatalf("listed %v", names)
		}
		if _, _, err := s.ListIngestTokens(ctx, 0, 0); !errors.Is(err, ErrInvalid) {
			t.Fatalf("limit 0: %v", err)
		}
		if err := s.DeleteIngestToken(ctx, fleet); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteIngestToken(ctx, fleet); !errors.Is(err, ErrNotFound) {
			t.Fatalf("second delete: %v", err)
		}
		// A server's tokens go with it.
		if err := s.DeleteServer(ctx, "192.168.1.10"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetIngestToken(ctx, HashToken("b")); !errors.Is(err, ErrNotFound) {
			t.Fatalf("token of a deleted server: %v", err)
		}
	})
}

// On the original dump, ingest adds rows after the original ones, which
// keep their content (and have no digest).
func TestHistoryOnOriginalDump(t *testing.T) {
	ctx := testCtx(t)
	dsn := mysqltest.New(t)
	mysqltest.LoadDump(t, dsn, mysqltest.DumpPath(t))
	raw := rawDB(t, dsn)
	before := snapshot(t, raw)["server_history"]
	s, err := Open(ctx, DialectMySQL, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	p, err := s.ListHistory(ctx, HistoryQuery{Limit: 500})
	if err != nil || len(p.Rows) != len(before) || p.More {
		t.Fatalf("list original history: %d rows, %v", len(p.Rows), err)
	}
	newest := p.Rows[0]
	long := "echo " + strings.Repeat("长", 1000) // longer than the original char(255)
	id, dup, err := s.AddHistory(ctx, HistoryRow{IP: newest.IP, HistoryID: 7, User: "a-user-name-longer-than-15", At: newest.At, Command: long})
	if err != nil || dup || id <= newest.ID {
		t.Fatalf("AddHistory on the dump = %d, %v, %v (newest original id %d)", id, dup, err, newest.ID)
	}
	p, err = s.ListHistory(ctx, HistoryQuery{Limit: 1})
	if err != nil || p.Rows[0].Command != long {
		t.Fatalf("long command not stored whole: %v", err)
	}
	if after := snapshot(t, raw)["server_history"]; !reflect.DeepEqual(after[:len(before)], before) {
		t.Fatal("original history rows changed")
	}
}

// 00040 interrupted halfway on MySQL (columns widened, the digest column
// added, no index yet) completes when migrating again.
func TestMigrateOmauditResumes(t *testing.T) {
	ctx := testCtx(t)
	dsn := mysqltest.New(t)
	mysqltest.LoadDump(t, dsn, mysqltest.DumpPath(t))
	raw := rawDB(t, dsn)
	s, err := Open(ctx, DialectMySQL, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	p, err := s.provider()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.UpTo(ctx, 3); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		"ALTER TABLE `server_history` MODIFY `history_user` varchar(64) NOT NULL",
		"ALTER TABLE `server_history` ADD COLUMN `row_digest` char(64) NULL",
		"ALTER TABLE `server_history` ADD KEY `history_user` (`history_user`)",
	} {
		if _, err := raw.ExecContext(ctx, q); err != nil {
			t.Fatalf("simulate partial migration: %s: %v", q, err)
		}
	}
	before := snapshot(t, raw)
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("migrate after interruption: %v", err)
	}
	if after := snapshot(t, raw); !reflect.DeepEqual(before, after) {
		t.Fatal("original rows changed")
	}
	var n int
	if err := raw.QueryRowContext(ctx, `SELECT COUNT(*) FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE()
		AND TABLE_NAME = 'server_history' AND INDEX_NAME = 'history_row_digest' AND NON_UNIQUE = 0`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("unique digest index after resume: %d, %v", n, err)
	}
	if _, _, err := s.AddHistory(ctx, hrow("192.168.1.20", 1, "root", "2026-01-01 00:00:00", "uptime")); err != nil {
		t.Fatalf("ingest after resume: %v", err)
	}
}
