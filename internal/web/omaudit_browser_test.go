package web

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/omserver/omserver-go/internal/testutil/browsertest"
)

// The 安全审计 page's JavaScript in a real headless Chromium: pick servers
// as on the dashboard, press 开始监视, and a row ingested through the
// collectors' URL appears at once, as text.
func TestOmauditPageInBrowser(t *testing.T) {
	e, tok := auditEnv(t)
	e.seedHistory(hist(loopB, 1, "root", "before watching"))
	ctx := browsertest.New(t, 60*time.Second)
	err := chromedp.Do(ctx,
		chromedp.Navigate(e.ts.URL+"/login?next=/omaudit/"),
		chromedp.SendKeys(chromedp.CSS(`#username`), "viewer"),
		chromedp.SendKeys(chromedp.CSS(`#password`), testPassword),
		chromedp.Click(chromedp.CSS(`#login-submit`)),
		chromedp.WaitReady(chromedp.CSS(`#fun-categ option[value="11"]`)),
		chromedp.Poll[chromedp.Void](`document.querySelector('#watch-status').getAttribute('data-state') === 'idle'`),
		browsertest.Choose("#fun-categ", "11"),
		chromedp.WaitReady(chromedp.CSS(`#app-categ option[value="2"]`)),
		browsertest.Choose("#app-categ", "2"),
		chromedp.WaitReady(chromedp.CSS(`#servers option[value="127.0.0.2"]`)),
		browsertest.Choose("#servers", "127.0.0.2"),
		chromedp.Click(chromedp.CSS(`#watch`)),
		chromedp.Poll[chromedp.Void](`document.querySelector('#watch-status').getAttribute('data-state') === 'watching'`),
		// The newest rows of the chosen server come first, as in the original.
		chromedp.WaitVisible(chromedp.CSS(`#audit-stream .audit-row`)),
	)
	if err != nil {
		t.Fatalf("start watching: %v", err)
	}
	label, _ := chromedp.Run(ctx, chromedp.TextContent(chromedp.CSS(`#watch`)))
	if label != "Stop watching" {
		t.Fatalf("button says %q while watching", label)
	}
	bearer := map[string]string{"Authorization": "Bearer " + tok}
	e.pullFrom(loopA, pullQuery(loopA, "3", "root", "2026-01-02 03:04:05", "not watched"), bearer).want(t, http.StatusOK)
	hostile := `<script>window.__xss=1</script><img src=x onerror="window.__xss=2">`
	e.pullFrom(loopB, pullQuery(loopB, "4", "ops", "2026-01-02 03:04:06", hostile), bearer).want(t, http.StatusOK)
	err = chromedp.Do(ctx,
		chromedp.Poll[chromedp.Void](`document.querySelectorAll('#audit-stream .audit-row').length === 2`),
	)
	if err != nil {
		html, _ := chromedp.Run(context.WithoutCancel(ctx), chromedp.Evaluate[string](`document.querySelector('#audit-stream').outerHTML`))
		t.Fatalf("live row: %v; pane %s", err, html)
	}
	top, _ := chromedp.Run(ctx, chromedp.TextContent(chromedp.CSS(`#audit-stream .audit-row:first-child .command`)))
	who, _ := chromedp.Run(ctx, chromedp.TextContent(chromedp.CSS(`#audit-stream .audit-row:first-child .user`)))
	ip, _ := chromedp.Run(ctx, chromedp.TextContent(chromedp.CSS(`#audit-stream .audit-row:first-child .ip`)))
	xss, _ := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.__xss !== undefined || document.querySelector('#audit-stream script, #audit-stream img') !== null`))
	if top != hostile || who != "ops" || ip != loopB || xss {
		t.Fatalf("newest row: %q by %q on %q (markup ran or was inserted: %v)", top, who, ip, xss)
	}
	all, _ := chromedp.Run(ctx, chromedp.TextContent(chromedp.CSS(`#audit-stream`)))
	if strings.Contains(all, "not watched") || !strings.Contains(all, "before watching") {
		t.Fatalf("pane %q", all)
	}

	// Stop: nothing more arrives; the search below lists the same rows.
	err = chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`#watch`)),
		chromedp.Poll[chromedp.Void](`document.querySelector('#watch').textContent === 'Start watching'`),
	)
	if err != nil {
		t.Fatalf("stop: %v", err)
	}
	e.pullFrom(loopB, pullQuery(loopB, "5", "ops", "2026-01-02 03:04:07", "after stop"), bearer).want(t, http.StatusOK)
	err = chromedp.Do(ctx,
		chromedp.SetValue(chromedp.CSS(`#s-user`), "ops"),
		chromedp.Click(chromedp.CSS(`#search-submit`)),
	)
	if err != nil {
		t.Fatalf("search: %v", err)
	}
	// The rows before the search are on the page too: wait for the
	// search's own page (evaluations fail while it navigates).
	for i := 0; ; i++ {
		got, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`location.search.includes('user=ops') && document.readyState === 'complete'`))
		if err == nil && got {
			break
		}
		if i == 100 {
			t.Fatalf("the search page did not load (%v)", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(`#history tbody tr[data-id]`))); err != nil {
		t.Fatalf("search: %v", err)
	}
	rows, _ := chromedp.Run(ctx, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll('#history td.command')).map(td => td.textContent)`))
	if len(rows) != 2 || rows[0] != "after stop" || rows[1] != hostile {
		t.Fatalf("search result %q", rows)
	}
	if xss, _ := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.__xss !== undefined`)); xss {
		t.Fatal("markup in a command ran on the search page")
	}
}
