package salt

import (
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestErrorText(t *testing.T) {
	page := func(status int, msg string) string {
		w := httptest.NewRecorder()
		cherryPyError(w, status, msg)
		return w.Body.String()
	}
	tests := []struct {
		name, body, want string
	}{
		{"cherrypy 401", page(401, ""), "No permission -- see authorization schemes"},
		{"cherrypy 401 with salt-api's message", page(401, "Could not authenticate using provided credentials"), "Could not authenticate using provided credentials"},
		{"entities decoded", page(400, `Lowstates must be a list & "quoted" <b>`), `Lowstates must be a list & "quoted" <b>`},
		{"inline markup inside the paragraph", "<html><body><p>Bad <b>token</b>\n  given</p><p>second</p></body></html>", "Bad token given"},
		{"unclosed paragraph", "<p>cut short", "cut short"},
		{"implied end by a second p", "<P>first<p>second", "first"},
		{"empty paragraph falls back to the body", "<p></p> plain", "<p></p> plain"},
		{"not html", `{"return": "nope"}`, `{"return": "nope"}`},
		{"whitespace collapsed", "  a \n\t b  ", "a b"},
		{"empty", "", "(empty body)"},
		{"invalid utf-8", "<p>bad \xff byte</p>", "bad ? byte"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := errorText([]byte(tc.body)); got != tc.want {
				t.Fatalf("errorText = %q, want %q", got, tc.want)
			}
		})
	}
	if n := len(page(401, "")); n < 800 {
		t.Fatalf("the modelled error page is %d bytes; CherryPy's is about 1 KB", n)
	}
	long := errorText([]byte("<p>" + strings.Repeat("主", 200) + "</p>"))
	if !strings.HasSuffix(long, "...") || !utf8.ValidString(long) || len(long) > maxErrorText+3 {
		t.Fatalf("long message %d bytes: %q", len(long), long)
	}
}

func FuzzErrorText(f *testing.F) {
	w := httptest.NewRecorder()
	cherryPyError(w, 401, "")
	f.Add(w.Body.Bytes())
	f.Add([]byte("<p>a<b>b</p>"))
	f.Add([]byte("<p><p><p>"))
	f.Add([]byte(fmt.Sprintf("<p>%s</p>", strings.Repeat("x", 500))))
	f.Fuzz(func(t *testing.T, body []byte) {
		got := errorText(body)
		if got == "" || !utf8.ValidString(got) || len(got) > maxErrorText+3 {
			t.Fatalf("errorText(%q) = %q", body, got)
		}
		if strings.ContainsAny(got, "\n\t") {
			t.Fatalf("errorText(%q) = %q holds line breaks", body, got)
		}
	})
}
