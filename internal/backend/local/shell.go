package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// pipeGrace is how long Run waits for output pipes after the shell exits,
// for when a background child it left behind still holds them open.
const pipeGrace = 2 * time.Second

// runShell runs command with /bin/sh -c in a new process group and kills
// the whole group when ctx ends. It returns the exit code (-1 when the
// shell did not exit normally); a shell that exited, whatever its code, is
// no error.
func runShell(ctx context.Context, command string, stdout, stderr io.Writer) (int, error) {
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", command)
	cmd.Stdin = nil
	cmd.Stdout = stdout
	cmd.Stderr = stderr
	cmd.Dir = "/"
	cmd.Env = commandEnv()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		// Negative pid: the whole group, so children of the shell die too.
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	cmd.WaitDelay = pipeGrace
	if err := cmd.Start(); err != nil {
		return -1, fmt.Errorf("start /bin/sh: %w", err)
	}
	err := cmd.Wait()
	if ctx.Err() != nil {
		// Make sure nothing of the group survives, even when the shell
		// itself exited before the kill.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	code := -1
	if cmd.ProcessState != nil {
		code = cmd.ProcessState.ExitCode()
	}
	switch {
	case ctx.Err() != nil && (err != nil || code != 0):
		return -1, errors.New("the command's process group was killed")
	case err == nil, errors.Is(err, exec.ErrWaitDelay) && code >= 0:
		return code, nil
	case code > 0:
		return code, nil
	default:
		return code, fmt.Errorf("command: %w", err)
	}
}

// commandEnv is the whole environment of a module command: a fixed PATH
// and locale, plus HOME and USER. Nothing else of the master's environment
// is passed on, since it may hold SECRET_KEY or the relay password.
func commandEnv() []string {
	env := []string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"LANG=C.UTF-8",
	}
	if home, err := os.UserHomeDir(); err == nil {
		env = append(env, "HOME="+home)
	}
	if u := os.Getenv("USER"); u != "" {
		env = append(env, "USER="+u)
	}
	return env
}
