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

// loginLimiter throttles login attempts per client IP and per user name, so
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

// allow spends one attempt for the IP and one for the user name; both must
// have one left.
func (l *loginLimiter) allow(ip, user string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.keys) >= maxLimiterKeys {
		l.prune(now)
	}
	a := l.entry("ip:"+ip, now)
	b := l.entry("user:"+user, now)
	okA := a.AllowN(now, 1)
	okB := b.AllowN(now, 1)
	return okA && okB
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
