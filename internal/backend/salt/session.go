package salt

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"time"
)

// session caches the salt-api token. lock is a one-slot channel rather than
// a mutex so a run waiting for another run's login can still give up when
// its context ends.
type session struct {
	lock    chan struct{}
	token   string
	expires time.Time
}

func newSession() *session { return &session{lock: make(chan struct{}, 1)} }

// invalidate forgets token if it is still the cached one (another run may
// have replaced it already).
func (s *session) invalidate(token string) {
	s.lock <- struct{}{}
	if s.token == token {
		s.token = ""
	}
	<-s.lock
}

// token returns a token valid for at least the TTL margin, logging in when
// there is none (never logged in, or invalidate cleared a rejected one) or
// when it is about to expire.
func (b *Backend) token(ctx context.Context, connectTimeout time.Duration) (string, error) {
	s := b.session
	select {
	case s.lock <- struct{}{}:
	case <-ctx.Done():
		return "", fmt.Errorf("waiting for salt-api login: %w", ctx.Err())
	}
	defer func() { <-s.lock }()
	if s.token != "" && time.Now().Add(b.cfg.TokenTTLMargin).Before(s.expires) {
		return s.token, nil
	}
	loginCtx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	token, expires, err := b.login(loginCtx)
	if err != nil {
		if ctx.Err() == nil && loginCtx.Err() != nil {
			return "", fmt.Errorf("salt-api login did not finish within %v", connectTimeout)
		}
		return "", err
	}
	s.token, s.expires = token, expires
	b.log.Debug().Time("expires", expires).Msg("logged in to salt-api")
	return token, nil
}

// loginReply is the documented /login answer; only token and expire matter.
type loginReply struct {
	Return []struct {
		Token  string  `json:"token"`
		Expire float64 `json:"expire"`
	} `json:"return"`
}

func (b *Backend) login(ctx context.Context) (string, time.Time, error) {
	body, err := json.Marshal(map[string]string{
		"username": b.cfg.Username,
		"password": b.cfg.Password,
		"eauth":    b.cfg.EAuth,
	})
	if err != nil {
		return "", time.Time{}, fmt.Errorf("encoding login: %w", err)
	}
	status, resp, err := b.post(ctx, "/login", "", body)
	if err != nil {
		return "", time.Time{}, err
	}
	switch {
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return "", time.Time{}, fmt.Errorf("%w for user %q (eauth %s): HTTP %d", errLoginRefused, b.cfg.Username, b.cfg.EAuth, status)
	case status != http.StatusOK:
		return "", time.Time{}, fmt.Errorf("salt-api login answered HTTP %d: %s", status, snippet(resp))
	}
	var r loginReply
	if err := json.Unmarshal(resp, &r); err != nil {
		return "", time.Time{}, fmt.Errorf("salt-api login answer is not the documented JSON: %w", err)
	}
	if len(r.Return) == 0 || r.Return[0].Token == "" {
		return "", time.Time{}, errors.New("salt-api login answer holds no token")
	}
	exp := r.Return[0].Expire
	if exp <= 0 || math.IsInf(exp, 0) || math.IsNaN(exp) || exp > 1e12 {
		return "", time.Time{}, fmt.Errorf("salt-api login answer has an unusable expiry %v", exp)
	}
	sec, frac := math.Modf(exp)
	return r.Return[0].Token, time.Unix(int64(sec), int64(frac*1e9)), nil
}
