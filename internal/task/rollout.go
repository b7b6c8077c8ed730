package task

import "time"

// Rollout runs a task's hosts in batches: an optional canary batch first,
// then a pause, then the rest batch by batch, stopping (the hosts not
// reached are reported StatusSkipped) once too many hosts failed. A
// module's rollout is its default; a task may narrow it (smaller batches, a
// lower failure threshold, a canary, a longer pause), never widen it.
type Rollout struct {
	BatchSize    int `json:"batch_size,omitempty"`    // hosts per batch
	BatchPercent int `json:"batch_percent,omitempty"` // or this share of the hosts, 1..100
	// Canary runs the first batch alone and waits CanaryWait before the
	// next one.
	Canary     bool          `json:"canary,omitempty"`
	CanaryWait time.Duration `json:"canary_wait_ns,omitempty"`
	// CanaryConfirm: after the canary batch the rollout waits for an
	// operator's "continue" (at most CanaryWait, or MaxCanaryWait when
	// that is not set); without one in time, the rest is skipped.
	CanaryConfirm bool `json:"canary_confirm,omitempty"`
	// MaxFailures / MaxFailurePercent: the remaining batches are skipped
	// once more hosts than this failed (0: no threshold).
	MaxFailures       int `json:"max_failures,omitempty"`
	MaxFailurePercent int `json:"max_failure_percent,omitempty"`
}

// MaxCanaryWait bounds a canary pause.
const MaxCanaryWait = 24 * time.Hour

// Check reports a rollout out of range.
func (r *Rollout) Check() error {
	if r == nil {
		return nil
	}
	switch {
	case r.BatchSize < 0 || r.BatchSize > MaxHosts:
		return invalidf("rollout batch size %d is outside 0..%d", r.BatchSize, MaxHosts)
	case r.BatchPercent < 0 || r.BatchPercent > 100:
		return invalidf("rollout batch percent %d is outside 0..100", r.BatchPercent)
	case r.BatchSize > 0 && r.BatchPercent > 0:
		return invalidf("a rollout batch is a size or a percent, not both")
	case r.CanaryWait < 0 || r.CanaryWait > MaxCanaryWait:
		return invalidf("rollout canary wait %s is outside 0..%s", r.CanaryWait, MaxCanaryWait)
	case r.MaxFailures < 0 || r.MaxFailurePercent < 0 || r.MaxFailurePercent > 100:
		return invalidf("rollout failure threshold out of range")
	case r.MaxFailures > 0 && r.MaxFailurePercent > 0:
		return invalidf("a rollout failure threshold is a count or a percent, not both")
	}
	return nil
}

// batch is the batch size for n hosts (n when the rollout sets none).
func (r *Rollout) batch(n int) int {
	switch {
	case r == nil:
		return n
	case r.BatchSize > 0:
		return min(r.BatchSize, n)
	case r.BatchPercent > 0:
		return max(1, (n*r.BatchPercent+99)/100)
	}
	return n
}

// failLimit is how many failed hosts stop the rollout for n hosts (-1:
// no threshold).
func (r *Rollout) failLimit(n int) int {
	switch {
	case r == nil:
		return -1
	case r.MaxFailures > 0:
		return r.MaxFailures
	case r.MaxFailurePercent > 0:
		return n * r.MaxFailurePercent / 100
	}
	return -1
}

// Plan is a rollout resolved for a number of hosts.
type Plan struct {
	Batches       []int // sizes, in order
	Canary        bool  // pause after the first batch
	CanaryWait    time.Duration
	CanaryConfirm bool // the pause lasts until an operator continues
	FailLimit     int  // stop once more than this many failed; -1: never
}

// PauseBound is how long the canary pause lasts: the wait, or for a pause
// that waits for an operator, at most the wait (MaxCanaryWait if unset).
func (p Plan) PauseBound() time.Duration {
	if p.CanaryConfirm && p.CanaryWait <= 0 {
		return MaxCanaryWait
	}
	return p.CanaryWait
}

// Narrow combines a module's default rollout with a task's request for n
// hosts: the smaller batch, the lower failure threshold, a canary if
// either asks, the longer pause, an operator's confirmation if either
// asks. Neither set: one batch, no threshold.
func Narrow(module, request *Rollout, n int) Plan {
	size := min(module.batch(n), request.batch(n))
	limit := module.failLimit(n)
	if l := request.failLimit(n); l >= 0 && (limit < 0 || l < limit) {
		limit = l
	}
	p := Plan{FailLimit: limit}
	if module != nil {
		p.Canary, p.CanaryWait, p.CanaryConfirm = module.Canary, module.CanaryWait, module.CanaryConfirm
	}
	if request != nil {
		p.Canary = p.Canary || request.Canary
		p.CanaryWait = max(p.CanaryWait, request.CanaryWait)
		p.CanaryConfirm = p.CanaryConfirm || request.CanaryConfirm
	}
	p.Canary = p.Canary || p.CanaryConfirm
	if size < 1 {
		size = 1
	}
	for left := n; left > 0; left -= size {
		p.Batches = append(p.Batches, min(size, left))
	}
	return p
}
