package master

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/omserver/omserver-go/internal/backend"
	"github.com/omserver/omserver-go/internal/task"
)

// Run runs t and calls emit, never concurrently, with the run's events
// numbered from 1: one result event per host as soon as that host is done
// (completion order), then one done event. Everything that can refuse the
// task (its shape, the module, its parameters, the backend, a duplicate
// run id, shutdown) is checked before any host runs, and then Run returns
// the error (wrapping one of internal/task's errors) without calling emit.
// Otherwise Run returns nil after every host has exactly one result,
// cancelled ones included: Cancel(t.RunID) or the end of ctx cancels the
// hosts in progress and reports the hosts not yet started as cancelled
// without running them.
func (m *Master) Run(ctx context.Context, t task.Task, emit func(task.Event)) error {
	if err := t.Validate(); err != nil {
		return err
	}
	if err := t.CheckConfirmed(m.cfg.LargeRunHosts); err != nil {
		return err
	}
	if emit == nil {
		emit = func(task.Event) {}
	}
	spec, ok := m.Module(t.ModuleID)
	if !ok {
		return fmt.Errorf("%w: module %d is not installed on this master", task.ErrUnknownModule, t.ModuleID)
	}
	steps, err := spec.Expand(t.Params)
	if err != nil {
		return fmt.Errorf("module %d: %w", spec.ID, err)
	}
	name := spec.Backend
	if name == "" {
		name = m.cfg.DefaultBackend
	}
	be, ok := m.backends[name]
	if !ok {
		return fmt.Errorf("%w: module %d needs backend %q, which this master does not have (configured: %v)", task.ErrUnknownBackend, spec.ID, name, backendNames(m.backends))
	}

	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	if err := m.register(t.RunID, cancel); err != nil {
		return err
	}
	defer m.unregister(t.RunID)

	timeout := spec.Timeout
	if timeout == 0 {
		timeout = m.cfg.HostTimeout
	}
	opts := backend.Options{ConnectTimeout: m.cfg.ConnectTimeout, Timeout: timeout, OutputCap: m.cfg.OutputCap}
	log := m.log.With().Str("run_id", t.RunID).Int("module", spec.ID).Str("user", t.User).Logger()
	log.Info().Str("module_name", spec.Name).Str("backend", name).Int("hosts", len(t.Hosts)).
		Interface("params", t.Params).Dur("host_timeout", timeout).Msg("run started")
	start := time.Now()

	results := make(chan task.HostResult, len(t.Hosts))
	go m.dispatch(runCtx, be, t.Hosts, steps, opts, results)

	counts := make(map[task.Status]int)
	var seq uint64
	for range t.Hosts {
		r := <-results
		r.RunID = t.RunID
		counts[r.Status]++
		seq++
		emit(task.Event{Seq: seq, RunID: t.RunID, Type: task.EventResult, Result: &r})
	}
	seq++
	emit(task.Event{Seq: seq, RunID: t.RunID, Type: task.EventDone})
	ev := log.Info().Dur("elapsed", time.Since(start)).Int("hosts", len(t.Hosts))
	for st, n := range counts {
		ev = ev.Int(string(st), n)
	}
	if cause := context.Cause(runCtx); cause != nil && runCtx.Err() != nil {
		ev = ev.AnErr("cancel_cause", cause)
	}
	ev.Msg("run finished")
	return nil
}

// register records a starting run so Cancel and Shutdown can find it.
func (m *Master) register(runID string, cancel context.CancelCauseFunc) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closing {
		return fmt.Errorf("%w: the master takes no new runs", task.ErrShuttingDown)
	}
	if _, dup := m.runs[runID]; dup {
		return fmt.Errorf("%w: %q is already running", task.ErrDuplicateRun, runID)
	}
	m.runs[runID] = cancel
	m.running.Add(1)
	return nil
}

func (m *Master) unregister(runID string) {
	m.mu.Lock()
	delete(m.runs, runID)
	m.mu.Unlock()
	m.running.Done()
}

// dispatch starts one goroutine per host, at most Forks of this run and
// Forks master-wide at once, and sends exactly one result per host on
// results (buffered for every host, so senders never block).
func (m *Master) dispatch(ctx context.Context, be backend.Backend, hosts []task.Host, steps []backend.Step, opts backend.Options, results chan<- task.HostResult) {
	perRun := make(chan struct{}, m.cfg.Forks)
	for i, h := range hosts {
		if !acquire(ctx, perRun) {
			notStarted(ctx, hosts[i:], results)
			return
		}
		if !acquire(ctx, m.global) {
			<-perRun
			notStarted(ctx, hosts[i:], results)
			return
		}
		// A slot freed by a cancelled host can win the race against
		// ctx.Done in acquire's select: never start a host after cancel.
		if ctx.Err() != nil {
			<-m.global
			<-perRun
			notStarted(ctx, hosts[i:], results)
			return
		}
		go func() {
			defer func() { <-m.global; <-perRun }()
			results <- m.runHost(ctx, be, h, steps, opts)
		}()
	}
}

// acquire takes a slot of sem unless ctx ends first.
func acquire(ctx context.Context, sem chan struct{}) bool {
	if ctx.Err() != nil {
		return false
	}
	select {
	case sem <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

// notStarted reports hosts that never ran because the run was cancelled.
func notStarted(ctx context.Context, hosts []task.Host, results chan<- task.HostResult) {
	now := time.Now()
	msg := "cancelled before this host started"
	if cause := context.Cause(ctx); cause != nil {
		msg = cause.Error() + " before this host started"
	}
	for _, h := range hosts {
		results <- task.HostResult{Host: h, Status: task.StatusCancelled, ExitCode: -1, Error: msg, Started: now}
	}
}

// runHost runs one host and makes its result well-formed whatever the
// backend returned.
func (m *Master) runHost(ctx context.Context, be backend.Backend, h task.Host, steps []backend.Step, opts backend.Options) task.HostResult {
	hctx := ctx
	if opts.Timeout > 0 {
		var cancel context.CancelFunc
		hctx, cancel = context.WithTimeout(ctx, opts.Timeout+opts.ConnectTimeout+backstopGrace)
		defer cancel()
	}
	started := time.Now()
	r := safeRun(hctx, be, h, steps, opts)
	r.Host = h
	if r.Started.IsZero() {
		r.Started = started
	}
	if r.Duration == 0 {
		r.Duration = time.Since(started)
	}
	if !r.Status.Valid() {
		r.Error = fmt.Sprintf("backend %s returned invalid status %q: %s", be.Name(), r.Status, r.Error)
		r.Status = task.StatusFailed
	}
	// A host stopped by cancellation is cancelled, whatever the backend
	// made of the killed command.
	if r.Status != task.StatusOK && r.Status != task.StatusCancelled && errors.Is(ctx.Err(), context.Canceled) {
		if r.Error == "" {
			r.Error = context.Cause(ctx).Error()
		}
		r.Status = task.StatusCancelled
	}
	return r
}

// safeRun turns a backend panic into a failed result for that host, so one
// host can never take the master and every other host's run down with it.
func safeRun(ctx context.Context, be backend.Backend, h task.Host, steps []backend.Step, opts backend.Options) (r task.HostResult) {
	defer func() {
		if p := recover(); p != nil {
			r = task.HostResult{Host: h, Status: task.StatusFailed, ExitCode: -1,
				Error: fmt.Sprintf("backend %s panicked: %v", be.Name(), p)}
		}
	}()
	return be.Run(ctx, h, steps, opts)
}
