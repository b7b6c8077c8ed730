package web

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/omserver/omserver-go/internal/store"
	"github.com/omserver/omserver-go/internal/task"
)

func TestSchedulesAPIAndPage(t *testing.T) {
	e := newEnv(t)
	now := time.Date(2026, 5, 1, 8, 0, 30, 0, time.UTC)
	e.srv.sched.SetClock(func() time.Time { return now })
	body := `{"name":"nightly os","module_id":1003,"target_kind":"app","target_id":1,"cron":"*/10 * * * *"}`
	e.do(req{method: "POST", path: "/api/v1/schedules", as: "viewer", body: body}).want(t, http.StatusForbidden)
	e.do(req{method: "POST", path: "/api/v1/schedules", as: "operator", body: `{"name":"x","module_id":1003,"target_kind":"app","target_id":1,"cron":"@every 5s"}`}).
		want(t, http.StatusBadRequest, "shortest allowed")
	e.do(req{method: "POST", path: "/api/v1/schedules", as: "operator", body: `{"name":"x","module_id":1001,"params":{"sys_param_1":"lots"},"target_kind":"app","target_id":1,"cron":"@daily"}`}).
		want(t, http.StatusBadRequest)
	created := e.do(req{method: "POST", path: "/api/v1/schedules", as: "operator", body: body}).want(t, http.StatusCreated, `"next_at":"2026-05-01T08:10:00Z"`)
	var sc store.Schedule
	if err := json.Unmarshal([]byte(created.body), &sc); err != nil {
		t.Fatal(err)
	}
	e.do(req{method: "POST", path: "/api/v1/schedules", as: "operator", body: body}).want(t, http.StatusConflict)

	// It fires at its time: one run on the application's servers.
	now = time.Date(2026, 5, 1, 8, 10, 0, 0, time.UTC)
	if n, err := e.srv.sched.Tick(context.Background()); err != nil || n != 1 {
		t.Fatalf("tick started %d, %v", n, err)
	}
	call := e.master.nextCall(t)
	if call.Task.ModuleID != 1003 || len(call.Task.Hosts) != 2 || !strings.HasPrefix(call.Task.User, "schedule:") {
		t.Fatalf("task %+v", call.Task)
	}
	for _, h := range call.Task.Hosts {
		call.send(t, result(h.IP, h.Name, task.StatusOK, "Linux"))
	}
	call.Finish <- nil
	e.waitStatus(call.Task.RunID, task.RunOK)
	e.do(req{method: "GET", path: "/api/v1/schedules/" + itoa(sc.ID) + "/history", as: "viewer"}).want(t, http.StatusOK, `"outcome":"started"`, call.Task.RunID)
	e.do(req{method: "GET", path: "/schedules/" + itoa(sc.ID), as: "viewer"}).want(t, http.StatusOK, "nightly os", call.Task.RunID, "started")

	// Paused through the page: no fire; the audit log has it.
	e.do(req{method: "POST", path: "/schedules/" + itoa(sc.ID) + "/pause", as: "viewer", header: map[string]string{"Origin": e.ts.URL}}).want(t, http.StatusForbidden)
	e.do(req{method: "POST", path: "/schedules/" + itoa(sc.ID) + "/pause", as: "operator", header: map[string]string{"Origin": e.ts.URL}}).want(t, http.StatusSeeOther)
	now = time.Date(2026, 5, 1, 8, 20, 0, 0, time.UTC)
	if n, _ := e.srv.sched.Tick(context.Background()); n != 0 {
		t.Fatal("a paused schedule fired")
	}
	e.master.assertNoCall(t)
	e.do(req{method: "GET", path: "/api/v1/schedules", as: "viewer"}).want(t, http.StatusOK, `"enabled":false`)
	e.do(req{method: "POST", path: "/api/v1/schedules/" + itoa(sc.ID) + "/resume", as: "operator"}).want(t, http.StatusOK, `"next_at":"2026-05-01T08:30:00Z"`)
	e.do(req{method: "GET", path: "/api/v1/audit?action=schedule.pause", as: "admin"}).want(t, http.StatusOK, "nightly os")

	// Created from the page form, then deleted.
	form := form("name", "web hosts", "module_id", "1001", "params", "sys_param_1=20", "target_kind", "hosts",
		"hosts", "192.168.1.10\n192.168.1.20", "cron", "0 3 * * *", "enabled", "on")
	e.do(req{method: "POST", path: "/schedules", as: "operator", body: form, header: map[string]string{"Origin": e.ts.URL}}).want(t, http.StatusSeeOther)
	list := e.do(req{method: "GET", path: "/api/v1/schedules", as: "viewer"}).want(t, http.StatusOK, `"web hosts"`, `"sys_param_1":"20"`, `"192.168.1.20"`)
	var got struct{ Schedules []store.Schedule }
	_ = json.Unmarshal([]byte(list.body), &got)
	for _, x := range got.Schedules {
		e.do(req{method: "DELETE", path: "/api/v1/schedules/" + itoa(x.ID), as: "operator"}).want(t, http.StatusNoContent)
	}
	e.do(req{method: "GET", path: "/schedules", as: "viewer"}).want(t, http.StatusOK, "No schedule yet")
}
