package web

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/omserver/omserver-go/internal/store"
	"github.com/omserver/omserver-go/internal/task"
	"github.com/omserver/omserver-go/internal/testutil/browsertest"
)

// benchHosts is the size of the run the dashboard benchmark drives.
const benchHosts = 5000

// BenchmarkDashboard5000Hosts is issue 8's browser benchmark: the real
// dashboard in headless Chromium targets a whole 5,000-server application,
// confirms, and follows the run while the (fake) master streams an output
// line and then a result for every host, as fast as the web tier takes
// them. It reports how long the page took to show all 5,000 results after
// the first one, and how responsive it stayed meanwhile: the longest task
// that blocked the page's main thread, the total blocking time (the part of
// long tasks over 50 ms), and the worst lateness of a 50 ms timer (what a
// click or a key press would have waited). Run by make bench, not make test.
func BenchmarkDashboard5000Hosts(b *testing.B) {
	e := newEnv(b, func(c *Config) { c.LargeRunHosts = 50 })
	ctx := context.Background()
	app, err := e.st.CreateAppCateg(ctx, store.AppCateg{FunCategID: 11, Name: "bench.example"})
	if err != nil {
		b.Fatal(err)
	}
	servers := make([]store.Server, 0, benchHosts)
	for i := range benchHosts {
		servers = append(servers, store.Server{IP: fmt.Sprintf("127.%d.%d.%d", 10+i/65536, (i/256)%256, i%256), Name: "b" + strconv.Itoa(i), OS: "Linux", AppID: app})
	}
	if _, _, err := e.st.ImportServers(ctx, servers); err != nil {
		b.Fatal(err)
	}
	bctx := browsertest.New(b, 10*time.Minute)
	if err := chromedp.Do(bctx, loginAs(e.ts.URL, "operator")); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	var render, maxTask, blocking, maxLag float64
	for range b.N {
		b.StopTimer()
		err := chromedp.Do(bctx,
			chromedp.Navigate(e.ts.URL+"/"),
			chromedp.WaitReady(chromedp.CSS(`#fun-categ option[value="11"]`)),
			// The page's own clock: long tasks, and a 50 ms timer's lateness.
			chromedp.Evaluate[chromedp.Void](`(() => {
				window.__bench = {maxTask: 0, blocking: 0, maxLag: 0, first: 0, done: 0};
				new PerformanceObserver(l => { for (const e of l.getEntries()) {
					window.__bench.maxTask = Math.max(window.__bench.maxTask, e.duration);
					window.__bench.blocking += Math.max(0, e.duration - 50);
				} }).observe({type: 'longtask'});
				let last = performance.now();
				setInterval(() => { const now = performance.now(); window.__bench.maxLag = Math.max(window.__bench.maxLag, now - last - 50); last = now; }, 50);
				new MutationObserver(() => {
					const t = document.querySelector('#progress-text');
					if (!window.__bench.first && t && /^[1-9]/.test(t.textContent)) { window.__bench.first = performance.now(); }
					if (!window.__bench.done && t && t.textContent.startsWith("`+strconv.Itoa(benchHosts)+` of")) { window.__bench.done = performance.now(); }
				}).observe(document.querySelector('#run-progress'), {subtree: true, childList: true, characterData: true});
			})()`),
			browsertest.Choose("#fun-categ", "11"),
			chromedp.WaitReady(chromedp.CSS(`#app-categ option[value="`+itoa(app)+`"]`)),
			browsertest.Choose("#app-categ", itoa(app)),
			chromedp.Click(chromedp.CSS(`#target-app`)),
			browsertest.Choose("#module", "1003"),
			chromedp.Click(chromedp.CSS(`#run`)),
			chromedp.WaitVisible(chromedp.CSS(`#confirm-dialog[open] #confirm-typed-input`)),
			chromedp.SendKeys(chromedp.CSS(`#confirm-typed-input`), strconv.Itoa(benchHosts)+kb.Enter),
		)
		if err != nil {
			b.Fatalf("starting the run: %v", err)
		}
		call := e.master.nextCall(b)
		if len(call.Task.Hosts) != benchHosts {
			b.Fatalf("%d hosts in the task", len(call.Task.Hosts))
		}
		if err := chromedp.Do(bctx, chromedp.WaitVisible(chromedp.CSS(`#output .group.status-pending`))); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		for i, h := range call.Task.Hosts {
			call.print(b, h.IP, "checking "+h.IP+"\n")
			st := task.StatusOK
			out := "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n"
			if i%97 == 0 {
				st, out = task.StatusFailed, ""
			}
			call.send(b, task.HostResult{Host: h, Status: st, ExitCode: 0, Stdout: out, Duration: time.Millisecond})
		}
		call.Finish <- nil
		err = chromedp.Do(bctx,
			chromedp.Poll[chromedp.Void](`window.__bench.done > 0 && document.querySelector('#run-status').getAttribute('data-state') === 'partial'`, chromedp.WithPollingTimeout(10*time.Minute)),
		)
		b.StopTimer()
		if err != nil {
			st, _ := chromedp.Run(context.WithoutCancel(bctx), chromedp.TextContent(chromedp.CSS(`#progress-text`)))
			b.Fatalf("waiting for the page: %v (progress %q)", err, st)
		}
		m, err := chromedp.Run(bctx, chromedp.Evaluate[map[string]float64](`window.__bench`))
		if err != nil {
			b.Fatal(err)
		}
		groups, _ := chromedp.Run(bctx, chromedp.Evaluate[string](`Array.from(document.querySelectorAll('#output .group')).map(g => g.getAttribute('data-status') + ':' + g.getAttribute('data-count')).join(' ')`))
		if groups != "failed:52 ok:4948" {
			b.Fatalf("groups after the run: %q", groups)
		}
		render += (m["done"] - m["first"]) / 1000
		maxTask = max(maxTask, m["maxTask"])
		blocking += m["blocking"]
		maxLag = max(maxLag, m["maxLag"])
	}
	n := float64(b.N)
	b.ReportMetric(render/n, "s-to-show-all")
	b.ReportMetric(float64(benchHosts)*n/render, "results/s")
	b.ReportMetric(maxTask, "max-longtask-ms")
	b.ReportMetric(blocking/n, "blocking-ms")
	b.ReportMetric(maxLag, "max-timer-lag-ms")
}
