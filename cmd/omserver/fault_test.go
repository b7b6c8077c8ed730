package main

// The fault suite: the real omserver binaries under crashes, stops and
// outages. Each test proves with the counter file on the targets that
// every command ran exactly once, and reads the web tier's database to
// check that every result is stored with the right final status. The
// guarantee being tested is written down in docs/DELIVERY.md.

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/omserver/omserver-go/internal/task"
	"github.com/omserver/omserver-go/internal/testutil/mysqltest"
)

// oneMaster starts a master (journal in the test's directory) and returns
// its options and process.
func (e *faultEnv) oneMaster(drain time.Duration) (masterOpts, *proc) {
	a := addrs(e.t, 2)
	o := masterOpts{relay: a[0], http: a[1], journal: filepath.Join(e.dir, "journal.db"), drain: drain}
	return o, e.startMaster("master", o)
}

// TestFaultKillWebMidRun: the web tier is killed (-9) while the hosts
// work; the master finishes the run alone and keeps its events; the
// restarted web tier takes its run back and stores every result.
func TestFaultKillWebMidRun(t *testing.T) {
	e := newFaultEnv(t)
	db := filepath.Join(e.dir, "web.db")
	e.seed("sqlite", db)
	mo, _ := e.oneMaster(0)
	wo := webOpts{listen: addrs(t, 1)[0], tier: "web1", driver: "sqlite", dsn: db, masters: []string{mo.relay}}
	w := e.startWeb(wo)

	id := e.submit(wo.listen, 3)
	e.waitStarted(30 * time.Second)
	w.kill()
	// The commands end while no web tier is there to hear it.
	time.Sleep(5 * time.Second)
	if run, results := storedRun(t, "sqlite", db, id); run.Status != task.RunRunning || len(results) != 0 {
		t.Fatalf("with the web tier dead the run is %s with %d results", run.Status, len(results))
	}
	w.restart()
	e.waitUp(w, "http://"+wo.listen+"/login")
	run, results := waitRunStatus(t, time.Minute, "sqlite", db, id, task.RunOK)
	assertResults(t, results, task.StatusOK, e.hosts...)
	e.assertRanOnce()
	if run.Master != mo.relay || run.AckedSeq == 0 {
		t.Fatalf("run record: master %q, acked_seq %d", run.Master, run.AckedSeq)
	}
}

// TestFaultKillMasterMidRun: the master is killed (-9) mid-run and
// restarted on the same journal: it knows it lost the run, the web tier
// records it interrupted, nothing is run again, and new runs work.
func TestFaultKillMasterMidRun(t *testing.T) {
	e := newFaultEnv(t)
	db := filepath.Join(e.dir, "web.db")
	e.seed("sqlite", db)
	mo, m := e.oneMaster(0)
	wo := webOpts{listen: addrs(t, 1)[0], tier: "web1", driver: "sqlite", dsn: db, masters: []string{mo.relay}}
	e.startWeb(wo)

	id := e.submit(wo.listen, 30)
	e.waitStarted(30 * time.Second)
	m.kill()
	m.restart()
	e.waitUp(m, "http://"+mo.http+"/healthz")
	run, results := waitRunStatus(t, time.Minute, "sqlite", db, id, task.RunInterrupted)
	if len(results) != 0 || !strings.Contains(run.Error, "lost the run") {
		t.Fatalf("interrupted run: %d results, error %q", len(results), run.Error)
	}
	e.assertRanOnce()

	// The restarted master takes new runs; the lost one is never re-sent.
	id2 := e.submit(wo.listen, 0)
	_, results = waitRunStatus(t, time.Minute, "sqlite", db, id2, task.RunOK)
	assertResults(t, results, task.StatusOK, e.hosts...)
	for _, h := range e.hosts {
		if n := e.counts()[h]; n != 2 {
			t.Fatalf("host %s ran %d commands, want 2 (one per run)", h, n)
		}
	}
}

// TestFaultSigtermMasterDrains: SIGTERM lets running tasks finish within
// the drain while the relay keeps delivering their events; runs sent
// meanwhile are refused with nothing run.
func TestFaultSigtermMasterDrains(t *testing.T) {
	e := newFaultEnv(t)
	db := filepath.Join(e.dir, "web.db")
	e.seed("sqlite", db)
	mo, m := e.oneMaster(30 * time.Second)
	wo := webOpts{listen: addrs(t, 1)[0], tier: "web1", driver: "sqlite", dsn: db, masters: []string{mo.relay}}
	e.startWeb(wo)

	id := e.submit(wo.listen, 4)
	e.waitStarted(30 * time.Second)
	_ = m.cmd.Process.Signal(syscall.SIGTERM)
	time.Sleep(500 * time.Millisecond)
	late := e.submit(wo.listen, 0, e.hosts[0])
	if err := m.terminate(90 * time.Second); err != nil {
		t.Fatalf("master exit: %v", err)
	}
	_, results := waitRunStatus(t, time.Minute, "sqlite", db, id, task.RunOK)
	assertResults(t, results, task.StatusOK, e.hosts...)
	run, results := waitRunStatus(t, time.Minute, "sqlite", db, late, task.RunFailed)
	if len(results) != 0 || !strings.Contains(run.Error, "unreachable") {
		t.Fatalf("run sent to a stopping master: %d results, error %q", len(results), run.Error)
	}
	e.assertRanOnce()
}

// TestFaultSigtermMasterCancelsAfterDrain: tasks still running when the
// drain ends are cancelled, every host is reported cancelled, and the run
// is recorded cancelled.
func TestFaultSigtermMasterCancelsAfterDrain(t *testing.T) {
	e := newFaultEnv(t)
	db := filepath.Join(e.dir, "web.db")
	e.seed("sqlite", db)
	mo, m := e.oneMaster(2 * time.Second)
	wo := webOpts{listen: addrs(t, 1)[0], tier: "web1", driver: "sqlite", dsn: db, masters: []string{mo.relay}}
	e.startWeb(wo)

	id := e.submit(wo.listen, 120)
	e.waitStarted(30 * time.Second)
	start := time.Now()
	if err := m.terminate(90 * time.Second); err != nil {
		t.Fatalf("master exit: %v", err)
	}
	if took := time.Since(start); took > 45*time.Second {
		t.Fatalf("master took %s to stop with a drain of 2s", took)
	}
	run, results := waitRunStatus(t, time.Minute, "sqlite", db, id, task.RunCancelled)
	assertResults(t, results, task.StatusCancelled, e.hosts...)
	if !strings.Contains(run.Error, "shutting down") {
		t.Fatalf("cancelled run's error %q does not say why", run.Error)
	}
	e.assertRanOnce()
}

// TestFaultMariaDBRestartMidRun: the web tier's MariaDB stops while the
// hosts work. Results wait (nothing is acknowledged to the master), the
// API answers 503 with Retry-After (never 401), and once MariaDB is back
// every result is stored and the run is done.
func TestFaultMariaDBRestartMidRun(t *testing.T) {
	e := newFaultEnv(t)
	mdb := startOwnMariaDB(t)
	e.seed("mysql", mdb.dsn())
	mo, _ := e.oneMaster(0)
	wo := webOpts{listen: addrs(t, 1)[0], tier: "web1", driver: "mysql", dsn: mdb.dsn(), masters: []string{mo.relay}}
	e.startWeb(wo)

	id := e.submit(wo.listen, 3)
	e.waitStarted(30 * time.Second)
	mdb.stop()
	code, body, hdr := e.api("GET", "http://"+wo.listen+"/api/v1/runs/"+id, "")
	if code != http.StatusServiceUnavailable || hdr.Get("Retry-After") == "" {
		t.Fatalf("API with the database down: %d (Retry-After %q) %s; want 503 with Retry-After", code, hdr.Get("Retry-After"), body)
	}
	time.Sleep(5 * time.Second) // the commands end during the outage
	mdb.start()
	run, results := waitRunStatus(t, 2*time.Minute, "mysql", mdb.dsn(), id, task.RunOK)
	assertResults(t, results, task.StatusOK, e.hosts...)
	e.assertRanOnce()
	if run.Master != mo.relay {
		t.Fatalf("run master %q", run.Master)
	}
	if code, body, _ := e.api("GET", "http://"+wo.listen+"/api/v1/runs/"+id, ""); code != http.StatusOK {
		t.Fatalf("API once the database is back: %d %s", code, body)
	}
}

// TestFaultFullDiskWebDatabase: the web tier's SQLite sits on a small
// tmpfs that fills up mid-run; results wait until space is freed, then
// all are stored.
func TestFaultFullDiskWebDatabase(t *testing.T) {
	e := newFaultEnv(t)
	disk := tmpfs(t, "24m")
	db := filepath.Join(disk, "web.db")
	e.seed("sqlite", db)
	mo, _ := e.oneMaster(0)
	wo := webOpts{listen: addrs(t, 1)[0], tier: "web1", driver: "sqlite", dsn: db, masters: []string{mo.relay}}
	e.startWeb(wo)

	id := e.submit(wo.listen, 3)
	e.waitStarted(30 * time.Second)
	filler := fill(t, disk)
	time.Sleep(6 * time.Second) // the commands end; their results cannot be written
	if run, results := storedRun(t, "sqlite", db, id); run.Status != task.RunRunning || len(results) == len(e.hosts) {
		t.Fatalf("on a full disk the run is %s with %d results", run.Status, len(results))
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	_, results := waitRunStatus(t, time.Minute, "sqlite", db, id, task.RunOK)
	assertResults(t, results, task.StatusOK, e.hosts...)
	e.assertRanOnce()
}

// TestFaultTwoWebTiersOneKilled: two web tiers on one MySQL. A run started
// on tier A is shown live on tier B, a run of A is cancelled from B, and
// when A is killed (-9) B takes its runs over once A's lease expires.
func TestFaultTwoWebTiersOneKilled(t *testing.T) {
	e := newFaultEnv(t)
	dsn := mysqltest.New(t)
	e.seed("mysql", dsn)
	mo, _ := e.oneMaster(0)
	la := addrs(t, 2)
	a := e.startWeb(webOpts{listen: la[0], tier: "tier-a", driver: "mysql", dsn: dsn, masters: []string{mo.relay}})
	e.startWeb(webOpts{listen: la[1], tier: "tier-b", driver: "mysql", dsn: dsn, masters: []string{mo.relay}})

	first, second := e.hosts[:2], e.hosts[2:]
	run1 := e.submit(la[0], 5, first...)
	run2 := e.submit(la[0], 120, second...)
	e.waitStarted(30*time.Second, e.hosts...)
	live := e.sseResults(la[1], run1)
	// Cancel on B a run A owns: it goes through the master.
	if code, body, _ := e.api("POST", "http://"+la[1]+"/api/v1/runs/"+run2+"/cancel", ""); code != http.StatusAccepted {
		t.Fatalf("cancel from tier B: %d %s", code, body)
	}
	a.kill()

	seen := map[string]bool{}
	waitUntil(t, 2*time.Minute, "tier B showing run 1 to its end", func() bool {
		select {
		case h, ok := <-live:
			if !ok {
				t.Fatalf("tier B's stream ended early; saw %v", seen)
			}
			seen[h] = true
		default:
		}
		return seen["done"]
	})
	if !seen[first[0]] || !seen[first[1]] {
		t.Fatalf("tier B showed %v live, want both hosts' results", seen)
	}
	_, results := waitRunStatus(t, time.Minute, "mysql", dsn, run1, task.RunOK)
	assertResults(t, results, task.StatusOK, first...)
	_, results = waitRunStatus(t, time.Minute, "mysql", dsn, run2, task.RunCancelled)
	assertResults(t, results, task.StatusCancelled, second...)
	e.assertRanOnce()
}

// TestFaultSaltTokenDroppedMidCommand: with the salt backend, salt-api
// stops honouring the token while commands run (as after a salt master
// restart); salt's find_job poll then answers 401 for jobs that run on.
// The master must not send the command again (issue 7 saw real salt-api
// 3006 run it twice): each command runs once, is stopped on the minion,
// and each host is recorded failed.
func TestFaultSaltTokenDroppedMidCommand(t *testing.T) {
	e := newFaultEnv(t)
	salt := newSaltFake(t)
	db := filepath.Join(e.dir, "web.db")
	e.seed("sqlite", db)
	a := addrs(t, 3)
	mo := masterOpts{relay: a[0], http: a[1], journal: filepath.Join(e.dir, "journal.db"), backend: "salt",
		extra: fmt.Sprintf("  salt:\n    url: %s\n    username: %s\n    eauth: pam\n    ca_file: %s\n", salt.srv.URL, saltUser, salt.caFile)}
	e.startMaster("master", mo)
	wo := webOpts{listen: a[2], tier: "web1", driver: "sqlite", dsn: db, masters: []string{mo.relay}}
	e.startWeb(wo)

	// Minion ids are the servers' names (target1, target2).
	id := e.submit(wo.listen, 60, e.hosts[0], e.hosts[1])
	minions := []string{"target1", "target2"}
	e.waitStarted(30*time.Second, minions...)
	salt.dropTokens()
	run, results := waitRunStatus(t, 2*time.Minute, "sqlite", db, id, task.RunFailed)
	assertResults(t, results, task.StatusFailed, e.hosts[0], e.hosts[1])
	for _, r := range results {
		if !strings.Contains(r.Error, "not sent again") || !strings.Contains(r.Error, "401") {
			t.Fatalf("host %s error %q does not say the command was stopped, not resent", r.Host, r.Error)
		}
	}
	e.assertRanOnce(minions...)
	commands, kills := salt.counts()
	if commands["target1"] != 1 || commands["target2"] != 1 || kills < 2 {
		t.Fatalf("salt-api saw commands %v and %d kill scripts; want each command once and each stopped", commands, kills)
	}
	if run.Error != "" {
		t.Logf("run error: %s", run.Error)
	}
}
