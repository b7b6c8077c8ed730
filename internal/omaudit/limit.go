package omaudit

import (
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// maxLimiterHosts bounds the limiter's memory. When it is reached, hosts
// whose bucket has refilled (idle long enough) are forgotten; if that frees
// nothing (a flood from very many addresses), every entry is: forgetting
// only ever hands out a fresh burst, it never refuses anyone wrongly.
const maxLimiterHosts = 50000

// hostLimiter is a token bucket per sending host.
type hostLimiter struct {
	mu    sync.Mutex
	rate  rate.Limit
	burst int
	hosts map[netip.Addr]*hostBucket
}

type hostBucket struct {
	lim  *rate.Limiter
	last time.Time
}

func newHostLimiter(perSecond float64, burst int) *hostLimiter {
	return &hostLimiter{rate: rate.Limit(perSecond), burst: burst, hosts: make(map[netip.Addr]*hostBucket)}
}

// allow spends one token of host's bucket, reporting whether it had one.
func (l *hostLimiter) allow(host netip.Addr, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.hosts[host]
	if b == nil {
		if len(l.hosts) >= maxLimiterHosts {
			l.prune(now)
		}
		b = &hostBucket{lim: rate.NewLimiter(l.rate, l.burst)}
		l.hosts[host] = b
	}
	b.last = now
	return b.lim.AllowN(now, 1)
}

// prune forgets hosts idle long enough for their bucket to be full again.
func (l *hostLimiter) prune(now time.Time) {
	full := time.Duration(float64(l.burst) / float64(l.rate) * float64(time.Second))
	for h, b := range l.hosts {
		if now.Sub(b.last) > full {
			delete(l.hosts, h)
		}
	}
	if len(l.hosts) >= maxLimiterHosts {
		l.hosts = make(map[netip.Addr]*hostBucket)
	}
}
