// Package caption makes a module's stored caption safe to show as HTML.
//
// The original OMServer let an admin write HTML in a caption ("*支持HTML");
// its rows hold captions like "[<b>功能说明</b>]<br> 查看...". Pages show a
// caption through HTML, never the stored text as it is: a maintained
// sanitiser (bluemonday) keeps a small formatting subset and drops
// everything else. The stored caption itself is never changed, so the
// legacy module_info endpoint still answers with it byte for byte.
package caption

import (
	"html/template"
	"net/url"
	"strings"
	"sync"

	"github.com/microcosm-cc/bluemonday"
	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// The formatting a caption keeps: b, i, em, strong, br, p, ul, ol, li,
// code, pre, span, and a with an http or https href (it opens in a new tab
// with rel="noopener"). No other attribute survives: no style, no class, no
// event handler; other elements are dropped, script and style with their
// content.

// newPolicy builds the sanitiser policy.
func newPolicy() *bluemonday.Policy {
	p := bluemonday.NewPolicy()
	p.AllowElements("b", "i", "em", "strong", "br", "p", "ul", "ol", "li", "code", "pre")
	// span has no attribute to keep; allow it bare rather than unwrapping it.
	p.AllowNoAttrs().OnElements("span")
	p.AllowAttrs("href").OnElements("a")
	// Only absolute http(s) URLs naming a host (so every link gets
	// target="_blank" and rel="noopener" below), without user:password@.
	absolute := func(u *url.URL) bool { return u.Host != "" && u.User == nil && u.Opaque == "" }
	p.AllowURLSchemeWithCustomPolicy("http", absolute)
	p.AllowURLSchemeWithCustomPolicy("https", absolute)
	p.AllowRelativeURLs(false)
	p.RequireParseableURLs(true)
	// Adds target="_blank" and rel="noopener" to every link (all are
	// absolute http(s) URLs here).
	p.AddTargetBlankToFullyQualifiedLinks(true)
	return p
}

// policy is built once: a bluemonday policy must not change after it is
// built and is then safe for concurrent use; building one per call would
// cost more than sanitising a caption.
var policy = sync.OnceValue(newPolicy)

// HTML returns the stored caption sanitised to the allowed subset, its
// tags balanced (an unclosed <b> ends with the caption), ready to be placed
// in a page as HTML. It is the only way a caption becomes template.HTML.
func HTML(stored string) template.HTML {
	p := policy()
	// bluemonday keeps allowed tags as they stand; a real HTML parser then
	// closes what the caption left open, and the policy runs once more on
	// what the parser wrote, so the result is always the sanitiser's own.
	return template.HTML(p.Sanitize(balance(p.Sanitize(stored))))
}

// balance parses s as the content of a <div> and writes it back, every
// element closed.
func balance(s string) string {
	ctx := &html.Node{Type: html.ElementNode, Data: "div", DataAtom: atom.Div}
	nodes, err := html.ParseFragment(strings.NewReader(s), ctx)
	if err != nil {
		// Only a failing reader makes the parser fail; show text then.
		return html.EscapeString(s)
	}
	var b strings.Builder
	for _, n := range nodes {
		if err := html.Render(&b, n); err != nil {
			return html.EscapeString(s)
		}
	}
	return b.String()
}
