package task

import "github.com/omserver/omserver-go/internal/apperr"

// Errors both sides of the relay share. The master returns them (wrapped
// with details), the relay carries their category across the wire, and the
// web tier answers with the status of their category. Test with errors.Is.
var (
	// ErrInvalidTask: the task's shape is wrong (no hosts, too many
	// parameters, missing nonce...).
	ErrInvalidTask = apperr.New(apperr.Invalid, "invalid task")
	// ErrUnknownModule: the master has no module with the task's id.
	ErrUnknownModule = apperr.New(apperr.NotFound, "unknown module")
	// ErrInvalidParams: a parameter is undeclared, missing or out of its
	// declaration; the module runs on no host.
	ErrInvalidParams = apperr.New(apperr.Invalid, "invalid module parameters")
	// ErrUnconfirmed: a large run arrived without the typed confirmation
	// of its host count; nothing ran.
	ErrUnconfirmed = apperr.New(apperr.Invalid, "large run not confirmed")
	// ErrUnknownHost: a target is not in the inventory.
	ErrUnknownHost = apperr.New(apperr.Invalid, "unknown host")
	// ErrUnknownBackend: the module needs a backend its master lacks.
	ErrUnknownBackend = apperr.New(apperr.Conflict, "backend not available")
	// ErrDuplicateRun: this run id was already accepted; nothing runs again.
	ErrDuplicateRun = apperr.New(apperr.Conflict, "run id already accepted")
	// ErrShuttingDown: the tier is stopping and takes no new runs.
	ErrShuttingDown = apperr.New(apperr.Unavailable, "shutting down")
	// ErrMasterDown: no master could be reached; nothing ran.
	ErrMasterDown = apperr.New(apperr.Unavailable, "master unreachable")
	// ErrInterrupted: the master accepted the run and contact was lost
	// before it finished; hosts may have run it, so it is never re-sent.
	ErrInterrupted = apperr.New(apperr.Interrupted, "interrupted")
	// ErrRunNotFound: no such run (or it is no longer running).
	ErrRunNotFound = apperr.New(apperr.NotFound, "run not found")
)
