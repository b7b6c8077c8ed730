package web

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"runtime/debug"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

type ctxKey int

const (
	ctxReqInfo ctxKey = iota
)

// reqInfo is filled in as a request passes through the chain; the logging
// middleware created it, so it sees what the auth middleware learnt.
type reqInfo struct {
	ID   string
	User string
	// Auth is set by the auth middleware.
	Auth *principal
}

func infoFrom(ctx context.Context) *reqInfo {
	ri, _ := ctx.Value(ctxReqInfo).(*reqInfo)
	if ri == nil {
		return &reqInfo{}
	}
	return ri
}

// statusWriter records the status code and keeps http.Flusher reachable
// (SSE needs it) through http.ResponseController's Unwrap.
type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if !w.wrote {
		w.status, w.wrote = http.StatusOK, true
	}
	return w.ResponseWriter.Write(p)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func newRequestID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// observe assigns a request id, logs each request once it is done and counts
// it in the metrics by route pattern (never by raw path: ids would explode the
// label set).
func (s *Server) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ri := &reqInfo{ID: newRequestID()}
		w.Header().Set("X-Request-Id", ri.ID)
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		r = r.WithContext(context.WithValue(r.Context(), ctxReqInfo, ri))
		next.ServeHTTP(sw, r)
		d := time.Since(start)
		route := "unmatched"
		if rc := chi.RouteContext(r.Context()); rc != nil && rc.RoutePattern() != "" {
			route = rc.RoutePattern()
		}
		s.metrics.requests.WithLabelValues(r.Method, route, fmt.Sprint(sw.status)).Inc()
		s.metrics.duration.WithLabelValues(r.Method, route).Observe(d.Seconds())
		ev := s.log.Info()
		if sw.status >= 500 {
			ev = s.log.Error()
		}
		ev.Str("request_id", ri.ID).Str("method", r.Method).Str("path", r.URL.Path).
			Int("status", sw.status).Dur("duration", d).Str("user", ri.User).
			Str("remote", r.RemoteAddr).Msg("http request")
	})
}

// recoverer turns a panic in a handler into a logged 500 instead of a dropped
// connection.
func (s *Server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error().Str("request_id", infoFrom(r.Context()).ID).
					Interface("panic", v).Bytes("stack", debug.Stack()).Msg("handler panicked")
				s.answerError(w, r, http.StatusInternalServerError, "internal error (request "+infoFrom(r.Context()).ID+")")
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// limitBody caps every request body. A declared length over the cap is
// refused at once; an undeclared one fails when read (see tooLarge).
func (s *Server) limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > s.cfg.MaxBodyBytes {
			s.answerError(w, r, http.StatusRequestEntityTooLarge, s.tooLargeMessage())
			return
		}
		if r.Body != nil {
			r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) tooLargeMessage() string {
	return fmt.Sprintf("request body too large: the limit is %d bytes", s.cfg.MaxBodyBytes)
}

// isTooLarge reports whether err came from the body limit.
func isTooLarge(err error) bool {
	var mbe *http.MaxBytesError
	return errors.As(err, &mbe)
}

// contentSecurityPolicy allows only our own scripts and styles: no inline
// script, no framing, nothing fetched from elsewhere.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		next.ServeHTTP(w, r)
	})
}

// crossOrigin refuses non-safe cross-site browser requests (Sec-Fetch-Site,
// then Origin vs Host) on every route: this is the CSRF protection for every
// state change, with SameSite=Strict cookies as a second layer. The origin
// of cfg.BaseURL is trusted too, for a reverse proxy that rewrites Host.
func (s *Server) crossOrigin() (func(http.Handler) http.Handler, error) {
	cop := http.NewCrossOriginProtection()
	if s.cfg.BaseURL != "" {
		u, err := url.Parse(s.cfg.BaseURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("web: base URL %q must be an absolute http(s) URL", s.cfg.BaseURL)
		}
		if err := cop.AddTrustedOrigin(u.Scheme + "://" + u.Host); err != nil {
			return nil, fmt.Errorf("web: base URL %q: %w", s.cfg.BaseURL, err)
		}
	}
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.log.Warn().Str("request_id", infoFrom(r.Context()).ID).Str("path", r.URL.Path).
			Str("origin", r.Header.Get("Origin")).Str("sec_fetch_site", r.Header.Get("Sec-Fetch-Site")).
			Msg("cross-origin request refused")
		s.answerError(w, r, http.StatusForbidden, "cross-origin request refused: state changes must come from this site's own pages")
	}))
	return cop.Handler, nil
}

// MetricsHandler serves the server's own registry without any check: for
// an address of its own (web.metrics_listen). The main router serves it
// behind protectMetrics.
func (s *Server) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{Registry: s.metrics.reg})
}

// protectMetrics lets through a scraper with the metrics token (compared in
// constant time) or a logged-in admin; anyone else gets 401 or 403.
func (s *Server) protectMetrics(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok && s.cfg.MetricsToken != "" &&
			subtle.ConstantTimeCompare([]byte(strings.TrimSpace(tok)), []byte(s.cfg.MetricsToken)) == 1 {
			h.ServeHTTP(w, r)
			return
		}
		switch p := authOf(r); {
		case p == nil:
			w.Header().Set("WWW-Authenticate", `Bearer realm="omserver metrics"`)
			writeText(w, http.StatusUnauthorized, "metrics need the metrics token (Authorization: Bearer <web.metrics_token>) or an admin's login")
		case p.level < roleAdmin:
			writeText(w, http.StatusForbidden, "metrics need the metrics token or an admin's login")
		default:
			h.ServeHTTP(w, r)
		}
	})
}
