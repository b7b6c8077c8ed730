package salt

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/omserver/omserver-go/internal/backend"
	"github.com/omserver/omserver-go/internal/backend/copysrc"
	"github.com/omserver/omserver-go/internal/task"
)

// Connect implements backend.Connector. It contacts nothing: the session's
// first call logs in when the cached token will not do.
func (b *Backend) Connect(_ context.Context, host task.Host, opts backend.Options) (backend.Session, error) {
	minion, err := b.minionID.For(host)
	if err != nil {
		return nil, backend.WithStatus(task.StatusFailed, err)
	}
	tag, err := newTag()
	if err != nil {
		return nil, backend.WithStatus(task.StatusFailed, err)
	}
	return &minionSession{
		b: b, minion: minion, tag: tag,
		connectTimeout: opts.ConnectTimeoutOr(defaultConnectTimeout),
		answerWait:     opts.ConnectTimeout,
	}, nil
}

// CheckStep implements backend.StepChecker: JSON would silently replace
// invalid UTF-8, changing the command or the path.
func (b *Backend) CheckStep(s backend.Step) error {
	if !utf8.ValidString(s.Command) {
		return errors.New("command is not valid UTF-8")
	}
	if s.Copy != nil && !utf8.ValidString(s.Copy.Dest) {
		return fmt.Errorf("copy destination %q is not valid UTF-8", s.Copy.Dest)
	}
	return nil
}

// minionSession runs one host's steps on its minion. Every call it makes is one
// cmd.run_all on that minion, tagged so that a stopped run's command can
// be found and killed.
type minionSession struct {
	b              *Backend
	minion, tag    string
	connectTimeout time.Duration // dialling and logging in
	answerWait     time.Duration // the lowstate timeout: how long salt waits for a silent minion (0: salt's own)
}

func (s *minionSession) Copy(ctx context.Context, c *backend.Copy) error {
	data, err := copysrc.Read(c.Src, MaxCopyBytes)
	if err != nil {
		return err
	}
	chunk := s.b.commandChunk(ctx, s.minion, s.tag, copyCommand(c.Dest, c.Mode), base64.StdEncoding.EncodeToString(data), s.answerWait)
	r, err := s.run(ctx, chunk)
	if err != nil {
		return err
	}
	if r.status != task.StatusOK {
		msg := r.err
		if e := trimErr(r.stderr); e != "" {
			msg += ": " + e
		}
		return backend.WithStatus(r.status, errors.New(msg))
	}
	return nil
}

func (s *minionSession) Command(ctx context.Context, command string, stdout, stderr io.Writer) (int, error) {
	r, err := s.run(ctx, s.b.commandChunk(ctx, s.minion, s.tag, command, "", s.answerWait))
	if err != nil {
		return -1, err
	}
	_, _ = io.WriteString(stdout, r.stdout)
	_, _ = io.WriteString(stderr, r.stderr)
	if r.exited {
		return r.retcode, nil
	}
	return -1, backend.WithStatus(r.status, errors.New(r.err))
}

// run makes one call and reads the minion's result. The call is sent once:
// whatever happens after it may have reached salt-api, it is never sent
// again. When it fails after that point (the run was stopped, the token
// was rejected while the job ran, salt-api failed or the connection
// broke), run kills what the call may have started on the minion and says
// what became of it.
func (s *minionSession) run(ctx context.Context, chunk lowstate) (result, error) {
	out, err := s.b.call(ctx, s.connectTimeout, s.tokenNeed(ctx), chunk, sendOnce)
	switch {
	case err == nil:
		return minionResult(out, s.minion), nil
	case ctx.Err() != nil:
		return result{}, errors.New(s.b.stopRemote(ctx, s.minion, s.tag, s.connectTimeout))
	case errors.Is(err, errNotSent):
		return result{}, err
	case errors.Is(err, errTokenRejected):
		return result{}, fmt.Errorf("%v after the command was sent; it may have started, so it was not sent again; %s",
			err, s.b.stopRemote(ctx, s.minion, s.tag, s.connectTimeout))
	}
	return result{}, fmt.Errorf("%v; the command may have started and was not sent again; %s",
		err, s.b.stopRemote(ctx, s.minion, s.tag, s.connectTimeout))
}

// tokenNeed is how long the token of a step's call must live: the host's
// deadline (the minion kills the command then: cmd.run_all's timeout)
// plus the margin for salt to collect and report the result.
func (s *minionSession) tokenNeed(ctx context.Context) time.Time {
	dl, ok := ctx.Deadline()
	if !ok {
		dl = time.Now().Add(DefaultTimeout)
	}
	return dl.Add(s.b.cfg.TokenTTLMargin)
}

// lowstate is one chunk of the rest_cherrypy request body.
type lowstate struct {
	Client  string         `json:"client"`
	Tgt     []string       `json:"tgt"`
	TgtType string         `json:"tgt_type"`
	Fun     string         `json:"fun"`
	Arg     []string       `json:"arg"`
	Kwarg   map[string]any `json:"kwarg,omitempty"`
	// Timeout is the local client's wait, in seconds, for a minion to
	// answer; a minion that reports the job still running (saltutil.find_job)
	// keeps it waiting, so this is a "no answer" limit, not a run limit.
	// Zero leaves the master's configured timeout.
	Timeout int `json:"timeout,omitempty"`
}

// commandChunk builds a cmd.run_all call of command through /bin/sh, with
// stdin when it is not empty. The command runs in a shell whose $0 carries
// the run's tag, so stopRemote can find it. The minion kills the command
// killBackstop after the host's time is up (cmd.run_all's timeout); the
// backend stops it at the deadline itself. answerWait bounds how
// long salt waits for a minion that does not acknowledge the job at all.
func (b *Backend) commandChunk(ctx context.Context, minion, tag, command, stdin string, answerWait time.Duration) lowstate {
	command = "exec /bin/sh -c " + backend.ShellQuote(command) + " " + tagPrefix + tag
	kw := map[string]any{
		"python_shell": true,
		"shell":        "/bin/sh",
		"rstrip":       false, // keep the output exactly, as the other backends do
		"timeout":      remainingSeconds(ctx) + int(killBackstop/time.Second),
	}
	if stdin != "" {
		kw["stdin"] = stdin
	}
	return lowstate{
		Client:  "local",
		Tgt:     []string{minion},
		TgtType: "list",
		Fun:     "cmd.run_all",
		Arg:     []string{command},
		Kwarg:   kw,
		Timeout: int(math.Ceil(answerWait.Seconds())),
	}
}

// killBackstop is how long after the host's deadline the minion kills the
// command itself (cmd.run_all's timeout), should the backend's own stop at
// the deadline fail. It comes after the deadline, not at it: cmd.run_all
// kills only the shell it started, which would orphan the shell's children
// out of reach of stopRemote, which finds them through the tagged shell.
const killBackstop = 15 * time.Second

// tagPrefix starts the $0 of every command the backend starts on a minion.
const tagPrefix = "omserver-run-"

// stopTimeout bounds the call that kills a stopped run's command.
const stopTimeout = 20 * time.Second

func newTag() (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("making a run tag: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// stopRemote kills, on the minion, the process tree of the command tagged
// tag. The synchronous local client hands out no job id before the job
// ends, so saltutil.kill_job cannot be aimed at it; and kill_job would not
// be enough anyway: it sends SIGKILL to the minion's job process
// (https://docs.saltproject.io/en/latest/ref/modules/all/salt.modules.saltutil.html#salt.modules.saltutil.kill_job),
// not to the shell cmd.run_all started, which runs on. Salt itself keeps
// the command running when the API call is abandoned. It runs as a new
// cmd.run_all that finds the tagged shell with pgrep -f (the [x] bracket
// keeps the pattern from matching the killer's own command line), stops
// each process before listing its children so none can fork away, and
// kills them. It returns what became of the command, for the result's
// error.
func (b *Backend) stopRemote(parent context.Context, minion, tag string, connectTimeout time.Duration) string {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(parent), stopTimeout)
	defer cancel()
	pattern := tagPrefix + "[" + tag[:1] + "]" + tag[1:]
	script := `k() { kill -STOP "$1" 2>/dev/null; for c in $(pgrep -P "$1"); do k "$c"; done; kill -KILL "$1" 2>/dev/null; }; ` +
		`n=0; for p in $(pgrep -f '` + pattern + `'); do k "$p"; n=$((n+1)); done; echo "$n"`
	chunk := lowstate{
		Client: "local", Tgt: []string{minion}, TgtType: "list", Fun: "cmd.run_all", Arg: []string{script},
		Kwarg:   map[string]any{"python_shell": true, "shell": "/bin/sh", "timeout": int(stopTimeout / time.Second)},
		Timeout: int(math.Ceil(connectTimeout.Seconds())),
	}
	// Killing the tagged tree twice is harmless, so this call, unlike a
	// step's, may log in again and resend after a 401.
	out, err := b.call(ctx, connectTimeout, time.Now().Add(stopTimeout), chunk, resendOn401)
	if err != nil {
		b.log.Warn().Str("minion", minion).Err(err).Msg("could not stop a cancelled command")
		return fmt.Sprintf("stopping the remote command failed: %v", err)
	}
	r := minionResult(out, minion)
	if r.status != task.StatusOK {
		b.log.Warn().Str("minion", minion).Str("error", r.err).Msg("could not stop a cancelled command")
		return fmt.Sprintf("stopping the remote command failed: %s", r.err)
	}
	if strings.TrimSpace(r.stdout) == "0" {
		return "no remote command was left running"
	}
	return "the remote command was stopped"
}

// remainingSeconds is the time left in ctx, rounded up, at least 1.
func remainingSeconds(ctx context.Context) int {
	dl, ok := ctx.Deadline()
	if !ok {
		return int(DefaultTimeout / time.Second)
	}
	s := math.Ceil(time.Until(dl).Seconds())
	if s < 1 {
		return 1
	}
	return int(s)
}

// copyCommand decodes base64 stdin into a temporary file beside dest, sets
// its mode and renames it over dest, so a half-written file never replaces
// the old one.
func copyCommand(dest string, mode os.FileMode) string {
	tmpl := backend.ShellQuote(path.Join(path.Dir(dest), ".omserver-copy.XXXXXX"))
	return fmt.Sprintf(`t=$(mktemp %s) && { base64 -d >"$t" && chmod %04o "$t" && mv -f "$t" %s || { rm -f "$t"; exit 1; }; }`,
		tmpl, uint32(mode.Perm()), backend.ShellQuote(dest))
}
