package ssh

import (
	"os/exec"
	"testing"
	"time"

	"github.com/omserver/omserver-go/internal/backend"
)

// TestWatchdogStopsCommandWhenConnectionDrops shows why the watchdog exists:
// with the real sshd, a plain compound command outlives its dropped
// connection, the wrapped one does not.
func TestWatchdogStopsCommandWhenConnectionDrops(t *testing.T) {
	s := startSSHD(t)
	for _, tc := range []struct {
		name      string
		wrap      bool
		wantAlive bool
	}{
		{name: "plain command survives", wrap: false, wantAlive: true},
		{name: "wrapped command stopped", wrap: true, wantAlive: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			marker := remoteMarker(s, map[bool]int{false: 1, true: 2}[tc.wrap])
			t.Cleanup(func() { _ = exec.Command("pkill", "-u", s.User, "-f", marker).Run() })
			client := s.Dial(t, s.Addr)
			sess, err := client.NewSession()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := sess.StdinPipe(); err != nil {
				t.Fatal(err)
			}
			line := marker + "; true"
			if tc.wrap {
				line = backend.WatchdogCommand(line)
			}
			if err := sess.Start(line); err != nil {
				t.Fatal(err)
			}
			if len(s.WaitProcesses(t, "^"+marker, processGone)) == 0 {
				t.Fatal("the command never started")
			}
			_ = client.Close()
			// The wrapped command must go: wait for it as long as a
			// loaded machine may need (returning as soon as it is gone).
			// The plain one must survive sshd noticing the drop, which
			// takes milliseconds; a few seconds of it alive show that.
			limit := 3 * time.Second
			if tc.wrap {
				limit = processGone
			}
			left := s.WaitNoProcesses(t, marker, limit)
			if alive := len(left) > 0; alive != tc.wantAlive {
				t.Fatalf("after the connection dropped: processes %v, want alive=%v", left, tc.wantAlive)
			}
		})
	}
}
