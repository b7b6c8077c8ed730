package web

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/omserver/omserver-go/internal/notify"
	"github.com/omserver/omserver-go/internal/task"
)

// hookReceiver is a webhook receiver on loopback that verifies signatures.
type hookReceiver struct {
	mu       sync.Mutex
	messages []notify.Message
	bad      int
	got      chan notify.Message
}

func newHookReceiver(t *testing.T, secret string) (*hookReceiver, *httptest.Server) {
	h := &hookReceiver{got: make(chan notify.Message, 16)}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := notify.VerifyWebhook(secret, r.Header, body, time.Now(), time.Minute); err != nil {
			h.mu.Lock()
			h.bad++
			h.mu.Unlock()
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		var m notify.Message
		_ = json.Unmarshal(body, &m)
		h.mu.Lock()
		h.messages = append(h.messages, m)
		h.mu.Unlock()
		h.got <- m
	}))
	t.Cleanup(ts.Close)
	return h, ts
}

func (h *hookReceiver) next(t *testing.T) notify.Message {
	t.Helper()
	select {
	case m := <-h.got:
		return m
	case <-time.After(testTimeout):
		t.Fatal("no notification arrived")
		return notify.Message{}
	}
}

func TestNotificationChannelsAndRunNotice(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.BaseURL = "https://ops.example.com"
		c.Notify.PollInterval = 50 * time.Millisecond
	})
	if err := e.srv.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	recv, hook := newHookReceiver(t, "hmac-key")

	// Only admins manage channels.
	body := `{"name":"ops-hook","kind":"webhook","events":["run.failed","run.finished"],"settings":{"url":"` + hook.URL + `/in?token=TOKEN1","secret":"hmac-key"}}`
	e.do(req{method: "POST", path: "/api/v1/notify/channels", as: "operator", body: body}).want(t, http.StatusForbidden)
	e.do(req{method: "GET", path: "/notifications", as: "operator"}).want(t, http.StatusForbidden)
	created := e.do(req{method: "POST", path: "/api/v1/notify/channels", as: "admin", body: body}).want(t, http.StatusCreated, `"secret_set":true`)
	if strings.Contains(created.body, "hmac-key") || strings.Contains(created.body, "TOKEN1") {
		t.Fatalf("the answer shows a secret: %s", created.body)
	}
	var v notify.View
	if err := json.Unmarshal([]byte(created.body), &v); err != nil || v.ID == 0 {
		t.Fatalf("created %s", created.body)
	}
	// Bad settings are refused and change nothing.
	e.do(req{method: "POST", path: "/api/v1/notify/channels", as: "admin", body: `{"name":"x","kind":"webhook","events":["run.failed"],"settings":{"url":"` + hook.URL + `"}}`}).want(t, http.StatusBadRequest, "needs a secret")
	list := e.do(req{method: "GET", path: "/api/v1/notify/channels", as: "admin"}).want(t, http.StatusOK, "ops-hook")
	if strings.Contains(list.body, "hmac-key") || strings.Count(list.body, `"id"`) != 1 {
		t.Fatalf("list %s", list.body)
	}
	page := e.do(req{method: "GET", path: "/notifications?channel=" + itoa(v.ID), as: "admin"}).want(t, http.StatusOK, "ops-hook", "Recent deliveries")
	if strings.Contains(page.body, "hmac-key") || strings.Contains(page.body, "TOKEN1") {
		t.Fatal("the page shows a secret")
	}

	// The test button sends a signed test message now.
	e.do(req{method: "POST", path: "/api/v1/notify/channels/" + itoa(v.ID) + "/test", as: "admin"}).want(t, http.StatusOK, `"sent":true`)
	if m := recv.next(t); m.Event != notify.EventTest {
		t.Fatalf("test message %+v", m)
	}
	// An edit with a blank secret keeps it (the test still verifies).
	e.do(req{method: "PUT", path: "/api/v1/notify/channels/" + itoa(v.ID), as: "admin",
		body: `{"name":"ops-hook","kind":"webhook","events":["run.failed"],"settings":{}}`}).want(t, http.StatusOK)
	e.do(req{method: "POST", path: "/notifications/" + itoa(v.ID) + "/test", as: "admin", header: map[string]string{"Origin": e.ts.URL}}).want(t, http.StatusOK, "Test message sent")
	recv.next(t)

	// A run with a failed host notifies the channel, signed, with the link.
	id := e.startRun("operator", `{"module_id":1003,"hosts":["192.168.1.10","192.168.1.20"]}`)
	call := e.master.nextCall(t)
	call.send(t, result("192.168.1.10", "sn2012-07-010", task.StatusOK, "ok"))
	call.send(t, result("192.168.1.20", "sn2013-08-020", task.StatusFailed, "boom"))
	call.Finish <- nil
	e.waitStatus(id, task.RunPartial)
	m := recv.next(t)
	if m.Event != notify.EventFailed || m.RunID != id || m.Summary[task.StatusFailed] != 1 || m.URL != "https://ops.example.com/runs/"+id || m.User != "operator" {
		t.Fatalf("notification %+v", m)
	}
	// A run where every host is ok is "finished", which the channel no
	// longer subscribes to: nothing is sent.
	id2 := e.startRun("operator", `{"module_id":1003,"hosts":["192.168.1.10"]}`)
	call = e.master.nextCall(t)
	call.send(t, result("192.168.1.10", "sn2012-07-010", task.StatusOK, "ok"))
	call.Finish <- nil
	e.waitStatus(id2, task.RunOK)
	deliveries := e.do(req{method: "GET", path: "/api/v1/notify/channels/" + itoa(v.ID) + "/deliveries", as: "admin"}).want(t, http.StatusOK, id)
	if strings.Contains(deliveries.body, id2) {
		t.Fatalf("a delivery for an unsubscribed event: %s", deliveries.body)
	}
	recv.mu.Lock()
	if recv.bad != 0 {
		t.Errorf("%d deliveries did not verify", recv.bad)
	}
	recv.mu.Unlock()

	e.do(req{method: "DELETE", path: "/api/v1/notify/channels/" + itoa(v.ID), as: "admin"}).want(t, http.StatusNoContent)
	e.do(req{method: "GET", path: "/api/v1/notify/channels/" + itoa(v.ID) + "/deliveries", as: "admin"}).want(t, http.StatusNotFound)
}

// A channel that is down never fails or delays a run.
func TestNotificationFailureNeverFailsRun(t *testing.T) {
	e := newEnv(t)
	if err := e.srv.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	e.do(req{method: "POST", path: "/api/v1/notify/channels", as: "admin",
		body: `{"name":"down","kind":"wecom","events":["run.failed","run.finished"],"settings":{"url":"http://127.0.0.1:1/cgi-bin/webhook/send?key=k"}}`}).want(t, http.StatusCreated)
	id := e.startRun("operator", `{"module_id":1003,"hosts":["192.168.1.10"]}`)
	call := e.master.nextCall(t)
	call.send(t, result("192.168.1.10", "sn2012-07-010", task.StatusOK, "ok"))
	call.Finish <- nil
	run := e.waitStatus(id, task.RunOK)
	if run.Error != "" {
		t.Fatalf("run error %q", run.Error)
	}
}
