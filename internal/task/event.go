package task

// EventType says what an Event carries.
type EventType string

// Event types of a run's stream, in the order a host produces them: any
// number of output chunks, then exactly one result; the run ends with one
// done event after every host's result.
const (
	EventOutput EventType = "output"
	EventResult EventType = "result"
	EventDone   EventType = "done"
)

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

// RunStatus is the state of a whole run as recorded by the web tier.
type RunStatus string

const (
	RunRunning     RunStatus = "running"
	RunDone        RunStatus = "done"
	RunFailed      RunStatus = "failed"
	RunCancelled   RunStatus = "cancelled"
	RunInterrupted RunStatus = "interrupted"
)

// Valid reports whether s is a known run status.
func (s RunStatus) Valid() bool {
	switch s {
	case RunRunning, RunDone, RunFailed, RunCancelled, RunInterrupted:
		return true
	}
	return false
}

// Finished reports whether s is a final state.
func (s RunStatus) Finished() bool { return s.Valid() && s != RunRunning }
