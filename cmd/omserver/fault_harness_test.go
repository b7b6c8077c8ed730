package main

// The harness of the fault suite (fault_test.go): the real omserver
// binary, built once in TestMain, run as master and web processes that the
// tests kill (-9), stop (SIGTERM) and restart; a real sshd on loopback
// (internal/testutil/sshdtest) listening on 127.0.0.1-4, which stand for
// four target servers; a module whose command appends the address it runs
// on to a counter file, so a test can prove every command ran exactly
// once; and databases the tests can take away (their own mariadbd, a
// SQLite file on a small tmpfs).

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/omserver/omserver-go/internal/param"
	"github.com/omserver/omserver-go/internal/store"
	"github.com/omserver/omserver-go/internal/task"
	"github.com/omserver/omserver-go/internal/testutil/sshdtest"
	"github.com/omserver/omserver-go/internal/web"
)

// omserverBin is the binary under test, built by TestMain.
var omserverBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "omserver-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "fault suite: temp dir:", err)
		os.Exit(2)
	}
	bin := filepath.Join(dir, "omserver")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "fault suite: go build:", err)
		os.RemoveAll(dir)
		os.Exit(2)
	}
	omserverBin = bin
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// Fixed secrets of the processes under test.
const (
	faultSecret        = "fault-suite-secret-key-0123456789"
	faultRelayPassword = "fault-suite-relay-password"
	faultModule        = 9001
	faultSaltPassword  = "fault-suite-salt-password"
)

// faultEnv is one test's world: four target hosts behind one sshd, the
// counted module, and the processes started.
type faultEnv struct {
	t       *testing.T
	dir     string
	sshd    *sshdtest.Server
	hosts   []string // 127.0.0.1 ... 127.0.0.4
	count   string   // counter file: one line per command started, the address it ran on
	modules string   // the master's modules directory
	token   string   // API token of the operator "op"
}

func newFaultEnv(t *testing.T) *faultEnv {
	t.Helper()
	hosts := []string{"127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"}
	sshd := sshdtest.Start(t, sshdtest.WithListenAddrs(hosts...))
	e := &faultEnv{t: t, dir: t.TempDir(), sshd: sshd, hosts: hosts}
	e.count = filepath.Join(sshd.UserDir(t), "count")
	e.modules = filepath.Join(e.dir, "modules")
	if err := os.MkdirAll(e.modules, 0o755); err != nil {
		t.Fatal(err)
	}
	// The command records where it runs ($SSH_CONNECTION's third field is
	// the address sshd was reached on: the target; under the salt scenario
	// the fake minion's id), then works for the given number of seconds.
	module := fmt.Sprintf(`id: %d
name: counted work
caption: appends its target to a counter file, then works
timeout: 10m
params:
  - name: sys_param_1
    label: seconds
    type: number
    min: 0
    max: 600
    default: "1"
steps:
  - run: 'set -- $SSH_CONNECTION; echo "${3:-$OMS_FAKE_MINION}" >> %s; sleep {{sys_param_1}}; echo "worked on ${3:-$OMS_FAKE_MINION}"'
`, faultModule, e.count)
	if err := os.WriteFile(filepath.Join(e.modules, fmt.Sprintf("Mid_%d.yaml", faultModule)), []byte(module), 0o644); err != nil {
		t.Fatal(err)
	}
	return e
}

// seed prepares a web tier's database: schema, the original categories,
// the four hosts, the counted module and an operator with an API token.
func (e *faultEnv) seed(driver, dsn string) {
	e.t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, driver, dsn)
	if err != nil {
		e.t.Fatal(err)
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		e.t.Fatal(err)
	}
	if _, err := st.SeedOriginal(ctx); err != nil {
		e.t.Fatal(err)
	}
	for i, ip := range e.hosts {
		if _, err := st.UpsertServer(ctx, store.Server{IP: ip, Name: fmt.Sprintf("target%d", i+1), OS: "Linux", AppID: 1}); err != nil {
			e.t.Fatal(err)
		}
	}
	zero, max := int64(0), int64(600)
	if _, err := st.CreateModule(ctx, store.Module{ID: faultModule, Name: "counted work", Caption: "counter",
		Params: []param.Param{{Name: "sys_param_1", Label: "seconds", Type: param.Number, Min: &zero, Max: &max, Default: "1"}}}); err != nil {
		e.t.Fatal(err)
	}
	hash, err := web.HashPassword("operator-password-1")
	if err != nil {
		e.t.Fatal(err)
	}
	uid, err := st.CreateUser(ctx, store.User{Name: "op", PasswordHash: hash, Role: store.RoleOperator})
	if err != nil {
		e.t.Fatal(err)
	}
	e.token = "oms_fault-suite-token-" + fmt.Sprint(time.Now().UnixNano())
	if _, err := st.CreateAPIToken(ctx, uid, "fault", store.HashToken(e.token)); err != nil {
		e.t.Fatal(err)
	}
}

// masterOpts are what a test varies in a master.
type masterOpts struct {
	relay, http string // addresses
	journal     string // journal file
	drain       time.Duration
	extra       string // more YAML lines under master: (indented two spaces)
	backend     string // default ssh
}

func (e *faultEnv) masterConfig(o masterOpts) string {
	if o.drain == 0 {
		o.drain = 30 * time.Second
	}
	if o.backend == "" {
		o.backend = "ssh"
	}
	cfg := fmt.Sprintf(`log: {level: info}
master:
  listen: %s
  http_listen: %s
  modules_dir: %s
  backend: %s
  connect_timeout: 10s
  host_timeout: 10m
  drain: %s
  journal: {path: %s}
  relay: {user: omuser}
  ssh:
    user: %s
    port: %d
    identity_files: [%s]
    known_hosts_file: %s
    host_key_policy: strict
%s`, o.relay, o.http, e.modules, o.backend, o.drain, o.journal, e.sshd.User, e.sshd.Port, e.sshd.KeyFile, e.sshd.KnownHostsFile, o.extra)
	return e.writeFile(fmt.Sprintf("master-%s.yaml", strings.ReplaceAll(o.relay, ":", "_")), cfg)
}

// webOpts are what a test varies in a web tier.
type webOpts struct {
	listen, tier string
	driver, dsn  string
	masters      []string
	lostAfter    time.Duration
}

func (e *faultEnv) webConfig(o webOpts) string {
	if o.lostAfter == 0 {
		o.lostAfter = 30 * time.Second
	}
	cfg := fmt.Sprintf(`log: {level: info}
web:
  listen: %s
  secure_cookies: false
  database: {driver: %s, dsn: '%s', migrate_on_start: true}
  masters: [%s]
  relay: {user: omuser, insecure: true, dial_timeout: 3s}
  runs: {tier_id: %s, lease_ttl: 3s, master_lost_after: %s}
`, o.listen, o.driver, o.dsn, strings.Join(o.masters, ", "), o.tier, o.lostAfter)
	return e.writeFile("web-"+o.tier+".yaml", cfg)
}

func (e *faultEnv) writeFile(name, body string) string {
	e.t.Helper()
	p := filepath.Join(e.dir, name)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		e.t.Fatal(err)
	}
	return p
}

// proc is one omserver process under test.
type proc struct {
	t      *testing.T
	name   string
	args   []string
	log    *os.File
	cmd    *exec.Cmd
	exited chan struct{}
	err    error
}

// start runs `omserver <args>`; the process is killed when the test ends,
// and its log is printed when the test failed.
func (e *faultEnv) start(name string, args ...string) *proc {
	e.t.Helper()
	logf, err := os.OpenFile(filepath.Join(e.dir, name+".log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		e.t.Fatal(err)
	}
	p := &proc{t: e.t, name: name, args: args, log: logf}
	p.launch()
	e.t.Cleanup(func() {
		p.kill()
		logf.Close()
		if e.t.Failed() {
			data, _ := os.ReadFile(logf.Name())
			if len(data) > 6000 {
				data = data[len(data)-6000:]
			}
			e.t.Logf("--- last lines of %s's log:\n%s", name, data)
		}
	})
	return p
}

func (p *proc) launch() {
	p.t.Helper()
	cmd := exec.Command(omserverBin, p.args...)
	cmd.Env = append(os.Environ(), "OMSERVER_SECRET_KEY="+faultSecret, "OMSERVER_RELAY_PASSWORD="+faultRelayPassword,
		"OMSERVER_SALT_PASSWORD="+faultSaltPassword)
	cmd.Stdout, cmd.Stderr = p.log, p.log
	fmt.Fprintf(p.log, "=== %s starting: omserver %s\n", time.Now().Format(time.RFC3339Nano), strings.Join(p.args, " "))
	if err := cmd.Start(); err != nil {
		p.t.Fatalf("start %s: %v", p.name, err)
	}
	p.cmd, p.exited = cmd, make(chan struct{})
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
}

// restart starts the process again with the same arguments.
func (p *proc) restart() {
	p.t.Helper()
	select {
	case <-p.exited:
	default:
		p.t.Fatalf("%s is still running", p.name)
	}
	p.launch()
}

func (p *proc) running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// kill sends SIGKILL (nothing is cleaned up: a crash) and waits.
func (p *proc) kill() {
	if !p.running() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
}

// terminate sends SIGTERM and waits for the process to exit, at most limit.
func (p *proc) terminate(limit time.Duration) error {
	p.t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		return p.err
	case <-time.After(limit):
		p.t.Fatalf("%s did not exit within %s of SIGTERM", p.name, limit)
		return nil
	}
}

// startMaster starts a master and waits for its /healthz.
func (e *faultEnv) startMaster(name string, o masterOpts) *proc {
	e.t.Helper()
	p := e.start(name, "master", "--config", e.masterConfig(o))
	e.waitUp(p, "http://"+o.http+"/healthz")
	return p
}

// startWeb starts a web tier and waits until it answers.
func (e *faultEnv) startWeb(o webOpts) *proc {
	e.t.Helper()
	p := e.start("web-"+o.tier, "web", "--config", e.webConfig(o))
	e.waitUp(p, "http://"+o.listen+"/login")
	return p
}

// waitUp polls url until it answers 200, at most a minute.
func (e *faultEnv) waitUp(p *proc, url string) {
	e.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		if !p.running() {
			e.t.Fatalf("%s exited while starting: %v", p.name, p.err)
		}
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	e.t.Fatalf("%s: %s not up within a minute", p.name, url)
}

// api makes an API call with the operator's token.
func (e *faultEnv) api(method, url, body string) (int, string, http.Header) {
	e.t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+e.token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(data), resp.Header
}

// submit starts the counted module on hosts through web, each command
// working for seconds; it returns the run id.
func (e *faultEnv) submit(webAddr string, seconds int, hosts ...string) string {
	e.t.Helper()
	if len(hosts) == 0 {
		hosts = e.hosts
	}
	hj, _ := json.Marshal(hosts)
	code, body, _ := e.api("POST", "http://"+webAddr+"/api/v1/runs",
		fmt.Sprintf(`{"module_id":%d,"hosts":%s,"params":{"sys_param_1":"%d"}}`, faultModule, hj, seconds))
	if code != http.StatusAccepted {
		e.t.Fatalf("submit: %d %s", code, body)
	}
	var out struct {
		RunID string `json:"run_id"`
	}
	if err := json.Unmarshal([]byte(body), &out); err != nil || out.RunID == "" {
		e.t.Fatalf("submit answer %q", body)
	}
	return out.RunID
}

// counts reads the counter file: commands started, per target address.
func (e *faultEnv) counts() map[string]int {
	e.t.Helper()
	out := map[string]int{}
	f, err := os.Open(e.count)
	if os.IsNotExist(err) {
		return out
	}
	if err != nil {
		e.t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" {
			out[line]++
		}
	}
	return out
}

// waitStarted waits until every host in hosts started its command.
func (e *faultEnv) waitStarted(limit time.Duration, hosts ...string) {
	e.t.Helper()
	if len(hosts) == 0 {
		hosts = e.hosts
	}
	waitUntil(e.t, limit, fmt.Sprintf("commands started on %v", hosts), func() bool {
		c := e.counts()
		for _, h := range hosts {
			if c[h] == 0 {
				return false
			}
		}
		return true
	})
}

// assertRanOnce checks the counter: each host in hosts ran its command
// exactly once, and no other command ran.
func (e *faultEnv) assertRanOnce(hosts ...string) {
	e.t.Helper()
	if len(hosts) == 0 {
		hosts = e.hosts
	}
	c := e.counts()
	want := map[string]int{}
	for _, h := range hosts {
		want[h] = 1
	}
	if fmt.Sprint(sortedCounts(c)) != fmt.Sprint(sortedCounts(want)) {
		e.t.Fatalf("executions per target %v, want exactly once on each of %v", sortedCounts(c), hosts)
	}
}

func sortedCounts(m map[string]int) []string {
	var out []string
	for k, v := range m {
		out = append(out, fmt.Sprintf("%s=%d", k, v))
	}
	sort.Strings(out)
	return out
}

// storedRun reads a run and its results from a web tier's database.
func storedRun(t *testing.T, driver, dsn, id string) (store.Run, []task.HostResult) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := store.Open(ctx, driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	run, results, err := st.GetRun(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	return run, results
}

// waitRunStatus waits until the stored run has status, at most limit, and
// returns it with its results.
func waitRunStatus(t *testing.T, limit time.Duration, driver, dsn, id string, status task.RunStatus) (store.Run, []task.HostResult) {
	t.Helper()
	var run store.Run
	var results []task.HostResult
	waitUntil(t, limit, "run "+id+" "+string(status), func() bool {
		run, results = storedRun(t, driver, dsn, id)
		return run.Status == status
	})
	return run, results
}

// assertResults checks there is one stored result per host in hosts, each
// with status want.
func assertResults(t *testing.T, results []task.HostResult, want task.Status, hosts ...string) {
	t.Helper()
	got := map[string]task.Status{}
	for _, r := range results {
		if _, dup := got[r.Host.IP]; dup {
			t.Fatalf("two results stored for %s", r.Host.IP)
		}
		got[r.Host.IP] = r.Status
	}
	if len(got) != len(hosts) {
		t.Fatalf("stored results for %v, want one for each of %v", got, hosts)
	}
	for _, h := range hosts {
		if got[h] != want {
			t.Fatalf("host %s stored as %q, want %q (all: %v)", h, got[h], want, got)
		}
	}
}

func waitUntil(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, limit)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// addrs returns n distinct free loopback addresses (held while chosen).
func addrs(t *testing.T, n int) []string { return freeAddrs(t, n) }

// ownMariaDB is a mariadbd this test starts and stops: its own datadir,
// socket and loopback port. The machine's MariaDB is never touched.
type ownMariaDB struct {
	t       *testing.T
	dir     string
	port    int
	cmd     *exec.Cmd
	exited  chan struct{}
	logFile string
}

func startOwnMariaDB(t *testing.T) *ownMariaDB {
	t.Helper()
	if _, err := exec.LookPath("mariadb-install-db"); err != nil {
		t.Fatalf("mariadb-install-db missing: install mariadb-server")
	}
	dir := t.TempDir()
	install := exec.Command("mariadb-install-db", "--no-defaults", "--datadir="+filepath.Join(dir, "data"), "--user=root",
		"--auth-root-authentication-method=normal", "--skip-test-db")
	if out, err := install.CombinedOutput(); err != nil {
		t.Fatalf("mariadb-install-db: %v\n%s", err, out)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	m := &ownMariaDB{t: t, dir: dir, port: port, logFile: filepath.Join(dir, "mariadbd.log")}
	m.start()
	t.Cleanup(func() {
		if m.running() {
			_ = m.cmd.Process.Signal(syscall.SIGKILL)
			<-m.exited
		}
	})
	return m
}

func (m *ownMariaDB) running() bool {
	if m.exited == nil {
		return false
	}
	select {
	case <-m.exited:
		return false
	default:
		return true
	}
}

// start runs mariadbd on the datadir and waits until it answers.
func (m *ownMariaDB) start() {
	m.t.Helper()
	cmd := exec.Command("/usr/sbin/mariadbd", "--no-defaults", "--datadir="+filepath.Join(m.dir, "data"),
		"--socket="+filepath.Join(m.dir, "mariadbd.sock"), fmt.Sprintf("--port=%d", m.port), "--bind-address=127.0.0.1",
		"--user=root", "--skip-grant-tables", "--pid-file="+filepath.Join(m.dir, "mariadbd.pid"),
		"--log-error="+m.logFile, "--innodb-buffer-pool-size=32M")
	if err := cmd.Start(); err != nil {
		m.t.Fatalf("mariadbd: %v", err)
	}
	m.cmd, m.exited = cmd, make(chan struct{})
	go func() { _ = cmd.Wait(); close(m.exited) }()
	waitUntil(m.t, time.Minute, "own mariadbd answering", func() bool {
		if !m.running() {
			log, _ := os.ReadFile(m.logFile)
			m.t.Fatalf("mariadbd exited:\n%s", log)
		}
		c, err := net.DialTimeout("tcp", m.addr(), time.Second)
		if err != nil {
			return false
		}
		c.Close()
		out, err := exec.Command("mariadb", "-h127.0.0.1", fmt.Sprintf("-P%d", m.port), "-uroot", "-e", "CREATE DATABASE IF NOT EXISTS omfault").CombinedOutput()
		if err != nil {
			m.t.Logf("mariadb not ready: %v %s", err, bytes.TrimSpace(out))
		}
		return err == nil
	})
}

// stop shuts mariadbd down cleanly (SIGTERM) and waits.
func (m *ownMariaDB) stop() {
	m.t.Helper()
	_ = m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-m.exited:
	case <-time.After(time.Minute):
		m.t.Fatal("mariadbd did not stop within a minute")
	}
}

func (m *ownMariaDB) addr() string { return fmt.Sprintf("127.0.0.1:%d", m.port) }

func (m *ownMariaDB) dsn() string { return "root@tcp(" + m.addr() + ")/omfault?timeout=3s" }

// tmpfs mounts a small tmpfs (the test runs as root) and unmounts it at
// the end.
func tmpfs(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("the full-disk scenario mounts a tmpfs: run the suite as root (CI does)")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = syscall.Unmount(dir, syscall.MNT_DETACH) })
	return dir
}

// fill writes a file until the file system is full and returns its path.
func fill(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "filler")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 64<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			return p
		}
	}
}

// sseResults opens a run's event stream on a web tier and reports each
// result's host on the returned channel until the stream ends.
func (e *faultEnv) sseResults(webAddr, id string) <-chan string {
	e.t.Helper()
	req, err := http.NewRequest("GET", "http://"+webAddr+"/api/v1/runs/"+id+"/events", nil)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+e.token)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	e.t.Cleanup(cancel)
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		e.t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		e.t.Fatalf("event stream: %d", resp.StatusCode)
	}
	out := make(chan string, 16)
	var once sync.Once
	go func() {
		defer once.Do(func() { close(out) })
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		event := ""
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				event = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: ") && event == "result":
				var r task.HostResult
				if json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &r) == nil {
					out <- r.Host.IP
				}
			case strings.HasPrefix(line, "data: ") && event == "done":
				out <- "done"
				return
			}
		}
	}()
	return out
}
