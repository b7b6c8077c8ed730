package local

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/omserver/omserver-go/internal/backend"
	"github.com/omserver/omserver-go/internal/task"
)

func newBackend() *Backend { return New(zerolog.Nop()) }

func run(t *testing.T, b *Backend, h task.Host, opts backend.Options, steps ...backend.Step) task.HostResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return b.Run(ctx, h, steps, opts)
}

func cmd(c string) backend.Step { return backend.Step{Command: c} }

var localhost = task.Host{IP: "127.0.0.1", Name: "localhost"}

func TestRefusesOtherHosts(t *testing.T) {
	b := newBackend()
	hn, _ := os.Hostname()
	for _, h := range []task.Host{
		{IP: "192.0.2.10", Name: "web01"},
		{IP: "192.0.2.10", Name: "localhost"}, // the IP decides when there is one
		{IP: "192.0.2.10", Name: hn},
		{Name: "web01.example.com"},
		{IP: "web01.example.com"},
		{IP: "2001:db8::1"},
	} {
		marker := filepath.Join(t.TempDir(), "ran")
		res := run(t, b, h, backend.Options{}, cmd("touch "+marker))
		if res.Status != task.StatusUnreachable {
			t.Errorf("%s: status %s, want unreachable", h, res.Status)
		}
		if want := "local backend runs only on this host; refusing " + h.String(); res.Error != want {
			t.Errorf("%s: error %q, want %q", h, res.Error, want)
		}
		if _, err := os.Stat(marker); err == nil {
			t.Errorf("%s: the command ran on a refused host", h)
		}
	}
}

func TestAcceptsThisHost(t *testing.T) {
	b := newBackend()
	hn, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	hosts := []task.Host{
		{IP: "127.0.0.1"}, {IP: "127.0.0.2", Name: "anything"}, {IP: "::1"}, {IP: "::ffff:127.0.0.1"},
		{Name: "localhost"}, {Name: "LOCALHOST."}, {Name: hn}, {IP: "localhost"},
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && n.IP.To4() != nil {
			hosts = append(hosts, task.Host{IP: n.IP.String(), Name: "self"})
		}
	}
	for _, h := range hosts {
		res := run(t, b, h, backend.Options{}, cmd("echo hi"))
		if res.Status != task.StatusOK || res.Stdout != "hi\n" {
			t.Errorf("%s: %s %q %s", h, res.Status, res.Stdout, res.Error)
		}
	}
}

func TestRunResults(t *testing.T) {
	b := newBackend()
	cases := []struct {
		name      string
		steps     []backend.Step
		opts      backend.Options
		status    task.Status
		exit      int
		stdout    string
		stderr    string
		truncated bool
		errHas    string
	}{
		{"ok", []backend.Step{cmd("echo out; echo err >&2")}, backend.Options{}, task.StatusOK, 0, "out\n", "err\n", false, ""},
		{"non-zero exit", []backend.Step{cmd("echo before; exit 3")}, backend.Options{}, task.StatusFailed, 3, "before\n", "", false, "step 1: exit status 3"},
		{"stops at first failure", []backend.Step{cmd("echo one"), cmd("false"), cmd("echo three")}, backend.Options{}, task.StatusFailed, 1, "one\n", "", false, "step 2: exit status 1"},
		{"output cap", []backend.Step{cmd("head -c 5000 /dev/zero | tr '\\0' x")}, backend.Options{OutputCap: 100}, task.StatusOK, 0, strings.Repeat("x", 100), "", true, ""},
		{"no stdin", []backend.Step{cmd("cat; echo done")}, backend.Options{}, task.StatusOK, 0, "done\n", "", false, ""},
		// Long enough for a loaded machine to start sh and print "started".
		{"timeout", []backend.Step{cmd("echo started; sleep 300")}, backend.Options{Timeout: 2 * time.Second}, task.StatusTimeout, -1, "started\n", "", false, "timed out"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := run(t, b, localhost, tc.opts, tc.steps...)
			if res.Status != tc.status || res.ExitCode != tc.exit || res.Stdout != tc.stdout || res.Stderr != tc.stderr || res.StdoutTruncated != tc.truncated {
				t.Fatalf("got %s exit %d stdout %q stderr %q truncated %v err %q", res.Status, res.ExitCode, res.Stdout, res.Stderr, res.StdoutTruncated, res.Error)
			}
			if !strings.Contains(res.Error, tc.errHas) {
				t.Errorf("error %q does not contain %q", res.Error, tc.errHas)
			}
			if res.Started.IsZero() || res.Duration <= 0 || res.Host != localhost {
				t.Errorf("started %v duration %v host %v", res.Started, res.Duration, res.Host)
			}
		})
	}
}

// waitForPID reads the pid a command wrote to path.
func waitForPID(t *testing.T, path string) int {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		data, err := os.ReadFile(path)
		if err == nil && strings.HasSuffix(string(data), "\n") {
			pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
			if err != nil {
				t.Fatal(err)
			}
			return pid
		}
	}
	t.Fatalf("no pid in %s", path)
	return 0
}

// processGone reports, within a generous deadline, whether pid has exited
// (a zombie waiting for its reaper counts as gone).
func processGone(pid int) bool {
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if err := syscall.Kill(pid, 0); err == syscall.ESRCH {
			return true
		}
		stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			return true
		}
		if f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:])); len(f) > 0 && f[0] == "Z" {
			return true
		}
	}
	return false
}

// A cancelled or timed-out command is killed with its whole process
// group: the background sleep it started is gone afterwards.
func TestStopKillsProcessGroup(t *testing.T) {
	for _, mode := range []string{"cancel", "timeout"} {
		t.Run(mode, func(t *testing.T) {
			b := newBackend()
			pidFile := filepath.Join(t.TempDir(), "pid")
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			opts := backend.Options{}
			if mode == "timeout" {
				// Long enough for a loaded machine to start sh and
				// write the pid file before the timeout kills it.
				opts.Timeout = 2 * time.Second
			}
			done := make(chan task.HostResult, 1)
			go func() {
				done <- b.Run(ctx, localhost, []backend.Step{cmd("sleep 300 & echo $! > " + pidFile + "; wait")}, opts)
			}()
			pid := waitForPID(t, pidFile)
			if mode == "cancel" {
				cancel()
			}
			var res task.HostResult
			select {
			case res = <-done:
			case <-time.After(time.Minute):
				t.Fatal("Run did not return after cancellation")
			}
			want := map[string]task.Status{"cancel": task.StatusCancelled, "timeout": task.StatusTimeout}[mode]
			if res.Status != want {
				t.Errorf("status %s (%s), want %s", res.Status, res.Error, want)
			}
			if !processGone(pid) {
				syscall.Kill(pid, syscall.SIGKILL)
				t.Fatalf("sleep %d still running after %s", pid, mode)
			}
		})
	}
}

func TestCopyStep(t *testing.T) {
	b := newBackend()
	dir := t.TempDir()
	src := filepath.Join(dir, "src.conf")
	if err := os.WriteFile(src, []byte("setting = 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	destDir := filepath.Join(dir, "etc")
	if err := os.Mkdir(destDir, 0o755); err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(destDir, "app.conf")
	if err := os.WriteFile(dest, []byte("old\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	res := run(t, b, localhost, backend.Options{}, backend.Step{
		Copy:    &backend.Copy{Src: src, Dest: dest, Mode: 0o600},
		Command: "cat " + dest,
	})
	if res.Status != task.StatusOK || res.Stdout != "setting = 1\n" {
		t.Fatalf("copy then run: %s %q %s", res.Status, res.Stdout, res.Error)
	}
	fi, err := os.Stat(dest)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("dest mode %v, err %v", fi.Mode(), err)
	}
	entries, _ := os.ReadDir(destDir)
	if len(entries) != 1 {
		t.Errorf("temporary files left behind: %v", entries)
	}

	// Failures: missing source, missing destination directory. Nothing
	// is left behind and the command does not run.
	marker := filepath.Join(dir, "ran")
	for _, c := range []*backend.Copy{
		{Src: filepath.Join(dir, "missing"), Dest: dest, Mode: 0o644},
		{Src: src, Dest: filepath.Join(dir, "nodir", "app.conf"), Mode: 0o644},
	} {
		res := run(t, b, localhost, backend.Options{}, backend.Step{Copy: c, Command: "touch " + marker})
		if res.Status != task.StatusFailed || !strings.Contains(res.Error, "step 1:") {
			t.Errorf("copy %+v: %s %s", c, res.Status, res.Error)
		}
		if _, err := os.Stat(marker); err == nil {
			t.Errorf("command ran after a failed copy")
		}
	}
	if data, _ := os.ReadFile(dest); string(data) != "setting = 1\n" {
		t.Errorf("dest changed by a failed copy: %q", data)
	}
	if entries, _ := os.ReadDir(destDir); len(entries) != 1 {
		t.Errorf("temporary files left behind: %v", entries)
	}
}

func TestAlreadyCancelledRunsNothing(t *testing.T) {
	b := newBackend()
	marker := filepath.Join(t.TempDir(), "ran")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res := b.Run(ctx, localhost, []backend.Step{cmd("touch " + marker)}, backend.Options{})
	if res.Status != task.StatusCancelled {
		t.Errorf("status %s, want cancelled", res.Status)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("command ran on a cancelled context")
	}
}

// Module commands do not see the master's environment, which may hold
// secrets.
func TestCommandEnvironmentHasNoSecrets(t *testing.T) {
	t.Setenv("OMSERVER_SECRET_KEY", "s3cret-value")
	t.Setenv("OMSERVER_RELAY_PASSWORD", "pw-value")
	res := run(t, newBackend(), localhost, backend.Options{}, cmd("env; command -v sh"))
	if res.Status != task.StatusOK {
		t.Fatalf("%s %s", res.Status, res.Error)
	}
	if strings.Contains(res.Stdout, "s3cret-value") || strings.Contains(res.Stdout, "pw-value") {
		t.Fatalf("secrets leaked into the command environment:\n%s", res.Stdout)
	}
	if !strings.Contains(res.Stdout, "PATH=/usr/local/sbin:") || !strings.HasSuffix(res.Stdout, "/sh\n") {
		t.Fatalf("environment without a usable PATH:\n%s", res.Stdout)
	}
}

// Output reaches the OnOutput hook while the command runs: the command
// prints a line, then waits for a file the test creates only once that
// line has arrived; without streaming the line would come only at the
// end, which never comes.
func TestOutputStreamsWhileRunning(t *testing.T) {
	b := newBackend()
	gate := filepath.Join(t.TempDir(), "gate")
	chunks := make(chan string, 16)
	done := make(chan task.HostResult, 1)
	go func() {
		done <- run(t, b, localhost, backend.Options{OnOutput: func(s task.Stream, d []byte) { chunks <- string(s) + ":" + string(d) }},
			cmd("echo first; while [ ! -e '"+gate+"' ]; do sleep 0.05; done; echo second"))
	}()
	select {
	case c := <-chunks:
		if c != "stdout:first\n" {
			t.Fatalf("first chunk %q", c)
		}
	case res := <-done:
		t.Fatalf("the command ended before any output arrived: %+v", res)
	case <-time.After(30 * time.Second):
		t.Fatal("no output while the command runs")
	}
	select {
	case res := <-done:
		t.Fatalf("Run returned while its command waits: %+v", res)
	default:
	}
	if err := os.WriteFile(gate, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	res := <-done
	if res.Status != task.StatusOK || res.Stdout != "first\nsecond\n" {
		t.Fatalf("result %+v", res)
	}
	if c := <-chunks; c != "stdout:second\n" {
		t.Fatalf("second chunk %q", c)
	}
}

// TestHelperMaster is not a test: TestChildrenDieWithTheMaster runs this
// test binary again as a stand-in master that runs one long command.
func TestHelperMaster(t *testing.T) {
	pidFile := os.Getenv("OMSERVER_LOCAL_HELPER_PIDFILE")
	if pidFile == "" {
		t.Skip("helper process of TestChildrenDieWithTheMaster")
	}
	New(zerolog.Nop()).Run(context.Background(), localhost,
		[]backend.Step{cmd("sleep 7301 & echo $! > '" + pidFile + ".tmp'; mv '" + pidFile + ".tmp' '" + pidFile + "'; wait")}, backend.Options{})
	os.Exit(0)
}

// A kill -9 of the master takes its commands' process trees with it: the
// grandchild (a background sleep of the module's shell) is gone soon after.
func TestChildrenDieWithTheMaster(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "grandchild.pid")
	helper := exec.Command(os.Args[0], "-test.run=^TestHelperMaster$", "-test.count=1")
	helper.Env = append(os.Environ(), "OMSERVER_LOCAL_HELPER_PIDFILE="+pidFile)
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = helper.Process.Kill(); _ = helper.Wait() })
	var pid int
	for i := 0; ; i++ {
		if data, err := os.ReadFile(pidFile); err == nil {
			if pid, err = strconv.Atoi(strings.TrimSpace(string(data))); err != nil {
				t.Fatalf("pid file %q: %v", data, err)
			}
			break
		}
		if i == 600 {
			t.Fatal("the helper master never started its command")
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	if !processAlive(pid) {
		t.Fatalf("grandchild %d is not running", pid)
	}
	if err := helper.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = helper.Wait()
	for i := 0; processAlive(pid); i++ {
		if i == 300 { // 15 s: the watchdog needs well under a second
			t.Fatalf("grandchild %d outlived the kill -9 of its master", pid)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// processAlive reports whether pid runs (a zombie does not count).
func processAlive(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(stat), ')')
	return i >= 0 && i+2 < len(stat) && stat[i+2] != 'Z'
}
