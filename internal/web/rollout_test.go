package web

import (
	"net/http"
	"testing"
	"time"

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
