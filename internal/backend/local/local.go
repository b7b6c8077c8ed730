// Package local is the backend that runs module steps on the master's own
// host: for the embedded demo and single-host setups. It refuses every
// target that is not this host, so a mistaken inventory entry can never
// make it run a command meant for another server here.
package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/omserver/omserver-go/internal/backend"
	"github.com/omserver/omserver-go/internal/task"
)

// Name is the backend's name in configuration and module files.
const Name = "local"

// pipeGrace is how long Run waits for output pipes after the shell exits,
// for when a background child it left behind still holds them open.
const pipeGrace = 2 * time.Second

// Backend runs steps with /bin/sh on this host.
type Backend struct {
	log zerolog.Logger
	// hostname and addrs identify this host; fields so tests can vary them.
	hostname func() (string, error)
	addrs    func() ([]net.Addr, error)
}

// New returns a local backend.
func New(log zerolog.Logger) *Backend {
	return &Backend{
		log:      log.With().Str("backend", Name).Logger(),
		hostname: os.Hostname,
		addrs:    net.InterfaceAddrs,
	}
}

// Name implements backend.Backend.
func (b *Backend) Name() string { return Name }

// Run implements backend.Backend.
func (b *Backend) Run(ctx context.Context, host task.Host, steps []backend.Step, opts backend.Options) task.HostResult {
	res, out := backend.NewResult(host, opts)
	stdout, stderr := out.Stdout, out.Stderr
	finish := func(st task.Status, msg string) task.HostResult {
		res.Status = st
		res.Error = msg
		out.Fill(&res)
		return res
	}
	if err := b.checkThisHost(host); err != nil {
		b.log.Warn().Str("host", host.String()).Err(err).Msg("refused target")
		return finish(task.StatusUnreachable, err.Error())
	}

	hr := backend.NewHostRun(ctx, opts.Timeout)
	defer hr.Close()
	runCtx := hr.Ctx
	// stopped says why runCtx ended, when it did.
	stopped := func() (task.Status, string, bool) {
		st, ok := hr.Stopped()
		switch {
		case !ok:
			return "", "", false
		case st == task.StatusCancelled:
			return st, "cancelled", true
		}
		return st, fmt.Sprintf("timed out after %s", time.Since(res.Started).Round(time.Millisecond)), true
	}

	for i, st := range steps {
		if status, msg, done := stopped(); done {
			return finish(status, msg)
		}
		if st.Copy != nil {
			if err := copyFile(st.Copy); err != nil {
				return finish(task.StatusFailed, fmt.Sprintf("step %d: %v", i+1, err))
			}
		}
		if st.Command == "" {
			continue
		}
		code, err := runShell(runCtx, st.Command, stdout, stderr)
		res.ExitCode = code
		if status, msg, done := stopped(); done {
			return finish(status, msg)
		}
		if err != nil {
			return finish(task.StatusFailed, fmt.Sprintf("step %d: %v", i+1, err))
		}
	}
	return finish(task.StatusOK, "")
}

// runShell runs command with /bin/sh -c in a new process group and kills
// the whole group when ctx ends. It returns the exit code (-1 when the
// shell did not exit normally).
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
	case err == nil, errors.Is(err, exec.ErrWaitDelay) && code == 0:
		return code, nil
	case code > 0:
		return code, fmt.Errorf("exit status %d", code)
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

// copyFile copies c.Src to c.Dest with c.Mode, through a temporary file in
// the destination directory renamed into place, so readers never see a
// half-written file. The destination directory must exist.
func copyFile(c *backend.Copy) error {
	in, err := os.Open(c.Src)
	if err != nil {
		return fmt.Errorf("copy: %w", err)
	}
	defer in.Close()
	dir, base := filepath.Split(c.Dest)
	tmp, err := os.CreateTemp(dir, "."+base+".omserver-*")
	if err != nil {
		return fmt.Errorf("copy to %s: %w", c.Dest, err)
	}
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err := io.Copy(tmp, in); err != nil {
		return fmt.Errorf("copy %s to %s: %w", c.Src, c.Dest, err)
	}
	if err := tmp.Chmod(c.Mode.Perm()); err != nil {
		return fmt.Errorf("copy to %s: %w", c.Dest, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("copy to %s: %w", c.Dest, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("copy to %s: %w", c.Dest, err)
	}
	if err := os.Rename(tmp.Name(), c.Dest); err != nil {
		return fmt.Errorf("copy to %s: %w", c.Dest, err)
	}
	ok = true
	return nil
}

// checkThisHost accepts the target only when it is this host: by its IP
// when one is given (a loopback address or an address of one of this
// host's interfaces), else by its name ("localhost" or this hostname).
func (b *Backend) checkThisHost(h task.Host) error {
	refuse := fmt.Errorf("local backend runs only on this host; refusing %s", h)
	if h.IP != "" {
		ip, err := netip.ParseAddr(h.IP)
		if err != nil {
			// Not an address: treat the field as a name.
			if b.isThisName(h.IP) {
				return nil
			}
			return refuse
		}
		ip = ip.WithZone("").Unmap()
		if ip.IsLoopback() {
			return nil
		}
		addrs, err := b.addrs()
		if err != nil {
			return fmt.Errorf("local backend cannot list this host's addresses (%v); refusing %s", err, h)
		}
		for _, a := range addrs {
			var cand net.IP
			switch v := a.(type) {
			case *net.IPNet:
				cand = v.IP
			case *net.IPAddr:
				cand = v.IP
			}
			if c, ok := netip.AddrFromSlice(cand); ok && c.Unmap() == ip {
				return nil
			}
		}
		return refuse
	}
	if b.isThisName(h.Name) {
		return nil
	}
	return refuse
}

func (b *Backend) isThisName(name string) bool {
	name = strings.TrimSuffix(strings.ToLower(name), ".")
	if name == "localhost" {
		return true
	}
	hn, err := b.hostname()
	return err == nil && name != "" && strings.EqualFold(name, strings.TrimSuffix(hn, "."))
}
