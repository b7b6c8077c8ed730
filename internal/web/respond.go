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

	"github.com/omserver/omserver-go/internal/store"
)

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

func writeJSONError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, apiError{Error: msg})
}

func writeText(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, msg)
}

// writeError answers in the caller's language: JSON for the API, plain text
// for the legacy endpoints and other non-page paths.
func writeError(w http.ResponseWriter, r *http.Request, status int, msg string) {
	if wantsJSON(r) {
		writeJSONError(w, status, msg)
		return
	}
	writeText(w, status, msg)
}

// storeStatus maps a store error to an HTTP status and a message for the
// user; unexpected errors become 500 with a generic message (the details go
// to the log).
func storeStatus(err error) (int, string) {
	var br *badRequest
	switch {
	case errors.As(err, &br):
		return http.StatusBadRequest, br.msg
	case errors.Is(err, store.ErrNotFound):
		return http.StatusNotFound, cleanStoreMsg(err)
	case errors.Is(err, store.ErrInvalid):
		return http.StatusBadRequest, cleanStoreMsg(err)
	case errors.Is(err, store.ErrInUse):
		return http.StatusConflict, cleanStoreMsg(err)
	case errors.Is(err, store.ErrConflict):
		return http.StatusConflict, cleanStoreMsg(err)
	}
	return http.StatusInternalServerError, "internal error"
}

// cleanStoreMsg drops the "store: " prefix; the sentinel's text stays as a
// category ("not found", "invalid input", ...).
func cleanStoreMsg(err error) string {
	return strings.TrimPrefix(err.Error(), "store: ")
}

// apiStoreError answers a failed store call in JSON.
func (s *Server) apiStoreError(w http.ResponseWriter, r *http.Request, what string, err error) {
	code, msg := storeStatus(err)
	if code == http.StatusInternalServerError {
		s.log.Error().Err(err).Str("request_id", infoFrom(r.Context()).ID).Msg(what)
		msg = what + ": internal error (request " + infoFrom(r.Context()).ID + ")"
	}
	writeJSONError(w, code, msg)
}

func (s *Server) serverError(w http.ResponseWriter, r *http.Request, what string, err error) {
	id := infoFrom(r.Context()).ID
	s.log.Error().Err(err).Str("request_id", id).Msg(what)
	msg := what + ": internal error (request " + id + ")"
	if wantsJSON(r) || strings.HasPrefix(r.URL.Path, "/autoadmin/") {
		writeError(w, r, http.StatusInternalServerError, msg)
		return
	}
	s.renderError(w, r, http.StatusInternalServerError, msg)
}

// decodeJSON reads a JSON body strictly (unknown fields are errors) and
// answers 400/413/415 itself when it cannot.
func (s *Server) decodeJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	ct := r.Header.Get("Content-Type")
	if ct != "" && !strings.HasPrefix(strings.ToLower(ct), "application/json") {
		writeJSONError(w, http.StatusUnsupportedMediaType, "request body must be JSON (Content-Type: application/json)")
		return false
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if isTooLarge(err) {
			writeJSONError(w, http.StatusRequestEntityTooLarge, s.tooLargeMessage())
			return false
		}
		if errors.Is(err, io.EOF) {
			writeJSONError(w, http.StatusBadRequest, "request body is empty: a JSON object is expected")
			return false
		}
		writeJSONError(w, http.StatusBadRequest, "request body is not valid JSON for this endpoint: "+jsonErrorText(err))
		return false
	}
	if dec.More() {
		writeJSONError(w, http.StatusBadRequest, "request body has data after the JSON object")
		return false
	}
	return true
}

// idParam parses a positive integer URL parameter.
func idParam(r *http.Request, name string) (int64, error) {
	raw := urlParam(r, name)
	id, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || id <= 0 {
		return 0, fmt.Errorf("%s %q is not a positive integer id", name, raw)
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
		return 0, true, fmt.Errorf("query parameter %s=%q is not a positive integer id", name, raw)
	}
	return id, true, nil
}

// pageParam reads ?page= (1-based) and ?per_page= with bounds.
func pageParam(r *http.Request, defPer int) (page, per int, err error) {
	page, per = 1, defPer
	if v := r.URL.Query().Get("page"); v != "" {
		n, e := strconv.Atoi(v)
		if e != nil || n < 1 || n > 1_000_000 {
			return 0, 0, fmt.Errorf("page %q is not a page number (1 or more)", v)
		}
		page = n
	}
	if v := r.URL.Query().Get("per_page"); v != "" {
		n, e := strconv.Atoi(v)
		if e != nil || n < 1 || n > 500 {
			return 0, 0, fmt.Errorf("per_page %q must be 1..500", v)
		}
		per = n
	}
	return page, per, nil
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
