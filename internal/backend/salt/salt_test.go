package salt

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/omserver/omserver-go/internal/backend"
	"github.com/omserver/omserver-go/internal/task"
)

// lockedBuffer collects log output from concurrent runs.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func newBackend(t *testing.T, f *fakeSaltAPI, mod func(*Config)) (*Backend, *lockedBuffer) {
	t.Helper()
	cfg := Config{URL: f.srv.URL, Username: f.user, Password: f.password, EAuth: f.eauth, CAFile: f.caFile}
	if mod != nil {
		mod(&cfg)
	}
	logs := &lockedBuffer{}
	b, err := New(cfg, zerolog.New(logs).Level(zerolog.DebugLevel))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(b.Close)
	return b, logs
}

func run(b *Backend, name, command string) task.HostResult {
	return b.Run(context.Background(), task.Host{IP: "192.0.2.10", Name: name}, []backend.Step{{Command: command}}, backend.Options{Timeout: 30 * time.Second})
}

func TestRunOKSendsDocumentedLowstate(t *testing.T) {
	f := newFakeSaltAPI(t)
	f.setMinion("web1", minionRuns)
	b, logs := newBackend(t, f, nil)

	res := run(b, "web1", "printf 'hello\\n'; printf 'warn' >&2")
	if res.Status != task.StatusOK || res.ExitCode != 0 || res.Stdout != "hello\n" || res.Stderr != "warn" || res.Error != "" {
		t.Fatalf("result = %+v", res)
	}
	if res.Host.Name != "web1" || res.Started.IsZero() || res.Duration <= 0 {
		t.Fatalf("host/timing not filled: %+v", res)
	}
	// A second run reuses the cached token.
	if res := run(b, "web1", "true"); res.Status != task.StatusOK {
		t.Fatalf("second run: %+v", res)
	}
	if n := f.loginCount(); n != 1 {
		t.Fatalf("logged in %d times, want 1 (token cached)", n)
	}
	runs := f.recorded()
	if len(runs) != 2 {
		t.Fatalf("recorded %d runs", len(runs))
	}
	c := runs[0].Chunk
	if c["client"] != "local" || c["tgt_type"] != "list" || c["fun"] != "cmd.run_all" {
		t.Fatalf("chunk = %v", c)
	}
	if tgt, _ := c["tgt"].([]any); len(tgt) != 1 || tgt[0] != "web1" {
		t.Fatalf("tgt = %v, want [web1]", c["tgt"])
	}
	arg, _ := c["arg"].([]any)
	if len(arg) != 1 || !regexp.MustCompile(`^exec /bin/sh -c 'printf '\\''hello\\n'\\''; printf '\\''warn'\\'' >&2' omserver-run-[0-9a-f]{16}$`).MatchString(arg[0].(string)) {
		t.Fatalf("arg = %q", c["arg"])
	}
	kw, _ := c["kwarg"].(map[string]any)
	if kw["python_shell"] != true || kw["shell"] != "/bin/sh" || kw["rstrip"] != false {
		t.Fatalf("kwarg = %v", kw)
	}
	if secs, _ := kw["timeout"].(float64); secs < 1+15 || secs > 30+15 {
		t.Fatalf("kwarg timeout = %v, want the host's remaining 1..30 s plus the 15 s backstop", kw["timeout"])
	}
	if _, set := c["timeout"]; set {
		t.Fatalf("without a connect timeout the master's own answer timeout applies; got %v", c["timeout"])
	}
	if runs[0].Token == "" || runs[0].Token != runs[1].Token {
		t.Fatalf("tokens = %q, %q", runs[0].Token, runs[1].Token)
	}
	if out := logs.String(); strings.Contains(out, f.password) || strings.Contains(out, runs[0].Token) {
		t.Fatalf("log holds a secret: %s", out)
	}
}

func TestRunNonZeroExit(t *testing.T) {
	f := newFakeSaltAPI(t)
	f.setMinion("db1", minionRuns)
	b, _ := newBackend(t, f, nil)
	res := b.Run(context.Background(), task.Host{Name: "db1"}, []backend.Step{
		{Command: "echo out; echo err >&2; exit 3"},
		{Command: "echo must-not-run"},
	}, backend.Options{})
	if res.Status != task.StatusFailed || res.ExitCode != 3 || res.Stdout != "out\n" || res.Stderr != "err\n" {
		t.Fatalf("result = %+v", res)
	}
	if !strings.Contains(res.Error, "exit status 3") {
		t.Fatalf("error = %q", res.Error)
	}
	if n := len(f.recorded()); n != 1 {
		t.Fatalf("%d calls; the step after a failure must not run", n)
	}
}

func TestMinionAnswers(t *testing.T) {
	tests := []struct {
		name    string
		mode    minionMode
		status  task.Status
		errPart string
	}{
		{"missing from return", minionAbsent, task.StatusUnreachable, "did not return"},
		{"false", minionFalse, task.StatusUnreachable, "did not return"},
		{"did not return string", minionNoReturn, task.StatusUnreachable, "Minion did not return"},
		{"function error string", minionErrString, task.StatusFailed, "'cmd.run_all' is not available."},
		{"no retcode", minionNoRetcode, task.StatusFailed, "no retcode"},
	}
	f := newFakeSaltAPI(t)
	b, _ := newBackend(t, f, nil)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f.setMinion("m-"+tc.name, tc.mode)
			res := run(b, "m-"+tc.name, "true")
			if res.Status != tc.status || !strings.Contains(res.Error, tc.errPart) || res.ExitCode != -1 {
				t.Fatalf("result = %+v, want %s with %q", res, tc.status, tc.errPart)
			}
		})
	}
}

func TestHostWithoutNameFails(t *testing.T) {
	f := newFakeSaltAPI(t)
	b, _ := newBackend(t, f, nil)
	res := b.Run(context.Background(), task.Host{IP: "192.0.2.1"}, []backend.Step{{Command: "true"}}, backend.Options{})
	if res.Status != task.StatusFailed || !strings.Contains(res.Error, "has none") {
		t.Fatalf("result = %+v", res)
	}
	if f.loginCount() != 0 || len(f.recorded()) != 0 {
		t.Fatal("a host without a name must not reach salt-api")
	}
}

func TestLoginRefused(t *testing.T) {
	f := newFakeSaltAPI(t)
	f.setMinion("web1", minionRuns)
	b, logs := newBackend(t, f, func(c *Config) { c.Password = "wrong-password" })
	res := run(b, "web1", "true")
	if res.Status != task.StatusFailed || !strings.Contains(res.Error, "salt-api refused login") || !strings.Contains(res.Error, `"saltapi"`) {
		t.Fatalf("result = %+v", res)
	}
	if len(f.recorded()) != 0 {
		t.Fatal("nothing may run after a refused login")
	}
	if strings.Contains(logs.String(), "wrong-password") || strings.Contains(res.Error, "wrong-password") {
		t.Fatal("password leaked into logs or the result")
	}
}

// The master forgets the token (salt-api restarted with its token store
// cleared): a 401 to a step's call may come after the job was published,
// so the command is not sent again; the host fails, what may have started
// is stopped, and the next run logs in again.
func TestRejectedTokenIsNeverAnsweredByResending(t *testing.T) {
	f := newFakeSaltAPI(t)
	f.setMinion("web1", minionRuns)
	b, _ := newBackend(t, f, nil)
	if res := run(b, "web1", "true"); res.Status != task.StatusOK {
		t.Fatalf("first run: %+v", res)
	}
	f.expireAllTokens()
	res := run(b, "web1", "echo again")
	if res.Status != task.StatusFailed || res.Stdout != "" ||
		!strings.Contains(res.Error, "salt-api rejected the token (HTTP 401: No permission -- see authorization schemes)") ||
		!strings.Contains(res.Error, "not sent again") || !strings.Contains(res.Error, "no remote command was left running") {
		t.Fatalf("after expiry: %+v", res)
	}
	if n := f.executed("echo again"); n != 0 {
		t.Fatalf("the refused command ran %d times", n)
	}
	if n := f.killCount(); n != 1 {
		t.Fatalf("%d stop calls, want 1", n)
	}
	if res := run(b, "web1", "echo third"); res.Status != task.StatusOK || res.Stdout != "third\n" {
		t.Fatalf("the run after: %+v", res)
	}
	if n := f.loginCount(); n != 2 {
		t.Fatalf("logins = %d, want 2 (the stop call's fresh token serves the next run)", n)
	}
}

// Salt issues tokens for token_expire (12 h by default). A cached token
// that would expire before the host's deadline plus the margin is replaced
// by a fresh login before the command is sent; a long enough one is
// reused.
func TestTokenMustOutliveTheHostDeadline(t *testing.T) {
	f := newFakeSaltAPI(t)
	f.ttl = 20 * time.Second
	f.setMinion("web1", minionRuns)
	b, _ := newBackend(t, f, func(c *Config) { c.TokenTTLMargin = 5 * time.Second })
	short := func(timeout time.Duration) task.HostResult {
		return b.Run(context.Background(), task.Host{Name: "web1"}, []backend.Step{{Command: "true"}}, backend.Options{Timeout: timeout})
	}
	if res := short(5 * time.Second); res.Status != task.StatusOK {
		t.Fatalf("first: %+v", res)
	}
	if res := short(5 * time.Second); res.Status != task.StatusOK || f.loginCount() != 1 {
		t.Fatalf("second: %+v, %d logins; the token lives long enough, reuse it", res, f.loginCount())
	}
	f.mu.Lock()
	f.ttl = time.Hour
	f.mu.Unlock()
	// 30 s + 5 s is beyond the cached token's 20 s: log in first.
	if res := short(30 * time.Second); res.Status != task.StatusOK || f.loginCount() != 2 {
		t.Fatalf("long: %+v, %d logins; want a fresh login before sending", res, f.loginCount())
	}
	runs := f.recorded()
	if runs[len(runs)-1].Token == runs[0].Token {
		t.Fatal("the long run used the short token")
	}
}

// When even a fresh token dies before the host's deadline (salt's
// token_expire is shorter than the run may last), nothing is sent: the job
// could outlive its token.
func TestTokenShorterThanTheRunSendsNothing(t *testing.T) {
	f := newFakeSaltAPI(t)
	f.ttl = 30 * time.Second
	f.setMinion("web1", minionRuns)
	b, _ := newBackend(t, f, func(c *Config) { c.TokenTTLMargin = time.Minute })
	res := run(b, "web1", "echo ran")
	if res.Status != task.StatusFailed || !strings.Contains(res.Error, "raise token_expire") || res.Stdout != "" {
		t.Fatalf("result = %+v", res)
	}
	if n := len(f.recorded()); n != 0 {
		t.Fatalf("%d calls sent", n)
	}
}

// The expiry is counted from the login on this clock: the salt master's
// clock may differ (here it is two hours behind, so its absolute expiry
// would look long past).
func TestTokenLifetimeIndependentOfClocks(t *testing.T) {
	f := newFakeSaltAPI(t)
	f.clockSkew = -2 * time.Hour
	f.setMinion("web1", minionRuns)
	b, _ := newBackend(t, f, nil)
	for i := 0; i < 2; i++ {
		if res := run(b, "web1", "true"); res.Status != task.StatusOK {
			t.Fatalf("run %d: %+v", i, res)
		}
	}
	if n := f.loginCount(); n != 1 {
		t.Fatalf("logins = %d, want 1", n)
	}
}

// The issue-7 case: the token dies while the command runs (salt-api's
// token store was cleared mid-job); salt's find_job poll then answers 401
// while the command runs on. The command ran exactly once (the counter on
// the target says so), was stopped, and the host failed with a clear
// message.
func TestTokenExpiresMidCommandRunsExactlyOnce(t *testing.T) {
	f := newFakeSaltAPI(t)
	f.setMinion("web1", minionRuns)
	b, _ := newBackend(t, f, nil)
	// An earlier run leaves the token cached, as on a busy master.
	if res := run(b, "web1", "true"); res.Status != task.StatusOK {
		t.Fatalf("earlier run: %+v", res)
	}
	dir := t.TempDir()
	counter, started, finished := filepath.Join(dir, "count"), filepath.Join(dir, "started"), filepath.Join(dir, "finished")
	command := "echo run >> '" + counter + "'; touch '" + started + "'; sleep 30; touch '" + finished + "'"
	done := make(chan task.HostResult, 1)
	go func() { done <- run(b, "web1", command) }()
	for i := 0; ; i++ {
		if _, err := os.Stat(started); err == nil {
			break
		}
		if i == 600 {
			t.Fatal("the command never started")
		}
		time.Sleep(50 * time.Millisecond)
	}
	f.expireAllTokens()
	var res task.HostResult
	select {
	case res = <-done:
	case <-time.After(25 * time.Second):
		t.Fatal("Run did not return after the 401")
	}
	if res.Status != task.StatusFailed || !strings.Contains(res.Error, "HTTP 401") ||
		!strings.Contains(res.Error, "may have started, so it was not sent again") ||
		!strings.Contains(res.Error, "the remote command was stopped") {
		t.Fatalf("result = %+v", res)
	}
	data, err := os.ReadFile(counter)
	if err != nil || string(data) != "run\n" {
		t.Fatalf("execution counter %q (%v), want exactly one run", data, err)
	}
	if n := f.executed(counter); n != 1 {
		t.Fatalf("salt-api started the command %d times", n)
	}
	time.Sleep(200 * time.Millisecond)
	if _, err := os.Stat(finished); err == nil {
		t.Fatal("the command was not stopped")
	}
}

// A 5xx after the call reached salt-api (here 504, salt's timeout waiting
// for the minion) may follow a published job: no resend, stop, fail.
func TestServerErrorAfterSendingStopsAndNeverResends(t *testing.T) {
	f := newFakeSaltAPI(t)
	f.setMinion("web1", minionRuns)
	f.status = http.StatusGatewayTimeout
	b, _ := newBackend(t, f, nil)
	res := run(b, "web1", "echo once")
	if res.Status != task.StatusFailed || !strings.Contains(res.Error, "HTTP 504 Gateway Timeout: The gateway server did not receive a timely response") ||
		!strings.Contains(res.Error, "not sent again") {
		t.Fatalf("result = %+v", res)
	}
	// The step's call, then the stop call (which got the 504 too).
	if n := len(f.recorded()); n != 2 {
		t.Fatalf("%d calls, want the step and one stop", n)
	}
	if !strings.Contains(res.Error, "stopping the remote command failed") {
		t.Fatalf("the failed stop is not reported: %q", res.Error)
	}
}

// Every call is refused, even with a token just issued (the eauth user
// may not run cmd.run_all): the step is not resent, and the stop call
// logs in once more, is refused too, and says what to check.
func TestRefusedEvenWithAFreshToken(t *testing.T) {
	f := newFakeSaltAPI(t)
	f.setMinion("web1", minionRuns)
	f.reject = true
	b, _ := newBackend(t, f, nil)
	res := run(b, "web1", "true")
	if res.Status != task.StatusFailed || !strings.Contains(res.Error, "not sent again") ||
		!strings.Contains(res.Error, "check the eauth user may run cmd.run_all") {
		t.Fatalf("result = %+v", res)
	}
	if n := f.loginCount(); n != 2 {
		t.Fatalf("logins = %d, want 2 (the step's, then one for the stop)", n)
	}
	if n := len(f.recorded()); n != 0 {
		t.Fatalf("%d calls got through", n)
	}
}

func TestConcurrentRunsShareOneLogin(t *testing.T) {
	f := newFakeSaltAPI(t)
	b, _ := newBackend(t, f, nil)
	const n = 20
	var wg sync.WaitGroup
	results := make([]task.HostResult, n)
	for i := 0; i < n; i++ {
		name := "node" + string(rune('a'+i))
		f.setMinion(name, minionRuns)
		wg.Add(1)
		go func(i int, name string) {
			defer wg.Done()
			results[i] = run(b, name, "echo "+name)
		}(i, name)
	}
	wg.Wait()
	for i, r := range results {
		if r.Status != task.StatusOK || r.Stdout != r.Host.Name+"\n" {
			t.Fatalf("run %d: %+v", i, r)
		}
	}
	if c := f.loginCount(); c != 1 {
		t.Fatalf("logins = %d, want 1", c)
	}
}

func TestMalformedAnswers(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		errPart string
	}{
		{"html", "<html>oops</html>", "not the documented JSON"},
		{"empty return", `{"return": []}`, "empty"},
		{"no return", `{"data": 1}`, "empty"},
		{"return of list", `{"return": [["web1"]]}`, "not an object"},
		{"result number", `{"return": [{"web1": 42}]}`, "not a cmd.run_all dictionary"},
		{"retcode text", `{"return": [{"web1": {"retcode": "zero", "stdout": ""}}]}`, "cmd.run_all dictionary"},
		{"retcode float", `{"return": [{"web1": {"retcode": 1.5, "stdout": ""}}]}`, "non-integer retcode"},
		{"truncated", `{"return": [{"web1": {"retcode": 0`, "not the documented JSON"},
	}
	f := newFakeSaltAPI(t)
	b, _ := newBackend(t, f, nil)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f.mu.Lock()
			f.rawReply = []byte(tc.body)
			f.mu.Unlock()
			res := run(b, "web1", "true")
			if res.Status != task.StatusFailed || !strings.Contains(res.Error, tc.errPart) {
				t.Fatalf("result = %+v, want failed with %q", res, tc.errPart)
			}
		})
	}
}

func TestHTTPErrorStatus(t *testing.T) {
	f := newFakeSaltAPI(t)
	f.status = http.StatusInternalServerError
	b, _ := newBackend(t, f, nil)
	res := run(b, "web1", "true")
	if res.Status != task.StatusFailed || !strings.Contains(res.Error, "HTTP 500 Internal Server Error: Server got itself in trouble") || strings.Contains(res.Error, "<") {
		t.Fatalf("result = %+v", res)
	}
}

func TestOutputCappedAndResponseLimited(t *testing.T) {
	f := newFakeSaltAPI(t)
	f.setMinion("web1", minionRuns)
	b, _ := newBackend(t, f, nil)
	res := b.Run(context.Background(), task.Host{Name: "web1"}, []backend.Step{{Command: "head -c 5000 /dev/zero | tr '\\0' a; echo; head -c 10 /dev/zero | tr '\\0' b >&2"}},
		backend.Options{OutputCap: 1000})
	if res.Status != task.StatusOK || len(res.Stdout) != 1000 || !res.StdoutTruncated || res.Stderr != "bbbbbbbbbb" || res.StderrTruncated {
		t.Fatalf("status %s, stdout %d bytes truncated=%v, stderr %q truncated=%v", res.Status, len(res.Stdout), res.StdoutTruncated, res.Stderr, res.StderrTruncated)
	}

	small, _ := newBackend(t, f, func(c *Config) { c.MaxResponseBytes = 4096 })
	res = run(small, "web1", "head -c 8000 /dev/zero | tr '\\0' a")
	if res.Status != task.StatusFailed || !strings.Contains(res.Error, "larger than the limit of 4096 bytes") {
		t.Fatalf("result = %+v", res)
	}
}

func TestCopyThenCommand(t *testing.T) {
	f := newFakeSaltAPI(t)
	f.setMinion("app1", minionRuns)
	b, _ := newBackend(t, f, nil)
	dir := t.TempDir()
	src := filepath.Join(dir, "src.conf")
	content := []byte("line 1\nbinary \x00\xff it's \"quoted\" $(id)\n")
	if err := os.WriteFile(src, content, 0o600); err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(dir, "target dir", "app's.conf")
	if err := os.Mkdir(filepath.Dir(dest), 0o755); err != nil {
		t.Fatal(err)
	}
	res := b.Run(context.Background(), task.Host{Name: "app1"}, []backend.Step{{
		Copy:    &backend.Copy{Src: src, Dest: dest, Mode: 0o640},
		Command: "wc -c < '" + strings.ReplaceAll(dest, "'", `'\''`) + "'",
	}}, backend.Options{})
	if res.Status != task.StatusOK || strings.TrimSpace(res.Stdout) != "37" {
		t.Fatalf("result = %+v", res)
	}
	got, err := os.ReadFile(dest)
	if err != nil || !bytes.Equal(got, content) {
		t.Fatalf("copied %q (%v), want %q", got, err, content)
	}
	if st, _ := os.Stat(dest); st.Mode().Perm() != 0o640 {
		t.Fatalf("mode = %v, want 0640", st.Mode().Perm())
	}
	leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(dest), ".omserver-copy.*"))
	if len(leftovers) != 0 {
		t.Fatalf("temporary files left: %v", leftovers)
	}
	runs := f.recorded()
	if len(runs) != 2 {
		t.Fatalf("%d calls, want copy then command", len(runs))
	}
	kw := runs[0].Chunk["kwarg"].(map[string]any)
	if kw["stdin"] != base64.StdEncoding.EncodeToString(content) {
		t.Fatalf("copy stdin = %v", kw["stdin"])
	}

	// A copy-only step reports the copy's exit code.
	res = b.Run(context.Background(), task.Host{Name: "app1"}, []backend.Step{{Copy: &backend.Copy{Src: src, Dest: dest, Mode: 0o600}}}, backend.Options{})
	if res.Status != task.StatusOK || res.ExitCode != 0 {
		t.Fatalf("copy only: %+v", res)
	}
	if st, _ := os.Stat(dest); st.Mode().Perm() != 0o600 {
		t.Fatalf("mode after second copy = %v, want 0600", st.Mode().Perm())
	}
}

func TestCopyFailures(t *testing.T) {
	f := newFakeSaltAPI(t)
	f.setMinion("app1", minionRuns)
	b, _ := newBackend(t, f, nil)
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	if err := os.WriteFile(src, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		copy    backend.Copy
		errPart string
		calls   int
	}{
		{"missing source", backend.Copy{Src: filepath.Join(dir, "nope"), Dest: filepath.Join(dir, "d"), Mode: 0o644}, "no such file", 0},
		{"source is a directory", backend.Copy{Src: dir, Dest: filepath.Join(dir, "d"), Mode: 0o644}, "not a regular file", 0},
		{"relative destination", backend.Copy{Src: src, Dest: "etc/x", Mode: 0o644}, "clean absolute", 0},
		{"unclean destination", backend.Copy{Src: src, Dest: "/tmp/../etc/x", Mode: 0o644}, "clean absolute", 0},
		{"destination directory missing", backend.Copy{Src: src, Dest: filepath.Join(dir, "no-such-dir", "f"), Mode: 0o644}, "exit status", 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := len(f.recorded())
			res := b.Run(context.Background(), task.Host{Name: "app1"}, []backend.Step{{Copy: &tc.copy, Command: "echo ran"}}, backend.Options{})
			if res.Status != task.StatusFailed || !strings.Contains(res.Error, tc.errPart) || strings.Contains(res.Stdout, "ran") {
				t.Fatalf("result = %+v, want failed with %q", res, tc.errPart)
			}
			if calls := len(f.recorded()) - before; calls != tc.calls {
				t.Fatalf("%d calls to salt-api, want %d", calls, tc.calls)
			}
		})
	}
}

// waitForTag returns the tag of the first recorded command once a process
// carrying it runs.
func waitForTag(t *testing.T, f *fakeSaltAPI) string {
	t.Helper()
	re := regexp.MustCompile(`omserver-run-([0-9a-f]{16})$`)
	for i := 0; i < 600; i++ {
		if runs := f.recorded(); len(runs) > 0 {
			arg := runs[0].Chunk["arg"].([]any)[0].(string)
			m := re.FindStringSubmatch(arg)
			if m == nil {
				t.Fatalf("command not tagged: %q", arg)
			}
			if len(tagged(m[1])) > 0 {
				return m[1]
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("the tagged command never started")
	return ""
}

// tagged lists live (not zombie) processes whose command line holds tag.
func tagged(tag string) []string {
	var pids []string
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		cmdline, err := os.ReadFile(filepath.Join(d, "cmdline"))
		if err != nil || !bytes.Contains(cmdline, []byte("omserver-run-"+tag)) {
			continue
		}
		if alive(d) {
			pids = append(pids, filepath.Base(d))
		}
	}
	return pids
}

func alive(procDir string) bool {
	stat, err := os.ReadFile(filepath.Join(procDir, "stat"))
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(stat, ')')
	return i >= 0 && i+2 < len(stat) && stat[i+2] != 'Z'
}

// waitGone waits (bounded) until pid is gone or a zombie.
func waitGone(t *testing.T, pid string) {
	t.Helper()
	for i := 0; i < 400; i++ {
		if !alive("/proc/" + pid) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("process %s still runs on the minion", pid)
}

// stopCase runs a long command whose background child writes its pid,
// stops the run with stop, and checks the whole tree is gone.
func stopCase(t *testing.T, opts backend.Options, stop func(cancel context.CancelFunc)) task.HostResult {
	t.Helper()
	f := newFakeSaltAPI(t)
	f.setMinion("web1", minionRuns)
	b, _ := newBackend(t, f, nil)
	pidFile := filepath.Join(t.TempDir(), "child.pid")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan task.HostResult, 1)
	go func() {
		done <- b.Run(ctx, task.Host{Name: "web1"}, []backend.Step{{Command: "sleep 297 & echo $! > '" + pidFile + "'; sleep 298; echo finished"}}, opts)
	}()
	tag := waitForTag(t, f)
	for i := 0; i < 600; i++ { // the child's pid is written once it runs
		if data, err := os.ReadFile(pidFile); err == nil && bytes.HasSuffix(data, []byte("\n")) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	stop(cancel)
	var res task.HostResult
	select {
	case res = <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("Run did not return")
	}
	child, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	waitGone(t, strings.TrimSpace(string(child)))
	for _, pid := range tagged(tag) {
		waitGone(t, pid)
	}
	if strings.Contains(res.Stdout, "finished") {
		t.Fatal("the command ran to its end")
	}
	return res
}

func TestCancellationStopsRemoteCommand(t *testing.T) {
	res := stopCase(t, backend.Options{}, func(cancel context.CancelFunc) { cancel() })
	if res.Status != task.StatusCancelled || !strings.Contains(res.Error, "the remote command was stopped") {
		t.Fatalf("result = %+v", res)
	}
}

func TestTimeoutStopsRemoteCommand(t *testing.T) {
	// The timeout must leave a loaded machine time to log in and start
	// the command, which the test waits to see running before it expires.
	res := stopCase(t, backend.Options{Timeout: 5 * time.Second, ConnectTimeout: 2500 * time.Millisecond}, func(context.CancelFunc) {})
	if res.Status != task.StatusTimeout || !strings.Contains(res.Error, "the remote command was stopped") {
		t.Fatalf("result = %+v", res)
	}
}

func TestRunChunkTimeouts(t *testing.T) {
	f := newFakeSaltAPI(t)
	f.setMinion("web1", minionRuns)
	b, _ := newBackend(t, f, nil)
	res := b.Run(context.Background(), task.Host{Name: "web1"}, []backend.Step{{Command: "true"}},
		backend.Options{Timeout: 10 * time.Second, ConnectTimeout: 2500 * time.Millisecond})
	if res.Status != task.StatusOK {
		t.Fatalf("result = %+v", res)
	}
	runs := f.recorded()
	kwTimeout, _ := runs[0].Chunk["kwarg"].(map[string]any)["timeout"].(float64)
	if kwTimeout < 1+15 || kwTimeout > 10+15 {
		t.Fatalf("cmd.run_all timeout kwarg = %v, want the host's remaining 1..10 s plus the 15 s backstop", kwTimeout)
	}
	if runs[0].Chunk["timeout"] != float64(3) {
		t.Fatalf("lowstate timeout = %v, want the connect timeout rounded up (3)", runs[0].Chunk["timeout"])
	}
}

func TestAlreadyCancelledRunSendsNothing(t *testing.T) {
	f := newFakeSaltAPI(t)
	f.setMinion("web1", minionRuns)
	b, _ := newBackend(t, f, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res := b.Run(ctx, task.Host{Name: "web1"}, []backend.Step{{Command: "true"}}, backend.Options{})
	if res.Status != task.StatusCancelled || !strings.Contains(res.Error, "before it started") {
		t.Fatalf("result = %+v", res)
	}
	if f.loginCount() != 0 || len(f.recorded()) != 0 {
		t.Fatal("a cancelled run contacted salt-api")
	}
}

func TestServerCAMismatchRefused(t *testing.T) {
	f := newFakeSaltAPI(t)
	f.setMinion("web1", minionRuns)
	otherCA := filepath.Join(t.TempDir(), "other.pem")
	// httptest servers share one built-in certificate, so a different CA is
	// made by hand: any self-signed certificate that did not sign f's.
	if err := os.WriteFile(otherCA, selfSignedPEM(t), 0o600); err != nil {
		t.Fatal(err)
	}
	b, _ := newBackend(t, f, func(c *Config) { c.CAFile = otherCA })
	res := run(b, "web1", "true")
	if res.Status != task.StatusFailed || !strings.Contains(res.Error, "certificate") {
		t.Fatalf("result = %+v", res)
	}
	if f.loginCount() != 0 {
		t.Fatal("credentials were sent to an unverified server")
	}
}

func TestSaltAPIDown(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	b, err := New(Config{URL: "https://" + addr, Username: "u", Password: "p"}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	res := run(b, "web1", "true")
	if res.Status != task.StatusFailed || !strings.Contains(res.Error, "unreachable") || !strings.Contains(res.Error, "refused") {
		t.Fatalf("result = %+v", res)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	ok := Config{URL: "https://127.0.0.1:8000", Username: "u", Password: "p"}
	tests := []struct {
		name    string
		mod     func(*Config)
		errPart string
	}{
		{"empty url", func(c *Config) { c.URL = "" }, "URL is empty"},
		{"bad scheme", func(c *Config) { c.URL = "ftp://x" }, "https://"},
		{"no host", func(c *Config) { c.URL = "https://" }, "no host"},
		{"credentials in url", func(c *Config) { c.URL = "https://u:p@x" }, "credentials"},
		{"unparsable", func(c *Config) { c.URL = "https://x:port:9" }, "salt-api URL"},
		{"no user", func(c *Config) { c.Username = "" }, "username"},
		{"no password", func(c *Config) { c.Password = "" }, "password"},
		{"negative timeout", func(c *Config) { c.Timeout = -1 }, "negative"},
		{"missing ca", func(c *Config) { c.CAFile = filepath.Join(dir, "none") }, "CA file"},
		{"ca not pem", func(c *Config) { c.CAFile = notPEM }, "no PEM"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := ok
			tc.mod(&cfg)
			b, err := New(cfg, zerolog.Nop())
			if err == nil || !strings.Contains(err.Error(), tc.errPart) || b != nil {
				t.Fatalf("New = %v, %v; want error with %q", b, err, tc.errPart)
			}
		})
	}
	b, err := New(ok, zerolog.Nop())
	if err != nil || b.cfg.EAuth != "pam" || b.Name() != "salt" {
		t.Fatalf("defaults: %v %+v", err, b)
	}
}

func TestDecodeReturnKeepsStrings(t *testing.T) {
	body, _ := json.Marshal(map[string]any{"return": []any{map[string]any{"a": map[string]any{"pid": 7, "retcode": 0, "stdout": "é\u2028<", "stderr": ""}}}})
	ret, err := decodeReturn(body)
	if err != nil {
		t.Fatal(err)
	}
	r := minionResult(ret, "a")
	if r.status != task.StatusOK || r.stdout != "é\u2028<" {
		t.Fatalf("%+v", r)
	}
}

func TestInvalidUTF8Refused(t *testing.T) {
	f := newFakeSaltAPI(t)
	f.setMinion("web1", minionRuns)
	b, _ := newBackend(t, f, nil)
	src := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(src, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, step := range []backend.Step{
		{Command: "echo \xff"},
		{Copy: &backend.Copy{Src: src, Dest: "/tmp/\xff", Mode: 0o644}},
	} {
		res := b.Run(context.Background(), task.Host{Name: "web1"}, []backend.Step{step}, backend.Options{})
		if res.Status != task.StatusFailed || !strings.Contains(res.Error, "not valid UTF-8") {
			t.Fatalf("result = %+v", res)
		}
	}
	if n := len(f.recorded()); n != 0 {
		t.Fatalf("%d calls sent; an altered command must never be sent", n)
	}
}
