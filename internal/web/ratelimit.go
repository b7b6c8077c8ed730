package web

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// loginRefill is how fast login attempts come back after a burst is spent.
const loginRefill = 20 * time.Second

// maxLimiterKeys bounds the limiter's memory; entries idle long enough to be
// full again are pruned when the map reaches it.
const maxLimiterKeys = 10000

// loginLimiter throttles failed login attempts per client IP and per user name, so
// neither one address guessing many names nor many addresses guessing one
// name gets far.
type loginLimiter struct {
	mu    sync.Mutex
	burst int
	keys  map[string]*limiterEntry
}

type limiterEntry struct {
	lim  *rate.Limiter
	seen time.Time
}

func newLoginLimiter(burst int) *loginLimiter {
	return &loginLimiter{burst: burst, keys: make(map[string]*limiterEntry)}
}

// allow reports whether both the IP and the user name have an attempt
// left; it spends nothing (failures do, see fail).
func (l *loginLimiter) allow(ip, user string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.keys) >= maxLimiterKeys {
		l.prune(now)
	}
	return l.entry("ip:"+ip, now).TokensAt(now) >= 1 && l.entry("user:"+user, now).TokensAt(now) >= 1
}

// fail spends one attempt of the IP and one of the user name. Only failed
// logins count, so many people logging in from one office address are not
// locked out by their own successes.
func (l *loginLimiter) fail(ip, user string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.entry("ip:"+ip, now).AllowN(now, 1)
	l.entry("user:"+user, now).AllowN(now, 1)
}

func (l *loginLimiter) entry(key string, now time.Time) *rate.Limiter {
	e := l.keys[key]
	if e == nil {
		e = &limiterEntry{lim: rate.NewLimiter(rate.Every(loginRefill), l.burst)}
		l.keys[key] = e
	}
	e.seen = now
	return e.lim
}

// prune drops entries idle for long enough to have refilled completely; if
// that frees nothing (an attack from very many keys), it starts over.
func (l *loginLimiter) prune(now time.Time) {
	full := time.Duration(l.burst) * loginRefill
	for k, e := range l.keys {
		if now.Sub(e.seen) > full {
			delete(l.keys, k)
		}
	}
	if len(l.keys) >= maxLimiterKeys {
		l.keys = make(map[string]*limiterEntry)
	}
}
