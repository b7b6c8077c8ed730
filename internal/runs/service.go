// Package runs is the lifecycle of a run in the web tier: it validates a
// request once (module, hosts, parameters), records the run before anything
// is dispatched, hands it to a master through a Dispatcher, stores each
// host's result as it arrives and publishes the run's events to live
// subscribers, cancels runs, and shuts down without losing one.
//
// Delivery (docs/DELIVERY.md says it for operators):
//   - The run id is the idempotency key: a master accepts it once, and the
//     web tier sends a run to a second master only when the first provably
//     got nothing (the relay client decides).
//   - The run record names the master before the task is sent there, and
//     keeps the sequence number of the last event whose effect is stored
//     (acked_seq). The master journals every event; the tier that owns the
//     run follows the master's stream, stores results and the run's end
//     (retrying with backoff while the database is unavailable: nothing is
//     acknowledged meanwhile), then acknowledges them to the master.
//   - A lost stream (network cut, master restart, this tier's restart) is
//     resumed from acked_seq on the same master. A run is interrupted only
//     when its master lost it (it stopped while the run was in progress) or
//     stays unreachable longer than MasterLostAfter.
//   - Several tiers may share one database: a run is owned through a lease
//     row renewed by a heartbeat; a tier takes over a run whose lease
//     expired (resuming it from the master's journal). Tiers without the
//     lease show a run live by following the master's stream read-only,
//     and cancel it through the master.
//
// The web handlers (API, pages, SSE, legacy) call it; they hold no run
// logic of their own.
package runs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/omserver/omserver-go/internal/apperr"
	"github.com/omserver/omserver-go/internal/store"
	"github.com/omserver/omserver-go/internal/task"
)

// Dispatcher reaches the masters (internal/relay's *Client is the real
// one); see its methods for the exact contract. Events are handed to
// onEvent in the master's order, one at a time; an error from onEvent ends
// the call with that error.
type Dispatcher interface {
	// Dispatch sends t to one master, calling target with its address
	// before sending, and streams the run's events until its done event.
	// It returns the master's address; errors wrapping relay's
	// ErrStreamLost (or task.ErrDuplicateRun) mean the run may be on that
	// master: follow it there with Resume, never send it elsewhere.
	Dispatch(ctx context.Context, t task.Task, target func(addr string) error, onEvent func(task.Event) error) (string, error)
	// Resume streams a run's events after seq after from the master at
	// addr, live until the done event. task.ErrRunNotFound: the master
	// never had it; task.ErrInterrupted: the master lost it;
	// task.ErrEventsDropped: it no longer keeps them; an Unavailable error:
	// try again later.
	Resume(ctx context.Context, addr, runID string, after uint64, onEvent func(task.Event) error) error
	// Ack tells the master at addr that the run's events up to seq are
	// stored.
	Ack(ctx context.Context, addr, runID string, seq uint64) error
	// Cancel asks the master running runID to cancel it.
	Cancel(ctx context.Context, runID string) error
	// Continue asks the master running runID to go on with its rollout,
	// paused for an operator's decision (task.ErrRunNotFound: no master
	// has it waiting).
	Continue(ctx context.Context, runID string) error
}

// Defaults of Config.
const (
	DefaultLeaseTTL        = 30 * time.Second
	DefaultMasterLostAfter = time.Minute
)

// Tuning.
const (
	// storeWriteTimeout bounds one attempt of a database write of a run.
	storeWriteTimeout = 15 * time.Second
	// maxBackoff bounds the wait between two attempts of a write, or of
	// reaching a master.
	maxBackoff = 5 * time.Second
	// neverAcceptedAfter: a run whose master does not know it this long
	// after it was issued can never be accepted by it any more (the relay
	// refuses a task issued more than its replay window, 2 minutes, ago,
	// in either direction): nothing of it ran.
	neverAcceptedAfter = 5 * time.Minute
	// maxClaimsPerPass bounds the runs one heartbeat takes over.
	maxClaimsPerPass = 100
	// followerPoll is how often a follower that cannot reach the master
	// looks at the database instead.
	followerPoll = 2 * time.Second
)

// DefaultLargeRunHosts is the default Config.LargeRunHosts.
const DefaultLargeRunHosts = 50

// Config tunes the service.
type Config struct {
	// TierID names this tier in run leases: unique among the tiers that
	// share the database and the same across restarts, so a restarted
	// tier takes its runs back at once. Default: the host name.
	TierID string
	// LeaseTTL: a run whose owner did not renew its lease this long is
	// taken over by another tier; the owner renews every third of it.
	LeaseTTL time.Duration
	// MasterLostAfter: a run whose master stays unreachable this long is
	// recorded interrupted.
	MasterLostAfter time.Duration
	// Registerer receives the service's metrics; nil registers nowhere.
	Registerer prometheus.Registerer
	// LargeRunHosts: a run on more hosts needs a typed confirmation of its
	// host count (Request.ConfirmedHosts); default 50.
	LargeRunHosts int
	// Observers are told when a run ends or pauses (see observer.go).
	Observers []Observer
	// CheckResult, when set, vets each host result before it is stored
	// (the master's signature, internal/trail); a refused result is
	// neither stored nor shown, and the run's error counts it.
	CheckResult func(task.HostResult) error
	// Budgets limit how many hosts one run may have (budget.go).
	Budgets Budgets
}

// Service runs the lifecycle. Create it with New, then Start it.
type Service struct {
	cfg     Config
	st      *store.Store
	master  Dispatcher
	log     zerolog.Logger
	metrics metrics
	now     func() time.Time

	// base is the parent context of everything the service does in the
	// background; cancelled by Shutdown.
	base       context.Context
	cancelBase context.CancelFunc
	started    atomic.Bool

	mu        sync.Mutex
	active    map[string]*activeRun       // runs this tier owns and follows now
	followers map[*Subscription]*follower // subscribers of runs other tiers own
	closing   bool
	wg        sync.WaitGroup // drivers, followers and the heartbeat
	// catalog caches the master's module catalog, when the dispatcher serves one.
	catalog *catalogCache
}

type metrics struct {
	started   prometheus.Counter
	finished  *prometheus.CounterVec
	takeovers prometheus.Counter
	retries   prometheus.Counter
}

// activeRun is a run this tier owns: its driver follows the master's
// stream and stores what arrives.
type activeRun struct {
	id        string
	cancel    context.CancelCauseFunc
	broker    *broker
	done      chan struct{}
	hosts     map[string]bool // the run's host IPs
	createdAt time.Time

	mu        sync.Mutex
	master    string                    // where the run is (or was sent)
	lastSeq   uint64                    // last event whose effect is stored
	pubSeq    uint64                    // last event published (a resumed stream repeats output)
	seen      map[string]bool           // host IPs with a stored result
	lost      int                       // results that could not be stored (refused by the database)
	refused   int                       // results CheckResult refused
	cancelled atomic.Bool               // a user asked to cancel
	leasedAt  atomic.Pointer[time.Time] // when this tier's lease row was known to exist
	acks      chan uint64               // latest stored seq, for the acknowledger
	progress  time.Time                 // last time the master sent something
}

// Errors that end a driver without ending its run.
var (
	errShuttingDown = fmt.Errorf("%w: the web tier takes no new runs", task.ErrShuttingDown)
	errLeaseLost    = errors.New("another web tier took the run over")
)

// New returns a service recording runs in st and dispatching them through
// master. Start it before use.
func New(cfg Config, st *store.Store, master Dispatcher, log zerolog.Logger) (*Service, error) {
	if st == nil || master == nil {
		return nil, errors.New("runs: a store and a dispatcher are required")
	}
	if cfg.TierID == "" {
		host, err := os.Hostname()
		if err != nil || host == "" {
			host = "web"
		}
		cfg.TierID = host
	}
	if len(cfg.TierID) > store.MaxOwnerLen {
		return nil, fmt.Errorf("runs: tier id %q is longer than %d bytes", cfg.TierID, store.MaxOwnerLen)
	}
	if cfg.LeaseTTL <= 0 {
		cfg.LeaseTTL = DefaultLeaseTTL
	}
	if cfg.MasterLostAfter <= 0 {
		cfg.MasterLostAfter = DefaultMasterLostAfter
	}
	if cfg.LargeRunHosts <= 0 {
		cfg.LargeRunHosts = DefaultLargeRunHosts
	}
	base, cancel := context.WithCancel(context.Background())
	cs, _ := master.(CatalogSource)
	s := &Service{
		cfg: cfg, st: st, master: master, now: time.Now,
		log:  log.With().Str("component", "runs").Str("tier", cfg.TierID).Logger(),
		base: base, cancelBase: cancel, active: make(map[string]*activeRun),
		catalog: &catalogCache{src: cs},
		metrics: metrics{
			started: prometheus.NewCounter(prometheus.CounterOpts{
				Namespace: "omserver_web", Name: "runs_started_total",
				Help: "Runs recorded and dispatched to a master.",
			}),
			finished: prometheus.NewCounterVec(prometheus.CounterOpts{
				Namespace: "omserver_web", Name: "runs_finished_total",
				Help: "Runs finished, by final status.",
			}, []string{"status"}),
			takeovers: prometheus.NewCounter(prometheus.CounterOpts{
				Namespace: "omserver_web", Name: "runs_taken_over_total",
				Help: "Runs this tier took over (its own after a restart, or another tier's whose lease expired).",
			}),
			retries: prometheus.NewCounter(prometheus.CounterOpts{
				Namespace: "omserver_web", Name: "run_store_retries_total",
				Help: "Writes of results or run state retried because the database was unavailable.",
			}),
		},
	}
	if cfg.Registerer != nil {
		for _, c := range []prometheus.Collector{s.metrics.started, s.metrics.finished, s.metrics.takeovers, s.metrics.retries} {
			if err := cfg.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("runs: metrics: %w", err)
			}
		}
	}
	return s, nil
}

// TierID is the id this tier holds run leases under.
func (s *Service) TierID() string { return s.cfg.TierID }

// Start takes back the runs this tier owned before a restart, and runs
// the heartbeat that keeps this tier's leases and takes over runs whose
// owner stopped. It never marks a run interrupted: a run left running is
// resumed from its master's journal, by whichever tier claims it.
func (s *Service) Start(ctx context.Context) error {
	if !s.started.CompareAndSwap(false, true) {
		return nil
	}
	s.wg.Add(1)
	go s.heartbeat()
	return nil
}

func newRunID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("run id: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// Submit validates a request, records the run (leased to this tier), then
// dispatches it in the background and returns its id. Nothing is recorded
// when validation fails (an apperr.Invalid error saying what to change).
func (s *Service) Submit(ctx context.Context, req Request) (string, error) {
	p, err := s.plan(ctx, req)
	if err != nil {
		return "", err
	}
	if err := confirmed(p, req.ConfirmedHosts); err != nil {
		return "", err
	}
	t := task.Task{ModuleID: int(p.ModuleID), Hosts: p.Hosts, Params: p.Params, User: req.User, ConfirmedHosts: req.ConfirmedHosts, Rollout: req.Rollout}
	moduleName := p.ModuleName
	id, err := newRunID()
	if err != nil {
		return "", err
	}
	// The run id is also the task's nonce: the master's replay guard then
	// refuses the same envelope twice, on top of refusing the id.
	now := s.now().UTC()
	t.RunID, t.IssuedAt, t.Nonce = id, now, id
	if err := t.Validate(); err != nil {
		return "", err
	}
	hostSet := make(map[string]bool, len(t.Hosts))
	for _, h := range t.Hosts {
		hostSet[h.IP] = true
	}

	// Registered before the record is written, so a cancel or a subscriber
	// arriving right after the answer always finds it.
	ar, runCtx, err := s.register(id, hostSet, now)
	if err != nil {
		return "", err
	}
	rec := store.Run{
		ID: id, ModuleID: int64(t.ModuleID), ModuleName: moduleName, Username: req.User,
		Params: t.Params, Hosts: t.Hosts, Status: task.RunRunning, CreatedAt: now,
	}
	if err := s.st.CreateLeasedRun(ctx, rec, s.cfg.TierID, now.Add(s.cfg.LeaseTTL)); err != nil {
		s.forget(ar)
		ar.cancel(err)
		s.wg.Done()
		close(ar.done)
		return "", fmt.Errorf("record run: %w", err)
	}
	leased := s.now().UTC()
	ar.leasedAt.Store(&leased)
	s.metrics.started.Inc()
	s.log.Info().Str("run_id", id).Int("module_id", t.ModuleID).Int("hosts", len(t.Hosts)).Str("user", req.User).Msg("run started")
	go s.drive(runCtx, ar, &t)
	return id, nil
}

// register makes a run active on this tier; the caller runs its driver
// (which calls s.wg.Done) or undoes the registration.
func (s *Service) register(id string, hosts map[string]bool, created time.Time) (*activeRun, context.Context, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return nil, nil, errShuttingDown
	}
	if _, dup := s.active[id]; dup {
		return nil, nil, fmt.Errorf("%w: run %s is already followed by this tier", task.ErrDuplicateRun, id)
	}
	ctx, cancel := context.WithCancelCause(s.base)
	ar := &activeRun{
		id: id, cancel: cancel, broker: newBroker(), done: make(chan struct{}), hosts: hosts, createdAt: created,
		seen: make(map[string]bool), acks: make(chan uint64, 1), progress: s.now(),
	}
	s.active[id] = ar
	s.wg.Add(1)
	return ar, ctx, nil
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

// Running reports whether this tier owns and follows the run now.
func (s *Service) Running(id string) bool { return s.get(id) != nil }

// Wait blocks until the run this tier follows ends (or this tier stops
// following it), or ctx ends. It returns at once for a run not followed
// here.
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

// Cancel asks the run's master to stop it, from any tier: the run ends as
// cancelled when the master reports it (its owner records that). A run
// that is not running is apperr.Conflict; a master that cannot be reached
// is apperr.Unavailable (try again).
func (s *Service) Cancel(ctx context.Context, id string) error {
	run, err := s.st.GetRunInfo(ctx, id)
	if err != nil {
		return err
	}
	if run.Status != task.RunRunning {
		return apperr.Errorf(apperr.Conflict, "run %s is %s, not running: nothing to cancel", id, run.Status)
	}
	ar := s.get(id)
	if ar == nil && run.Master == "" {
		return apperr.Errorf(apperr.Conflict, "run %s has not reached a master yet: nothing to cancel there; try again in a moment", id)
	}
	if ar != nil {
		ar.cancelled.Store(true)
	}
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := s.master.Cancel(cctx, id); err != nil {
		if errors.Is(err, task.ErrRunNotFound) {
			return apperr.Errorf(apperr.Conflict, "run %s: no master is running it (it is ending, or its master lost it): nothing to cancel", id)
		}
		s.log.Warn().Err(err).Str("run_id", id).Msg("cancel: master not reached")
		return fmt.Errorf("run %s: the master could not be asked to cancel it: %w", id, err)
	}
	s.log.Info().Str("run_id", id).Msg("run cancel requested")
	return nil
}

// Continue lets a rollout paused after its canary batch for an
// operator's decision start its next batch, from any tier. A run that is
// not running, or not waiting, is apperr.Conflict; a master that cannot be
// reached is apperr.Unavailable (try again).
func (s *Service) Continue(ctx context.Context, id string) error {
	run, err := s.st.GetRunInfo(ctx, id)
	if err != nil {
		return err
	}
	if run.Status != task.RunRunning {
		return apperr.Errorf(apperr.Conflict, "run %s is %s, not running: nothing to continue", id, run.Status)
	}
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := s.master.Continue(cctx, id); err != nil {
		if errors.Is(err, task.ErrRunNotFound) {
			return apperr.Errorf(apperr.Conflict, "run %s is not waiting for a continue (its rollout is not paused, or it went on already)", id)
		}
		s.log.Warn().Err(err).Str("run_id", id).Msg("continue: master not reached")
		return fmt.Errorf("run %s: the master could not be asked to continue it: %w", id, err)
	}
	s.log.Info().Str("run_id", id).Msg("rollout continue requested")
	return nil
}

// Shutdown refuses new runs, stops following the runs this tier owns and
// hands their leases back, so another tier (or this one, restarted) takes
// them over at once and resumes them from their masters' journals. Runs
// are never cut, cancelled or marked interrupted because a web tier stops.
func (s *Service) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	n := len(s.active)
	s.mu.Unlock()
	s.cancelBase()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = fmt.Errorf("runs: stopping: %w", ctx.Err())
	}
	rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if rerr := s.st.ReleaseLeases(rctx, s.cfg.TierID); rerr != nil {
		s.log.Warn().Err(rerr).Msg("could not hand the run leases back; other tiers take the runs over when the leases expire")
	}
	if n > 0 {
		s.log.Info().Int("runs", n).Msg("stopped following runs; they go on on their masters and are resumed by the next tier")
	}
	return err
}
