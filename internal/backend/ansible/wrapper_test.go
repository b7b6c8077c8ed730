package ansible

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// wrapperRun is what one run of the remote wrapper under a local sh left
// behind in dir: its exit code, stdout and stderr.
type wrapperRun struct {
	rc          int
	out, errOut string
}

// waitWrapperRun waits (bounded) for the rc file the session leader writes.
func waitWrapperRun(t *testing.T, dir string) wrapperRun {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		data, err := os.ReadFile(filepath.Join(dir, "rc"))
		if err == nil {
			text := strings.TrimSpace(string(data))
			rc, err := strconv.Atoi(text)
			if err != nil {
				t.Fatalf("session leader: %s", text)
			}
			out, _ := os.ReadFile(filepath.Join(dir, "out"))
			errOut, _ := os.ReadFile(filepath.Join(dir, "err"))
			return wrapperRun{rc: rc, out: string(out), errOut: string(errOut)}
		}
		if time.Now().After(deadline) {
			t.Fatal("the wrapper did not finish")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// sessionLeader is the session leader's script: it runs the wrapper ($W) as
// its child, as ansible's python module does under sshd's session shell,
// and records the result in $D. With ORPHAN set it first waits until it is
// re-parented to init, the state of a session whose ssh connection closed
// before the wrapper started.
const sessionLeader = `if [ -n "$ORPHAN" ]; then
  i=0
  while [ "$(sed 's/.*) //' /proc/$$/stat | cut -d' ' -f2)" != 1 ]; do
    i=$((i + 1))
    [ "$i" -le 600 ] || { echo "session leader not re-parented to pid 1 (a child subreaper above the test?)" > "$D/rc"; exit 1; }
    sleep 0.05
  done
fi
sh -c "$W" > "$D/out" 2> "$D/err"; echo $? > "$D/rc.tmp"; mv "$D/rc.tmp" "$D/rc"`

// TestRemoteWrapperSessionStates runs the wrapper under a local sh in the
// two states a session can be in when it starts: its ssh connection alive
// (sshd is the session leader's parent) and already gone (the leader was
// re-parented to init). A command started in the second state would never
// be stopped: the watchdog waits for the leader's parent to change.
func TestRemoteWrapperSessionStates(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Fatalf("the wrapper's watchdog needs Linux /proc: %v", err)
	}
	for _, tc := range []struct {
		name    string
		orphan  bool
		wantRC  int
		wantOut string
		wantErr string
		wantRan bool
	}{
		{name: "connection alive", wantRC: 3, wantOut: "ran\n", wantRan: true},
		{name: "connection already gone", orphan: true, wantRC: 255,
			wantErr: "the ssh connection closed before the command started"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			marker := filepath.Join(dir, "ran")
			env := append(os.Environ(),
				"W="+encodeCommand("touch '"+marker+"'; echo ran; exit 3"),
				"D="+dir)
			var c *exec.Cmd
			if tc.orphan {
				// The intermediate sh exits at once, so the new session's
				// leader is re-parented as sshd's session shell is when
				// the per-connection sshd exits.
				c = exec.Command("sh", "-c", `ORPHAN=1 setsid sh -c "$L" </dev/null >/dev/null 2>&1 &`)
			} else {
				// The test process plays the per-connection sshd.
				c = exec.Command("sh", "-c", sessionLeader)
				c.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
			}
			c.Env = append(env, "L="+sessionLeader)
			if out, err := c.CombinedOutput(); err != nil {
				t.Fatalf("start session: %v: %s", err, out)
			}
			r := waitWrapperRun(t, dir)
			if r.rc != tc.wantRC || r.out != tc.wantOut || !strings.Contains(r.errOut, tc.wantErr) {
				t.Fatalf("exit %d stdout %q stderr %q, want exit %d stdout %q stderr containing %q",
					r.rc, r.out, r.errOut, tc.wantRC, tc.wantOut, tc.wantErr)
			}
			if _, err := os.Stat(marker); (err == nil) != tc.wantRan {
				t.Fatalf("command ran: %v, want %v", err == nil, tc.wantRan)
			}
		})
	}
}
