package ssh

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/omserver/omserver-go/internal/backend"
	"github.com/omserver/omserver-go/internal/task"
	"github.com/omserver/omserver-go/internal/testutil/sshdtest"
)

// proxy forwards loopback TCP connections to an sshd, so a test can break
// the connections under a pooled client: cut them (both ends closed) or
// freeze them (nothing more is forwarded, nothing closed, as behind a
// firewall that dropped the flow).
type proxy struct {
	ln     net.Listener
	target string

	mu     sync.Mutex
	conns  []net.Conn
	frozen bool
}

func startProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target}
	t.Cleanup(func() { _ = ln.Close(); p.cut() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				_ = c.Close()
				continue
			}
			p.mu.Lock()
			p.frozen = false
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			go p.pipe(c, up)
			go p.pipe(up, c)
		}
	}()
	return p
}

func (p *proxy) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		p.mu.Lock()
		frozen := p.frozen
		p.mu.Unlock()
		if frozen {
			return // swallow, close nothing
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			_ = dst.Close()
			return
		}
	}
}

func (p *proxy) port() int { return p.ln.Addr().(*net.TCPAddr).Port }

// cut closes every connection through the proxy.
func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.conns = nil
}

// freeze stops forwarding on the current connections without closing them.
func (p *proxy) freeze() {
	p.mu.Lock()
	p.frozen = true
	p.mu.Unlock()
}

// poolSetup is an sshd reached through a proxy, and a backend with a pool
// whose known_hosts names the proxy's address with the sshd's key.
func poolSetup(t *testing.T, pc PoolConfig) (*sshdtest.Server, *proxy, *Backend, Config) {
	t.Helper()
	s := startSSHD(t)
	p := startProxy(t, s.AddrFor("127.0.0.1"))
	cfg := testConfig(s)
	cfg.Port = p.port()
	cfg.Pool = pc
	cfg.KnownHostsFile = filepath.Join(t.TempDir(), "known_hosts")
	writeKnownHost(t, cfg.KnownHostsFile, net.JoinHostPort("127.0.0.1", strconv.Itoa(p.port())), serverKey(t, s))
	b := newBackend(t, cfg)
	t.Cleanup(b.Close)
	return s, p, b, cfg
}

func serverKey(t *testing.T, s *sshdtest.Server) gossh.PublicKey {
	t.Helper()
	data, err := os.ReadFile(s.KnownHostsFile)
	if err != nil {
		t.Fatal(err)
	}
	_, _, key, _, _, err := gossh.ParseKnownHosts(data)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func writeKnownHost(t *testing.T, file, addr string, key gossh.PublicKey) {
	t.Helper()
	if err := os.WriteFile(file, []byte(knownhosts.Line([]string{addr}, key)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

// logins counts the logins sshd accepted.
func logins(s *sshdtest.Server) int { return strings.Count(s.Log(), "Accepted publickey") }

func TestPoolReusesConnectionsWithANewSessionPerCommand(t *testing.T) {
	s, _, b, _ := poolSetup(t, PoolConfig{MaxIdle: 10})
	for i := 0; i < 3; i++ {
		r := run(t, b, "127.0.0.1", backend.Options{}, cmd("echo one"), cmd("echo two"))
		if r.Status != task.StatusOK || r.Stdout != "one\ntwo\n" {
			t.Fatalf("run %d: %s %q %q", i, r.Status, r.Error, r.Stdout)
		}
	}
	if n := logins(s); n != 1 {
		t.Fatalf("%d logins for 3 runs, want 1 (the connection kept warm)", n)
	}
	if n := strings.Count(s.Log(), "Starting session: command"); n != 6 {
		t.Fatalf("%d sessions for 6 commands, want one each", n)
	}
	if n := b.pool.idleCount(); n != 1 {
		t.Fatalf("%d idle connections, want 1", n)
	}
}

// A pooled connection that died (cut, or silently frozen) is found dead
// before a command starts and replaced by a new one; the command runs
// exactly once.
func TestPoolRedialsDeadConnectionsBeforeTheCommand(t *testing.T) {
	for _, mode := range []string{"cut", "frozen"} {
		t.Run(mode, func(t *testing.T) {
			s, p, b, _ := poolSetup(t, PoolConfig{MaxIdle: 10})
			counter := filepath.Join(s.UserDir(t), "count")
			step := cmd("echo x >> '" + counter + "'")
			if r := run(t, b, "127.0.0.1", backend.Options{}, step); r.Status != task.StatusOK {
				t.Fatalf("first: %s %q", r.Status, r.Error)
			}
			if mode == "cut" {
				p.cut()
			} else {
				p.freeze()
			}
			if r := run(t, b, "127.0.0.1", backend.Options{}, step); r.Status != task.StatusOK {
				t.Fatalf("after the connection died: %s %q", r.Status, r.Error)
			}
			data, err := os.ReadFile(counter)
			if err != nil || string(data) != "x\nx\n" {
				t.Fatalf("counter %q (%v), want one execution per run", data, err)
			}
			if n := logins(s); n != 2 {
				t.Fatalf("%d logins, want 2 (the dead connection replaced)", n)
			}
		})
	}
}

// The key a pooled connection's server showed is checked against
// known_hosts again at every reuse: once the file says otherwise, the
// connection is dropped and the new handshake refuses the host.
func TestPoolRechecksTheHostKey(t *testing.T) {
	_, p, b, cfg := poolSetup(t, PoolConfig{MaxIdle: 10})
	if r := run(t, b, "127.0.0.1", backend.Options{}, cmd("true")); r.Status != task.StatusOK {
		t.Fatalf("first: %s %q", r.Status, r.Error)
	}
	writeKnownHost(t, cfg.KnownHostsFile, net.JoinHostPort("127.0.0.1", strconv.Itoa(p.port())), newEd25519(t))
	r := run(t, b, "127.0.0.1", backend.Options{}, cmd("echo ran"))
	if r.Status != task.StatusUnreachable || !strings.HasPrefix(r.Error, "HOST KEY MISMATCH") || r.Stdout != "" {
		t.Fatalf("status %s error %q stdout %q, want a refused host", r.Status, r.Error, r.Stdout)
	}
	if n := b.pool.idleCount(); n != 0 {
		t.Fatalf("%d idle connections kept", n)
	}
}

func TestPoolBound(t *testing.T) {
	s := startSSHD(t)
	cfg := testConfig(s)
	cfg.Pool = PoolConfig{MaxIdle: 2}
	b := newBackend(t, cfg)
	t.Cleanup(b.Close)
	for _, ip := range logicalHosts {
		if r := run(t, b, ip, backend.Options{}, cmd("true")); r.Status != task.StatusOK {
			t.Fatalf("%s: %s %q", ip, r.Status, r.Error)
		}
	}
	if n := b.pool.idleCount(); n != 2 {
		t.Fatalf("%d idle connections, want the bound of 2", n)
	}
	// The one idle longest (127.0.0.1) made room: the others are warm.
	before := logins(s)
	for _, ip := range logicalHosts[1:] {
		if r := run(t, b, ip, backend.Options{}, cmd("true")); r.Status != task.StatusOK {
			t.Fatalf("%s: %s %q", ip, r.Status, r.Error)
		}
	}
	if n := logins(s) - before; n != 0 {
		t.Fatalf("%d new logins for warm hosts", n)
	}
}

func TestPoolIdleTimeout(t *testing.T) {
	s := startSSHD(t)
	cfg := testConfig(s)
	cfg.Pool = PoolConfig{MaxIdle: 10, IdleTimeout: 300 * time.Millisecond}
	b := newBackend(t, cfg)
	t.Cleanup(b.Close)
	if r := run(t, b, "127.0.0.1", backend.Options{}, cmd("true")); r.Status != task.StatusOK {
		t.Fatalf("%s %q", r.Status, r.Error)
	}
	for i := 0; b.pool.idleCount() > 0; i++ {
		if i == 400 {
			t.Fatalf("%d connections still idle 10 s after an idle timeout of 300 ms", b.pool.idleCount())
		}
		time.Sleep(25 * time.Millisecond)
	}
	// Closed, so the next run logs in again.
	if r := run(t, b, "127.0.0.1", backend.Options{}, cmd("true")); r.Status != task.StatusOK || logins(s) != 2 {
		t.Fatalf("%s %q, %d logins", r.Status, r.Error, logins(s))
	}
}

// A stopped run's connection is closed, never pooled: its command was
// killed and the connection may be in any state.
func TestPoolDropsConnectionsOfStoppedRuns(t *testing.T) {
	s := startSSHD(t)
	cfg := testConfig(s)
	cfg.Pool = PoolConfig{MaxIdle: 10}
	b := newBackend(t, cfg)
	t.Cleanup(b.Close)
	ctx, cancel := context.WithCancel(context.Background())
	chunks := make(chan struct{}, 1)
	go func() { <-chunks; cancel() }()
	r := b.Run(ctx, task.Host{IP: "127.0.0.1"}, []backend.Step{cmd("echo started; sleep 60")},
		backend.Options{OnOutput: func(task.Stream, []byte) {
			select {
			case chunks <- struct{}{}:
			default:
			}
		}})
	if r.Status != task.StatusCancelled {
		t.Fatalf("%s %q", r.Status, r.Error)
	}
	if n := b.pool.idleCount(); n != 0 {
		t.Fatalf("%d idle connections after a cancelled run", n)
	}
	// Closing the backend closes what is pooled, and later runs still work
	// (unpooled).
	b.Close()
	if r := run(t, b, "127.0.0.2", backend.Options{}, cmd("true")); r.Status != task.StatusOK || b.pool.idleCount() != 0 {
		t.Fatalf("after Close: %s %q, %d idle", r.Status, r.Error, b.pool.idleCount())
	}
}
