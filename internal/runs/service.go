// Package runs is the lifecycle of a run in the web tier: it validates a
// request once (module, hosts, parameters), records the run before anything
// is dispatched, hands it to the master through a Dispatcher, stores each
// host's result as it arrives and publishes the run's events to live
// subscribers, cancels runs, and shuts down without leaving a run recorded
// as running. The web handlers (API, pages, SSE, legacy) call it; they hold
// no run logic of their own.
package runs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/omserver/omserver-go/internal/apperr"
	"github.com/omserver/omserver-go/internal/store"
	"github.com/omserver/omserver-go/internal/task"
)

// Dispatcher hands runs to a master (internal/relay's *Client is the real
// one). Run blocks until the master has finished the task or ctx ends,
// calling onEvent for each output chunk and host result as it arrives
// (never concurrently). An error wrapping task.ErrInterrupted means the
// master accepted the run and was lost during it: the run is recorded as
// interrupted with the results it had, never re-sent.
type Dispatcher interface {
	Run(ctx context.Context, t task.Task, onEvent func(task.Event)) error
	Cancel(ctx context.Context, runID string) error
}

// Why a run's context ended, when we ended it.
var (
	errCancelledByUser = errors.New("cancelled by a user")
	errShuttingDown    = fmt.Errorf("%w: the web tier takes no new runs", task.ErrShuttingDown)
)

// cancelGrace is how long a cancelled run waits for the master to stop the
// hosts and report them before the stream is cut locally.
const cancelGrace = 10 * time.Second

// storeWriteTimeout bounds each database write of a run, which must happen
// even after the run's own context ended.
const storeWriteTimeout = 15 * time.Second

// DefaultLargeRunHosts is the default Config.LargeRunHosts.
const DefaultLargeRunHosts = 50

// Config tunes the service.
type Config struct {
	// MasterName is recorded with each run as the master that ran it.
	MasterName string
	// Registerer receives the service's metrics; nil registers nowhere.
	Registerer prometheus.Registerer
	// LargeRunHosts: a run on more hosts needs a typed confirmation of its
	// host count (Request.ConfirmedHosts); default 50.
	LargeRunHosts int
}

// Service owns the runs this process dispatched and has not finished.
type Service struct {
	cfg     Config
	st      *store.Store
	master  Dispatcher
	log     zerolog.Logger
	metrics metrics

	// base is the parent context of the runs, which outlive requests.
	base       context.Context
	cancelBase context.CancelFunc

	mu      sync.Mutex
	active  map[string]*activeRun
	closing bool
	wg      sync.WaitGroup
	// catalog caches the master's module catalog, when the dispatcher serves one.
	catalog *catalogCache
}

type metrics struct {
	started  prometheus.Counter
	finished *prometheus.CounterVec
}

// activeRun is a run dispatched by this process and not yet finished.
type activeRun struct {
	id        string
	cancel    context.CancelCauseFunc
	broker    *broker
	done      chan struct{}
	mu        sync.Mutex
	seen      map[string]bool     // host IPs with a stored result
	counts    map[task.Status]int // results by status, for the run's outcome
	hosts     map[string]bool
	lost      int         // results that could not be stored
	cancelled atomic.Bool // a user asked to cancel
	endOnce   sync.Once
}

// New returns a service recording runs in st and dispatching them to master.
func New(cfg Config, st *store.Store, master Dispatcher, log zerolog.Logger) (*Service, error) {
	if st == nil || master == nil {
		return nil, errors.New("runs: a store and a dispatcher are required")
	}
	if cfg.MasterName == "" {
		cfg.MasterName = "master"
	}
	if cfg.LargeRunHosts <= 0 {
		cfg.LargeRunHosts = DefaultLargeRunHosts
	}
	base, cancel := context.WithCancel(context.Background())
	cs, _ := master.(CatalogSource)
	s := &Service{
		cfg: cfg, st: st, master: master, log: log.With().Str("component", "runs").Logger(),
		base: base, cancelBase: cancel, active: make(map[string]*activeRun),
		catalog: &catalogCache{src: cs},
		metrics: metrics{
			started: prometheus.NewCounter(prometheus.CounterOpts{
				Namespace: "omserver_web", Name: "runs_started_total",
				Help: "Runs recorded and dispatched to the master.",
			}),
			finished: prometheus.NewCounterVec(prometheus.CounterOpts{
				Namespace: "omserver_web", Name: "runs_finished_total",
				Help: "Runs finished, by final status.",
			}, []string{"status"}),
		},
	}
	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(s.metrics.started); err != nil {
			return nil, fmt.Errorf("runs: metrics: %w", err)
		}
		if err := cfg.Registerer.Register(s.metrics.finished); err != nil {
			return nil, fmt.Errorf("runs: metrics: %w", err)
		}
	}
	return s, nil
}

// Start does the start-up work: runs a previous process left running are
// marked interrupted.
func (s *Service) Start(ctx context.Context) error {
	n, err := s.st.MarkInterruptedRuns(ctx)
	if err != nil {
		return fmt.Errorf("runs: mark interrupted runs: %w", err)
	}
	if n > 0 {
		s.log.Warn().Int64("runs", n).Msg("runs left running by a previous process marked interrupted")
	}
	return nil
}

func newRunID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("run id: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// Submit validates a request, records the run, then dispatches it in the
// background and returns its id. Nothing is recorded when validation fails
// (an apperr.Invalid error saying what to change).
func (s *Service) Submit(ctx context.Context, req Request) (string, error) {
	p, err := s.plan(ctx, req)
	if err != nil {
		return "", err
	}
	if err := confirmed(p, req.ConfirmedHosts); err != nil {
		return "", err
	}
	t := task.Task{ModuleID: int(p.ModuleID), Hosts: p.Hosts, Params: p.Params, User: req.User, ConfirmedHosts: req.ConfirmedHosts}
	moduleName := p.ModuleName
	id, err := newRunID()
	if err != nil {
		return "", err
	}
	t.RunID, t.IssuedAt, t.Nonce = id, time.Now().UTC(), id
	if err := t.Validate(); err != nil {
		return "", err
	}
	hostSet := make(map[string]bool, len(t.Hosts))
	for _, h := range t.Hosts {
		hostSet[h.IP] = true
	}

	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return "", errShuttingDown
	}
	// Registered before the record is written, so a cancel or a subscriber
	// arriving right after the answer always finds it.
	runCtx, cancel := context.WithCancelCause(s.base)
	ar := &activeRun{
		id: id, cancel: cancel, broker: newBroker(), done: make(chan struct{}),
		seen: make(map[string]bool), counts: make(map[task.Status]int), hosts: hostSet,
	}
	s.active[id] = ar
	s.wg.Add(1)
	s.mu.Unlock()

	rec := store.Run{
		ID: id, ModuleID: int64(t.ModuleID), ModuleName: moduleName, Username: req.User,
		Params: t.Params, Hosts: t.Hosts, Status: task.RunRunning, Master: s.cfg.MasterName,
	}
	if err := s.st.CreateRun(ctx, rec); err != nil {
		s.forget(ar)
		cancel(err)
		s.wg.Done()
		return "", fmt.Errorf("record run: %w", err)
	}
	s.metrics.started.Inc()
	s.log.Info().Str("run_id", id).Int("module_id", t.ModuleID).Int("hosts", len(t.Hosts)).Str("user", req.User).Msg("run started")
	go s.dispatch(runCtx, ar, t)
	return id, nil
}

func (s *Service) get(id string) *activeRun {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.active[id]
}

func (s *Service) forget(ar *activeRun) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.active[ar.id] == ar {
		delete(s.active, ar.id)
	}
}

// dispatch runs the task on the master and records its end.
func (s *Service) dispatch(ctx context.Context, ar *activeRun, t task.Task) {
	defer s.wg.Done()
	defer close(ar.done)
	err := s.master.Run(ctx, t, func(ev task.Event) { s.onEvent(ar, ev) })

	ar.mu.Lock()
	end := End{Status: task.Outcome(ar.counts, len(ar.hosts))}
	ar.mu.Unlock()
	switch {
	case errors.Is(context.Cause(ctx), task.ErrShuttingDown):
		end = End{Status: task.RunInterrupted, Error: "the web tier shut down before the run finished"}
	case ar.cancelled.Load():
		end = End{Status: task.RunCancelled}
	case errors.Is(err, task.ErrInterrupted):
		end = End{Status: task.RunInterrupted, Error: err.Error()}
	case err != nil:
		end = End{Status: task.RunFailed, Error: err.Error()}
	}
	ar.mu.Lock()
	if ar.lost > 0 {
		end.Error = strings.TrimSpace(end.Error + fmt.Sprintf(" (%d host result(s) could not be recorded in the database; see the web tier's log)", ar.lost))
	}
	ar.mu.Unlock()
	s.finish(ar, end)
}

// finish records a run's end once and tells its subscribers.
func (s *Service) finish(ar *activeRun, end End) {
	ar.endOnce.Do(func() { s.finishOnce(ar, end) })
}

func (s *Service) finishOnce(ar *activeRun, end End) {
	ctx, cancel := context.WithTimeout(context.Background(), storeWriteTimeout)
	defer cancel()
	if err := s.st.FinishRun(ctx, ar.id, end.Status, end.Error); err != nil {
		s.log.Error().Err(err).Str("run_id", ar.id).Str("status", string(end.Status)).Msg("record run end")
	}
	ar.broker.finish(end)
	s.forget(ar)
	ar.cancel(nil)
	s.metrics.finished.WithLabelValues(string(end.Status)).Inc()
	ev := s.log.Info()
	if end.Status != task.RunOK {
		ev = s.log.Warn()
	}
	ev.Str("run_id", ar.id).Str("status", string(end.Status)).Str("error", end.Error).Msg("run finished")
}

// onEvent handles one event from the master: a result is stored, then
// published; output is only published (the result holds the totals).
// Events for hosts outside the task, or a second result for a host, are
// dropped: the master must not be able to add rows the run did not ask for.
func (s *Service) onEvent(ar *activeRun, ev task.Event) {
	switch ev.Type {
	case task.EventOutput:
		if ev.Output == nil || !ar.hosts[ev.Output.Host.IP] {
			return
		}
		ev.RunID = ar.id
		ar.broker.publish(ev)
	case task.EventResult:
		if ev.Result != nil {
			s.record(ar, ev)
		}
	}
}

func (s *Service) record(ar *activeRun, ev task.Event) {
	r := *ev.Result
	ar.mu.Lock()
	defer ar.mu.Unlock()
	if !ar.hosts[r.Host.IP] {
		s.log.Warn().Str("run_id", ar.id).Str("host", r.Host.IP).Msg("master reported a host that is not in the run; ignored")
		return
	}
	if ar.seen[r.Host.IP] {
		s.log.Warn().Str("run_id", ar.id).Str("host", r.Host.IP).Msg("second result for a host; ignored")
		return
	}
	if !r.Status.Valid() {
		r.Error = strings.TrimSpace(r.Error + " (master sent unknown status " + fmt.Sprintf("%q", string(r.Status)) + ")")
		r.Status = task.StatusFailed
	}
	r.RunID = ar.id
	ctx, cancel := context.WithTimeout(context.Background(), storeWriteTimeout)
	defer cancel()
	if err := s.st.AddRunResult(ctx, ar.id, r); err != nil {
		// Still shown live: the operator should see what happened even if
		// the record is incomplete; the run's error says so.
		s.log.Error().Err(err).Str("run_id", ar.id).Str("host", r.Host.IP).Msg("store host result")
		ar.lost++
	}
	ar.seen[r.Host.IP] = true
	ar.counts[r.Status]++
	ev.RunID, ev.Result = ar.id, &r
	ar.broker.publish(ev)
}

// Running reports whether this process is running the run now.
func (s *Service) Running(id string) bool { return s.get(id) != nil }

// Subscribe returns a live subscription to a run this process is running,
// or false when it is not running here (finished, or never was). Events
// published before the call are not replayed: a subscriber reads the stored
// results after subscribing (results are stored, then published, so none
// falls between) and skips hosts it has seen.
func (s *Service) Subscribe(id string) (*Subscription, bool) {
	ar := s.get(id)
	if ar == nil {
		return nil, false
	}
	return ar.broker.subscribe(), true
}

// Unsubscribe ends a subscription its reader no longer reads.
func (s *Service) Unsubscribe(id string, sub *Subscription) {
	if ar := s.get(id); ar != nil {
		ar.broker.unsubscribe(sub)
		return
	}
	// The run ended meanwhile: its broker closed every subscription.
}

// Wait blocks until the run this process is running ends, or ctx ends. It
// returns at once for a run not running here.
func (s *Service) Wait(ctx context.Context, id string) error {
	ar := s.get(id)
	if ar == nil {
		return nil
	}
	select {
	case <-ar.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Cancel asks the master to stop a run; the run ends as cancelled when the
// master reports back, or after cancelGrace at the latest. A run that is not
// running here is task.ErrRunNotFound (apperr.Conflict when it exists but
// already ended).
func (s *Service) Cancel(ctx context.Context, id string) error {
	ar := s.get(id)
	if ar == nil {
		run, _, err := s.st.GetRun(ctx, id)
		if err != nil {
			return err
		}
		if run.Status != task.RunRunning {
			return apperr.Errorf(apperr.Conflict, "run %s is %s, not running: nothing to cancel", id, run.Status)
		}
		return apperr.Errorf(apperr.Conflict, "run %s is not running in this web tier: nothing to cancel", id)
	}
	if already := ar.cancelled.Swap(true); already {
		return nil
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := s.master.Cancel(cctx, id); err != nil {
		// The master cannot be told: cut the stream now.
		s.log.Warn().Err(err).Str("run_id", id).Msg("master cancel failed; stopping the run locally")
		ar.cancel(errCancelledByUser)
		return nil
	}
	go func() {
		t := time.NewTimer(cancelGrace)
		defer t.Stop()
		select {
		case <-ar.done:
		case <-t.C:
			ar.cancel(errCancelledByUser)
		}
	}()
	return nil
}

// Shutdown refuses new runs, waits for in-flight ones until ctx ends, then
// interrupts what is left and records it as interrupted.
func (s *Service) Shutdown(ctx context.Context) error {
	defer s.cancelBase()
	s.mu.Lock()
	s.closing = true
	s.mu.Unlock()
	allDone := make(chan struct{})
	go func() { s.wg.Wait(); close(allDone) }()
	select {
	case <-allDone:
		return nil
	case <-ctx.Done():
	}
	s.mu.Lock()
	left := make([]*activeRun, 0, len(s.active))
	for _, ar := range s.active {
		left = append(left, ar)
	}
	s.mu.Unlock()
	for _, ar := range left {
		cctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		if err := s.master.Cancel(cctx, ar.id); err != nil {
			s.log.Warn().Err(err).Str("run_id", ar.id).Msg("cancel on shutdown")
		}
		cancel()
		ar.cancel(errShuttingDown)
	}
	// The dispatch goroutines record "interrupted" as their runs end; one
	// that ignores its context is recorded here instead.
	t := time.NewTimer(5 * time.Second)
	defer t.Stop()
	select {
	case <-allDone:
		return nil
	case <-t.C:
	}
	for _, ar := range left {
		select {
		case <-ar.done:
		default:
			s.finish(ar, End{Status: task.RunInterrupted, Error: "the web tier shut down before the run finished"})
		}
	}
	return fmt.Errorf("runs: %d run(s) did not stop in time and were marked interrupted", len(left))
}
