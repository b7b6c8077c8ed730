package master

import (
	"context"
	"errors"
	"fmt"
	"github.com/rs/zerolog"
	"sync/atomic"
	"time"

	"github.com/omserver/omserver-go/internal/backend"
	"github.com/omserver/omserver-go/internal/ledger"
	"github.com/omserver/omserver-go/internal/module"
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
	p, err := m.prepare(t)
	if err != nil {
		return err
	}
	if err := t.CheckConfirmed(m.cfg.LargeRunHosts); err != nil {
		return err
	}
	if emit == nil {
		emit = func(task.Event) {}
	}
	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	if err := m.register(t.RunID, cancel); err != nil {
		return err
	}
	defer m.unregister(t.RunID)
	m.execute(runCtx, p, emit)
	return nil
}

// Start accepts t and runs it in the background, independently of the
// caller: the run goes on when the web tier that sent it goes away, and
// its events go to the journal, where Follow reads them. Everything that
// can refuse the task (as for Run) is checked before anything runs, and a
// run id is accepted once, also across restarts (task.ErrDuplicateRun).
// Cancel and Shutdown stop it.
func (m *Master) Start(t task.Task) error {
	if m.journal == nil {
		return fmt.Errorf("%w: this master has no journal", task.ErrJournal)
	}
	p, err := m.prepare(t)
	if err != nil {
		return err
	}
	runCtx, cancel := context.WithCancelCause(context.Background())
	if err := m.register(t.RunID, cancel); err != nil {
		cancel(nil)
		return err
	}
	// Persisted before any host runs: from here a second dispatch of this
	// id, even after a restart of this master, runs nothing.
	if err := m.journal.Accept(t); err != nil {
		m.unregister(t.RunID)
		cancel(nil)
		return err
	}
	go func() {
		defer m.unregister(t.RunID)
		defer cancel(nil)
		m.execute(runCtx, p, func(ev task.Event) { m.journal.Append(t.RunID, ev) })
	}()
	return nil
}

// Follow calls send with the events of a run started with Start, after
// seq after, as they are journaled; see Journal.Follow for its errors.
func (m *Master) Follow(ctx context.Context, runID string, after uint64, send func(task.Event) error) error {
	if m.journal == nil {
		return fmt.Errorf("%w: this master has no journal", task.ErrRunNotFound)
	}
	return m.journal.Follow(ctx, runID, after, send)
}

// Ack records that the web tier stored a run's events up to seq.
func (m *Master) Ack(runID string, seq uint64) error {
	if m.journal == nil {
		return fmt.Errorf("%w: this master has no journal", task.ErrRunNotFound)
	}
	return m.journal.Ack(runID, seq)
}

// plan is a task checked and expanded, ready to run.
type plan struct {
	t       task.Task
	spec    *module.Spec
	steps   []backend.Step
	be      backend.Backend
	backend string
}

// prepare checks everything that can refuse t before any host runs: its
// shape, the module, its parameters and the backend.
func (m *Master) prepare(t task.Task) (*plan, error) {
	if err := t.Validate(); err != nil {
		return nil, err
	}
	spec, ok := m.Module(t.ModuleID)
	if !ok {
		return nil, fmt.Errorf("%w: module %d is not installed on this master", task.ErrUnknownModule, t.ModuleID)
	}
	steps, err := spec.Expand(t.Params)
	if err != nil {
		return nil, fmt.Errorf("module %d: %w", spec.ID, err)
	}
	if spec.MaxHosts > 0 && len(t.Hosts) > spec.MaxHosts {
		return nil, fmt.Errorf("%w: module %d runs on at most %d hosts at once, the task has %d", task.ErrOverBudget, spec.ID, spec.MaxHosts, len(t.Hosts))
	}
	name := spec.Backend
	if name == "" {
		name = m.cfg.DefaultBackend
	}
	be, ok := m.backends[name]
	if !ok {
		return nil, fmt.Errorf("%w: module %d needs backend %q, which this master does not have (configured: %v)", task.ErrUnknownBackend, spec.ID, name, backendNames(m.backends))
	}
	return &plan{t: t, spec: spec, steps: steps, be: be, backend: name}, nil
}

// execute runs a prepared task to its end: one result event per host as
// soon as that host is done, then one done event saying how the run ended.
func (m *Master) execute(runCtx context.Context, p *plan, emit func(task.Event)) {
	t, spec := p.t, p.spec
	if m.cfg.Observe != nil {
		inner := emit
		emit = func(ev task.Event) {
			m.cfg.Observe(ev)
			inner(ev)
		}
	}
	timeout := spec.Timeout
	if timeout == 0 {
		timeout = m.cfg.HostTimeout
	}
	opts := backend.Options{ConnectTimeout: m.cfg.ConnectTimeout, Timeout: timeout, OutputCap: m.cfg.OutputCap}
	log := m.log.With().Str("run_id", t.RunID).Int("module", spec.ID).Str("user", t.User).Logger()
	log.Info().Str("module_name", spec.Name).Str("backend", p.backend).Int("hosts", len(t.Hosts)).
		Interface("params", t.Params).Dur("host_timeout", timeout).Msg("run started")
	start := time.Now()

	// Results and rollout batches, in the order roll reports them.
	report := make(chan task.Event, len(t.Hosts))
	out := newOutputQueue(t.RunID)
	lp := lockPolicy{runID: t.RunID, readOnly: p.spec.ReadOnly, refuse: p.spec.Lock == module.LockRefuse, wait: p.spec.LockWait}
	go m.roll(runCtx, p, opts, lp, out, report, log)

	counts := make(map[task.Status]int)
	var seq uint64
	send := func(ev task.Event) {
		seq++
		ev.Seq = seq
		emit(ev)
	}
	for left := len(t.Hosts); left > 0; {
		select {
		case ev := <-out.c:
			send(ev)
		case ev := <-report:
			// Every chunk of this host was queued before its result:
			// pass them on first, so a host's output precedes its end.
			out.drain(send)
			if ev.Type == task.EventBatch {
				ev.RunID = t.RunID
				send(ev)
				continue
			}
			r := *ev.Result
			r.RunID = t.RunID
			if m.cfg.SignKey != nil {
				r.Signature = ledger.SignResult(m.cfg.SignKey, r)
			}
			counts[r.Status]++
			send(task.Event{RunID: t.RunID, Type: task.EventResult, Result: &r})
			left--
		}
	}
	out.drain(send)
	end := task.RunEnd{Status: task.RunDone}
	cause := context.Cause(runCtx)
	if runCtx.Err() != nil && cause != nil {
		end = task.RunEnd{Status: task.RunCancelled, Error: cause.Error()}
	}
	send(task.Event{RunID: t.RunID, Type: task.EventDone, End: &end})
	if n := out.dropped.Load(); n > 0 {
		log.Warn().Int64("chunks", n).Msg("live output chunks dropped: the reader fell behind (results keep the output)")
	}
	ev := log.Info().Dur("elapsed", time.Since(start)).Int("hosts", len(t.Hosts))
	for st, n := range counts {
		ev = ev.Int(string(st), n)
	}
	if end.Status == task.RunCancelled {
		ev = ev.Str("cancel_cause", end.Error)
	}
	ev.Msg("run finished")
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

// roll runs a task's hosts batch by batch as its rollout (the module's,
// narrowed by the task) says: without one, all hosts form one batch. After
// a canary batch it pauses (canaryPause); once more hosts failed than the
// threshold allows, the hosts of the remaining batches are reported
// skipped without running. It reports on report, in order, one result
// event per host and, for a run in several batches, a batch event as each
// batch starts and when it pauses.
func (m *Master) roll(ctx context.Context, p *plan, opts backend.Options, lp lockPolicy, out *outputQueue, report chan<- task.Event, log zerolog.Logger) {
	hosts := p.t.Hosts
	pl := task.Narrow(p.spec.Rollout, p.t.Rollout, len(hosts))
	staged := len(pl.Batches) > 1
	if staged {
		log.Info().Ints("batches", pl.Batches).Bool("canary", pl.Canary).Dur("canary_wait", pl.CanaryWait).
			Bool("canary_confirm", pl.CanaryConfirm).Int("fail_limit", pl.FailLimit).Msg("rollout")
	}
	forward := func(r task.HostResult) {
		report <- task.Event{Type: task.EventResult, Result: &r}
	}
	if !staged && pl.FailLimit < 0 {
		// One batch and nothing to count: each host reports straight on.
		m.dispatch(ctx, p.be, hosts, p.steps, opts, lp, out, forward)
		return
	}
	failed, start := 0, 0
	for i, size := range pl.Batches {
		rest := hosts[start:]
		if pl.FailLimit >= 0 && failed > pl.FailLimit {
			log.Warn().Int("failed", failed).Int("batch", i+1).Msg("rollout stopped by its failure threshold")
			skipped(rest, fmt.Sprintf("rollout stopped: %d host(s) failed, more than the %d allowed; batches %d to %d were not started", failed, pl.FailLimit, i+1, len(pl.Batches)), forward)
			return
		}
		if i == 1 && pl.Canary {
			if why := m.canaryPause(ctx, p.t.RunID, pl, report, log); why != "" {
				skipped(rest, why, forward)
				return
			}
		}
		if ctx.Err() != nil {
			notStarted(ctx, rest, forward)
			return
		}
		if staged {
			report <- task.Event{Type: task.EventBatch, Batch: &task.Batch{Index: i + 1, Count: len(pl.Batches), Hosts: size}}
		}
		// dispatch blocks while the forks bound holds hosts back: forward
		// each result as it comes, not once every host has started.
		batch := make(chan task.HostResult, size)
		go m.dispatch(ctx, p.be, hosts[start:start+size], p.steps, opts, lp, out, sendTo(batch))
		for range size {
			r := <-batch
			if r.Status != task.StatusOK && r.Status != task.StatusCancelled {
				failed++
			}
			forward(r)
		}
		start += size
	}
}

// canaryPause waits after the canary batch: the plan's wait, then on; or,
// when the rollout asks for an operator's confirmation, until Continue
// (at most the pause bound). It says why the rollout stops ("" when it
// goes on; a cancel is left to the caller).
func (m *Master) canaryPause(ctx context.Context, runID string, pl task.Plan, report chan<- task.Event, log zerolog.Logger) string {
	bound := pl.PauseBound()
	var cont <-chan struct{}
	if pl.CanaryConfirm {
		c, done := m.awaitContinue(runID)
		defer done()
		cont = c
	}
	report <- task.Event{Type: task.EventBatch, Batch: &task.Batch{Index: 2, Count: len(pl.Batches), Hosts: pl.Batches[1],
		Paused: true, Confirm: pl.CanaryConfirm, Until: time.Now().Add(bound).UTC().Truncate(time.Second)}}
	log.Info().Dur("bound", bound).Bool("confirm", pl.CanaryConfirm).Msg("rollout: canary batch done; paused before the next batch")
	t := time.NewTimer(bound)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-cont:
	case <-t.C:
		if pl.CanaryConfirm {
			log.Warn().Dur("bound", bound).Msg("rollout stopped: nobody continued it")
			return fmt.Sprintf("rollout stopped: no operator continued it within %s of the canary batch; batches 2 to %d were not started", bound, len(pl.Batches))
		}
	}
	return ""
}

// skipped reports hosts a stopped rollout never reached.
func skipped(hosts []task.Host, why string, report func(task.HostResult)) {
	now := time.Now()
	for _, h := range hosts {
		report(task.HostResult{Host: h, Status: task.StatusSkipped, ExitCode: -1, Error: why, Started: now})
	}
}

// lockPolicy is how a run's hosts take the per-host lock.
type lockPolicy struct {
	runID    string
	readOnly bool
	refuse   bool          // fail a busy host at once instead of waiting
	wait     time.Duration // the longest wait for a busy host
}

// dispatch starts one goroutine per host, at most Forks of this run and
// Forks master-wide running at once, and reports exactly one result per
// host (report must not block: the channels behind it are buffered for
// every host). Each host
// first takes its per-host lock, then a master-wide slot: a host waiting
// for another run's lock holds no master-wide slot, so runs never starve
// each other.
func (m *Master) dispatch(ctx context.Context, be backend.Backend, hosts []task.Host, steps []backend.Step, opts backend.Options, lp lockPolicy, out *outputQueue, report func(task.HostResult)) {
	perRun := make(chan struct{}, m.cfg.Forks)
	for i, h := range hosts {
		if !acquire(ctx, perRun) {
			notStarted(ctx, hosts[i:], report)
			return
		}
		// A slot freed by a cancelled host can win the race against
		// ctx.Done in acquire's select: never start a host after cancel.
		if ctx.Err() != nil {
			<-perRun
			notStarted(ctx, hosts[i:], report)
			return
		}
		go func() {
			defer func() { <-perRun }()
			hook := out.hook(h)
			release, refused := m.lockHost(ctx, h, lp, hook)
			if refused != nil {
				report(*refused)
				return
			}
			defer release()
			if !acquire(ctx, m.global) || ctx.Err() != nil {
				notStarted(ctx, []task.Host{h}, report)
				return
			}
			defer func() { <-m.global }()
			hostOpts := opts
			hostOpts.OnOutput = hook
			report(m.runHost(ctx, be, h, steps, hostOpts))
		}()
	}
}

// lockHost takes h's per-host lock for the run, waiting (and saying so in
// the host's live output) or refusing as the module chose. Without the
// lock it returns the host's result: it never ran.
func (m *Master) lockHost(ctx context.Context, h task.Host, lp lockPolicy, hook func(task.Stream, []byte)) (func(), *task.HostResult) {
	if m.locks == nil {
		return func() {}, nil // only a benchmark's baseline runs without locks
	}
	key := h.IP
	if key == "" {
		key = h.Name
	}
	busy := func(msg string) *task.HostResult {
		return &task.HostResult{Host: h, Status: task.StatusFailed, ExitCode: -1, Error: msg, Started: time.Now()}
	}
	if lp.refuse {
		if who, _ := m.locks.tryAcquire(key, lp.runID, lp.readOnly); who != "" {
			return nil, busy(fmt.Sprintf("host busy: run %s is working on it, and this module does not wait; nothing ran", who))
		}
	} else {
		var last string
		wctx, cancel := context.WithTimeoutCause(ctx, lp.wait, errLockWait)
		err := m.locks.acquire(wctx, key, lp.runID, lp.readOnly, func(who string) {
			last = who
			hook(task.Stderr, []byte(fmt.Sprintf("waiting for run %s on host %s\n", who, h)))
			m.log.Info().Str("run_id", lp.runID).Str("host", h.String()).Str("holder", who).Msg("host busy: waiting for another run")
		})
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				r := busy(context.Cause(ctx).Error() + " while waiting for another run on this host")
				r.Status = task.StatusCancelled
				return nil, r
			}
			return nil, busy(fmt.Sprintf("waited %s for run %s on host %s; gave up, nothing ran", lp.wait, last, h))
		}
	}
	return func() { m.locks.release(key, lp.runID, lp.readOnly) }, nil
}

var errLockWait = errors.New("waited too long for the host's lock")

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
func notStarted(ctx context.Context, hosts []task.Host, report func(task.HostResult)) {
	now := time.Now()
	msg := "cancelled before this host started"
	if cause := context.Cause(ctx); cause != nil {
		msg = cause.Error() + " before this host started"
	}
	for _, h := range hosts {
		report(task.HostResult{Host: h, Status: task.StatusCancelled, ExitCode: -1, Error: msg, Started: now})
	}
}

// sendTo reports results on c.
func sendTo(c chan<- task.HostResult) func(task.HostResult) {
	return func(r task.HostResult) { c <- r }
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

// outputBuffer bounds the live output chunks of one run waiting to be
// emitted; beyond it chunks are dropped (the results keep the output).
const outputBuffer = 1024

// outputQueue carries live output chunks from the hosts' goroutines to the
// one goroutine that emits a run's events. Hooks never block: the
// backend's contract is that OnOutput returns at once.
type outputQueue struct {
	runID   string
	c       chan task.Event
	dropped atomic.Int64
}

func newOutputQueue(runID string) *outputQueue {
	return &outputQueue{runID: runID, c: make(chan task.Event, outputBuffer)}
}

// hook is the OnOutput of one host.
func (q *outputQueue) hook(h task.Host) func(task.Stream, []byte) {
	return func(stream task.Stream, data []byte) {
		ev := task.Event{RunID: q.runID, Type: task.EventOutput, Output: &task.Output{Host: h, Stream: stream, Data: string(data)}}
		select {
		case q.c <- ev:
		default:
			q.dropped.Add(1)
		}
	}
}

// drain passes every queued chunk to send without waiting for more.
func (q *outputQueue) drain(send func(task.Event)) {
	for {
		select {
		case ev := <-q.c:
			send(ev)
		default:
			return
		}
	}
}
