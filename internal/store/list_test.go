package store

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/omserver/omserver-go/internal/apperr"
	"github.com/omserver/omserver-go/internal/task"
)

// allServers reads every server by following the pages (tests only).
func allServers(t testing.TB, s *Store) ([]Server, error) {
	t.Helper()
	var out []Server
	cursor := ""
	for {
		page, err := s.ListServersPage(context.Background(), ServerFilter{PageRequest: PageRequest{Limit: MaxLimit, Cursor: cursor}})
		if err != nil {
			return nil, err
		}
		for _, sv := range page.Servers {
			out = append(out, sv.Server)
		}
		if page.Next == "" {
			return out, nil
		}
		cursor = page.Next
	}
}

// walk follows a list from its first page with the given page size and
// returns every key it saw, failing on a page larger than the limit, an
// empty page that promises more, or a loop.
func walk(t *testing.T, limit int, page func(cursor string) (keys []string, next string, err error)) []string {
	t.Helper()
	var all []string
	cursor := ""
	for n := 0; ; n++ {
		if n > 1000 {
			t.Fatal("pagination does not end")
		}
		keys, next, err := page(cursor)
		if err != nil {
			t.Fatalf("page after %q: %v", cursor, err)
		}
		if len(keys) > limit {
			t.Fatalf("page of %d rows for limit %d", len(keys), limit)
		}
		if next != "" && len(keys) < limit {
			t.Fatalf("short page (%d of %d) with a next cursor", len(keys), limit)
		}
		all = append(all, keys...)
		if next == "" {
			return all
		}
		cursor = next
	}
}

// wantInvalid asserts err is a refusal of the input, categorised Invalid.
func wantInvalid(t *testing.T, what string, err error, fragment string) {
	t.Helper()
	if !errors.Is(err, ErrInvalid) || apperr.KindOf(err) != apperr.Invalid {
		t.Fatalf("%s: err = %v; want an Invalid error", what, err)
	}
	if !strings.Contains(err.Error(), fragment) {
		t.Fatalf("%s: message %q lacks %q", what, err, fragment)
	}
}

func TestCursorRoundTripAndRefusals(t *testing.T) {
	at := time.Date(2026, 5, 6, 7, 8, 9, 123456000, time.UTC)
	c := encodeCursor("runs", at, "run-7")
	var gotAt time.Time
	var gotID string
	if ok, err := decodeCursor("runs", c, &gotAt, &gotID); !ok || err != nil || !gotAt.Equal(at) || gotID != "run-7" {
		t.Fatalf("round trip = %v %v %v %q", ok, err, gotAt, gotID)
	}
	if ok, err := decodeCursor("runs", "", &gotAt, &gotID); ok || err != nil {
		t.Fatalf("empty cursor = %v, %v; want the first page", ok, err)
	}
	var n int64
	for _, tc := range []struct {
		name, cursor, why string
	}{
		{"not base64", "***", "not base64url"},
		{"not json", rawCursor("runs"), "not a key"},
		{"other list", encodeCursor("servers", int64(5)), "another list"},
		{"too many parts", encodeCursor("audit", int64(5), int64(6)), "wrong number"},
		{"wrong type", encodeCursor("audit", "five"), "bad key part"},
		{"null part", rawCursor(`["audit",null]`), "empty key part"},
		{"too long", strings.Repeat("A", maxCursorLen+1), "too long"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decodeCursor("audit", tc.cursor, &n)
			wantInvalid(t, tc.name, err, tc.why)
		})
	}
}

// rawCursor encodes any text the way cursors are encoded.
func rawCursor(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// FuzzDecodeCursor: no input makes the decoder panic, and whatever it
// accepts re-encodes to a cursor that decodes to the same key.
func FuzzDecodeCursor(f *testing.F) {
	f.Add(encodeCursor("runs", time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC), "abc"))
	f.Add(encodeCursor("runs", time.Time{}, ""))
	f.Add("W10")
	f.Add("")
	f.Fuzz(func(t *testing.T, c string) {
		var at time.Time
		var id string
		ok, err := decodeCursor("runs", c, &at, &id)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("refusal is not ErrInvalid: %v", err)
			}
			return
		}
		if !ok {
			return
		}
		var at2 time.Time
		var id2 string
		if _, err := decodeCursor("runs", encodeCursor("runs", at, id), &at2, &id2); err != nil || !at2.Equal(at) || id2 != id {
			t.Fatalf("re-encoded cursor = %v %q, %v; want %v %q", at2, id2, err, at, id)
		}
	})
}

// inventoryFixture: two function categories, three applications, and
// servers with names, OSes and addresses chosen to exercise each filter.
func inventoryFixture(t *testing.T, s *Store) (web, db, www, bbs, mysql int64) {
	t.Helper()
	ctx := testCtx(t)
	var err error
	if web, err = s.CreateFunCateg(ctx, "Linux.Web"); err != nil {
		t.Fatal(err)
	}
	if db, err = s.CreateFunCateg(ctx, "Linux.DB"); err != nil {
		t.Fatal(err)
	}
	www, _ = s.CreateAppCateg(ctx, AppCateg{FunCategID: web, Name: "www.domain.com"})
	bbs, _ = s.CreateAppCateg(ctx, AppCateg{FunCategID: web, Name: "bbs.domain.com"})
	mysql, _ = s.CreateAppCateg(ctx, AppCateg{FunCategID: db, Name: "mysql_main"})
	var rows []Server
	for i := range 12 {
		rows = append(rows, Server{IP: fmt.Sprintf("10.0.1.%d", i+1), Name: fmt.Sprintf("www-%02d", i+1), OS: "Linux", AppID: www})
	}
	for i := range 5 {
		rows = append(rows, Server{IP: fmt.Sprintf("10.0.2.%d", i+1), Name: fmt.Sprintf("bbs-%02d", i+1), OS: "FreeBSD", AppID: bbs})
	}
	rows = append(rows,
		Server{IP: "10.0.3.1", Name: "db_main", OS: "Linux", AppID: mysql},
		Server{IP: "10.0.3.2", Name: "db%backup", OS: "Linux", AppID: mysql},
		Server{IP: "2001:db8::10", Name: "v6-www", OS: "Linux", AppID: www},
	)
	if _, _, err := s.ImportServers(ctx, rows); err != nil {
		t.Fatal(err)
	}
	return
}

func TestListServersPage(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store) {
		ctx := testCtx(t)
		web, db, www, bbs, mysql := inventoryFixture(t, s)
		ipsOf := func(prefix string, n int) []string {
			var out []string
			for i := range n {
				out = append(out, fmt.Sprintf("%s%d", prefix, i+1))
			}
			return out
		}
		// Expected lists in server_lip order (string order: 10.0.1.1,
		// 10.0.1.10, 10.0.1.11, 10.0.1.12, 10.0.1.2, ...).
		sortLike := func(ips []string) []string {
			out := append([]string(nil), ips...)
			for i := range out {
				for j := i + 1; j < len(out); j++ {
					if out[j] < out[i] {
						out[i], out[j] = out[j], out[i]
					}
				}
			}
			return out
		}
		wwwIPs := sortLike(append(ipsOf("10.0.1.", 12), "2001:db8::10"))
		bbsIPs := ipsOf("10.0.2.", 5)
		all := sortLike(append(append(append([]string{}, wwwIPs...), bbsIPs...), "10.0.3.1", "10.0.3.2"))
		for _, tc := range []struct {
			name string
			f    ServerFilter
			want []string
		}{
			{"everything", ServerFilter{}, all},
			{"application", ServerFilter{AppID: www}, wwwIPs},
			{"function category", ServerFilter{FunID: web}, sortLike(append(append([]string{}, wwwIPs...), bbsIPs...))},
			{"function category and application", ServerFilter{FunID: db, AppID: mysql}, []string{"10.0.3.1", "10.0.3.2"}},
			{"application of another category", ServerFilter{FunID: db, AppID: bbs}, nil},
			{"address prefix", ServerFilter{IP: "10.0.2."}, bbsIPs},
			{"address prefix is not a substring", ServerFilter{IP: "0.2"}, nil},
			{"hostname substring", ServerFilter{Name: "bs-0"}, bbsIPs},
			{"OS", ServerFilter{OS: "FreeBSD"}, bbsIPs},
			{"OS and application", ServerFilter{OS: "Linux", AppID: mysql}, []string{"10.0.3.1", "10.0.3.2"}},
			{"search by address", ServerFilter{Q: "10.0.3"}, []string{"10.0.3.1", "10.0.3.2"}},
			{"search by name", ServerFilter{Q: "v6"}, []string{"2001:db8::10"}},
			{"underscore is literal", ServerFilter{Name: "_"}, []string{"10.0.3.1"}},
			{"percent is literal", ServerFilter{Name: "%"}, []string{"10.0.3.2"}},
			{"no match", ServerFilter{Name: "nothing-like-this"}, nil},
		} {
			t.Run(tc.name, func(t *testing.T) {
				for _, limit := range []int{1, 2, 5, 100} {
					got := walk(t, limit, func(cursor string) ([]string, string, error) {
						f := tc.f
						f.Limit, f.Cursor = limit, cursor
						page, err := s.ListServersPage(ctx, f)
						var keys []string
						for _, sv := range page.Servers {
							keys = append(keys, sv.IP)
						}
						return keys, page.Next, err
					})
					if !reflect.DeepEqual(got, tc.want) {
						t.Fatalf("limit %d: %v; want %v", limit, got, tc.want)
					}
				}
			})
		}
		page, err := s.ListServersPage(ctx, ServerFilter{AppID: mysql})
		if err != nil || len(page.Servers) != 2 || page.Servers[0].AppName != "mysql_main" || page.Servers[0].Name != "db_main" || page.Next != "" {
			t.Fatalf("rows = %+v, %q, %v", page.Servers, page.Next, err)
		}
		// The default page size is DefaultLimit; refusals change nothing
		// and say what was wrong.
		for _, tc := range []struct {
			name string
			f    ServerFilter
			why  string
		}{
			{"limit above the maximum", ServerFilter{PageRequest: PageRequest{Limit: MaxLimit + 1}}, "out of range"},
			{"negative limit", ServerFilter{PageRequest: PageRequest{Limit: -1}}, "out of range"},
			{"garbage cursor", ServerFilter{PageRequest: PageRequest{Cursor: "%%%"}}, "not valid"},
			{"cursor of another list", ServerFilter{PageRequest: PageRequest{Cursor: encodeCursor(auditCursor, int64(3))}}, "another list"},
			{"cursor with a number for an address", ServerFilter{PageRequest: PageRequest{Cursor: encodeCursor(serversCursor, int64(3))}}, "bad key part"},
			{"search term too long", ServerFilter{Name: strings.Repeat("x", maxSearchLen+1)}, "at most"},
			{"negative application", ServerFilter{AppID: -1}, "negative"},
		} {
			_, err := s.ListServersPage(ctx, tc.f)
			wantInvalid(t, tc.name, err, tc.why)
		}
	})
}

func TestCategoryPages(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store) {
		ctx := testCtx(t)
		web, db, www, bbs, mysql := inventoryFixture(t, s)
		got := walk(t, 1, func(cursor string) ([]string, string, error) {
			page, err := s.ListFunCategsPage(ctx, PageRequest{Limit: 1, Cursor: cursor})
			var keys []string
			for _, f := range page.FunCategs {
				keys = append(keys, fmt.Sprintf("%d:%s:%d", f.ID, f.Name, f.AppCount))
			}
			return keys, page.Next, err
		})
		if want := []string{fmt.Sprintf("%d:Linux.Web:2", web), fmt.Sprintf("%d:Linux.DB:1", db)}; !reflect.DeepEqual(got, want) {
			t.Fatalf("function categories = %v; want %v", got, want)
		}
		for _, tc := range []struct {
			name string
			f    AppFilter
			want []string
		}{
			{"all", AppFilter{}, []string{
				fmt.Sprintf("%d:www.domain.com:Linux.Web:13", www), fmt.Sprintf("%d:bbs.domain.com:Linux.Web:5", bbs), fmt.Sprintf("%d:mysql_main:Linux.DB:2", mysql)}},
			{"of one category", AppFilter{FunID: db}, []string{fmt.Sprintf("%d:mysql_main:Linux.DB:2", mysql)}},
			{"by name", AppFilter{Name: "DOMAIN"}, []string{
				fmt.Sprintf("%d:www.domain.com:Linux.Web:13", www), fmt.Sprintf("%d:bbs.domain.com:Linux.Web:5", bbs)}},
			{"underscore is literal", AppFilter{Name: "l_m"}, []string{fmt.Sprintf("%d:mysql_main:Linux.DB:2", mysql)}},
			{"unknown category", AppFilter{FunID: 9999}, nil},
		} {
			t.Run(tc.name, func(t *testing.T) {
				got := walk(t, 2, func(cursor string) ([]string, string, error) {
					f := tc.f
					f.Limit, f.Cursor = 2, cursor
					page, err := s.ListAppCategsPage(ctx, f)
					var keys []string
					for _, a := range page.AppCategs {
						keys = append(keys, fmt.Sprintf("%d:%s:%s:%d", a.ID, a.Name, a.FunName, a.ServerCount))
					}
					return keys, page.Next, err
				})
				if !reflect.DeepEqual(got, tc.want) {
					t.Fatalf("%v; want %v", got, tc.want)
				}
			})
		}
		_, err := s.ListAppCategsPage(ctx, AppFilter{PageRequest: PageRequest{Cursor: encodeCursor(funCursor, int64(1))}})
		wantInvalid(t, "function cursor for applications", err, "another list")
		_, err = s.ListFunCategsPage(ctx, PageRequest{Limit: 501})
		wantInvalid(t, "limit", err, "out of range")
		// The legacy readers are bounded by their parent.
		_, err = s.ListServers(ctx, 0)
		wantInvalid(t, "servers of no application", err, "not positive")
		_, err = s.ListAppCategs(ctx, 0)
		wantInvalid(t, "applications of no category", err, "not positive")
	})
}

// runsFixture creates runs with deliberate ties on created_at: ten runs in
// the same microsecond, whose order is then by id.
func runsFixture(t *testing.T, s *Store) (want []Run) {
	t.Helper()
	ctx := testCtx(t)
	base := time.Date(2026, 2, 1, 10, 0, 0, 0, time.UTC)
	users := []string{"alice", "bob", "carol"}
	for i := range 25 {
		at := base.Add(time.Duration(i) * time.Hour)
		if i >= 10 && i < 20 {
			at = base.Add(10 * time.Hour) // the tie
		}
		hosts := []task.Host{{IP: fmt.Sprintf("10.0.0.%d", i%4+1), Name: fmt.Sprintf("h%d", i%4+1)}}
		if i%5 == 0 {
			hosts = append(hosts, task.Host{IP: "10.0.9.9", Name: "shared"})
		}
		r := Run{ID: fmt.Sprintf("run-%02d", (i*7)%25), ModuleID: int64(1001 + i%3), ModuleName: "m", Username: users[i%3],
			Hosts: hosts, CreatedAt: at}
		if i%4 == 0 {
			r.Status = task.RunFailed
			r.FinishedAt = &at
		}
		if err := s.CreateRun(ctx, r); err != nil {
			t.Fatal(err)
		}
		if r.Status == "" {
			r.Status = task.RunRunning
		}
		want = append(want, r)
	}
	return want
}

// newestFirst orders runs as ListRuns must: created_at, then id, descending.
func newestFirst(runs []Run, keep func(Run) bool) []string {
	var sel []Run
	for _, r := range runs {
		if keep(r) {
			sel = append(sel, r)
		}
	}
	for i := range sel {
		for j := i + 1; j < len(sel); j++ {
			a, b := sel[i], sel[j]
			if b.CreatedAt.After(a.CreatedAt) || b.CreatedAt.Equal(a.CreatedAt) && b.ID > a.ID {
				sel[i], sel[j] = b, a
			}
		}
	}
	return ids(sel)
}

func hasHost(r Run, ip, name string) bool {
	for _, h := range r.Hosts {
		if ip != "" && h.IP == ip || name != "" && h.Name == name {
			return true
		}
	}
	return false
}

func TestListRunsPagination(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store) {
		ctx := testCtx(t)
		runs := runsFixture(t, s)
		tie := time.Date(2026, 2, 1, 20, 0, 0, 0, time.UTC)
		for _, tc := range []struct {
			name string
			f    RunFilter
			keep func(Run) bool
		}{
			{"all", RunFilter{}, func(Run) bool { return true }},
			{"user", RunFilter{Username: "bob"}, func(r Run) bool { return r.Username == "bob" }},
			{"module", RunFilter{ModuleID: 1002}, func(r Run) bool { return r.ModuleID == 1002 }},
			{"status", RunFilter{Status: task.RunFailed}, func(r Run) bool { return r.Status == task.RunFailed }},
			{"host by address", RunFilter{Host: "10.0.9.9"}, func(r Run) bool { return hasHost(r, "10.0.9.9", "") }},
			{"host by name", RunFilter{Host: "h2"}, func(r Run) bool { return hasHost(r, "", "h2") }},
			{"unknown host", RunFilter{Host: "10.7.7.7"}, func(Run) bool { return false }},
			{"from the tie on", RunFilter{From: tie}, func(r Run) bool { return !r.CreatedAt.Before(tie) }},
			{"before the tie", RunFilter{To: tie}, func(r Run) bool { return r.CreatedAt.Before(tie) }},
			{"the tie only", RunFilter{From: tie, To: tie.Add(time.Microsecond)}, func(r Run) bool { return r.CreatedAt.Equal(tie) }},
			{"host, user and dates", RunFilter{Host: "10.0.0.1", Username: "alice", From: tie.Add(-5 * time.Hour)},
				func(r Run) bool {
					return hasHost(r, "10.0.0.1", "") && r.Username == "alice" && !r.CreatedAt.Before(tie.Add(-5*time.Hour))
				}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				want := newestFirst(runs, tc.keep)
				for _, limit := range []int{1, 3, 7, 50} {
					got := walk(t, limit, func(cursor string) ([]string, string, error) {
						f := tc.f
						f.Limit, f.Cursor = limit, cursor
						page, err := s.ListRuns(ctx, f)
						return ids(page.Runs), page.Next, err
					})
					if len(got) == 0 {
						got = nil
					}
					if len(want) == 0 {
						want = nil
					}
					if !reflect.DeepEqual(got, want) {
						t.Fatalf("limit %d:\n got %v\nwant %v", limit, got, want)
					}
				}
			})
		}
		for _, tc := range []struct {
			name string
			f    RunFilter
			why  string
		}{
			{"limit", RunFilter{Limit: MaxLimit + 1}, "out of range"},
			{"status", RunFilter{Status: "weird"}, "unknown"},
			{"empty date range", RunFilter{From: tie, To: tie}, "empty"},
			{"garbage cursor", RunFilter{Cursor: "not a cursor"}, "not valid"},
			{"cursor of another list", RunFilter{Cursor: encodeCursor(serversCursor, "10.0.0.1")}, "another list"},
			{"cursor with a bad time", RunFilter{Cursor: encodeCursor(runsCursor, "yesterday", "x")}, "bad key part"},
			{"host too long", RunFilter{Host: strings.Repeat("h", 200)}, "longer"},
		} {
			_, err := s.ListRuns(ctx, tc.f)
			wantInvalid(t, tc.name, err, tc.why)
		}
	})
}

// The run list reads the runs table alone: with run_hosts and run_targets
// gone, it still lists every run with its host count and status counts.
func TestListRunsReadsNoHostRows(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store) {
		ctx := testCtx(t)
		hosts := []task.Host{{IP: "10.0.0.1"}, {IP: "10.0.0.2"}, {IP: "10.0.0.3"}}
		if err := s.CreateRun(ctx, Run{ID: "big", ModuleID: 1003, Username: "u", Hosts: hosts}); err != nil {
			t.Fatal(err)
		}
		for i, st := range []task.Status{task.StatusOK, task.StatusFailed, task.StatusOK} {
			if err := s.AddRunResult(ctx, "big", task.HostResult{Host: hosts[i], Status: st}); err != nil {
				t.Fatal(err)
			}
		}
		for _, q := range []string{`DROP TABLE run_hosts`, `DROP TABLE run_targets`} {
			if _, err := s.db.ExecContext(ctx, q); err != nil {
				t.Fatal(err)
			}
		}
		page, err := s.ListRuns(ctx, RunFilter{Username: "u"})
		if err != nil || len(page.Runs) != 1 {
			t.Fatalf("list without host tables = %+v, %v", page, err)
		}
		r := page.Runs[0]
		if r.HostCount != 3 || r.Hosts != nil || !reflect.DeepEqual(r.Summary, map[task.Status]int{task.StatusOK: 2, task.StatusFailed: 1}) {
			t.Fatalf("listed run = %+v", r)
		}
		if info, err := s.GetRunInfo(ctx, "big"); err != nil || info.HostCount != 3 || info.Summary[task.StatusOK] != 2 {
			t.Fatalf("run info without host tables = %+v, %v", info, err)
		}
	})
}

func TestListRunHosts(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store) {
		ctx := testCtx(t)
		var hosts []task.Host
		for i := range 11 {
			hosts = append(hosts, task.Host{IP: fmt.Sprintf("10.0.0.%d", i+1), Name: fmt.Sprintf("h%d", i+1)})
		}
		hosts = append(hosts, task.Host{Name: "minion-only"}) // a host known by name alone (salt)
		if err := s.CreateRun(ctx, Run{ID: "r", ModuleID: 1003, Username: "u", Hosts: hosts}); err != nil {
			t.Fatal(err)
		}
		statuses := map[int]task.Status{0: task.StatusOK, 2: task.StatusFailed, 3: task.StatusOK, 7: task.StatusFailed, 10: task.StatusTimeout, 11: task.StatusOK}
		for i, st := range statuses {
			h := hosts[i]
			if i == 3 {
				h.Name = "" // the master reported the host by address alone
			}
			if err := s.AddRunResult(ctx, "r", task.HostResult{Host: h, Status: st, Stdout: fmt.Sprint("out ", i)}); err != nil {
				t.Fatal(err)
			}
		}
		// A later result replaces the earlier one, in the counts too.
		if err := s.AddRunResult(ctx, "r", task.HostResult{Host: hosts[2], Status: task.StatusOK, Stdout: "out 2"}); err != nil {
			t.Fatal(err)
		}
		statuses[2] = task.StatusOK
		info, err := s.GetRunInfo(ctx, "r")
		if err != nil || info.HostCount != 12 || !reflect.DeepEqual(info.Summary,
			map[task.Status]int{task.StatusOK: 4, task.StatusFailed: 1, task.StatusTimeout: 1}) {
			t.Fatalf("run info = %+v, %v", info, err)
		}
		key := func(h RunHost) string {
			if h.Result == nil {
				return fmt.Sprintf("%d:%s:-", h.Pos, h.Host.Name)
			}
			if h.Result.Stdout != fmt.Sprint("out ", h.Pos) {
				t.Fatalf("host %d has the result of another: %+v", h.Pos, h.Result)
			}
			return fmt.Sprintf("%d:%s:%s", h.Pos, h.Host.Name, h.Result.Status)
		}
		for _, tc := range []struct {
			status string
			keep   func(i int) bool
		}{
			{"", func(int) bool { return true }},
			{"ok", func(i int) bool { return statuses[i] == task.StatusOK }},
			{"failed", func(i int) bool { return statuses[i] == task.StatusFailed }},
			{"cancelled", func(int) bool { return false }},
			{NoResult, func(i int) bool { _, ok := statuses[i]; return !ok }},
		} {
			t.Run("status="+tc.status, func(t *testing.T) {
				var want []string
				for i, h := range hosts {
					if !tc.keep(i) {
						continue
					}
					if st, ok := statuses[i]; ok {
						want = append(want, fmt.Sprintf("%d:%s:%s", i, h.Name, st))
					} else {
						want = append(want, fmt.Sprintf("%d:%s:-", i, h.Name))
					}
				}
				for _, limit := range []int{1, 5, 12, 100} {
					got := walk(t, limit, func(cursor string) ([]string, string, error) {
						page, err := s.ListRunHosts(ctx, "r", RunHostFilter{Limit: limit, Cursor: cursor, Status: tc.status})
						var keys []string
						for _, h := range page.Hosts {
							keys = append(keys, key(h))
						}
						return keys, page.Next, err
					})
					if !reflect.DeepEqual(got, want) {
						t.Fatalf("limit %d:\n got %v\nwant %v", limit, got, want)
					}
				}
			})
		}
		if _, err := s.ListRunHosts(ctx, "nope", RunHostFilter{}); !errors.Is(err, ErrNotFound) {
			t.Fatalf("unknown run = %v", err)
		}
		_, err = s.ListRunHosts(ctx, "r", RunHostFilter{Status: "great"})
		wantInvalid(t, "bad status", err, "unknown")
		_, err = s.ListRunHosts(ctx, "r", RunHostFilter{Cursor: encodeCursor(runsCursor, time.Now(), "r")})
		wantInvalid(t, "runs cursor", err, "another list")
		_, err = s.ListRunHosts(ctx, "r", RunHostFilter{Limit: 1000})
		wantInvalid(t, "limit", err, "out of range")
	})
}

func TestAuditPagination(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store) {
		ctx := testCtx(t)
		var all []string
		for i := range 13 {
			user, action := "alice", "login"
			if i%3 == 0 {
				user = "bob"
			}
			if i%2 == 0 {
				action = "run.start"
			}
			if err := s.AddAudit(ctx, AuditEntry{Username: user, Action: action, Detail: fmt.Sprint(i)}); err != nil {
				t.Fatal(err)
			}
			all = append([]string{fmt.Sprintf("%d:%s:%s", i, user, action)}, all...)
		}
		for _, tc := range []struct {
			name string
			f    AuditFilter
			want func(string) bool
		}{
			{"all", AuditFilter{}, func(string) bool { return true }},
			{"user", AuditFilter{Username: "bob"}, func(k string) bool { return strings.Contains(k, ":bob:") }},
			{"action", AuditFilter{Action: "login"}, func(k string) bool { return strings.HasSuffix(k, ":login") }},
			{"both", AuditFilter{Username: "alice", Action: "run.start"}, func(k string) bool { return strings.HasSuffix(k, ":alice:run.start") }},
		} {
			t.Run(tc.name, func(t *testing.T) {
				var want []string
				for _, k := range all {
					if tc.want(k) {
						want = append(want, k)
					}
				}
				for _, limit := range []int{1, 4, 100} {
					got := walk(t, limit, func(cursor string) ([]string, string, error) {
						f := tc.f
						f.Limit, f.Cursor = limit, cursor
						page, err := s.ListAudit(ctx, f)
						var keys []string
						for _, e := range page.Entries {
							keys = append(keys, fmt.Sprintf("%s:%s:%s", e.Detail, e.Username, e.Action))
						}
						return keys, page.Next, err
					})
					if !reflect.DeepEqual(got, want) {
						t.Fatalf("limit %d: %v; want %v", limit, got, want)
					}
				}
			})
		}
		_, err := s.ListAudit(ctx, AuditFilter{PageRequest: PageRequest{Cursor: encodeCursor(auditCursor, "x")}})
		wantInvalid(t, "cursor", err, "bad key part")
	})
}
