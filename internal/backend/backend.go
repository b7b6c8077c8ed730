// Package backend defines how the master runs expanded module steps on one
// host. Each implementation (local, ssh, ansible, salt, func) lives in its own
// sub-package and returns the same task.HostResult shape.
package backend

import (
	"context"
	"os"
	"time"

	"github.com/omserver/omserver-go/internal/task"
)

// Step is one expanded, ready-to-run action of a module. Module expansion
// (internal/module) produces it; parameter values are already validated and
// single-quoted inside Command, so a backend passes Command to a POSIX shell
// as it is and never splices anything else into it.
type Step struct {
	// Copy, when not nil, is a file on the master to put on the target
	// before Command runs.
	Copy *Copy
	// Command is a complete POSIX sh command line. Empty for a copy-only step.
	Command string
}

// Copy is a file transfer from the master to the target.
type Copy struct {
	Src  string      // absolute path on the master
	Dest string      // absolute path on the target
	Mode os.FileMode // permission bits of the file on the target
}

// Options bound one host's run.
type Options struct {
	ConnectTimeout time.Duration // dialling and authenticating; 0 means backend default
	Timeout        time.Duration // all steps on this host; 0 means no limit beyond ctx
	OutputCap      int           // bytes kept of each of stdout and stderr; 0 means task.DefaultOutputCap
}

// Backend runs steps on one host. Run must honour ctx: when it is cancelled
// the remote command is stopped and the result's status is
// task.StatusCancelled. Run never returns an error: every failure is a
// result (unreachable, failed, timeout...) so one bad host never hides the
// others. Implementations are safe for concurrent use: the master calls Run
// for many hosts at once, bounded by its forks setting.
type Backend interface {
	Name() string
	Run(ctx context.Context, host task.Host, steps []Step, opts Options) task.HostResult
}
