package omaudit

import (
	"context"
	"errors"
	"net/netip"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/rs/zerolog"

	"github.com/omserver/omserver-go/internal/apperr"
	"github.com/omserver/omserver-go/internal/store"
)

// Addresses here are inventory data; nothing is dialled.
const (
	hostA = "192.168.1.10"
	hostB = "192.168.1.20"
	proxy = "10.0.0.5"
)

type fixture struct {
	t     *testing.T
	st    *store.Store
	svc   *Service
	reg   *prometheus.Registry
	fleet string // fleet token
	tokA  string // token bound to hostA
}

func newFixture(t *testing.T, cfg Config) *fixture {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, store.DialectSQLite, filepath.Join(t.TempDir(), "a.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	fid, _ := st.CreateFunCateg(ctx, "Linux.Web")
	aid, _ := st.CreateAppCateg(ctx, store.AppCateg{FunCategID: fid, Name: "www"})
	for _, ip := range []string{hostA, hostB, "2001:db8::7"} {
		if _, err := st.UpsertServer(ctx, store.Server{IP: ip, Name: "h", AppID: aid}); err != nil {
			t.Fatal(err)
		}
	}
	reg := prometheus.NewRegistry()
	cfg.Registerer = reg
	svc, err := New(cfg, st, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, st: st, svc: svc, reg: reg}
	if _, f.fleet, err = svc.NewToken(ctx, "fleet", "", "admin"); err != nil {
		t.Fatal(err)
	}
	if _, f.tokA, err = svc.NewToken(ctx, "web1", hostA, "admin"); err != nil {
		t.Fatal(err)
	}
	return f
}

func submitted(ip, cmd string) map[string][]string {
	return url.Values{ParamHistoryID: {"7"}, ParamIP: {ip}, ParamUser: {"root"}, ParamDatetime: {"2026-01-02 03:04:05"}, ParamCommand: {cmd}}
}

func (f *fixture) rows() int {
	f.t.Helper()
	p, err := f.st.ListHistory(context.Background(), store.HistoryQuery{Limit: 500})
	if err != nil {
		f.t.Fatal(err)
	}
	return len(p.Rows)
}

func TestIngest(t *testing.T) {
	f := newFixture(t, Config{TrustedProxies: []netip.Prefix{netip.MustParsePrefix(proxy + "/32"), netip.MustParsePrefix("fd00::/8")}})
	ctx := context.Background()
	changed := f.svc.Changed()
	id, dup, err := f.svc.Ingest(ctx, Submission{Params: submitted(hostA, "uptime"), Token: f.tokA, Peer: hostA + ":40000"})
	if err != nil || dup || id <= 0 {
		t.Fatalf("per-host token: %d %v %v", id, dup, err)
	}
	select {
	case <-changed:
	default:
		t.Fatal("a stored row did not announce itself")
	}
	changed = f.svc.Changed()
	id2, dup, err := f.svc.Ingest(ctx, Submission{Params: submitted(hostA, "uptime"), Token: f.fleet, Peer: hostA + ":40001"})
	if err != nil || !dup || id2 != id {
		t.Fatalf("resend: %d %v %v; want %d, duplicate", id2, dup, err, id)
	}
	select {
	case <-changed:
		t.Fatal("a resent row announced itself again")
	default:
	}

	accepted := []struct {
		name string
		sub  Submission
	}{
		{"fleet token", Submission{Params: submitted(hostB, "a"), Token: f.fleet, Peer: hostB + ":1"}},
		{"IPv6 sender", Submission{Params: submitted("2001:db8::7", "b"), Token: f.fleet, Peer: "[2001:db8::7]:1"}},
		{"IPv4-mapped peer", Submission{Params: submitted(hostB, "c"), Token: f.fleet, Peer: "[::ffff:" + hostB + "]:1"}},
		{"through a trusted proxy", Submission{Params: submitted(hostB, "d"), Token: f.fleet, Peer: proxy + ":1", ForwardedFor: []string{hostB}}},
		{"client-written hops are ignored", Submission{Params: submitted(hostB, "e"), Token: f.fleet, Peer: proxy + ":1", ForwardedFor: []string{"6.6.6.6, " + hostB}}},
		{"chain of trusted proxies", Submission{Params: submitted(hostB, "f"), Token: f.fleet, Peer: "[fd00::1]:1", ForwardedFor: []string{hostB + ", " + proxy, "fd00::2"}}},
	}
	for _, tc := range accepted {
		if _, dup, err := f.svc.Ingest(ctx, tc.sub); err != nil || dup {
			t.Errorf("%s: %v (dup %v)", tc.name, err, dup)
		}
	}
	before := f.rows()
	refused := []struct {
		name string
		sub  Submission
		kind apperr.Kind
		is   error
	}{
		{"no token", Submission{Params: submitted(hostA, "x"), Peer: hostA + ":1"}, apperr.Unauthenticated, ErrNoToken},
		{"unknown token", Submission{Params: submitted(hostA, "x"), Token: "omi_nope", Peer: hostA + ":1"}, apperr.Unauthenticated, ErrBadToken},
		{"huge token", Submission{Params: submitted(hostA, "x"), Token: strings.Repeat("t", 4096), Peer: hostA + ":1"}, apperr.Unauthenticated, ErrBadToken},
		{"token of another host", Submission{Params: submitted(hostB, "x"), Token: f.tokA, Peer: hostB + ":1"}, apperr.Forbidden, ErrTokenForHost},
		{"sent from elsewhere", Submission{Params: submitted(hostA, "x"), Token: f.fleet, Peer: hostB + ":1"}, apperr.Forbidden, ErrWrongSender},
		{"forwarded-for from an untrusted peer", Submission{Params: submitted(hostA, "x"), Token: f.fleet, Peer: hostB + ":1", ForwardedFor: []string{hostA}}, apperr.Forbidden, ErrWrongSender},
		{"trusted proxy without forwarded-for", Submission{Params: submitted(hostA, "x"), Token: f.fleet, Peer: proxy + ":1"}, apperr.Forbidden, ErrWrongSender},
		{"forged last hop", Submission{Params: submitted(hostA, "x"), Token: f.fleet, Peer: proxy + ":1", ForwardedFor: []string{hostA + ", 6.6.6.6"}}, apperr.Forbidden, ErrWrongSender},
		{"garbage forwarded-for", Submission{Params: submitted(hostA, "x"), Token: f.fleet, Peer: proxy + ":1", ForwardedFor: []string{"unknown"}}, apperr.Forbidden, ErrWrongSender},
		{"host not in inventory", Submission{Params: submitted("192.168.7.7", "x"), Token: f.fleet, Peer: "192.168.7.7:1"}, apperr.Forbidden, ErrUnknownHost},
		{"bad row", Submission{Params: submitted(hostA, "\x1b[2J"), Token: f.fleet, Peer: hostA + ":1"}, apperr.Invalid, nil},
	}
	for _, tc := range refused {
		_, _, err := f.svc.Ingest(ctx, tc.sub)
		if err == nil || apperr.KindOf(err) != tc.kind || (tc.is != nil && !errors.Is(err, tc.is)) {
			t.Errorf("%s: err = %v (%v); want %v %v", tc.name, err, apperr.KindOf(err), tc.kind, tc.is)
		}
	}
	if after := f.rows(); after != before {
		t.Fatalf("refused submissions stored rows: %d -> %d", before, after)
	}
	if got := counter(t, f.svc.metrics.WithLabelValues("stored")); got != 1+float64(len(accepted)) {
		t.Errorf("stored metric %v", got)
	}
	if got := counter(t, f.svc.metrics.WithLabelValues("refused_forbidden")); got != 7 {
		t.Errorf("refused_forbidden metric %v", got)
	}
}

func TestIngestRateLimitPerHost(t *testing.T) {
	f := newFixture(t, Config{Rate: 0.001, Burst: 3})
	ctx := context.Background()
	for i := range 3 {
		if _, _, err := f.svc.Ingest(ctx, Submission{Params: submitted(hostA, "c"+string(rune('0'+i))), Token: f.fleet, Peer: hostA + ":1"}); err != nil {
			t.Fatalf("row %d within the burst: %v", i, err)
		}
	}
	_, _, err := f.svc.Ingest(ctx, Submission{Params: submitted(hostA, "over"), Token: f.fleet, Peer: hostA + ":1"})
	if !errors.Is(err, ErrRateLimited) || apperr.KindOf(err) != apperr.TooMany {
		t.Fatalf("over the burst: %v", err)
	}
	// Another host has its own bucket.
	if _, _, err := f.svc.Ingest(ctx, Submission{Params: submitted(hostB, "other"), Token: f.fleet, Peer: hostB + ":1"}); err != nil {
		t.Fatalf("second host: %v", err)
	}
	if n := f.rows(); n != 4 {
		t.Fatalf("%d rows stored, want 4", n)
	}
}

func TestHostLimiterPrunes(t *testing.T) {
	l := newHostLimiter(1, 2)
	now := time.Unix(1000, 0)
	base := netip.MustParseAddr("2001:db8::")
	a := base
	for range maxLimiterHosts {
		l.allow(a, now)
		a = a.Next()
	}
	if len(l.hosts) != maxLimiterHosts {
		t.Fatalf("%d hosts tracked", len(l.hosts))
	}
	// Idle hosts are forgotten once the map is full; a busy one is kept.
	l.allow(base, now.Add(time.Minute))
	l.allow(a, now.Add(time.Minute))
	if len(l.hosts) != 2 {
		t.Fatalf("after pruning %d hosts tracked, want 2", len(l.hosts))
	}
}

func TestPurge(t *testing.T) {
	f := newFixture(t, Config{Retention: 24 * time.Hour, PurgeBatch: 2})
	ctx := context.Background()
	for i := range 7 {
		if _, _, err := f.svc.Ingest(ctx, Submission{Params: submitted(hostA, "c"+string(rune('a'+i))), Token: f.fleet, Peer: hostA + ":1"}); err != nil {
			t.Fatal(err)
		}
	}
	// Five rows were stored two days ago.
	old := time.Now().Add(-48 * time.Hour).UTC().Truncate(time.Second)
	if _, err := f.st.DB().Exec(`UPDATE server_history SET db_datetime = ? WHERE history_command IN ('ca','cb','cc','cd','ce')`, old); err != nil {
		t.Fatal(err)
	}
	n, err := f.svc.Purge(ctx)
	if err != nil || n != 5 {
		t.Fatalf("purge = %d, %v; want 5", n, err)
	}
	if left := f.rows(); left != 2 {
		t.Fatalf("%d rows left, want 2", left)
	}
	keep := newFixture(t, Config{})
	if n, err := keep.svc.Purge(ctx); n != 0 || err != nil {
		t.Fatalf("no retention: purge = %d, %v", n, err)
	}
}

func TestParseProxies(t *testing.T) {
	got, err := ParseProxies([]string{"10.0.0.5", " 10.1.0.0/16 ", "::ffff:10.2.0.1", "fd00::/8", "10.3.0.9/24"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"10.0.0.5/32", "10.1.0.0/16", "10.2.0.1/32", "fd00::/8", "10.3.0.0/24"}
	for i, p := range got {
		if p.String() != want[i] {
			t.Errorf("proxy %d = %s, want %s", i, p, want[i])
		}
	}
	for _, bad := range []string{"proxy.example", "10.0.0.1/33", "fe80::1%eth0", ""} {
		if _, err := ParseProxies([]string{bad}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestNewTokenIsHashedAtRest(t *testing.T) {
	f := newFixture(t, Config{})
	ctx := context.Background()
	tok, secret, err := f.svc.NewToken(ctx, "  web2  ", hostB, "admin")
	if err != nil || !strings.HasPrefix(secret, TokenPrefix) || len(secret) < 40 || tok.Name != "web2" || tok.ServerIP != hostB {
		t.Fatalf("NewToken = %+v %q %v", tok, secret, err)
	}
	var stored int
	if err := f.st.DB().Get(&stored, `SELECT COUNT(*) FROM omaudit_tokens WHERE token_hash = ?`, secret); err != nil || stored != 0 {
		t.Fatalf("the secret itself is stored (%d, %v)", stored, err)
	}
	if _, _, err := f.svc.NewToken(ctx, "x", "web2", "admin"); apperr.KindOf(err) != apperr.Invalid {
		t.Fatalf("a host name instead of an IP: %v", err)
	}
	if _, _, err := f.svc.NewToken(ctx, "x", "192.168.99.1", "admin"); apperr.KindOf(err) != apperr.Invalid {
		t.Fatalf("a server outside the inventory: %v", err)
	}
}

func counter(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}
