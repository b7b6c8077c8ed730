package relay

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// runStatus maps an executor's error to the status the web tier sees. The
// message is the executor's own: it says which module or parameter is wrong.
func runStatus(err error) *status.Status {
	switch {
	case errors.Is(err, context.Canceled):
		return status.New(codes.Canceled, "run cancelled: "+err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.New(codes.DeadlineExceeded, err.Error())
	default:
		return status.New(codes.Internal, "run failed: "+err.Error())
	}
}
