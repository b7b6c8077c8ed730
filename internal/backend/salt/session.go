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

// token returns a token that lives until need at least: the cached one
// when it does, else a fresh login's. A fresh token that dies sooner is
// refused: a job could outlive it, and then salt would refuse to report
// the job (see errTokenRejected) while it runs on.
//
// fresh says the token comes from a login made for this call: a 401 to it
// is no stale cache, and logging in again would not help.
func (b *Backend) token(ctx context.Context, connectTimeout time.Duration, need time.Time) (token string, fresh bool, err error) {
	s := b.session
	select {
	case s.lock <- struct{}{}:
	case <-ctx.Done():
		return "", false, fmt.Errorf("waiting for salt-api login: %w", ctx.Err())
	}
	defer func() { <-s.lock }()
	if s.token != "" && s.expires.After(need) {
		return s.token, false, nil
	}
	loginCtx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	token, expires, err := b.login(loginCtx)
	if err != nil {
		if ctx.Err() == nil && loginCtx.Err() != nil {
			return "", false, fmt.Errorf("salt-api login did not finish within %v", connectTimeout)
		}
		return "", false, err
	}
	s.token, s.expires = token, expires
	b.log.Debug().Time("expires", expires).Msg("logged in to salt-api")
	if !expires.After(need) {
		return "", false, fmt.Errorf("salt-api tokens last until %s, before this host's deadline plus the margin of %s (%s): a job could outlive its token, and salt answers 401 for a running job whose token expired; raise token_expire in the salt master's configuration, or lower the module's timeout",
			expires.Format(time.RFC3339), b.cfg.TokenTTLMargin, need.Format(time.RFC3339))
	}
	return token, true, nil
}

// loginReply is the documented /login answer; only token and expire matter.
type loginReply struct {
	Return []struct {
		Token  string  `json:"token"`
		Start  float64 `json:"start"`
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
	sent := time.Now()
	status, resp, err := b.post(ctx, "/login", "", body)
	if err != nil {
		return "", time.Time{}, err
	}
	switch {
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return "", time.Time{}, fmt.Errorf("%w for user %q (eauth %s): HTTP %d", errLoginRefused, b.cfg.Username, b.cfg.EAuth, status)
	case status != http.StatusOK:
		return "", time.Time{}, fmt.Errorf("salt-api login answered HTTP %d: %s", status, errorText(resp))
	}
	var r loginReply
	if err := json.Unmarshal(resp, &r); err != nil {
		return "", time.Time{}, fmt.Errorf("salt-api login answer is not the documented JSON: %w", err)
	}
	if len(r.Return) == 0 || r.Return[0].Token == "" {
		return "", time.Time{}, errors.New("salt-api login answer holds no token")
	}
	start, exp := r.Return[0].Start, r.Return[0].Expire
	if !usableTime(exp) {
		return "", time.Time{}, fmt.Errorf("salt-api login answer has an unusable expiry %v", exp)
	}
	if usableTime(start) && start <= exp {
		// Both are the salt master's clock: the token's lifetime, counted
		// from when the login was sent, does not depend on the two
		// clocks agreeing.
		return r.Return[0].Token, sent.Add(time.Duration((exp - start) * float64(time.Second))), nil
	}
	sec, frac := math.Modf(exp)
	return r.Return[0].Token, time.Unix(int64(sec), int64(frac*1e9)), nil
}

// usableTime reports whether t is a plausible unix time in seconds.
func usableTime(t float64) bool {
	return t > 0 && t < 1e12 && !math.IsInf(t, 0) && !math.IsNaN(t)
}
