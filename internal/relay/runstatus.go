package relay

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/omserver/omserver-go/internal/apperr"
	"github.com/omserver/omserver-go/internal/task"
)

// runStatus maps an executor's error to the status the web tier sees, by
// the error's category (internal/apperr), never by its text. The message is
// the executor's own: it says which module or parameter is wrong.
func runStatus(err error) *status.Status {
	msg := err.Error()
	switch {
	case errors.Is(err, context.Canceled):
		return status.New(codes.Canceled, "run cancelled: "+msg)
	case errors.Is(err, context.DeadlineExceeded):
		return status.New(codes.DeadlineExceeded, msg)
	// Two conflicts the client acts on differently from the others.
	case errors.Is(err, task.ErrDuplicateRun):
		return status.New(codes.AlreadyExists, msg)
	case errors.Is(err, task.ErrEventsDropped):
		return status.New(codes.OutOfRange, msg)
	}
	code := codeOf(apperr.KindOf(err))
	if code == codes.Internal {
		msg = "run failed: " + msg
	}
	return status.New(code, msg)
}

// codeOf is the gRPC code that carries an error category over the wire;
// kindOf is its inverse on the client side.
func codeOf(k apperr.Kind) codes.Code {
	switch k {
	case apperr.Invalid:
		return codes.InvalidArgument
	case apperr.NotFound:
		return codes.NotFound
	case apperr.Conflict:
		return codes.FailedPrecondition
	case apperr.Unavailable:
		// The client may fail over to another master.
		return codes.Unavailable
	case apperr.Forbidden:
		return codes.PermissionDenied
	case apperr.Unauthenticated:
		return codes.Unauthenticated
	case apperr.TooLarge:
		return codes.ResourceExhausted
	case apperr.Interrupted:
		return codes.Aborted
	}
	return codes.Internal
}

// kindOf is the category of a status a master answered with. Failures of
// the link itself (a refused login, an overloaded master) are Unavailable
// to the web tier's user: the run could not be handed over, and nothing
// about their request was wrong.
func kindOf(c codes.Code) apperr.Kind {
	switch c {
	case codes.InvalidArgument:
		return apperr.Invalid
	case codes.NotFound:
		return apperr.NotFound
	case codes.AlreadyExists, codes.FailedPrecondition, codes.OutOfRange:
		return apperr.Conflict
	case codes.PermissionDenied:
		// A budget the master enforces, or an envelope it refuses as
		// replayed or stale: refused on purpose, nothing ran.
		return apperr.Forbidden
	case codes.Unavailable, codes.DeadlineExceeded, codes.Unauthenticated, codes.ResourceExhausted:
		return apperr.Unavailable
	case codes.Aborted:
		return apperr.Interrupted
	}
	return apperr.Internal
}
