package porttest

import (
	"errors"
	"net"
	"syscall"
	"testing"
	"time"
)

func TestClosedRefusesAndStaysTaken(t *testing.T) {
	addr := ClosedAddr(t)
	for i := 0; i < 3; i++ { // refused every time, not just once
		c, err := net.DialTimeout("tcp", addr, 10*time.Second)
		if err == nil {
			c.Close()
			t.Fatalf("dial %s succeeded, want connection refused", addr)
		}
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("dial %s: %v, want connection refused", addr, err)
		}
	}
	// Nobody can listen on it while the test holds it (Go's listeners set
	// SO_REUSEADDR, as sshd does).
	if l, err := net.Listen("tcp", addr); err == nil {
		l.Close()
		t.Fatalf("listening on the held port %s succeeded", addr)
	}
}

func TestClosedPortsAreDistinct(t *testing.T) {
	seen := map[int]bool{}
	for i := 0; i < 20; i++ {
		p := Closed(t)
		if p <= 0 || p > 65535 || seen[p] {
			t.Fatalf("port %d (seen before: %v)", p, seen[p])
		}
		seen[p] = true
	}
}
