package backend

import (
	"os/exec"
	"syscall"
	"testing"
)

func TestWatchdogCommandLocally(t *testing.T) {
	// The wrapper under a local sh, stdin an open pipe as sshd gives it.
	tests := []struct {
		cmd      string
		wantOut  string
		wantCode int
	}{
		{cmd: "echo hi; exit 4", wantOut: "hi\n", wantCode: 4},
		{cmd: "printf '%s' \"$0\"", wantOut: "sh", wantCode: 0},
		{cmd: "read x || echo eof", wantOut: "eof\n", wantCode: 0},
		{cmd: "echo 'it''s' \"$HOME\" >/dev/null; echo ok >&2", wantOut: "", wantCode: 0},
		{cmd: `echo "$#:$1:${omserver_cmd-unset}"`, wantOut: "0::unset\n", wantCode: 0},
		{cmd: "exit 7; echo never", wantOut: "", wantCode: 7},
		{cmd: "f() { return 3; }; f; echo $?", wantOut: "3\n", wantCode: 0},
		// $$ is the script's shell (the command runs in its subshell), as
		// sshd reports a command killed by a signal: no exit code.
		{cmd: "echo a; kill -9 $$", wantOut: "a\n", wantCode: -1},
	}
	for _, tc := range tests {
		c := exec.Command("sh", "-c", WatchdogCommand(tc.cmd))
		// Its own process group, as sshd and the local backend give it:
		// the watchdog signals the whole group.
		c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		stdin, err := c.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		out, err := c.Output()
		_ = stdin.Close()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("%q: %v", tc.cmd, err)
		}
		if string(out) != tc.wantOut || code != tc.wantCode {
			t.Errorf("%q: out %q code %d, want %q %d", tc.cmd, out, code, tc.wantOut, tc.wantCode)
		}
	}
}
