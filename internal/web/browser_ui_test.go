package web

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/omserver/omserver-go/internal/store"
	"github.com/omserver/omserver-go/internal/task"
	"github.com/omserver/omserver-go/internal/testutil/browsertest"
)

// The dashboard of issue 9 in a real Chromium against the fake master:
// live lines, a failed run shown as failed, grouping, the confirmation
// dialog, the language switch and the 360 px layout.

// addHosts puts 127.0.1.1 .. 127.0.1.n into application 1 and returns them.
func addHosts(t *testing.T, e *env, n int) []string {
	t.Helper()
	var ips []string
	for i := 1; i <= n; i++ {
		ip := "127.0.1." + strconv.Itoa(i)
		if _, err := e.st.UpsertServer(context.Background(), store.Server{IP: ip, Name: "node" + strconv.Itoa(i), OS: "Linux", AppID: 1}); err != nil {
			t.Fatal(err)
		}
		ips = append(ips, ip)
	}
	return ips
}

// chooseApp1 picks Linux.Web -> www.domain.com.
func chooseApp1() chromedp.Action[chromedp.Void] {
	return chromedp.Steps(
		browsertest.Choose("#fun-categ", "11"),
		chromedp.WaitReady(chromedp.CSS(`#app-categ option[value="1"]`)),
		browsertest.Choose("#app-categ", "1"),
		chromedp.WaitReady(chromedp.CSS(`#servers option[value="192.168.1.10"]`)),
	)
}

// TestLiveLinesInBrowser: a host's lines appear while it runs, before its
// result; the result then replaces them with its (grouped) output.
func TestLiveLinesInBrowser(t *testing.T) {
	e := newEnv(t)
	ctx := browsertest.New(t, 150*time.Second)
	err := chromedp.Do(ctx,
		loginAs(e.ts.URL, "operator"),
		chooseApp1(),
		browsertest.Choose("#servers", "192.168.1.10"),
		browsertest.Choose("#servers", "192.168.1.20"),
		browsertest.Choose("#module", "1003"),
		chromedp.Click(chromedp.CSS(`#run`)),
		confirmDialog(),
	)
	if err != nil {
		t.Fatalf("starting: %v", err)
	}
	call := e.master.nextCall(t)
	// Chunks printed before the page's event stream is subscribed are not
	// replayed (the result carries the whole output): print until the page
	// shows a line, as a host printing a line a second would.
	seen := false
	for i := 0; i < 60 && !seen; i++ {
		call.print(t, "192.168.1.10", "line one\n")
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		seen = chromedp.Do(pctx, chromedp.Poll[chromedp.Void](`!!document.querySelector('#output .host-result[data-host="192.168.1.10"].status-running pre.live')`)) == nil
		cancel()
	}
	if !seen {
		t.Fatalf("no live line shown; %s", pageState(ctx))
	}
	call.print(t, "192.168.1.10", "line two\n")
	err = chromedp.Do(ctx,
		chromedp.Poll[chromedp.Void](`(() => { const p = document.querySelector('#output .host-result[data-host="192.168.1.10"].status-running pre.live'); return !!p && p.textContent.endsWith("line one\nline two\n"); })()`),
		chromedp.WaitVisible(chromedp.CSS(`#output .host-result[data-host="192.168.1.10"] pre.live`)),
		chromedp.WaitVisible(chromedp.CSS(`#output .host-result[data-host="192.168.1.20"].status-pending`)),
		chromedp.Poll[chromedp.Void](`document.querySelector('#progress-text').textContent === "0 of 2 hosts done"`),
	)
	if err != nil {
		t.Fatalf("lines before the host ended: %v; %s", err, pageState(ctx))
	}
	call.send(t, result("192.168.1.10", "sn2012-07-010", task.StatusOK, "line one\nline two\n"))
	err = chromedp.Do(ctx,
		chromedp.WaitVisible(chromedp.CSS(`#output .group.status-ok .host-result[data-host="192.168.1.10"]`)),
		chromedp.WaitNotPresent(chromedp.CSS(`#output pre.live`)),
		chromedp.Poll[chromedp.Void](`document.querySelector('#progress').value === 1 && document.querySelector('#progress-text').textContent === "1 of 2 hosts done"`),
	)
	if err != nil {
		t.Fatalf("after the result: %v; %s", err, pageState(ctx))
	}
	call.send(t, result("192.168.1.20", "", task.StatusOK, "line one\nline two\n"))
	call.Finish <- nil
	err = chromedp.Do(ctx,
		chromedp.WaitVisible(chromedp.CSS(`#run-status[data-state="ok"]`)),
		chromedp.Poll[chromedp.Void](`document.querySelectorAll('#output .group').length === 1 && document.querySelector('#output .group').getAttribute('data-count') === "2"`),
	)
	if err != nil {
		t.Fatalf("end: %v; %s", err, pageState(ctx))
	}
}

// TestFailedRunShownFailedInBrowser: a run in which every host failed says
// failed, in the failure colour, on the dashboard, the run page and the
// history; never a green "done".
func TestFailedRunShownFailedInBrowser(t *testing.T) {
	e := newEnv(t)
	ctx := browsertest.New(t, 150*time.Second)
	err := chromedp.Do(ctx,
		loginAs(e.ts.URL, "operator"),
		chooseApp1(),
		browsertest.Choose("#servers", "192.168.1.10"),
		browsertest.Choose("#servers", "192.168.1.20"),
		browsertest.Choose("#module", "1003"),
		chromedp.Click(chromedp.CSS(`#run`)),
		confirmDialog(),
	)
	if err != nil {
		t.Fatal(err)
	}
	call := e.master.nextCall(t)
	call.send(t, task.HostResult{Host: task.Host{IP: "192.168.1.10"}, Status: task.StatusFailed, ExitCode: 1, Stderr: "boom"})
	call.send(t, task.HostResult{Host: task.Host{IP: "192.168.1.20"}, Status: task.StatusUnreachable, ExitCode: -1, Error: "connection refused"})
	call.Finish <- nil
	err = chromedp.Do(ctx,
		chromedp.WaitVisible(chromedp.CSS(`#run-status[data-state="failed"].run-state-failed`)),
		chromedp.WaitVisible(chromedp.CSS(`#run-summary .count.status-failed`)),
		chromedp.WaitVisible(chromedp.CSS(`#run-summary .count.status-unreachable`)),
	)
	if err != nil {
		t.Fatalf("dashboard: %v; %s", err, pageState(ctx))
	}
	status, _ := chromedp.Run(ctx, chromedp.TextContent(chromedp.CSS(`#run-status`)))
	colour, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`getComputedStyle(document.querySelector('#run-status')).color`))
	if !strings.HasPrefix(status, "failed") || !strings.Contains(status, "1 failed") || !strings.Contains(status, "1 unreachable") || colour != "rgb(179, 38, 30)" {
		t.Fatalf("status %q in %s", status, colour)
	}
	if ok, _ := chromedp.Run(ctx, chromedp.Evaluate[bool](`!!document.querySelector('#run-summary .count.status-ok')`)); ok {
		t.Fatal("an ok count is shown for a run with no ok host")
	}
	id, _ := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS(`#output`), "data-run-id"))
	err = chromedp.Do(ctx,
		chromedp.Navigate(e.ts.URL+"/runs/"+id.Value),
		chromedp.WaitVisible(chromedp.CSS(`#run-status.run-state-failed`)),
		chromedp.Navigate(e.ts.URL+"/runs"),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-run-id="`+id.Value+`"] .run-state-failed`)),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-run-id="`+id.Value+`"] .count.status-failed`)),
	)
	if err != nil {
		t.Fatalf("run page and history: %v", err)
	}
}

// TestGroupingInBrowser: 12 hosts, 11 with the same output: the outlier
// group comes first, the big group shows its output once and lists its
// hosts (collapsed, by address numerically) on demand.
func TestGroupingInBrowser(t *testing.T) {
	e := newEnv(t)
	ips := addHosts(t, e, 12)
	ctx := browsertest.New(t, 150*time.Second)
	err := chromedp.Do(ctx,
		loginAs(e.ts.URL, "operator"),
		chooseApp1(),
		chromedp.SendKeys(chromedp.CSS(`#server-search`), "127.0.1."),
		chromedp.Poll[chromedp.Void](`Array.from(document.querySelectorAll('#servers option')).filter(o => !o.hidden).length === 12`),
		chromedp.Click(chromedp.CSS(`#select-all`)),
		chromedp.Poll[chromedp.Void](`document.querySelector('#servers').selectedOptions.length === 12 && document.querySelector('#server-count').textContent === "12 of 14 selected"`),
		browsertest.Choose("#module", "1003"),
		chromedp.Click(chromedp.CSS(`#run`)),
		confirmDialog(),
	)
	if err != nil {
		t.Fatalf("starting: %v; %s", err, pageState(ctx))
	}
	call := e.master.nextCall(t)
	if len(call.Task.Hosts) != 12 {
		t.Fatalf("%d hosts run, want 12", len(call.Task.Hosts))
	}
	// Results in text order, the way the old page showed them.
	for _, ip := range []string{"127.0.1.1", "127.0.1.10", "127.0.1.11", "127.0.1.12", "127.0.1.2", "127.0.1.3", "127.0.1.4", "127.0.1.5", "127.0.1.6", "127.0.1.8", "127.0.1.9"} {
		call.send(t, result(ip, "", task.StatusOK, "PRETTY_NAME=\"Debian GNU/Linux 12\"\n"))
	}
	call.send(t, task.HostResult{Host: task.Host{IP: ips[6]}, Status: task.StatusFailed, ExitCode: 1, Stderr: "no os-release"})
	call.Finish <- nil
	err = chromedp.Do(ctx,
		chromedp.WaitVisible(chromedp.CSS(`#run-status[data-state="partial"]`)),
		chromedp.Poll[chromedp.Void](`document.querySelectorAll('#output .group').length === 2`),
	)
	if err != nil {
		t.Fatalf("grouping: %v; %s", err, pageState(ctx))
	}
	got, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll('#output .group')).map(g => g.getAttribute('data-status') + ':' + g.getAttribute('data-count') + ':' + g.querySelectorAll('pre.stdout').length + ':' + g.querySelector('.group-hosts').open)`))
	if err != nil || strings.Join(got, " ") != "failed:1:0:true ok:11:1:false" {
		t.Fatalf("groups %v (%v)", got, err)
	}
	head, _ := chromedp.Run(ctx, chromedp.TextContent(chromedp.CSS(`#output .group.status-ok .group-head`)))
	if !strings.HasPrefix(head, "11 hosts") {
		t.Fatalf("group head %q", head)
	}
	order, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll('#output .group.status-ok .host-result')).map(h => h.getAttribute('data-host'))`))
	want := "127.0.1.1 127.0.1.2 127.0.1.3 127.0.1.4 127.0.1.5 127.0.1.6 127.0.1.8 127.0.1.9 127.0.1.10 127.0.1.11 127.0.1.12"
	if err != nil || strings.Join(order, " ") != want {
		t.Fatalf("host order %v, want %s", order, want)
	}
	err = chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`#output .group.status-ok .group-hosts > summary`)),
		chromedp.WaitVisible(chromedp.CSS(`#output .group.status-ok .host-result[data-host="127.0.1.12"]`)),
	)
	if err != nil {
		t.Fatalf("expanding the group: %v", err)
	}
}

// TestConfirmDialogInBrowser: the dialog shows module, parameters and
// every target; a large run needs the typed host count; Esc runs nothing;
// Enter in a parameter field opens the dialog and Enter there runs.
func TestConfirmDialogInBrowser(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.LargeRunHosts = 2 })
	ctx := browsertest.New(t, 150*time.Second)
	err := chromedp.Do(ctx,
		loginAs(e.ts.URL, "operator"),
		chooseApp1(),
		browsertest.Choose("#servers", "192.168.1.10"),
		browsertest.Choose("#servers", "192.168.1.20"),
		browsertest.Choose("#module", "1001"),
		chromedp.WaitReady(chromedp.CSS(`#param-form input[name="sys_param_1"]`)),
		chromedp.SetValue(chromedp.CSS(`#param-form input[name="sys_param_1"]`), "30"),
		// Enter in the parameter field asks for confirmation.
		chromedp.Focus(chromedp.CSS(`#param-form input[name="sys_param_1"]`)),
		chromedp.KeyEvent(kb.Enter),
		chromedp.WaitVisible(chromedp.CSS(`#confirm-dialog[open]`)),
	)
	if err != nil {
		t.Fatalf("opening the dialog: %v; %s", err, pageState(ctx))
	}
	facts, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#confirm-dialog`)))
	for _, want := range []string{"Confirm the run", "1001 查看系统日志", "sys_param_1 = 30", "2 servers:", "192.168.1.10 (sn2012-07-010)", "192.168.1.20 (sn2013-08-020)"} {
		if !strings.Contains(facts, want) {
			t.Fatalf("dialog lacks %q: %s", want, facts)
		}
	}
	if typed, _ := chromedp.Run(ctx, chromedp.Evaluate[bool](`!document.querySelector('#confirm-typed').hidden`)); typed {
		t.Fatal("a 2-host run asks for a typed count with the threshold at 2")
	}
	// Esc cancels: nothing runs.
	if err := chromedp.Do(ctx, chromedp.KeyEvent(kb.Escape), chromedp.WaitNotPresent(chromedp.CSS(`#confirm-dialog[open]`)),
		chromedp.Poll[chromedp.Void](`document.querySelector('#run-status').getAttribute('data-state') === 'idle'`)); err != nil {
		t.Fatalf("Esc: %v", err)
	}
	e.master.assertNoCall(t)

	// Three hosts: over the threshold, the count must be typed.
	err = chromedp.Do(ctx,
		browsertest.Choose("#servers", "192.168.1.20"),
		browsertest.Choose("#app-categ", "2"),
		chromedp.WaitReady(chromedp.CSS(`#servers option[value="192.168.1.21"]`)),
		chromedp.Click(chromedp.CSS(`#target-fun`)),
		chromedp.Click(chromedp.CSS(`#run`)),
		chromedp.WaitVisible(chromedp.CSS(`#confirm-dialog[open] #confirm-typed-input`)),
		chromedp.SendKeys(chromedp.CSS(`#confirm-typed-input`), "2"+kb.Enter),
		chromedp.Poll[chromedp.Void](`document.querySelector('#confirm-error').textContent.includes("not the number of servers (3)")`),
	)
	if err != nil {
		t.Fatalf("typed confirmation: %v; %s", err, pageState(ctx))
	}
	e.master.assertNoCall(t)
	err = chromedp.Do(ctx,
		chromedp.Evaluate[chromedp.Void](`document.querySelector('#confirm-typed-input').value = ''`),
		chromedp.SendKeys(chromedp.CSS(`#confirm-typed-input`), "3"+kb.Enter),
		chromedp.WaitNotPresent(chromedp.CSS(`#confirm-dialog[open]`)),
	)
	if err != nil {
		t.Fatalf("confirming: %v", err)
	}
	call := e.master.nextCall(t)
	if len(call.Task.Hosts) != 3 || call.Task.ConfirmedHosts != 3 || call.Task.Params["sys_param_1"] != "30" {
		t.Fatalf("task %+v", call.Task)
	}
	call.Finish <- nil
}

// TestLanguageSwitchInBrowser: the browser's language by default; the
// switch changes every label, the browser code's texts and <html lang>,
// and is remembered for the user on the next visit.
func TestLanguageSwitchInBrowser(t *testing.T) {
	e := newEnv(t)
	ctx := browsertest.New(t, 150*time.Second)
	err := chromedp.Do(ctx,
		loginAs(e.ts.URL, "operator"),
		chromedp.Poll[chromedp.Void](`document.documentElement.lang === "en" && document.querySelector('#run-status').textContent === "ready"`),
		chromedp.Click(chromedp.CSS(`#lang-switch button[value="zh-CN"]`)),
		chromedp.WaitReady(chromedp.CSS(`html[lang="zh-CN"]`)),
		chromedp.Poll[chromedp.Void](`document.querySelector('#run-status').textContent === "就绪"`),
		chromedp.WaitReady(chromedp.CSS(`#fun-categ option[value="11"]`)),
	)
	if err != nil {
		t.Fatalf("switching: %v; %s", err, pageState(ctx))
	}
	text, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`main`)))
	for _, want := range []string{"功能类别", "应用", "服务器", "模块", "运行", "取消"} {
		if !strings.Contains(text, want) {
			t.Fatalf("dashboard in zh-CN lacks %q: %s", want, text)
		}
	}
	placeholder, _ := chromedp.Run(ctx, chromedp.TextContent(chromedp.CSS(`#fun-categ option[value=""]`)))
	if placeholder != "‹请选择功能类别›" {
		t.Fatalf("placeholder %q", placeholder)
	}
	// A new browser session for the same user: still Chinese.
	ctx2 := browsertest.New(t, 150*time.Second)
	if err := chromedp.Do(ctx2, loginAs(e.ts.URL, "operator"), chromedp.WaitReady(chromedp.CSS(`html[lang="zh-CN"]`)),
		chromedp.Navigate(e.ts.URL+"/runs"), chromedp.Poll[chromedp.Void](`document.querySelector('h1').textContent === "运行记录"`)); err != nil {
		t.Fatalf("remembered language: %v", err)
	}
}

// TestNarrowScreenInBrowser: at 360 px nothing is wider than the screen,
// the navigation wraps and the output pane is a usable size. With
// OMSERVER_SCREENSHOT_DIR set it saves dashboard-360.png there.
func TestNarrowScreenInBrowser(t *testing.T) {
	e := newEnv(t)
	ctx := browsertest.New(t, 150*time.Second)
	err := chromedp.Do(ctx,
		chromedp.EmulateViewport(360, 740),
		loginAs(e.ts.URL, "operator"),
		chooseApp1(),
		browsertest.Choose("#servers", "192.168.1.10"),
		browsertest.Choose("#module", "1003"),
		chromedp.Click(chromedp.CSS(`#run`)),
		confirmDialog(),
	)
	if err != nil {
		t.Fatal(err)
	}
	call := e.master.nextCall(t)
	call.send(t, result("192.168.1.10", "sn2012-07-010", task.StatusOK, "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nVERSION_ID=\"12\"\n"))
	call.Finish <- nil
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(`#run-status[data-state="ok"]`))); err != nil {
		t.Fatal(err)
	}
	for _, page := range []string{"", "/runs", "/inventory", "/modules"} {
		if page != "" {
			if err := chromedp.Do(ctx, chromedp.Navigate(e.ts.URL+page), chromedp.WaitReady(chromedp.CSS(`main`))); err != nil {
				t.Fatal(err)
			}
		}
		wide, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.documentElement.scrollWidth`))
		if err != nil || wide > 360 {
			t.Fatalf("page %q is %d px wide at a 360 px viewport (%v)", page, wide, err)
		}
		if page == "" {
			h, _ := chromedp.Run(ctx, chromedp.Evaluate[int](`Math.round(document.querySelector('#output').getBoundingClientRect().height)`))
			w, _ := chromedp.Run(ctx, chromedp.Evaluate[int](`Math.round(document.querySelector('#output').getBoundingClientRect().width)`))
			if h < 150 || w < 300 {
				t.Fatalf("output pane %dx%d px at 360 px", w, h)
			}
			shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // 100: PNG
			if err != nil {
				t.Fatal(err)
			}
			if dir := os.Getenv("OMSERVER_SCREENSHOT_DIR"); dir != "" {
				if err := os.WriteFile(filepath.Join(dir, "dashboard-360.png"), shot, 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
}

// TestDriftFlaggedInBrowser: the modules page flags a module the master
// declares differently and one it lacks; one click takes the master's.
func TestDriftFlaggedInBrowser(t *testing.T) {
	e := newEnv(t)
	e.setCatalog([]int64{1001, 1002, 1004, 1005, 1006, 1007}, func(mi *task.ModuleInfo) {
		if mi.ID == 1005 {
			mi.Params = []byte(strings.Replace(string(mi.Params), `"default":"resinjar"`, `"default":"nginx"`, 1))
		}
	})
	ctx := browsertest.New(t, 150*time.Second)
	err := chromedp.Do(ctx,
		loginAs(e.ts.URL, "admin"),
		chromedp.Navigate(e.ts.URL+"/modules"),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-module-id="1005"][data-catalog="different"] .badge.state-different`)),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-module-id="1003"][data-catalog="missing"] .badge.state-missing`)),
		chromedp.Poll[chromedp.Void](`document.querySelector('tr[data-module-id="1005"] .catalog-state').textContent.includes('"nginx" on the master') || document.querySelector('tr[data-module-id="1005"] .catalog-state').textContent.includes('default "nginx"')`),
		chromedp.Click(chromedp.CSS(`form[action="/modules/1005/import"] button`)),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-module-id="1005"][data-catalog="same"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#flash`)),
	)
	if err != nil {
		page, _ := chromedp.Run(context.WithoutCancel(ctx), chromedp.Evaluate[string](`document.querySelector('main').innerText`))
		t.Fatalf("modules page: %v\n%s", err, page)
	}
	// The dashboard no longer offers 1003 (the master lacks it).
	err = chromedp.Do(ctx,
		chromedp.Navigate(e.ts.URL+"/"),
		chromedp.WaitReady(chromedp.CSS(`#module option[value="1005"]`)),
	)
	if err != nil {
		t.Fatal(err)
	}
	if has, _ := chromedp.Run(ctx, chromedp.Evaluate[bool](`!!document.querySelector('#module option[value="1003"]')`)); has {
		t.Fatal("the dashboard offers a module the master lacks")
	}
}

// TestRolloutPauseInBrowser: the operator asks for batches of one and a
// canary that waits for Continue (a value it cannot read is refused
// first); the dashboard shows the batches and the pause; the run page,
// opened during the pause, shows it too, and its Continue button reaches
// the master; the banner follows the next batch and goes when the run
// ends.
func TestRolloutPauseInBrowser(t *testing.T) {
	e := newEnv(t)
	ctx := browsertest.New(t, 150*time.Second)
	err := chromedp.Do(ctx,
		loginAs(e.ts.URL, "operator"),
		chooseApp1(),
		browsertest.Choose("#servers", "192.168.1.10"),
		browsertest.Choose("#servers", "192.168.1.20"),
		browsertest.Choose("#module", "1003"),
		chromedp.Click(chromedp.CSS(`#rollout-options > summary`)),
		chromedp.SendKeys(chromedp.CSS(`#ro-batch`), "0"),
		chromedp.Click(chromedp.CSS(`#run`)),
		chromedp.Poll[chromedp.Void](`document.querySelector('#run-status').textContent.includes('whole number of hosts')`),
	)
	if err != nil {
		t.Fatalf("a bad batch size: %v; %s", err, pageState(ctx))
	}
	e.master.assertNoCall(t)
	err = chromedp.Do(ctx,
		chromedp.SetValue(chromedp.CSS(`#ro-batch`), "1"),
		chromedp.Click(chromedp.CSS(`#ro-confirm`)),
		chromedp.Click(chromedp.CSS(`#run`)),
		confirmDialog(),
	)
	if err != nil {
		t.Fatalf("starting: %v", err)
	}
	call := e.master.nextCall(t)
	id := call.Task.RunID
	if ro := call.Task.Rollout; ro == nil || ro.BatchSize != 1 || !ro.CanaryConfirm || !ro.Canary {
		t.Fatalf("the dashboard asked for rollout %+v", call.Task.Rollout)
	}
	call.Batches <- task.Batch{Index: 1, Count: 2, Hosts: 1}
	err = chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(`#rollout[data-state="running"][data-batch="1/2"]`)))
	if err != nil {
		t.Fatalf("first batch: %v; %s", err, pageState(ctx))
	}
	call.send(t, result("192.168.1.10", "sn2012-07-010", task.StatusOK, "ok"))
	call.Batches <- task.Batch{Index: 2, Count: 2, Hosts: 1, Paused: true, Confirm: true, Until: time.Now().Add(time.Hour)}
	err = chromedp.Do(ctx,
		chromedp.WaitVisible(chromedp.CSS(`#rollout[data-state="waiting"] #rollout-continue`)),
		chromedp.Poll[chromedp.Void](`document.querySelector('#rollout .rollout-text').textContent.includes('batch 2 of 2')`),
		// The run page opened during the pause shows it as well.
		chromedp.Navigate(e.ts.URL+"/runs/"+id),
		chromedp.WaitVisible(chromedp.CSS(`#rollout[data-state="waiting"] #rollout-continue`)),
	)
	if err != nil {
		t.Fatalf("the pause: %v; %s", err, pageState(ctx))
	}
	e.master.assertNoContinue(t)
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#rollout-continue`))); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-e.master.continues:
		if got != id {
			t.Fatalf("continue for %q, want %q", got, id)
		}
	case <-time.After(testTimeout):
		t.Fatalf("Continue did not reach the master; %s", pageState(ctx))
	}
	call.Batches <- task.Batch{Index: 2, Count: 2, Hosts: 1}
	err = chromedp.Do(ctx,
		chromedp.WaitVisible(chromedp.CSS(`#rollout[data-state="running"][data-batch="2/2"]`)),
		chromedp.WaitNotPresent(chromedp.CSS(`#rollout-continue`)),
	)
	if err != nil {
		t.Fatalf("after continue: %v; %s", err, pageState(ctx))
	}
	call.send(t, result("192.168.1.20", "sn2013-08-020", task.StatusOK, "ok"))
	call.Finish <- nil
	err = chromedp.Do(ctx,
		chromedp.WaitVisible(chromedp.CSS(`#run-status[data-state="ok"]`)),
		chromedp.WaitNotVisible(chromedp.CSS(`#rollout`)),
	)
	if err != nil {
		t.Fatalf("the end: %v; %s", err, pageState(ctx))
	}
}
