package web

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"sort"
	"strings"

	"github.com/nicksnyder/go-i18n/v2/i18n"
	"golang.org/x/text/language"
)

// The interface speaks English and Simplified Chinese. Every text a page
// or the browser code shows comes from the catalogues in templates/i18n
// (go-i18n message files, one per language, with identical message ids —
// a test holds them to that), never from strings scattered through
// templates and scripts.

// Languages, as the catalogue files, the lang cookie, the user's stored
// preference and <html lang> name them.
const (
	langEN = "en"
	langZH = "zh-CN"
)

var langTags = []language.Tag{language.English, language.SimplifiedChinese}

// langNames are shown in the switch, each in its own language.
var langNames = []struct{ Code, Name string }{{langEN, "English"}, {langZH, "简体中文"}}

// langCookie remembers the choice of a browser that is not logged in.
const langCookie = "omserver_lang"

// validLang reports whether code is a language the interface speaks.
func validLang(code string) bool { return code == langEN || code == langZH }

// catalogues holds the parsed message files and, per language, a localizer
// and the catalogue the browser code gets.
type catalogues struct {
	bundle  *i18n.Bundle
	loc     map[string]*i18n.Localizer
	js      map[string][]byte // language -> JavaScript defining window.OMS_I18N
	ids     map[string][]string
	matcher language.Matcher
}

func loadCatalogues(fsys fs.FS) (*catalogues, error) {
	c := &catalogues{
		bundle:  i18n.NewBundle(language.English),
		loc:     map[string]*i18n.Localizer{},
		js:      map[string][]byte{},
		ids:     map[string][]string{},
		matcher: language.NewMatcher(langTags),
	}
	c.bundle.RegisterUnmarshalFunc("json", json.Unmarshal)
	for _, lang := range []string{langEN, langZH} {
		path := "templates/i18n/active." + lang + ".json"
		buf, err := fs.ReadFile(fsys, path)
		if err != nil {
			return nil, fmt.Errorf("web: catalogue %s: %w", lang, err)
		}
		mf, err := c.bundle.ParseMessageFileBytes(buf, path)
		if err != nil {
			return nil, fmt.Errorf("web: catalogue %s: %w", lang, err)
		}
		forms := make(map[string]map[string]string, len(mf.Messages))
		for _, m := range mf.Messages {
			f := map[string]string{"other": m.Other}
			if m.One != "" {
				f["one"] = m.One
			}
			forms[m.ID] = f
			c.ids[lang] = append(c.ids[lang], m.ID)
		}
		sort.Strings(c.ids[lang])
		b, err := json.Marshal(forms)
		if err != nil {
			return nil, err
		}
		var js bytes.Buffer
		js.WriteString("// OMServer interface texts (" + lang + "), from the server's catalogue.\nwindow.OMS_I18N = {lang: ")
		lj, _ := json.Marshal(lang)
		js.Write(lj)
		js.WriteString(", messages: ")
		js.Write(b)
		js.WriteString("};\n")
		c.js[lang] = js.Bytes()
		c.loc[lang] = i18n.NewLocalizer(c.bundle, lang)
	}
	return c, nil
}

// text returns message id in lang with args as "Name", value pairs; a
// "Count" argument also picks the plural form. A missing message shows its
// id (tests make sure none is missing).
func (c *catalogues) text(lang, id string, args ...any) string {
	loc := c.loc[lang]
	if loc == nil {
		loc = c.loc[langEN]
	}
	cfg := &i18n.LocalizeConfig{MessageID: id}
	if len(args) > 0 {
		data := make(map[string]any, len(args)/2)
		for i := 0; i+1 < len(args); i += 2 {
			k, _ := args[i].(string)
			data[k] = args[i+1]
		}
		cfg.TemplateData = data
		if n, ok := data["Count"]; ok {
			cfg.PluralCount = n
		}
	}
	s, err := loc.Localize(cfg)
	if err != nil && cfg.PluralCount != nil {
		// A message with one form for every count (Chinese, or an English
		// one like "{{.Count}} {{.State}}") has only "other".
		cfg.PluralCount = nil
		s, err = loc.Localize(cfg)
	}
	if err != nil {
		return id
	}
	return s
}

// match picks the interface language for an Accept-Language header.
func (c *catalogues) match(acceptLanguage string) string {
	tags, _, err := language.ParseAcceptLanguage(acceptLanguage)
	if err != nil || len(tags) == 0 {
		return langEN
	}
	_, i, conf := c.matcher.Match(tags...)
	if conf == language.No {
		return langEN
	}
	// Any Chinese (zh, zh-TW, zh-HK, ...) reads the Chinese catalogue
	// rather than English.
	if i == 1 || baseIs(tags, "zh") {
		return langZH
	}
	return langEN
}

// baseIs reports whether the first preferred tag has base language b.
func baseIs(tags []language.Tag, b string) bool {
	base, _ := tags[0].Base()
	return base.String() == b
}

// langOf is the request's interface language: the user's stored choice,
// else this browser's cookie, else its Accept-Language.
func (s *Server) langOf(r *http.Request) string {
	if p := authOf(r); p != nil && validLang(p.Lang) {
		return p.Lang
	}
	if c, err := r.Cookie(langCookie); err == nil && validLang(c.Value) {
		return c.Value
	}
	return s.i18n.match(r.Header.Get("Accept-Language"))
}

// tr translates id into the request's language.
func (s *Server) tr(r *http.Request, id string, args ...any) string {
	return s.i18n.text(s.langOf(r), id, args...)
}

// serveCatalogue answers /i18n/{lang}.js: the catalogue for the browser
// code, as a script (the CSP allows only this site's scripts, no inline
// data, and a script needs no extra request before the page can speak).
func (s *Server) serveCatalogue(w http.ResponseWriter, r *http.Request) error {
	lang := strings.TrimSuffix(urlParam(r, "file"), ".js")
	js, ok := s.i18n.js[lang]
	if !ok || !strings.HasSuffix(urlParam(r, "file"), ".js") {
		return notFoundf("no catalogue %q", clipRunes(urlParam(r, "file"), 40))
	}
	w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=3600")
	_, _ = w.Write(js)
	return nil
}

// pageLang switches the interface language: remembered for the user when
// logged in, and in a cookie for this browser either way.
func (s *Server) pageLang(w http.ResponseWriter, r *http.Request) error {
	if err := s.parseForm(r); err != nil {
		return err
	}
	lang := r.PostForm.Get("lang")
	if !validLang(lang) {
		return invalidf("language %q is not offered (en or zh-CN)", clipRunes(lang, 20))
	}
	if p := authOf(r); p != nil {
		if err := s.st.SetUserLang(r.Context(), p.UserID, lang); err != nil {
			return err
		}
	}
	http.SetCookie(w, &http.Cookie{
		Name: langCookie, Value: lang, Path: "/", MaxAge: 365 * 24 * 3600,
		HttpOnly: true, Secure: s.cfg.SecureCookies, SameSite: http.SameSiteLaxMode,
	})
	http.Redirect(w, r, safeNext(r.PostForm.Get("next")), http.StatusSeeOther)
	return nil
}
