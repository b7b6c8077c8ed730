package sshdtest

import (
	"bytes"
	"fmt"
	"os"
	osexec "os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

func TestStartServesEveryListenAddress(t *testing.T) {
	s := Start(t, WithListenAddrs("127.0.0.1", "127.0.0.2", "127.0.0.3"))
	if len(s.Addrs) != 3 || s.Addr != s.Addrs[0] {
		t.Fatalf("Addrs = %v, Addr = %q", s.Addrs, s.Addr)
	}
	for _, addr := range s.Addrs {
		c := s.Dial(t, addr)
		sess, err := c.NewSession()
		if err != nil {
			t.Fatalf("%s: session: %v", addr, err)
		}
		// Other packages' tests share the account and may leave work
		// directories in its home; what must never appear is a shell rc file.
		out, err := sess.CombinedOutput(`id -un; echo "$HOME"; ls -A "$HOME" | grep -cE '^\.(profile|bashrc|bash_profile|bash_login|shrc|kshrc|zshrc|zprofile|cshrc|tcshrc|login)$'`)
		if err != nil && !strings.Contains(err.Error(), "status 1") { // grep -c exits 1 on zero matches
			t.Fatalf("%s: run: %v: %s", addr, err, out)
		}
		got := strings.Fields(string(out))
		want := []string{TestUser, TestUserHome, "0"}
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("%s: got %q, want %q (user, home, rc files in home)", addr, got, want)
		}
	}
}

func TestKnownHostsHoldsEveryAddress(t *testing.T) {
	s := Start(t, WithListenAddrs("127.0.0.1", "127.0.0.2"))
	data, err := os.ReadFile(s.KnownHostsFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, ip := range []string{"127.0.0.1", "127.0.0.2"} {
		if !strings.Contains(string(data), "["+ip+"]:") {
			t.Errorf("known_hosts lacks %s:\n%s", ip, data)
		}
	}
	if !bytes.Contains(data, []byte(strings.TrimSpace(string(ssh.MarshalAuthorizedKey(s.HostKey))))) {
		t.Errorf("known_hosts lacks the host key:\n%s", data)
	}
}

func TestUnauthorizedKeyIsRefused(t *testing.T) {
	s := Start(t)
	path, _ := NewKeyFile(t, t.TempDir())
	pem, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.ParsePrivateKey(pem)
	if err != nil {
		t.Fatal(err)
	}
	cfg := s.ClientConfig(t)
	cfg.Auth = []ssh.AuthMethod{ssh.PublicKeys(signer)}
	if c, err := ssh.Dial("tcp", s.Addr, cfg); err == nil {
		_ = c.Close()
		t.Fatal("login with an unauthorized key succeeded")
	}
}

func TestProcessesMatchingSeesAndLosesAProcess(t *testing.T) {
	s := Start(t)
	c := s.Dial(t, s.Addr)
	sess, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	// Unique to this sshd, so a parallel test binary's sleep is not it.
	marker := fmt.Sprintf("sleep 8%05d", s.Port)
	if err := sess.Start(marker + "; true"); err != nil {
		t.Fatal(err)
	}
	// The sleep itself, not just its parent shell: killing the shell
	// while it forks would leave the sleep behind.
	if pids := s.WaitProcesses(t, "^"+marker, 10*time.Second); len(pids) == 0 {
		t.Fatal("the remote sleep never showed up in pgrep")
	}
	if out, err := osexec.Command("pkill", "-u", TestUser, "-f", marker).CombinedOutput(); err != nil {
		t.Fatalf("pkill: %v: %s", err, out)
	}
	if left := s.WaitNoProcesses(t, marker, 10*time.Second); len(left) != 0 {
		t.Fatalf("processes still there: %v", left)
	}
}

func TestUserDirIsWritableRemotely(t *testing.T) {
	s := Start(t)
	dir := s.UserDir(t)
	if out, err := runRemote(t, s, "echo hi > "+filepath.Join(dir, "f")); err != nil {
		t.Fatalf("write in user dir: %v: %s", err, out)
	}
	got, err := os.ReadFile(filepath.Join(dir, "f"))
	if err != nil || string(got) != "hi\n" {
		t.Fatalf("file = %q, %v", got, err)
	}
}

func TestRejectsNonLoopbackListenAddress(t *testing.T) {
	ft := &fatalRecorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		Start(ft, WithListenAddrs("192.168.1.10"))
	}()
	<-done
	if !strings.Contains(ft.msg, "not a loopback IP") {
		t.Fatalf("Start with 192.168.1.10: got %q, want a loopback refusal", ft.msg)
	}
}

// fatalRecorder records Fatalf instead of failing the real test.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (f *fatalRecorder) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func runRemote(t *testing.T, s *Server, cmd string) ([]byte, error) {
	t.Helper()
	sess, err := s.Dial(t, s.Addr).NewSession()
	if err != nil {
		t.Fatal(err)
	}
	return sess.CombinedOutput(cmd)
}
