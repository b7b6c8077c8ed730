// Package ssh is the native SSH backend: it runs module steps on a host over
// golang.org/x/crypto/ssh, with key or agent authentication, known_hosts
// checking (strict by default), connect and run timeouts, capped output, an
// SFTP copy step, and cancellation that stops the remote command's whole
// process tree.
package ssh

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	mathrand "math/rand/v2"
	"net"
	"os"
	"path"
	"strings"
	"syscall"
	"time"

	"github.com/pkg/sftp"
	"github.com/rs/zerolog"
	gossh "golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"

	"github.com/omserver/omserver-go/internal/backend"
	"github.com/omserver/omserver-go/internal/task"
)

// stopGrace is how long a cancelled command may take to report its end
// (the watchdog sends TERM, then KILL after 2s) before the connection is
// dropped anyway, which stops it too.
const stopGrace = 4 * time.Second

// Backend runs steps over SSH: the step runner over sessions that each
// dial their own connection. It is safe for concurrent use; nothing is
// shared but the parsed keys. Output streams as the remote command prints
// it.
type Backend struct {
	*backend.Runner
	cfg     Config
	log     zerolog.Logger
	signers []gossh.Signer
	keys    *hostKeys
	// setupAttempts bounds the tries of a connection setup the server
	// resets (a field so tests can show what one try does).
	setupAttempts int
	pool          *pool // nil unless Config.Pool.MaxIdle is set
}

var _ backend.Backend = (*Backend)(nil)

// New checks cfg, loads the identity files and returns the backend.
func New(cfg Config, log zerolog.Logger) (*Backend, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("ssh backend: %w", err)
	}
	b := &Backend{
		cfg:           cfg,
		log:           log.With().Str("backend", "ssh").Logger(),
		keys:          &hostKeys{policy: cfg.HostKeyPolicy, file: cfg.KnownHostsFile},
		setupAttempts: defaultSetupAttempts,
	}
	b.Runner = backend.NewRunner("ssh", b, 0)
	b.keys.log = b.log
	if cfg.Pool.MaxIdle > 0 {
		b.pool = newPool(cfg.Pool)
	}
	for _, f := range cfg.IdentityFiles {
		s, err := loadSigner(f, cfg.Passphrase)
		if err != nil {
			return nil, fmt.Errorf("ssh backend: %w", err)
		}
		b.signers = append(b.signers, s)
	}
	if cfg.HostKeyPolicy == PolicyInsecureIgnore {
		b.log.Warn().Msg("host key checking is OFF (insecure-ignore): any machine answering at a target address gets the commands")
	}
	return b, nil
}

func loadSigner(file, passphrase string) (gossh.Signer, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("identity file: %w", err)
	}
	s, err := gossh.ParsePrivateKey(pem)
	var missing *gossh.PassphraseMissingError
	if errors.As(err, &missing) {
		if passphrase == "" {
			return nil, fmt.Errorf("identity file %s is encrypted and no passphrase is configured", file)
		}
		s, err = gossh.ParsePrivateKeyWithPassphrase(pem, []byte(passphrase))
	}
	if err != nil {
		return nil, fmt.Errorf("identity file %s: %w", file, err)
	}
	return s, nil
}

// Connect implements backend.Connector: it dials and authenticates to the
// host within the connect timeout, or takes a warm connection from the
// pool once it has checked, before any command, that the connection still
// answers and that the key its server showed is still the one on file.
func (b *Backend) Connect(ctx context.Context, host task.Host, opts backend.Options) (backend.Session, error) {
	tgt, err := b.cfg.targetFor(host.IP, host.Name)
	if err != nil {
		return nil, err
	}
	if c := b.warm(tgt); c != nil {
		return &session{b: b, conn: c}, nil
	}
	c, err := b.dial(ctx, tgt, opts.ConnectTimeoutOr(b.cfg.ConnectTimeout))
	if err != nil {
		return nil, err
	}
	b.log.Debug().Str("host", host.String()).Str("addr", tgt.addr).Msg("connected")
	return &session{b: b, conn: c}, nil
}

// warm returns a pooled connection to tgt that is fit for a new run, or
// nil. Dead connections and ones whose host key is no longer accepted are
// closed (a new handshake then reports why).
func (b *Backend) warm(tgt target) *conn {
	if b.pool == nil {
		return nil
	}
	for {
		c := b.pool.get(tgt.poolKey())
		if c == nil {
			return nil
		}
		if err := b.keys.recheck(tgt.addr, c.remote, c.hostKey); err != nil {
			b.log.Info().Str("addr", tgt.addr).Err(err).Msg("pooled connection's host key no longer accepted; dropping it")
			_ = c.client.Close()
			continue
		}
		if !alive(c.client) {
			b.log.Debug().Str("addr", tgt.addr).Msg("pooled connection dead; dialling again")
			continue
		}
		return c
	}
}

// Close closes the pool's idle connections. Runs may still use the
// backend afterwards; their connections are then closed, not pooled.
func (b *Backend) Close() {
	if b.pool != nil {
		b.pool.close()
	}
}

// session is one host's authenticated connection; each command gets a
// new SSH session (channel) on it. A connection that finished its steps
// cleanly goes back to the pool, if there is one.
type session struct {
	b    *Backend
	conn *conn
	// broken is set when a step ended in a way that may have left the
	// connection unfit (stopped, transport error): it is then closed.
	broken bool
}

func (s *session) Copy(ctx context.Context, c *backend.Copy) error {
	err := copyFile(ctx, s.conn.client, c)
	if err != nil {
		s.broken = true
	}
	return err
}

func (s *session) Command(ctx context.Context, cmd string, stdout, stderr io.Writer) (int, error) {
	code, err := runCommand(ctx, s.conn.client, cmd, stdout, stderr)
	if err != nil || ctx.Err() != nil {
		s.broken = true
	}
	return code, err
}

func (s *session) Close() error {
	if s.b.pool == nil || s.broken {
		return s.conn.client.Close()
	}
	s.b.pool.put(s.conn)
	return nil
}

// Connection setup retries: an sshd under load (more unauthenticated
// connections than its MaxStartups, e.g. 500 dials at once) resets or
// closes new connections before its banner. Setup is tried again after a
// growing pause (jittered, at most a second), up to defaultSetupAttempts
// times and always within the connect timeout. Only setup: no command has
// been sent on a connection that never finished its handshake.
const (
	defaultSetupAttempts = 20
	setupRetryFirst      = 50 * time.Millisecond
	setupRetryMax        = time.Second
)

// dial connects and authenticates, all within connectTimeout and ctx,
// trying again when the server resets the handshake.
func (b *Backend) dial(ctx context.Context, tgt target, connectTimeout time.Duration) (*conn, error) {
	dctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	pause := setupRetryFirst
	for attempt := 1; ; attempt++ {
		c, err := b.dialOnce(dctx, tgt)
		switch {
		case err == nil:
			return c, nil
		case dctx.Err() != nil && ctx.Err() == nil:
			return nil, fmt.Errorf("connect to %s: no SSH session within the connect timeout of %v (%d attempts; last: %v)", tgt.addr, connectTimeout, attempt, err)
		case dctx.Err() != nil:
			return nil, err
		case !resetBeforeSession(err):
			return nil, err
		case attempt >= b.setupAttempts:
			return nil, fmt.Errorf("connect to %s: the server reset the SSH handshake %d times (an overloaded sshd, see its MaxStartups): %w", tgt.addr, attempt, err)
		}
		b.log.Debug().Str("addr", tgt.addr).Int("attempt", attempt).Err(err).Msg("handshake reset; trying again")
		wait := pause/4 + mathrand.N(pause) // jitter spreads a crowd of retries
		pause = min(2*pause, setupRetryMax)
		select {
		case <-time.After(wait):
		case <-dctx.Done():
		}
	}
}

// resetBeforeSession reports whether a setup error is the server closing
// or resetting the connection during the handshake: what an sshd does to
// connections beyond its MaxStartups. Refused connections, timeouts,
// authentication and host key failures are not: trying again would not
// help, or must not happen.
func resetBeforeSession(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// dialOnce connects and authenticates once, within ctx.
func (b *Backend) dialOnce(ctx context.Context, tgt target) (*conn, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", tgt.addr)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", tgt.addr, err)
	}
	// The handshake has no context of its own: closing the connection is
	// how the timeout or a cancel interrupts it.
	interrupt := context.AfterFunc(ctx, func() { _ = conn.Close() })
	c, err := b.handshake(ctx, conn, tgt)
	if !interrupt() && err == nil {
		_ = c.client.Close()
		err = errors.New("interrupted")
	}
	if err != nil {
		_ = conn.Close()
		return nil, err
	}
	return c, nil
}

func (b *Backend) handshake(ctx context.Context, nc net.Conn, tgt target) (*conn, error) {
	var hostKeyErr error
	check, algos, err := b.keys.callback(tgt.addr, nc.RemoteAddr(), &hostKeyErr)
	if err != nil {
		return nil, err
	}
	var shown gossh.PublicKey
	keep := func(hostname string, remote net.Addr, key gossh.PublicKey) error {
		shown = key
		return check(hostname, remote, key)
	}
	auth, closeAgent, err := b.authMethods(ctx)
	if err != nil {
		return nil, err
	}
	defer closeAgent()
	cc, chans, reqs, err := gossh.NewClientConn(nc, tgt.addr, &gossh.ClientConfig{
		User:              tgt.user,
		Auth:              auth,
		HostKeyCallback:   keep,
		HostKeyAlgorithms: algos,
	})
	switch {
	case hostKeyErr != nil:
		return nil, hostKeyErr
	case err != nil && algos != nil && strings.Contains(err.Error(), "no common algorithm for host key"):
		return nil, fmt.Errorf("HOST KEY MISMATCH for %s: known_hosts has only %s keys for it and the server offers none of those types; refusing to connect",
			tgt.addr, strings.Join(algos, ", "))
	case err != nil && strings.Contains(err.Error(), "unable to authenticate"):
		return nil, fmt.Errorf("authentication failed for %s@%s: %w", tgt.user, tgt.addr, err)
	case err != nil:
		return nil, fmt.Errorf("connect to %s: %w", tgt.addr, err)
	}
	return &conn{client: gossh.NewClient(cc, chans, reqs), key: tgt.poolKey(), hostKey: shown, remote: nc.RemoteAddr()}, nil
}

// authMethods returns one public key method offering the identity files'
// keys, then the agent's (one agent connection per dial, closed after
// authentication). One method, not two: the client tries each method name
// once, so a second "publickey" method would never be offered.
func (b *Backend) authMethods(ctx context.Context) ([]gossh.AuthMethod, func(), error) {
	if !b.cfg.UseAgent {
		return []gossh.AuthMethod{gossh.PublicKeys(b.signers...)}, func() {}, nil
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", b.cfg.AgentSocket)
	if err != nil {
		if len(b.signers) > 0 {
			b.log.Warn().Err(err).Msg("ssh-agent unreachable; using the identity files only")
			return []gossh.AuthMethod{gossh.PublicKeys(b.signers...)}, func() {}, nil
		}
		return nil, nil, fmt.Errorf("ssh-agent at %s: %w", b.cfg.AgentSocket, err)
	}
	ag := agent.NewClient(conn)
	signers := func() ([]gossh.Signer, error) {
		fromAgent, err := ag.Signers()
		if err != nil {
			if len(b.signers) == 0 {
				return nil, fmt.Errorf("ssh-agent at %s: %w", b.cfg.AgentSocket, err)
			}
			b.log.Warn().Err(err).Msg("ssh-agent refused to list keys; using the identity files only")
		}
		return append(append([]gossh.Signer(nil), b.signers...), fromAgent...), nil
	}
	return []gossh.AuthMethod{gossh.PublicKeysCallback(signers)}, func() { _ = conn.Close() }, nil
}

// runCommand runs one command line and returns its exit code (-1 when it
// has none). When ctx ends first, it closes the command's stdin so the
// watchdog stops the remote process group (TERM, then KILL); if the session
// has not ended after stopGrace it asks sshd to KILL the group (the
// "signal" request) and drops the connection.
func runCommand(ctx context.Context, client *gossh.Client, cmd string, stdout, stderr io.Writer) (int, error) {
	sess, err := client.NewSession()
	if err != nil {
		return -1, fmt.Errorf("open session: %w", err)
	}
	defer func() { _ = sess.Close() }()
	// A pipe, not nil: with a nil Stdin the library sends EOF at once,
	// which would make the watchdog stop the command immediately.
	stdin, err := sess.StdinPipe()
	if err != nil {
		return -1, fmt.Errorf("stdin pipe: %w", err)
	}
	sess.Stdout, sess.Stderr = stdout, stderr
	if err := sess.Start(backend.WatchdogCommand(cmd)); err != nil {
		return -1, fmt.Errorf("start command: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- sess.Wait() }()

	select {
	case err = <-done:
		return exitCode(err)
	case <-ctx.Done():
	}
	_ = stdin.Close()
	grace := time.NewTimer(stopGrace)
	defer grace.Stop()
	select {
	case err = <-done:
	case <-grace.C:
		_ = sess.Signal(gossh.SIGKILL)
		_ = client.Close()
		err = <-done
	}
	if err == nil {
		// It ended on its own just as the run was stopped.
		return 0, nil
	}
	return -1, errors.New("the remote command was stopped")
}

// exitCode maps the session's end to an exit code; a command that exited,
// whatever its status, is no error.
func exitCode(err error) (int, error) {
	var exitErr *gossh.ExitError
	var missing *gossh.ExitMissingError
	switch {
	case err == nil:
		return 0, nil
	case errors.As(err, &exitErr):
		if exitErr.Signal() != "" {
			return -1, fmt.Errorf("command killed by signal %s", exitErr.Signal())
		}
		return exitErr.ExitStatus(), nil
	case errors.As(err, &missing):
		return -1, errors.New("the remote command ended without reporting an exit status")
	default:
		return -1, fmt.Errorf("command: %w", err)
	}
}

// copyFile puts c.Src at c.Dest over SFTP: written under a temporary name
// in the same directory, given its mode, then renamed over the destination,
// so the target never sees a half-written file.
func copyFile(ctx context.Context, client *gossh.Client, c *backend.Copy) error {
	src, err := os.Open(c.Src)
	if err != nil {
		return err
	}
	defer func() { _ = src.Close() }()
	if fi, err := src.Stat(); err != nil {
		return err
	} else if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", c.Src)
	}

	// SFTP calls have no context: closing the connection interrupts them.
	interrupt := context.AfterFunc(ctx, func() { _ = client.Close() })
	defer interrupt()

	sc, err := sftp.NewClient(client)
	if err != nil {
		return fmt.Errorf("start sftp: %w", err)
	}
	defer func() { _ = sc.Close() }()

	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	tmp := path.Join(path.Dir(c.Dest), "."+path.Base(c.Dest)+".omserver-"+hex.EncodeToString(rnd[:]))
	f, err := sc.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL)
	if err != nil {
		return fmt.Errorf("create %s: %w", tmp, err)
	}
	ok := false
	defer func() {
		if !ok {
			_ = sc.Remove(tmp)
		}
	}()
	if _, err := f.ReadFrom(src); err != nil {
		_ = f.Close()
		return fmt.Errorf("write: %w", err)
	}
	if err := f.Chmod(c.Mode.Perm()); err != nil {
		_ = f.Close()
		return fmt.Errorf("chmod %v: %w", c.Mode.Perm(), err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close: %w", err)
	}
	if err := sc.PosixRename(tmp, c.Dest); err != nil {
		return fmt.Errorf("rename into place: %w", err)
	}
	ok = true
	return nil
}
