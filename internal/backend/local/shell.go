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

	"github.com/omserver/omserver-go/internal/backend"
)

// pipeGrace is how long Run waits for output pipes after the shell exits,
// for when a background child it left behind still holds them open.
const pipeGrace = 2 * time.Second

// runShell runs command with /bin/sh in a new process group and kills the
// whole group when ctx ends. It returns the exit code (-1 when the shell
// did not exit normally); a shell that exited, whatever its code, is no
// error.
//
// The group also dies with the master, even by kill -9: the command runs
// under backend.WatchdogScript, whose stdin is a pipe only this process
// holds the write end of (close-on-exec, so no other child inherits it).
// When the master dies the kernel closes it, the watchdog reads end of
// file and kills the group. (Pdeathsig is not used: Linux sends it when
// the thread that forked the child exits, and the Go runtime may end
// threads while the master lives; it would also reach only the leader.)
func runShell(ctx context.Context, command string, stdout, stderr io.Writer) (int, error) {
	lifeline, keep, err := os.Pipe()
	if err != nil {
		return -1, fmt.Errorf("lifeline pipe: %w", err)
	}
	defer keep.Close()
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", backend.WatchdogScript, backend.WatchdogArg0, command)
	cmd.Stdin = lifeline
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
	err = cmd.Start()
	lifeline.Close() // the child has its copy
	if err != nil {
		return -1, fmt.Errorf("start /bin/sh: %w", err)
	}
	err = cmd.Wait()
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
