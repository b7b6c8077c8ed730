// Package porttest gives tests a loopback TCP port where connecting is
// refused and that stays so for the whole test.
//
// Listening on port 0 and closing the listener frees the port again: any
// listener started meanwhile (another test's sshd or HTTP server, in this
// or a parallel test binary) may get it, and "connection refused" turns
// into a handshake with a stranger. A socket that is bound but never
// listens answers every connection attempt with a reset (refused) and keeps
// the port from being handed out or bound until it is closed.
package porttest

import (
	"fmt"
	"net"
	"strconv"
	"syscall"
	"testing"
)

// Closed returns a port on 127.0.0.1 where connections are refused. The
// port is held (bound without SO_REUSEADDR, never listening) until the test
// and its subtests end.
func Closed(t testing.TB) int {
	t.Helper()
	port, release, err := reserve()
	if err != nil {
		t.Fatalf("porttest: %v", err)
	}
	t.Cleanup(release)
	return port
}

// ClosedAddr is Closed as a host:port address.
func ClosedAddr(t testing.TB) string {
	t.Helper()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(Closed(t)))
}

func reserve() (int, func(), error) {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, nil, fmt.Errorf("socket: %w", err)
	}
	release := func() { _ = syscall.Close(fd) }
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		release()
		return 0, nil, fmt.Errorf("bind 127.0.0.1:0: %w", err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		release()
		return 0, nil, fmt.Errorf("getsockname: %w", err)
	}
	in4, ok := sa.(*syscall.SockaddrInet4)
	if !ok || in4.Port == 0 {
		release()
		return 0, nil, fmt.Errorf("bound socket has no IPv4 port: %#v", sa)
	}
	return in4.Port, release, nil
}
