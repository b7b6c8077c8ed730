package backend

import (
	"time"

	"github.com/omserver/omserver-go/internal/task"
)

// Output holds one host's stdout and stderr under the output cap, and
// completes the host's result the same way in every backend.
type Output struct {
	Stdout, Stderr *task.CappedBuffer
	started        time.Time
}

// NewResult starts one host's result (no exit code yet, started now) and
// the output buffers its commands write to.
func NewResult(host task.Host, opts Options) (task.HostResult, *Output) {
	now := time.Now()
	out := &Output{
		Stdout:  &task.CappedBuffer{Cap: opts.OutputCap},
		Stderr:  &task.CappedBuffer{Cap: opts.OutputCap},
		started: now,
	}
	return task.HostResult{Host: host, ExitCode: -1, Started: now}, out
}

// Fill copies the kept output, its truncated flags and the time since the
// start into res; backends call it on every way out of a run.
func (o *Output) Fill(res *task.HostResult) {
	res.Stdout, res.StdoutTruncated = o.Stdout.String(), o.Stdout.Truncated()
	res.Stderr, res.StderrTruncated = o.Stderr.String(), o.Stderr.Truncated()
	res.Duration = time.Since(o.started)
}
