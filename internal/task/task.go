// Package task holds the types that cross tier boundaries: the task the web
// tier asks the master to run, and the per-host result every backend returns.
// They are serialised as JSON inside the cipher envelope on the relay, so the
// JSON names are part of the wire contract: change them only with a version bump.
package task

import (
	"fmt"
	"time"
)

// Host is one target, as chosen from the inventory. IP is the server's
// address (server_lip in the original schema); Name its hostname
// (server_name), used as the minion id by the salt backend.
type Host struct {
	IP   string `json:"ip"`
	Name string `json:"name,omitempty"`
}

// String renders the host the way the original dashboard did: "ip*name".
func (h Host) String() string {
	if h.Name == "" {
		return h.IP
	}
	return h.IP + "*" + h.Name
}

// Task is one run of one module on a set of hosts.
type Task struct {
	RunID    string            `json:"run_id"`
	ModuleID int               `json:"module_id"`
	Hosts    []Host            `json:"hosts"`
	Params   map[string]string `json:"params,omitempty"`
	User     string            `json:"user,omitempty"` // the web user who started it, for the master's log
	// ConfirmedHosts is the host count the user typed to confirm the run
	// (0: none typed). A master refuses a run on more hosts than its
	// large-run threshold unless it equals len(Hosts).
	ConfirmedHosts int       `json:"confirmed_hosts,omitempty"`
	IssuedAt       time.Time `json:"issued_at"`
	// Rollout narrows the module's rollout (batches, canary, failure
	// threshold); nil keeps the module's.
	Rollout *Rollout `json:"rollout,omitempty"`
	Nonce   string   `json:"nonce"`
}

// Limits on a task that any tier enforces before doing work.
const (
	MaxHosts      = 10000
	MaxParams     = 32
	MaxParamBytes = 4096
	MaxRunIDBytes = 64
	MaxNonceBytes = 128
)

// Validate checks the task's shape (not its parameters against a module:
// that is the module registry's job). Its errors wrap ErrInvalidTask.
func (t Task) Validate() error {
	if t.RunID == "" || len(t.RunID) > MaxRunIDBytes {
		return invalidf("run id must be 1..%d bytes", MaxRunIDBytes)
	}
	if t.ModuleID <= 0 {
		return invalidf("module id %d is not a positive integer", t.ModuleID)
	}
	if len(t.Hosts) == 0 {
		return invalidf("no hosts")
	}
	if len(t.Hosts) > MaxHosts {
		return invalidf("%d hosts is more than the limit of %d", len(t.Hosts), MaxHosts)
	}
	seen := make(map[string]bool, len(t.Hosts))
	for i, h := range t.Hosts {
		if h.IP == "" && h.Name == "" {
			return invalidf("host %d has neither ip nor name", i)
		}
		key := h.IP + "\x00" + h.Name
		if seen[key] {
			return invalidf("host %s listed twice", h)
		}
		seen[key] = true
	}
	if t.ConfirmedHosts < 0 {
		return invalidf("confirmed host count %d is negative", t.ConfirmedHosts)
	}
	if len(t.Params) > MaxParams {
		return invalidf("%d parameters is more than the limit of %d", len(t.Params), MaxParams)
	}
	for k, v := range t.Params {
		if len(k) > 64 || len(v) > MaxParamBytes {
			return invalidf("parameter %q is too long", k)
		}
	}
	if err := t.Rollout.Check(); err != nil {
		return err
	}
	if t.IssuedAt.IsZero() {
		return invalidf("issue time missing")
	}
	if t.Nonce == "" {
		return invalidf("nonce missing")
	}
	if len(t.Nonce) > MaxNonceBytes {
		return invalidf("nonce longer than %d bytes", MaxNonceBytes)
	}
	return nil
}

// CheckConfirmed refuses a task on more than largeRun hosts (largeRun > 0)
// whose typed confirmation does not match its host count. Its error wraps
// ErrUnconfirmed.
func (t Task) CheckConfirmed(largeRun int) error {
	if largeRun <= 0 || len(t.Hosts) <= largeRun || t.ConfirmedHosts == len(t.Hosts) {
		return nil
	}
	return fmt.Errorf("%w: %d hosts is more than this master's limit of %d for runs without a typed confirmation (confirmed host count: %d)",
		ErrUnconfirmed, len(t.Hosts), largeRun, t.ConfirmedHosts)
}

// invalidf is a task shape error: it wraps ErrInvalidTask.
func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidTask}, args...)...)
}

// Status is the outcome of one host.
type Status string

const (
	StatusOK          Status = "ok"
	StatusFailed      Status = "failed"
	StatusUnreachable Status = "unreachable"
	StatusTimeout     Status = "timeout"
	StatusCancelled   Status = "cancelled"
	// StatusSkipped: a rollout stopped before this host's batch (its
	// failure threshold was reached); nothing ran on it.
	StatusSkipped Status = "skipped"
)

// Valid reports whether s is one of the known statuses.
func (s Status) Valid() bool {
	switch s {
	case StatusOK, StatusFailed, StatusUnreachable, StatusTimeout, StatusCancelled, StatusSkipped:
		return true
	}
	return false
}

// DefaultOutputCap is the default number of bytes kept of each of stdout and
// stderr per host; the rest is dropped and the Truncated flag set.
const DefaultOutputCap = 64 << 10

// HostResult is what every backend returns for one host.
type HostResult struct {
	RunID           string        `json:"run_id"`
	Host            Host          `json:"host"`
	Status          Status        `json:"status"`
	ExitCode        int           `json:"exit_code"` // -1 when no process exit code exists
	Stdout          string        `json:"stdout"`
	Stderr          string        `json:"stderr"`
	StdoutTruncated bool          `json:"stdout_truncated,omitempty"`
	StderrTruncated bool          `json:"stderr_truncated,omitempty"`
	Error           string        `json:"error,omitempty"` // why, when not ok: "connection refused", "host key mismatch", ...
	Started         time.Time     `json:"started"`
	Duration        time.Duration `json:"duration_ns"`
	// Signature is the master's ed25519 signature of the result (base64,
	// internal/ledger's canonical message), when the master has a signing
	// key: the web tier checks it before storing, and `omserver audit
	// verify` again later, so the web tier cannot forge what a host returned.
	Signature string `json:"signature,omitempty"`
}

// CappedBuffer is an io.Writer that keeps at most Cap bytes and remembers
// whether it dropped any. The zero value keeps DefaultOutputCap bytes.
// It is not safe for concurrent use.
type CappedBuffer struct {
	Cap       int
	buf       []byte
	truncated bool
}

func (b *CappedBuffer) Write(p []byte) (int, error) {
	limit := b.Cap
	if limit <= 0 {
		limit = DefaultOutputCap
	}
	room := limit - len(b.buf)
	if room < len(p) {
		b.truncated = true
		if room > 0 {
			b.buf = append(b.buf, p[:room]...)
		}
		return len(p), nil
	}
	b.buf = append(b.buf, p...)
	return len(p), nil
}

// String returns what was kept.
func (b *CappedBuffer) String() string { return string(b.buf) }

// Truncated reports whether any bytes were dropped.
func (b *CappedBuffer) Truncated() bool { return b.truncated }
