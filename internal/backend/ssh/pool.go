package ssh

import (
	"container/list"
	"net"
	"sync"
	"time"

	gossh "golang.org/x/crypto/ssh"
)

// Pool defaults and bounds.
const (
	DefaultPoolIdleTimeout = 5 * time.Minute
	// aliveTimeout bounds the check that a pooled connection still
	// answers, made before it is given to a run.
	aliveTimeout = 2 * time.Second
)

// PoolConfig keeps authenticated connections warm between runs. Off
// unless MaxIdle is set.
type PoolConfig struct {
	// MaxIdle bounds the idle connections kept, all hosts together; the
	// one idle longest is closed to make room. 0 disables the pool.
	MaxIdle int
	// IdleTimeout closes a connection idle this long; 0 means
	// DefaultPoolIdleTimeout.
	IdleTimeout time.Duration
}

// conn is one authenticated connection, with what its handshake saw: the
// host key, which is checked again against known_hosts whenever a pooled
// connection is reused.
type conn struct {
	client  *gossh.Client
	key     string // pool key: user@host:port
	hostKey gossh.PublicKey
	remote  net.Addr
	idle    time.Time     // when it was returned to the pool
	elem    *list.Element // in pool.lru while idle
}

// pool holds idle connections by target. Every command still gets a new
// SSH session (channel) of its own; only the connection is reused, one
// run at a time.
type pool struct {
	max     int
	timeout time.Duration

	mu     sync.Mutex
	byKey  map[string][]*conn // idle connections per target, most recent last
	lru    *list.List         // every idle connection, oldest first
	closed bool
	stop   chan struct{}
}

func newPool(cfg PoolConfig) *pool {
	p := &pool{max: cfg.MaxIdle, timeout: cfg.IdleTimeout, byKey: map[string][]*conn{}, lru: list.New(), stop: make(chan struct{})}
	if p.timeout <= 0 {
		p.timeout = DefaultPoolIdleTimeout
	}
	go p.janitor()
	return p
}

// get takes the most recently returned idle connection to key, if any.
func (p *pool) get(key string) *conn {
	p.mu.Lock()
	defer p.mu.Unlock()
	cs := p.byKey[key]
	if len(cs) == 0 {
		return nil
	}
	c := cs[len(cs)-1]
	p.removeLocked(c)
	return c
}

// put keeps c for reuse, closing the connection idle longest when the pool
// is full.
func (p *pool) put(c *conn) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		_ = c.client.Close()
		return
	}
	c.idle = time.Now()
	c.elem = p.lru.PushBack(c)
	p.byKey[c.key] = append(p.byKey[c.key], c)
	var evicted *conn
	if p.lru.Len() > p.max {
		evicted = p.lru.Front().Value.(*conn)
		p.removeLocked(evicted)
	}
	p.mu.Unlock()
	if evicted != nil {
		_ = evicted.client.Close()
	}
}

// removeLocked takes c out of the pool; p.mu is held.
func (p *pool) removeLocked(c *conn) {
	p.lru.Remove(c.elem)
	c.elem = nil
	cs := p.byKey[c.key]
	for i, x := range cs {
		if x == c {
			cs = append(cs[:i], cs[i+1:]...)
			break
		}
	}
	if len(cs) == 0 {
		delete(p.byKey, c.key)
	} else {
		p.byKey[c.key] = cs
	}
}

// idleCount is the number of idle connections held.
func (p *pool) idleCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lru.Len()
}

// janitor closes connections idle longer than the timeout.
func (p *pool) janitor() {
	tick := time.NewTicker(max(p.timeout/4, 100*time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-p.stop:
			return
		case now := <-tick.C:
			var expired []*conn
			p.mu.Lock()
			for e := p.lru.Front(); e != nil; {
				c := e.Value.(*conn)
				e = e.Next()
				if now.Sub(c.idle) < p.timeout {
					break // the rest are younger
				}
				p.removeLocked(c)
				expired = append(expired, c)
			}
			p.mu.Unlock()
			for _, c := range expired {
				_ = c.client.Close()
			}
		}
	}
}

// close closes every idle connection and refuses later ones.
func (p *pool) close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	close(p.stop)
	var all []*conn
	for e := p.lru.Front(); e != nil; e = e.Next() {
		all = append(all, e.Value.(*conn))
	}
	p.lru.Init()
	p.byKey = map[string][]*conn{}
	p.mu.Unlock()
	for _, c := range all {
		_ = c.client.Close()
	}
}

// alive reports whether the connection still answers: a global request
// every SSH server answers (OpenSSH's keepalive; a refusal is an answer
// too), within aliveTimeout. A connection that does not is closed.
func alive(c *gossh.Client) bool {
	done := make(chan error, 1)
	go func() {
		_, _, err := c.SendRequest("keepalive@openssh.com", true, nil)
		done <- err
	}()
	t := time.NewTimer(aliveTimeout)
	defer t.Stop()
	select {
	case err := <-done:
		if err != nil {
			_ = c.Close()
		}
		return err == nil
	case <-t.C:
		_ = c.Close() // also ends the request above
		return false
	}
}
