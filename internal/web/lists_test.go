package web

import (
	"context"
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/omserver/omserver-go/internal/store"
	"github.com/omserver/omserver-go/internal/task"
)

// follow walks a JSON list from path by its "next" links and returns the
// value of key in each item, failing on a page over limit or a loop.
func (e *env) follow(t *testing.T, path, listKey, itemKey string, limit int) []string {
	return e.followAs(t, "viewer", path, listKey, itemKey, limit)
}

// followAs is follow as user as.
func (e *env) followAs(t *testing.T, as, path, listKey, itemKey string, limit int) []string {
	t.Helper()
	var out []string
	for n := 0; path != ""; n++ {
		if n > 100 {
			t.Fatalf("%s: pagination does not end", path)
		}
		r := e.do(req{method: "GET", path: path, as: as}).want(t, http.StatusOK)
		var page map[string]json.RawMessage
		if err := json.Unmarshal([]byte(r.body), &page); err != nil {
			t.Fatalf("%s: %v: %.200s", path, err, r.body)
		}
		var items []map[string]any
		if err := json.Unmarshal(page[listKey], &items); err != nil {
			t.Fatalf("%s: %q is not a list: %.200s", path, listKey, r.body)
		}
		if len(items) > limit {
			t.Fatalf("%s: %d items for limit %d", path, len(items), limit)
		}
		for _, it := range items {
			out = append(out, fmt.Sprint(it[itemKey]))
		}
		var next *string
		if err := json.Unmarshal(page["next"], &next); err != nil {
			t.Fatalf("%s: next is not a string or null: %s", path, page["next"])
		}
		path = ""
		if next != nil {
			if len(items) < limit {
				t.Fatalf("short page with a next link")
			}
			path = *next
		}
	}
	return out
}

// bigApp adds n servers 10.1.x.y to application 1 (www.domain.com), a
// tenth of them FreeBSD, and returns their addresses in list order.
func (e *env) bigApp(n int) []string {
	e.t.Helper()
	var rows []store.Server
	for i := range n {
		os := "Linux"
		if i%10 == 0 {
			os = "FreeBSD"
		}
		rows = append(rows, store.Server{IP: fmt.Sprintf("10.1.%d.%d", i/200, i%200+1), Name: fmt.Sprintf("web-%04d", i), OS: os, AppID: 1})
	}
	if _, _, err := e.st.ImportServers(context.Background(), rows); err != nil {
		e.t.Fatal(err)
	}
	all, err := e.st.ListServersPage(context.Background(), store.ServerFilter{AppID: 1, IP: "10.1.", PageRequest: store.PageRequest{Limit: store.MaxLimit}})
	if err != nil || len(all.Servers) != n {
		e.t.Fatalf("fixture: %d servers, %v", len(all.Servers), err)
	}
	var ips []string
	for _, sv := range all.Servers {
		ips = append(ips, sv.IP)
	}
	return ips
}

func TestServerListAPIPages(t *testing.T) {
	e := newEnv(t)
	ips := e.bigApp(230)
	for i := range 2 { // two runs, so a runs cursor exists for firstCursor
		if err := e.st.CreateRun(context.Background(), store.Run{ID: fmt.Sprint("r", i), ModuleID: 1003, Username: "u",
			Hosts: []task.Host{{IP: "10.1.0.1"}}}); err != nil {
			t.Fatal(err)
		}
	}
	got := e.follow(t, "/api/v1/servers?app_id=1&ip=10.1.&limit=100", "servers", "ip", 100)
	if !reflect.DeepEqual(got, ips) {
		t.Fatalf("followed %d servers; want %d in order", len(got), len(ips))
	}
	// Without a limit a page is 100 servers, whatever the fleet.
	r := e.do(req{method: "GET", path: "/api/v1/servers", as: "viewer"}).want(t, http.StatusOK, `"next":"/api/v1/servers?cursor=`)
	if n := strings.Count(r.body, `"ip":`); n != 100 {
		t.Fatalf("default page holds %d servers", n)
	}
	for _, tc := range []struct {
		path string
		want int
	}{
		{"/api/v1/servers?app_id=1&os=FreeBSD&limit=500", 23},
		{"/api/v1/servers?fun_id=11&name=web-01&limit=500", 100},
		{"/api/v1/servers?q=sn2013&limit=500", 2},
		{"/api/v1/servers?q=10.1.1.&limit=500", 30},
		{"/api/v1/servers?app_id=2&limit=500", 1},
		{"/api/v1/servers?fun_id=1&limit=500", 0},
	} {
		if got := e.follow(t, tc.path, "servers", "ip", 500); len(got) != tc.want {
			t.Errorf("%s: %d servers; want %d", tc.path, len(got), tc.want)
		}
	}
	if got := e.follow(t, "/api/v1/app-categs?limit=1", "app_categs", "name", 1); !reflect.DeepEqual(got, []string{"www.domain.com", "bbs.domain.com"}) {
		t.Fatalf("applications = %v", got)
	}
	if got := e.follow(t, "/api/v1/app-categs?q=BBS", "app_categs", "name", 100); !reflect.DeepEqual(got, []string{"bbs.domain.com"}) {
		t.Fatalf("applications named bbs = %v", got)
	}
	if got := e.follow(t, "/api/v1/fun-categs?limit=5", "fun_categs", "name", 5); len(got) != 13 || got[10] != "Linux.Web" {
		t.Fatalf("function categories = %v", got)
	}
	for _, tc := range []struct {
		path string
		code int
		msg  string
	}{
		{"/api/v1/servers?limit=501", 400, "limit"},
		{"/api/v1/servers?limit=0", 400, "limit"},
		{"/api/v1/servers?cursor=garbage", 400, "cursor"},
		{"/api/v1/servers?cursor=" + url.QueryEscape(firstCursor(t, e, "/api/v1/runs?limit=1")), 400, "another list"},
		{"/api/v1/servers?app_id=999", 404, "not found"},
		{"/api/v1/servers?fun_id=abc", 400, "fun_id"},
		{"/api/v1/servers?name=" + strings.Repeat("x", 65), 400, "at most 64"},
		{"/api/v1/app-categs?fun_id=999", 404, "not found"},
		{"/api/v1/fun-categs?page=2", 400, "next"},
	} {
		msg := e.do(req{method: "GET", path: tc.path, as: "viewer"}).want(t, tc.code).jsonError(t)
		if !strings.Contains(msg, tc.msg) {
			t.Errorf("%s: %q lacks %q", tc.path, msg, tc.msg)
		}
	}
}

// firstCursor returns the cursor of the next link of a JSON list.
func firstCursor(t *testing.T, e *env, path string) string {
	t.Helper()
	var page struct {
		Next *string `json:"next"`
	}
	r := e.do(req{method: "GET", path: path, as: "viewer"}).want(t, http.StatusOK)
	if err := json.Unmarshal([]byte(r.body), &page); err != nil || page.Next == nil {
		t.Fatalf("%s has no next link: %.200s", path, r.body)
	}
	u, err := url.Parse(*page.Next)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query().Get("cursor")
}

func TestInventoryPageIsOnePage(t *testing.T) {
	e := newEnv(t)
	ips := e.bigApp(230)
	p := e.do(req{method: "GET", path: "/inventory", as: "admin"}).want(t, http.StatusOK, `id="fun-categs"`, `id="app-categs"`,
		`id="server-table"`, `id="server-search"`, `id="add-server"`, `href="/inventory?fun_id=11">2</a>`, `href="/inventory?app_id=1">232</a>`)
	if n := strings.Count(p.body, `<tr data-ip="`); n != 100 {
		t.Fatalf("the inventory page shows %d servers; want one page of 100", n)
	}
	// Following the servers' next links shows each server once.
	var seen []string
	path := "/inventory?app_id=1&ip=10.1."
	for path != "" {
		body := e.do(req{method: "GET", path: path, as: "viewer"}).want(t, http.StatusOK).body
		for _, part := range strings.Split(body, `<tr data-ip="`)[1:] {
			seen = append(seen, part[:strings.IndexByte(part, '"')])
		}
		path = ""
		if strings.Contains(body, `id="next-page"`) {
			path = html.UnescapeString(hrefOf(t, body, "next-page"))
			if !strings.Contains(path, "app_id=1") || !strings.Contains(path, "ip=10.1.") {
				t.Fatalf("next link %q drops the search", path)
			}
		}
	}
	if !reflect.DeepEqual(seen, ips) {
		t.Fatalf("paged through %d servers; want %d", len(seen), len(ips))
	}
	// Search and category views.
	p = e.do(req{method: "GET", path: "/inventory?name=web-012", as: "viewer"}).want(t, http.StatusOK, `value="web-012"`, "clear")
	if n := strings.Count(p.body, `<tr data-ip="`); n != 10 {
		t.Fatalf("hostname search shows %d servers; want 10 (web-0120 to web-0129)", n)
	}
	p = e.do(req{method: "GET", path: "/inventory?fun_id=1", as: "viewer"}).want(t, http.StatusOK, "Applications of Linux.Lbalancing", "No applications.", "No servers match.")
	e.do(req{method: "GET", path: "/inventory?cursor=bad", as: "viewer"}).want(t, http.StatusBadRequest, "cursor")
	e.do(req{method: "GET", path: "/inventory?app_id=999", as: "viewer"}).want(t, http.StatusNotFound)
}

// bigRun records a finished run of n hosts with results for most of them:
// host i is failed when i%7 == 0, without a result when i%10 == 9, ok
// otherwise.
func (e *env) bigRun(id string, n int) (failed, noResult int) {
	e.t.Helper()
	ctx := context.Background()
	hosts := make([]task.Host, n)
	for i := range hosts {
		hosts[i] = task.Host{IP: fmt.Sprintf("10.2.%d.%d", i/250, i%250+1), Name: fmt.Sprintf("h%04d", i)}
	}
	if err := e.st.CreateRun(ctx, store.Run{ID: id, ModuleID: 1003, ModuleName: "m", Username: "operator", Hosts: hosts}); err != nil {
		e.t.Fatal(err)
	}
	for i, h := range hosts {
		st := task.StatusOK
		switch {
		case i%10 == 9:
			noResult++
			continue
		case i%7 == 0:
			st, failed = task.StatusFailed, failed+1
		}
		if err := e.st.AddRunResult(ctx, id, task.HostResult{Host: h, Status: st, Stdout: "out " + h.Name}); err != nil {
			e.t.Fatal(err)
		}
	}
	if err := e.st.FinishRun(ctx, id, task.RunFailed, ""); err != nil {
		e.t.Fatal(err)
	}
	return failed, noResult
}

func TestRunHostsPages(t *testing.T) {
	e := newEnv(t)
	failed, noResult := e.bigRun("big", 250)
	ok := 250 - failed - noResult

	// The run page shows one page of hosts, the counts per status as
	// filters, and links on.
	p := e.do(req{method: "GET", path: "/runs/big", as: "viewer"}).want(t, http.StatusOK, `data-paged="true"`,
		">all 250<", fmt.Sprintf(">ok %d<", ok), fmt.Sprintf(">failed %d<", failed), fmt.Sprintf(">no result %d<", noResult),
		`href="/runs/big?status=failed"`, `id="next-page"`)
	if n := strings.Count(p.body, `class="host-result `); n != 100 {
		t.Fatalf("run page shows %d hosts; want 100", n)
	}
	var hosts []string
	path := "/runs/big"
	for path != "" {
		body := e.do(req{method: "GET", path: path, as: "viewer"}).want(t, http.StatusOK).body
		for _, part := range strings.Split(body, `data-host="`)[1:] {
			hosts = append(hosts, part[:strings.IndexByte(part, '"')])
		}
		path = ""
		if strings.Contains(body, `id="next-page"`) {
			path = html.UnescapeString(hrefOf(t, body, "next-page"))
		}
	}
	if len(hosts) != 250 || hosts[0] != "10.2.0.1" || hosts[249] != "10.2.0.250" {
		t.Fatalf("paged through %d hosts (%v ... )", len(hosts), hosts[:3])
	}
	p = e.do(req{method: "GET", path: "/runs/big?status=failed", as: "viewer"}).want(t, http.StatusOK, `class="host-filter current"`)
	if n, m := strings.Count(p.body, `class="host-result `), strings.Count(p.body, `class="host-result status-failed"`); n != failed || m != failed {
		t.Fatalf("failed filter shows %d hosts, %d failed; want %d", n, m, failed)
	}
	p = e.do(req{method: "GET", path: "/runs/big?status=noresult", as: "viewer"}).want(t, http.StatusOK)
	if n := strings.Count(p.body, `class="host-result status-noresult"`); n != noResult {
		t.Fatalf("no-result filter shows %d hosts; want %d", n, noResult)
	}

	// The API: the run with its first results and a link to the rest.
	r := e.do(req{method: "GET", path: "/api/v1/runs/big?limit=50", as: "viewer"}).want(t, http.StatusOK, `"host_count":250`,
		fmt.Sprintf(`"summary":{"failed":%d,"ok":%d}`, failed, ok), `"hosts_next":"/api/v1/runs/big/hosts?cursor=`)
	if strings.Contains(r.body, `"hosts":[`) || strings.Count(r.body, `"run_id":"big"`) != 45 {
		t.Fatalf("run answer carries the host list or %d results: %.300s", strings.Count(r.body, `"run_id":"big"`), r.body)
	}
	var runView struct {
		HostsNext string `json:"hosts_next"`
	}
	if err := json.Unmarshal([]byte(r.body), &runView); err != nil {
		t.Fatal(err)
	}
	rest := e.follow(t, runView.HostsNext, "hosts", "ip", 50)
	if len(rest) != 200 || rest[0] != "10.2.0.51" {
		t.Fatalf("hosts after the first 50: %d from %v", len(rest), rest[:1])
	}
	statuses := e.follow(t, "/api/v1/runs/big/hosts?status=pending&limit=7", "hosts", "status", 7)
	if len(statuses) != noResult || statuses[0] != "noresult" {
		t.Fatalf("hosts without result: %d %v", len(statuses), statuses[:1])
	}
	for _, tc := range []struct{ path, msg string }{
		{"/api/v1/runs/big/hosts?status=great", "unknown"},
		{"/api/v1/runs/big/hosts?cursor=zzz", "cursor"},
		{"/api/v1/runs/big/hosts?limit=1000", "limit"},
	} {
		if msg := e.do(req{method: "GET", path: tc.path, as: "viewer"}).want(t, http.StatusBadRequest).jsonError(t); !strings.Contains(msg, tc.msg) {
			t.Errorf("%s: %q", tc.path, msg)
		}
	}
	e.do(req{method: "GET", path: "/api/v1/runs/nope/hosts", as: "viewer"}).want(t, http.StatusNotFound)

	// The run list carries the count, never the hosts.
	r = e.do(req{method: "GET", path: "/api/v1/runs", as: "viewer"}).want(t, http.StatusOK, `"host_count":250`)
	if strings.Contains(r.body, "10.2.0.") {
		t.Fatalf("run list carries hosts: %.300s", r.body)
	}
	e.do(req{method: "GET", path: "/runs", as: "viewer"}).want(t, http.StatusOK, `<td class="counts">250 `,
		fmt.Sprintf(">ok %d<", ok), fmt.Sprintf(">failed %d<", failed), fmt.Sprintf(">no result %d<", noResult))
}

func TestRunFilters(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	day := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	for i := range 12 {
		r := store.Run{ID: fmt.Sprintf("run%02d", i), ModuleID: int64(1001 + i%2), ModuleName: "m", Username: []string{"operator", "admin", "viewer"}[i%3],
			Hosts: []task.Host{{IP: fmt.Sprintf("192.168.1.%d", 10+i%3), Name: fmt.Sprintf("node%d", i%3)}}, CreatedAt: day.AddDate(0, 0, i)}
		if i%4 == 0 {
			r.Status = task.RunFailed
		}
		if err := e.st.CreateRun(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		query string
		want  []string
	}{
		{"user=admin", []string{"run10", "run07", "run04", "run01"}},
		{"module_id=1002&status=running", []string{"run11", "run09", "run07", "run05", "run03", "run01"}},
		{"status=failed", []string{"run08", "run04", "run00"}},
		{"host=192.168.1.11", []string{"run10", "run07", "run04", "run01"}},
		{"host=node2&user=viewer", []string{"run11", "run08", "run05", "run02"}},
		{"from=2026-03-12&to=2026-03-14", []string{"run04", "run03", "run02"}},
		{"to=2026-03-11T12:00:00Z", []string{"run00"}},
		{"from=2026-03-21T00:00", []string{"run11"}},
		{"user=nobody", nil},
	} {
		got := e.follow(t, "/api/v1/runs?limit=2&"+tc.query, "runs", "id", 2)
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: %v; want %v", tc.query, got, tc.want)
		}
		page := e.do(req{method: "GET", path: "/runs?limit=100&" + tc.query, as: "viewer"}).want(t, http.StatusOK, `id="run-filters"`).body
		var rows []string
		for _, part := range strings.Split(page, `data-run-id="`)[1:] {
			rows = append(rows, part[:strings.IndexByte(part, '"')])
		}
		if !reflect.DeepEqual(rows, tc.want) {
			t.Errorf("page %s: %v; want %v", tc.query, rows, tc.want)
		}
	}
	e.do(req{method: "GET", path: "/runs?user=admin&host=node1", as: "viewer"}).want(t, http.StatusOK, `name="user" value="admin"`, `name="host" value="node1"`)
	for _, q := range []string{"from=yesterday", "from=2026-03-14&to=2026-03-12", "module_id=x", "status=bogus", "cursor=" + url.QueryEscape("!!")} {
		e.do(req{method: "GET", path: "/api/v1/runs?" + q, as: "viewer"}).want(t, http.StatusBadRequest)
		e.do(req{method: "GET", path: "/runs?" + q, as: "viewer"}).want(t, http.StatusBadRequest)
	}
}

func TestAuditPages(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for i := range 130 {
		if err := e.st.AddAudit(ctx, store.AuditEntry{Username: []string{"alice", "bob"}[i%2], Action: "login", Detail: fmt.Sprint("n", i)}); err != nil {
			t.Fatal(err)
		}
	}
	got := e.do(req{method: "GET", path: "/audit", as: "admin"}).want(t, http.StatusOK, `id="next-page"`, "n129")
	if n := strings.Count(got.body, "<tr><td>"); n != 100 {
		t.Fatalf("audit page shows %d entries", n)
	}
	next := html.UnescapeString(hrefOf(t, got.body, "next-page"))
	got = e.do(req{method: "GET", path: next, as: "admin"}).want(t, http.StatusOK, `id="prev-page"`, "n0<")
	if strings.Contains(got.body, `id="next-page"`) || strings.Contains(got.body, ">n30<") {
		t.Fatal("second page goes on or repeats the first")
	}
	details := e.followAs(t, "admin", "/api/v1/audit?user=bob&action=login&limit=20", "entries", "detail", 20)
	if len(details) != 65 || details[0] != "n129" || details[64] != "n1" {
		t.Fatalf("bob's logins: %d, %v", len(details), details[:2])
	}
	e.do(req{method: "GET", path: "/audit?user=bob", as: "admin"}).want(t, http.StatusOK, `name="user" value="bob"`)
	e.do(req{method: "GET", path: "/api/v1/audit?cursor=x", as: "admin"}).want(t, http.StatusBadRequest)
}
