// Package netcut is a loopback TCP proxy for tests whose link can be cut
// and restored: cut closes every connection through it and refuses new
// ones (the port stays held, so nothing else takes it), restore lets
// connections through again. It stands for a network cut or a server that
// stopped, between a client and a real server (MariaDB, a master).
package netcut

import (
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// Proxy forwards connections from Addr to a target address.
type Proxy struct {
	Addr   string
	target string
	lis    net.Listener

	mu    sync.Mutex
	down  bool
	conns map[net.Conn]struct{}
}

// New listens on a fresh loopback port and forwards to target until the
// test ends.
func New(t testing.TB, target string) *Proxy {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("netcut: %v", err)
	}
	p := &Proxy{Addr: lis.Addr().String(), target: target, lis: lis, conns: make(map[net.Conn]struct{})}
	t.Cleanup(func() {
		lis.Close()
		p.Cut()
	})
	go p.serve()
	return p
}

func (p *Proxy) serve() {
	for {
		c, err := p.lis.Accept()
		if err != nil {
			return
		}
		if !p.track(c) {
			c.Close()
			continue
		}
		go p.forward(c)
	}
}

// track remembers an open connection; false when the link is cut.
func (p *Proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.down {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *Proxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	c.Close()
}

func (p *Proxy) forward(c net.Conn) {
	defer p.untrack(c)
	up, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		return
	}
	if !p.track(up) {
		up.Close()
		return
	}
	defer p.untrack(up)
	done := make(chan struct{})
	go func() {
		_, _ = io.Copy(up, c)
		up.Close()
		close(done)
	}()
	_, _ = io.Copy(c, up)
	c.Close()
	<-done
}

// Cut closes every connection through the proxy and refuses new ones.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for c := range p.conns {
		c.Close()
		delete(p.conns, c)
	}
}

// Restore lets connections through again.
func (p *Proxy) Restore() {
	p.mu.Lock()
	p.down = false
	p.mu.Unlock()
}
