package backend

import (
	"errors"

	"github.com/omserver/omserver-go/internal/task"
)

// statusError is an error that says which host status it means.
type statusError struct {
	status task.Status
	err    error
}

func (e *statusError) Error() string { return e.err.Error() }
func (e *statusError) Unwrap() error { return e.err }

// WithStatus marks err as meaning status for the host. A session uses it
// when an error does not mean the runner's default for its phase: connect
// errors default to unreachable, copy and command errors to failed (so a
// salt minion that did not return marks its command error unreachable, and
// a Func host without an address marks its connect error failed).
func WithStatus(status task.Status, err error) error {
	if err == nil {
		return nil
	}
	return &statusError{status: status, err: err}
}

// statusOf is the status err was marked with, or def.
func statusOf(err error, def task.Status) task.Status {
	var se *statusError
	if errors.As(err, &se) && se.status.Valid() {
		return se.status
	}
	return def
}
