package web

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/omserver/omserver-go/internal/apperr"
	"github.com/omserver/omserver-go/internal/store"
)

// Role levels; a higher level includes everything a lower one may do.
type role int

const (
	roleNone role = iota
	roleViewer
	roleOperator
	roleAdmin
)

func parseRole(s string) role {
	switch s {
	case "viewer":
		return roleViewer
	case "operator":
		return roleOperator
	case "admin":
		return roleAdmin
	}
	return roleNone
}

func (r role) String() string {
	switch r {
	case roleViewer:
		return "viewer"
	case roleOperator:
		return "operator"
	case roleAdmin:
		return "admin"
	}
	return "none"
}

// principal is who a request acts as.
type principal struct {
	UserID   int64
	Name     string
	Role     string
	level    role
	viaToken bool
}

// sessionCookie holds a random session token; the database keeps only its
// SHA-256.
const sessionCookie = "omserver_session"

// tokenPrefix marks API tokens so they are recognisable in a leaked file.
const tokenPrefix = "oms_"

// newSecret returns 32 random bytes, base64url encoded.
func newSecret() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// bcryptCost is the work factor for new password hashes.
const bcryptCost = 12

// maxPasswordBytes is bcrypt's input limit.
const maxPasswordBytes = 72

// dummyHash is compared against when the user does not exist, so a missing
// user costs the same time as a wrong password.
const dummyHash = "$2a$12$hz8Gp5.hMHabFYj./titZ.XcYd0n1TTshwQD5G4C6aOTliodVtr2K"

// checkPassword verifies name/password; it returns the user only when the
// password matches and the account is enabled.
func (s *Server) checkPassword(ctx context.Context, name, password string) (store.User, bool, error) {
	u, err := s.st.GetUserByName(ctx, name)
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrInvalid) {
		_ = bcrypt.CompareHashAndPassword([]byte(dummyHash), []byte(password))
		return store.User{}, false, nil
	}
	if err != nil {
		return store.User{}, false, err
	}
	if bcrypt.CompareHashAndPassword([]byte(u.PasswordHash), []byte(password)) != nil || u.Disabled {
		return store.User{}, false, nil
	}
	return u, true, nil
}

// HashPassword returns a bcrypt hash of password, refusing what bcrypt would
// silently truncate. Exported for `omserver user add`.
func HashPassword(password string) (string, error) {
	if len(password) < 8 {
		return "", errors.New("password must be at least 8 characters")
	}
	if len(password) > maxPasswordBytes {
		return "", errors.New("password must be at most 72 bytes")
	}
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcryptCost)
	if err != nil {
		return "", err
	}
	return string(h), nil
}

// startSession creates a database session and sets its cookie.
func (s *Server) startSession(ctx context.Context, w http.ResponseWriter, u store.User, remote string) error {
	tok, err := newSecret()
	if err != nil {
		return err
	}
	expires := time.Now().Add(s.cfg.SessionTTL)
	if err := s.st.CreateSession(ctx, store.HashToken(tok), u.ID, expires, remote); err != nil {
		return err
	}
	http.SetCookie(w, &http.Cookie{
		Name:     sessionCookie,
		Value:    tok,
		Path:     "/",
		Expires:  expires,
		MaxAge:   int(s.cfg.SessionTTL.Seconds()),
		HttpOnly: true,
		Secure:   s.cfg.SecureCookies,
		SameSite: http.SameSiteStrictMode,
	})
	return nil
}

func (s *Server) clearCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: s.cfg.SecureCookies, SameSite: http.SameSiteStrictMode,
	})
}

// authenticate resolves the caller from a bearer token or the session
// cookie; it refuses nothing itself (the require* middleware do), except
// when the credentials cannot be checked: a database that cannot answer
// is 503 with Retry-After, never "not logged in" (a script would then
// think its token was revoked, and a browser would be sent to log in).
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ri := infoFrom(r.Context())
		p, err := s.resolve(r)
		if err != nil {
			if apperr.Is(err, apperr.Unavailable) {
				s.log.Warn().Err(err).Str("request_id", ri.ID).Msg("cannot check credentials: database unavailable")
				err = apperr.Errorf(apperr.Unavailable, "cannot check your login now: the database is unavailable; try again shortly: %w", store.ErrUnavailable)
			}
			s.fail(w, r, err)
			return
		}
		if p != nil {
			ri.Auth = p
			ri.User = p.Name
		}
		next.ServeHTTP(w, r)
	})
}

// resolve finds who the request acts as: nil without (valid) credentials,
// an error when they could not be checked.
func (s *Server) resolve(r *http.Request) (*principal, error) {
	ctx := r.Context()
	if h := r.Header.Get("Authorization"); h != "" {
		tok, ok := strings.CutPrefix(h, "Bearer ")
		if !ok || !strings.HasPrefix(tok, tokenPrefix) {
			return nil, nil
		}
		u, err := s.st.GetUserByAPIToken(ctx, store.HashToken(strings.TrimSpace(tok)))
		if errors.Is(err, store.ErrNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("look up api token: %w", err)
		}
		return toPrincipal(u, true), nil
	}
	c, err := r.Cookie(sessionCookie)
	if err != nil || c.Value == "" || len(c.Value) > 128 {
		return nil, nil
	}
	_, u, err := s.st.GetSession(ctx, store.HashToken(c.Value))
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("look up session: %w", err)
	}
	return toPrincipal(u, false), nil
}

func toPrincipal(u store.User, viaToken bool) *principal {
	if u.Disabled {
		return nil
	}
	lvl := parseRole(u.Role)
	if lvl == roleNone {
		return nil
	}
	return &principal{UserID: u.ID, Name: u.Name, Role: u.Role, level: lvl, viaToken: viaToken}
}

func authOf(r *http.Request) *principal { return infoFrom(r.Context()).Auth }

// require refuses callers without a login or below min. A browser on a
// page is sent to the login page (safe methods come back to where they
// were); API and legacy callers get 401 or 403 in their own format.
func (s *Server) require(min role) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p := authOf(r)
			switch {
			case p == nil && routeKindOf(r) == routePage:
				target := "/login"
				if r.Method == http.MethodGet && r.URL.Path != "/" {
					target += "?next=" + url.QueryEscape(r.URL.RequestURI())
				}
				http.Redirect(w, r, target, http.StatusSeeOther)
			case p == nil:
				s.fail(w, r, errLoginRequired)
			case p.level < min:
				s.fail(w, r, apperr.Errorf(apperr.Forbidden, "your role (%s) may not do this; it needs %s", p.Role, min))
			default:
				next.ServeHTTP(w, r)
			}
		})
	}
}

var errLoginRequired = apperr.New(apperr.Unauthenticated, "authentication required: log in or send Authorization: Bearer <token>")

// clientIP is the TCP peer. Forwarded headers are not trusted: anyone can
// set them, and the login rate limit must not be bypassable.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// safeNext keeps a post-login redirect on this site: a local path only.
func safeNext(next string) string {
	if next == "" || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") {
		return "/"
	}
	if u, err := url.Parse(next); err != nil || u.Host != "" || u.Scheme != "" {
		return "/"
	}
	return next
}

type loginForm struct {
	Username string
	Next     string
}

func (s *Server) pageLogin(w http.ResponseWriter, r *http.Request) error {
	if authOf(r) != nil {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return nil
	}
	s.render(w, r, http.StatusOK, "login", "Log in", loginForm{Next: safeNext(r.URL.Query().Get("next"))})
	return nil
}

func (s *Server) pageLoginPost(w http.ResponseWriter, r *http.Request) error {
	if err := s.parseForm(r); err != nil {
		return err
	}
	name := strings.TrimSpace(r.PostForm.Get("username"))
	password := r.PostForm.Get("password")
	next := safeNext(r.PostForm.Get("next"))
	form := loginForm{Username: name, Next: next}
	ip := clientIP(r)
	if len(name) > 64 {
		name = name[:64]
	}
	allowed, report := s.limiter.begin(ip, name, time.Now())
	if !allowed {
		s.metrics.loginFailures.Inc()
		if report {
			s.audit(r, name, "login.ratelimited", "too many attempts from "+ip)
		}
		w.Header().Set("Retry-After", "60")
		s.renderWith(w, r, http.StatusTooManyRequests, "login", "Log in", form, "",
			"Too many login attempts for this user or from this address. Wait a minute and try again.")
		return nil
	}
	u, ok, err := s.checkPassword(r.Context(), name, password)
	if err != nil {
		return fmt.Errorf("check password: %w", err)
	}
	if !ok {
		s.metrics.loginFailures.Inc()
		s.audit(r, name, "login.failed", "")
		s.renderWith(w, r, http.StatusUnauthorized, "login", "Log in", form, "", "Wrong user name or password, or the account is disabled.")
		return nil
	}
	s.limiter.succeeded(ip, name, time.Now())
	// A session this browser already had ends: a login always starts a
	// fresh one, and the old one must not linger (e.g. another user's).
	if c, err := r.Cookie(sessionCookie); err == nil && c.Value != "" && len(c.Value) <= 128 {
		if err := s.st.DeleteSession(r.Context(), store.HashToken(c.Value)); err != nil && !errors.Is(err, store.ErrNotFound) {
			s.log.Error().Err(err).Msg("delete previous session")
		}
	}
	if err := s.startSession(r.Context(), w, u, r.RemoteAddr); err != nil {
		return fmt.Errorf("start session: %w", err)
	}
	infoFrom(r.Context()).User = u.Name
	s.audit(r, u.Name, "login.ok", "")
	http.Redirect(w, r, next, http.StatusSeeOther)
	return nil
}

func (s *Server) pageLogout(w http.ResponseWriter, r *http.Request) error {
	if c, err := r.Cookie(sessionCookie); err == nil && c.Value != "" {
		if err := s.st.DeleteSession(r.Context(), store.HashToken(c.Value)); err != nil && !errors.Is(err, store.ErrNotFound) {
			s.log.Error().Err(err).Msg("delete session")
		}
		if p := authOf(r); p != nil {
			s.audit(r, p.Name, "logout", "")
		}
	}
	s.clearCookie(w)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
	return nil
}
