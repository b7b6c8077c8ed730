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
	// ErrInterrupted: the master lost the run (it was stopped or killed
	// while the run was in progress, or cannot be reached any more); hosts
	// may have run it, so it is never re-sent.
	ErrInterrupted = apperr.New(apperr.Interrupted, "interrupted")
	// ErrOverBudget: the run has more hosts than a blast-radius budget
	// allows (per role or per module); nothing ran.
	ErrOverBudget = apperr.New(apperr.Forbidden, "over the blast-radius budget")
	// ErrRunNotFound: no such run (or it is no longer running).
	ErrRunNotFound = apperr.New(apperr.NotFound, "run not found")
	// ErrEventsDropped: the master no longer keeps the events asked for
	// (they were acknowledged, or dropped by the journal's size or age
	// bound); what the web tier stored is all there will be.
	ErrEventsDropped = apperr.New(apperr.Conflict, "the master no longer keeps these events")
	// ErrJournal: the master cannot write its journal (disk full, read-only,
	// I/O error); it takes no new run until it can, and nothing ran.
	ErrJournal = apperr.New(apperr.Unavailable, "the master's journal is not writable")
)
