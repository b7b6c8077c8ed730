package relay

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/omserver/omserver-go/internal/master"
	"github.com/omserver/omserver-go/internal/module"
)

// runStatus maps an executor's error to the status the web tier sees. The
// message is the executor's own: it says which module or parameter is wrong.
func runStatus(err error) *status.Status {
	msg := err.Error()
	switch {
	case errors.Is(err, master.ErrUnknownModule):
		return status.New(codes.NotFound, msg)
	case errors.Is(err, module.ErrInvalidParams):
		return status.New(codes.InvalidArgument, msg)
	case errors.Is(err, master.ErrDuplicateRun):
		return status.New(codes.AlreadyExists, msg)
	case errors.Is(err, master.ErrShuttingDown):
		// Unavailable: the client may fail over to another master.
		return status.New(codes.Unavailable, msg)
	case errors.Is(err, master.ErrUnknownBackend):
		return status.New(codes.FailedPrecondition, msg)
	case errors.Is(err, context.Canceled):
		return status.New(codes.Canceled, "run cancelled: "+msg)
	case errors.Is(err, context.DeadlineExceeded):
		return status.New(codes.DeadlineExceeded, msg)
	default:
		return status.New(codes.Internal, "run failed: "+msg)
	}
}
