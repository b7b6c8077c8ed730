// Command gendb builds the large database the page benchmark runs on: the
// original OMServer dump, topped up in the ORIGINAL schema to 50 function
// categories, 2,000 applications, 50,000 servers and 500,000 server_history
// rows, plus 1,000,000 runs with their per-host results and an audit log,
// written as schema version 3 stored them (the first version with runs).
// `omserver migrate` then brings it to the current schema, as it would an
// operator's database.
//
//	go run ./scripts/gendb -dsn 'root@tcp(127.0.0.1:3306)/' -db omserver_bench
//
// Rows go in by multi-row INSERTs (1,000 rows a statement, foreign key and
// unique checks off for the session, two writers). The content is
// deterministic (fixed seeds), realistic in shape (hostnames, OS names,
// module outputs, time spread over three years) and sized to the original
// columns (server_lip char(12), server_name char(13), ...).
//
// It refuses to touch a database it did not create (one without its
// gendb_info table); an existing complete database with the same sizes is
// left as it is unless -force is given.
package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/omserver/omserver-go/internal/store"
)

// sizes of the generated database.
type sizes struct {
	Funs, Apps, Servers, History, Runs int
	BigRunHosts                        int // hosts of the one big run
	BigAppServers                      int // servers of the first generated application
	Audit                              int // audit log entries
}

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "gendb:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("gendb", flag.ContinueOnError)
	dsn := fs.String("dsn", "root@tcp(127.0.0.1:3306)/", "MariaDB server (go-sql-driver DSN, no database)")
	name := fs.String("db", "omserver_bench", "database to create")
	dump := fs.String("dump", "internal/testutil/mysqltest/testdata/OMServer.sql", "the original OMServer dump")
	force := fs.Bool("force", false, "rebuild a database gendb made before")
	sz := sizes{}
	fs.IntVar(&sz.Funs, "funs", 50, "function categories")
	fs.IntVar(&sz.Apps, "apps", 2000, "application categories")
	fs.IntVar(&sz.Servers, "servers", 50000, "servers")
	fs.IntVar(&sz.History, "history", 500000, "server_history rows")
	fs.IntVar(&sz.Runs, "runs", 1000000, "runs")
	fs.IntVar(&sz.BigRunHosts, "big-run", 5000, "hosts of the one big run")
	fs.IntVar(&sz.Audit, "audit", 200000, "audit log entries")
	if err := fs.Parse(args); err != nil {
		return err
	}
	sz.BigAppServers = sz.BigRunHosts
	if sz.Servers < sz.BigAppServers+sz.Apps || sz.Apps < 2 || sz.Funs < 13 || sz.Runs < 100 {
		return fmt.Errorf("sizes too small: need servers >= big-run + apps, apps >= 2, funs >= 13, runs >= 100")
	}
	if !validName(*name) {
		return fmt.Errorf("database name %q: letters, digits and _ only", *name)
	}
	cfg, err := mysql.ParseDSN(*dsn)
	if err != nil {
		return fmt.Errorf("dsn: %w", err)
	}
	cfg.DBName = ""
	cfg.ParseTime, cfg.Loc, cfg.InterpolateParams = true, time.UTC, true
	cfg.Params = map[string]string{"time_zone": "'+00:00'"}
	server, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		return err
	}
	defer server.Close()

	want, _ := json.Marshal(sz)
	switch state, err := existing(ctx, server, *name); {
	case err != nil:
		return err
	case state == "foreign":
		return fmt.Errorf("database %s exists and was not made by gendb: refusing to touch it", *name)
	case state == string(want) && !*force:
		fmt.Fprintf(out, "database %s already holds this data set (use -force to rebuild)\n", *name)
		return nil
	case state != "":
		if _, err := server.ExecContext(ctx, "DROP DATABASE `"+*name+"`"); err != nil {
			return err
		}
	}
	if _, err := server.ExecContext(ctx, "CREATE DATABASE `"+*name+"` CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci"); err != nil {
		return err
	}
	cfg.DBName = *name
	g := &gen{sz: sz, out: out, start: time.Now()}
	if g.db, err = sql.Open("mysql", cfg.FormatDSN()); err != nil {
		return err
	}
	defer g.db.Close()
	g.db.SetMaxOpenConns(4)

	steps := []struct {
		what string
		fn   func(context.Context) error
	}{
		{"original dump", func(ctx context.Context) error { return g.loadDump(ctx, *cfg, *dump) }},
		{"inventory", g.inventory},
		{"server_history", g.history},
		{"schema version 3 (runs tables)", func(ctx context.Context) error { return g.schemaV3(ctx, cfg.FormatDSN()) }},
		{"runs and results", g.runs},
		{"audit log", g.audit},
		{"statistics", g.analyze},
	}
	for _, st := range steps {
		t0 := time.Now()
		if err := st.fn(ctx); err != nil {
			return fmt.Errorf("%s: %w", st.what, err)
		}
		fmt.Fprintf(out, "%-32s %8.1fs\n", st.what, time.Since(t0).Seconds())
	}
	_, err = g.db.ExecContext(ctx, `INSERT INTO gendb_info (k, v) VALUES ('sizes', ?), ('big_run_id', ?), ('seconds', ?)`,
		string(want), g.bigRun, strconv.FormatFloat(time.Since(g.start).Seconds(), 'f', 0, 64))
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "database %s generated in %.0fs; big run %s\n", *name, time.Since(g.start).Seconds(), g.bigRun)
	return nil
}

func validName(s string) bool {
	for _, c := range s {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return s != ""
}

// existing says what database name holds: "" (none), "foreign" (not ours),
// or the sizes of a complete gendb data set ("incomplete" if it stopped).
func existing(ctx context.Context, server *sql.DB, name string) (string, error) {
	var n int
	if err := server.QueryRowContext(ctx, `SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?`, name).Scan(&n); err != nil {
		return "", err
	}
	if n == 0 {
		return "", nil
	}
	if err := server.QueryRowContext(ctx, `SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = 'gendb_info'`, name).Scan(&n); err != nil {
		return "", err
	}
	if n == 0 {
		return "foreign", nil
	}
	var v string
	err := server.QueryRowContext(ctx, "SELECT v FROM `"+name+"`.gendb_info WHERE k = 'sizes'").Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "incomplete", nil
	}
	return v, err
}

// gen holds the generator's state.
type gen struct {
	db     *sql.DB
	sz     sizes
	out    io.Writer
	start  time.Time
	bigRun string

	servers []server // every server: the dump's, then the generated ones
	nDump   int      // servers of the dump, before the generated ones
	modules map[int64]string
}

type server struct {
	ip, name string
}

// loadDump runs the original dump on one connection (its SET statements
// hold for the session) and adds the gendb_info marker first, so a run
// that stops halfway is recognised as ours.
func (g *gen) loadDump(ctx context.Context, cfg mysql.Config, path string) error {
	if _, err := g.db.ExecContext(ctx, `CREATE TABLE gendb_info (k varchar(64) PRIMARY KEY, v text NOT NULL)`); err != nil {
		return err
	}
	script, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("%w (run gendb from the repository root, or give -dump)", err)
	}
	cfg.MultiStatements = true
	db, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		return err
	}
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, string(script)); err != nil {
		return err
	}
	g.modules = map[int64]string{}
	rows, err := g.db.QueryContext(ctx, `SELECT ID, module_name FROM module_list`)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var n string
		if err := rows.Scan(&id, &n); err != nil {
			return err
		}
		g.modules[id] = strings.TrimSpace(n)
	}
	return rows.Err()
}

// batch is a multi-row INSERT being filled.
type batch struct {
	conn   *sql.Conn
	prefix string
	marks  string
	rows   int
	sql    strings.Builder
	args   []any
	total  int
}

const batchRows = 1000

func newBatch(conn *sql.Conn, table, cols string) *batch {
	n := strings.Count(cols, ",") + 1
	return &batch{conn: conn, prefix: "INSERT INTO " + table + " (" + cols + ") VALUES ",
		marks: "(" + strings.TrimSuffix(strings.Repeat("?,", n), ",") + ")"}
}

func (b *batch) add(ctx context.Context, vals ...any) error {
	if b.rows == 0 {
		b.sql.Reset()
		b.sql.WriteString(b.prefix)
	} else {
		b.sql.WriteByte(',')
	}
	b.sql.WriteString(b.marks)
	b.args = append(b.args, vals...)
	b.rows++
	if b.rows == batchRows {
		return b.flush(ctx)
	}
	return nil
}

func (b *batch) flush(ctx context.Context) error {
	if b.rows == 0 {
		return nil
	}
	if _, err := b.conn.ExecContext(ctx, b.sql.String(), b.args...); err != nil {
		return err
	}
	b.total += b.rows
	b.rows, b.args = 0, b.args[:0]
	return nil
}

// loader is a connection set up for bulk loading.
func (g *gen) loader(ctx context.Context) (*sql.Conn, error) {
	conn, err := g.db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	for _, q := range []string{`SET foreign_key_checks = 0`, `SET unique_checks = 0`} {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			conn.Close()
			return nil, err
		}
	}
	return conn, nil
}

var osNames = []string{"CentOS 6.5", "CentOS 7", "Debian 11", "Debian 12", "Ubuntu 22", "RHEL 8", "Rocky 9", "SUSE 15"}

// inventory tops the dump up to the wanted counts. Generated servers are
// 10.x.y.z (at most 12 characters, the original server_lip width); the
// first generated application holds BigAppServers of them, the others
// share the rest evenly.
func (g *gen) inventory(ctx context.Context) error {
	conn, err := g.loader(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	count := func(table string) (int, error) {
		var n int
		err := conn.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+table).Scan(&n)
		return n, err
	}
	nf, err := count("server_fun_categ")
	if err != nil {
		return err
	}
	b := newBatch(conn, "server_fun_categ", "server_categ_name")
	for i := nf; i < g.sz.Funs; i++ {
		if err := b.add(ctx, fmt.Sprintf("Linux.Pool%02d", i)); err != nil {
			return err
		}
	}
	if err := b.flush(ctx); err != nil {
		return err
	}
	var funIDs []int64
	if err := selectInts(ctx, conn, `SELECT ID FROM server_fun_categ ORDER BY ID`, &funIDs); err != nil {
		return err
	}
	na, err := count("server_app_categ")
	if err != nil {
		return err
	}
	b = newBatch(conn, "server_app_categ", "server_categ_id, app_categ_name")
	for i := na; i < g.sz.Apps; i++ {
		if err := b.add(ctx, funIDs[i%len(funIDs)], fmt.Sprintf("app%04d.domain.com", i)); err != nil {
			return err
		}
	}
	if err := b.flush(ctx); err != nil {
		return err
	}
	var appIDs []int64
	if err := selectInts(ctx, conn, `SELECT ID FROM server_app_categ ORDER BY ID`, &appIDs); err != nil {
		return err
	}
	appIDs = appIDs[na:] // the generated ones
	if len(appIDs) < 2 {
		return fmt.Errorf("only %d generated applications", len(appIDs))
	}
	rows, err := conn.QueryContext(ctx, `SELECT TRIM(server_lip), TRIM(server_name) FROM server_list ORDER BY server_lip`)
	if err != nil {
		return err
	}
	for rows.Next() {
		var sv server
		if err := rows.Scan(&sv.ip, &sv.name); err != nil {
			rows.Close()
			return err
		}
		g.servers = append(g.servers, sv)
	}
	rows.Close()
	g.nDump = len(g.servers)
	rng := rand.New(rand.NewPCG(1, 2))
	b = newBatch(conn, "server_list", "server_name, server_wip, server_lip, server_op, server_app_id")
	for i := 0; len(g.servers) < g.sz.Servers; i++ {
		app := appIDs[0]
		if i >= g.sz.BigAppServers {
			app = appIDs[1+i%(len(appIDs)-1)]
		}
		sv := server{ip: fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255), name: fmt.Sprintf("srv-%06d", i)}
		if err := b.add(ctx, sv.name, fmt.Sprintf("172.%d.%d.%d", 16+i>>16&15, i>>8&255, i&255), sv.ip,
			osNames[rng.IntN(len(osNames))], app); err != nil {
			return err
		}
		g.servers = append(g.servers, sv)
	}
	return b.flush(ctx)
}

var (
	historyUsers    = []string{"root", "ops", "deploy", "mysql", "www", "backup"}
	historyCommands = []string{"uptime", "df -h", "free -m", "tail -n 200 /var/log/messages", "systemctl restart nginx",
		"vi /etc/nginx/nginx.conf", "ps aux | grep java", "netstat -antp | grep 8080", "top -b -n 1 | head -20",
		"cd /data/www && git pull", "crontab -l", "ls -la /data/backup", "iostat -x 1 3", "mysql -e 'show processlist'"}
)

// history adds server_history rows up to the wanted count: commands of
// random servers over the last two years, each server numbering its own
// events (history_id) as the original collector did.
func (g *gen) history(ctx context.Context) error {
	conn, err := g.loader(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	var have int
	if err := conn.QueryRowContext(ctx, `SELECT COUNT(*) FROM server_history`).Scan(&have); err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(3, 4))
	end := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	seq := map[int]int{}
	n := g.sz.History - have
	b := newBatch(conn, "server_history", "history_id, history_ip, history_user, history_datetime, db_datetime, history_command")
	for i := range n {
		s := rng.IntN(len(g.servers))
		seq[s]++
		at := end.Add(-time.Duration(n-i) * (2 * 365 * 24 * time.Hour / time.Duration(n)))
		if err := b.add(ctx, seq[s], g.servers[s].ip, historyUsers[rng.IntN(len(historyUsers))], at, at.Add(time.Second),
			historyCommands[rng.IntN(len(historyCommands))]); err != nil {
			return err
		}
	}
	return b.flush(ctx)
}

// schemaV3 applies the migrations up to version 3, where the runs tables
// first appear, as a database of that version would hold them.
func (g *gen) schemaV3(ctx context.Context, dsn string) error {
	st, err := store.Open(ctx, store.DialectMySQL, dsn)
	if err != nil {
		return err
	}
	defer st.Close()
	return st.MigrateTo(ctx, 3)
}

// runID is a stable, random-looking 32-hex-digit id (splitmix64 of i), the
// shape of the ids the web tier makes.
func runID(i int) string {
	mix := func(x uint64) uint64 {
		x += 0x9e3779b97f4a7c15
		x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
		x = (x ^ x>>27) * 0x94d049bb133111eb
		return x ^ x>>31
	}
	return fmt.Sprintf("%016x%016x", mix(uint64(i)), mix(uint64(i)^0xfeedface))
}

// output is what module id printed on a host.
func output(rng *rand.Rand, module int64, sv server, at time.Time) string {
	switch module {
	case 1001:
		var b strings.Builder
		for k := range 3 + rng.IntN(4) {
			fmt.Fprintf(&b, "%s %s systemd[1]: Started Session %d of user root.\n", at.Add(time.Duration(k)*time.Second).Format("Jan _2 15:04:05"), sv.name, rng.IntN(90000))
		}
		return b.String()
	case 1002:
		return fmt.Sprintf("root     pts/0        10.0.0.%d        %s   still logged in\nreboot   system boot  6.1.0-18-amd64   %s - 10:02  (3+02:11)\n",
			rng.IntN(250), at.Format("Mon Jan _2 15:04"), at.AddDate(0, 0, -3).Format("Mon Jan _2 15:04"))
	case 1003:
		return fmt.Sprintf("Linux %s 6.1.0-18-amd64 #1 SMP PREEMPT_DYNAMIC Debian 6.1.76-1 (2024-02-01) x86_64 GNU/Linux\n", sv.name)
	case 1004:
		return "Module                  Size  Used by\nnf_conntrack          172032  1\nxfs                  2015232  2\nvirtio_net             61440  0\n"
	case 1006:
		return "worker_processes auto;\nevents { worker_connections 4096; }\nhttp { include mime.types; sendfile on; }\n"
	}
	return "done\n"
}

// runs writes the runs and their results: most runs on one host, one in a
// hundred on five, a few on 500, and one on BigRunHosts (the servers of the
// big application), newest first over three years.
func (g *gen) runs(ctx context.Context) error {
	const writers = 2
	g.bigRun = runID(1000)
	// Written in id order: the clustered index and run_hosts' unique key
	// then grow at one end instead of at random pages, which keeps a load
	// of 1,000,000 runs within a small buffer pool.
	ids := make([]string, g.sz.Runs)
	order := make([]int, g.sz.Runs)
	for i := range order {
		ids[i], order[i] = runID(i), i
	}
	slices.SortFunc(order, func(a, b int) int { return strings.Compare(ids[a], ids[b]) })
	errc := make(chan error, writers)
	chunk := (len(order) + writers - 1) / writers
	for w := range writers {
		part := order[w*chunk : min((w+1)*chunk, len(order))]
		go func() { errc <- g.runsPart(ctx, part) }()
	}
	var first error
	for range writers {
		if err := <-errc; err != nil && first == nil {
			first = err
		}
	}
	return first
}

// runsPart writes the runs numbered in part (0 is the newest run).
func (g *gen) runsPart(ctx context.Context, part []int) error {
	conn, err := g.loader(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	runsB := newBatch(conn, "runs", "id, module_id, module_name, username, params, hosts, status, error, master, created_at, finished_at")
	hostsB := newBatch(conn, "run_hosts", "run_id, host_ip, host_name, status, exit_code, stdout, stderr, stdout_truncated, stderr_truncated, error, started_at, duration_ms")
	end := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	span := 3 * 365 * 24 * time.Hour
	step := span / time.Duration(g.sz.Runs)
	type target struct {
		Host string `json:"ip"`
		Name string `json:"name,omitempty"`
	}
	for _, i := range part {
		rng := rand.New(rand.NewPCG(5, uint64(i))) // the same run whatever the writer
		created := end.Add(-time.Duration(i)*step - time.Duration(rng.IntN(int(step/time.Microsecond)))*time.Microsecond)
		module := int64(1001 + rng.IntN(7))
		params := "{}"
		if module == 1001 || module == 1002 {
			params = `{"sys_param_1":"50"}`
		}
		var idx []int
		switch {
		case i == 1000:
			for k := range g.sz.BigRunHosts {
				idx = append(idx, g.nDump+k) // the big application's servers
			}
		case i%200000 == 5000:
			for range 500 {
				idx = append(idx, rng.IntN(len(g.servers)))
			}
		case i%100 == 0:
			for range 5 {
				idx = append(idx, rng.IntN(len(g.servers)))
			}
		default:
			idx = []int{rng.IntN(len(g.servers))}
		}
		idx = dedupe(idx)
		hosts := make([]target, len(idx))
		for k, s := range idx {
			hosts[k] = target{Host: g.servers[s].ip, Name: g.servers[s].name}
		}
		hj, _ := json.Marshal(hosts)
		status := "done"
		switch r := rng.IntN(100); {
		case i == 1000 || r < 3:
			status = "failed"
		case r < 4:
			status = "cancelled"
		case r < 5:
			status = "interrupted"
		}
		errText := ""
		if status == "interrupted" {
			errText = "the web tier stopped while the run was in progress"
		}
		finished := created.Add(time.Duration(200+rng.IntN(5000)) * time.Millisecond)
		if err := runsB.add(ctx, runID(i), module, g.modules[module], fmt.Sprintf("ops%02d", rng.IntN(30)+1), params, string(hj),
			status, errText, "127.0.0.1:7070", created, finished); err != nil {
			return err
		}
		for k, s := range idx {
			hs, exit, stderr, herr := "ok", 0, "", ""
			switch {
			case status == "interrupted" && k == len(idx)-1:
				continue // the host that never answered
			case status == "failed" && (k == 0 || i == 1000 && rng.IntN(50) == 0):
				hs, exit, stderr = "failed", 1, "command exited with status 1\n"
			case status == "cancelled" && k == 0:
				hs, exit, herr = "cancelled", -1, "cancelled by the operator"
			case i == 1000 && rng.IntN(100) == 0:
				hs, exit, herr = "unreachable", -1, "dial tcp "+g.servers[s].ip+":22: connect: connection refused"
			}
			stdout := ""
			if hs == "ok" || hs == "failed" {
				stdout = output(rng, module, g.servers[s], created)
			}
			if err := hostsB.add(ctx, runID(i), g.servers[s].ip, g.servers[s].name, hs, exit, stdout, stderr, false, false, herr,
				created.Add(time.Duration(k)*time.Millisecond), 50+rng.IntN(3000)); err != nil {
				return err
			}
		}
	}
	if err := runsB.flush(ctx); err != nil {
		return err
	}
	return hostsB.flush(ctx)
}

func dedupe(idx []int) []int {
	seen := make(map[int]bool, len(idx))
	out := idx[:0]
	for _, v := range idx {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}

// audit writes the audit log: a run.start for most runs and the logins
// around them, newest last (ids grow with time, as the web tier writes).
func (g *gen) audit(ctx context.Context) error {
	conn, err := g.loader(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	rng := rand.New(rand.NewPCG(7, 8))
	end := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	step := 3 * 365 * 24 * time.Hour / time.Duration(g.sz.Audit)
	b := newBatch(conn, "audit_log", "at, username, action, detail, remote_addr")
	for i := range g.sz.Audit {
		at := end.Add(-time.Duration(g.sz.Audit-i) * step)
		user := fmt.Sprintf("ops%02d", rng.IntN(30)+1)
		action, detail := "login", ""
		if i%4 != 0 {
			action = "run.start"
			detail = fmt.Sprintf("run %s module %d hosts %s", runID(rng.IntN(g.sz.Runs)), 1001+rng.IntN(7), g.servers[rng.IntN(len(g.servers))].ip)
		}
		if err := b.add(ctx, at, user, action, detail, fmt.Sprintf("10.200.%d.%d", rng.IntN(4), rng.IntN(250)+1)); err != nil {
			return err
		}
	}
	return b.flush(ctx)
}

// analyze refreshes the optimizer's statistics after the bulk load.
func (g *gen) analyze(ctx context.Context) error {
	_, err := g.db.ExecContext(ctx, `ANALYZE TABLE server_fun_categ, server_app_categ, server_list, server_history, runs, run_hosts, audit_log`)
	return err
}

func selectInts(ctx context.Context, conn *sql.Conn, q string, dst *[]int64, args ...any) error {
	rows, err := conn.QueryContext(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var v int64
		if err := rows.Scan(&v); err != nil {
			return err
		}
		*dst = append(*dst, v)
	}
	return rows.Err()
}
