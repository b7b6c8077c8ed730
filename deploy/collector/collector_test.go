package collector

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/rs/zerolog"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/crypto/ssh"

	"github.com/omserver/omserver-go/internal/store"
	"github.com/omserver/omserver-go/internal/task"
	"github.com/omserver/omserver-go/internal/testutil/browsertest"
	"github.com/omserver/omserver-go/internal/testutil/sshdtest"
	"github.com/omserver/omserver-go/internal/web"
)

// The collector end to end: the omstest account logs in over the real
// loopback sshd and types commands into an interactive bash that loads the
// collector the way /etc/profile.d would (through --rcfile, so the
// account's home stays free of rc files); the commands reach the real web
// tier through omaudit-send and curl (and wget), and show up in the API and
// on the 安全审计 page in headless Chromium. While the web tier is away the
// shell goes on, the rows wait in a bounded spool, and the next command
// after it is back sends them.

const waitLimit = 40 * time.Second

// noMaster satisfies the web tier; this test runs no module.
type noMaster struct{}

func (noMaster) Dispatch(context.Context, task.Task, func(string) error, func(task.Event) error) (string, error) {
	return "", errors.New("no master in the collector test")
}
func (noMaster) Resume(context.Context, string, string, uint64, func(task.Event) error) error {
	return errors.New("no master in the collector test")
}
func (noMaster) Ack(context.Context, string, string, uint64) error { return nil }
func (noMaster) Continue(context.Context, string) error            { return nil }
func (noMaster) Cancel(context.Context, string) error              { return nil }
func (noMaster) Health(context.Context) error                      { return nil }

// gate stands in front of the ingest URL: "up" passes requests to the web
// tier, "hold" keeps them waiting until released, "down" answers 503.
type gate struct {
	next    http.Handler
	mu      sync.Mutex
	mode    string
	release chan struct{}
	held    atomic.Int32
	pulls   atomic.Int32
}

func (g *gate) set(mode string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.mode == "hold" && mode != "hold" {
		close(g.release)
	}
	if mode == "hold" {
		g.release = make(chan struct{})
	}
	g.mode = mode
}

func (g *gate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/omaudit/omaudit_pull/" {
		g.next.ServeHTTP(w, r)
		return
	}
	g.pulls.Add(1)
	g.mu.Lock()
	mode, release := g.mode, g.release
	g.mu.Unlock()
	switch mode {
	case "hold":
		g.held.Add(1)
		select {
		case <-release:
		case <-r.Context().Done():
		}
		http.Error(w, "web tier restarting", http.StatusServiceUnavailable)
	case "down":
		http.Error(w, "web tier restarting", http.StatusServiceUnavailable)
	default:
		g.next.ServeHTTP(w, r)
	}
}

// shell is an interactive bash on the sshd, fed line by line.
type shell struct {
	t    *testing.T
	in   io.WriteCloser
	gate *gate
	mu   sync.Mutex
	out  bytes.Buffer
}

func (sh *shell) Write(p []byte) (int, error) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return sh.out.Write(p)
}

func (sh *shell) output() string {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return sh.out.String()
}

// run types one command line and waits for the next prompt (the shell
// ran it, then its prompt hook), then for the sender the hook started to
// reach the web tier and finish: one command at a time, so the rows' order
// is the typing order. (Waiting for the request first matters: right after
// the prompt the sender may not have exec'd yet, and no process would
// carry its name.)
func (sh *shell) run(command string) {
	sh.t.Helper()
	before := sh.gate.pulls.Load()
	sh.enter(command)
	waitUntil(sh.t, "the sender's request for "+command, func() bool { return sh.gate.pulls.Load() > before })
	waitSenders(sh.t)
}

// type_ types one command line and waits for the next prompt only.
func (sh *shell) enter(command string) {
	sh.t.Helper()
	prompts := strings.Count(sh.output(), prompt)
	if _, err := fmt.Fprintf(sh.in, "%s\n", command); err != nil {
		sh.t.Fatalf("type %q: %v", command, err)
	}
	deadline := time.Now().Add(waitLimit)
	for strings.Count(sh.output(), prompt) <= prompts {
		if time.Now().After(deadline) {
			sh.t.Fatalf("no prompt after %q; output so far:\n%s", command, sh.output())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

const prompt = "e2e$ "

func (sh *shell) waitFor(s string) {
	sh.t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !strings.Contains(sh.output(), s) {
		if time.Now().After(deadline) {
			sh.t.Fatalf("the shell did not print %q; output so far:\n%s", s, sh.output())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func randomToken(prefix string) string {
	var b [24]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

func need(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			if testing.Short() {
				t.Skipf("%s not installed (-short)", tool)
			}
			t.Fatalf("the collector test needs %s: apt-get install %s", tool, tool)
		}
	}
}

func TestCollectorEndToEnd(t *testing.T) {
	need(t, "bash", "curl", "wget")
	sshd := sshdtest.Start(t)

	wt := newWebTier(t)
	ts, g, apiToken, ingestToken := wt.ts, wt.gate, wt.apiToken, wt.ingestToken
	const password = webPassword

	// The collector's files, readable by omstest; its spool and history
	// file in directories of its own.
	files, err := os.MkdirTemp("", "omaudit-collector-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(files) })
	if err := os.Chmod(files, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, mode := range map[string]os.FileMode{"omaudit-send": 0o755, "omaudit-hook.bash": 0o644, "omaudit.sh": 0o644} {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(files, name), b, mode); err != nil {
			t.Fatal(err)
		}
	}
	spoolDir := sshd.UserDir(t)
	home := sshd.UserDir(t)
	conf := filepath.Join(files, "omaudit.conf")
	writeConf := func(extra string) {
		t.Helper()
		c := fmt.Sprintf("OMAUDIT_URL='%s'\nOMAUDIT_TOKEN='%s'\nOMAUDIT_IP=127.0.0.1\nOMAUDIT_SPOOL_DIR='%s'\nOMAUDIT_SPOOL_MAX=5\nOMAUDIT_TIMEOUT=60\nOMAUDIT_CONNECT_TIMEOUT=3\n%s",
			ts.URL, ingestToken, spoolDir, extra)
		if err := os.WriteFile(conf, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeConf("")
	rc := filepath.Join(files, "rc")
	rcText := fmt.Sprintf("PS1='"+prompt+"'\nHISTFILE='%s/history'\nexport OMAUDIT_CONF='%s' OMAUDIT_SEND='%s/omaudit-send' OMAUDIT_HOOK='%s/omaudit-hook.bash'\n. '%s/omaudit.sh'\n",
		home, conf, files, files, files)
	if err := os.WriteFile(rc, []byte(rcText), 0o644); err != nil {
		t.Fatal(err)
	}

	client := sshd.Dial(t, sshd.Addr)
	// /etc/profile.d is read by sh logins too: the snippet must do nothing there.
	sess, err := client.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	out, err := sess.CombinedOutput(fmt.Sprintf("OMAUDIT_HOOK='%s/omaudit-hook.bash' sh -c '. %s/omaudit.sh && echo sh-ok'", files, files))
	if err != nil || string(out) != "sh-ok\n" {
		t.Fatalf("sourcing the snippet in sh: %q, %v", out, err)
	}

	sess, err = client.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sess.Close() })
	if err := sess.RequestPty("xterm", 40, 200, ssh.TerminalModes{ssh.ECHO: 0}); err != nil {
		t.Fatal(err)
	}
	sh := &shell{t: t, gate: g}
	sess.Stdout, sess.Stderr = sh, sh
	if sh.in, err = sess.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := sess.Start("exec bash --noprofile --noediting --rcfile " + rc + " -i"); err != nil {
		t.Fatal(err)
	}
	sh.waitFor(prompt)

	// --- the web tier is up: each command arrives, in order ---
	typed := []string{
		"cd /tmp && ls -d . > /dev/null",
		"echo '<script>window.__xss=1</script>' > /dev/null",
		"printf '%s\\n' 你好 | wc -c",
	}
	for _, c := range typed {
		sh.run(c)
	}
	rows := waitRows(t, ts.URL, apiToken, 3)
	for i, r := range rows {
		if r.Command != typed[i] || r.User != sshdtest.TestUser || r.IP != "127.0.0.1" {
			t.Fatalf("row %d = %+v; want %q by %s from 127.0.0.1", i, r, typed[i], sshdtest.TestUser)
		}
		if i > 0 && r.HistoryID != rows[i-1].HistoryID+1 {
			t.Fatalf("history ids not consecutive: %d after %d", r.HistoryID, rows[i-1].HistoryID)
		}
		if _, err := time.Parse("2006-01-02 15:04:05", r.At); err != nil {
			t.Fatalf("row time %q: %v", r.At, err)
		}
	}
	// Just Enter runs no command: nothing is sent again.
	pulls := g.pulls.Load()
	sh.enter("")
	sh.enter("")
	waitSenders(t)
	if n := len(listRows(t, ts.URL, apiToken)); n != 3 || g.pulls.Load() != pulls {
		t.Fatalf("an empty line was reported: %d rows, %d requests", n, g.pulls.Load()-pulls)
	}
	// The shell's history file holds nothing from us but the commands.
	if st, err := os.Stat(filepath.Join(home, ".bashrc")); err == nil {
		t.Fatalf("an rc file appeared in the test home: %v", st.Name())
	}

	// --- and on the 安全审计 page: watch, and a new command shows up live ---
	bctx := browsertest.New(t, 90*time.Second)
	err = chromedp.Do(bctx,
		chromedp.Navigate(ts.URL+"/login?next=/omaudit/"),
		chromedp.SendKeys(chromedp.CSS(`#username`), "auditor"),
		chromedp.SendKeys(chromedp.CSS(`#password`), password),
		chromedp.Click(chromedp.CSS(`#login-submit`)),
		chromedp.WaitReady(chromedp.CSS(`#fun-categ option[value="11"]`)),
		browsertest.Choose("#fun-categ", "11"),
		chromedp.WaitReady(chromedp.CSS(`#app-categ option[value="1"]`)),
		browsertest.Choose("#app-categ", "1"),
		chromedp.WaitReady(chromedp.CSS(`#servers option[value="127.0.0.1"]`)),
		browsertest.Choose("#servers", "127.0.0.1"),
		chromedp.Click(chromedp.CSS(`#watch`)),
		chromedp.Poll[chromedp.Void](`document.querySelectorAll('#audit-stream .audit-row').length === 3`),
	)
	if err != nil {
		t.Fatalf("watching on the page: %v", err)
	}
	sh.run("uname -s > /dev/null")
	err = chromedp.Do(bctx,
		chromedp.Poll[chromedp.Void](`document.querySelectorAll('#audit-stream .audit-row').length === 4`),
	)
	if err != nil {
		pane, _ := chromedp.Run(context.WithoutCancel(bctx), chromedp.Evaluate[string](`document.querySelector('#audit-stream').innerText`))
		t.Fatalf("the new command did not show live: %v; pane:\n%s", err, pane)
	}
	pane, _ := chromedp.Run(bctx, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll('#audit-stream .audit-row .command')).map(e => e.textContent)`))
	if len(pane) != 4 || pane[0] != "uname -s > /dev/null" || pane[3] != typed[0] {
		t.Fatalf("live pane, newest first: %q", pane)
	}
	xss, _ := chromedp.Run(bctx, chromedp.Evaluate[bool](`window.__xss !== undefined`))
	found, _ := chromedp.Run(bctx, chromedp.Evaluate[bool](`Array.from(document.querySelectorAll('#audit-stream .command')).some(e => e.textContent === `+browsertest.JSString(typed[1])+`)`))
	if xss || !found {
		t.Fatalf("the command with <script> is not shown as text (ran: %v, found: %v)", xss, found)
	}
	liveUser, _ := chromedp.Run(bctx, chromedp.TextContent(chromedp.CSS(`#audit-stream .audit-row:first-child .user`)))
	if liveUser != sshdtest.TestUser {
		t.Fatalf("live row user %q", liveUser)
	}

	// --- the web tier hangs: the shell goes on while a send waits ---
	holdPulls := g.pulls.Load()
	g.set("hold")
	sh.enter("echo held-1 > /dev/null")
	waitUntil(t, "a held ingest request", func() bool { return g.held.Load() >= 1 })
	sh.enter("echo held-2 > /dev/null")
	// The shell answered while the first row's request hung. Now the web
	// tier is down: the hung request gets 503 and the rows stay spooled.
	g.set("down")
	// held-2's sender waited for held-1's to let go of the spool, then
	// tried once itself.
	waitUntil(t, "both held senders' requests", func() bool { return g.pulls.Load() >= holdPulls+2 })
	waitSenders(t)

	// --- down: more commands; the spool keeps the newest 5 ---
	for i := 1; i <= 5; i++ {
		sh.run(fmt.Sprintf("echo down-%d > /dev/null", i))
	}
	u, err := user.Lookup(sshdtest.TestUser)
	if err != nil {
		t.Fatal(err)
	}
	spool := filepath.Join(spoolDir, u.Uid+".spool")
	b, err := os.ReadFile(spool)
	if err != nil {
		t.Fatalf("the spool: %v", err)
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(lines) != 5 {
		t.Fatalf("the spool holds %d lines, want the bound of 5:\n%s", len(lines), b)
	}
	if fi, _ := os.Stat(spool); fi.Mode().Perm() != 0o600 {
		t.Fatalf("spool mode %v, want 0600", fi.Mode().Perm())
	}
	if n := len(listRows(t, ts.URL, apiToken)); n != 4 {
		t.Fatalf("rows stored while down: %d, want the 4 from before", n)
	}

	// --- back up: the next command sends the spool, then itself ---
	g.set("up")
	sh.run("echo back > /dev/null")
	rows = waitRows(t, ts.URL, apiToken, 4+5)
	var got []string
	for _, r := range rows[4:] {
		got = append(got, strings.TrimSuffix(strings.TrimPrefix(r.Command, "echo "), " > /dev/null"))
	}
	// The spool kept the newest 5 (held-1, held-2 and down-1 were dropped),
	// and sent them oldest first.
	if strings.Join(got, ",") != "down-2,down-3,down-4,down-5,back" {
		t.Fatalf("rows after the outage: %q", got)
	}
	if b, _ := os.ReadFile(spool); len(b) != 0 {
		t.Fatalf("the spool still holds:\n%s", b)
	}

	// --- wget instead of curl ---
	writeConf("OMAUDIT_HTTP=wget\n")
	sh.run("echo via-wget > /dev/null")
	rows = waitRows(t, ts.URL, apiToken, 10)
	if last := rows[len(rows)-1]; last.Command != "echo via-wget > /dev/null" {
		t.Fatalf("wget row: %+v", last)
	}
	writeConf("")
	// A row the web tier refuses for good (400: a user name with a space)
	// is dropped, not kept in the spool to be sent again forever.
	sess2, err := client.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	if out, err := sess2.CombinedOutput(fmt.Sprintf("OMAUDIT_CONF='%s' '%s/omaudit-send' 7 'bad user' '2026-01-02 03:04:05' ls", conf, files)); err != nil || len(out) != 0 {
		t.Fatalf("sender: %q %v", out, err)
	}
	if b, _ := os.ReadFile(spool); len(b) != 0 {
		t.Fatalf("a refused row stayed in the spool:\n%s", b)
	}
	if n := len(listRows(t, ts.URL, apiToken)); n != 10 {
		t.Fatalf("%d rows after a refused one, want 10", n)
	}

	if _, err := fmt.Fprintf(sh.in, "exit\n"); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- sess.Wait() }()
	select {
	case <-done:
	case <-time.After(waitLimit):
		t.Fatal("the shell did not exit")
	}
	for _, f := range []string{".bashrc", ".profile", ".bash_profile"} {
		if _, err := os.Stat(filepath.Join(sshdtest.TestUserHome, f)); err == nil {
			t.Fatalf("%s appeared in %s", f, sshdtest.TestUserHome)
		}
	}
}

type apiRow struct {
	ID        int64  `json:"id"`
	HistoryID int64  `json:"history_id"`
	IP        string `json:"ip"`
	User      string `json:"user"`
	At        string `json:"at"`
	Command   string `json:"command"`
}

// listRows returns every stored row, oldest first, through the API.
func listRows(t *testing.T, base, token string) []apiRow {
	t.Helper()
	hr, _ := http.NewRequest("GET", base+"/api/v1/omaudit/history?host=127.0.0.1&limit=500", nil)
	hr.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out struct{ Rows []apiRow }
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("history API: %d %v", res.StatusCode, err)
	}
	for i, j := 0, len(out.Rows)-1; i < j; i, j = i+1, j-1 {
		out.Rows[i], out.Rows[j] = out.Rows[j], out.Rows[i]
	}
	return out.Rows
}

func waitRows(t *testing.T, base, token string, n int) []apiRow {
	t.Helper()
	var rows []apiRow
	waitUntil(t, fmt.Sprintf("%d rows", n), func() bool {
		rows = listRows(t, base, token)
		return len(rows) >= n
	})
	if len(rows) != n {
		t.Fatalf("%d rows, want %d: %+v", len(rows), n, rows)
	}
	return rows
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", waitLimit, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitSenders waits until no omaudit-send of the test account runs.
func waitSenders(t *testing.T) {
	t.Helper()
	if left := sshdtest.ProcessesMatching(t, "omaudit-send"); len(left) > 0 {
		deadline := time.Now().Add(waitLimit)
		for len(left) > 0 && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
			left = sshdtest.ProcessesMatching(t, "omaudit-send")
		}
		if len(left) > 0 {
			t.Fatalf("omaudit-send still running after %v: %v", waitLimit, left)
		}
	}
}

// webPassword is the auditor's password on the test web tier.
const webPassword = "correct horse battery"

// webTier is the real web tier on loopback, behind the gate, with
// 127.0.0.1 in its inventory, a viewer "auditor" (and an API token of
// theirs) and an ingest token bound to 127.0.0.1.
type webTier struct {
	ts                    *httptest.Server
	gate                  *gate
	apiToken, ingestToken string
}

func newWebTier(t *testing.T) webTier {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, store.DialectSQLite, filepath.Join(t.TempDir(), "web.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := st.SeedOriginal(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := st.UpsertServer(ctx, store.Server{IP: "127.0.0.1", Name: "loopback", OS: "Linux", AppID: 1}); err != nil {
		t.Fatal(err)
	}
	hash, _ := bcrypt.GenerateFromPassword([]byte(webPassword), bcrypt.MinCost)
	viewerID, err := st.CreateUser(ctx, store.User{Name: "auditor", Role: store.RoleViewer, PasswordHash: string(hash)})
	if err != nil {
		t.Fatal(err)
	}
	w := webTier{apiToken: randomToken("oms_"), ingestToken: randomToken("omi_")}
	if _, err := st.CreateAPIToken(ctx, viewerID, "test", store.HashToken(w.apiToken)); err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateIngestToken(ctx, "loopback", "127.0.0.1", store.HashToken(w.ingestToken), "admin"); err != nil {
		t.Fatal(err)
	}
	srv, err := web.New(web.Config{MasterName: "none"}, st, noMaster{}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	w.gate = &gate{next: srv.Handler(), mode: "up"}
	w.ts = httptest.NewServer(w.gate)
	t.Cleanup(func() {
		w.gate.set("up") // let held requests go
		w.ts.Close()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	})
	return w
}

// The sender on its own (as root here): a command longer than the limit
// is cut on a character boundary and marked, and the web tier takes it.
func TestSenderCutsLongCommands(t *testing.T) {
	need(t, "curl")
	w := newWebTier(t)
	dir := t.TempDir()
	conf := filepath.Join(dir, "omaudit.conf")
	c := fmt.Sprintf("OMAUDIT_URL='%s'\nOMAUDIT_TOKEN='%s'\nOMAUDIT_IP=127.0.0.1\nOMAUDIT_SPOOL_DIR='%s/spool'\n", w.ts.URL, w.ingestToken, dir)
	if err := os.WriteFile(conf, []byte(c), 0o600); err != nil {
		t.Fatal(err)
	}
	long := "echo " + strings.Repeat("审计", 1000) // 6005 bytes
	for _, tc := range []struct{ user, command string }{
		{"root", long},
		{"运维", "printf '%s' \"a&b=c?d#e+f%g\"\n\techo 'two lines'"},
	} {
		cmd := exec.Command("sh", "./omaudit-send", "42", tc.user, "2026-01-02 03:04:05", tc.command)
		cmd.Env = append(os.Environ(), "OMAUDIT_CONF="+conf)
		if out, err := cmd.CombinedOutput(); err != nil || len(out) != 0 {
			t.Fatalf("omaudit-send: %q %v", out, err)
		}
	}
	rows := listRows(t, w.ts.URL, w.apiToken)
	if len(rows) != 2 {
		t.Fatalf("%d rows", len(rows))
	}
	cut := rows[0].Command
	if !strings.HasSuffix(cut, " [truncated]") || len(cut) > 4000+len(" [truncated]") || !strings.HasPrefix(long, strings.TrimSuffix(cut, " [truncated]")) {
		t.Fatalf("cut command: %d bytes, ends %q", len(cut), cut[len(cut)-20:])
	}
	if rows[1].User != "运维" || rows[1].Command != "printf '%s' \"a&b=c?d#e+f%g\"\n\techo 'two lines'" {
		t.Fatalf("encoded row: %+v", rows[1])
	}
}

// install.sh lays the files out with the modes the collector relies on,
// writes a configuration the sender reads back exactly, and refuses what
// cannot work.
func TestInstall(t *testing.T) {
	root := t.TempDir()
	run := func(args ...string) (string, error) {
		out, err := exec.Command("sh", append([]string{"./install.sh", "--root", root}, args...)...).CombinedOutput()
		return string(out), err
	}
	url := "https://omserver.example.com/o'm?x=1&y=2"
	if out, err := run("--url", url, "--token", "omi_AbC-_9", "--ip", "2001:db8::7", "--bashrc"); err != nil {
		t.Fatalf("install: %v\n%s", err, out)
	}
	for path, mode := range map[string]os.FileMode{
		"usr/local/libexec/omaudit/omaudit-send":      0o755,
		"usr/local/libexec/omaudit/omaudit-hook.bash": 0o644,
		"etc/profile.d/omaudit.sh":                    0o644,
		"etc/omaudit/omaudit.conf":                    0o644,
		"var/spool/omaudit":                           0o733 | os.ModeSticky | os.ModeDir,
	} {
		fi, err := os.Stat(filepath.Join(root, path))
		if err != nil || fi.Mode() != mode {
			t.Errorf("%s: %v %v; want %v", path, fi.Mode(), err, mode)
		}
	}
	out, err := exec.Command("sh", "-c", `. "$1"; printf '%s|%s|%s' "$OMAUDIT_URL" "$OMAUDIT_TOKEN" "$OMAUDIT_IP"`, "sh", filepath.Join(root, "etc/omaudit/omaudit.conf")).Output()
	if err != nil || string(out) != url+"|omi_AbC-_9|2001:db8::7" {
		t.Fatalf("configuration reads back as %q (%v)", out, err)
	}
	rc, _ := os.ReadFile(filepath.Join(root, "etc/bash.bashrc"))
	if strings.Count(string(rc), ". /etc/profile.d/omaudit.sh") != 1 {
		t.Fatalf("bash.bashrc: %q", rc)
	}
	if out, err := run("--url", url, "--token", "omi_x", "--ip", "10.0.0.1", "--bashrc"); err != nil {
		t.Fatalf("second install: %v\n%s", err, out)
	}
	if rc, _ := os.ReadFile(filepath.Join(root, "etc/bash.bashrc")); strings.Count(string(rc), ". /etc/profile.d/omaudit.sh") != 1 {
		t.Fatalf("a second install hooked bash.bashrc twice: %q", rc)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--url", "omserver.example.com", "--token", "omi_x", "--ip", "10.0.0.1"}, "--url must be"},
		{[]string{"--url", url, "--token", "oms_apitoken", "--ip", "10.0.0.1"}, "ingest token (omi_"},
		{[]string{"--url", url, "--token", "omi_x'; rm -rf /", "--ip", "10.0.0.1"}, "characters"},
		{[]string{"--url", url, "--token", "omi_x", "--ip", "web1"}, "not an IP address"},
		{[]string{"--url", url, "--token"}, "--token needs a value"},
		{[]string{"--frobnicate"}, "unknown option"},
	} {
		out, err := run(tc.args...)
		if err == nil || !strings.Contains(out, tc.want) {
			t.Errorf("%v: %v %q; want a refusal with %q", tc.args, err, out, tc.want)
		}
	}
}

// Every file the collector ships parses in the shell that reads it: the
// profile.d snippet and the sender in POSIX sh (dash), the hook in bash.
func TestScriptsParse(t *testing.T) {
	need(t, "dash", "bash")
	for _, c := range [][]string{
		{"dash", "-n", "omaudit.sh"}, {"dash", "-n", "omaudit-send"}, {"dash", "-n", "install.sh"},
		{"bash", "-n", "omaudit-hook.bash"}, {"bash", "-n", "omaudit.sh"},
	} {
		if out, err := exec.Command(c[0], c[1:]...).CombinedOutput(); err != nil {
			t.Errorf("%s: %v\n%s", strings.Join(c, " "), err, out)
		}
	}
}
