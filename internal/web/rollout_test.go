package web

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/omserver/omserver-go/internal/notify"
	"github.com/omserver/omserver-go/internal/task"
)

// A run may ask for a narrower rollout; it reaches the master in the task,
// and hosts a stopped rollout skipped are recorded and counted as skipped.
func TestRunRolloutRequestAndSkipped(t *testing.T) {
	e := newEnv(t)
	e.do(req{method: "POST", path: "/api/v1/runs", as: "operator", body: `{"module_id":1003,"hosts":["192.168.1.10"],"rollout":{"batch_size":1,"batch_percent":10}}`}).
		want(t, http.StatusBadRequest, "size or a percent")
	e.do(req{method: "POST", path: "/api/v1/runs", as: "operator", body: `{"module_id":1003,"hosts":["192.168.1.10"],"rollout":{"canary_wait":"soon"}}`}).
		want(t, http.StatusBadRequest, "canary_wait")
	id := e.startRun("operator", `{"module_id":1003,"hosts":["192.168.1.10","192.168.1.20"],"rollout":{"batch_size":1,"canary":true,"canary_wait":"2m","max_failures":0}}`)
	call := e.master.nextCall(t)
	if ro := call.Task.Rollout; ro == nil || ro.BatchSize != 1 || !ro.Canary || ro.CanaryWait != 2*time.Minute {
		t.Fatalf("task rollout %+v", call.Task.Rollout)
	}
	call.send(t, result("192.168.1.10", "sn2012-07-010", task.StatusFailed, "boom"))
	sk := result("192.168.1.20", "sn2013-08-020", task.StatusSkipped, "")
	sk.Error = "rollout stopped: 1 host(s) failed, more than the 0 allowed"
	call.send(t, sk)
	call.Finish <- nil
	run := e.waitStatus(id, task.RunFailed)
	if run.Summary[task.StatusSkipped] != 1 || run.Summary[task.StatusFailed] != 1 {
		t.Fatalf("summary %+v", run.Summary)
	}
	e.do(req{method: "GET", path: "/runs", as: "viewer"}).want(t, http.StatusOK, `data-status="skipped">skipped 1<`)
}

// A rollout paused for an operator: the stream says so (also to a reader
// who subscribes during the pause), the webhook channel hears run.paused,
// and Continue reaches the master only while the run waits, only from an
// operator, and is audited.
func TestRunContinueAPIAndPausedNotice(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Notify.PollInterval = 50 * time.Millisecond })
	if err := e.srv.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	recv, hook := newHookReceiver(t, "hmac-key")
	e.do(req{method: "POST", path: "/api/v1/notify/channels", as: "admin",
		body: `{"name":"ops","kind":"webhook","events":["run.paused"],"settings":{"url":"` + hook.URL + `","secret":"hmac-key"}}`}).want(t, http.StatusCreated)

	id := e.startRun("operator", `{"module_id":1003,"hosts":["192.168.1.10","192.168.1.20"],"rollout":{"batch_size":1,"canary_confirm":true}}`)
	call := e.master.nextCall(t)
	if ro := call.Task.Rollout; ro == nil || !ro.Canary || !ro.CanaryConfirm {
		t.Fatalf("task rollout %+v", call.Task.Rollout)
	}
	cont := "/api/v1/runs/" + id + "/continue"
	e.do(req{method: "POST", path: cont, as: "operator"}).want(t, http.StatusConflict, "not waiting")
	e.do(req{method: "POST", path: "/api/v1/runs/nosuchrun/continue", as: "operator"}).want(t, http.StatusNotFound)

	call.Batches <- task.Batch{Index: 1, Count: 2, Hosts: 1}
	call.send(t, result("192.168.1.10", "sn2012-07-010", task.StatusOK, "ok"))
	until := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	call.Batches <- task.Batch{Index: 2, Count: 2, Hosts: 1, Paused: true, Confirm: true, Until: until}

	if m := recv.next(t); m.Event != notify.EventPaused || m.RunID != id || !strings.Contains(m.Detail, "batch 2 of 2") {
		t.Fatalf("paused notification %+v", m)
	}
	// A reader arriving during the pause is told at once.
	sse := e.openEvents(id, "viewer")
	for ev := sse.next(); ev.Name != "batch"; ev = sse.next() {
		if ev.Name == "done" {
			t.Fatal("the stream ended without the pause")
		}
	}

	e.do(req{method: "POST", path: cont, as: "viewer"}).want(t, http.StatusForbidden)
	e.master.assertNoContinue(t)
	e.do(req{method: "POST", path: cont, as: "operator"}).want(t, http.StatusAccepted, `"continuing"`)
	if got := <-e.master.continues; got != id {
		t.Fatalf("continue reached the master for %q", got)
	}
	e.do(req{method: "POST", path: cont, as: "operator"}).want(t, http.StatusConflict, "not waiting")

	call.Batches <- task.Batch{Index: 2, Count: 2, Hosts: 1}
	ev := sse.next()
	if ev.Name != "batch" || !strings.Contains(ev.Data, `"index":2`) || strings.Contains(ev.Data, "paused") {
		t.Fatalf("after continue the stream sent %s %s", ev.Name, ev.Data)
	}
	call.send(t, result("192.168.1.20", "sn2013-08-020", task.StatusOK, "ok"))
	call.Finish <- nil
	e.waitStatus(id, task.RunOK)
	e.do(req{method: "POST", path: cont, as: "operator"}).want(t, http.StatusConflict, "not running")
	e.do(req{method: "GET", path: "/api/v1/audit?action=run.continue", as: "admin"}).want(t, http.StatusOK, id)
}
