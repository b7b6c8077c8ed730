package funcrpc

import (
	"bytes"
	"context"
	"encoding/base64"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/omserver/omserver-go/internal/backend"
	"github.com/omserver/omserver-go/internal/task"
)

// pki is the test's certmaster: one CA for minions and the overlord, and a
// rogue CA that signed nothing the minion trusts.
type pki struct {
	dir                 string
	ca, rogue           *testCA
	caFile, rogueCAFile string
	certFile, keyFile   string // the overlord (master), from ca
	rogueCert, rogueKey string // an overlord certificate from rogue
}

type env struct {
	pki   *pki
	funcd *fakeFuncd
	b     *Backend
	host  task.Host
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	p := &pki{dir: t.TempDir(), ca: newTestCA(t, "certmaster CA"), rogue: newTestCA(t, "rogue CA")}
	p.caFile = writeFile(t, p.dir, "ca.cert", p.ca.pem)
	p.rogueCAFile = writeFile(t, p.dir, "rogue.cert", p.rogue.pem)
	c, k, _ := p.ca.issue(t, "overlord", nil, nil)
	p.certFile, p.keyFile = writeFile(t, p.dir, "overlord.cert", c), writeFile(t, p.dir, "overlord.pem", k)
	c, k, _ = p.rogue.issue(t, "overlord", nil, nil)
	p.rogueCert, p.rogueKey = writeFile(t, p.dir, "rogue-overlord.cert", c), writeFile(t, p.dir, "rogue-overlord.pem", k)
	return p
}

// newEnv starts a minion named minion1 whose certificate has only a CN (as
// certmaster issues them) and a backend that reaches it through a host
// override; the host's IP is documentation data and never dialled.
func newEnv(t *testing.T, mod func(*Config, *pki)) *env {
	t.Helper()
	p := newPKI(t)
	_, _, minion := p.ca.issue(t, "minion1", nil, nil)
	f := newFakeFuncd(t, minion, p.ca)
	cfg := Config{CertFile: p.certFile, KeyFile: p.keyFile, CAFile: p.caFile, Hosts: map[string]string{"minion1": f.addr}}
	if mod != nil {
		mod(&cfg, p)
	}
	b, err := New(cfg, zerolog.Nop())
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return &env{pki: p, funcd: f, b: b, host: task.Host{IP: "192.0.2.7", Name: "minion1"}}
}

func (e *env) run(steps []backend.Step, opts backend.Options) task.HostResult {
	if opts.Timeout == 0 {
		opts.Timeout = 30 * time.Second
	}
	return e.b.Run(context.Background(), e.host, steps, opts)
}

var wrapped = regexp.MustCompile(`^timeout -k 5 (\d+) /bin/sh -c '(.*)'$`)

func TestCommandRunOK(t *testing.T) {
	e := newEnv(t, nil)
	res := e.run([]backend.Step{{Command: "echo hello; echo 'it''s' >&2"}}, backend.Options{})
	if res.Status != task.StatusOK || res.ExitCode != 0 || res.Stdout != "hello\n" || res.Stderr != "its\n" || res.Error != "" {
		t.Fatalf("result = %+v", res)
	}
	calls := e.funcd.recorded()
	if len(calls) != 1 || calls[0].Method != "command.run" || len(calls[0].Params) != 1 {
		t.Fatalf("calls = %+v", calls)
	}
	if calls[0].ClientCN != "overlord" {
		t.Fatalf("client certificate CN = %q", calls[0].ClientCN)
	}
	m := wrapped.FindStringSubmatch(calls[0].Params[0].str())
	if m == nil || m[2] != `echo hello; echo '\''it'\'''\''s'\'' >&2` {
		t.Fatalf("command sent = %q", calls[0].Params[0].str())
	}
	if m[1] == "0" || len(m[1]) > 2 {
		t.Fatalf("remote timeout %s s, want the remaining 1..30 s", m[1])
	}
}

func TestNonZeroExitStopsSteps(t *testing.T) {
	e := newEnv(t, nil)
	res := e.run([]backend.Step{{Command: "echo out; echo err >&2; exit 3"}, {Command: "echo never"}}, backend.Options{})
	if res.Status != task.StatusFailed || res.ExitCode != 3 || res.Stdout != "out\n" || res.Stderr != "err\n" || !strings.Contains(res.Error, "exit status 3") {
		t.Fatalf("result = %+v", res)
	}
	if n := len(e.funcd.recorded()); n != 1 {
		t.Fatalf("%d calls, want 1", n)
	}
}

func TestMinionErrors(t *testing.T) {
	tests := []struct {
		name    string
		mode    funcdMode
		raw     string
		errPart string
	}{
		{"fault", funcdNoSuchCall, "", "XML-RPC fault 1: <class 'func.minion.codes.InvalidMethodException'>:method command.run not found"},
		{"remote error", funcdRaises, "", "minion raised exceptions.OSError: [Errno 13] Permission denied"},
		{"http 500", funcdHTTPFailure, "", "HTTP 500"},
		{"not xml", funcdRawAnswer, "<html>nope", "XML-RPC answer"},
		{"wrong root", funcdRawAnswer, "<methodCall/>", "root element is <methodCall>"},
		{"two elements", funcdRawAnswer, string(pyResponse(pyArray(pyInt(0), pyString("x")))), "want [exit code, stdout, stderr]"},
		{"string exit code", funcdRawAnswer, string(pyResponse(pyArray(pyString("0"), pyString(""), pyString("")))), "exit code is string"},
		{"bad int", funcdRawAnswer, string(pyResponse("<value><int>x</int></value>")), "bad <int>"},
		{"fault without string", funcdRawAnswer, "<methodResponse><fault><value><struct></struct></value></fault></methodResponse>", "lacks a string faultString"},
		{"fault with text code", funcdRawAnswer, "<methodResponse><fault><value><struct><member><name>faultCode</name><value><string>7</string></value></member><member><name>faultString</name><value>denied</value></member></struct></value></fault></methodResponse>", "XML-RPC fault 7: denied"},
		{"truncated", funcdRawAnswer, "<?xml version='1.0'?>\n<methodResponse>\n<params>\n<param>\n<value><array><data>", "unexpected EOF"},
	}
	e := newEnv(t, nil)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e.funcd.set(tc.mode, []byte(tc.raw))
			res := e.run([]backend.Step{{Command: "true"}}, backend.Options{})
			if res.Status != task.StatusFailed || !strings.Contains(res.Error, tc.errPart) || res.ExitCode != -1 {
				t.Fatalf("result = %+v, want failed with %q", res, tc.errPart)
			}
		})
	}
}

func TestUnreachableClosedPort(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	e := newEnv(t, func(c *Config, _ *pki) { c.Hosts = map[string]string{"minion1": addr} })
	res := e.run([]backend.Step{{Command: "true"}}, backend.Options{})
	if res.Status != task.StatusUnreachable || !strings.Contains(res.Error, "refused") {
		t.Fatalf("result = %+v", res)
	}
}

func TestWrongClientCertRefused(t *testing.T) {
	e := newEnv(t, func(c *Config, p *pki) { c.CertFile, c.KeyFile = p.rogueCert, p.rogueKey })
	res := e.run([]backend.Step{{Command: "touch /nonexistent/never"}}, backend.Options{})
	if res.Status != task.StatusUnreachable || !strings.Contains(res.Error, "TLS") {
		t.Fatalf("result = %+v", res)
	}
	if n := len(e.funcd.recorded()); n != 0 {
		t.Fatalf("the minion served %d calls to an untrusted client", n)
	}
}

func TestServerCAMismatchRefused(t *testing.T) {
	e := newEnv(t, func(c *Config, p *pki) { c.CAFile = p.rogueCAFile })
	res := e.run([]backend.Step{{Command: "true"}}, backend.Options{})
	if res.Status != task.StatusUnreachable || !strings.Contains(res.Error, "not signed by the Func CA") {
		t.Fatalf("result = %+v", res)
	}
	if n := len(e.funcd.recorded()); n != 0 {
		t.Fatalf("%d calls reached an unverified minion", n)
	}
}

func TestMinionIdentityChecked(t *testing.T) {
	e := newEnv(t, nil)
	// The same minion, reached as another host: its certificate names minion1.
	e.b.hosts["web9"] = e.funcd.addr
	res := e.b.Run(context.Background(), task.Host{Name: "web9"}, []backend.Step{{Command: "true"}}, backend.Options{})
	if res.Status != task.StatusUnreachable || !strings.Contains(res.Error, `it is for "minion1"`) {
		t.Fatalf("result = %+v", res)
	}

	// A minion certificate with SANs is matched on them; a host without a
	// name is checked against the address dialled.
	p := newPKI(t)
	_, _, pair := p.ca.issue(t, "ignored-cn", []string{"app.example"}, []net.IP{net.IPv4(127, 0, 0, 1)})
	f := newFakeFuncd(t, pair, p.ca)
	_, port, _ := net.SplitHostPort(f.addr)
	b, err := New(Config{CertFile: p.certFile, KeyFile: p.keyFile, CAFile: p.caFile, Hosts: map[string]string{"app.example": f.addr}}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if res := b.Run(context.Background(), task.Host{Name: "app.example"}, []backend.Step{{Command: "true"}}, backend.Options{}); res.Status != task.StatusOK {
		t.Fatalf("SAN name: %+v", res)
	}
	b.cfg.Port, _ = strconv.Atoi(port)
	if res := b.Run(context.Background(), task.Host{IP: "127.0.0.1"}, []backend.Step{{Command: "true"}}, backend.Options{}); res.Status != task.StatusOK {
		t.Fatalf("SAN IP: %+v", res)
	}
}

func TestOutputCapAndResponseLimit(t *testing.T) {
	e := newEnv(t, nil)
	res := e.run([]backend.Step{{Command: "head -c 5000 /dev/zero | tr '\\0' a; printf bb >&2"}}, backend.Options{OutputCap: 1000})
	if res.Status != task.StatusOK || len(res.Stdout) != 1000 || !res.StdoutTruncated || res.Stderr != "bb" || res.StderrTruncated {
		t.Fatalf("status %s stdout %d truncated=%v stderr %q truncated=%v (%s)", res.Status, len(res.Stdout), res.StdoutTruncated, res.Stderr, res.StderrTruncated, res.Error)
	}

	small := newEnv(t, func(c *Config, _ *pki) { c.MaxResponseBytes = 4096 })
	res = small.run([]backend.Step{{Command: "head -c 8000 /dev/zero | tr '\\0' a"}}, backend.Options{})
	if res.Status != task.StatusFailed || !strings.Contains(res.Error, "larger than the limit of 4096 bytes") {
		t.Fatalf("result = %+v", res)
	}
}

func TestNonUTF8OutputSurvives(t *testing.T) {
	e := newEnv(t, nil)
	res := e.run([]backend.Step{{Command: `printf 'caf\351 ok'`}}, backend.Options{})
	if res.Status != task.StatusOK || res.Stdout != "caf\uFFFD ok" {
		t.Fatalf("result = %+v", res)
	}
}

func TestCopyThenCommand(t *testing.T) {
	e := newEnv(t, nil)
	dir := t.TempDir()
	content := []byte("key=value\n\x00\xff<&>\n")
	src := writeFile(t, dir, "app.conf", content)
	dest := filepath.Join(dir, "deploy", "new dir", "app.conf") // copyfile creates parents
	res := e.run([]backend.Step{{
		Copy:    &backend.Copy{Src: src, Dest: dest, Mode: 0o640},
		Command: "wc -c < '" + dest + "'",
	}}, backend.Options{})
	if res.Status != task.StatusOK || strings.TrimSpace(res.Stdout) != "16" {
		t.Fatalf("result = %+v", res)
	}
	got, err := os.ReadFile(dest)
	if err != nil || !bytes.Equal(got, content) {
		t.Fatalf("copied %q (%v)", got, err)
	}
	if st, _ := os.Stat(dest); st.Mode().Perm() != 0o640 {
		t.Fatalf("mode %v", st.Mode().Perm())
	}
	calls := e.funcd.recorded()
	if len(calls) != 2 || calls[0].Method != "copyfile.copyfile" || calls[1].Method != "command.run" {
		t.Fatalf("calls = %+v", calls)
	}
	p := calls[0].Params
	mode, _ := p[2].integer()
	uid, _ := p[3].integer()
	gid, _ := p[4].integer()
	if p[0].str() != dest || p[1].Base64 == nil || *p[1].Base64 != base64.StdEncoding.EncodeToString(content) || mode != 0o640 || uid != 0 || gid != 0 {
		t.Fatalf("copyfile params = %+v", p)
	}

	// Unchanged content answers 0, which is success.
	if res := e.run([]backend.Step{{Copy: &backend.Copy{Src: src, Dest: dest, Mode: 0o640}}}, backend.Options{}); res.Status != task.StatusOK || res.ExitCode != 0 {
		t.Fatalf("second copy: %+v", res)
	}
}

func TestCopyFailures(t *testing.T) {
	e := newEnv(t, nil)
	dir := t.TempDir()
	src := writeFile(t, dir, "f", []byte("x"))
	tests := []struct {
		name    string
		mode    funcdMode
		copy    backend.Copy
		errPart string
		calls   int
	}{
		{"minion cannot write", funcdCopyFails, backend.Copy{Src: src, Dest: filepath.Join(dir, "out"), Mode: 0o644}, "copyfile returned -1", 1},
		{"missing source", funcdRuns, backend.Copy{Src: filepath.Join(dir, "none"), Dest: filepath.Join(dir, "out"), Mode: 0o644}, "no such file", 0},
		{"relative destination", funcdRuns, backend.Copy{Src: src, Dest: "out", Mode: 0o644}, "clean absolute", 0},
		{"special mode bits", funcdRuns, backend.Copy{Src: src, Dest: filepath.Join(dir, "out"), Mode: os.ModeSetuid | 0o755}, "beyond permissions", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e.funcd.set(tc.mode, nil)
			before := len(e.funcd.recorded())
			res := e.run([]backend.Step{{Copy: &tc.copy, Command: "echo ran"}}, backend.Options{})
			if res.Status != task.StatusFailed || !strings.Contains(res.Error, tc.errPart) || res.Stdout != "" {
				t.Fatalf("result = %+v, want failed with %q", res, tc.errPart)
			}
			if n := len(e.funcd.recorded()) - before; n != tc.calls {
				t.Fatalf("%d calls, want %d", n, tc.calls)
			}
		})
	}
}

func TestCancellation(t *testing.T) {
	e := newEnv(t, nil)
	e.funcd.set(funcdHangs, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan task.HostResult, 1)
	go func() { done <- e.b.Run(ctx, e.host, []backend.Step{{Command: "sleep 600"}}, backend.Options{}) }()
	select {
	case <-e.funcd.hanging:
	case <-time.After(30 * time.Second):
		t.Fatal("the minion never got the call")
	}
	cancel()
	select {
	case res := <-done:
		if res.Status != task.StatusCancelled || !strings.Contains(res.Error, "funcd cannot stop the command") {
			t.Fatalf("result = %+v", res)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

func TestTimeout(t *testing.T) {
	e := newEnv(t, nil)
	e.funcd.set(funcdHangs, nil)
	res := e.b.Run(context.Background(), e.host, []backend.Step{{Command: "sleep 600"}}, backend.Options{Timeout: 300 * time.Millisecond})
	if res.Status != task.StatusTimeout {
		t.Fatalf("result = %+v", res)
	}
	calls := e.funcd.recorded()
	if len(calls) != 1 || !strings.HasPrefix(calls[0].Params[0].str(), "timeout -k 5 1 /bin/sh -c ") {
		t.Fatalf("the remote command must be bounded by the host's remaining time: %+v", calls)
	}
}

func TestAlreadyCancelledRunSendsNothing(t *testing.T) {
	e := newEnv(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res := e.b.Run(ctx, e.host, []backend.Step{{Command: "true"}}, backend.Options{})
	if res.Status != task.StatusCancelled || !strings.Contains(res.Error, "before it started") {
		t.Fatalf("result = %+v", res)
	}
	if n := len(e.funcd.recorded()); n != 0 {
		t.Fatalf("%d calls", n)
	}
}

func TestHostAddressing(t *testing.T) {
	e := newEnv(t, nil)
	res := e.b.Run(context.Background(), task.Host{}, []backend.Step{{Command: "true"}}, backend.Options{})
	if res.Status != task.StatusFailed || !strings.Contains(res.Error, "neither IP nor name") {
		t.Fatalf("result = %+v", res)
	}
	// An override keyed by IP is used when the name has none.
	e.b.hosts = map[string]string{"192.0.2.7": e.funcd.addr}
	if res := e.run([]backend.Step{{Command: "true"}}, backend.Options{}); res.Status != task.StatusOK {
		t.Fatalf("override by IP: %+v", res)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	p := newPKI(t)
	garbage := writeFile(t, p.dir, "garbage", []byte("not a certificate"))
	good := Config{CertFile: p.certFile, KeyFile: p.keyFile, CAFile: p.caFile}
	tests := []struct {
		name    string
		mod     func(*Config)
		errPart string
	}{
		{"no cert", func(c *Config) { c.CertFile = "" }, "all required"},
		{"no ca", func(c *Config) { c.CAFile = "" }, "all required"},
		{"missing cert file", func(c *Config) { c.CertFile = filepath.Join(p.dir, "none") }, "certificate and key"},
		{"key of another cert", func(c *Config) { c.KeyFile = p.rogueKey }, "certificate and key"},
		{"garbage key", func(c *Config) { c.KeyFile = garbage }, "certificate and key"},
		{"missing ca file", func(c *Config) { c.CAFile = filepath.Join(p.dir, "none") }, "CA file"},
		{"garbage ca", func(c *Config) { c.CAFile = garbage }, "no PEM"},
		{"bad port", func(c *Config) { c.Port = 70000 }, "outside 1..65535"},
		{"negative timeout", func(c *Config) { c.Timeout = -time.Second }, "negative"},
		{"bad override", func(c *Config) { c.Hosts = map[string]string{"a": "http://x/"} }, `host "a"`},
		{"bad override port", func(c *Config) { c.Hosts = map[string]string{"a": "x:0"} }, "bad host or port"},
		{"empty override", func(c *Config) { c.Hosts = map[string]string{"a": ""} }, "empty"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := good
			tc.mod(&cfg)
			b, err := New(cfg, zerolog.Nop())
			if err == nil || !strings.Contains(err.Error(), tc.errPart) || b != nil {
				t.Fatalf("New = %v, %v; want error with %q", b, err, tc.errPart)
			}
		})
	}
	b, err := New(Config{CertFile: p.certFile, KeyFile: p.keyFile, CAFile: p.caFile, Hosts: map[string]string{"a": "::1", "b": "[::1]:9", "c": "10.0.0.1"}}, zerolog.Nop())
	if err != nil || b.cfg.Port != DefaultPort || b.hosts["a"] != "[::1]:51234" || b.hosts["b"] != "[::1]:9" || b.hosts["c"] != "10.0.0.1:51234" || b.Name() != "func" {
		t.Fatalf("defaults: %v %+v", err, b)
	}
}

func TestUncarryableTextRefused(t *testing.T) {
	e := newEnv(t, nil)
	src := writeFile(t, t.TempDir(), "f", []byte("x"))
	tests := []struct {
		name    string
		step    backend.Step
		errPart string
	}{
		{"control character", backend.Step{Command: "echo \x01"}, "U+0001"},
		{"invalid utf-8", backend.Step{Command: "echo \xff"}, "not valid UTF-8"},
		{"destination", backend.Step{Copy: &backend.Copy{Src: src, Dest: "/tmp/a\x1bb", Mode: 0o644}}, "U+001B"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := e.run([]backend.Step{tc.step}, backend.Options{})
			if res.Status != task.StatusFailed || !strings.Contains(res.Error, tc.errPart) {
				t.Fatalf("result = %+v, want failed with %q", res, tc.errPart)
			}
		})
	}
	if n := len(e.funcd.recorded()); n != 0 {
		t.Fatalf("%d calls sent; an altered command must never be sent", n)
	}
}
