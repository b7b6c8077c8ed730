// Package trail keeps the tamper-evident record going in the web tier: it
// seals each finished run's host results into the results chain (told by
// the runs service, and by a sweep for runs whose tier stopped before
// sealing), checks the master's signature of each result before it is
// stored, and verifies both chains on demand or periodically, keeping the
// last outcome for the audit page. The hashes are internal/ledger's; the
// chains live in internal/store.
package trail

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/omserver/omserver-go/internal/ledger"
	"github.com/omserver/omserver-go/internal/runs"
	"github.com/omserver/omserver-go/internal/store"
	"github.com/omserver/omserver-go/internal/task"
)

// Config tunes the trail.
type Config struct {
	// PublicKey is the masters' result-signing key: results are checked
	// before they are stored and again by Verify. Nil: no signature check.
	PublicKey ed25519.PublicKey
	// RequireSigned refuses results without a signature (with PublicKey).
	RequireSigned bool
	// SweepInterval is how often finished runs left unsealed are sealed [1m].
	SweepInterval time.Duration
	// VerifyInterval is how often both chains are verified in the
	// background [1h]; the audit page shows the last outcome.
	VerifyInterval time.Duration
}

// Trail seals and verifies.
type Trail struct {
	cfg Config
	st  *store.Store
	log zerolog.Logger

	verifyMu sync.Mutex // one verification at a time
	mu       sync.Mutex
	last     *Outcome
}

// Outcome is one verification of both chains.
type Outcome struct {
	At      time.Time           `json:"at"`
	Took    time.Duration       `json:"took_ns"`
	OK      bool                `json:"ok"`
	Chains  []store.ChainReport `json:"chains"`
	Error   string              `json:"error,omitempty"` // the check itself failed (database down...)
	Signing bool                `json:"signatures_checked"`
}

// New returns a trail over st.
func New(cfg Config, st *store.Store, log zerolog.Logger) *Trail {
	if cfg.SweepInterval <= 0 {
		cfg.SweepInterval = time.Minute
	}
	if cfg.VerifyInterval <= 0 {
		cfg.VerifyInterval = time.Hour
	}
	return &Trail{cfg: cfg, st: st, log: log.With().Str("component", "trail").Logger()}
}

var _ runs.Observer = (*Trail)(nil)

// Observe seals a run's results when it ends.
func (t *Trail) Observe(ctx context.Context, n runs.Notice) {
	if n.Kind != runs.NoticeEnded {
		return
	}
	if _, err := t.st.SealRunResults(ctx, n.RunID); err != nil {
		// The sweep seals it later.
		t.log.Warn().Err(err).Str("run_id", n.RunID).Msg("seal run results")
	}
}

// ErrRefused wraps a result refused by CheckResult.
var ErrRefused = errors.New("host result refused")

// CheckResult checks a result's master signature before it is stored
// (runs.Config.CheckResult); without a public key every result passes.
func (t *Trail) CheckResult(r task.HostResult) error {
	if t.cfg.PublicKey == nil {
		return nil
	}
	err := ledger.VerifyResult(t.cfg.PublicKey, r)
	if errors.Is(err, ledger.ErrUnsigned) && !t.cfg.RequireSigned {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%w: %w", ErrRefused, err)
	}
	return nil
}

// Run seals left-over runs and verifies the chains periodically until ctx
// ends.
func (t *Trail) Run(ctx context.Context) {
	sweep := time.NewTicker(t.cfg.SweepInterval)
	defer sweep.Stop()
	verify := time.NewTicker(t.cfg.VerifyInterval)
	defer verify.Stop()
	t.Sweep(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-sweep.C:
			t.Sweep(ctx)
		case <-verify.C:
			t.Verify(ctx)
		}
	}
}

// Sweep seals finished runs whose results are not in the chain yet.
func (t *Trail) Sweep(ctx context.Context) int {
	ids, err := t.st.UnsealedRuns(ctx, 100)
	if err != nil {
		if ctx.Err() == nil {
			t.log.Warn().Err(err).Msg("look for unsealed runs")
		}
		return 0
	}
	n := 0
	for _, id := range ids {
		k, err := t.st.SealRunResults(ctx, id)
		if err != nil {
			t.log.Warn().Err(err).Str("run_id", id).Msg("seal run results")
			continue
		}
		n += k
	}
	if n > 0 {
		t.log.Info().Int("results", n).Int("runs", len(ids)).Msg("sealed results of runs left unsealed")
	}
	return n
}

// Verify checks both chains now and keeps the outcome.
func (t *Trail) Verify(ctx context.Context) Outcome {
	t.verifyMu.Lock()
	defer t.verifyMu.Unlock()
	start := time.Now()
	o := Outcome{At: start.UTC(), OK: true, Signing: t.cfg.PublicKey != nil}
	for _, name := range []string{ledger.ChainAudit, ledger.ChainResults} {
		rep, err := t.st.VerifyChain(ctx, name, store.VerifyOptions{PublicKey: t.cfg.PublicKey, RequireSigned: t.cfg.RequireSigned})
		if err != nil {
			o.OK, o.Error = false, err.Error()
			break
		}
		o.Chains = append(o.Chains, rep)
		if !rep.OK() {
			o.OK = false
			t.log.Error().Str("chain", name).Str("break", rep.Break.String()).Msg("the tamper-evident record does not verify")
		}
	}
	o.Took = time.Since(start)
	t.mu.Lock()
	t.last = &o
	t.mu.Unlock()
	return o
}

// Last returns the last verification's outcome, if any.
func (t *Trail) Last() (Outcome, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.last == nil {
		return Outcome{}, false
	}
	return *t.last, true
}
