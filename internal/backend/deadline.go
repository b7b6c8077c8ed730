package backend

import (
	"context"
	"errors"
	"time"

	"github.com/omserver/omserver-go/internal/task"
)

// HostRun is the time frame of one host's run: ctx bounded by the per-host
// timeout. Every backend needs the same distinction when a run ends early:
// the caller cancelled (StatusCancelled) or the timeout expired
// (StatusTimeout).
type HostRun struct {
	Ctx    context.Context // what the run's work uses
	parent context.Context
	cancel context.CancelFunc
}

// NewHostRun bounds parent by timeout (no bound when timeout is zero).
// Call Close when the run is over.
func NewHostRun(parent context.Context, timeout time.Duration) *HostRun {
	h := &HostRun{Ctx: parent, parent: parent, cancel: func() {}}
	if timeout > 0 {
		h.Ctx, h.cancel = context.WithTimeout(parent, timeout)
	}
	return h
}

// Stopped says why the run ended early, if it did.
func (h *HostRun) Stopped() (task.Status, bool) {
	switch {
	case errors.Is(h.parent.Err(), context.Canceled):
		return task.StatusCancelled, true
	case h.Ctx.Err() != nil:
		return task.StatusTimeout, true
	}
	return "", false
}

// Close releases the timeout's resources.
func (h *HostRun) Close() { h.cancel() }

// ConnectTimeoutOr is o.ConnectTimeout, or def when the run does not set one.
func (o Options) ConnectTimeoutOr(def time.Duration) time.Duration {
	if o.ConnectTimeout > 0 {
		return o.ConnectTimeout
	}
	return def
}
