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
	Timeout        time.Duration // all steps on this host; 0 means the backend's default (none for ssh, ansible, local)
	OutputCap      int           // bytes kept of each of stdout and stderr; 0 means task.DefaultOutputCap

	// OnOutput, when set, is called with each chunk a command writes to
	// stdout or stderr, as it arrives: ssh and local pass on what the
	// process prints while it runs; salt and func get one reply per call
	// and pass its output on when the call returns; ansible passes each
	// command's output on when ansible reports the host's result.
	//
	// The contract:
	//   - calls for one host are serialised (never concurrent), and never
	//     happen after Run returned;
	//   - data is the hook's own copy;
	//   - a chunk never ends inside a UTF-8 sequence (an incomplete one is
	//     held back until the next write or the command's end);
	//   - per stream, at most OutputCap bytes are passed on: the bytes the
	//     result keeps; the result's truncated flags say when more was
	//     printed;
	//   - the hook runs on the command's output path, so while it runs
	//     the command's pipe is not read: it must return at once (hand the
	//     chunk to a buffered queue, drop it when the queue is full) and
	//     never wait on anything that waits on the run.
	// Chunks are for watching; the host's result stays the record.
	OnOutput func(stream task.Stream, data []byte)
}

// Backend runs steps on one host. Every implementation is a Runner over
// its own Connector, so all of them validate steps, number them, bound a
// host by its deadline and build results the same way. Run must honour ctx: when it is cancelled
// the remote command is stopped and the result's status is
// task.StatusCancelled. Run never returns an error: every failure is a
// result (unreachable, failed, timeout...) so one bad host never hides the
// others. Implementations are safe for concurrent use: the master calls Run
// for many hosts at once, bounded by its forks setting.
type Backend interface {
	Name() string
	Run(ctx context.Context, host task.Host, steps []Step, opts Options) task.HostResult
}
