// Package browsertest starts a real headless Chromium for tests (through
// chromedp) and offers the few page actions the dashboard tests share.
package browsertest

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Chromium returns the browser binary: $OMSERVER_CHROMIUM, else Debian's
// chromium package. Missing, it fails the test (skips under -short).
func Chromium(t testing.TB) string {
	t.Helper()
	for _, p := range []string{os.Getenv("OMSERVER_CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if p == "" {
			continue
		}
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	if testing.Short() {
		t.Skip("chromium not installed (-short)")
	}
	t.Fatal("headless Chromium is required for the browser tests: apt-get install chromium")
	return ""
}

// New starts a headless Chromium with its own profile and returns a
// chromedp context bounded by timeout; the browser stops at test cleanup.
// The flags keep it off the network (this machine has none but loopback)
// and let it run as root in a container. Even with background networking
// off, Chromium looks up Google service names (accounts, autofill, update)
// through the system resolver, a non-loopback address; the resolver rule
// answers every name lookup locally with "not found" (the tests use IP
// literals and localhost, which stay as they are), so no DNS query
// leaves the machine.
func New(t testing.TB, timeout time.Duration) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(Chromium(t)),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND , EXCLUDE localhost , EXCLUDE 127.* , EXCLUDE [::1]"),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1366, 900),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(allocCtx)
	ctx, cancelTimeout := context.WithTimeout(ctx, timeout)
	t.Cleanup(func() { cancelTimeout(); cancelCtx(); cancelAlloc() })
	return ctx
}

// Choose selects the option with value in the select sel and fires change,
// as a user's pick does (chromedp.SetValue fires no event). For a multiple
// select it adds to the selection.
func Choose(sel, value string) chromedp.Action[chromedp.Void] {
	return chromedp.Evaluate[chromedp.Void](`(() => {
		const s = document.querySelector(` + JSString(sel) + `);
		if (!s) throw new Error("no element " + ` + JSString(sel) + `);
		const v = ` + JSString(value) + `;
		let found = false;
		for (const o of s.options) { if (o.value === v) { o.selected = true; found = true; } else if (!s.multiple) { o.selected = false; } }
		if (!found) throw new Error("no option " + v + " in " + ` + JSString(sel) + `);
		s.dispatchEvent(new Event("change", {bubbles: true}));
	})()`)
}

// JSString quotes s as a JavaScript string literal.
func JSString(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\r", `\r`, "\u2028", `\u2028`, "\u2029", `\u2029`).Replace(s) + `"`
}
