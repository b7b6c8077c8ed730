package web

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/omserver/omserver-go/internal/omaudit"
	"github.com/omserver/omserver-go/internal/store"
)

// The test web server listens on 127.0.0.1, so rows claiming 127.0.0.1 come
// from the right address; 127.0.0.2 is a second loopback "server".
const (
	loopA = "127.0.0.1"
	loopB = "127.0.0.2"
)

// auditEnv is a web env with the two loopback servers in the inventory and
// a fleet ingest token.
func auditEnv(t *testing.T, mutate ...func(*Config)) (*env, string) {
	t.Helper()
	e := newEnv(t, mutate...)
	for _, ip := range []string{loopA, loopB} {
		if _, err := e.st.UpsertServer(context.Background(), store.Server{IP: ip, Name: "loop-" + ip[len(ip)-1:], AppID: 2}); err != nil {
			t.Fatal(err)
		}
	}
	r := e.do(req{method: "POST", path: "/api/v1/omaudit/tokens", as: "admin", body: `{"name":"fleet"}`}).want(t, http.StatusCreated, `"token":"omi_`)
	var v struct{ Token string }
	if err := json.Unmarshal([]byte(r.body), &v); err != nil {
		t.Fatal(err)
	}
	return e, v.Token
}

func pullQuery(ip, id, user, at, cmd string) string {
	return url.Values{"history_id": {id}, "history_ip": {ip}, "history_user": {user}, "history_datetime": {at}, "history_command": {cmd}}.Encode()
}

// pullFrom sends an ingest request from the local address src.
func (e *env) pullFrom(src, rawQuery string, header map[string]string) resp {
	e.t.Helper()
	client := &http.Client{Timeout: testTimeout, Transport: &http.Transport{
		DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}).DialContext,
	}}
	hr, err := http.NewRequest("GET", e.ts.URL+"/omaudit/omaudit_pull/?"+rawQuery, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	for k, v := range header {
		hr.Header.Set(k, v)
	}
	res, err := client.Do(hr)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return resp{code: res.StatusCode, body: string(b), header: res.Header}
}

func (e *env) historyRows() []store.HistoryRow {
	e.t.Helper()
	p, err := e.st.ListHistory(context.Background(), store.HistoryQuery{Limit: 500})
	if err != nil {
		e.t.Fatal(err)
	}
	return p.Rows
}

func TestOmauditPull(t *testing.T) {
	e, tok := auditEnv(t)
	bearer := map[string]string{"Authorization": "Bearer " + tok}
	q := pullQuery(loopA, "501", "root", "2026-01-02 03:04:05", "ls -l /tmp")
	r := e.pullFrom(loopA, q, bearer).want(t, http.StatusOK)
	if r.body != "OK" || !strings.HasPrefix(r.header.Get("Content-Type"), "text/plain") {
		t.Fatalf("answer %q (%s); the original agent wants exactly OK", r.body, r.header.Get("Content-Type"))
	}
	// The spool's resend: OK again, stored once.
	e.pullFrom(loopA, q, bearer).want(t, http.StatusOK)
	// Old agents put the token in the URL; a second server sends its own rows.
	e.pullFrom(loopB, pullQuery(loopB, "7", "ops", "2026-01-02 03:04:06", "uptime")+"&token="+tok, nil).want(t, http.StatusOK)
	rows := e.historyRows()
	if len(rows) != 2 || rows[1].Command != "ls -l /tmp" || rows[0].IP != loopB || rows[0].User != "ops" {
		t.Fatalf("stored %+v", rows)
	}

	for _, tc := range []struct {
		name, src, query string
		header           map[string]string
		code             int
		want             string
	}{
		{"no token", loopA, pullQuery(loopA, "1", "root", "2026-01-02 03:04:05", "x"), nil, http.StatusUnauthorized, "ingest token required"},
		{"revoked or wrong token", loopA, pullQuery(loopA, "1", "root", "2026-01-02 03:04:05", "x"), map[string]string{"Authorization": "Bearer omi_wrong"}, http.StatusUnauthorized, "not recognised"},
		{"not a bearer header", loopA, pullQuery(loopA, "1", "root", "2026-01-02 03:04:05", "x"), map[string]string{"Authorization": "Basic eDp5"}, http.StatusBadRequest, "Bearer"},
		{"row of another server", loopA, pullQuery(loopB, "1", "root", "2026-01-02 03:04:05", "x"), bearer, http.StatusForbidden, "sent from 127.0.0.1"},
		{"forwarded-for from an untrusted peer", loopA, pullQuery(loopB, "1", "root", "2026-01-02 03:04:05", "x"), map[string]string{"Authorization": "Bearer " + tok, "X-Forwarded-For": loopB}, http.StatusForbidden, "does not match"},
		{"missing command", loopA, pullQuery(loopA, "1", "root", "2026-01-02 03:04:05", ""), bearer, http.StatusBadRequest, "history_command null"},
		{"bad time", loopA, pullQuery(loopA, "1", "root", "02/01/2026 03:04", "x"), bearer, http.StatusBadRequest, "history_datetime"},
		{"not UTF-8", loopA, "history_id=1&history_ip=127.0.0.1&history_user=root&history_datetime=2026-01-02%2003:04:05&history_command=%ff", bearer, http.StatusBadRequest, "UTF-8"},
		{"unreadable query", loopA, "history_id=%zz", bearer, http.StatusBadRequest, "cannot be read"},
	} {
		r := e.pullFrom(tc.src, tc.query, tc.header)
		if r.code != tc.code || !strings.Contains(r.body, tc.want) {
			t.Errorf("%s: %d %q; want %d with %q", tc.name, r.code, r.body, tc.code, tc.want)
		}
		if r.code == http.StatusOK || r.body == "OK" {
			t.Errorf("%s: answered OK", tc.name)
		}
	}
	if n := len(e.historyRows()); n != 2 {
		t.Fatalf("refused rows were stored: %d rows", n)
	}
}

func TestOmauditPullThroughProxyAndRateLimit(t *testing.T) {
	e, tok := auditEnv(t, func(c *Config) {
		c.OMAudit = omaudit.Config{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, Rate: 0.001, Burst: 2}
	})
	bearer := map[string]string{"Authorization": "Bearer " + tok, "X-Forwarded-For": loopB}
	e.pullFrom(loopA, pullQuery(loopB, "1", "root", "2026-01-02 03:04:05", "a"), bearer).want(t, http.StatusOK)
	e.pullFrom(loopA, pullQuery(loopB, "2", "root", "2026-01-02 03:04:05", "b"), bearer).want(t, http.StatusOK)
	r := e.pullFrom(loopA, pullQuery(loopB, "3", "root", "2026-01-02 03:04:05", "c"), bearer).want(t, http.StatusTooManyRequests, "too many")
	if r.header.Get("Retry-After") == "" {
		t.Fatal("429 without Retry-After")
	}
	// The proxy's own address is not a sender.
	e.pullFrom(loopA, pullQuery(loopA, "4", "root", "2026-01-02 03:04:05", "d"), map[string]string{"Authorization": "Bearer " + tok}).
		want(t, http.StatusForbidden, "without X-Forwarded-For")
	if n := len(e.historyRows()); n != 2 {
		t.Fatalf("%d rows stored, want 2", n)
	}
}

// seedHistory stores rows directly (the ingest path is tested above).
func (e *env) seedHistory(rows ...store.HistoryRow) []int64 {
	e.t.Helper()
	var ids []int64
	for _, r := range rows {
		id, _, err := e.st.AddHistory(context.Background(), r)
		if err != nil {
			e.t.Fatal(err)
		}
		ids = append(ids, id)
	}
	return ids
}

func hist(ip string, n int64, user, cmd string) store.HistoryRow {
	return store.HistoryRow{IP: ip, HistoryID: n, User: user, At: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).Add(time.Duration(n) * time.Second), Command: cmd}
}

func TestOmauditRunLegacyFormat(t *testing.T) {
	e, _ := auditEnv(t)
	e.do(req{method: "GET", path: "/omaudit/omaudit_run/?LastID=0"}).want(t, http.StatusUnauthorized)
	e.do(req{method: "GET", path: "/omaudit/omaudit_run/?LastID=0", as: "viewer"}).want(t, http.StatusOK, "@@")
	var ids []int64
	for i := range 7 {
		ip := loopA
		if i%2 == 1 {
			ip = loopB
		}
		ids = append(ids, e.seedHistory(hist(ip, int64(i), "root", "cmd"+itoa(int64(i))))...)
	}
	stored := e.historyRows()[0].Stored.Format("2006-01-02 15:04:05")
	line := func(ip, cmd string) string {
		return "<font color=#cccccc>" + ip + "</font>&nbsp;&nbsp;\troot&nbsp;&nbsp;\t" + stored + "\t # <font color=#ffffff>" + cmd + "</font>*"
	}
	// Starting: the newest 5, newest first, then @@ and the newest id.
	r := e.do(req{method: "GET", path: "/omaudit/omaudit_run/?LastID=0&hosts=", as: "viewer"}).want(t, http.StatusOK)
	want := line(loopA, "cmd6") + line(loopB, "cmd5") + line(loopA, "cmd4") + line(loopB, "cmd3") + line(loopA, "cmd2") + "@@" + itoa(ids[6])
	if r.body != want {
		t.Fatalf("LastID=0:\n got %q\nwant %q", r.body, want)
	}
	// The original dashboard's host values (ip*name) filter it.
	r = e.do(req{method: "GET", path: "/omaudit/omaudit_run/?LastID=" + itoa(ids[2]) + "&hosts=127.0.0.2*loop-2", as: "viewer"}).want(t, http.StatusOK)
	if want := line(loopB, "cmd5") + line(loopB, "cmd3") + "@@" + itoa(ids[5]); r.body != want {
		t.Fatalf("after LastID:\n got %q\nwant %q", r.body, want)
	}
	e.do(req{method: "GET", path: "/omaudit/omaudit_run/?LastID=" + itoa(ids[6]), as: "viewer"}).want(t, http.StatusOK)
	if r := e.do(req{method: "GET", path: "/omaudit/omaudit_run/?LastID=" + itoa(ids[6]), as: "viewer"}); r.body != "@@" {
		t.Fatalf("nothing new: %q", r.body)
	}
	e.do(req{method: "GET", path: "/omaudit/omaudit_run/?LastID=x", as: "viewer"}).want(t, http.StatusBadRequest, "LastID")
	e.do(req{method: "GET", path: "/omaudit/omaudit_run/?LastID=0&hosts=web1*x", as: "viewer"}).want(t, http.StatusBadRequest, "not an IP address")
}

// The original page eval()s omaudit_run's answer inside '...' and splits it
// on "@@" and "*": a hostile command must stay one row of text.
func TestOmauditRunEscapesForTheOriginalPage(t *testing.T) {
	e, _ := auditEnv(t)
	hostile := "echo '</font><script>x()</script>' \\x3c @@9 * \\ \u2028 done"
	ids := e.seedHistory(hist(loopA, 1, "root", hostile), hist(loopA, 2, "root", "for i in 1\ndo\techo; done"))
	r := e.do(req{method: "GET", path: "/omaudit/omaudit_run/?LastID=0", as: "viewer"}).want(t, http.StatusOK)
	body, last, ok := strings.Cut(r.body, "@@")
	if !ok || last != itoa(ids[1]) || strings.Count(r.body, "@@") != 1 {
		t.Fatalf("the answer does not split into rows@@lastid: %q", r.body)
	}
	rows := strings.Split(body, "*")
	if len(rows) != 3 || rows[2] != "" {
		t.Fatalf("%d rows after splitting on *: %q", len(rows), rows)
	}
	for _, bad := range []string{"<script", "'", "\\", "\n", "\u2028", "\r"} {
		if strings.Contains(body, bad) {
			t.Errorf("answer holds %q raw: %q", bad, body)
		}
	}
	if !strings.Contains(rows[1], "echo &#39;&lt;/font&gt;&lt;script&gt;x()&lt;/script&gt;&#39; &#92;x3c &#64;&#64;9 &#42; &#92; &#8232; done") {
		t.Errorf("hostile row: %q", rows[1])
	}
	if !strings.Contains(rows[0], "for i in 1&#10;do&#9;echo; done") {
		t.Errorf("multi-line row: %q", rows[0])
	}
}

func TestOmauditHistoryAPIAndPage(t *testing.T) {
	e, _ := auditEnv(t)
	var ids []int64
	for i := range 12 {
		user := "alice"
		if i%3 == 0 {
			user = "bob"
		}
		ids = append(ids, e.seedHistory(hist(loopA, int64(i), user, "cmd-"+itoa(int64(i))+" <b>bold</b>"))...)
	}
	var res historyResult
	get := func(path string) historyResult {
		t.Helper()
		r := e.do(req{method: "GET", path: path, as: "viewer"}).want(t, http.StatusOK)
		var out historyResult
		if err := json.Unmarshal([]byte(r.body), &out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	res = get("/api/v1/omaudit/history?user=alice&limit=3")
	if len(res.Rows) != 3 || res.Rows[0].ID != ids[11] || res.OlderBefore != ids[8] || res.NewerAfter != 0 {
		t.Fatalf("first page %+v", res)
	}
	if r := res.Rows[0]; r.IP != loopA || r.User != "alice" || r.At != "2026-01-02 03:04:16" || r.Command != "cmd-11 <b>bold</b>" || r.HistoryID != 11 {
		t.Fatalf("row %+v", r)
	}
	res = get("/api/v1/omaudit/history?user=alice&limit=3&before=" + itoa(res.OlderBefore))
	if len(res.Rows) != 3 || res.Rows[0].ID != ids[7] || res.NewerAfter != ids[7] || res.OlderBefore != ids[4] {
		t.Fatalf("second page %+v", res)
	}
	res = get("/api/v1/omaudit/history?user=alice&limit=3&after=" + itoa(res.NewerAfter))
	if len(res.Rows) != 3 || res.Rows[0].ID != ids[11] || res.Rows[2].ID != ids[8] || res.NewerAfter != 0 {
		t.Fatalf("back to the newest %+v", res)
	}
	res = get("/api/v1/omaudit/history?q=cmd-1&from=2026-01-02T03:04:15&to=2026-01-02+03:04:16")
	if len(res.Rows) != 2 || res.Rows[0].Command != "cmd-11 <b>bold</b>" {
		t.Fatalf("text and time range %+v", res)
	}
	r := e.do(req{method: "GET", path: "/api/v1/omaudit/history?host=web1", as: "viewer"}).want(t, http.StatusBadRequest)
	if msg := r.jsonError(t); !strings.Contains(msg, "not an IP address") {
		t.Fatalf("error %q", msg)
	}
	e.do(req{method: "GET", path: "/api/v1/omaudit/history"}).want(t, http.StatusUnauthorized)

	// The page: escaped rows, pager links that keep the filters.
	page := e.do(req{method: "GET", path: "/omaudit/?user=bob&limit=2", as: "viewer"}).want(t, http.StatusOK, "Start watching", "cmd-9 &lt;b&gt;bold&lt;/b&gt;", `id="older"`)
	if strings.Contains(page.body, "<b>bold</b>") || !strings.Contains(page.body, "/omaudit/?before="+itoa(ids[6])+"&amp;limit=2&amp;user=bob") {
		t.Fatalf("page: %s", page.body)
	}
	e.do(req{method: "GET", path: "/omaudit/?from=yesterday", as: "viewer"}).want(t, http.StatusBadRequest, "not a date and time", "Start watching")
	e.do(req{method: "GET", path: "/omaudit", as: "viewer"}).want(t, http.StatusMovedPermanently)
	if r := e.do(req{method: "GET", path: "/omaudit/"}); r.code != http.StatusSeeOther || !strings.HasPrefix(r.header.Get("Location"), "/login") {
		t.Fatalf("anonymous page: %d %s", r.code, r.header.Get("Location"))
	}
}

func TestOmauditEvents(t *testing.T) {
	e, tok := auditEnv(t)
	for i := range 7 {
		e.seedHistory(hist(loopB, int64(i), "root", "old"+itoa(int64(i))))
	}
	e.seedHistory(hist(loopA, 50, "root", "other host"))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	open := func(path string, header map[string]string) *auditStream {
		hr, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.ts.URL+path, nil)
		hr.AddCookie(&http.Cookie{Name: sessionCookie, Value: e.cookie["viewer"]})
		for k, v := range header {
			hr.Header.Set(k, v)
		}
		res, err := http.DefaultClient.Do(hr)
		if err != nil || res.StatusCode != http.StatusOK {
			t.Fatalf("events: %v %v", res, err)
		}
		t.Cleanup(func() { res.Body.Close() })
		return newAuditStream(t, res.Body)
	}
	s := open("/api/v1/omaudit/events?hosts=127.0.0.2", nil)
	var got []string
	for range 5 {
		var v historyView
		ev := s.next()
		if err := json.Unmarshal([]byte(ev.Data), &v); err != nil || ev.Name != "row" {
			t.Fatalf("event %+v: %v", ev, err)
		}
		got = append(got, v.Command)
	}
	if strings.Join(got, ",") != "old2,old3,old4,old5,old6" {
		t.Fatalf("a new stream starts with the newest 5, oldest first: %v", got)
	}
	// Rows ingested now arrive at once; another host's do not.
	bearer := map[string]string{"Authorization": "Bearer " + tok}
	e.pullFrom(loopA, pullQuery(loopA, "1", "root", "2026-01-02 03:04:05", "not watched"), bearer).want(t, http.StatusOK)
	e.pullFrom(loopB, pullQuery(loopB, "8", "root", "2026-01-02 03:04:05", "<script>x</script>"), bearer).want(t, http.StatusOK)
	ev := s.next()
	var v historyView
	if err := json.Unmarshal([]byte(ev.Data), &v); err != nil || v.Command != "<script>x</script>" || v.IP != loopB || ev.ID != itoa(v.ID) {
		t.Fatalf("live row %+v (%v)", ev, err)
	}
	// A resumed stream (the browser's Last-Event-ID) gets what came after.
	e.seedHistory(hist(loopB, 9, "root", "while away"))
	s2 := open("/api/v1/omaudit/events?hosts=127.0.0.2*loop-2", map[string]string{"Last-Event-ID": ev.ID})
	if ev := s2.next(); !strings.Contains(ev.Data, "while away") {
		t.Fatalf("resumed stream: %+v", ev)
	}
	e.do(req{method: "GET", path: "/api/v1/omaudit/events?hosts=nope", as: "viewer"}).want(t, http.StatusBadRequest)
}

func TestIngestTokensAdmin(t *testing.T) {
	e, fleet := auditEnv(t)
	e.do(req{method: "GET", path: "/api/v1/omaudit/tokens", as: "operator"}).want(t, http.StatusForbidden)
	e.do(req{method: "POST", path: "/api/v1/omaudit/tokens", as: "operator", body: `{"name":"x"}`}).want(t, http.StatusForbidden)
	r := e.do(req{method: "POST", path: "/api/v1/omaudit/tokens", as: "admin", body: `{"name":"loop-2","server_ip":"127.0.0.2"}`}).want(t, http.StatusCreated, `"server_ip":"127.0.0.2"`)
	var created ingestTokenView
	if err := json.Unmarshal([]byte(r.body), &created); err != nil || !strings.HasPrefix(created.Token, omaudit.TokenPrefix) {
		t.Fatalf("created %+v %v", created, err)
	}
	e.do(req{method: "POST", path: "/api/v1/omaudit/tokens", as: "admin", body: `{"name":"x","server_ip":"10.9.9.9"}`}).want(t, http.StatusBadRequest, "not in the inventory")
	list := e.do(req{method: "GET", path: "/api/v1/omaudit/tokens", as: "admin"}).want(t, http.StatusOK, `"name":"fleet"`, `"name":"loop-2"`)
	if strings.Contains(list.body, created.Token) || strings.Contains(list.body, fleet) {
		t.Fatal("the token list shows secrets")
	}
	// The host token works for its host only.
	hostTok := map[string]string{"Authorization": "Bearer " + created.Token}
	e.pullFrom(loopB, pullQuery(loopB, "1", "root", "2026-01-02 03:04:05", "x"), hostTok).want(t, http.StatusOK)
	e.pullFrom(loopA, pullQuery(loopA, "1", "root", "2026-01-02 03:04:05", "x"), hostTok).want(t, http.StatusForbidden, "another server")
	e.do(req{method: "DELETE", path: "/api/v1/omaudit/tokens/" + itoa(created.ID), as: "admin"}).want(t, http.StatusNoContent)
	e.pullFrom(loopB, pullQuery(loopB, "2", "root", "2026-01-02 03:04:05", "y"), hostTok).want(t, http.StatusUnauthorized)
	e.do(req{method: "DELETE", path: "/api/v1/omaudit/tokens/" + itoa(created.ID), as: "admin"}).want(t, http.StatusNotFound)
	// Created and revoked tokens are in the audit log.
	audit := e.do(req{method: "GET", path: "/api/v1/audit", as: "admin"}).want(t, http.StatusOK, "omaudit.token.create", "omaudit.token.delete")
	if strings.Contains(audit.body, created.Token) {
		t.Fatal("the audit log holds a secret")
	}

	// The admin page: create, shown once, revoke.
	e.do(req{method: "GET", path: "/omaudit/tokens", as: "operator"}).want(t, http.StatusForbidden)
	page := e.do(req{method: "POST", path: "/omaudit/tokens", as: "admin", body: form("name", "web fleet", "server_ip", "")}).want(t, http.StatusCreated, `id="new-token"`, "every server", "/omaudit/omaudit_pull/")
	if !strings.Contains(page.body, omaudit.TokenPrefix) {
		t.Fatal("the new token is not shown")
	}
	e.do(req{method: "GET", path: "/omaudit/tokens", as: "admin"}).want(t, http.StatusOK, "web fleet")
	e.do(req{method: "POST", path: "/omaudit/tokens", as: "admin", body: form("name", "", "server_ip", "")}).want(t, http.StatusBadRequest)
}

// auditEvent is one server-sent event with its id.
type auditEvent struct{ Name, ID, Data string }

type auditStream struct {
	t      *testing.T
	events chan auditEvent
}

func newAuditStream(t *testing.T, body io.Reader) *auditStream {
	s := &auditStream{t: t, events: make(chan auditEvent, 100)}
	go func() {
		defer close(s.events)
		sc := bufio.NewScanner(body)
		var ev auditEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.Name != "" {
					s.events <- ev
				}
				ev = auditEvent{}
			case strings.HasPrefix(line, "event: "):
				ev.Name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "id: "):
				ev.ID = strings.TrimPrefix(line, "id: ")
			case strings.HasPrefix(line, "data: "):
				ev.Data += strings.TrimPrefix(line, "data: ")
			}
		}
	}()
	return s
}

func (s *auditStream) next() auditEvent {
	s.t.Helper()
	select {
	case ev, ok := <-s.events:
		if !ok {
			s.t.Fatal("event stream ended early")
		}
		return ev
	case <-time.After(testTimeout):
		s.t.Fatal("no event arrived")
		return auditEvent{}
	}
}
