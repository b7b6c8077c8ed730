package backend

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/omserver/omserver-go/internal/task"
)

// Connector is what a backend supplies to the step runner: a way to open
// one host's session. Connect does everything needed before the first
// step (dial, handshake, log in, check the target); it returns an error
// for a host it cannot reach, unreachable unless marked WithStatus.
// Connection setup may be retried inside Connect; nothing that runs a
// step may be.
type Connector interface {
	Connect(ctx context.Context, host task.Host, opts Options) (Session, error)
}

// Session runs one host's steps, one at a time, for the runner.
//
// Copy puts a file on the host. Command runs one POSIX sh command line,
// writing its output to stdout and stderr as it arrives (or all at once,
// for protocols that answer once), and returns its exit code: -1 when it
// has none. A non-zero exit is not an error; err is for a command that
// did not run or whose end is unknown (killed, connection lost, a
// protocol error), failed unless marked WithStatus.
//
// When ctx ends during Copy or Command the session stops what it started
// on the host if it can and returns an error saying what became of it
// ("the remote command was stopped"); the runner reports the host
// cancelled or timed out with that text. Neither may ever send a command
// again once it may have started.
//
// Close releases the session; the runner calls it once, after the last
// step.
type Session interface {
	Copy(ctx context.Context, c *Copy) error
	Command(ctx context.Context, command string, stdout, stderr io.Writer) (exitCode int, err error)
	Close() error
}

// StepChecker is implemented by connectors with limits of their own on
// what a step may hold (a wire format that cannot carry some characters,
// a tool that templates its arguments). The runner calls CheckStep on
// every step, after ValidateSteps and before connecting.
type StepChecker interface {
	CheckStep(s Step) error
}

// Runner is the one step runner every backend uses: it validates the
// steps, bounds the host's run by its deadline, connects through the
// backend's Connector, runs the steps in order and stops at the first that
// does not succeed, streams their output, and builds the host's result
// with capped output and the same messages for every backend. It
// implements Backend.
type Runner struct {
	name           string
	conn           Connector
	defaultTimeout time.Duration
}

var _ Backend = (*Runner)(nil)

// NewRunner returns the runner of backend name over conn. defaultTimeout
// bounds a host's run when Options.Timeout is zero (0: no bound beyond
// the caller's context).
func NewRunner(name string, conn Connector, defaultTimeout time.Duration) *Runner {
	return &Runner{name: name, conn: conn, defaultTimeout: defaultTimeout}
}

// Name implements Backend.
func (r *Runner) Name() string { return r.name }

// Run implements Backend.
func (r *Runner) Run(ctx context.Context, host task.Host, steps []Step, opts Options) task.HostResult {
	res, out := NewResult(host, opts)
	live := newLiveOutput(out, opts)
	finish := func(status task.Status, msg string) task.HostResult {
		live.close()
		res.Status, res.Error = status, msg
		out.Fill(&res)
		return res
	}
	if err := r.check(steps); err != nil {
		return finish(task.StatusFailed, err.Error())
	}

	limit := opts.Timeout
	if limit <= 0 {
		limit = r.defaultTimeout
	}
	hr := NewHostRun(ctx, limit)
	defer hr.Close()
	// stopped says whether the run was stopped, and how to say so.
	stopped := func() (task.Status, string, bool) {
		st, ok := hr.Stopped()
		if !ok {
			return "", "", false
		}
		if st == task.StatusCancelled {
			return st, "cancelled", true
		}
		if limit > 0 {
			return st, fmt.Sprintf("timed out after the host timeout of %s", limit), true
		}
		return st, "timed out", true
	}

	sess, err := r.conn.Connect(hr.Ctx, host, opts)
	if err != nil {
		if st, why, ok := stopped(); ok {
			return finish(st, fmt.Sprintf("%s while connecting: %v", why, err))
		}
		return finish(statusOf(err, task.StatusUnreachable), err.Error())
	}
	defer func() { _ = sess.Close() }()

	for i, step := range steps {
		n := i + 1
		if st, why, ok := stopped(); ok {
			return finish(st, fmt.Sprintf("step %d: %s before it started", n, why))
		}
		if c := step.Copy; c != nil {
			if err := sess.Copy(hr.Ctx, c); err != nil {
				res.ExitCode = -1
				if st, why, ok := stopped(); ok {
					return finish(st, fmt.Sprintf("step %d: %s during copy to %s; %v", n, why, c.Dest, err))
				}
				return finish(statusOf(err, task.StatusFailed), fmt.Sprintf("step %d: copy to %s failed: %v", n, c.Dest, err))
			}
			res.ExitCode = 0
		}
		if step.Command == "" {
			continue
		}
		code, err := sess.Command(hr.Ctx, step.Command, live.stdout, live.stderr)
		live.flush()
		res.ExitCode = code
		if err != nil {
			// A command that ended on its own just as the run was stopped
			// keeps its own outcome (err is nil then); otherwise the stop
			// is why it ended.
			if st, why, ok := stopped(); ok {
				res.ExitCode = -1
				return finish(st, fmt.Sprintf("step %d: %s; %v", n, why, err))
			}
			return finish(statusOf(err, task.StatusFailed), fmt.Sprintf("step %d: %v", n, err))
		}
		if code != 0 {
			return finish(task.StatusFailed, fmt.Sprintf("step %d: exit status %d", n, code))
		}
	}
	return finish(task.StatusOK, "")
}

// check validates the steps the same way for every backend, then with the
// connector's own limits.
func (r *Runner) check(steps []Step) error {
	if err := ValidateSteps(steps); err != nil {
		return err
	}
	sc, ok := r.conn.(StepChecker)
	if !ok {
		return nil
	}
	for i, s := range steps {
		if err := sc.CheckStep(s); err != nil {
			return fmt.Errorf("step %d: %w", i+1, err)
		}
	}
	return nil
}
