package demo

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/rs/zerolog"

	"github.com/omserver/omserver-go/internal/store"
	"github.com/omserver/omserver-go/internal/task"
	"github.com/omserver/omserver-go/internal/testutil/browsertest"
)

// startDemo runs the real demo (web + relay + master + local backend) on a
// free loopback port with its own data directory.
func startDemo(t *testing.T) *Instance {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	inst, err := Start(ctx, Options{Listen: "127.0.0.1:0", DataDir: t.TempDir(), ModulesDir: "../../modules", Log: zerolog.Nop()})
	if err != nil {
		t.Fatalf("demo did not start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := inst.Close(ctx); err != nil {
			t.Errorf("closing demo: %v", err)
		}
	})
	if inst.AdminPassword == "" {
		t.Fatal("a new demo did not print an admin password")
	}
	return inst
}

func login(base, password string) chromedp.Action[chromedp.Void] {
	return chromedp.Steps(
		chromedp.Navigate(base+"/login"),
		chromedp.WaitVisible(chromedp.CSS(`#login-form`)),
		chromedp.SendKeys(chromedp.CSS(`#username`), AdminUser),
		chromedp.SendKeys(chromedp.CSS(`#password`), password),
		chromedp.Click(chromedp.CSS(`#login-submit`)),
		chromedp.WaitVisible(chromedp.CSS(`#fun-categ`)),
	)
}

// TestOperatorFlowInBrowser is the whole operator flow of issue 3 on the
// real demo: log in, Linux.Web -> www.domain.com -> localhost, module 1003,
// Run, and the output pane shows the host's result.
func TestOperatorFlowInBrowser(t *testing.T) {
	inst := startDemo(t)
	ctx := browsertest.New(t, 150*time.Second)

	err := chromedp.Do(ctx,
		login(inst.URL, inst.AdminPassword),
		chromedp.WaitReady(chromedp.CSS(`#fun-categ option[value="11"]`)),
		browsertest.Choose("#fun-categ", "11"),
		chromedp.WaitReady(chromedp.CSS(`#app-categ option[value="1"]`)),
		browsertest.Choose("#app-categ", "1"),
		chromedp.WaitReady(chromedp.CSS(`#servers option[value="127.0.0.1"]`)),
		browsertest.Choose("#servers", "127.0.0.1"),
		chromedp.WaitReady(chromedp.CSS(`#module option[value="1003"]`)),
		browsertest.Choose("#module", "1003"),
		chromedp.Click(chromedp.CSS(`#run`)),
		// The confirmation (the original's 提交确认): module and targets.
		chromedp.WaitVisible(chromedp.CSS(`#confirm-dialog[open] #confirm-run`)),
		chromedp.Poll[chromedp.Void](`document.querySelector('#confirm-hosts').textContent.includes("127.0.0.1")`),
		chromedp.Click(chromedp.CSS(`#confirm-run`)),
		chromedp.WaitVisible(chromedp.CSS(`#output .host-result[data-host="127.0.0.1"].status-ok`)),
		chromedp.WaitVisible(chromedp.CSS(`#run-status[data-state="ok"]`)),
	)
	if err != nil {
		t.Fatalf("operator flow: %v", err)
	}
	output, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('#output .host-result[data-host="127.0.0.1"]').closest('.group').innerText`))
	if err != nil {
		t.Fatalf("reading the output pane: %v", err)
	}
	screenshot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if !strings.Contains(output, "Linux") {
		t.Errorf("host result %q does not show the OS version (want it to contain \"Linux\")", output)
	}
	if !strings.Contains(output, "127.0.0.1") {
		t.Errorf("host result %q does not name the host", output)
	}
	// The same in Chinese: the switch in the header, then the flow again.
	err = chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`#lang-switch button[value="zh-CN"]`)),
		chromedp.WaitReady(chromedp.CSS(`html[lang="zh-CN"]`)),
		chromedp.WaitReady(chromedp.CSS(`#fun-categ option[value="11"]`)),
		browsertest.Choose("#fun-categ", "11"),
		chromedp.WaitReady(chromedp.CSS(`#app-categ option[value="1"]`)),
		browsertest.Choose("#app-categ", "1"),
		chromedp.WaitReady(chromedp.CSS(`#servers option[value="127.0.0.1"]`)),
		browsertest.Choose("#servers", "127.0.0.1"),
		chromedp.WaitReady(chromedp.CSS(`#module option[value="1003"]`)),
		browsertest.Choose("#module", "1003"),
		chromedp.Click(chromedp.CSS(`#run`)),
		chromedp.WaitVisible(chromedp.CSS(`#confirm-dialog[open] #confirm-run`)),
		chromedp.Poll[chromedp.Void](`document.querySelector('#confirm-title').textContent === "提交确认"`),
		chromedp.Click(chromedp.CSS(`#confirm-run`)),
		chromedp.WaitVisible(chromedp.CSS(`#run-status[data-state="ok"]`)),
		chromedp.Poll[chromedp.Void](`document.querySelector('#run-status').textContent.startsWith("全部成功")`),
	)
	if err != nil {
		t.Fatalf("the flow in Chinese: %v", err)
	}
	zhShot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if dir := os.Getenv("OMSERVER_SCREENSHOT_DIR"); dir != "" {
		if err := os.WriteFile(filepath.Join(dir, "dashboard.png"), screenshot, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "dashboard-zh-CN.png"), zhShot, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// Both runs are in the history, with their outcome.
	page, err := inst.Store.ListRuns(context.Background(), store.RunFilter{Limit: 10})
	if err != nil || len(page.Runs) != 2 {
		t.Fatalf("history after two runs: %d runs (%v)", len(page.Runs), err)
	}
	for _, r := range page.Runs {
		if r.ModuleID != 1003 || r.Username != AdminUser || r.HostCount != 1 || r.Status != task.RunOK {
			t.Errorf("recorded run = %+v", r)
		}
	}
}

// TestModuleNameIsShownAsText: a module whose name holds markup is shown
// as those characters, never run as script, on the modules page; the
// dashboard does not offer it, since the master has no such module, and
// the modules page says so.
func TestModuleNameIsShownAsText(t *testing.T) {
	inst := startDemo(t)
	const evil = `<script>window.__xss=1</script>`
	modID, err := inst.Store.CreateModule(context.Background(), store.Module{ID: 1900, Name: evil, Caption: `<img src=x onerror="window.__xss=2">caption after markup`})
	if err != nil {
		t.Fatalf("creating module: %v", err)
	}
	row := fmt.Sprintf(`tr[data-module-id="%d"]`, modID)
	ctx := browsertest.New(t, 150*time.Second)
	err = chromedp.Do(ctx,
		login(inst.URL, inst.AdminPassword),
		chromedp.WaitReady(chromedp.CSS(`#module option[value="1003"]`)),
		chromedp.Navigate(inst.URL+"/modules"),
		chromedp.WaitVisible(chromedp.CSS(row+`[data-catalog="missing"]`)),
		chromedp.Poll[chromedp.Void](fmt.Sprintf(`document.querySelector('%s .caption').textContent.includes("caption after markup")`, row)),
	)
	if err != nil {
		t.Fatalf("modules page: %v", err)
	}
	name, err := chromedp.Run(ctx, chromedp.TextContent(chromedp.CSS(row+` .module-name`)))
	if err != nil {
		t.Fatal(err)
	}
	xss, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.__xss !== undefined`))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(name, "<script>") {
		t.Errorf("module name text = %q, want the literal markup", name)
	}
	if xss {
		t.Error("markup in a module name or caption ran as script")
	}
	// The dashboard offers what the master has, not this one.
	offered, err := chromedp.Run(ctx, chromedp.Evaluate[bool](fmt.Sprintf(`fetch('/api/v1/modules?runnable=1').then(r => r.json()).then(l => l.some(m => m.id === %d))`, modID), chromedp.EvalAwaitPromise))
	if err != nil || offered {
		t.Fatalf("the dashboard offers a module the master lacks (%v)", err)
	}
}

// TestLiveLinesAndImportInBrowser runs on the real demo (relay, master,
// local backend) with one module more than the web's table: the modules
// page flags it as only on the master, the admin imports it in one click,
// and its first line is on the dashboard while the command still runs.
func TestLiveLinesAndImportInBrowser(t *testing.T) {
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS("../../modules")); err != nil {
		t.Fatal(err)
	}
	ctx0, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	inst, err := Start(ctx0, Options{Listen: "127.0.0.1:0", DataDir: t.TempDir(), ModulesDir: dir, Log: zerolog.Nop()})
	if err != nil {
		t.Fatalf("demo did not start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_ = inst.Close(ctx)
	})
	// Added to the master while the demo runs (the demo seeds the web's
	// table from the master's modules only when it starts).
	slow := "id: 1099\nname: 慢速输出\ncaption: prints a line a second for eight seconds\ntimeout: 60s\nsteps:\n  - run: for i in 1 2 3 4 5 6 7 8; do echo tick $i; sleep 1; done\n"
	if err := os.WriteFile(filepath.Join(dir, "Mid_1099.yaml"), []byte(slow), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := inst.ReloadModules(); err != nil {
		t.Fatal(err)
	}
	ctx := browsertest.New(t, 150*time.Second)
	err = chromedp.Do(ctx,
		login(inst.URL, inst.AdminPassword),
		chromedp.Navigate(inst.URL+"/modules"),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-module-id="1099"][data-catalog="master_only"]`)),
		chromedp.Click(chromedp.CSS(`form[action="/modules/1099/import"] button`)),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-module-id="1099"][data-catalog="same"]`)),
		chromedp.Navigate(inst.URL+"/"),
		chromedp.WaitReady(chromedp.CSS(`#fun-categ option[value="11"]`)),
		browsertest.Choose("#fun-categ", "11"),
		chromedp.WaitReady(chromedp.CSS(`#app-categ option[value="1"]`)),
		browsertest.Choose("#app-categ", "1"),
		chromedp.WaitReady(chromedp.CSS(`#servers option[value="127.0.0.1"]`)),
		browsertest.Choose("#servers", "127.0.0.1"),
		chromedp.WaitReady(chromedp.CSS(`#module option[value="1099"]`)),
		browsertest.Choose("#module", "1099"),
		chromedp.Click(chromedp.CSS(`#run`)),
		chromedp.WaitVisible(chromedp.CSS(`#confirm-dialog[open] #confirm-run`)),
		chromedp.Click(chromedp.CSS(`#confirm-run`)),
		// Lines while the host still runs (the last is seconds away).
		chromedp.Poll[chromedp.Void](`(() => { const p = document.querySelector('#output .host-result[data-host="127.0.0.1"].status-running pre.live'); return !!p && p.textContent.includes("tick ") && !p.textContent.includes("tick 8"); })()`),
		chromedp.WaitVisible(chromedp.CSS(`#run-status[data-state="ok"]`)),
	)
	if err != nil {
		st, _ := chromedp.Run(context.WithoutCancel(ctx), chromedp.Evaluate[string](`(document.querySelector('#run-status')||{}).outerHTML + (document.querySelector('#output')||{}).outerHTML`))
		t.Fatalf("live lines on the real demo: %v; %s", err, st)
	}
	out, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('#output .group.status-ok').textContent`))
	if !strings.Contains(out, "tick 1") || !strings.Contains(out, "tick 8") {
		t.Fatalf("final output %q", out)
	}
}
