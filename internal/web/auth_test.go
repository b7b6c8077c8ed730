package web

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/omserver/omserver-go/internal/store"
)

// every endpoint of the router, with a body that would be valid for an admin.
var endpoints = []struct {
	method, path, body string
}{
	{"GET", "/", ""},
	{"GET", "/runs", ""},
	{"GET", "/runs/abc", ""},
	{"GET", "/modules", ""},
	{"GET", "/modules/new", ""},
	{"POST", "/modules/new", "name=x&caption=y&rows=0"},
	{"GET", "/modules/1001/edit", ""},
	{"POST", "/modules/1001/edit", "name=x&caption=y&rows=0"},
	{"POST", "/modules/1001/delete", ""},
	{"GET", "/inventory", ""},
	{"POST", "/inventory/fun-categs", "name=New.Categ"},
	{"POST", "/inventory/fun-categs/1", "name=Renamed"},
	{"POST", "/inventory/fun-categs/13/delete", ""},
	{"POST", "/inventory/app-categs", "fun_id=1&name=app"},
	{"POST", "/inventory/app-categs/1", "fun_id=11&name=app"},
	{"POST", "/inventory/app-categs/2/delete", ""},
	{"POST", "/inventory/servers", "app_id=1&name=h1&lip=10.0.0.1"},
	{"POST", "/inventory/servers/delete", "lip=192.168.1.10"},
	{"POST", "/inventory/import", "app_id=1&csv=h9,,10.0.0.9,Linux"},
	{"GET", "/users", ""},
	{"POST", "/users", "name=newuser&role=viewer&password=longenough"},
	{"POST", "/users/3", "role=admin"},
	{"GET", "/audit", ""},
	{"GET", "/tokens", ""},
	{"POST", "/tokens", "name=t1"},
	{"POST", "/tokens/1/delete", ""},
	{"GET", "/account", ""},
	{"POST", "/account/password", "current_password=" + testPassword + "&new_password=another-pass&new_password2=another-pass"},
	{"GET", "/autoadmin/server_fun_categ/", ""},
	{"GET", "/autoadmin/server_app_categ/?fun_categId=11", ""},
	{"GET", "/autoadmin/server_list/?app_categId=1", ""},
	{"GET", "/autoadmin/module_list/", ""},
	{"GET", "/autoadmin/module_info/?Module_Id=1001", ""},
	{"GET", "/api/v1/me", ""},
	{"PUT", "/api/v1/me/password", `{"current_password":"` + testPassword + `","new_password":"another-pass"}`},
	{"GET", "/api/v1/fun-categs", ""},
	{"GET", "/api/v1/app-categs?fun_id=11", ""},
	{"GET", "/api/v1/servers?app_id=1", ""},
	{"GET", "/api/v1/modules", ""},
	{"GET", "/api/v1/modules/1001", ""},
	{"GET", "/api/v1/runs", ""},
	{"GET", "/api/v1/runs/abc", ""},
	{"GET", "/api/v1/runs/abc/events", ""},
	{"POST", "/api/v1/runs", `{"module_id":1003,"hosts":["192.168.1.10"]}`},
	{"POST", "/api/v1/runs/abc/cancel", ""},
	{"GET", "/api/v1/tokens", ""},
	{"POST", "/api/v1/tokens", `{"name":"t"}`},
	{"DELETE", "/api/v1/tokens/1", ""},
	{"POST", "/api/v1/fun-categs", `{"name":"X.Y"}`},
	{"PUT", "/api/v1/fun-categs/1", `{"name":"X.Y"}`},
	{"DELETE", "/api/v1/fun-categs/13", ""},
	{"POST", "/api/v1/app-categs", `{"fun_categ_id":1,"name":"a"}`},
	{"PUT", "/api/v1/app-categs/1", `{"fun_categ_id":11,"name":"a"}`},
	{"DELETE", "/api/v1/app-categs/2", ""},
	{"POST", "/api/v1/servers", `{"ip":"10.0.0.1","name":"h","app_id":1}`},
	{"DELETE", "/api/v1/servers/192.168.1.10", ""},
	{"POST", "/api/v1/servers/import", `{"app_id":1,"csv":"h,,10.0.0.2,Linux"}`},
	{"POST", "/api/v1/modules", `{"name":"m","caption":"c"}`},
	{"PUT", "/api/v1/modules/1001", `{"name":"m","caption":"c"}`},
	{"DELETE", "/api/v1/modules/1004", ""},
	{"GET", "/api/v1/users", ""},
	{"POST", "/api/v1/users", `{"name":"u2","role":"viewer","password":"longenough"}`},
	{"PUT", "/api/v1/users/3", `{"role":"admin"}`},
	{"GET", "/api/v1/audit", ""},
}

func TestUnauthenticatedRefused(t *testing.T) {
	e := newEnv(t)
	before := e.snapshot()
	for _, ep := range endpoints {
		t.Run(ep.method+" "+ep.path, func(t *testing.T) {
			r := e.do(req{method: ep.method, path: ep.path, body: ep.body})
			switch {
			case strings.HasPrefix(ep.path, "/api/"):
				r.want(t, http.StatusUnauthorized)
				if !strings.Contains(r.jsonError(t), "authentication required") {
					t.Fatalf("unclear message %q", r.body)
				}
			case strings.HasPrefix(ep.path, "/autoadmin/"):
				r.want(t, http.StatusUnauthorized, "authentication required")
			default:
				r.want(t, http.StatusSeeOther)
				if loc := r.header.Get("Location"); !strings.HasPrefix(loc, "/login") {
					t.Fatalf("redirect to %q, want the login page", loc)
				}
			}
		})
	}
	e.assertUnchanged(before)
}

// A session cookie that is unknown, expired or of a disabled user is no login.
func TestBadSessionsRefused(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if err := e.st.SetUserDisabled(ctx, e.users["viewer"].ID, true); err != nil {
		t.Fatal(err)
	}
	e.cookie["nobody"] = "made-up-token"
	for _, who := range []string{"nobody", "viewer"} {
		e.do(req{method: "GET", path: "/api/v1/modules", as: who}).want(t, http.StatusUnauthorized)
	}
	// A bearer token that does not exist.
	e.do(req{method: "GET", path: "/api/v1/modules", header: map[string]string{"Authorization": "Bearer oms_nope"}}).want(t, http.StatusUnauthorized)
}

func isAdminOnly(method, path string) bool {
	switch {
	case strings.HasPrefix(path, "/api/v1/users"), path == "/api/v1/audit", strings.HasPrefix(path, "/users"), path == "/audit":
		return true
	case strings.HasPrefix(path, "/modules/"), strings.HasPrefix(path, "/inventory/"):
		return true
	case strings.HasPrefix(path, "/api/v1/") && method != "GET" && !strings.HasPrefix(path, "/api/v1/runs") && !strings.HasPrefix(path, "/api/v1/tokens") && !strings.HasPrefix(path, "/api/v1/me"):
		return true
	}
	return false
}

func isRun(method, path string) bool {
	return method == "POST" && strings.HasPrefix(path, "/api/v1/runs")
}

// Viewers cannot run or change the inventory; operators cannot administer.
func TestRolesRefused(t *testing.T) {
	e := newEnv(t)
	before := e.snapshot()
	for _, who := range []string{"viewer", "operator"} {
		for _, ep := range endpoints {
			refuse := isAdminOnly(ep.method, ep.path) || (who == "viewer" && isRun(ep.method, ep.path))
			if !refuse {
				continue
			}
			t.Run(who+" "+ep.method+" "+ep.path, func(t *testing.T) {
				r := e.do(req{method: ep.method, path: ep.path, as: who, body: ep.body})
				r.want(t, http.StatusForbidden)
				if strings.HasPrefix(ep.path, "/api/") && !strings.Contains(r.jsonError(t), "role ("+who+")") {
					t.Fatalf("unclear message %q", r.body)
				}
			})
		}
	}
	e.assertUnchanged(before)
	e.master.assertNoCall(t)
}

// Reads are open to every role.
func TestViewerReads(t *testing.T) {
	e := newEnv(t)
	for _, p := range []string{"/", "/runs", "/modules", "/inventory", "/tokens", "/api/v1/fun-categs", "/api/v1/modules", "/api/v1/runs", "/autoadmin/module_list/"} {
		e.do(req{method: "GET", path: p, as: "viewer"}).want(t, http.StatusOK)
	}
	// The dashboard disables Run for a viewer.
	e.do(req{method: "GET", path: "/", as: "viewer"}).want(t, http.StatusOK, `id="run" disabled`)
}

// Every state change is refused when it comes from another site, whether
// the browser says so (Sec-Fetch-Site) or only the Origin shows it.
func TestCrossSiteRefused(t *testing.T) {
	e := newEnv(t)
	before := e.snapshot()
	headers := []map[string]string{
		{"Sec-Fetch-Site": "cross-site"},
		{"Sec-Fetch-Site": "same-site"},
		{"Origin": "http://evil.example"},
	}
	for _, ep := range endpoints {
		if ep.method == "GET" {
			continue
		}
		for _, h := range headers {
			r := e.do(req{method: ep.method, path: ep.path, as: "admin", body: ep.body, header: h})
			if r.code != http.StatusForbidden || !strings.Contains(r.body, "cross-origin request refused") {
				t.Fatalf("%s %s with %v: status %d body %.200s", ep.method, ep.path, h, r.code, r.body)
			}
		}
	}
	// Login CSRF too.
	e.do(req{method: "POST", path: "/login", body: form("username", "admin", "password", testPassword),
		header: map[string]string{"Sec-Fetch-Site": "cross-site"}}).want(t, http.StatusForbidden)
	e.assertUnchanged(before)
	e.master.assertNoCall(t)

	// The same request from the site itself goes through.
	e.do(req{method: "POST", path: "/api/v1/fun-categs", as: "admin", body: `{"name":"Linux.New"}`,
		header: map[string]string{"Sec-Fetch-Site": "same-origin"}}).want(t, http.StatusCreated)
}

func TestLoginLogout(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.SecureCookies = true })
	e.do(req{method: "GET", path: "/login"}).want(t, http.StatusOK, `id="login-form"`, `id="username"`, `id="password"`, `id="login-submit"`)

	r := e.do(req{method: "POST", path: "/login", body: form("username", "operator", "password", "wrong password")})
	r.want(t, http.StatusUnauthorized, "Wrong user name or password")
	if len(r.header.Values("Set-Cookie")) != 0 {
		t.Fatal("a failed login set a cookie")
	}

	r = e.do(req{method: "POST", path: "/login", body: form("username", "operator", "password", testPassword, "next", "/runs")})
	r.want(t, http.StatusSeeOther)
	if loc := r.header.Get("Location"); loc != "/runs" {
		t.Fatalf("redirect to %q", loc)
	}
	var session *http.Cookie
	for _, c := range (&http.Response{Header: r.header}).Cookies() {
		if c.Name == sessionCookie {
			session = c
		}
	}
	if session == nil || !session.HttpOnly || !session.Secure || session.SameSite != http.SameSiteStrictMode || len(session.Value) < 40 {
		t.Fatalf("session cookie %+v: want HttpOnly, Secure, SameSite=Strict and a long random value", session)
	}
	// Only the hash is stored.
	if _, _, err := e.st.GetSession(context.Background(), session.Value); err == nil {
		t.Fatal("the raw cookie value was usable as a stored session id")
	}
	e.cookie["fresh"] = session.Value
	e.do(req{method: "GET", path: "/api/v1/me", as: "fresh"}).want(t, http.StatusOK, `"name":"operator"`)

	// An off-site next is ignored.
	r = e.do(req{method: "POST", path: "/login", body: form("username", "viewer", "password", testPassword, "next", "//evil.example/")})
	if loc := r.header.Get("Location"); loc != "/" {
		t.Fatalf("redirect to %q, want /", loc)
	}

	e.do(req{method: "POST", path: "/logout", as: "fresh"}).want(t, http.StatusSeeOther)
	e.do(req{method: "GET", path: "/api/v1/me", as: "fresh"}).want(t, http.StatusUnauthorized)

	entries, err := e.auditLog(100)
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, a := range entries {
		actions = append(actions, a.Username+":"+a.Action)
	}
	got := strings.Join(actions, " ")
	for _, want := range []string{"operator:login.failed", "operator:login.ok", "operator:logout"} {
		if !strings.Contains(got, want) {
			t.Fatalf("audit log %q lacks %q", got, want)
		}
	}
}

func TestLoginRateLimit(t *testing.T) {
	e := newEnv(t) // burst 3
	for i := range 3 {
		r := e.do(req{method: "POST", path: "/login", body: form("username", "admin", "password", "bad")})
		if r.code != http.StatusUnauthorized {
			t.Fatalf("attempt %d: status %d", i+1, r.code)
		}
	}
	// This address is refused for this name, even with the right password...
	r := e.do(req{method: "POST", path: "/login", body: form("username", "admin", "password", testPassword)})
	r.want(t, http.StatusTooManyRequests, "Too many failed login attempts")
	if r.header.Get("Retry-After") == "" {
		t.Fatal("no Retry-After")
	}
	// ... but another user at the same address (an office behind one NAT)
	// is not: the limit is per (name, address), and per address only
	// after several times the burst.
	e.do(req{method: "POST", path: "/login", body: form("username", "viewer", "password", testPassword)}).want(t, http.StatusSeeOther)
}

// TestLimiterCannotLockOutFromElsewhere is issue 9's attack: failures for
// a name from many addresses never refuse that name from a new address;
// they only slow its attempts down. One address spraying many names is
// refused once it has spent several bursts.
func TestLimiterCannotLockOutFromElsewhere(t *testing.T) {
	l := newLoginLimiter(2)
	now := testNow()
	at := func(ip, user string, when time.Time) attempt {
		t.Helper()
		return l.begin(ip, user, when)
	}
	if a := at("1.1.1.1", "a", now); !a.ok || a.delay != 0 {
		t.Fatalf("first attempt: %+v", a)
	}
	at("1.1.1.1", "a", now)
	if a := at("1.1.1.1", "a", now); a.ok || !a.report {
		t.Fatalf("third attempt of a pair with burst 2: %+v, want refused and reported", a)
	}
	// 40 attackers, 2 guesses each, all on "admin".
	for i := range 40 {
		ip := "10.0." + strconv.Itoa(i/250) + "." + strconv.Itoa(i%250)
		for range 2 {
			if a := at(ip, "admin", now); !a.ok {
				t.Fatalf("attacker %s refused: %+v", ip, a)
			}
		}
	}
	// The real admin from a new address: slowed down, never refused.
	a := at("192.0.2.7", "admin", now)
	if !a.ok || a.delay < nameDelay {
		t.Fatalf("admin from a new address: %+v; want allowed after at least %v", a, nameDelay)
	}
	l.succeeded("192.0.2.7", "admin", now)
	// An unrelated name is not slowed.
	if a := at("192.0.2.8", "bob", now); !a.ok || a.delay != 0 {
		t.Fatalf("unrelated name: %+v", a)
	}
	// One address spraying names: allowed for addrBurstFactor bursts, then refused.
	sprayer := "203.0.113.9"
	for i := range 2 * addrBurstFactor {
		if a := at(sprayer, "name"+strconv.Itoa(i), now); !a.ok {
			t.Fatalf("spray attempt %d refused early", i)
		}
	}
	if a := at(sprayer, "fresh", now); a.ok {
		t.Fatal("an address that spent its attempts on many names was allowed another")
	}
	// Attempts come back with time.
	if a := at("1.1.1.1", "a", now.Add(2*loginRefill)); !a.ok {
		t.Fatal("attempts did not come back after the refill time")
	}
}

// TestLimiterFloodSlowsEveryone: a flood of failures slows every attempt
// (the global slow-down), still refusing none from a fresh pair.
func TestLimiterFloodSlowsEveryone(t *testing.T) {
	l := newLoginLimiter(5)
	now := testNow()
	for i := range floodBurst {
		ip := "10.1." + strconv.Itoa(i/250) + "." + strconv.Itoa(i%250)
		if a := l.begin(ip, "u"+strconv.Itoa(i), now); !a.ok || a.delay != 0 {
			t.Fatalf("attempt %d before the flood: %+v", i, a)
		}
	}
	a := l.begin("192.0.2.1", "carol", now)
	if !a.ok || a.delay < floodDelay {
		t.Fatalf("during a flood: %+v, want allowed with a delay", a)
	}
	if a := l.begin("192.0.2.2", "dave", now.Add(time.Duration(floodBurst)*floodRefill)); !a.ok || a.delay != 0 {
		t.Fatalf("after the flood: %+v", a)
	}
}

func TestLimiterPerPairAndIP(t *testing.T) {
	l := newLoginLimiter(2)
	now := testNow()
	mustBegin := func(ip, user string, at time.Time, want bool, why string) {
		t.Helper()
		if a := l.begin(ip, user, at); a.ok != want {
			t.Fatalf("%s: begin(%s, %s) = %+v", why, ip, user, a)
		}
	}
	mustBegin("1.1.1.1", "a", now, true, "first attempt")
	mustBegin("2.2.2.2", "a", now, true, "the same name from another address")
	mustBegin("1.1.1.1", "a", now, true, "second attempt of the pair")
	mustBegin("1.1.1.1", "a", now, false, "third attempt of the pair")
	mustBegin("3.3.3.3", "a", now, true, "the same name from a new address")
	mustBegin("1.1.1.1", "c", now, true, "the same address with another name")

	// A success gives its attempt back.
	l2 := newLoginLimiter(1)
	mustL2 := func(want bool, why string) {
		t.Helper()
		if a := l2.begin("5.5.5.5", "d", now); a.ok != want {
			t.Fatalf("%s: got %+v", why, a)
		}
	}
	mustL2(true, "first")
	l2.succeeded("5.5.5.5", "d", now)
	mustL2(true, "after a success")
	mustL2(false, "after a failure (not given back)")
}

// TestLimiterRefusedCreatesNoEntries: refused attempts from a spent address
// with ever new names must not grow the map (a full map is pruned, which
// would hand out fresh attempts), and only the first refusal per period is
// worth an audit entry.
func TestLimiterRefusedCreatesNoEntries(t *testing.T) {
	l := newLoginLimiter(1)
	now := testNow()
	for i := range addrBurstFactor {
		if a := l.begin("1.1.1.1", "a"+strconv.Itoa(i), now); !a.ok {
			t.Fatalf("attempt %d refused", i)
		}
	}
	entries := len(l.keys)
	reports := 0
	for i := range 100 {
		a := l.begin("1.1.1.1", "name"+strconv.Itoa(i), now)
		if a.ok {
			t.Fatalf("attempt %d allowed from a spent address", i)
		}
		if a.report {
			reports++
		}
	}
	if len(l.keys) != entries {
		t.Fatalf("%d limiter entries after refused attempts, want %d", len(l.keys), entries)
	}
	if reports != 1 {
		t.Fatalf("%d refusals reported, want 1", reports)
	}
	if a := l.begin("1.1.1.1", "x", now.Add(loginRefill/2)); a.report {
		t.Fatal("a second refusal within the period was reported")
	}
}

// TestLoginRateLimitParallel: parallel wrong passwords cannot all be
// checked; at most the burst is, however they are timed.
func TestLoginRateLimitParallel(t *testing.T) {
	e := newEnv(t) // burst 3
	const n = 20
	codes := make(chan int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := form("username", "operator", "password", "wrong-"+strconv.Itoa(i))
			hr, _ := http.NewRequest("POST", e.ts.URL+"/login", strings.NewReader(body))
			hr.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			res, err := http.DefaultClient.Do(hr)
			if err != nil {
				codes <- 0
				return
			}
			res.Body.Close()
			codes <- res.StatusCode
		}()
	}
	wg.Wait()
	close(codes)
	checked := 0
	for c := range codes {
		switch c {
		case http.StatusUnauthorized:
			checked++
		case http.StatusTooManyRequests:
		default:
			t.Fatalf("unexpected status %d", c)
		}
	}
	if checked > 3 {
		t.Fatalf("%d of %d parallel wrong passwords were checked; the burst is 3", checked, n)
	}
	entries, err := e.auditLog(100)
	if err != nil {
		t.Fatal(err)
	}
	limited := 0
	for _, en := range entries {
		if en.Action == "login.ratelimited" {
			limited++
		}
	}
	if limited != 1 {
		t.Fatalf("%d login.ratelimited audit entries for one burst of refusals, want 1", limited)
	}
}

// Successful logins spend nothing: an office behind one address is not
// locked out by its own users.
func TestSuccessfulLoginsNotLimited(t *testing.T) {
	e := newEnv(t) // burst 3
	for i := range 6 {
		r := e.do(req{method: "POST", path: "/login", body: form("username", "operator", "password", testPassword)})
		if r.code != http.StatusSeeOther {
			t.Fatalf("login %d: status %d", i+1, r.code)
		}
	}
}

func TestAPITokens(t *testing.T) {
	e := newEnv(t)
	r := e.do(req{method: "POST", path: "/api/v1/tokens", as: "operator", body: `{"name":"ci script"}`}).want(t, http.StatusCreated, `"token":"oms_`)
	tok := r.body[strings.Index(r.body, "oms_"):]
	tok = tok[:strings.IndexByte(tok, '"')]
	bearer := map[string]string{"Authorization": "Bearer " + tok}
	e.do(req{method: "GET", path: "/api/v1/me", header: bearer}).want(t, http.StatusOK, `"role":"operator"`)
	e.do(req{method: "GET", path: "/autoadmin/module_list/", header: bearer}).want(t, http.StatusOK, "请选择功能模块...")
	// Tokens carry their user's role.
	e.do(req{method: "POST", path: "/api/v1/fun-categs", header: bearer, body: `{"name":"A.B"}`}).want(t, http.StatusForbidden)
	// The list never shows the secret.
	list := e.do(req{method: "GET", path: "/api/v1/tokens", as: "operator"}).want(t, http.StatusOK, "ci script")
	if strings.Contains(list.body, tok) {
		t.Fatal("token list shows the secret")
	}
	// Revoked tokens stop working; another user cannot revoke it.
	toks, _ := e.st.ListAPITokens(context.Background(), e.users["operator"].ID)
	id := toks[0].ID
	e.do(req{method: "DELETE", path: "/api/v1/tokens/" + itoa(id), as: "viewer"}).want(t, http.StatusNotFound)
	e.do(req{method: "GET", path: "/api/v1/me", header: bearer}).want(t, http.StatusOK)
	e.do(req{method: "DELETE", path: "/api/v1/tokens/" + itoa(id), as: "operator"}).want(t, http.StatusNoContent)
	e.do(req{method: "GET", path: "/api/v1/me", header: bearer}).want(t, http.StatusUnauthorized)

	// The page shows a new token once, in the answer.
	e.do(req{method: "POST", path: "/tokens", as: "viewer", body: form("name", "page token")}).want(t, http.StatusCreated, `id="new-token"`, "oms_")
	// A bad name changes nothing.
	before := e.snapshot()
	e.do(req{method: "POST", path: "/api/v1/tokens", as: "viewer", body: `{"name":""}`}).want(t, http.StatusBadRequest)
	e.assertUnchanged(before)
	if n, _ := e.st.ListAPITokens(context.Background(), e.users["viewer"].ID); len(n) != 1 {
		t.Fatalf("viewer has %d tokens, want 1", len(n))
	}
}

// Behind a proxy that rewrites Host, the configured public origin is trusted.
func TestBaseURLOriginTrusted(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.BaseURL = "https://ops.example.com/omserver/" })
	e.do(req{method: "POST", path: "/api/v1/fun-categs", as: "admin", body: `{"name":"Via.Proxy"}`,
		header: map[string]string{"Origin": "https://ops.example.com", "Sec-Fetch-Site": "cross-site"}}).want(t, http.StatusCreated)
	e.do(req{method: "POST", path: "/api/v1/fun-categs", as: "admin", body: `{"name":"Other.Site"}`,
		header: map[string]string{"Origin": "https://ops.example.com.evil.example", "Sec-Fetch-Site": "cross-site"}}).want(t, http.StatusForbidden)

	st := e.st
	for _, bad := range []string{"ops.example.com", "ftp://x", "http://"} {
		if _, err := New(Config{BaseURL: bad}, st, e.master, zerolog.Nop()); err == nil {
			t.Errorf("base URL %q accepted", bad)
		}
	}
	if _, err := New(Config{}, nil, e.master, zerolog.Nop()); err == nil {
		t.Error("nil store accepted")
	}
	if _, err := New(Config{}, st, nil, zerolog.Nop()); err == nil {
		t.Error("nil master accepted")
	}
}

// TestDisableEndsSessions: a disabled account's sessions end for good;
// enabling it again does not bring them back.
func TestDisableEndsSessions(t *testing.T) {
	e := newEnv(t)
	id := itoa(e.users["viewer"].ID)
	e.do(req{method: "GET", path: "/api/v1/me", as: "viewer"}).want(t, http.StatusOK)
	e.do(req{method: "PUT", path: "/api/v1/users/" + id, as: "admin", body: `{"disabled":true}`}).want(t, http.StatusOK)
	e.do(req{method: "GET", path: "/api/v1/me", as: "viewer"}).want(t, http.StatusUnauthorized)
	e.do(req{method: "POST", path: "/users/" + id, as: "admin", body: form("disabled", "false")}).want(t, http.StatusSeeOther)
	e.do(req{method: "GET", path: "/api/v1/me", as: "viewer"}).want(t, http.StatusUnauthorized)
}

// TestLoginEndsPreviousSession: logging in from a browser that already
// holds a session (here another user's) ends that session.
func TestLoginEndsPreviousSession(t *testing.T) {
	e := newEnv(t)
	r := e.do(req{method: "POST", path: "/login", as: "operator", body: form("username", "viewer", "password", testPassword)})
	r.want(t, http.StatusSeeOther)
	if !strings.Contains(r.header.Get("Set-Cookie"), sessionCookie+"=") {
		t.Fatal("no new session cookie")
	}
	e.do(req{method: "GET", path: "/api/v1/me", as: "operator"}).want(t, http.StatusUnauthorized)
}

// TestChangeOwnPassword: any user changes their own password given the
// current one; a wrong current password or a bad new one changes nothing;
// success ends every session of the account but keeps this browser
// logged in with a fresh one.
func TestChangeOwnPassword(t *testing.T) {
	e := newEnv(t)
	hashOf := func() string {
		u, err := e.st.GetUser(context.Background(), e.users["viewer"].ID)
		if err != nil {
			t.Fatal(err)
		}
		return u.PasswordHash
	}
	orig := hashOf()
	for _, c := range []struct {
		body string
		code int
		want string
	}{
		{`{"current_password":"wrong","new_password":"another-pass"}`, http.StatusForbidden, "current password is wrong"},
		{`{"current_password":"` + testPassword + `","new_password":"short"}`, http.StatusBadRequest, "at least 8"},
		{`{"current_password":"` + testPassword + `","new_password":"` + testPassword + `"}`, http.StatusBadRequest, "same as the current"},
	} {
		r := e.do(req{method: "PUT", path: "/api/v1/me/password", as: "viewer", body: c.body}).want(t, c.code)
		if msg := r.jsonError(t); !strings.Contains(msg, c.want) {
			t.Fatalf("%s: message %q", c.body, msg)
		}
	}
	e.do(req{method: "POST", path: "/account/password", as: "viewer",
		body: form("current_password", testPassword, "new_password", "another-pass", "new_password2", "different-pass")}).want(t, http.StatusBadRequest, "differ")
	e.do(req{method: "POST", path: "/account/password", as: "viewer",
		body:   form("current_password", testPassword, "new_password", "another-pass", "new_password2", "another-pass"),
		header: map[string]string{"Sec-Fetch-Site": "cross-site"}}).want(t, http.StatusForbidden)
	if hashOf() != orig {
		t.Fatal("a refused change changed the password")
	}
	// Another session of the same user, to see it end.
	other, _ := newSecret()
	if err := e.st.CreateSession(context.Background(), store.HashToken(other), e.users["viewer"].ID, time.Now().Add(time.Hour), "test"); err != nil {
		t.Fatal(err)
	}
	r := e.do(req{method: "POST", path: "/account/password", as: "viewer",
		body: form("current_password", testPassword, "new_password", "another-pass", "new_password2", "another-pass")}).want(t, http.StatusSeeOther)
	if loc := r.header.Get("Location"); loc != "/account?ok=password" {
		t.Fatalf("redirect to %q", loc)
	}
	var fresh string
	for _, c := range (&http.Response{Header: r.header}).Cookies() {
		if c.Name == sessionCookie {
			fresh = c.Value
		}
	}
	if fresh == "" {
		t.Fatal("no fresh session cookie")
	}
	e.do(req{method: "GET", path: "/api/v1/me", as: "viewer"}).want(t, http.StatusUnauthorized)
	e.cookie["other"], e.cookie["fresh"] = other, fresh
	e.do(req{method: "GET", path: "/api/v1/me", as: "other"}).want(t, http.StatusUnauthorized)
	e.do(req{method: "GET", path: "/account?ok=password", as: "fresh"}).want(t, http.StatusOK, "Password changed", "viewer")
	e.do(req{method: "POST", path: "/login", body: form("username", "viewer", "password", testPassword)}).want(t, http.StatusUnauthorized)
	e.do(req{method: "POST", path: "/login", body: form("username", "viewer", "password", "another-pass")}).want(t, http.StatusSeeOther)
}
