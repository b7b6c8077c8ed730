package task

import "time"

// EventType says what an Event carries.
type EventType string

// Event types of a run's stream, in the order a host produces them: any
// number of output chunks, then exactly one result; the run ends with one
// done event after every host's result.
const (
	EventOutput EventType = "output"
	EventResult EventType = "result"
	EventDone   EventType = "done"
	// EventBatch: a rollout started a batch, or paused before the next
	// one (only runs in more than one batch have them).
	EventBatch EventType = "batch"
)

// Batch is where a rollout stands: batch Index of Count started (its
// Hosts hosts), or, Paused, the rollout waits before starting it.
type Batch struct {
	Index int `json:"index"` // 1-based
	Count int `json:"count"`
	Hosts int `json:"hosts"`
	// Paused: the canary batch is done and the rollout waits: until Until
	// and then goes on, or, Confirm, for an operator's "continue" (at Until
	// without one, the remaining batches are skipped).
	Paused  bool      `json:"paused,omitempty"`
	Confirm bool      `json:"confirm,omitempty"`
	Until   time.Time `json:"until,omitzero"`
}

// Stream names a host command's output stream.
type Stream string

const (
	Stdout Stream = "stdout"
	Stderr Stream = "stderr"
)

// Valid reports whether s is stdout or stderr.
func (s Stream) Valid() bool { return s == Stdout || s == Stderr }

// Event is one step of a run as the master reports it. Seq numbers a run's
// events from 1 without gaps, so a reader that saw events up to N can ask
// for the rest from N+1.
type Event struct {
	Seq    uint64      `json:"seq,omitempty"`
	RunID  string      `json:"run_id"`
	Type   EventType   `json:"type"`
	Output *Output     `json:"output,omitempty"`
	Result *HostResult `json:"result,omitempty"`
	// End says how the run ended; only a done event carries it (a done
	// event without it, from an older master, means RunDone).
	End *RunEnd `json:"end,omitempty"`
	// Batch: a batch event's rollout state.
	Batch *Batch `json:"batch,omitempty"`
}

// RunEnd is the final state of a run as its master reports it: done, or
// cancelled (on request, or because the master was stopping) with why.
type RunEnd struct {
	Status RunStatus `json:"status"`
	Error  string    `json:"error,omitempty"`
}

// Output is a chunk of a host's output as it was printed. Chunks are for
// watching a run live; the host's result holds the (capped) totals.
type Output struct {
	Host   Host   `json:"host"`
	Stream Stream `json:"stream"`
	Data   string `json:"data"`
}

// RunStatus is the state of a whole run as recorded by the web tier. A
// finished run's status reflects its hosts: ok (every host ok), partial
// (some hosts failed), failed (no host ok, or the run could not be run at
// all), cancelled, interrupted. RunDone is what runs finished before
// outcomes were computed were recorded as; it stays readable and says
// nothing about the hosts (their counts do).
type RunStatus string

const (
	RunRunning     RunStatus = "running"
	RunOK          RunStatus = "ok"
	RunPartial     RunStatus = "partial"
	RunFailed      RunStatus = "failed"
	RunCancelled   RunStatus = "cancelled"
	RunInterrupted RunStatus = "interrupted"
	RunDone        RunStatus = "done" // legacy: finished, outcome not computed
)

// Valid reports whether s is a known run status.
func (s RunStatus) Valid() bool {
	switch s {
	case RunRunning, RunOK, RunPartial, RunFailed, RunCancelled, RunInterrupted, RunDone:
		return true
	}
	return false
}

// Finished reports whether s is a final state.
func (s RunStatus) Finished() bool { return s.Valid() && s != RunRunning }

// Outcome is the final status of a run that ended normally, from its
// hosts' results: ok when every one of total hosts is ok, failed when none
// is, partial otherwise. A host without a result counts as failed.
func Outcome(counts map[Status]int, total int) RunStatus {
	ok := counts[StatusOK]
	switch {
	case total > 0 && ok >= total:
		return RunOK
	case ok == 0:
		return RunFailed
	}
	return RunPartial
}
