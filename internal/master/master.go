// Package master is the dispatcher of the master daemon: it holds the
// loaded module set, validates and expands a task's parameters, runs the
// expanded steps on every host through a backend with bounded concurrency
// and per-host timeouts, streams each host's result as soon as it is done,
// and cancels runs on request.
package master

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/omserver/omserver-go/internal/backend"
	"github.com/omserver/omserver-go/internal/module"
	"github.com/omserver/omserver-go/internal/task"
)

// DefaultForks is the default number of hosts a master works on at once.
const DefaultForks = 50

// maxForks bounds the forks setting: one goroutine and, for the ssh
// backend, one connection per fork.
const maxForks = 10000

// backstopGrace is added to a host's timeout for the context handed to a
// backend, so a backend that fails to enforce its own timeout is still
// stopped; backends report the timeout themselves before this fires.
const backstopGrace = 10 * time.Second

// Config tunes the dispatcher. Zero values mean the documented defaults.
type Config struct {
	Forks          int           // hosts run at once, per run and master-wide; default DefaultForks (50)
	DefaultBackend string        // backend for modules that do not name one; required
	ConnectTimeout time.Duration // per host dial and auth; 0: backend default
	HostTimeout    time.Duration // per host run, for modules without a timeout; 0: no limit
	OutputCap      int           // bytes kept of each of stdout and stderr; 0: task.DefaultOutputCap
	// LargeRunHosts: a task on more hosts is refused unless its typed
	// confirmation (task.Task.ConfirmedHosts) matches; 0: no limit.
	LargeRunHosts int
	// Journal keeps accepted run ids and runs' events on disk; Start,
	// Follow and Ack need it (the relay uses them). Run does not.
	Journal *Journal
	// Observe, when set, sees every event of every run as it is emitted
	// (for metrics); it must not block.
	Observe func(task.Event)
	// SignKey, when set, signs every host result (internal/ledger), so the
	// web tier cannot forge what a host returned.
	SignKey ed25519.PrivateKey
}

// Master dispatches tasks. It is safe for concurrent use.
type Master struct {
	cfg      Config
	dir      string
	backends map[string]backend.Backend
	journal  *Journal
	log      zerolog.Logger

	modules  atomic.Pointer[moduleSet] // swapped whole by Reload
	reloadMu sync.Mutex                // one Reload at a time
	global   chan struct{}             // master-wide forks bound
	locks    *hostLocks                // per-host lock across runs (read-only runs share)

	mu      sync.Mutex
	runs    map[string]context.CancelCauseFunc
	paused  map[string]chan struct{} // runs whose rollout waits for Continue
	closing bool
	running sync.WaitGroup
}

// New loads and checks every module in modulesDir and returns a master; it
// fails on any invalid module or on a configuration it cannot honour.
func New(cfg Config, modulesDir string, backends map[string]backend.Backend, log zerolog.Logger) (*Master, error) {
	if cfg.Forks == 0 {
		cfg.Forks = DefaultForks
	}
	if cfg.Forks < 0 || cfg.Forks > maxForks {
		return nil, fmt.Errorf("master: forks %d is outside 1..%d", cfg.Forks, maxForks)
	}
	if cfg.ConnectTimeout < 0 || cfg.HostTimeout < 0 || cfg.OutputCap < 0 {
		return nil, errors.New("master: timeouts and output cap must not be negative")
	}
	if cfg.DefaultBackend == "" {
		return nil, errors.New("master: no default backend configured")
	}
	if _, ok := backends[cfg.DefaultBackend]; !ok {
		return nil, fmt.Errorf("master: default backend %q: %w (configured: %v)", cfg.DefaultBackend, task.ErrUnknownBackend, backendNames(backends))
	}
	m := &Master{
		cfg:      cfg,
		dir:      modulesDir,
		backends: backends,
		journal:  cfg.Journal,
		log:      log.With().Str("component", "master").Logger(),
		global:   make(chan struct{}, cfg.Forks),
		locks:    newHostLocks(),
		runs:     make(map[string]context.CancelCauseFunc),
		paused:   make(map[string]chan struct{}),
	}
	set, err := loadModules(modulesDir)
	if err != nil {
		return nil, fmt.Errorf("master: loading modules from %s: %w", modulesDir, err)
	}
	m.warnBackends(set.specs)
	m.modules.Store(set)
	m.log.Info().Str("dir", modulesDir).Int("modules", len(set.specs)).Int("forks", cfg.Forks).
		Str("default_backend", cfg.DefaultBackend).Msg("modules loaded")
	return m, nil
}

func backendNames(b map[string]backend.Backend) []string {
	names := make([]string, 0, len(b))
	for n := range b {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// warnBackends logs modules that force a backend this master lacks: they
// load, but every run of them is refused with task.ErrUnknownBackend.
func (m *Master) warnBackends(specs map[int]*module.Spec) {
	for _, s := range specs {
		if s.Backend != "" {
			if _, ok := m.backends[s.Backend]; !ok {
				m.log.Warn().Int("module", s.ID).Str("backend", s.Backend).Msg("module needs a backend this master does not have; its runs will be refused")
			}
		}
	}
}

// Reload loads and checks the modules directory again and swaps the new
// set in only when every module is valid; otherwise the old set stays.
// Runs in progress keep the steps they started with.
func (m *Master) Reload() error {
	m.reloadMu.Lock()
	defer m.reloadMu.Unlock()
	set, err := loadModules(m.dir)
	if err != nil {
		m.log.Error().Err(err).Str("dir", m.dir).Msg("module reload refused; keeping the loaded modules")
		return fmt.Errorf("master: reload: %w", err)
	}
	m.warnBackends(set.specs)
	m.modules.Store(set)
	m.log.Info().Str("dir", m.dir).Int("modules", len(set.specs)).Msg("modules reloaded")
	return nil
}

// ReloadOnSignal reloads the modules on every value received from sig
// (SIGHUP, wired by the caller with signal.Notify) until ctx ends.
func (m *Master) ReloadOnSignal(ctx context.Context, sig <-chan os.Signal) {
	for {
		select {
		case <-ctx.Done():
			return
		case s, ok := <-sig:
			if !ok {
				return
			}
			m.log.Info().Stringer("signal", s).Msg("reloading modules")
			// Reload logs its own outcome; a failed reload keeps serving.
			_ = m.Reload()
		}
	}
}

// Modules returns the loaded modules ordered by id.
func (m *Master) Modules() []*module.Spec {
	specs := m.modules.Load().specs
	out := make([]*module.Spec, 0, len(specs))
	for _, s := range specs {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// ModuleCount is how many modules are loaded (reported by the relay's
// Health call).
func (m *Master) ModuleCount() int { return len(m.modules.Load().specs) }

// Module returns the loaded module with the given id.
func (m *Master) Module(id int) (*module.Spec, bool) {
	s, ok := m.modules.Load().specs[id]
	return s, ok
}

// Running returns the ids of the runs in progress.
func (m *Master) Running() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	ids := make([]string, 0, len(m.runs))
	for id := range m.runs {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// Cancel stops the run with the given id: hosts in progress are cancelled
// and hosts not yet started are reported cancelled without running. It
// reports whether such a run was in progress.
func (m *Master) Cancel(runID string) bool {
	m.mu.Lock()
	cancel, ok := m.runs[runID]
	m.mu.Unlock()
	if ok {
		cancel(errCancelRequested)
		m.log.Info().Str("run_id", runID).Msg("run cancel requested")
	}
	return ok
}

// Continue lets a rollout paused after its canary batch for an
// operator's decision go on. It reports whether the run was waiting.
func (m *Master) Continue(runID string) bool {
	m.mu.Lock()
	c, ok := m.paused[runID]
	delete(m.paused, runID)
	m.mu.Unlock()
	if ok {
		close(c)
		m.log.Info().Str("run_id", runID).Msg("rollout continued on request")
	}
	return ok
}

// awaitContinue registers runID as waiting for Continue; the returned
// function unregisters it.
func (m *Master) awaitContinue(runID string) (<-chan struct{}, func()) {
	c := make(chan struct{})
	m.mu.Lock()
	m.paused[runID] = c
	m.mu.Unlock()
	return c, func() {
		m.mu.Lock()
		if m.paused[runID] == c {
			delete(m.paused, runID)
		}
		m.mu.Unlock()
	}
}

var errCancelRequested = errors.New("cancelled on request")

var errShutdownCancel = errors.New("cancelled: master shutting down")

// Shutdown stops accepting runs and waits for the running ones until ctx
// ends; then it cancels them and waits until their cancelled results have
// been emitted. It returns nil when every run finished by itself.
func (m *Master) Shutdown(ctx context.Context) error {
	m.mu.Lock()
	m.closing = true
	n := len(m.runs)
	m.mu.Unlock()
	m.log.Info().Int("running", n).Msg("master shutting down")
	done := make(chan struct{})
	go func() {
		m.running.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	m.mu.Lock()
	n = len(m.runs)
	for _, cancel := range m.runs {
		cancel(errShutdownCancel)
	}
	m.mu.Unlock()
	m.log.Warn().Int("runs", n).Msg("shutdown deadline reached; cancelling running tasks")
	<-done
	return fmt.Errorf("master: shutdown cancelled %d running task(s): %w", n, ctx.Err())
}
