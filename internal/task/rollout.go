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
	Batches    []int // sizes, in order
	Canary     bool  // pause after the first batch
	CanaryWait time.Duration
	FailLimit  int // stop once more than this many failed; -1: never
}

// Narrow combines a module's default rollout with a task's request for n
// hosts: the smaller batch, the lower failure threshold, a canary if
// either asks, the longer pause. Neither set: one batch, no threshold.
func Narrow(module, request *Rollout, n int) Plan {
	size := min(module.batch(n), request.batch(n))
	limit := module.failLimit(n)
	if l := request.failLimit(n); l >= 0 && (limit < 0 || l < limit) {
		limit = l
	}
	p := Plan{FailLimit: limit}
	if module != nil {
		p.Canary, p.CanaryWait = module.Canary, module.CanaryWait
	}
	if request != nil {
		p.Canary = p.Canary || request.Canary
		p.CanaryWait = max(p.CanaryWait, request.CanaryWait)
	}
	if size < 1 {
		size = 1
	}
	for left := n; left > 0; left -= size {
		p.Batches = append(p.Batches, min(size, left))
	}
	return p
}
