package browsertest

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestChooseFiresChange drives a real page: Choose must select the option
// and fire the change event the dashboard listens to, and refuse a value
// the select does not offer.
func TestChooseFiresChange(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = w.Write([]byte(`<select id="s"><option value="a">A</option><option value="b&quot;">B</option></select>
<div id="out"></div>
<script>document.getElementById("s").addEventListener("change", e => document.getElementById("out").textContent = "changed:" + e.target.value)</script>`))
	}))
	defer srv.Close()
	ctx := New(t, 60*time.Second)
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL), Choose("#s", `b"`)); err != nil {
		t.Fatal(err)
	}
	got, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#out")))
	if err != nil || got != `changed:b"` {
		t.Fatalf("after Choose: %q, %v", got, err)
	}
	if err := chromedp.Do(ctx, Choose("#s", "zzz")); err == nil {
		t.Fatal("choosing a missing option succeeded")
	}
}

func TestJSString(t *testing.T) {
	if got := JSString("a\"b\\c\nd"); got != `"a\"b\\c\nd"` {
		t.Errorf("JSString = %s", got)
	}
}
