package web

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/omserver/omserver-go/internal/store"
	"github.com/omserver/omserver-go/internal/task"
	"github.com/omserver/omserver-go/internal/testutil/browsertest"
)

const hostileOutput = "Linux 5.10\n<script>window.__xss=1</script><img src=x onerror=window.__xss=2>\n"

// storeRun records a finished run of module with one output per host.
func storeRun(t *testing.T, st *store.Store, id string, module int64, outputs map[string]string) {
	t.Helper()
	ctx := context.Background()
	var hosts []task.Host
	for _, ip := range []string{"192.168.1.10", "192.168.1.20", "192.168.1.21"} {
		if _, ok := outputs[ip]; ok {
			hosts = append(hosts, task.Host{IP: ip})
		}
	}
	if err := st.CreateRun(ctx, store.Run{ID: id, ModuleID: module, ModuleName: "m", Username: "operator", Hosts: hosts}); err != nil {
		t.Fatal(err)
	}
	for _, h := range hosts {
		if err := st.AddRunResult(ctx, id, task.HostResult{Host: h, Status: task.StatusOK, Stdout: outputs[h.IP], Started: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.FinishRun(ctx, id, task.RunDone, ""); err != nil {
		t.Fatal(err)
	}
}

func diffEnv(t *testing.T) *env {
	e := newEnv(t)
	storeRun(t, e.st, "runone", 1003, map[string]string{"192.168.1.10": "Linux 6.1\nDebian 12\n", "192.168.1.20": "Linux 6.1\nDebian 12\n", "192.168.1.21": "Linux 6.1\nDebian 12\n"})
	storeRun(t, e.st, "runtwo", 1003, map[string]string{"192.168.1.10": "Linux 6.1\nDebian 12\n", "192.168.1.20": hostileOutput, "192.168.1.21": "Linux 6.1\nDebian 12\n"})
	storeRun(t, e.st, "runother", 1004, map[string]string{"192.168.1.10": "x\n"})
	return e
}

func TestDiffAPI(t *testing.T) {
	e := diffEnv(t)
	e.do(req{method: "GET", path: "/api/v1/diff?a=runone&b=runtwo&host=192.168.1.20", as: "viewer"}).
		want(t, http.StatusOK, `"op":"changed"`, `"left":"Linux 6.1"`, `"right":"Linux 5.10"`, `"added":2`, `"deleted":2`)
	e.do(req{method: "GET", path: "/api/v1/diff?a=runone&b=runtwo&host=192.168.1.10", as: "viewer"}).want(t, http.StatusOK, `"same":true`)
	e.do(req{method: "GET", path: "/api/v1/diff?a=runone&b=runother&host=192.168.1.10", as: "viewer"}).want(t, http.StatusBadRequest, "different modules")
	e.do(req{method: "GET", path: "/api/v1/diff?a=runone&b=runtwo&host=10.9.9.9", as: "viewer"}).want(t, http.StatusNotFound)
	e.do(req{method: "GET", path: "/api/v1/diff?a=runone&b=../x&host=192.168.1.10", as: "viewer"}).want(t, http.StatusBadRequest)
	e.do(req{method: "GET", path: "/api/v1/diff?a=runone&b=runtwo", as: "viewer"}).want(t, http.StatusBadRequest, "host")
	e.do(req{method: "GET", path: "/api/v1/runs/runtwo/drift", as: "viewer"}).want(t, http.StatusOK, `"count":2`, `"count":1`, `"hosts":3`)
	e.do(req{method: "GET", path: "/api/v1/runs/runtwo/drift?host=192.168.1.20", as: "viewer"}).want(t, http.StatusOK, `"majority output (2 of 3 hosts)"`, `"op":"changed"`)
	e.do(req{method: "GET", path: "/runs/runtwo", as: "viewer"}).want(t, http.StatusOK, `href="/runs/runtwo/drift"`)
}

// The side-by-side view in Chromium: from the drift groups to one
// outlier's diff; hostile output is shown as text.
func TestDiffViewInBrowser(t *testing.T) {
	e := diffEnv(t)
	ctx := browsertest.New(t, 60*time.Second)
	err := chromedp.Do(ctx,
		loginAs(e.ts.URL, "viewer"),
		chromedp.Navigate(e.ts.URL+"/runs/runtwo"),
		chromedp.Click(chromedp.CSS(`#drift-link`)),
		chromedp.WaitVisible(chromedp.CSS(`#drift-groups tr.outlier`)),
		chromedp.Click(chromedp.CSS(`#drift-groups tr.outlier a.drift-host`)),
		chromedp.WaitVisible(chromedp.CSS(`#diff tr.diff-changed`)),
	)
	if err != nil {
		t.Fatalf("drift to diff: %v", err)
	}
	rows, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll('#diff tbody tr')).map(r => r.className + '|' + Array.from(r.querySelectorAll('td')).map(c => c.textContent).join('|'))`))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"diff-changed|1|Linux 6.1|1|Linux 5.10",
		"diff-changed|2|Debian 12|2|<script>window.__xss=1</script><img src=x onerror=window.__xss=2>",
	}
	if strings.Join(rows, "\n") != strings.Join(want, "\n") {
		t.Fatalf("rows:\n%s\nwant:\n%s", strings.Join(rows, "\n"), strings.Join(want, "\n"))
	}
	// The two columns sit side by side.
	side, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(() => { const r = document.querySelector('#diff tr.diff-changed'); const l = r.querySelector('td.l').getBoundingClientRect(), rr = r.querySelector('td.r').getBoundingClientRect(); return rr.left >= l.right - 1 && Math.abs(rr.top - l.top) < 2; })()`))
	if err != nil || !side {
		t.Fatalf("left and right are not side by side (%v)", err)
	}
	summary, _ := chromedp.Run(ctx, chromedp.TextContent(chromedp.CSS(`#diff-summary`)))
	xss, _ := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.__xss !== undefined`))
	if xss || !strings.Contains(summary, "2 line(s) only on the left, 2 only on the right") {
		t.Fatalf("xss=%v summary=%q", xss, summary)
	}
	// Comparing the host across two runs.
	err = chromedp.Do(ctx,
		chromedp.Navigate(e.ts.URL+"/diff?a=runone&b=runtwo&host=192.168.1.10"),
		chromedp.WaitVisible(chromedp.CSS(`#diff-summary`)),
	)
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := chromedp.Run(ctx, chromedp.TextContent(chromedp.CSS(`#diff-summary`))); !strings.Contains(s, "identical") {
		t.Fatalf("same outputs: %q", s)
	}
}
