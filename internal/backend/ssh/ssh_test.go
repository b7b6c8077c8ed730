package ssh

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	gossh "golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/omserver/omserver-go/internal/backend"
	"github.com/omserver/omserver-go/internal/task"
	"github.com/omserver/omserver-go/internal/testutil/porttest"
	"github.com/omserver/omserver-go/internal/testutil/sshdtest"
)

// Generous bounds that only stop a broken test from hanging.
const (
	hangGuard   = 30 * time.Second
	processGone = 15 * time.Second
)

var logicalHosts = []string{"127.0.0.1", "127.0.0.2", "127.0.0.3"}

func startSSHD(t testing.TB) *sshdtest.Server {
	t.Helper()
	return sshdtest.Start(t, sshdtest.WithListenAddrs(logicalHosts...))
}

// remoteMarker is a sleep command line that marks one test's remote
// process for pgrep: unique to this sshd (its port) and to n, and never a
// prefix of another package's markers (7 digits starting with 7), so
// parallel test binaries and leftovers of earlier runs are not mistaken
// for it.
func remoteMarker(s *sshdtest.Server, n int) string {
	return fmt.Sprintf("sleep 7%05d%d", s.Port, n)
}

func testConfig(s *sshdtest.Server) Config {
	return Config{
		User:           s.User,
		Port:           s.Port,
		IdentityFiles:  []string{s.KeyFile},
		KnownHostsFile: s.KnownHostsFile,
	}
}

func newBackend(t testing.TB, cfg Config) *Backend {
	t.Helper()
	b, err := New(cfg, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return b
}

func run(t testing.TB, b *Backend, ip string, opts backend.Options, steps ...backend.Step) task.HostResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	return b.Run(ctx, task.Host{IP: ip, Name: "host-" + ip}, steps, opts)
}

func cmd(c string) backend.Step { return backend.Step{Command: c} }

// closedPort is a loopback port where connections are refused, held for
// the whole test so no other listener can take it meanwhile.
func closedPort(t *testing.T) int { return porttest.Closed(t) }

func TestRunOnLogicalHosts(t *testing.T) {
	s := startSSHD(t)
	b := newBackend(t, testConfig(s))
	tests := []struct {
		name       string
		ip         string
		steps      []backend.Step
		wantStatus task.Status
		wantCode   int
		wantOut    string
		wantErrOut string
		wantError  string
	}{
		{name: "echo", ip: "127.0.0.1", steps: []backend.Step{cmd("echo hello")},
			wantStatus: task.StatusOK, wantCode: 0, wantOut: "hello\n"},
		{name: "second logical host", ip: "127.0.0.2", steps: []backend.Step{cmd("id -un")},
			wantStatus: task.StatusOK, wantCode: 0, wantOut: sshdtest.TestUser + "\n"},
		{name: "non-zero exit", ip: "127.0.0.3", steps: []backend.Step{cmd("echo before; exit 3")},
			wantStatus: task.StatusFailed, wantCode: 3, wantOut: "before\n", wantError: "status 3"},
		{name: "stderr captured", ip: "127.0.0.1", steps: []backend.Step{cmd("echo oops >&2; echo out")},
			wantStatus: task.StatusOK, wantCode: 0, wantOut: "out\n", wantErrOut: "oops\n"},
		{name: "steps run in order and share output", ip: "127.0.0.2",
			steps:      []backend.Step{cmd("echo one"), cmd("echo two")},
			wantStatus: task.StatusOK, wantCode: 0, wantOut: "one\ntwo\n"},
		{name: "a failing step stops the rest", ip: "127.0.0.3",
			steps:      []backend.Step{cmd("false"), cmd("echo never")},
			wantStatus: task.StatusFailed, wantCode: 1, wantOut: "", wantError: "step 1"},
		{name: "single quotes survive the wrapper", ip: "127.0.0.1", steps: []backend.Step{cmd(`printf '%s\n' 'it'\''s'`)},
			wantStatus: task.StatusOK, wantCode: 0, wantOut: "it's\n"},
		{name: "exit builtin of the command", ip: "127.0.0.1", steps: []backend.Step{cmd("exit 0; echo never")},
			wantStatus: task.StatusOK, wantCode: 0, wantOut: ""},
		{name: "command gets no stdin", ip: "127.0.0.1", steps: []backend.Step{cmd("cat; echo done")},
			wantStatus: task.StatusOK, wantCode: 0, wantOut: "done\n"},
		{name: "killed by a signal", ip: "127.0.0.2", steps: []backend.Step{cmd("kill -s KILL $$")},
			wantStatus: task.StatusFailed, wantCode: -1, wantError: "killed by signal KILL"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := run(t, b, tc.ip, backend.Options{}, tc.steps...)
			if r.Status != tc.wantStatus || r.ExitCode != tc.wantCode {
				t.Fatalf("status %s exit %d, want %s exit %d (error %q, stderr %q)", r.Status, r.ExitCode, tc.wantStatus, tc.wantCode, r.Error, r.Stderr)
			}
			if r.Stdout != tc.wantOut {
				t.Errorf("stdout %q, want %q", r.Stdout, tc.wantOut)
			}
			if r.Stderr != tc.wantErrOut {
				t.Errorf("stderr %q, want %q", r.Stderr, tc.wantErrOut)
			}
			if !strings.Contains(r.Error, tc.wantError) || (tc.wantError == "" && r.Error != "") {
				t.Errorf("error %q, want it to contain %q", r.Error, tc.wantError)
			}
			if r.Host.IP != tc.ip || r.Started.IsZero() || r.Duration <= 0 {
				t.Errorf("host %v started %v duration %v", r.Host, r.Started, r.Duration)
			}
		})
	}
}

func TestUnreachableClosedPort(t *testing.T) {
	s := startSSHD(t)
	cfg := testConfig(s)
	cfg.Hosts = map[string]HostConfig{"127.0.0.1": {Port: closedPort(t)}}
	b := newBackend(t, cfg)
	r := run(t, b, "127.0.0.1", backend.Options{}, cmd("echo hi"))
	if r.Status != task.StatusUnreachable || !strings.Contains(r.Error, "connection refused") || r.ExitCode != -1 {
		t.Fatalf("status %s error %q exit %d, want unreachable / connection refused / -1", r.Status, r.Error, r.ExitCode)
	}
	// The other hosts of the same backend are unaffected.
	if r := run(t, b, "127.0.0.2", backend.Options{}, cmd("true")); r.Status != task.StatusOK {
		t.Fatalf("127.0.0.2: %s %q", r.Status, r.Error)
	}
}

func TestConnectTimeoutOnSilentServer(t *testing.T) {
	// A listener that accepts and never speaks SSH.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer func() { _ = c.Close() }()
		}
	}()
	s := startSSHD(t)
	cfg := testConfig(s)
	cfg.Hosts = map[string]HostConfig{"127.0.0.1": {Port: l.Addr().(*net.TCPAddr).Port}}
	b := newBackend(t, cfg)
	r := run(t, b, "127.0.0.1", backend.Options{ConnectTimeout: 300 * time.Millisecond}, cmd("true"))
	if r.Status != task.StatusUnreachable || !strings.Contains(r.Error, "connect timeout") {
		t.Fatalf("status %s error %q, want unreachable with connect timeout", r.Status, r.Error)
	}
	// The host's run timeout, shorter than the connect timeout, wins.
	r = run(t, b, "127.0.0.1", backend.Options{ConnectTimeout: 20 * time.Second, Timeout: 300 * time.Millisecond}, cmd("true"))
	if r.Status != task.StatusTimeout || !strings.Contains(r.Error, "while connecting") {
		t.Fatalf("status %s error %q, want timeout while connecting", r.Status, r.Error)
	}
}

func TestUnknownHostKeyRefusedInStrictMode(t *testing.T) {
	s := startSSHD(t)
	cfg := testConfig(s)
	cfg.KnownHostsFile = filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(cfg.KnownHostsFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	b := newBackend(t, cfg)
	r := run(t, b, "127.0.0.2", backend.Options{}, cmd("echo hi"))
	want := "unknown host key for " + s.AddrFor("127.0.0.2") + " (not in known_hosts; add it or use accept-new)"
	if r.Status != task.StatusUnreachable || r.Error != want {
		t.Fatalf("status %s error %q, want unreachable %q", r.Status, r.Error, want)
	}
	if r.Stdout != "" {
		t.Fatalf("the command ran: %q", r.Stdout)
	}
	if data, _ := os.ReadFile(cfg.KnownHostsFile); len(data) != 0 {
		t.Fatalf("strict mode wrote known_hosts: %q", data)
	}
}

// wrongKeyKnownHosts writes a known_hosts file that holds another key for
// every address of s.
func wrongKeyKnownHosts(t *testing.T, s *sshdtest.Server) string {
	t.Helper()
	dir := t.TempDir()
	_, other := sshdtest.NewKeyFile(t, dir)
	var lines []string
	for _, a := range s.Addrs {
		lines = append(lines, fmt.Sprintf("[%s]:%d %s", strings.Split(a, ":")[0], s.Port, strings.TrimSpace(string(marshal(other)))))
	}
	path := filepath.Join(dir, "known_hosts")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestMismatchedHostKeyRefused(t *testing.T) {
	s := startSSHD(t)
	for _, policy := range []string{PolicyStrict, PolicyAcceptNew} {
		t.Run(policy, func(t *testing.T) {
			cfg := testConfig(s)
			cfg.HostKeyPolicy = policy
			cfg.KnownHostsFile = wrongKeyKnownHosts(t, s)
			before, _ := os.ReadFile(cfg.KnownHostsFile)
			b := newBackend(t, cfg)
			r := run(t, b, "127.0.0.3", backend.Options{}, cmd("echo ran"))
			if r.Status != task.StatusUnreachable || !strings.HasPrefix(r.Error, "HOST KEY MISMATCH for "+s.AddrFor("127.0.0.3")) {
				t.Fatalf("status %s error %q, want unreachable HOST KEY MISMATCH", r.Status, r.Error)
			}
			if r.Stdout != "" {
				t.Fatalf("the command ran: %q", r.Stdout)
			}
			if after, _ := os.ReadFile(cfg.KnownHostsFile); string(after) != string(before) {
				t.Fatalf("known_hosts changed:\n%s", after)
			}
		})
	}
}

func TestHostKeyTypes(t *testing.T) {
	s := startSSHD(t)
	ecdsaKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	other, err := gossh.NewPublicKey(&ecdsaKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	addr := s.AddrFor("127.0.0.2")
	otherLine := knownhosts.Line([]string{addr}, other)
	rightLine := knownhosts.Line([]string{addr}, s.HostKey)
	tests := []struct {
		name      string
		lines     []string
		policy    string
		wantOK    bool
		wantError string
	}{
		{name: "another type on file besides the right key", lines: []string{otherLine, rightLine}, policy: PolicyStrict, wantOK: true},
		{name: "only another type on file", lines: []string{otherLine}, policy: PolicyStrict, wantError: "HOST KEY MISMATCH for " + addr + ": known_hosts has only ecdsa-sha2-nistp256 keys"},
		{name: "only another type on file, accept-new", lines: []string{otherLine}, policy: PolicyAcceptNew, wantError: "HOST KEY MISMATCH"},
		{name: "hand-edited file without final newline", lines: []string{"# comment"}, policy: PolicyAcceptNew, wantOK: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(s)
			cfg.HostKeyPolicy = tc.policy
			cfg.KnownHostsFile = filepath.Join(t.TempDir(), "known_hosts")
			if err := os.WriteFile(cfg.KnownHostsFile, []byte(strings.Join(tc.lines, "\n")), 0o600); err != nil {
				t.Fatal(err)
			}
			r := run(t, newBackend(t, cfg), "127.0.0.2", backend.Options{}, cmd("echo ran"))
			if tc.wantOK {
				if r.Status != task.StatusOK {
					t.Fatalf("%s %q", r.Status, r.Error)
				}
				// A second connection reads what the first may have added.
				if r := run(t, newBackend(t, cfg), "127.0.0.2", backend.Options{}, cmd("true")); r.Status != task.StatusOK {
					t.Fatalf("second run: %s %q", r.Status, r.Error)
				}
				return
			}
			if r.Status != task.StatusUnreachable || !strings.HasPrefix(r.Error, tc.wantError) || r.Stdout != "" {
				t.Fatalf("%s %q stdout %q, want unreachable %q", r.Status, r.Error, r.Stdout, tc.wantError)
			}
		})
	}
}

// A server with several host keys shows the type on file, not the Go
// client's favourite (ECDSA before Ed25519), which would look like a
// changed key.
func TestServerWithSeveralHostKeys(t *testing.T) {
	ecdsaKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := gossh.MarshalPrivateKey(ecdsaKey, "")
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "ssh_host_ecdsa_key")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	s := sshdtest.Start(t, sshdtest.WithListenAddrs(logicalHosts...), sshdtest.WithConfigLines("HostKey "+keyFile))
	b := newBackend(t, testConfig(s)) // known_hosts holds the Ed25519 key only
	if r := run(t, b, "127.0.0.1", backend.Options{}, cmd("true")); r.Status != task.StatusOK {
		t.Fatalf("%s %q", r.Status, r.Error)
	}
}

func TestAcceptNewAddsThenWorks(t *testing.T) {
	s := startSSHD(t)
	cfg := testConfig(s)
	cfg.HostKeyPolicy = PolicyAcceptNew
	cfg.KnownHostsFile = filepath.Join(t.TempDir(), "known_hosts") // does not exist yet
	b := newBackend(t, cfg)

	// Concurrent first contacts with the same new host record it once.
	var wg sync.WaitGroup
	results := make([]task.HostResult, 5)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = run(t, b, "127.0.0.2", backend.Options{}, cmd("echo ok"))
		}()
	}
	wg.Wait()
	for i, r := range results {
		if r.Status != task.StatusOK || r.Stdout != "ok\n" {
			t.Fatalf("run %d: %s %q %q", i, r.Status, r.Error, r.Stdout)
		}
	}
	data, err := os.ReadFile(cfg.KnownHostsFile)
	if err != nil {
		t.Fatal(err)
	}
	want := "[127.0.0.2]:" + strconv.Itoa(s.Port) + " " + strings.TrimSpace(string(marshal(s.HostKey))) + "\n"
	if string(data) != want {
		t.Fatalf("known_hosts =\n%q\nwant\n%q", data, want)
	}

	// The recorded key now passes strict checking.
	cfg.HostKeyPolicy = PolicyStrict
	strict := newBackend(t, cfg)
	if r := run(t, strict, "127.0.0.2", backend.Options{}, cmd("true")); r.Status != task.StatusOK {
		t.Fatalf("strict after accept-new: %s %q", r.Status, r.Error)
	}
	if r := run(t, strict, "127.0.0.3", backend.Options{}, cmd("true")); r.Status != task.StatusUnreachable {
		t.Fatalf("strict, host never accepted: %s %q", r.Status, r.Error)
	}
}

func TestWrongClientKeyIsAuthFailure(t *testing.T) {
	s := startSSHD(t)
	cfg := testConfig(s)
	other, _ := sshdtest.NewKeyFile(t, t.TempDir())
	cfg.IdentityFiles = []string{other}
	b := newBackend(t, cfg)
	r := run(t, b, "127.0.0.1", backend.Options{}, cmd("echo hi"))
	if r.Status != task.StatusUnreachable || !strings.Contains(r.Error, "authentication failed for omstest@") {
		t.Fatalf("status %s error %q, want unreachable authentication failed", r.Status, r.Error)
	}
	// With the right key second, the wrong one is skipped.
	cfg.IdentityFiles = []string{other, s.KeyFile}
	if r := run(t, newBackend(t, cfg), "127.0.0.1", backend.Options{}, cmd("true")); r.Status != task.StatusOK {
		t.Fatalf("wrong key then right key: %s %q", r.Status, r.Error)
	}
}

func TestCommandTimeoutStopsRemoteProcess(t *testing.T) {
	s := startSSHD(t)
	b := newBackend(t, testConfig(s))
	marker := remoteMarker(s, 1)
	// The timeout covers connecting too: it must leave a loaded machine
	// time to log in and print "started" before it expires.
	r := run(t, b, "127.0.0.2", backend.Options{Timeout: 5 * time.Second}, cmd("echo started; "+marker+"; echo never"))
	if r.Status != task.StatusTimeout || r.ExitCode != -1 {
		t.Fatalf("status %s exit %d error %q, want timeout -1", r.Status, r.ExitCode, r.Error)
	}
	if r.Stdout != "started\n" {
		t.Errorf("stdout %q: output before the timeout is kept", r.Stdout)
	}
	if left := s.WaitNoProcesses(t, marker, processGone); len(left) > 0 {
		t.Fatalf("remote processes still running after timeout: %v", left)
	}
}

func TestCancelStopsRemoteProcessTree(t *testing.T) {
	s := startSSHD(t)
	b := newBackend(t, testConfig(s))
	marker := remoteMarker(s, 2)
	// A compound command with a background child and a TERM-ignoring
	// child: the signal request alone would reach none of these.
	command := "(" + marker + ") & (trap '' TERM; " + marker + "; true) & " + marker + "; wait"
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	resc := make(chan task.HostResult, 1)
	go func() {
		resc <- b.Run(ctx, task.Host{IP: "127.0.0.3"}, []backend.Step{cmd(command)}, backend.Options{})
	}()

	if pids := s.WaitProcesses(t, "^"+marker, processGone); len(pids) == 0 {
		cancel()
		t.Fatalf("the remote command never started; result %+v", <-resc)
	}
	cancel()
	var r task.HostResult
	select {
	case r = <-resc:
	case <-time.After(hangGuard):
		t.Fatal("Run did not return after cancel")
	}
	if r.Status != task.StatusCancelled || r.ExitCode != -1 || !strings.Contains(r.Error, "cancelled") {
		t.Fatalf("status %s exit %d error %q, want cancelled", r.Status, r.ExitCode, r.Error)
	}
	if left := s.WaitNoProcesses(t, marker, processGone); len(left) > 0 {
		t.Fatalf("remote processes still running after cancel: %v", left)
	}
}

func TestCancelBeforeConnect(t *testing.T) {
	s := startSSHD(t)
	b := newBackend(t, testConfig(s))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := b.Run(ctx, task.Host{IP: "127.0.0.1"}, []backend.Step{cmd("echo hi")}, backend.Options{})
	if r.Status != task.StatusCancelled || r.Stdout != "" {
		t.Fatalf("status %s error %q stdout %q, want cancelled without running", r.Status, r.Error, r.Stdout)
	}
}

func TestOutputCap(t *testing.T) {
	s := startSSHD(t)
	b := newBackend(t, testConfig(s))
	const capBytes = 1000
	tests := []struct {
		name            string
		command         string
		wantOut, wantEr int
		truncOut        bool
		truncErr        bool
	}{
		{name: "stdout over cap", command: "head -c 5000 /dev/zero | tr '\\0' a", wantOut: capBytes, truncOut: true},
		{name: "stderr over cap", command: "head -c 5000 /dev/zero | tr '\\0' b >&2", wantEr: capBytes, truncErr: true},
		{name: "exactly cap", command: "head -c 1000 /dev/zero | tr '\\0' c", wantOut: capBytes},
		{name: "under cap", command: "printf abc", wantOut: 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := run(t, b, "127.0.0.1", backend.Options{OutputCap: capBytes}, cmd(tc.command))
			if r.Status != task.StatusOK {
				t.Fatalf("%s %q", r.Status, r.Error)
			}
			if len(r.Stdout) != tc.wantOut || r.StdoutTruncated != tc.truncOut {
				t.Errorf("stdout %d bytes truncated=%v, want %d truncated=%v", len(r.Stdout), r.StdoutTruncated, tc.wantOut, tc.truncOut)
			}
			if len(r.Stderr) != tc.wantEr || r.StderrTruncated != tc.truncErr {
				t.Errorf("stderr %d bytes truncated=%v, want %d truncated=%v", len(r.Stderr), r.StderrTruncated, tc.wantEr, tc.truncErr)
			}
		})
	}
}

func TestCopyStep(t *testing.T) {
	s := startSSHD(t)
	b := newBackend(t, testConfig(s))
	src := filepath.Join(t.TempDir(), "script.sh")
	content := "#!/bin/sh\necho \"from script: $1\"\n"
	if err := os.WriteFile(src, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(s.UserDir(t), "script.sh")
	if err := os.WriteFile(dest, []byte("old content"), 0o644); err != nil {
		t.Fatal(err)
	}
	uid, gid := ownerOf(t, filepath.Dir(dest))
	if err := os.Chown(dest, uid, gid); err != nil {
		t.Fatal(err)
	}
	r := run(t, b, "127.0.0.2", backend.Options{},
		backend.Step{Copy: &backend.Copy{Src: src, Dest: dest, Mode: 0o750}, Command: dest + " arg; stat -c %a " + dest},
		cmd("ls -A "+filepath.Dir(dest)))
	if r.Status != task.StatusOK {
		t.Fatalf("%s %q stderr %q", r.Status, r.Error, r.Stderr)
	}
	if want := "from script: arg\n750\nscript.sh\n"; r.Stdout != want {
		t.Fatalf("stdout %q, want %q (script output, mode, no temp file left)", r.Stdout, want)
	}
	got, err := os.ReadFile(dest)
	if err != nil || string(got) != content {
		t.Fatalf("dest = %q, %v", got, err)
	}

	// Copy-only step: ok with exit code 0.
	if r := run(t, b, "127.0.0.1", backend.Options{}, backend.Step{Copy: &backend.Copy{Src: src, Dest: dest, Mode: 0o600}}); r.Status != task.StatusOK || r.ExitCode != 0 {
		t.Fatalf("copy only: %s exit %d %q", r.Status, r.ExitCode, r.Error)
	}
	if fi, err := os.Stat(dest); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode after second copy: %v %v", fi.Mode(), err)
	}
}

func TestCopyFailures(t *testing.T) {
	s := startSSHD(t)
	b := newBackend(t, testConfig(s))
	src := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(src, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := s.UserDir(t)
	tests := []struct {
		name  string
		copy  backend.Copy
		wantE string
	}{
		{name: "missing source", copy: backend.Copy{Src: src + ".missing", Dest: dir + "/f", Mode: 0o644}, wantE: "no such file"},
		{name: "source is a directory", copy: backend.Copy{Src: filepath.Dir(src), Dest: dir + "/f", Mode: 0o644}, wantE: "not a regular file"},
		{name: "unwritable destination dir", copy: backend.Copy{Src: src, Dest: "/root/omstest-should-not-exist", Mode: 0o644}, wantE: "permission denied"},
		{name: "missing destination dir", copy: backend.Copy{Src: src, Dest: dir + "/nodir/f", Mode: 0o644}, wantE: "create"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.copy
			r := run(t, b, "127.0.0.1", backend.Options{}, backend.Step{Copy: &c, Command: "echo ran"})
			if r.Status != task.StatusFailed || !strings.Contains(strings.ToLower(r.Error), tc.wantE) {
				t.Fatalf("status %s error %q, want failed containing %q", r.Status, r.Error, tc.wantE)
			}
			if r.Stdout != "" {
				t.Fatalf("the command after a failed copy ran: %q", r.Stdout)
			}
		})
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("failed copies left files behind: %v", entries)
	}
}

func TestInvalidStepsRefusedBeforeConnecting(t *testing.T) {
	// No sshd: a refused step must not even dial (the port is closed).
	cfg := Config{User: "nobody", Port: closedPort(t), IdentityFiles: []string{writeKey(t)}, HostKeyPolicy: PolicyInsecureIgnore, AllowInsecureHostKey: true}
	b := newBackend(t, cfg)
	tests := []struct {
		name  string
		steps []backend.Step
		wantE string
	}{
		{name: "no steps", steps: nil, wantE: "no steps"},
		{name: "empty step", steps: []backend.Step{{Command: "  "}}, wantE: "neither a copy nor a command"},
		{name: "NUL in command", steps: []backend.Step{cmd("echo a\x00b")}, wantE: "NUL"},
		{name: "relative source", steps: []backend.Step{{Copy: &backend.Copy{Src: "f", Dest: "/tmp/f", Mode: 0o644}}}, wantE: "source"},
		{name: "relative dest", steps: []backend.Step{{Copy: &backend.Copy{Src: "/etc/hostname", Dest: "tmp/f", Mode: 0o644}}}, wantE: "destination"},
		{name: "unclean dest", steps: []backend.Step{{Copy: &backend.Copy{Src: "/etc/hostname", Dest: "/tmp/../etc/f", Mode: 0o644}}}, wantE: "destination"},
		{name: "dest is root", steps: []backend.Step{{Copy: &backend.Copy{Src: "/etc/hostname", Dest: "/", Mode: 0o644}}}, wantE: "destination"},
		{name: "setuid mode", steps: []backend.Step{{Copy: &backend.Copy{Src: "/etc/hostname", Dest: "/tmp/f", Mode: os.ModeSetuid | 0o755}}}, wantE: "permission bits"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := run(t, b, "127.0.0.1", backend.Options{}, tc.steps...)
			if r.Status != task.StatusFailed || !strings.Contains(r.Error, tc.wantE) || strings.Contains(r.Error, "refused") {
				t.Fatalf("status %s error %q, want failed with %q and no connection attempt", r.Status, r.Error, tc.wantE)
			}
		})
	}
}

func TestConcurrentHosts(t *testing.T) {
	s := startSSHD(t)
	b := newBackend(t, testConfig(s))
	const n = 20
	var wg sync.WaitGroup
	results := make([]task.HostResult, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ip := logicalHosts[i%len(logicalHosts)]
			results[i] = b.Run(context.Background(), task.Host{IP: ip, Name: fmt.Sprintf("h%d", i)},
				[]backend.Step{cmd(fmt.Sprintf("echo host-%d", i))}, backend.Options{Timeout: hangGuard})
		}()
	}
	wg.Wait()
	for i, r := range results {
		if r.Status != task.StatusOK || r.Stdout != fmt.Sprintf("host-%d\n", i) {
			t.Errorf("host %d: %s %q stdout %q", i, r.Status, r.Error, r.Stdout)
		}
	}
}

func TestHostOverrides(t *testing.T) {
	s := startSSHD(t)
	cfg := testConfig(s)
	cfg.User = "root" // refused by the test sshd (AllowUsers)
	cfg.Port = closedPort(t)
	// A host known only by name, reached through an address override.
	cfg.Hosts = map[string]HostConfig{
		"web-1":     {User: s.User, Port: s.Port, Address: "127.0.0.2"},
		"127.0.0.3": {User: s.User, Port: s.Port},
	}
	b := newBackend(t, cfg)
	r := b.Run(context.Background(), task.Host{Name: "web-1"}, []backend.Step{cmd("echo by-name")}, backend.Options{Timeout: hangGuard})
	if r.Status != task.StatusOK || r.Stdout != "by-name\n" {
		t.Fatalf("by name: %s %q", r.Status, r.Error)
	}
	if r := run(t, b, "127.0.0.3", backend.Options{}, cmd("true")); r.Status != task.StatusOK {
		t.Fatalf("by ip: %s %q", r.Status, r.Error)
	}
	if r := run(t, b, "127.0.0.1", backend.Options{}, cmd("true")); r.Status != task.StatusUnreachable {
		t.Fatalf("no override (closed default port): %s %q", r.Status, r.Error)
	}
}

func BenchmarkSSHRun(b *testing.B) {
	s := startSSHD(b)
	be := newBackend(b, testConfig(s))
	steps := []backend.Step{cmd("echo bench")}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r := be.Run(context.Background(), task.Host{IP: "127.0.0.1"}, steps, backend.Options{Timeout: hangGuard})
			if r.Status != task.StatusOK {
				b.Errorf("%s %q", r.Status, r.Error)
				return
			}
		}
	})
}

// Output reaches the OnOutput hook while the remote command runs: it
// prints a line, then waits for a file the test creates only once that
// line has arrived; without streaming the line would come only at the
// end, which never comes.
func TestOutputStreamsWhileRunning(t *testing.T) {
	s := startSSHD(t)
	b := newBackend(t, testConfig(s))
	gate := filepath.Join(s.UserDir(t), "gate")
	chunks := make(chan string, 16)
	done := make(chan task.HostResult, 1)
	go func() {
		done <- run(t, b, "127.0.0.2", backend.Options{OnOutput: func(st task.Stream, d []byte) { chunks <- string(st) + ":" + string(d) }},
			cmd("echo first; echo warn >&2; while [ ! -e '"+gate+"' ]; do sleep 0.05; done; echo second"))
	}()
	got := map[string]bool{}
	for len(got) < 2 {
		select {
		case c := <-chunks:
			got[c] = true
		case res := <-done:
			t.Fatalf("the command ended before its output arrived: %+v", res)
		case <-time.After(hangGuard):
			t.Fatalf("no output while the command runs (got %v)", got)
		}
	}
	if !got["stdout:first\n"] || !got["stderr:warn\n"] {
		t.Fatalf("chunks %v", got)
	}
	select {
	case res := <-done:
		t.Fatalf("Run returned while its command waits: %+v", res)
	default:
	}
	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	res := <-done
	if res.Status != task.StatusOK || res.Stdout != "first\nsecond\n" || res.Stderr != "warn\n" {
		t.Fatalf("result %+v", res)
	}
	if c := <-chunks; c != "stdout:second\n" {
		t.Fatalf("last chunk %q", c)
	}
}

// An sshd with more unauthenticated connections than its MaxStartups
// drops new ones before its banner. Connection setup is tried again with
// backoff, so a run succeeds once a slot frees; with one try it fails.
func TestHandshakeResetIsRetried(t *testing.T) {
	s := sshdtest.Start(t, sshdtest.WithListenAddrs(logicalHosts...), sshdtest.WithConfigLines("MaxStartups 2:100:2"))
	occupy := func() []net.Conn {
		var held []net.Conn
		for i := 0; i < 2; i++ {
			c, err := net.Dial("tcp", s.AddrFor("127.0.0.1"))
			if err != nil {
				t.Fatal(err)
			}
			// Wait for the banner: sshd counts the connection from now.
			if _, err := c.Read(make([]byte, 64)); err != nil {
				t.Fatalf("holding connection %d: %v", i, err)
			}
			held = append(held, c)
		}
		return held
	}
	release := func(held []net.Conn) {
		for _, c := range held {
			_ = c.Close()
		}
	}

	t.Run("one try fails", func(t *testing.T) {
		held := occupy()
		defer release(held)
		b := newBackend(t, testConfig(s))
		b.setupAttempts = 1
		r := run(t, b, "127.0.0.2", backend.Options{}, cmd("echo ran"))
		if r.Status != task.StatusUnreachable || r.Stdout != "" || !strings.Contains(r.Error, "reset the SSH handshake 1 times") {
			t.Fatalf("status %s error %q stdout %q, want unreachable after a reset", r.Status, r.Error, r.Stdout)
		}
	})
	t.Run("retried until a slot frees", func(t *testing.T) {
		held := occupy()
		b := newBackend(t, testConfig(s))
		time.AfterFunc(300*time.Millisecond, func() { release(held) })
		r := run(t, b, "127.0.0.2", backend.Options{}, cmd("echo ran"))
		if r.Status != task.StatusOK || r.Stdout != "ran\n" {
			t.Fatalf("status %s error %q stdout %q", r.Status, r.Error, r.Stdout)
		}
	})
	if !strings.Contains(s.Log(), "past MaxStartups") {
		t.Fatalf("sshd dropped no connection; its log:\n%s", s.Log())
	}
}

// Many hosts at once against one sshd with a low MaxStartups, as a fleet
// run through one bastion or the fan-out benchmark's 500 addresses: every
// host gets its command run exactly once.
func TestManyDialsAtOneBusySSHD(t *testing.T) {
	s := sshdtest.Start(t, sshdtest.WithListenAddrs(logicalHosts...), sshdtest.WithConfigLines("MaxStartups 4:50:8"))
	b := newBackend(t, testConfig(s))
	counter := filepath.Join(s.UserDir(t), "count")
	const n = 40
	results := make([]task.HostResult, n)
	var wg sync.WaitGroup
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// A connect timeout for a loaded test machine: the sshd admits
			// a few handshakes at a time.
			results[i] = run(t, b, logicalHosts[i%len(logicalHosts)], backend.Options{ConnectTimeout: 25 * time.Second}, cmd("echo x >> '"+counter+"'"))
		}()
	}
	wg.Wait()
	for i, r := range results {
		if r.Status != task.StatusOK {
			t.Errorf("host %d: %s %q", i, r.Status, r.Error)
		}
	}
	data, err := os.ReadFile(counter)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(string(data), "x\n"); got != n {
		t.Fatalf("%d executions, want %d", got, n)
	}
	t.Logf("sshd dropped %d connections past MaxStartups", strings.Count(s.Log(), "past MaxStartups"))
}
