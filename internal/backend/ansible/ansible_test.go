package ansible

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/omserver/omserver-go/internal/backend"
	"github.com/omserver/omserver-go/internal/task"
	"github.com/omserver/omserver-go/internal/testutil/sshdtest"
)

// requireAnsible fails the test (skips under -short) when the ansible CLI
// is missing.
func requireAnsible(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("ansible"); err != nil {
		if testing.Short() {
			t.Skip("ansible missing; skipped under -short")
		}
		t.Fatal("ansible not found on PATH: install the Debian package ansible (ansible-core plus the ansible.posix collection)")
	}
}

// newBackend returns a backend that logs in to srv as its test user,
// checking host keys against knownHosts (srv's own file when "").
func newBackend(t *testing.T, srv *sshdtest.Server, knownHosts string) *Backend {
	t.Helper()
	if knownHosts == "" {
		knownHosts = srv.KnownHostsFile
	}
	b, err := New(Config{
		User:            srv.User,
		Port:            srv.Port,
		PrivateKeyFile:  srv.KeyFile,
		KnownHostsFile:  knownHosts,
		HostKeyChecking: true,
	}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// startSSHD starts a real sshd (sshdtest) after checking for ansible.
func startSSHD(t *testing.T) *sshdtest.Server {
	t.Helper()
	requireAnsible(t)
	return sshdtest.Start(t)
}

func run(t *testing.T, b *Backend, ip string, opts backend.Options, steps ...backend.Step) task.HostResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	return b.Run(ctx, task.Host{IP: ip, Name: "h-" + ip}, steps, opts)
}

// TestRunAgainstSSHD drives the real ansible against a real sshd. The
// cases share one sshd and run in parallel: each ansible call costs seconds.
func TestRunAgainstSSHD(t *testing.T) {
	t.Parallel()
	srv := startSSHD(t)
	b := newBackend(t, srv, "")
	destDir := srv.UserDir(t)
	src := filepath.Join(t.TempDir(), "app.conf")
	if err := os.WriteFile(src, []byte("listen 8080\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(destDir, "app.conf")

	tests := []struct {
		name         string
		ip           string
		opts         backend.Options
		steps        []backend.Step
		wantStatus   task.Status
		wantCode     int
		wantOut      string
		wantErr      string // substring of Error, "" for none
		orErr        string // another substring ansible may give instead
		wantOutTrunc bool
	}{
		{name: "ok command", ip: "127.0.0.1",
			steps:      []backend.Step{{Command: "echo hello; echo warn >&2; id -un"}},
			wantStatus: task.StatusOK, wantCode: 0, wantOut: "hello\nomstest\n"},
		{name: "non-zero exit", ip: "127.0.0.1",
			steps:      []backend.Step{{Command: "echo before; exit 3"}},
			wantStatus: task.StatusFailed, wantCode: 3, wantOut: "before\n", wantErr: "status 3"},
		{name: "template text is not rendered", ip: "127.0.0.1",
			steps:      []backend.Step{{Command: `printf '%s\n' '{{ 7*7 }}' "{% raw %}" '$(id)'`}},
			wantStatus: task.StatusOK, wantCode: 0, wantOut: "{{ 7*7 }}\n{% raw %}\n$(id)\n"},
		{name: "output cap", ip: "127.0.0.1", opts: backend.Options{OutputCap: 100},
			steps:      []backend.Step{{Command: "head -c 5000 /dev/zero | tr '\\0' x"}},
			wantStatus: task.StatusOK, wantCode: 0, wantOut: strings.Repeat("x", 100), wantOutTrunc: true},
		{name: "stops at the first failing step", ip: "127.0.0.1",
			steps:      []backend.Step{{Command: "echo one"}, {Command: "false"}, {Command: "echo three"}},
			wantStatus: task.StatusFailed, wantCode: 1, wantOut: "one\n", wantErr: "step 2"},
		{name: "copy then command", ip: "127.0.0.1",
			steps: []backend.Step{
				{Copy: &backend.Copy{Src: src, Dest: dest, Mode: 0o640}},
				{Command: "cat " + dest + "; stat -c %a " + dest},
			},
			wantStatus: task.StatusOK, wantCode: 0, wantOut: "listen 8080\n640\n"},
		{name: "copy into a missing directory fails", ip: "127.0.0.1",
			steps:      []backend.Step{{Copy: &backend.Copy{Src: src, Dest: "/nonexistent-dir/x/app.conf"}, Command: "echo never"}},
			wantStatus: task.StatusFailed, wantCode: -1, wantOut: "", wantErr: "copy to /nonexistent-dir/x/app.conf failed"},
		// With pipelining ansible writes the module to ssh's stdin; when
		// ssh has already died of the refused connection (a loaded
		// machine delays that write), ansible reports the broken pipe and
		// drops ssh's "Connection refused". Either way: unreachable.
		{name: "unreachable (closed port)", ip: "127.0.0.2",
			steps:      []backend.Step{{Command: "echo never"}},
			wantStatus: task.StatusUnreachable, wantCode: -1, wantErr: "Connection refused",
			orErr: "Data could not be sent to remote host \"127.0.0.2\""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := run(t, b, tc.ip, tc.opts, tc.steps...)
			if r.Status != tc.wantStatus || r.ExitCode != tc.wantCode {
				t.Fatalf("status %s exit %d, want %s exit %d (error %q, stderr %q)", r.Status, r.ExitCode, tc.wantStatus, tc.wantCode, r.Error, r.Stderr)
			}
			if r.Stdout != tc.wantOut {
				t.Errorf("stdout %q, want %q", r.Stdout, tc.wantOut)
			}
			if r.StdoutTruncated != tc.wantOutTrunc {
				t.Errorf("stdout truncated %v, want %v", r.StdoutTruncated, tc.wantOutTrunc)
			}
			errOK := strings.Contains(r.Error, tc.wantErr) || tc.orErr != "" && strings.Contains(r.Error, tc.orErr)
			if tc.wantErr == "" && r.Error != "" || !errOK {
				t.Errorf("error %q, want it to contain %q (or %q)", r.Error, tc.wantErr, tc.orErr)
			}
			if r.Host.IP != tc.ip || r.Started.IsZero() || r.Duration <= 0 {
				t.Errorf("host %v started %v duration %v", r.Host, r.Started, r.Duration)
			}
		})
	}
	t.Run("stderr kept", func(t *testing.T) {
		t.Parallel()
		r := run(t, b, "127.0.0.1", backend.Options{}, backend.Step{Command: "echo oops >&2; exit 0"})
		if r.Status != task.StatusOK || r.Stderr != "oops\n" {
			t.Fatalf("status %s stderr %q error %q", r.Status, r.Stderr, r.Error)
		}
	})
}

func TestHostKeyRefused(t *testing.T) {
	t.Parallel()
	srv := startSSHD(t)
	_, otherKey := sshdtest.NewKeyFile(t, t.TempDir())
	dir := t.TempDir()
	changed := filepath.Join(dir, "changed")
	if err := os.WriteFile(changed, []byte(knownhosts.Line([]string{srv.Addr}, otherKey)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	unknown := filepath.Join(dir, "empty")
	if err := os.WriteFile(unknown, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for name, kh := range map[string]string{"changed key": changed, "unknown host": unknown} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			marker := filepath.Join(srv.UserDir(t), "ran")
			r := run(t, newBackend(t, srv, kh), "127.0.0.1", backend.Options{}, backend.Step{Command: "touch " + marker})
			// ansible usually relays ssh's "Host key verification failed";
			// under load it may instead lose that line in a race with its
			// own write to the dying ssh and say "Data could not be sent"
			// (still unreachable). Either way nothing may run.
			hostKeyErr := strings.HasPrefix(r.Error, "step 1: host key verification failed")
			lostRace := strings.Contains(r.Error, "Data could not be sent to remote host")
			if r.Status != task.StatusUnreachable || !(hostKeyErr || lostRace) {
				t.Fatalf("status %s error %q, want unreachable with a host key error", r.Status, r.Error)
			}
			if _, err := os.Stat(marker); err == nil {
				t.Fatal("the command ran on a host whose key was refused")
			}
		})
	}
}

// stopTest starts a long remote command, stops the run by cancelling it or
// by its timeout, and checks the status and that the remote process is gone.
func stopTest(t *testing.T, timeout time.Duration, cancelRun bool, want task.Status) {
	srv := startSSHD(t)
	b := newBackend(t, srv, "")
	// A unique sleep length marks this test's remote process.
	marker := fmt.Sprintf("sleep %d", 3000+srv.Port)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan task.HostResult, 1)
	go func() {
		done <- b.Run(ctx, task.Host{IP: "127.0.0.1"}, []backend.Step{{Command: marker + "; echo after"}}, backend.Options{Timeout: timeout})
	}()

	var r task.HostResult
	started := false
	deadline := time.Now().Add(2 * time.Minute)
	for !started && time.Now().Before(deadline) {
		select {
		case r = <-done:
			// Only the timeout can end the run before the command starts
			// (ansible slower than the timeout on a loaded machine).
			if cancelRun {
				t.Fatalf("run ended before it was cancelled: %+v", r)
			}
			t.Logf("timeout hit before the remote command started; remote cleanup not exercised")
			deadline = time.Time{}
		case <-time.After(100 * time.Millisecond):
			started = len(srv.ProcessesMatching(t, marker)) > 0
		}
	}
	if started {
		if cancelRun {
			cancel()
		}
		select {
		case r = <-done:
		case <-time.After(2 * time.Minute):
			t.Fatal("Run did not return within two minutes of being stopped")
		}
	} else if r.Status == "" {
		t.Fatalf("remote %q never started", marker)
	}
	if r.Status != want || r.ExitCode != -1 || r.Stdout != "" || !strings.Contains(r.Error, string(want)) {
		t.Fatalf("status %s exit %d stdout %q error %q, want %s", r.Status, r.ExitCode, r.Stdout, r.Error, want)
	}
	if left := srv.WaitNoProcesses(t, marker, 30*time.Second); len(left) != 0 {
		t.Fatalf("remote processes %v still running after the run stopped", left)
	}
}

func TestCancelStopsRemoteCommand(t *testing.T) {
	t.Parallel()
	stopTest(t, 0, true, task.StatusCancelled)
}

func TestTimeoutStopsRemoteCommand(t *testing.T) {
	t.Parallel()
	stopTest(t, 15*time.Second, false, task.StatusTimeout)
}

func TestNewRejectsBadConfig(t *testing.T) {
	requireAnsible(t)
	notExec := filepath.Join(t.TempDir(), "ansible")
	if err := os.WriteFile(notExec, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"missing binary", Config{Binary: "/nonexistent/bin/ansible"}, "install the Debian package ansible"},
		{"binary not on PATH", Config{Binary: "ansible-does-not-exist"}, "not usable"},
		{"binary not executable", Config{Binary: notExec}, "not usable"},
		{"negative port", Config{Port: -1}, "port"},
		{"port too large", Config{Port: 70000}, "port"},
		{"user with space", Config{User: "a b"}, "user"},
		{"user with template", Config{User: "{{x}}"}, "user"},
		{"relative key file", Config{PrivateKeyFile: "id_ed25519"}, "absolute path"},
		{"missing key file", Config{PrivateKeyFile: "/nonexistent/key"}, "private key file"},
		{"known hosts with space", Config{KnownHostsFile: "/tmp/a b"}, "known hosts file"},
		{"bad extra env", Config{ExtraEnv: []string{"NOEQUALS"}}, "KEY=value"},
		{"negative connect timeout", Config{ConnectTimeout: -time.Second}, "timeout"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := New(tc.cfg, zerolog.Nop())
			if err == nil || b != nil {
				t.Fatalf("New accepted %+v", tc.cfg)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %q, want it to mention %q", err, tc.wantErr)
			}
		})
	}
}

// A binary that prints no JSON (here /bin/false) gives a clear failure.
func TestBinaryWithoutJSONOutput(t *testing.T) {
	b, err := New(Config{Binary: "/bin/false"}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	r := run(t, b, "127.0.0.1", backend.Options{}, backend.Step{Command: "true"})
	if r.Status != task.StatusFailed || !strings.Contains(r.Error, "exit status 1") || !strings.Contains(r.Error, "no JSON") {
		t.Fatalf("status %s error %q", r.Status, r.Error)
	}
}

// Bad steps and hosts are refused before ansible starts (so these run with
// any binary, quickly).
func TestRefusedBeforeRunning(t *testing.T) {
	b, err := New(Config{Binary: "/bin/false"}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(src, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		host       task.Host
		steps      []backend.Step
		wantStatus task.Status
		wantErr    string
	}{
		{"no steps", task.Host{IP: "127.0.0.1"}, nil, task.StatusFailed, "no steps"},
		{"empty step", task.Host{IP: "127.0.0.1"}, []backend.Step{{Command: "  "}}, task.StatusFailed, "neither"},
		{"nul in command", task.Host{IP: "127.0.0.1"}, []backend.Step{{Command: "echo a\x00b"}}, task.StatusFailed, "NUL"},
		{"relative copy source", task.Host{IP: "127.0.0.1"}, []backend.Step{{Copy: &backend.Copy{Src: "f", Dest: "/tmp/f"}}}, task.StatusFailed, "copy source"},
		{"missing copy source", task.Host{IP: "127.0.0.1"}, []backend.Step{{Copy: &backend.Copy{Src: "/nonexistent/f", Dest: "/tmp/f"}}}, task.StatusFailed, "no such file"},
		{"directory copy source", task.Host{IP: "127.0.0.1"}, []backend.Step{{Copy: &backend.Copy{Src: filepath.Dir(src), Dest: "/tmp/f"}}}, task.StatusFailed, "regular file"},
		{"template in copy dest", task.Host{IP: "127.0.0.1"}, []backend.Step{{Copy: &backend.Copy{Src: src, Dest: "/tmp/{{x}}"}}}, task.StatusFailed, "template"},
		{"unclean copy dest", task.Host{IP: "127.0.0.1"}, []backend.Step{{Copy: &backend.Copy{Src: src, Dest: "/tmp/../etc/x"}}}, task.StatusFailed, "clean absolute"},
		{"bad mode", task.Host{IP: "127.0.0.1"}, []backend.Step{{Copy: &backend.Copy{Src: src, Dest: "/tmp/f", Mode: os.ModeSetuid | 0o755}}}, task.StatusFailed, "permission bits"},
		{"injected ip", task.Host{IP: "127.0.0.1 ansible_user=root"}, []backend.Step{{Command: "true"}}, task.StatusUnreachable, "not an IP"},
		{"template in name", task.Host{Name: "{{ lookup('pipe','id') }}"}, []backend.Step{{Command: "true"}}, task.StatusUnreachable, "not a DNS name"},
		{"no address", task.Host{}, []backend.Step{{Command: "true"}}, task.StatusUnreachable, "not a DNS name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := b.Run(context.Background(), tc.host, tc.steps, backend.Options{})
			if r.Status != tc.wantStatus || r.ExitCode != -1 || !strings.Contains(r.Error, tc.wantErr) {
				t.Fatalf("status %s exit %d error %q, want %s mentioning %q", r.Status, r.ExitCode, r.Error, tc.wantStatus, tc.wantErr)
			}
		})
	}
}

// ansible gets only what it needs from the master's environment: never
// its secrets.
func TestEnvironmentDoesNotLeakSecrets(t *testing.T) {
	t.Setenv("SECRET_KEY", "s3cret")
	t.Setenv("OMSERVER_RELAY_PASSWORD", "pw")
	b, err := New(Config{Binary: "/bin/true", ExtraEnv: []string{"ANSIBLE_PYTHON_INTERPRETER=/usr/bin/python3", "ANSIBLE_STDOUT_CALLBACK=yaml"}}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	env := b.environ("/run/x")
	last := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		last[k] = v
	}
	for _, k := range []string{"SECRET_KEY", "OMSERVER_RELAY_PASSWORD"} {
		if _, ok := last[k]; ok {
			t.Errorf("%s passed to ansible", k)
		}
	}
	if last["ANSIBLE_PYTHON_INTERPRETER"] != "/usr/bin/python3" {
		t.Error("extra environment not passed")
	}
	if last["ANSIBLE_STDOUT_CALLBACK"] != StdoutCallback {
		t.Errorf("extra environment replaced the stdout callback: %q", last["ANSIBLE_STDOUT_CALLBACK"])
	}
	if last["ANSIBLE_CONFIG"] != "/run/x/ansible.cfg" || last["ANSIBLE_HOST_KEY_CHECKING"] != "false" {
		t.Errorf("config %q host key checking %q", last["ANSIBLE_CONFIG"], last["ANSIBLE_HOST_KEY_CHECKING"])
	}
}
