// Command pagebench measures every page and API list of the web tier on
// the large database that scripts/gendb builds. It migrates the database
// with `omserver migrate`, adds a user with `omserver user`, starts
// `omserver web` on loopback (its masters are never contacted: nothing is
// run), logs in over HTTP like a browser, then requests each endpoint -n
// times in a row and reports the first (cold) latency, p50, p99 and the
// response size; then 4 clients at once over the pages. The figures go into the
// "Pages and API" section of docs/BENCHMARKS.md with the command that
// produced them.
//
//	go run ./scripts/pagebench -omserver bin/omserver -dsn 'root@tcp(127.0.0.1:3306)/omserver_bench'
package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-sql-driver/mysql"
)

// Targets of issue 8, per page and API answer on this database.
const (
	targetP50   = 100 * time.Millisecond
	targetBytes = 1 << 20
)

func main() {
	if err := run(context.Background(), os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "pagebench:", err)
		os.Exit(1)
	}
}

type bench struct {
	omserver, dsn, dir, base string
	n                        int
	client                   *http.Client
	db                       *sql.DB
	web                      *exec.Cmd
	env                      []string
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("pagebench", flag.ContinueOnError)
	b := &bench{}
	fs.StringVar(&b.omserver, "omserver", "bin/omserver", "the omserver binary")
	fs.StringVar(&b.dsn, "dsn", "root@tcp(127.0.0.1:3306)/omserver_bench", "the generated database (go-sql-driver DSN)")
	fs.IntVar(&b.n, "n", 50, "timed requests per endpoint")
	out := fs.String("out", "docs/BENCHMARKS.md", "file whose \"Pages and API\" section is replaced (- for stdout)")
	cmdline := fs.String("cmdline", "", "the command to cite as having produced the figures (default: this one)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *cmdline == "" {
		*cmdline = "go run ./scripts/pagebench " + strings.Join(args, " ")
	}
	cfg, err := mysql.ParseDSN(b.dsn)
	if err != nil {
		return fmt.Errorf("dsn: %w", err)
	}
	cfg.ParseTime, cfg.Loc = true, time.UTC
	if b.db, err = sql.Open("mysql", cfg.FormatDSN()); err != nil {
		return err
	}
	defer b.db.Close()
	var sizes, bigRun, genSeconds string
	if err := b.db.QueryRowContext(ctx, `SELECT (SELECT v FROM gendb_info WHERE k = 'sizes'), (SELECT v FROM gendb_info WHERE k = 'big_run_id'),
		(SELECT v FROM gendb_info WHERE k = 'seconds')`).Scan(&sizes, &bigRun, &genSeconds); err != nil {
		return fmt.Errorf("%s is not a complete scripts/gendb database: %w", cfg.DBName, err)
	}
	if b.dir, err = os.MkdirTemp("", "pagebench"); err != nil {
		return err
	}
	defer os.RemoveAll(b.dir)

	migrate, err := b.migrate(ctx)
	if err != nil {
		return err
	}
	if err := b.startWeb(ctx); err != nil {
		return err
	}
	defer b.stopWeb()
	if err := b.login(ctx); err != nil {
		return err
	}
	eps, err := b.endpoints(ctx, bigRun)
	if err != nil {
		return err
	}
	var results []result
	for _, ep := range eps {
		r, err := b.measure(ctx, ep)
		if err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "%-60s p50 %6.1f ms  p99 %6.1f ms  %8d B\n", ep.path, ms(r.p50), ms(r.p99), r.size)
		results = append(results, r)
	}
	conc, err := b.concurrent(ctx, eps, 4)
	if err != nil {
		return err
	}
	rss := b.webRSS()
	var targets, hostRows int64
	if err := b.db.QueryRowContext(ctx, `SELECT (SELECT COUNT(*) FROM run_targets), (SELECT COUNT(*) FROM run_hosts)`).Scan(&targets, &hostRows); err != nil {
		return err
	}
	sizes = fmt.Sprintf("%s; %d hosts of runs, %d host results", sizes, targets, hostRows)
	migrate = fmt.Sprintf("`scripts/gendb` took %s s (including the original tables' migration to schema version 3); %s", genSeconds, migrate)
	section := report(*cmdline, sizes, migrate, b.n, results, conc, rss)
	if *out == "-" {
		_, err := os.Stdout.WriteString(section)
		return err
	}
	return replaceSection(*out, section)
}

// migrate brings the database to the current schema with `omserver
// migrate`, timing it; the time of the run that did the work is kept in
// gendb_info, so later runs (with nothing to apply) still report it.
func (b *bench) migrate(ctx context.Context) (string, error) {
	addr, err := freeAddr()
	if err != nil {
		return "", err
	}
	b.base = "http://" + addr
	conf := fmt.Sprintf(`log: {level: warn}
web:
  listen: %s
  secure_cookies: false
  database: {driver: mysql, dsn: %q, migrate_on_start: false}
  masters: [127.0.0.1:9]
  relay: {user: omuser, insecure: true, dial_timeout: 1s}
`, addr, b.dsn)
	if err := os.WriteFile(filepath.Join(b.dir, "omserver.yaml"), []byte(conf), 0o600); err != nil {
		return "", err
	}
	b.env = append(os.Environ(), "OMSERVER_SECRET_KEY=pagebench-secret-key-0123456789", "OMSERVER_RELAY_PASSWORD=pagebench-relay")
	before := b.version(ctx)
	t0 := time.Now()
	if out, err := b.cmd(ctx, "", "migrate", "--config", filepath.Join(b.dir, "omserver.yaml")); err != nil {
		return "", fmt.Errorf("omserver migrate: %v\n%s", err, out)
	}
	took := time.Since(t0)
	after := b.version(ctx)
	if after != before {
		text := fmt.Sprintf("`omserver migrate` took %.1f s (schema version %d to %d)", took.Seconds(), before, after)
		if _, err := b.db.ExecContext(ctx, `REPLACE INTO gendb_info (k, v) VALUES ('migrate', ?)`, text); err != nil {
			return "", err
		}
	}
	var text string
	if err := b.db.QueryRowContext(ctx, `SELECT v FROM gendb_info WHERE k = 'migrate'`).Scan(&text); err != nil {
		return "", err
	}
	pass := "pagebench-password-1"
	if _, err := b.cmd(ctx, pass+"\n", "user", "add", "--config", filepath.Join(b.dir, "omserver.yaml"), "--role", "admin", "pagebench"); err != nil {
		if out, err := b.cmd(ctx, pass+"\n", "user", "passwd", "--config", filepath.Join(b.dir, "omserver.yaml"), "pagebench"); err != nil {
			return "", fmt.Errorf("omserver user: %v\n%s", err, out)
		}
	}
	return text, nil
}

func (b *bench) version(ctx context.Context) int64 {
	var v int64
	_ = b.db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version_id), 0) FROM goose_db_version WHERE is_applied`).Scan(&v)
	return v
}

func (b *bench) cmd(ctx context.Context, stdin string, args ...string) ([]byte, error) {
	c := exec.CommandContext(ctx, b.omserver, args...)
	c.Env, c.Stdin = b.env, strings.NewReader(stdin)
	return c.CombinedOutput()
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func (b *bench) startWeb(ctx context.Context) error {
	b.web = exec.Command(b.omserver, "web", "--config", filepath.Join(b.dir, "omserver.yaml"))
	b.web.Env = b.env
	logf, err := os.Create(filepath.Join(b.dir, "web.log"))
	if err != nil {
		return err
	}
	b.web.Stdout, b.web.Stderr = logf, logf
	if err := b.web.Start(); err != nil {
		return err
	}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(b.base + "/login")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	log, _ := os.ReadFile(filepath.Join(b.dir, "web.log"))
	return fmt.Errorf("omserver web did not come up:\n%s", log)
}

func (b *bench) stopWeb() {
	if b.web == nil || b.web.Process == nil {
		return
	}
	_ = b.web.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = b.web.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = b.web.Process.Kill()
	}
}

// webRSS reads the web process's peak and current resident memory.
func (b *bench) webRSS() string {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", b.web.Process.Pid))
	if err != nil {
		return "unknown"
	}
	var peak, cur string
	for _, line := range strings.Split(string(raw), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "VmHWM:" {
			peak = f[1]
		}
		if len(f) >= 2 && f[0] == "VmRSS:" {
			cur = f[1]
		}
	}
	kb := func(s string) string {
		n, _ := strconv.Atoi(s)
		return fmt.Sprintf("%.0f MB", float64(n)/1024)
	}
	return fmt.Sprintf("peak %s, %s at the end", kb(peak), kb(cur))
}

func (b *bench) login(ctx context.Context) error {
	jar, _ := cookiejar.New(nil)
	b.client = &http.Client{Jar: jar, Timeout: 60 * time.Second}
	resp, err := b.client.PostForm(b.base+"/login", url.Values{"username": {"pagebench"}, "password": {"pagebench-password-1"}})
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/" {
		return fmt.Errorf("login ended at %s with %d", resp.Request.URL, resp.StatusCode)
	}
	return nil
}

// get fetches path and returns the body.
func (b *bench) get(ctx context.Context, path string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.base+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := b.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %d %.300s", path, resp.StatusCode, body)
	}
	return body, nil
}

// next returns the "next" link of a JSON list answer.
func (b *bench) next(ctx context.Context, path string) (string, error) {
	body, err := b.get(ctx, path)
	if err != nil {
		return "", err
	}
	var page struct {
		Next *string `json:"next"`
	}
	if err := json.Unmarshal(body, &page); err != nil || page.Next == nil {
		return "", fmt.Errorf("%s: no next link (%v)", path, err)
	}
	return *page.Next, nil
}

// cursorAfter follows path's next links hops times and returns the cursor
// reached (a page deep in the list, reached as a client would).
func (b *bench) cursorAfter(ctx context.Context, path string, hops int) (string, error) {
	for range hops {
		n, err := b.next(ctx, path)
		if err != nil {
			return "", err
		}
		path = n
	}
	u, err := url.Parse(path)
	if err != nil {
		return "", err
	}
	return u.Query().Get("cursor"), nil
}

type endpoint struct {
	kind, what, path string
}

// endpoints lists what is measured, finding the ids and cursors it needs
// through the API (and the database for the largest application).
func (b *bench) endpoints(ctx context.Context, bigRun string) ([]endpoint, error) {
	var bigApp, bigFun int64
	if err := b.db.QueryRowContext(ctx, `SELECT s.server_app_id, a.server_categ_id FROM server_list s JOIN server_app_categ a ON a.ID = s.server_app_id
		GROUP BY s.server_app_id, a.server_categ_id ORDER BY COUNT(*) DESC LIMIT 1`).Scan(&bigApp, &bigFun); err != nil {
		return nil, err
	}
	var smallRun, host, user string
	if err := b.db.QueryRowContext(ctx, `SELECT id, JSON_VALUE(hosts, '$[0].ip'), username FROM runs WHERE host_count = 1 ORDER BY created_at DESC LIMIT 1`).Scan(&smallRun, &host, &user); err != nil {
		return nil, err
	}
	var oldest time.Time
	if err := b.db.QueryRowContext(ctx, `SELECT MIN(created_at) FROM runs`).Scan(&oldest); err != nil {
		return nil, err
	}
	q := url.QueryEscape
	deepRuns, err := b.cursorAfter(ctx, "/api/v1/runs?limit=1&to="+oldest.AddDate(0, 3, 0).Format(time.DateOnly), 1)
	if err != nil {
		return nil, err
	}
	deepServers, err := b.cursorAfter(ctx, fmt.Sprintf("/api/v1/servers?app_id=%d&limit=500", bigApp), 8)
	if err != nil {
		return nil, err
	}
	deepHosts, err := b.cursorAfter(ctx, "/api/v1/runs/"+bigRun+"/hosts?limit=500", 9)
	if err != nil {
		return nil, err
	}
	deepAudit, err := b.cursorAfter(ctx, "/api/v1/audit?limit=500", 20)
	if err != nil {
		return nil, err
	}
	var histIP string
	var midHistory int64
	if err := b.db.QueryRowContext(ctx, `SELECT history_ip, (SELECT MAX(ID) DIV 2 FROM server_history) FROM server_history
		GROUP BY history_ip ORDER BY COUNT(*) DESC LIMIT 1`).Scan(&histIP, &midHistory); err != nil {
		return nil, err
	}
	month := oldest.AddDate(1, 0, 0)
	from, to := month.Format(time.DateOnly), month.AddDate(0, 1, 0).Format(time.DateOnly)
	return []endpoint{
		{"page", "dashboard", "/"},
		{"page", "inventory: categories, applications, first 100 servers", "/inventory"},
		{"page", "inventory: one function category", fmt.Sprintf("/inventory?fun_id=%d", bigFun)},
		{"page", "inventory: the largest application (5,000 servers), page 1", fmt.Sprintf("/inventory?app_id=%d", bigApp)},
		{"page", "inventory: the largest application, servers 4,001-4,100", fmt.Sprintf("/inventory?app_id=%d&cursor=%s", bigApp, q(deepServers))},
		{"page", "inventory: hostname search", "/inventory?q=srv-04217"},
		{"page", "inventory: OS filter", "/inventory?os=" + q("Debian 12")},
		{"page", "inventory: hostname search with no match (full scan)", "/inventory?name=no-such-host"},
		{"page", "runs: newest 50", "/runs"},
		{"page", "runs: 50 runs about 2.75 years deep", "/runs?cursor=" + q(deepRuns)},
		{"page", "runs: by user", "/runs?user=" + q(user)},
		{"page", "runs: failed", "/runs?status=failed"},
		{"page", "runs: by host", "/runs?host=" + q(host)},
		{"page", "runs: module and one month", fmt.Sprintf("/runs?module_id=1003&from=%s&to=%s", from, to)},
		{"page", "run of 5,000 hosts: first 100 hosts", "/runs/" + bigRun},
		{"page", "run of 5,000 hosts: hosts 4,501-4,600", "/runs/" + bigRun + "?cursor=" + q(deepHosts)},
		{"page", "run of 5,000 hosts: failed hosts", "/runs/" + bigRun + "?status=failed"},
		{"page", "run of 1 host", "/runs/" + smallRun},
		{"page", "audit log: newest 100", "/audit"},
		{"page", "audit log: 10,000 entries deep", "/audit?cursor=" + q(deepAudit)},
		{"page", "audit log: by user", "/audit?user=" + q(user)},
		{"page", "安全审计: newest commands", "/omaudit/"},
		{"page", "安全审计: one server", "/omaudit/?host=" + q(histIP)},
		{"page", "安全审计: 250,000 rows deep", fmt.Sprintf("/omaudit/?before=%d", midHistory)},
		{"page", "安全审计: command search", "/omaudit/?q=systemctl"},
		{"api", "function categories", "/api/v1/fun-categs"},
		{"api", "applications of a function category", fmt.Sprintf("/api/v1/app-categs?fun_id=%d", bigFun)},
		{"api", "applications, first 100", "/api/v1/app-categs"},
		{"api", "servers, first 100", "/api/v1/servers"},
		{"api", "servers of the largest application, 500", fmt.Sprintf("/api/v1/servers?app_id=%d&limit=500", bigApp)},
		{"api", "servers: search", "/api/v1/servers?q=srv-0421"},
		{"api", "runs: newest 50", "/api/v1/runs"},
		{"api", "runs: 2.75 years deep", "/api/v1/runs?cursor=" + q(deepRuns)},
		{"api", "runs: by host", "/api/v1/runs?host=" + q(host)},
		{"api", "runs: failed, by user", "/api/v1/runs?status=failed&user=" + q(user)},
		{"api", "run of 5,000 hosts with its first 100 results", "/api/v1/runs/" + bigRun},
		{"api", "run of 5,000 hosts: 500 hosts", "/api/v1/runs/" + bigRun + "/hosts?limit=500"},
		{"api", "run of 5,000 hosts: 500 hosts, 4,500 deep", "/api/v1/runs/" + bigRun + "/hosts?limit=500&cursor=" + q(deepHosts)},
		{"api", "run of 5,000 hosts: failed hosts", "/api/v1/runs/" + bigRun + "/hosts?status=failed&limit=500"},
		{"api", "audit log", "/api/v1/audit"},
		{"api", "安全审计 search: one server, 250,000 rows deep", fmt.Sprintf("/api/v1/omaudit/history?host=%s&before=%d", q(histIP), midHistory)},
		{"legacy", "function categories (text)", "/autoadmin/server_fun_categ/"},
		{"legacy", "安全审计 poll after a row half way (text, 500 rows)", fmt.Sprintf("/omaudit/omaudit_run/?LastID=%d", midHistory)},
		{"legacy", "servers of the largest application (text, the whole list as the original)", fmt.Sprintf("/autoadmin/server_list/?app_categId=%d", bigApp)},
	}, nil
}

type result struct {
	endpoint
	first, p50, p99 time.Duration
	size            int
}

// measure requests ep once cold, twice more to warm up, then b.n times.
func (b *bench) measure(ctx context.Context, ep endpoint) (result, error) {
	r := result{endpoint: ep}
	var lat []time.Duration
	for i := range b.n + 3 {
		t0 := time.Now()
		body, err := b.get(ctx, ep.path)
		d := time.Since(t0)
		if err != nil {
			return r, err
		}
		r.size = len(body)
		switch {
		case i == 0:
			r.first = d
		case i >= 3:
			lat = append(lat, d)
		}
	}
	r.p50, r.p99 = percentile(lat, 50), percentile(lat, 99)
	return r, nil
}

func percentile(d []time.Duration, p int) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	i := (len(s)*p + 99) / 100
	return s[min(max(i-1, 0), len(s)-1)]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// concurrent runs clients at once, each through every page and API
// endpoint, and returns p50 and p99 over all their requests.
func (b *bench) concurrent(ctx context.Context, eps []endpoint, clients int) (string, error) {
	var mu sync.Mutex
	var lat []time.Duration
	var wg sync.WaitGroup
	errc := make(chan error, clients)
	rounds := max(b.n/10, 2)
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range rounds {
				for k := range eps {
					ep := eps[(k+c*7+r)%len(eps)]
					if ep.kind == "legacy" {
						continue
					}
					t0 := time.Now()
					if _, err := b.get(ctx, ep.path); err != nil {
						errc <- err
						return
					}
					mu.Lock()
					lat = append(lat, time.Since(t0))
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		return "", err
	}
	return fmt.Sprintf("%d clients at once, each through every page and API above %d times (%d requests): p50 %.1f ms, p99 %.1f ms",
		clients, rounds, len(lat), ms(percentile(lat, 50)), ms(percentile(lat, 99))), nil
}

func report(cmdline, sizes, migrate string, n int, results []result, conc string, rss string) string {
	var sz struct{ Funs, Apps, Servers, History, Runs, BigRunHosts, Audit int }
	js, counts, _ := strings.Cut(sizes, "; ")
	_ = json.Unmarshal([]byte(js), &sz)
	var w bytes.Buffer
	fmt.Fprintf(&w, "%s\n## Pages and API on a large database\n\n", beginMark)
	fmt.Fprintf(&w, "Produced by `make bench` (`scripts/bench-pages.sh`), which ran:\n\n```\n%s\n```\n\n", cmdline)
	fmt.Fprintf(&w, "- database: MariaDB on this machine (default settings: 128 MB buffer pool), generated by `scripts/gendb` in the original\n"+
		"  schema: %d function categories, %d applications, %d servers (one application of %d), %d `server_history` rows;\n"+
		"  %d runs (one of %d hosts, five of about 500, 1%% of 5, the rest of 1: %s), %d audit entries.\n",
		sz.Funs, sz.Apps, sz.Servers, sz.BigRunHosts, sz.History, sz.Runs, sz.BigRunHosts, counts, sz.Audit)
	fmt.Fprintf(&w, "- %s.\n", migrate)
	fmt.Fprintf(&w, "- the real `omserver web` over loopback HTTP, logged in as a browser would be; each endpoint requested once cold (\"first\"),\n"+
		"  twice to warm up, then %d times in a row. Sizes are response bodies (no compression).\n", n)
	fmt.Fprintf(&w, "- date: %s; go: %s; cpu: %s (%d cores, shared with other work)\n", time.Now().UTC().Format("2006-01-02T15:04Z"), runtime.Version(), cpuModel(), runtime.NumCPU())
	fmt.Fprintf(&w, "- web process memory: %s\n\n", rss)
	fmt.Fprintf(&w, "Targets: every page and API answer ≤ %d ms at p50 and ≤ 1 MB. ✗ marks a miss.\n\n", targetP50.Milliseconds())
	fmt.Fprintf(&w, "| kind | what | request | first ms | p50 ms | p99 ms | bytes | |\n| --- | --- | --- | ---: | ---: | ---: | ---: | --- |\n")
	misses := 0
	for _, r := range results {
		mark := "✓"
		if r.kind != "legacy" && (r.p50 > targetP50 || r.size > targetBytes) {
			mark, misses = "✗", misses+1
		}
		if r.kind == "legacy" {
			mark = "(legacy format, unpaged by design)"
		}
		fmt.Fprintf(&w, "| %s | %s | `%s` | %.1f | %.1f | %.1f | %d | %s |\n", r.kind, r.what, shorten(r.path), ms(r.first), ms(r.p50), ms(r.p99), r.size, mark)
	}
	fmt.Fprintf(&w, "\n- %s.\n", conc)
	if misses == 0 {
		fmt.Fprintf(&w, "- every page and API answer met both targets.\n")
	} else {
		fmt.Fprintf(&w, "- %d endpoints missed a target (marked ✗).\n", misses)
	}
	fmt.Fprintf(&w, "\n%s\n", endMark)
	return w.String()
}

// shorten keeps long cursors readable in the table.
func shorten(p string) string {
	if i := strings.Index(p, "cursor="); i >= 0 {
		end := strings.IndexByte(p[i:], '&')
		if end < 0 {
			end = len(p) - i
		}
		p = p[:i] + "cursor=…" + p[i+end:]
	}
	return p
}

func cpuModel() string {
	raw, _ := os.ReadFile("/proc/cpuinfo")
	for _, line := range strings.Split(string(raw), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}

const (
	beginMark = "<!-- pages:begin (written by scripts/pagebench) -->"
	endMark   = "<!-- pages:end -->"
)

// replaceSection puts section in place of the previous one in path, or at
// its end.
func replaceSection(path, section string) error {
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	text := string(old)
	if i := strings.Index(text, beginMark); i >= 0 {
		if j := strings.Index(text[i:], endMark); j >= 0 {
			text = text[:i] + strings.TrimSuffix(section, "\n") + text[i+j+len(endMark):]
			return os.WriteFile(path, []byte(text), 0o644)
		}
	}
	if text != "" && !strings.HasSuffix(text, "\n\n") {
		text = strings.TrimRight(text, "\n") + "\n\n"
	}
	return os.WriteFile(path, []byte(text+section), 0o644)
}
