package salt

import (
	"bytes"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/html"
)

// maxErrorText bounds what an error message keeps of a response body.
const maxErrorText = 300

// errorText is what a salt-api error response says, for an error message.
// salt-api raises cherrypy.HTTPError for every failure it maps to a status
// (rest_cherrypy app.py, hypermedia_handler: 401 for authentication and
// authorization errors, 400, 503, 504), and CherryPy renders it as an XHTML
// page of about 1 KB (cherrypy/_cperror.py, _HTTPErrorTemplate: the status
// in <title> and <h2>, the message in <p>, a traceback in <pre>, a
// "Powered by" footer). The message is the <p> element's text; a body
// that is not such a page is shown as its start.
func errorText(body []byte) string {
	if p, ok := firstParagraph(body); ok {
		return clip(p)
	}
	s := strings.Join(strings.Fields(strings.ToValidUTF8(string(body), "?")), " ")
	if s == "" {
		return "(empty body)"
	}
	return clip(s)
}

// firstParagraph returns the text of the first <p> element of an HTML
// document, whitespace collapsed; ok is false when there is none or it is
// empty.
func firstParagraph(body []byte) (string, bool) {
	if !bytes.Contains(bytes.ToLower(body), []byte("<p")) {
		return "", false
	}
	z := html.NewTokenizer(bytes.NewReader(body))
	depth := 0 // inside the first <p> (nested inline tags counted)
	var text strings.Builder
	for {
		switch z.Next() {
		case html.ErrorToken:
			return finishText(text.String())
		case html.StartTagToken:
			name, _ := z.TagName()
			switch {
			case depth == 0 && string(name) == "p":
				depth = 1
			case depth > 0 && string(name) == "p":
				// A new paragraph closes the first (HTML's implied </p>).
				return finishText(text.String())
			case depth > 0:
				depth++
			}
		case html.EndTagToken:
			if depth == 0 {
				continue
			}
			name, _ := z.TagName()
			if string(name) == "p" {
				return finishText(text.String())
			}
			depth--
			if depth < 1 {
				depth = 1
			}
		case html.TextToken:
			if depth > 0 {
				text.Write(z.Text()) // entities already decoded
				text.WriteByte(' ')
			}
		}
	}
}

func finishText(s string) (string, bool) {
	s = strings.Join(strings.Fields(strings.ToValidUTF8(s, "?")), " ")
	return s, s != ""
}

// clip keeps a message to a readable size, on a UTF-8 boundary.
func clip(s string) string {
	if len(s) <= maxErrorText {
		return s
	}
	cut := maxErrorText
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}
