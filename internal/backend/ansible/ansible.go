// Package ansible is the backend that drives the real ansible ad-hoc
// command-line tool: one ansible process per step and host, a generated
// inventory and config in a private temporary directory, and the
// ansible.posix.json stdout callback parsed into task.HostResult.
//
// Ansible templates (Jinja2) module arguments and inventory variables on
// the master. A module's command may carry operator-supplied parameter
// values, so the command never reaches ansible as text: it is sent
// base64-encoded and decoded by the remote shell, and every other value
// that reaches ansible is checked to hold no template delimiters.
//
// Costs and limits: every step starts a fresh ansible process (about a
// second or two of CPU on the master before any ssh traffic), so with many
// hosts the ssh backend is much lighter. Cancellation and timeouts kill the
// local ansible process group; the remote command is then stopped by a
// small watchdog that relies on Linux /proc on the target (without it the
// remote command runs to its end). Command output passes through ansible's
// shell module, which holds it in memory on the target and the master
// before the backend caps it.
package ansible

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/omserver/omserver-go/internal/backend"
	"github.com/omserver/omserver-go/internal/task"
)

// StdoutCallback is the machine-readable callback the backend parses. In
// ansible-core the short name "json" redirects to it.
const StdoutCallback = "ansible.posix.json"

// inventoryAlias names the single host of each generated inventory; the
// real address is its ansible_host.
const inventoryAlias = "omserver_target"

// ansibleStderrCap bounds what is kept of ansible's own stderr, used only
// in error messages.
const ansibleStderrCap = 8 << 10

// waitDelay bounds how long Run waits for ansible's pipes after killing it.
const waitDelay = 5 * time.Second

// Backend runs steps through the ansible CLI: the step runner over
// sessions that each own a private work directory. Safe for concurrent
// use: each host's run has its own directory and processes. Output is
// passed on when ansible reports the host's result for a command (its JSON
// callback holds it until then).
type Backend struct {
	*backend.Runner
	cfg Config
	log zerolog.Logger
}

var _ backend.Backend = (*Backend)(nil)

// New checks cfg (the ansible binary must exist and be executable) and
// returns the backend.
func New(cfg Config, log zerolog.Logger) (*Backend, error) {
	c, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	b := &Backend{cfg: c, log: log.With().Str("backend", "ansible").Logger()}
	b.Runner = backend.NewRunner("ansible", b, 0)
	return b, nil
}

// Connect implements backend.Connector: it checks the target's address and
// writes the host's inventory and ansible.cfg; ansible itself connects at
// each step.
func (b *Backend) Connect(_ context.Context, host task.Host, opts backend.Options) (backend.Session, error) {
	addr, err := targetAddress(host.IP, host.Name)
	if err != nil {
		return nil, err
	}
	dir, err := b.prepare(addr, opts.ConnectTimeoutOr(b.cfg.ConnectTimeout))
	if err != nil {
		return nil, backend.WithStatus(task.StatusFailed, err)
	}
	return &session{b: b, dir: dir}, nil
}

// CheckStep implements backend.StepChecker: ansible renders templates in
// module arguments on the master, and copies only regular files.
func (b *Backend) CheckStep(s backend.Step) error {
	c := s.Copy
	if c == nil {
		return nil
	}
	if hasJinja(c.Src) || hasJinja(c.Dest) {
		return errors.New("copy paths may not contain template delimiters ({{, {%, {#)")
	}
	st, err := os.Stat(c.Src)
	if err != nil {
		return fmt.Errorf("copy source: %w", err)
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("copy source %s is not a regular file", c.Src)
	}
	return nil
}

// session is one host's run: one ansible invocation per copy and per
// command, in the host's work directory.
type session struct {
	b   *Backend
	dir string
}

// errKilled is what a step stopped by cancel or timeout reports.
var errKilled = errors.New("ansible and its ssh connection were killed")

func (s *session) Copy(ctx context.Context, c *backend.Copy) error {
	args := map[string]any{"src": c.Src, "dest": c.Dest}
	if perm := c.Mode.Perm(); perm != 0 {
		args["mode"] = fmt.Sprintf("%04o", uint32(perm))
	}
	r, err := s.b.invoke(ctx, s.dir, "copy", args)
	if err := outcome(ctx, r, err, "copy"); err != nil {
		return err
	}
	if r.Failed {
		return errors.New(failureText(r))
	}
	return nil
}

func (s *session) Command(ctx context.Context, command string, stdout, stderr io.Writer) (int, error) {
	r, err := s.b.invoke(ctx, s.dir, "shell", map[string]any{
		"cmd":              encodeCommand(command),
		"strip_empty_ends": false,
	})
	if err := outcome(ctx, r, err, "command"); err != nil {
		return -1, err
	}
	_, _ = io.WriteString(stdout, r.Stdout)
	_, _ = io.WriteString(stderr, r.Stderr)
	switch {
	case r.Failed && r.RC != nil && r.ModuleStderr == "":
		return *r.RC, nil
	case r.Failed:
		return -1, fmt.Errorf("command failed: %s", failureText(r))
	case r.RC != nil:
		return *r.RC, nil
	}
	return 0, nil
}

// outcome is the error of an invocation that did not give a usable
// result: stopped, ansible failed, the host unreachable, the task skipped.
func outcome(ctx context.Context, r moduleResult, err error, what string) error {
	switch {
	case ctx.Err() != nil:
		return errKilled
	case err != nil:
		return err
	case r.Unreachable:
		return backend.WithStatus(task.StatusUnreachable, errors.New(unreachableText(r.message())))
	case r.Skipped:
		return fmt.Errorf("ansible skipped the %s", what)
	}
	return nil
}

func (s *session) Close() error { return os.RemoveAll(s.dir) }

// invoke runs one ad-hoc module call and returns the host's result.
func (b *Backend) invoke(ctx context.Context, dir, module string, args map[string]any) (moduleResult, error) {
	argJSON, err := json.Marshal(args)
	if err != nil {
		return moduleResult{}, fmt.Errorf("encoding %s arguments: %w", module, err)
	}
	cmd := exec.CommandContext(ctx, b.cfg.Binary, inventoryAlias,
		"-i", filepath.Join(dir, "inventory.yml"),
		"-m", module,
		"-a", string(argJSON))
	cmd.Dir = dir // no ansible.cfg from the master's working directory
	cmd.Env = b.environ(dir)
	cmd.Stdin = nil
	// Own process group, so cancelling kills ansible's workers and ssh too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = waitDelay
	out := &boundedBuffer{max: maxCallbackBytes}
	errOut := &task.CappedBuffer{Cap: ansibleStderrCap}
	cmd.Stdout, cmd.Stderr = out, errOut

	runErr := cmd.Run()
	if cmd.Process != nil {
		// Whatever ansible left behind in its group goes too.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	if ctx.Err() != nil {
		return moduleResult{}, ctx.Err()
	}
	if out.over {
		return moduleResult{}, fmt.Errorf("ansible's output exceeded %d bytes", out.max)
	}
	r, perr := parseCallback(out.Bytes(), inventoryAlias)
	if perr != nil {
		detail := strings.TrimSpace(errOut.String())
		if strings.Contains(detail, "Invalid callback for stdout specified") {
			detail += " (the " + StdoutCallback + " callback comes with the ansible.posix collection: Debian package ansible, or ansible-galaxy collection install ansible.posix)"
		}
		if runErr != nil {
			return moduleResult{}, fmt.Errorf("ansible %s: %v: %s (%v)", module, runErr, oneLine(detail), perr)
		}
		return moduleResult{}, fmt.Errorf("ansible %s: %v: %s", module, perr, oneLine(detail))
	}
	return r, nil
}

// maxCallbackBytes bounds ansible's JSON document. Results beyond the
// output cap are dropped anyway; this only keeps a runaway command from
// exhausting the master's memory.
const maxCallbackBytes = 64 << 20

// boundedBuffer keeps at most max bytes and notes an overflow.
type boundedBuffer struct {
	bytes.Buffer
	max  int
	over bool
}

func (b *boundedBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.Len(); len(p) > room {
		b.over = true
		if room > 0 {
			b.Buffer.Write(p[:room])
		}
		return len(p), nil
	}
	return b.Buffer.Write(p)
}

// encodeCommand wraps a POSIX sh command line so ansible sees only base64
// text (nothing it could template) and the remote shell runs the original
// under a watchdog (see remoteWrapper).
func encodeCommand(command string) string {
	b64 := base64.StdEncoding.EncodeToString([]byte(command))
	return strings.Replace(remoteWrapper, "@B64@", b64, 1)
}

// remoteWrapper decodes the command (a failed decode exits 127 rather than
// running an empty command) and runs it with a watchdog that stops it when
// ansible goes away.
//
// Why a watchdog: killing ansible (cancel, timeout) closes the ssh
// connection, but sshd does not signal a command without a terminal; the
// command would run on. sshd starts each session in a new session (setsid)
// whose leader is its child, and neither ansible's python nor the shell
// module create process groups, so the whole remote tree is one process
// group. When the connection goes, the per-connection sshd exits and the
// session leader is re-parented; the watchdog sees the leader's parent
// change (Linux /proc) and sends TERM, then KILL, to the group. Without
// /proc the command runs without a watchdog. The watchdog's output goes to
// /dev/null so the module never waits on it.
//
// The connection can also close before the wrapper starts (ansible killed
// while its python module was starting on the target): the leader is then
// already re-parented to init (or gone), so a watchdog comparing against
// that parent would wait forever. The wrapper then runs nothing and exits
// 255; sshd's session parent is never pid 1 while the connection lives.
const remoteWrapper = `c=$(printf '%s' '@B64@' | base64 -d) || exit 127
ppidof() { sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f2; }
w=
if [ -r /proc/$$/stat ]; then
  sid=$(sed 's/.*) //' /proc/$$/stat | cut -d' ' -f4)
  pp=$(ppidof "$sid")
  case $pp in ''|1) echo "omserver: the ssh connection closed before the command started; not running it" >&2; exit 255;; esac
  (trap '' TERM; while [ "$(ppidof "$sid")" = "$pp" ]; do sleep 1; done; kill -s TERM 0; sleep 2; kill -s KILL 0) </dev/null >/dev/null 2>&1 &
  w=$!
fi
/bin/sh -c "$c"; rc=$?
[ -n "$w" ] && kill -s KILL "$w" 2>/dev/null
exit $rc`

// environ is ansible's environment: only what it needs from ours (never
// the master's secrets), the operator's extras, then the settings the
// backend relies on, which win over duplicates.
func (b *Backend) environ(dir string) []string {
	env := []string{"LANG=C.UTF-8", "LC_ALL=C.UTF-8"}
	for _, k := range []string{"PATH", "HOME", "SSH_AUTH_SOCK", "TMPDIR"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	env = append(env, b.cfg.ExtraEnv...)
	return append(env,
		"ANSIBLE_CONFIG="+filepath.Join(dir, "ansible.cfg"),
		"ANSIBLE_HOME="+filepath.Join(dir, "home"),
		"ANSIBLE_STDOUT_CALLBACK="+StdoutCallback,
		"ANSIBLE_LOAD_CALLBACK_PLUGINS=1",
		"ANSIBLE_JSON_INDENT=0",
		"ANSIBLE_HOST_KEY_CHECKING="+strconv.FormatBool(b.cfg.HostKeyChecking),
		"ANSIBLE_NOCOLOR=1",
		"ANSIBLE_FORCE_COLOR=0",
		"ANSIBLE_LOCAL_TEMP="+filepath.Join(dir, "tmp"),
		"ANSIBLE_REMOTE_TEMP="+remoteTemp,
		"ANSIBLE_RETRY_FILES_ENABLED=0",
	)
}

// remoteTemp is where ansible puts its module files on the target: a
// directory of its own under the login user's home.
const remoteTemp = "~/.ansible/omserver-tmp"

// prepare creates the run's private directory with its inventory and
// ansible.cfg.
func (b *Backend) prepare(addr string, connectTimeout time.Duration) (string, error) {
	dir, err := os.MkdirTemp("", "omserver-ansible-")
	if err != nil {
		return "", fmt.Errorf("creating ansible work directory: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			_ = os.RemoveAll(dir)
		}
	}()
	for _, sub := range []string{"tmp", "home", "cp"} {
		if err := os.Mkdir(filepath.Join(dir, sub), 0o700); err != nil {
			return "", fmt.Errorf("creating ansible work directory: %w", err)
		}
	}

	vars := map[string]any{"ansible_host": addr, "ansible_port": b.cfg.Port}
	if b.cfg.User != "" {
		vars["ansible_user"] = b.cfg.User
	}
	if b.cfg.PrivateKeyFile != "" {
		vars["ansible_ssh_private_key_file"] = b.cfg.PrivateKeyFile
	}
	// JSON is YAML, and encoding/json quotes every value correctly.
	inv, err := json.Marshal(map[string]any{
		"all": map[string]any{"hosts": map[string]any{inventoryAlias: vars}},
	})
	if err != nil {
		return "", fmt.Errorf("encoding inventory: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "inventory.yml"), inv, 0o600); err != nil {
		return "", fmt.Errorf("writing inventory: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "ansible.cfg"), []byte(b.configFile(dir, connectTimeout)), 0o600); err != nil {
		return "", fmt.Errorf("writing ansible.cfg: %w", err)
	}
	ok = true
	return dir, nil
}

// configFile is the generated ansible.cfg. ssh options: no connection
// sharing (ControlPersist would leave ssh masters running after a kill),
// batch mode (never prompt) and the configured host key policy. No
// terminal (-tt): ansible pipes scripts to the remote python, which never
// sees end of file through a pty.
func (b *Backend) configFile(dir string, connectTimeout time.Duration) string {
	secs := int(connectTimeout.Round(time.Second) / time.Second)
	if secs < 1 {
		secs = 1
	}
	ssh := []string{"-o ControlMaster=no", "-o ControlPersist=no", "-o ControlPath=none", "-o BatchMode=yes"}
	if b.cfg.HostKeyChecking {
		ssh = append(ssh, "-o StrictHostKeyChecking=yes")
		if b.cfg.KnownHostsFile != "" {
			ssh = append(ssh, "-o UserKnownHostsFile="+b.cfg.KnownHostsFile, "-o GlobalKnownHostsFile=/dev/null")
		}
	} else {
		ssh = append(ssh, "-o StrictHostKeyChecking=no", "-o UserKnownHostsFile=/dev/null")
	}
	return fmt.Sprintf(`# generated by omserver for one run; not read by anything else
[defaults]
stdout_callback = %s
bin_ansible_callbacks = True
host_key_checking = %t
timeout = %d
forks = 1
gathering = explicit
retry_files_enabled = False
interpreter_python = auto_silent
deprecation_warnings = False
system_warnings = False
localhost_warning = False
nocolor = True
local_tmp = %s
remote_tmp = %s

[inventory]
enable_plugins = yaml

[ssh_connection]
ssh_args = %s
control_path_dir = %s
pipelining = True
`, StdoutCallback, b.cfg.HostKeyChecking, secs, filepath.Join(dir, "tmp"), remoteTemp,
		strings.Join(ssh, " "), filepath.Join(dir, "cp"))
}

// unreachableText explains why ansible could not reach the host, leading
// with a host key failure (buried at the end of ssh's banner otherwise).
func unreachableText(msg string) string {
	if strings.Contains(msg, "Host key verification failed") || strings.Contains(msg, "REMOTE HOST IDENTIFICATION HAS CHANGED") {
		return "host key verification failed (the host's key is not in known_hosts or has changed): " + oneLine(msg)
	}
	return oneLine(msg)
}

// failureText explains a failed module result.
func failureText(r moduleResult) string {
	parts := []string{}
	if m := oneLine(r.message()); m != "" {
		parts = append(parts, m)
	}
	if s := oneLine(r.ModuleStderr); s != "" {
		parts = append(parts, "module stderr: "+s)
	}
	if len(parts) == 0 {
		return "no message from ansible"
	}
	return strings.Join(parts, "; ")
}

// oneLine squeezes text for an error message: one line, at most 500 bytes.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 500 {
		s = s[:500] + "..."
	}
	return s
}
