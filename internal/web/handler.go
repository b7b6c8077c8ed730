package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"strings"

	"github.com/omserver/omserver-go/internal/apperr"
)

// handlerFunc is an HTTP handler that returns its failure instead of
// writing it; Server.h turns the failure into the response.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// h adapts a handlerFunc to net/http: a returned error is answered by fail,
// in the caller's language and with the status of its category.
func (s *Server) h(fn handlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := fn(w, r); err != nil {
			s.fail(w, r, err)
		}
	}
}

// statusOf is the one place an error category becomes an HTTP status.
func statusOf(k apperr.Kind) int {
	switch k {
	case apperr.Invalid:
		return http.StatusBadRequest
	case apperr.NotFound:
		return http.StatusNotFound
	case apperr.Conflict:
		return http.StatusConflict
	case apperr.Unavailable:
		return http.StatusServiceUnavailable
	case apperr.Forbidden:
		return http.StatusForbidden
	case apperr.Unauthenticated:
		return http.StatusUnauthorized
	case apperr.TooLarge:
		return http.StatusRequestEntityTooLarge
	case apperr.Interrupted:
		return http.StatusBadGateway
	case apperr.TooMany:
		return http.StatusTooManyRequests
	}
	return http.StatusInternalServerError
}

// fail answers err: its category gives the status, its text the message,
// except for uncategorised (internal) errors, which are logged with the
// request id and answered with a generic message naming that id.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	kind := apperr.KindOf(err)
	status := statusOf(kind)
	msg := err.Error()
	switch kind {
	case apperr.Internal:
		id := infoFrom(r.Context()).ID
		s.log.Error().Err(err).Str("request_id", id).Str("path", r.URL.Path).Msg("request failed")
		msg = "internal error (request " + id + ")"
	case apperr.Unavailable, apperr.TooMany:
		w.Header().Set("Retry-After", "5")
	case apperr.Unauthenticated:
		w.Header().Set("WWW-Authenticate", `Bearer realm="omserver"`)
	}
	s.answerError(w, r, status, msg)
}

// answerError writes an error in the caller's language: JSON for the API,
// plain text for the legacy endpoints, the site's error page for a browser.
func (s *Server) answerError(w http.ResponseWriter, r *http.Request, status int, msg string) {
	switch routeKindOf(r) {
	case routeAPI:
		writeJSON(w, status, apiError{Error: msg})
	case routeText:
		writeText(w, status, msg)
	default:
		s.renderWith(w, r, status, "error", errorTitle(status), nil, "", msg)
	}
}

// routeKind is how a route answers: JSON, plain text or HTML pages.
type routeKind int

const (
	routePage routeKind = iota
	routeAPI
	routeText
)

// routeKindOf tells API callers (JSON), scripts of the original's text
// endpoints and probes (plain text) and browsers on pages (HTML) apart.
func routeKindOf(r *http.Request) routeKind {
	p := r.URL.Path
	switch {
	case strings.HasPrefix(p, "/api/"):
		return routeAPI
	case strings.HasPrefix(p, "/autoadmin/"), strings.HasPrefix(p, "/omaudit/omaudit_"), strings.HasPrefix(p, "/static/"), p == "/healthz", p == "/metrics":
		return routeText
	}
	return routePage
}

// invalidf is a refused request; the message says what to change.
func invalidf(format string, args ...any) error {
	return apperr.Errorf(apperr.Invalid, format, args...)
}

// apiError is the body of every JSON error.
type apiError struct {
	Error string `json:"error"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(true)
	_ = enc.Encode(v)
}

func writeText(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, msg)
}

// decodeJSON reads a JSON body strictly (unknown fields are errors).
func (s *Server) decodeJSON(r *http.Request, v any) error {
	ct := r.Header.Get("Content-Type")
	if ct != "" && !strings.HasPrefix(strings.ToLower(ct), "application/json") {
		return apperr.Errorf(apperr.Invalid, "request body must be JSON (Content-Type: application/json)")
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if isTooLarge(err) {
			return apperr.New(apperr.TooLarge, s.tooLargeMessage())
		}
		if errors.Is(err, io.EOF) {
			return invalidf("request body is empty: a JSON object is expected")
		}
		return invalidf("request body is not valid JSON for this endpoint: %s", jsonErrorText(err))
	}
	if dec.More() {
		return invalidf("request body has data after the JSON object")
	}
	return nil
}

// parseForm reads a form body. A body over the size limit, or one that is
// not a form, gets a message saying so in the user's terms.
func (s *Server) parseForm(r *http.Request) error {
	if err := r.ParseForm(); err != nil {
		if isTooLarge(err) {
			return apperr.New(apperr.TooLarge, s.tooLargeMessage())
		}
		if strings.Contains(err.Error(), "semicolon") {
			return invalidf("the form could not be read: it contains a ';' that is not percent-encoded (send it as %%3B)")
		}
		return invalidf("the form could not be read: %s", err.Error())
	}
	return nil
}

// idParam parses a positive integer URL parameter; what names it in the
// error ("module", "user").
func idParam(r *http.Request, name, what string) (int64, error) {
	raw := urlParam(r, name)
	id, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || id <= 0 {
		return 0, invalidf("%s %s %q is not a positive integer id", what, name, clipRunes(raw, 40))
	}
	return id, nil
}

// queryID parses an optional positive integer query parameter; absent is 0.
func queryID(r *http.Request, name string) (int64, bool, error) {
	raw := r.URL.Query().Get(name)
	if raw == "" {
		return 0, false, nil
	}
	id, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || id <= 0 {
		return 0, true, invalidf("query parameter %s=%q is not a positive integer id", name, clipRunes(raw, 40))
	}
	return id, true, nil
}

// jsonErrorText says what is wrong with a JSON body in the caller's terms
// (field names and JSON kinds), not the decoder's (Go struct and type
// names, which mean nothing to a script's author and describe our code).
func jsonErrorText(err error) string {
	var ute *json.UnmarshalTypeError
	if errors.As(err, &ute) {
		field := ute.Field
		if field == "" {
			field = "the body"
		} else {
			field = "field " + strconv.Quote(field)
		}
		return fmt.Sprintf("%s must be %s, not %s", field, jsonKind(ute.Type), ute.Value)
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

// jsonKind names the JSON value a Go type is decoded from.
func jsonKind(t reflect.Type) string {
	if t == nil {
		return "a different kind of value"
	}
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Map, reflect.Struct:
		return "an object"
	case reflect.Pointer:
		return jsonKind(t.Elem())
	}
	return "a different kind of value"
}

// clipRunes shortens s to n runes for a message, marking the cut.
func clipRunes(s string, n int) string {
	s = strings.ToValidUTF8(s, "?")
	if len([]rune(s)) <= n {
		return s
	}
	return string([]rune(s)[:n]) + "…"
}

// notFoundf is a request for something that does not exist.
func notFoundf(format string, args ...any) error {
	return apperr.Errorf(apperr.NotFound, format, args...)
}

// errorTitle is the message id of an error page's title.
func errorTitle(status int) string {
	switch status {
	case http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound,
		http.StatusConflict, http.StatusRequestEntityTooLarge, http.StatusTooManyRequests, http.StatusServiceUnavailable:
		return "error.status." + strconv.Itoa(status)
	}
	return "error.status.other"
}
