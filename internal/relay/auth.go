package relay

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"net"
	"sync"
	"time"

	"golang.org/x/time/rate"
	"google.golang.org/grpc/peer"
)

// credentials holds digests of the configured user and password. Comparing
// fixed-size digests in constant time leaks neither the content nor the
// length of the secrets through timing.
type credentials struct {
	user, pass [32]byte
}

func newCredentials(user, pass string) credentials {
	return credentials{user: sha256.Sum256([]byte(user)), pass: sha256.Sum256([]byte(pass))}
}

func (c credentials) match(user, pass string) bool {
	u := sha256.Sum256([]byte(user))
	p := sha256.Sum256([]byte(pass))
	// Both comparisons always run, so timing does not tell which one failed.
	return subtle.ConstantTimeCompare(u[:], c.user[:])&subtle.ConstantTimeCompare(p[:], c.pass[:]) == 1
}

// maxSessions bounds the tokens a master remembers; the web tier needs one
// per process, so this only matters if something logs in in a loop.
const maxSessions = 4096

// sessions are the login tokens a master issued, keyed by the token's
// SHA-256 so a map lookup's timing says nothing about stored tokens.
type sessions struct {
	ttl time.Duration

	mu      sync.Mutex
	expires map[[32]byte]time.Time
}

func newSessions(ttl time.Duration) *sessions {
	return &sessions{ttl: ttl, expires: make(map[[32]byte]time.Time)}
}

// issue returns a fresh random token valid until the returned time.
func (s *sessions) issue(now time.Time) (string, time.Time, error) {
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", time.Time{}, fmt.Errorf("relay: reading random token: %w", err)
	}
	token := base64.RawURLEncoding.EncodeToString(raw[:])
	exp := now.Add(s.ttl)

	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.expires) >= maxSessions {
		s.pruneLocked(now)
	}
	if len(s.expires) >= maxSessions {
		// Still full of live tokens: drop the one closest to expiry, so a
		// login loop cannot grow memory without bound.
		var oldest [32]byte
		var oldestAt time.Time
		for k, at := range s.expires {
			if oldestAt.IsZero() || at.Before(oldestAt) {
				oldest, oldestAt = k, at
			}
		}
		delete(s.expires, oldest)
	}
	s.expires[sha256.Sum256([]byte(token))] = exp
	return token, exp, nil
}

// valid reports whether token was issued here and has not expired.
func (s *sessions) valid(token string, now time.Time) bool {
	if token == "" {
		return false
	}
	key := sha256.Sum256([]byte(token))
	s.mu.Lock()
	defer s.mu.Unlock()
	exp, ok := s.expires[key]
	if !ok {
		return false
	}
	if !now.Before(exp) {
		delete(s.expires, key)
		return false
	}
	return true
}

func (s *sessions) pruneLocked(now time.Time) {
	for k, exp := range s.expires {
		if !now.Before(exp) {
			delete(s.expires, k)
		}
	}
}

// Login failure limits per peer address: a burst of loginBurst failures,
// then one more every loginEvery.
const (
	loginBurst    = 5
	loginEvery    = 2 * time.Second
	maxLimitPeers = 4096
)

// failureLimiter rate-limits failed logins per peer IP. Only failures take
// tokens, so a correct login never locks anyone out; once a peer's tokens
// are spent every attempt from it is refused, right password or not.
type failureLimiter struct {
	mu   sync.Mutex
	peer map[string]*rate.Limiter
}

func newFailureLimiter() *failureLimiter {
	return &failureLimiter{peer: make(map[string]*rate.Limiter)}
}

// blocked reports whether peer has spent its failure allowance.
func (l *failureLimiter) blocked(peer string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	lim := l.peer[peer]
	return lim != nil && lim.TokensAt(now) < 1
}

// fail records one failed login from peer.
func (l *failureLimiter) fail(peer string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	lim := l.peer[peer]
	if lim == nil {
		if len(l.peer) >= maxLimitPeers {
			l.pruneLocked(now)
		}
		lim = rate.NewLimiter(rate.Every(loginEvery), loginBurst)
		l.peer[peer] = lim
	}
	lim.AllowN(now, 1)
}

// pruneLocked forgets peers whose allowance has fully recovered (they would
// get a fresh limiter anyway); if every peer is still limited it forgets an
// arbitrary one rather than grow without bound.
func (l *failureLimiter) pruneLocked(now time.Time) {
	for k, lim := range l.peer {
		if lim.TokensAt(now) >= loginBurst {
			delete(l.peer, k)
		}
	}
	for k := range l.peer {
		if len(l.peer) < maxLimitPeers {
			break
		}
		delete(l.peer, k)
	}
}

// peerHost is the caller's IP (no port: each connection has a new one), or
// "unknown".
func peerHost(ctx context.Context) string {
	p, ok := peer.FromContext(ctx)
	if !ok || p.Addr == nil {
		return "unknown"
	}
	if tcp, ok := p.Addr.(*net.TCPAddr); ok {
		return tcp.IP.String()
	}
	if host, _, err := net.SplitHostPort(p.Addr.String()); err == nil {
		return host
	}
	return p.Addr.String()
}
