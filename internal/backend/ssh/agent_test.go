package ssh

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/omserver/omserver-go/internal/backend"
	"github.com/omserver/omserver-go/internal/task"
	"github.com/omserver/omserver-go/internal/testutil/sshdtest"
)

// startAgent starts a real ssh-agent on a private socket holding keyFile.
func startAgent(t *testing.T, keyFile string) string {
	t.Helper()
	if _, err := exec.LookPath("ssh-agent"); err != nil {
		t.Fatal("ssh-agent missing: install openssh-client")
	}
	sock := filepath.Join(t.TempDir(), "agent.sock")
	cmd := exec.Command("ssh-agent", "-D", "-a", sock)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start ssh-agent: %v", err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("ssh-agent socket never appeared")
		}
		time.Sleep(20 * time.Millisecond)
	}
	add := exec.Command("ssh-add", keyFile)
	add.Env = append(os.Environ(), "SSH_AUTH_SOCK="+sock)
	if out, err := add.CombinedOutput(); err != nil {
		t.Fatalf("ssh-add: %v: %s", err, out)
	}
	return sock
}

func TestAgentAuth(t *testing.T) {
	s := startSSHD(t)
	sock := startAgent(t, s.KeyFile)

	t.Run("agent only", func(t *testing.T) {
		cfg := testConfig(s)
		cfg.IdentityFiles = nil
		cfg.UseAgent, cfg.AgentSocket = true, sock
		b := newBackend(t, cfg)
		if r := run(t, b, "127.0.0.2", backend.Options{}, cmd("echo via-agent")); r.Status != task.StatusOK || r.Stdout != "via-agent\n" {
			t.Fatalf("%s %q %q", r.Status, r.Error, r.Stdout)
		}
	})
	t.Run("from SSH_AUTH_SOCK", func(t *testing.T) {
		t.Setenv("SSH_AUTH_SOCK", sock)
		cfg := testConfig(s)
		cfg.IdentityFiles = nil
		cfg.UseAgent = true
		b := newBackend(t, cfg)
		if r := run(t, b, "127.0.0.3", backend.Options{}, cmd("true")); r.Status != task.StatusOK {
			t.Fatalf("%s %q", r.Status, r.Error)
		}
	})
	t.Run("wrong file key then agent key", func(t *testing.T) {
		cfg := testConfig(s)
		wrong, _ := sshdtest.NewKeyFile(t, t.TempDir())
		cfg.IdentityFiles = []string{wrong}
		cfg.UseAgent, cfg.AgentSocket = true, sock
		b := newBackend(t, cfg)
		if r := run(t, b, "127.0.0.1", backend.Options{}, cmd("true")); r.Status != task.StatusOK {
			t.Fatalf("%s %q", r.Status, r.Error)
		}
	})
	t.Run("agent gone", func(t *testing.T) {
		cfg := testConfig(s)
		cfg.IdentityFiles = nil
		cfg.UseAgent, cfg.AgentSocket = true, sock+".missing"
		b := newBackend(t, cfg)
		r := run(t, b, "127.0.0.1", backend.Options{}, cmd("true"))
		if r.Status != task.StatusUnreachable || !strings.Contains(r.Error, "ssh-agent at "+sock+".missing") {
			t.Fatalf("%s %q, want unreachable naming the agent socket", r.Status, r.Error)
		}
	})
}
