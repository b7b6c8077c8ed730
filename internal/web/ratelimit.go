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
const maxLimiterKeys = 20000

// addrBurstFactor: one address may fail this many times the per-pair burst
// (across all the names it tries) before it is refused: an office behind
// one address mistyping several accounts is not locked out, a single
// guesser spraying names is.
const addrBurstFactor = 4

// Slow-down (never refusal) for a name under attack from many addresses
// and for a flood of failures overall.
const (
	nameBurstFactor = 4                      // failures of one name, from any address, before its attempts are slowed
	nameDelay       = 2 * time.Second        // added to each attempt on such a name
	floodBurst      = 100                    // failures, all names and addresses, before every attempt is slowed
	floodRefill     = 600 * time.Millisecond // one failure's worth back (100 a minute)
	floodDelay      = time.Second            // added to every attempt during a flood
)

// loginLimiter throttles failed logins so that guessing is slow but nobody
// can lock a user out from elsewhere:
//
//   - per (name, address): a burst of failures, then that address is
//     refused for that name until attempts refill;
//   - per address: a larger burst over all names, then it is refused;
//   - per name, from any address: attempts are only slowed down (each
//     waits nameDelay), never refused, so the right password from a new
//     address always gets through;
//   - overall: a flood of failures slows every attempt (floodDelay).
//
// An attempt spends its tokens before the password is checked (begin) and
// a successful one gives them back (succeeded): checking first and spending
// on failure would let many parallel attempts all pass the check before any
// of them failed.
type loginLimiter struct {
	mu    sync.Mutex
	burst int
	keys  map[string]*bucket
	flood bucket
}

// bucket is one key's token bucket.
type bucket struct {
	tokens   float64
	last     time.Time
	reported time.Time // last refusal worth an audit entry
}

func newLoginLimiter(burst int) *loginLimiter {
	return &loginLimiter{burst: burst, keys: make(map[string]*bucket), flood: bucket{tokens: floodBurst}}
}

// attempt is begin's verdict on one login attempt.
type attempt struct {
	ok     bool          // the password may be checked
	delay  time.Duration // wait this long first (a name under attack, a flood)
	report bool          // refused, and this refusal is worth an audit entry
}

func pairKey(ip, user string) string { return "pair:" + ip + "\x00" + user }

// begin spends one attempt of the (name, address) pair, of the address, of
// the name and of the flood counter. It refuses only when the pair or the
// address has none left; a spent name or flood only delays. At most one
// refusal per key and refill period is worth reporting, so a flood of
// refused attempts cannot flood the audit log. A refused address creates
// no further entries, so cheap refused requests cannot fill the map.
func (l *loginLimiter) begin(ip, user string, now time.Time) attempt {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.keys) >= maxLimiterKeys {
		l.prune(now)
	}
	ab := l.bucket("ip:"+ip, now, l.burst*addrBurstFactor)
	if ab.tokens < 1 {
		return attempt{report: ab.report(now)}
	}
	pb := l.bucket(pairKey(ip, user), now, l.burst)
	if pb.tokens < 1 {
		return attempt{report: pb.report(now)}
	}
	nb := l.bucket("user:"+user, now, l.burst*nameBurstFactor)
	l.flood.refillEvery(now, floodRefill, floodBurst)
	var delay time.Duration
	if nb.tokens < 1 {
		delay += nameDelay
	}
	if l.flood.tokens < 1 {
		delay += floodDelay
	}
	ab.tokens--
	pb.tokens--
	nb.tokens = max(nb.tokens-1, 0)
	l.flood.tokens = max(l.flood.tokens-1, 0)
	return attempt{ok: true, delay: delay}
}

// succeeded gives back what begin spent: only failures count, so many
// people logging in from one office address are not locked out by their
// own successes.
func (l *loginLimiter) succeeded(ip, user string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, k := range []struct {
		key   string
		burst int
	}{{"ip:" + ip, l.burst * addrBurstFactor}, {pairKey(ip, user), l.burst}, {"user:" + user, l.burst * nameBurstFactor}} {
		if b := l.keys[k.key]; b != nil {
			b.refillEvery(now, loginRefill, k.burst)
			b.tokens = min(b.tokens+1, float64(k.burst))
		}
	}
	l.flood.refillEvery(now, floodRefill, floodBurst)
	l.flood.tokens = min(l.flood.tokens+1, floodBurst)
}

// bucket returns key's bucket refilled to now (a new key starts full).
func (l *loginLimiter) bucket(key string, now time.Time, burst int) *bucket {
	b := l.keys[key]
	if b == nil {
		b = &bucket{tokens: float64(burst), last: now}
		l.keys[key] = b
	}
	b.refillEvery(now, loginRefill, burst)
	return b
}

func (b *bucket) refillEvery(now time.Time, every time.Duration, burst int) {
	if b.last.IsZero() {
		b.last = now
	}
	if d := now.Sub(b.last); d > 0 {
		b.tokens = min(b.tokens+float64(d)/float64(every), float64(burst))
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
// that frees nothing (an attack from very many addresses), pair entries go
// first, then name entries (which only slow down); address entries, what
// stops one address spraying names, go last.
func (l *loginLimiter) prune(now time.Time) {
	full := time.Duration(l.burst*max(addrBurstFactor, nameBurstFactor)) * loginRefill
	for k, b := range l.keys {
		if now.Sub(b.last) > full {
			delete(l.keys, k)
		}
	}
	for _, prefix := range []string{"pair:", "user:", "ip:"} {
		if len(l.keys) < maxLimiterKeys {
			return
		}
		for k := range l.keys {
			if strings.HasPrefix(k, prefix) {
				delete(l.keys, k)
			}
		}
	}
}
