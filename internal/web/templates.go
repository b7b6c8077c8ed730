package web

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"golang.org/x/net/html"
)

//go:embed templates/*.html templates/i18n/*.json
var templateFiles embed.FS

// pageNames are the page templates; each is parsed together with the layout.
func pageNames() []string {
	return []string{"login", "error", "dashboard", "runs", "run", "modules", "module_edit", "inventory", "users", "audit", "tokens", "account", "omaudit", "omaudit_tokens", "notifications", "schedules", "diff", "facts"}
}

type pages struct {
	byName map[string]*template.Template
}

func loadPages() (*pages, error) {
	funcs := template.FuncMap{
		"fmtTime":  fmtTime,
		"fmtDur":   fmtDuration,
		"add":      func(a, b int) int { return a + b },
		"percent":  percent,
		"statuses": func() []string { return hostStatusOrder },
		"list":     func(v ...string) []string { return v },
		"groupCtx": func(p pageData, g hostGroup) groupArg { return groupArg{p, g} },
		"dict":     dict,
		"has":      has,
	}
	base, err := template.New("layout").Funcs(funcs).ParseFS(templateFiles, "templates/layout.html")
	if err != nil {
		return nil, fmt.Errorf("web: parse layout: %w", err)
	}
	p := &pages{byName: map[string]*template.Template{}}
	for _, name := range pageNames() {
		t, err := base.Clone()
		if err != nil {
			return nil, fmt.Errorf("web: clone layout: %w", err)
		}
		if _, err := t.ParseFS(templateFiles, "templates/"+name+".html"); err != nil {
			return nil, fmt.Errorf("web: parse page %s: %w", name, err)
		}
		p.byName[name] = t
	}
	return p, nil
}

// dict builds a map from key, value pairs, to pass several values to a
// sub-template.
func dict(kv ...any) (map[string]any, error) {
	if len(kv)%2 != 0 {
		return nil, fmt.Errorf("dict: odd number of arguments")
	}
	m := make(map[string]any, len(kv)/2)
	for i := 0; i < len(kv); i += 2 {
		k, ok := kv[i].(string)
		if !ok {
			return nil, fmt.Errorf("dict: key %v is not a string", kv[i])
		}
		m[k] = kv[i+1]
	}
	return m, nil
}

// has reports whether list holds s.
func has(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// fmtTime shows times in UTC, to the second; zero and nil are blank.
func fmtTime(v any) string {
	var t time.Time
	switch x := v.(type) {
	case time.Time:
		t = x
	case *time.Time:
		if x == nil {
			return ""
		}
		t = *x
	default:
		return ""
	}
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

// fmtDuration shows a duration rounded for people: 850ms, 12.3s, 4m05s.
func fmtDuration(d time.Duration) string {
	switch {
	case d <= 0:
		return ""
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

// percent is 100*n/of, for progress bars (0 when of is 0).
func percent(n, of int) int {
	if of <= 0 {
		return 0
	}
	return min(100, 100*n/of)
}

// pageData is what every page template gets.
type pageData struct {
	Title     string
	User      *principal
	IsAdmin   bool
	CanRun    bool
	Flash     string
	Error     string
	RequestID string
	Lang      string // "en" or "zh-CN"
	Path      string // this page's path and query, for the language switch to come back to
	Langs     []struct{ Code, Name string }
	Data      any
	cat       *catalogues
}

// T translates a message id into the page's language; args are "Name",
// value pairs ("Count" also picks the plural form).
func (pd pageData) T(id string, args ...any) string { return pd.cat.text(pd.Lang, id, args...) }

// render shows a page; title is a message id.
func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, page, title string, data any) {
	s.renderWith(w, r, status, page, title, data, flashMessage(r.URL.Query().Get("ok")), "")
}

// flashMessage maps the fixed ?ok= codes of post-redirect-get to message
// ids, so a link cannot make the page display arbitrary words.
func flashMessage(code string) string {
	switch code {
	case "saved", "deleted", "imported", "created", "password", "imported_module":
		return "flash." + code
	}
	return ""
}

// renderWith shows a page with a flash (a message id) or an error (text,
// already in words: server errors say what to change).
func (s *Server) renderWith(w http.ResponseWriter, r *http.Request, status int, page, title string, data any, flash, errMsg string) {
	t := s.pages.byName[page]
	p := authOf(r)
	lang := s.langOf(r)
	pd := pageData{
		Title: s.i18n.text(lang, title), User: p, Data: data, RequestID: infoFrom(r.Context()).ID,
		Error: errMsg, Lang: lang, Path: r.URL.RequestURI(), Langs: langNames, cat: s.i18n,
	}
	if flash != "" {
		pd.Flash = s.i18n.text(lang, flash)
	}
	if r.Method != http.MethodGet {
		pd.Path = r.URL.Path
	}
	if p != nil {
		pd.IsAdmin = p.level >= roleAdmin
		pd.CanRun = p.level >= roleOperator
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", pd); err != nil {
		s.log.Error().Err(err).Str("page", page).Msg("render page")
		writeText(w, http.StatusInternalServerError, "internal error rendering the page (request "+pd.RequestID+")")
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Language", lang)
	w.WriteHeader(status)
	_, _ = buf.WriteTo(w)
}

func urlParam(r *http.Request, name string) string { return chi.URLParam(r, name) }

// captionText turns a stored caption (original rows hold HTML such as
// "[<b>功能说明</b>]<br> ...") into plain text: tags are dropped with a real
// HTML tokenizer, <br> and block ends become line breaks, entities are
// decoded. The result is always shown escaped (html/template or
// textContent); pages that show the caption's formatting use
// caption.HTML, the sanitised form.
func captionText(s string) string {
	z := html.NewTokenizer(strings.NewReader(s))
	var b strings.Builder
	skip := 0
	for {
		switch z.Next() {
		case html.ErrorToken:
			return strings.TrimSpace(b.String())
		case html.TextToken:
			if skip == 0 {
				b.Write(z.Text())
			}
		case html.StartTagToken, html.SelfClosingTagToken:
			name, _ := z.TagName()
			switch string(name) {
			case "br", "p", "div", "li":
				b.WriteByte('\n')
			case "script", "style":
				skip++
			}
		case html.EndTagToken:
			name, _ := z.TagName()
			switch string(name) {
			case "script", "style":
				if skip > 0 {
					skip--
				}
			case "p", "div":
				b.WriteByte('\n')
			}
		}
	}
}
