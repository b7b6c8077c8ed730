package web

import (
	"strings"
	"sync"
	"time"
)

// loginRefill is how fast login attempts come back after a burst is spent.
const loginRefill = 20 * time.Second

// maxLimiterKeys bounds the limiter's memory; entries idle long enough to be
// full again are pruned when the map reaches it.
const maxLimiterKeys = 10000

// loginLimiter throttles failed login attempts per client IP and per user
// name, so neither one address guessing many names nor many addresses
// guessing one name gets far.
//
// An attempt spends its token before the password is checked (begin) and a
// successful one gives it back (succeeded): checking first and spending on
// failure would let many parallel attempts all pass the check before any of
// them failed.
type loginLimiter struct {
	mu    sync.Mutex
	burst int
	keys  map[string]*bucket
}

// bucket is one key's token bucket; tokens refill at one per loginRefill up
// to the burst.
type bucket struct {
	tokens   float64
	last     time.Time
	reported time.Time // last refusal worth an audit entry
}

func newLoginLimiter(burst int) *loginLimiter {
	return &loginLimiter{burst: burst, keys: make(map[string]*bucket)}
}

// begin spends one attempt of the IP and one of the user name and reports
// whether both had one. When refused, report says whether this refusal
// should be recorded (at most one per key and refill period, so a flood of
// refused attempts cannot flood the audit log). A refused IP creates no
// entry for the user name, so cheap refused requests cannot fill the map.
func (l *loginLimiter) begin(ip, user string, now time.Time) (ok, report bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.keys) >= maxLimiterKeys {
		l.prune(now)
	}
	ib := l.bucket("ip:"+ip, now)
	if ib.tokens < 1 {
		return false, ib.report(now)
	}
	ub := l.bucket("user:"+user, now)
	if ub.tokens < 1 {
		return false, ub.report(now)
	}
	ib.tokens--
	ub.tokens--
	return true, false
}

// succeeded gives back the attempt begin spent: only failures count, so
// many people logging in from one office address are not locked out by
// their own successes.
func (l *loginLimiter) succeeded(ip, user string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, k := range []string{"ip:" + ip, "user:" + user} {
		if b := l.keys[k]; b != nil {
			b.refill(now, l.burst)
			b.tokens = min(b.tokens+1, float64(l.burst))
		}
	}
}

// bucket returns key's bucket refilled to now (a new key starts full).
func (l *loginLimiter) bucket(key string, now time.Time) *bucket {
	b := l.keys[key]
	if b == nil {
		b = &bucket{tokens: float64(l.burst), last: now}
		l.keys[key] = b
	}
	b.refill(now, l.burst)
	return b
}

func (b *bucket) refill(now time.Time, burst int) {
	if d := now.Sub(b.last); d > 0 {
		b.tokens = min(b.tokens+float64(d)/float64(loginRefill), float64(burst))
		b.last = now
	}
}

func (b *bucket) report(now time.Time) bool {
	if !b.reported.IsZero() && now.Sub(b.reported) < loginRefill {
		return false
	}
	b.reported = now
	return true
}

// prune drops entries idle for long enough to have refilled completely. If
// that frees nothing (an attack from very many addresses), address entries
// go first: the per-name entries are what stops many addresses guessing one
// name, and starting them over would hand out fresh attempts.
func (l *loginLimiter) prune(now time.Time) {
	full := time.Duration(l.burst) * loginRefill
	for k, b := range l.keys {
		if now.Sub(b.last) > full {
			delete(l.keys, k)
		}
	}
	if len(l.keys) < maxLimiterKeys {
		return
	}
	for k := range l.keys {
		if strings.HasPrefix(k, "ip:") {
			delete(l.keys, k)
		}
	}
	if len(l.keys) >= maxLimiterKeys {
		l.keys = make(map[string]*bucket)
	}
}
