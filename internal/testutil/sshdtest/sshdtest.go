// Package sshdtest starts a real OpenSSH sshd for tests: its own host key, an
// authorized client key, a known_hosts file, and a dedicated login account
// (omstest) whose shell reads no rc files. Several loopback addresses can be
// bound on the same port so that one sshd plays several logical hosts.
//
// Every test that needs SSH starts its own server with Start; the server is
// stopped by t.Cleanup and its log is printed when the test failed.
package sshdtest

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// Defaults of the harness.
const (
	// SSHDPath is where Debian's openssh-server installs the daemon. sshd
	// must be started by absolute path (it re-executes itself).
	SSHDPath = "/usr/sbin/sshd"
	// TestUser is the login account of every test sshd.
	TestUser = "omstest"
	// TestUserHome is the account's home, created empty.
	TestUserHome = "/var/lib/omstest"

	startAttempts = 5
	startTimeout  = 15 * time.Second
)

// Server is one running sshd.
type Server struct {
	Addr           string   // first listen address with port, e.g. 127.0.0.1:40123
	Addrs          []string // every listen address with port, in the order given
	Port           int
	User           string
	KeyFile        string // client private key (OpenSSH PEM, unencrypted), authorized on this sshd
	KnownHostsFile string // this sshd's host key for every listen address
	HostKey        ssh.PublicKey
	Signer         ssh.Signer // the client key, already parsed
	Dir            string     // the server's private directory (config, keys, pid file)

	cmd  *exec.Cmd
	log  *syncBuffer
	done chan struct{} // closed when sshd exited
}

// Option changes how Start configures sshd.
type Option func(*options)

type options struct {
	listen  []string
	extra   []string
	anyAddr bool // listen on the wildcard address, in an isolated namespace
}

// WithListenAddrs makes sshd listen on each of addrs (loopback IPs such as
// 127.0.0.1, 127.0.0.2) on the same port. The default is 127.0.0.1 alone.
func WithListenAddrs(addrs ...string) Option {
	return func(o *options) { o.listen = append([]string(nil), addrs...) }
}

// WithEveryLoopbackAddress makes sshd listen on the wildcard address so
// that it answers at every address of 127.0.0.0/8 (OpenSSH listens on at
// most 16 addresses; a fan-out benchmark needs hundreds). Start allows it
// only inside a network namespace whose interfaces are all loopback
// (unshare -n; see IsolatedLoopback), where nothing else can reach sshd.
func WithEveryLoopbackAddress() Option {
	return func(o *options) { o.listen, o.anyAddr = []string{"0.0.0.0"}, true }
}

// IsolatedLoopback reports whether this process runs in a network
// namespace with loopback interfaces only.
func IsolatedLoopback() bool {
	ifs, err := net.Interfaces()
	if err != nil || len(ifs) == 0 {
		return false
	}
	for _, i := range ifs {
		if i.Flags&net.FlagLoopback == 0 {
			return false
		}
	}
	return true
}

// WithConfigLines adds raw sshd_config lines (for tests that need, say, a
// lower MaxStartups). A line replaces the harness's own setting of the
// same keyword (sshd keeps the first value of most keywords but the last of
// some, such as MaxStartups); HostKey lines add to the harness's key.
func WithConfigLines(lines ...string) Option {
	return func(o *options) { o.extra = append(o.extra, lines...) }
}

// Start starts sshd and waits until it listens on every address. It fails the
// test (naming what to install or run) when sshd or the test account cannot be
// set up; under -short a missing sshd skips instead.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	o := options{listen: []string{"127.0.0.1"}}
	for _, opt := range opts {
		opt(&o)
	}
	if o.anyAddr && !IsolatedLoopback() {
		t.Fatalf("sshdtest: listening on every address needs a network namespace with only loopback (run under unshare -n)")
	}
	for _, a := range o.listen {
		if o.anyAddr {
			break
		}
		if ip := net.ParseIP(a); ip == nil || !ip.IsLoopback() {
			t.Fatalf("sshdtest: listen address %q is not a loopback IP", a)
		}
	}
	if _, err := os.Stat(SSHDPath); err != nil {
		if testing.Short() {
			t.Skipf("sshdtest: %s missing (install openssh-server); skipped under -short", SSHDPath)
		}
		t.Fatalf("sshdtest: %s missing: install openssh-server (apt-get install openssh-server)", SSHDPath)
	}
	EnsureUser(t)
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		t.Fatalf("sshdtest: create privilege separation dir /run/sshd: %v (run: mkdir -p /run/sshd as root)", err)
	}

	s := newServerFiles(t, o)
	var lastErr error
	for attempt := 0; attempt < startAttempts; attempt++ {
		port, err := freePort()
		if err != nil {
			t.Fatalf("sshdtest: find a free port: %v", err)
		}
		err = s.start(t, o, port)
		if err == nil {
			return s
		}
		lastErr = err
		// A port taken between freePort and sshd's bind is the expected
		// reason to retry; anything else repeats and fails below.
	}
	t.Fatalf("sshdtest: sshd did not start after %d attempts: %v", startAttempts, lastErr)
	return nil
}

// newServerFiles creates the directory, keys and authorized_keys file.
func newServerFiles(t testing.TB, o options) *Server {
	t.Helper()
	// Not t.TempDir: sshd reads authorized_keys as the test user, so the
	// directory must be traversable by it.
	dir, err := os.MkdirTemp("", "sshdtest-")
	if err != nil {
		t.Fatalf("sshdtest: temp dir: %v", err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatalf("sshdtest: chmod %s: %v", dir, err)
	}

	hostPub, _, err := writeKeyPair(filepath.Join(dir, "ssh_host_ed25519_key"))
	if err != nil {
		t.Fatalf("sshdtest: host key: %v", err)
	}
	clientKey := filepath.Join(dir, "client_ed25519")
	clientPub, clientSigner, err := writeKeyPair(clientKey)
	if err != nil {
		t.Fatalf("sshdtest: client key: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "authorized_keys"), ssh.MarshalAuthorizedKey(clientPub), 0o644); err != nil {
		t.Fatalf("sshdtest: authorized_keys: %v", err)
	}
	return &Server{
		User:    TestUser,
		KeyFile: clientKey,
		HostKey: hostPub,
		Signer:  clientSigner,
		Dir:     dir,
		log:     &syncBuffer{},
	}
}

// start writes the config for port, starts sshd and waits for it to listen
// on every address. It returns an error (after stopping sshd) when sshd
// could not bind or did not come up, so Start can retry on another port.
func (s *Server) start(t testing.TB, o options, port int) error {
	t.Helper()
	cfgPath := filepath.Join(s.Dir, "sshd_config")
	if err := os.WriteFile(cfgPath, []byte(s.config(o, port)), 0o600); err != nil {
		t.Fatalf("sshdtest: write config: %v", err)
	}
	s.log.Reset()
	cmd := exec.Command(SSHDPath, "-D", "-e", "-f", cfgPath)
	cmd.Stdout = s.log
	lines := newLineWatcher(s.log)
	cmd.Stderr = lines
	// Kill sshd if the test binary dies without running its cleanups.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("sshdtest: start %s: %v", SSHDPath, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()

	want := make(map[string]bool, len(o.listen))
	for _, a := range o.listen {
		want[fmt.Sprintf("Server listening on %s port %d.", a, port)] = true
	}
	deadline := time.NewTimer(startTimeout)
	defer deadline.Stop()
	for len(want) > 0 {
		select {
		case line := <-lines.C:
			delete(want, strings.TrimSpace(line))
			if strings.Contains(line, "Bind to port") || strings.Contains(line, "Cannot bind any address") {
				stopProcess(cmd, done)
				return fmt.Errorf("sshd could not bind port %d: %s", port, strings.TrimSpace(line))
			}
		case <-done:
			return fmt.Errorf("sshd exited while starting: %s", s.log.String())
		case <-deadline.C:
			stopProcess(cmd, done)
			return fmt.Errorf("sshd not listening on every address after %v: %s", startTimeout, s.log.String())
		}
	}

	s.cmd, s.done, s.Port = cmd, done, port
	s.Addrs = s.Addrs[:0]
	var kh bytes.Buffer
	for _, a := range o.listen {
		hp := net.JoinHostPort(a, strconv.Itoa(port))
		s.Addrs = append(s.Addrs, hp)
		kh.WriteString(knownhosts.Line([]string{hp}, s.HostKey) + "\n")
	}
	s.Addr = s.Addrs[0]
	s.KnownHostsFile = filepath.Join(s.Dir, "known_hosts")
	if err := os.WriteFile(s.KnownHostsFile, kh.Bytes(), 0o600); err != nil {
		stopProcess(cmd, done)
		t.Fatalf("sshdtest: write known_hosts: %v", err)
	}
	t.Cleanup(func() {
		stopProcess(cmd, done)
		if t.Failed() {
			t.Logf("sshdtest: sshd log (port %d):\n%s", port, s.log.String())
		}
	})
	return nil
}

func (s *Server) config(o options, port int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Port %d\n", port)
	for _, a := range o.listen {
		fmt.Fprintf(&b, "ListenAddress %s\n", a)
	}
	fmt.Fprintf(&b, "HostKey %s\n", filepath.Join(s.Dir, "ssh_host_ed25519_key"))
	fmt.Fprintf(&b, "PidFile %s\n", filepath.Join(s.Dir, "sshd.pid"))
	fmt.Fprintf(&b, "AuthorizedKeysFile %s\n", filepath.Join(s.Dir, "authorized_keys"))
	overridden := map[string]bool{}
	for _, l := range o.extra {
		if f := strings.Fields(l); len(f) > 0 && !strings.EqualFold(f[0], "HostKey") {
			overridden[strings.ToLower(f[0])] = true
		}
	}
	for _, l := range strings.SplitAfter(`PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PermitRootLogin no
AllowUsers `+TestUser+`
UseDNS no
PrintMotd no
PrintLastLog no
X11Forwarding no
AllowAgentForwarding no
MaxStartups 200:30:400
MaxSessions 200
MaxAuthTries 10
LoginGraceTime 30
LogLevel VERBOSE
Subsystem sftp internal-sftp
`, "\n") {
		if f := strings.Fields(l); len(f) > 0 && !overridden[strings.ToLower(f[0])] {
			b.WriteString(l)
		}
	}
	for _, l := range o.extra {
		b.WriteString(l + "\n")
	}
	return b.String()
}

// Log returns what sshd has written so far.
func (s *Server) Log() string { return s.log.String() }

// Stop stops sshd now (Cleanup does it anyway). Existing connections keep
// their per-connection sshd until they close.
func (s *Server) Stop() { stopProcess(s.cmd, s.done) }

// AddrFor returns ip's listen address with the server's port.
func (s *Server) AddrFor(ip string) string {
	return net.JoinHostPort(ip, strconv.Itoa(s.Port))
}

// ClientConfig returns a client config that logs in as the test user with
// the authorized key and checks the host key against KnownHostsFile.
func (s *Server) ClientConfig(t testing.TB) *ssh.ClientConfig {
	t.Helper()
	cb, err := knownhosts.New(s.KnownHostsFile)
	if err != nil {
		t.Fatalf("sshdtest: read %s: %v", s.KnownHostsFile, err)
	}
	return &ssh.ClientConfig{
		User:            s.User,
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(s.Signer)},
		HostKeyCallback: cb,
		Timeout:         10 * time.Second,
	}
}

// Dial opens a client connection to addr (one of Addrs), closed by Cleanup.
func (s *Server) Dial(t testing.TB, addr string) *ssh.Client {
	t.Helper()
	c, err := ssh.Dial("tcp", addr, s.ClientConfig(t))
	if err != nil {
		t.Fatalf("sshdtest: dial %s: %v\nsshd log:\n%s", addr, err, s.Log())
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// UserDir creates a fresh directory owned by the test user (for copy
// destinations) and removes it in Cleanup.
func (s *Server) UserDir(t testing.TB) string {
	t.Helper()
	u, err := user.Lookup(TestUser)
	if err != nil {
		t.Fatalf("sshdtest: look up %s: %v", TestUser, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	dir, err := os.MkdirTemp("", "sshdtest-user-")
	if err != nil {
		t.Fatalf("sshdtest: temp dir: %v", err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chown(dir, uid, gid); err != nil {
		t.Fatalf("sshdtest: chown %s to %s: %v", dir, TestUser, err)
	}
	return dir
}

// ProcessesMatching returns the pids of the test user's processes whose full
// command line matches the pgrep pattern (none: an empty slice).
func (s *Server) ProcessesMatching(t testing.TB, pattern string) []int {
	t.Helper()
	return ProcessesMatching(t, pattern)
}

// ProcessesMatching is Server.ProcessesMatching without a server.
func ProcessesMatching(t testing.TB, pattern string) []int {
	t.Helper()
	out, err := exec.Command("pgrep", "-u", TestUser, "-f", pattern).Output()
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() == 1 {
		return []int{} // pgrep: nothing matched
	}
	if err != nil {
		if errors.Is(err, exec.ErrNotFound) {
			t.Fatalf("sshdtest: pgrep missing: install procps")
		}
		t.Fatalf("sshdtest: pgrep -u %s -f %q: %v", TestUser, pattern, err)
	}
	var pids []int
	for _, f := range strings.Fields(string(out)) {
		if pid, err := strconv.Atoi(f); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

// WaitNoProcesses polls until no process of the test user matches pattern,
// for at most limit; it returns the pids still there (empty on success).
func (s *Server) WaitNoProcesses(t testing.TB, pattern string, limit time.Duration) []int {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		pids := ProcessesMatching(t, pattern)
		if len(pids) == 0 || time.Now().After(deadline) {
			return pids
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// WaitProcesses polls until a process of the test user matches pattern, for
// at most limit; it returns their pids (empty if none appeared in time).
func (s *Server) WaitProcesses(t testing.TB, pattern string, limit time.Duration) []int {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		pids := ProcessesMatching(t, pattern)
		if len(pids) > 0 || time.Now().After(deadline) {
			return pids
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// NewKeyFile writes a fresh, unauthorized ed25519 private key into dir and
// returns its path and public key (for wrong-key tests, or to authorize it
// elsewhere).
func NewKeyFile(t testing.TB, dir string) (string, ssh.PublicKey) {
	t.Helper()
	path := filepath.Join(dir, fmt.Sprintf("key-%d", time.Now().UnixNano()))
	pub, _, err := writeKeyPair(path)
	if err != nil {
		t.Fatalf("sshdtest: new key: %v", err)
	}
	return path, pub
}

// writeKeyPair writes an unencrypted OpenSSH ed25519 private key to path
// (mode 0600) and its public key to path.pub.
func writeKeyPair(path string) (ssh.PublicKey, ssh.Signer, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate ed25519 key: %w", err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		return nil, nil, fmt.Errorf("marshal private key: %w", err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		return nil, nil, fmt.Errorf("write %s: %w", path, err)
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		return nil, nil, fmt.Errorf("public key: %w", err)
	}
	if err := os.WriteFile(path+".pub", ssh.MarshalAuthorizedKey(sshPub), 0o644); err != nil {
		return nil, nil, fmt.Errorf("write %s.pub: %w", path, err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return nil, nil, fmt.Errorf("signer: %w", err)
	}
	return sshPub, signer, nil
}

// EnsureUser makes sure the test login account exists and can log in with a
// key (not locked: with UsePAM no, sshd refuses accounts whose password
// field starts with "!"). It creates or unlocks it when running as root and
// fails the test with the command to run otherwise.
func EnsureUser(t testing.TB) {
	t.Helper()
	// Several test binaries may get here at once; serialise account changes.
	unlock, err := lockFile("/tmp/sshdtest-user.lock")
	if err != nil {
		t.Fatalf("sshdtest: %v", err)
	}
	defer unlock()

	// The home is made by hand, empty: useradd's own home creation would
	// copy /etc/skel's shell rc files into it (as .ci/run does).
	const howto = "useradd --system --no-create-home --home-dir " + TestUserHome +
		" --shell /bin/sh --password '*' " + TestUser +
		" && install -d -o " + TestUser + " -g " + TestUser + " -m 0750 " + TestUserHome
	if _, err := user.Lookup(TestUser); err != nil {
		if os.Geteuid() != 0 {
			t.Fatalf("sshdtest: account %s missing and not root to create it; run as root: %s", TestUser, howto)
		}
		out, err := exec.Command("useradd", "--system", "--no-create-home",
			"--home-dir", TestUserHome, "--shell", "/bin/sh", "--password", "*", TestUser).CombinedOutput()
		if err != nil {
			t.Fatalf("sshdtest: create account %s: %v: %s (run as root: %s)", TestUser, err, out, howto)
		}
		if out, err := exec.Command("install", "-d", "-o", TestUser, "-g", TestUser, "-m", "0750", TestUserHome).CombinedOutput(); err != nil {
			t.Fatalf("sshdtest: home of %s: %v: %s (run as root: %s)", TestUser, err, out, howto)
		}
	}
	locked, err := accountLocked(TestUser)
	if err != nil {
		t.Fatalf("sshdtest: %v", err)
	}
	if locked {
		if os.Geteuid() != 0 {
			t.Fatalf("sshdtest: account %s is locked; run as root: usermod -p '*' %s", TestUser, TestUser)
		}
		if out, err := exec.Command("usermod", "-p", "*", TestUser).CombinedOutput(); err != nil {
			t.Fatalf("sshdtest: unlock account %s: %v: %s", TestUser, err, out)
		}
	}
}

// accountLocked reports whether name's shadow password starts with "!",
// which sshd (without PAM) treats as a locked account. An unreadable shadow
// file (not root) counts as unlocked: sshd will say otherwise in its log.
func accountLocked(name string) (bool, error) {
	f, err := os.Open("/etc/shadow")
	if err != nil {
		return false, nil
	}
	defer func() { _ = f.Close() }()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.SplitN(sc.Text(), ":", 3)
		if len(fields) >= 2 && fields[0] == name {
			return strings.HasPrefix(fields[1], "!"), nil
		}
	}
	if err := sc.Err(); err != nil {
		return false, fmt.Errorf("read /etc/shadow: %w", err)
	}
	return false, nil
}

// lockFile takes an exclusive flock on path.
func lockFile(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		return nil, fmt.Errorf("open lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		_ = f.Close()
	}, nil
}

// freePort asks the kernel for a free TCP port on 127.0.0.1.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		return 0, err
	}
	return port, nil
}

// stopProcess sends SIGTERM, then SIGKILL if sshd has not exited in time.
func stopProcess(cmd *exec.Cmd, done <-chan struct{}) {
	if cmd == nil || cmd.Process == nil {
		return
	}
	select {
	case <-done:
		return
	default:
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

// syncBuffer is a bytes.Buffer safe for the concurrent writes of a child's
// output and reads of the test.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *syncBuffer) Reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Reset()
}

// lineWatcher copies sshd's stderr into the log and, until nobody listens
// any more, offers each line on C (dropping lines nobody waits for).
type lineWatcher struct {
	log     io.Writer
	partial []byte
	C       chan string
}

func newLineWatcher(log io.Writer) *lineWatcher {
	return &lineWatcher{log: log, C: make(chan string, 64)}
}

func (w *lineWatcher) Write(p []byte) (int, error) {
	_, _ = w.log.Write(p)
	w.partial = append(w.partial, p...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			break
		}
		line := string(w.partial[:i])
		w.partial = w.partial[i+1:]
		select {
		case w.C <- line:
		default:
		}
	}
	return len(p), nil
}
