package web

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"

	"github.com/omserver/omserver-go/internal/relay"
	"github.com/omserver/omserver-go/internal/store"
	"github.com/omserver/omserver-go/internal/testutil/mysqltest"
	"github.com/omserver/omserver-go/internal/testutil/netcut"
)

// TestDatabaseOutageIsUnavailableNotUnauthenticated cuts the web tier's
// link to MariaDB: requests with a token or a session cookie answer 503
// with Retry-After (never 401, never the login page), and work again once
// the database is back.
func TestDatabaseOutageIsUnavailableNotUnauthenticated(t *testing.T) {
	dsn := mysqltest.New(t)
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	p := netcut.New(t, cfg.Addr)
	cfg.Addr = p.Addr
	ctx := context.Background()
	st, err := store.Open(ctx, store.DialectMySQL, cfg.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	e := newEnvOn(t, st)
	const token = tokenPrefix + "durable-test-token"
	if _, err := st.CreateAPIToken(ctx, e.users["operator"].ID, "script", store.HashToken(token)); err != nil {
		t.Fatal(err)
	}
	bearer := map[string]string{"Authorization": "Bearer " + token}
	e.do(req{method: "GET", path: "/api/v1/me", header: bearer}).want(t, http.StatusOK, `"operator"`)
	e.do(req{method: "GET", path: "/api/v1/me", as: "viewer"}).want(t, http.StatusOK, `"viewer"`)

	p.Cut()
	st.DB().SetMaxIdleConns(0)
	for name, r := range map[string]req{
		"token":         {method: "GET", path: "/api/v1/me", header: bearer},
		"session":       {method: "GET", path: "/api/v1/me", as: "viewer"},
		"page":          {method: "GET", path: "/runs", as: "viewer"},
		"legacy script": {method: "GET", path: "/autoadmin/module_list/", header: bearer},
	} {
		got := e.do(r)
		if got.code != http.StatusServiceUnavailable || got.header.Get("Retry-After") == "" {
			t.Errorf("%s with the database down: %d (Retry-After %q) %s; want 503 with Retry-After", name, got.code, got.header.Get("Retry-After"), got.body)
		}
		if strings.Contains(got.body, p.Addr) || strings.Contains(got.body, cfg.Addr) {
			t.Errorf("%s: the answer names the database address: %s", name, got.body)
		}
	}
	// Without credentials nothing needs the database to say "log in".
	e.do(req{method: "GET", path: "/api/v1/me"}).want(t, http.StatusUnauthorized)
	p.Restore()
	e.do(req{method: "GET", path: "/api/v1/me", header: bearer}).want(t, http.StatusOK, `"operator"`)
	e.do(req{method: "GET", path: "/api/v1/me", as: "viewer"}).want(t, http.StatusOK, `"viewer"`)
}

// healthAllMaster is the fake master with per-master health, as
// relay.Client reports it (a login that fails makes a master unusable).
type healthAllMaster struct {
	*fakeMaster
	health []relay.MasterHealth
}

func (h *healthAllMaster) HealthAll(context.Context) []relay.MasterHealth { return h.health }

func TestHealthzNeedsAWorkingMasterLogin(t *testing.T) {
	e := newEnv(t)
	hm := &healthAllMaster{fakeMaster: e.master}
	srv, err := New(Config{MasterName: "m"}, e.st, hm, e.srv.log)
	if err != nil {
		t.Fatal(err)
	}
	do := func() (int, string) {
		rec := httptest.NewRecorder()
		srv.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/healthz", nil))
		return rec.Code, rec.Body.String()
	}
	hm.health = []relay.MasterHealth{
		{Addr: "127.0.0.1:7071", Serving: true, Err: &relay.Error{Addr: "127.0.0.1:7071", Kind: relay.ErrLoginRefused, Msg: "wrong user or password"}},
		{Addr: "127.0.0.1:7072", Serving: true, LoggedIn: true, Modules: 7},
	}
	code, body := do()
	if code != http.StatusOK || !strings.Contains(body, `"logged_in":false`) || !strings.Contains(body, `"modules":7`) || strings.Contains(body, "wrong user") {
		t.Fatalf("one usable master: %d %s", code, body)
	}
	hm.health = hm.health[:1]
	code, body = do()
	if code != http.StatusServiceUnavailable || !strings.Contains(body, `"master":"unavailable"`) {
		t.Fatalf("the only master refuses the login: %d %s", code, body)
	}
	if !errors.Is(hm.health[0].Err, relay.ErrLoginRefused) {
		t.Fatal("test setup")
	}
}
