package caption

import (
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/net/html"
)

// The captions of the original dump's module_list rows keep their
// formatting: bold title, line break, text.
func TestOriginalCaptionsKeepTheirFormatting(t *testing.T) {
	dump, err := os.ReadFile("../../../shared/reference/OMServer.sql")
	if err != nil {
		t.Skipf("the original dump is not here: %v", err)
	}
	rows := regexp.MustCompile(`\((100[1-7]), '[^']*', '([^']*)'`).FindAllStringSubmatch(string(dump), -1)
	if len(rows) != 7 {
		t.Fatalf("found %d module_list rows in the dump, want 7", len(rows))
	}
	for _, r := range rows {
		stored := r[2]
		text, ok := strings.CutPrefix(stored, "[<b>功能说明</b>]<br> ")
		if !ok {
			t.Fatalf("module %s: caption %q has an unexpected shape", r[1], stored)
		}
		if got, want := string(HTML(stored)), "[<b>功能说明</b>]<br/> "+text; got != want {
			t.Errorf("module %s: HTML(%q) = %q, want %q", r[1], stored, got, want)
		}
	}
}

func TestHTML(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"plain 文字", "plain 文字"},
		{"", ""},
		{"a < b & c > \"d\"", "a &lt; b &amp; c &gt; &#34;d&#34;"},
		{"<i>i</i><em>em</em><strong>s</strong><code>c</code><pre>p\n  q</pre><span>s</span>", "<i>i</i><em>em</em><strong>s</strong><code>c</code><pre>p\n  q</pre><span>s</span>"},
		{"<p>one</p><ul><li>a</li></ul><ol><li>b</li></ol>", "<p>one</p><ul><li>a</li></ul><ol><li>b</li></ol>"},
		{`<a href="https://example.com/doc?a=1&b=2">doc</a>`, `<a href="https://example.com/doc?a=1&amp;b=2" target="_blank" rel="noopener">doc</a>`},
		{`<a href="http://example.com" rel="opener" target="_self" title="t">x</a>`, `<a href="http://example.com" target="_blank" rel="noopener">x</a>`},
		// Unclosed tags are closed within the caption.
		{"<b>bold<i>both", "<b>bold<i>both</i></b>"},
		{"<ul><li>a<li>b", "<ul><li>a</li><li>b</li></ul>"},
		// Elements outside the subset go, their text stays (tables, divs,
		// headings, fonts); a stray end tag is harmless.
		{"<div><h1>T</h1><table><tr><td>c</td></tr></table><font color=red>f</font></div></td></tr>", "Tcf"},
	} {
		if got := string(HTML(tc.in)); got != tc.want {
			t.Errorf("HTML(%q)\n = %q\nwant %q", tc.in, got, tc.want)
		}
	}
}

// XSS vectors lose everything executable; what remains is checked by
// walking the result with a real HTML tokenizer.
func TestHTMLRemovesXSS(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`<script>alert(1)</script>after`, "after"},
		{`<SCRIPT SRC=//evil/x.js></SCRIPT>x`, "x"},
		{`<img src=x onerror=alert(1)>img`, "img"},
		{`<b onclick="alert(1)" onmouseover=alert(2)>b</b>`, "<b>b</b>"},
		{`<span style="background:url(javascript:alert(1))">s</span>`, "<span>s</span>"},
		{`<p style="color:red" class="x" id="y">p</p>`, "<p>p</p>"},
		{`<style>body{display:none}</style>text`, "text"},
		{`<a href="javascript:alert(1)">js</a>`, "js"},
		{`<a href="JaVaScRiPt:alert(1)">js</a>`, "js"},
		{`<a href="java&#x09;script:alert(1)">js</a>`, "js"},
		{`<a href="&#106;avascript:alert(1)">js</a>`, "js"},
		{`<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">data</a>`, "data"},
		{`<a href="vbscript:msgbox(1)">vb</a>`, "vb"},
		{`<a href="/relative">rel</a><a href="//example.com">proto</a>`, "relproto"},
		{`<a href="https://user:pw@example.com/">userinfo</a><a href="https:example.com">opaque</a><a href="http:/example.com">nohost</a>`, "userinfoopaquenohost"},
		{`<iframe src="https://example.com"></iframe><object data=x></object><embed src=x>e`, "e"},
		{`<svg onload=alert(1)><circle></circle></svg>s`, "s"},
		{`<math><mi xlink:href="javascript:alert(1)">m</mi></math>`, "m"},
		{`<form action=//evil><input name=x><button formaction=javascript:alert(1)>b</button></form>`, "b"},
		{`<meta http-equiv="refresh" content="0;url=//evil">m`, "m"},
		{`<base href="//evil/">b`, "b"},
		{`<link rel=stylesheet href=//evil/x.css>l`, "l"},
		{`<<script>script>alert(1)<</script>/script>`, "&lt;/script&gt;"},
		{`<b <script>x</script>>y</b>`, "<b>x&gt;y</b>"},
		{`<!--<script>alert(1)</script>-->c`, "c"},
		{`<br/onload=alert(1)>x`, "<br/>x"},
		{`<code><script>alert(1)</script></code>`, "<code></code>"},
	} {
		got := string(HTML(tc.in))
		if got != tc.want {
			t.Errorf("HTML(%q)\n = %q\nwant %q", tc.in, got, tc.want)
		}
		assertSafe(t, tc.in, got)
	}
}

var allowed = map[string]bool{"b": true, "i": true, "em": true, "strong": true, "br": true, "p": true,
	"ul": true, "ol": true, "li": true, "code": true, "pre": true, "span": true, "a": true}

// assertSafe walks out as a browser would tokenize it: only allowed
// elements, only a link's href (http or https), target and rel="noopener".
func assertSafe(t *testing.T, in, out string) {
	t.Helper()
	z := html.NewTokenizer(strings.NewReader(out))
	for {
		switch z.Next() {
		case html.ErrorToken:
			return
		case html.StartTagToken, html.SelfClosingTagToken, html.EndTagToken:
			tok := z.Token()
			if !allowed[tok.Data] {
				t.Fatalf("HTML(%q) = %q keeps <%s>", in, out, tok.Data)
			}
			for _, a := range tok.Attr {
				switch {
				case tok.Data == "a" && a.Key == "href":
					u, err := url.Parse(a.Val)
					if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
						t.Fatalf("HTML(%q) = %q keeps href %q", in, out, a.Val)
					}
				case tok.Data == "a" && a.Key == "target" && a.Val == "_blank":
				case tok.Data == "a" && a.Key == "rel" && a.Val == "noopener":
				default:
					t.Fatalf("HTML(%q) = %q keeps attribute %s=%q on <%s>", in, out, a.Key, a.Val, tok.Data)
				}
			}
		case html.CommentToken, html.DoctypeToken:
			t.Fatalf("HTML(%q) = %q keeps a comment or doctype", in, out)
		}
	}
}

// FuzzHTML: whatever is stored, the caption shown holds only the allowed
// subset, and sanitising it again changes nothing.
func FuzzHTML(f *testing.F) {
	for _, s := range []string{
		"[<b>功能说明</b>]<br> 查看所选服务器的操作系统日志信息",
		`<a href="https://example.com" onclick=x>l</a><img src=x onerror=alert(1)>`,
		`<b><i>unclosed<ul><li>x`,
		`<a href="java&#x09;script:alert(1)">js</a><style>x</style><script>y</script>`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out := string(HTML(in))
		assertSafe(t, in, out)
		if again := string(HTML(out)); again != out {
			t.Fatalf("not idempotent: HTML(%q) = %q, then %q", in, out, again)
		}
	})
}
