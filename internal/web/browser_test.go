package web

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/omserver/omserver-go/internal/store"
	"github.com/omserver/omserver-go/internal/task"
	"github.com/omserver/omserver-go/internal/testutil/browsertest"
)

// The dashboard's and run page's JavaScript in a real headless Chromium,
// against the fake master: the whole-product flow on the real master is
// internal/demo's browser test; this one covers what only the fake can
// drive (cancel, hostile output, a run that fails while watched).

func TestDashboardInBrowser(t *testing.T) {
	e := newEnv(t)
	ctx := browsertest.New(t, 150*time.Second)
	err := chromedp.Do(ctx,
		chromedp.Navigate(e.ts.URL+"/login"),
		chromedp.SendKeys(chromedp.CSS(`#username`), "operator"),
		chromedp.SendKeys(chromedp.CSS(`#password`), testPassword),
		chromedp.Click(chromedp.CSS(`#login-submit`)),
		chromedp.WaitReady(chromedp.CSS(`#fun-categ option[value="11"]`)),
		browsertest.Choose("#fun-categ", "11"),
		chromedp.WaitReady(chromedp.CSS(`#app-categ option[value="1"]`)),
		browsertest.Choose("#app-categ", "1"),
		chromedp.WaitReady(chromedp.CSS(`#servers option[value="192.168.1.20"]`)),
		browsertest.Choose("#servers", "192.168.1.10"),
		browsertest.Choose("#servers", "192.168.1.20"),
	)
	if err != nil {
		t.Fatalf("choosing servers: %v", err)
	}
	text, err := chromedp.Run(ctx, chromedp.TextContent(chromedp.CSS(`#servers option[value="192.168.1.10"]`)))
	if err != nil || text != "192.168.1.10 (sn2012-07-010)" {
		t.Fatalf("server shown as %q (%v)", text, err)
	}
	err = chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`#show-hostname`)),
		chromedp.Poll[chromedp.Void](`document.querySelector('#servers option[value="192.168.1.10"]').textContent === "sn2012-07-010"`),
		// The choice survives the toggle.
		chromedp.Poll[chromedp.Void](`document.querySelector('#servers').selectedOptions.length === 2`),
		browsertest.Choose("#module", "1001"),
		chromedp.WaitReady(chromedp.CSS(`#param-form input[name="sys_param_1"]`)),
		chromedp.Poll[chromedp.Void](`document.querySelector('#module-caption').textContent.includes("查看所选服务器的操作系统日志信息")`),
		chromedp.SetValue(chromedp.CSS(`#param-form input[name="sys_param_1"]`), "20"),
		chromedp.Click(chromedp.CSS(`#run`)),
		confirmDialog(),
	)
	if err != nil {
		t.Fatalf("starting the run: %v", err)
	}
	call := e.master.nextCall(t)
	if call.Task.Params["sys_param_1"] != "20" || len(call.Task.Hosts) != 2 || call.Task.User != "operator" {
		t.Fatalf("task %+v", call.Task)
	}
	call.send(t, task.HostResult{Host: task.Host{IP: "192.168.1.10", Name: "sn2012-07-010"}, Status: task.StatusOK,
		Stdout: "<script>window.__xss=1</script><img src=x onerror=window.__xss=2>"})
	err = chromedp.Do(ctx,
		chromedp.WaitVisible(chromedp.CSS(`#output .host-result[data-host="192.168.1.10"].status-ok`)),
		chromedp.WaitVisible(chromedp.CSS(`#output .host-result[data-host="192.168.1.20"].status-pending`)),
		chromedp.Click(chromedp.CSS(`#cancel`)),
	)
	if err != nil {
		t.Fatalf("watching the run: %v", err)
	}
	select {
	case <-e.master.cancels:
	case <-time.After(testTimeout):
		t.Fatal("Cancel did not reach the master")
	}
	call.send(t, task.HostResult{Host: task.Host{IP: "192.168.1.20"}, Status: task.StatusCancelled, ExitCode: -1, Error: "cancelled by the operator"})
	call.Finish <- nil
	err = chromedp.Do(ctx,
		chromedp.WaitVisible(chromedp.CSS(`#run-status[data-state="cancelled"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#output .host-result[data-host="192.168.1.20"].status-cancelled`)),
	)
	if err != nil {
		st, _ := chromedp.Run(context.WithoutCancel(ctx), chromedp.Evaluate[string](`document.querySelector('#run-status').outerHTML + document.querySelector('#output').outerHTML`))
		t.Fatalf("after cancel: %v; page: %s", err, st)
	}
	out, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('#output .host-result[data-host="192.168.1.10"]').closest('.group').textContent`))
	xss, _ := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.__xss !== undefined`))
	status, _ := chromedp.Run(ctx, chromedp.TextContent(chromedp.CSS(`#run-status`)))
	if !strings.Contains(out, "<script>window.__xss=1</script>") || xss {
		t.Fatalf("output %q shown as text? xss ran: %v", out, xss)
	}
	if !strings.Contains(status, "cancelled") || !strings.Contains(status, "1 ok") || !strings.Contains(status, "1 cancelled") {
		t.Fatalf("status %q", status)
	}

	// A run still going, watched on its own page, fills in live.
	id := e.startRun("operator", `{"module_id":1003,"hosts":["192.168.1.10","192.168.1.21"]}`)
	call = e.master.nextCall(t)
	if err := chromedp.Do(ctx,
		chromedp.Navigate(e.ts.URL+"/runs/"+id),
		chromedp.WaitVisible(chromedp.CSS(`#output .host-result[data-host="192.168.1.21"].status-pending`)),
	); err != nil {
		t.Fatalf("run page: %v", err)
	}
	call.send(t, task.HostResult{Host: task.Host{IP: "192.168.1.21"}, Status: task.StatusFailed, ExitCode: 2, Stderr: "no such file"})
	call.Finish <- context.DeadlineExceeded
	if err := chromedp.Do(ctx,
		chromedp.WaitVisible(chromedp.CSS(`#output .host-result[data-host="192.168.1.21"].status-failed`)),
		chromedp.WaitVisible(chromedp.CSS(`#output .host-result[data-host="192.168.1.10"].status-noresult`)),
		chromedp.Poll[chromedp.Void](`document.querySelector('#run-status').textContent.startsWith("failed")`),
	); err != nil {
		t.Fatalf("live run page: %v", err)
	}
	e.waitStatus(id, task.RunFailed)
}

// confirmDialog confirms the run dialog (no typed count needed).
func confirmDialog() chromedp.Action[chromedp.Void] {
	return chromedp.Steps(
		chromedp.WaitVisible(chromedp.CSS(`#confirm-dialog[open] #confirm-run`)),
		chromedp.Click(chromedp.CSS(`#confirm-run`)),
		chromedp.WaitNotPresent(chromedp.CSS(`#confirm-dialog[open]`)),
	)
}

// loginAs logs a browser in and waits for the dashboard.
func loginAs(base, user string) chromedp.Action[chromedp.Void] {
	return chromedp.Steps(
		chromedp.Navigate(base+"/login"),
		chromedp.SendKeys(chromedp.CSS(`#username`), user),
		chromedp.SendKeys(chromedp.CSS(`#password`), testPassword),
		chromedp.Click(chromedp.CSS(`#login-submit`)),
		chromedp.WaitReady(chromedp.CSS(`#fun-categ option[value="11"]`)),
	)
}

// pageState is the status line and pane, for failure messages.
func pageState(ctx context.Context) string {
	st, _ := chromedp.Run(context.WithoutCancel(ctx), chromedp.Evaluate[string](`(document.querySelector('#run-status')||{}).outerHTML + (document.querySelector('#output')||{}).outerHTML`))
	return st
}

// TestDashboardStreamLost: when the browser gives up on a run's event
// stream (here the session ended and the reconnect is refused), the
// dashboard says so and lets the operator go on, instead of showing
// "running" forever with Run disabled; a request refused for the ended
// session says to log in again. Empty categories and applications say
// they are empty.
func TestDashboardStreamLost(t *testing.T) {
	e := newEnv(t)
	emptyApp, err := e.st.CreateAppCateg(context.Background(), store.AppCateg{FunCategID: 11, Name: "empty.domain.com"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := browsertest.New(t, 150*time.Second)
	err = chromedp.Do(ctx,
		chromedp.Navigate(e.ts.URL+"/login"),
		chromedp.SendKeys(chromedp.CSS(`#username`), "operator"),
		chromedp.SendKeys(chromedp.CSS(`#password`), testPassword),
		chromedp.Click(chromedp.CSS(`#login-submit`)),
		chromedp.WaitReady(chromedp.CSS(`#fun-categ option[value="11"]`)),
		browsertest.Choose("#fun-categ", "1"),
		chromedp.Poll[chromedp.Void](`document.querySelector('#app-categ').options[0].textContent === "(no applications in this category)"`),
		browsertest.Choose("#fun-categ", "11"),
		chromedp.WaitReady(chromedp.CSS(`#app-categ option[value="`+itoa(emptyApp)+`"]`)),
		browsertest.Choose("#app-categ", itoa(emptyApp)),
		chromedp.Poll[chromedp.Void](`(() => { const o = document.querySelector('#servers option'); return !!o && o.disabled && o.textContent.includes("no servers in this application"); })()`),
		chromedp.WaitReady(chromedp.CSS(`#app-categ option[value="1"]`)),
		browsertest.Choose("#app-categ", "1"),
		chromedp.WaitReady(chromedp.CSS(`#servers option[value="192.168.1.10"]`)),
		browsertest.Choose("#servers", "192.168.1.10"),
		browsertest.Choose("#module", "1003"),
		chromedp.Click(chromedp.CSS(`#run`)),
		confirmDialog(),
		chromedp.WaitVisible(chromedp.CSS(`#output .host-result[data-host="192.168.1.10"].status-pending`)),
		chromedp.WaitVisible(chromedp.CSS(`#run-status[data-state="running"]`)),
	)
	if err != nil {
		t.Fatalf("starting the run: %v", err)
	}
	call := e.master.nextCall(t)
	defer func() { call.Finish <- nil }()
	if _, err := e.st.DeleteUserSessions(context.Background(), e.users["operator"].ID); err != nil {
		t.Fatal(err)
	}
	e.srv.EndStreams() // the browser reconnects, without a valid session
	err = chromedp.Do(ctx,
		chromedp.WaitVisible(chromedp.CSS(`#run-status[data-state="lost"]`)),
		chromedp.Poll[chromedp.Void](`!document.querySelector('#run').disabled && document.querySelector('#cancel').disabled`),
	)
	if err != nil {
		st, _ := chromedp.Run(context.WithoutCancel(ctx), chromedp.Evaluate[string](`document.querySelector('#run-status').outerHTML`))
		t.Fatalf("after the stream was refused: %v; status: %s", err, st)
	}
	status, _ := chromedp.Run(ctx, chromedp.TextContent(chromedp.CSS(`#run-status`)))
	if !strings.Contains(status, "lost the live output") {
		t.Fatalf("status %q", status)
	}
	err = chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`#run`)),
		chromedp.Poll[chromedp.Void](`document.querySelector('#run-status').textContent.includes("session has ended")`),
	)
	if err != nil {
		st, _ := chromedp.Run(context.WithoutCancel(ctx), chromedp.TextContent(chromedp.CSS(`#run-status`)))
		t.Fatalf("Run without a session: %v; status %q", err, st)
	}
	e.master.assertNoCall(t)
}

// TestRunPageCancel: a run can be cancelled from its own page (the
// dashboard that started it may be closed); viewers get no Cancel button.
func TestRunPageCancel(t *testing.T) {
	e := newEnv(t)
	id := e.startRun("operator", `{"module_id":1003,"hosts":["192.168.1.10"]}`)
	call := e.master.nextCall(t)
	page := e.do(req{method: "GET", path: "/runs/" + id, as: "viewer"}).want(t, http.StatusOK)
	if strings.Contains(page.body, `id="cancel"`) {
		t.Fatal("a viewer is offered Cancel")
	}
	ctx := browsertest.New(t, 150*time.Second)
	err := chromedp.Do(ctx,
		chromedp.Navigate(e.ts.URL+"/login?next="+url.QueryEscape("/runs/"+id)),
		chromedp.SendKeys(chromedp.CSS(`#username`), "operator"),
		chromedp.SendKeys(chromedp.CSS(`#password`), testPassword),
		chromedp.Click(chromedp.CSS(`#login-submit`)),
		chromedp.WaitVisible(chromedp.CSS(`#output .host-result[data-host="192.168.1.10"].status-pending`)),
		chromedp.Click(chromedp.CSS(`#cancel`)),
	)
	if err != nil {
		t.Fatalf("run page: %v", err)
	}
	select {
	case got := <-e.master.cancels:
		if got != id {
			t.Fatalf("cancelled %q, want %q", got, id)
		}
	case <-time.After(testTimeout):
		t.Fatal("Cancel on the run page did not reach the master")
	}
	call.send(t, task.HostResult{Host: task.Host{IP: "192.168.1.10"}, Status: task.StatusCancelled, ExitCode: -1})
	call.Finish <- nil
	err = chromedp.Do(ctx,
		chromedp.WaitVisible(chromedp.CSS(`#output .host-result[data-host="192.168.1.10"].status-cancelled`)),
		chromedp.Poll[chromedp.Void](`document.querySelector('#run-status').textContent.startsWith("cancelled") && document.querySelector('#cancel').hidden`),
	)
	if err != nil {
		t.Fatalf("after cancel: %v; %s", err, pageState(ctx))
	}
	e.waitStatus(id, task.RunCancelled)
}
