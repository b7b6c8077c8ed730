package web

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/omserver/omserver-go/internal/param"
	"github.com/omserver/omserver-go/internal/store"
	"github.com/omserver/omserver-go/internal/task"
)

// Run statuses as stored.
const (
	runRunning     = store.RunRunning
	runDone        = store.RunDone
	runFailed      = store.RunFailed
	runCancelled   = store.RunCancelled
	runInterrupted = store.RunInterrupted
)

// Why a run's context ended, when we ended it.
var (
	errCancelledByUser = errors.New("cancelled by a user")
	errShuttingDown    = errors.New("web tier shutting down")
)

// cancelGrace is how long a cancelled run waits for the master to stop the
// hosts and report them before the stream is cut locally.
const cancelGrace = 10 * time.Second

// storeWriteTimeout bounds each database write of a run, which must happen
// even after the run's own context ended.
const storeWriteTimeout = 15 * time.Second

// badRequest is a validation failure shown to the caller as 400.
type badRequest struct{ msg string }

func (e *badRequest) Error() string { return e.msg }

func badReq(format string, args ...any) error {
	return &badRequest{msg: fmt.Sprintf(format, args...)}
}

// activeRun is a run dispatched by this process and not yet finished.
type activeRun struct {
	id        string
	cancel    context.CancelCauseFunc
	broker    *broker
	done      chan struct{}
	mu        sync.Mutex
	seen      map[string]bool // host IPs with a stored result
	hosts     map[string]bool
	lost      int         // results that could not be stored
	cancelled atomic.Bool // a user asked to cancel
	endOnce   sync.Once
}

// runManager owns the in-flight runs of this process.
type runManager struct {
	s       *Server
	mu      sync.Mutex
	active  map[string]*activeRun
	closing bool
	wg      sync.WaitGroup
}

func newRunManager(s *Server) *runManager {
	return &runManager{s: s, active: make(map[string]*activeRun)}
}

func (m *runManager) get(id string) *activeRun {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.active[id]
}

func newRunID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("run id: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// runRequest is the body of POST /api/v1/runs.
type runRequest struct {
	ModuleID int64             `json:"module_id"`
	Hosts    []string          `json:"hosts"`
	Params   map[string]string `json:"params"`
}

// validateParams checks submitted values against the module's declared
// schema and returns the full parameter set (defaults filled in). The
// master validates again; this is so a bad request is refused before
// anything is recorded.
func validateParams(schema []param.Param, in map[string]string) (map[string]string, error) {
	if len(in) > task.MaxParams {
		return nil, badReq("%d parameters is more than the limit of %d", len(in), task.MaxParams)
	}
	declared := make(map[string]param.Param, len(schema))
	for _, p := range schema {
		declared[p.Name] = p
	}
	var unknown []string
	for name := range in {
		if _, ok := declared[name]; !ok {
			unknown = append(unknown, name)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		for i, u := range unknown {
			unknown[i] = fmt.Sprintf("%q", clipRunes(u, 64))
		}
		return nil, badReq("unknown parameter(s) %s: this module declares %s", strings.Join(unknown, ", "), declaredNames(schema))
	}
	out := make(map[string]string, len(schema))
	for _, p := range schema {
		v, ok := in[p.Name]
		if !ok {
			v = p.Default
		}
		if !utf8.ValidString(v) {
			return nil, badReq("parameter %s is not valid UTF-8", p.Name)
		}
		if i := strings.IndexFunc(v, unicode.IsControl); i >= 0 {
			return nil, badReq("parameter %s contains a control character at byte %d", p.Name, i)
		}
		if len(v) > task.MaxParamBytes {
			return nil, badReq("parameter %s is longer than %d bytes", p.Name, task.MaxParamBytes)
		}
		if err := p.Check(v); err != nil {
			return nil, badReq("parameter %s: %s", p.Name, strings.TrimPrefix(err.Error(), p.Name+": "))
		}
		out[p.Name] = v
	}
	return out, nil
}

func declaredNames(schema []param.Param) string {
	if len(schema) == 0 {
		return "no parameters"
	}
	names := make([]string, len(schema))
	for i, p := range schema {
		names[i] = p.Name
	}
	return strings.Join(names, ", ")
}

func clipRunes(s string, n int) string {
	s = strings.ToValidUTF8(s, "?")
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n]) + "…"
}

// validateHosts checks the requested IPs and returns them as inventory rows.
func (m *runManager) validateHosts(ctx context.Context, ips []string) ([]store.Server, error) {
	if len(ips) == 0 {
		return nil, badReq("no hosts: choose at least one server")
	}
	if len(ips) > task.MaxHosts {
		return nil, badReq("%d hosts is more than the limit of %d", len(ips), task.MaxHosts)
	}
	seen := make(map[string]bool, len(ips))
	for _, ip := range ips {
		if strings.TrimSpace(ip) == "" {
			return nil, badReq("a host is empty")
		}
		if seen[ip] {
			return nil, badReq("host %q is listed twice", clipRunes(ip, 64))
		}
		seen[ip] = true
	}
	servers, err := m.s.st.GetServers(ctx, ips)
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrInvalid) {
		return nil, badReq("unknown host(s), not in the inventory: %s", strings.TrimSuffix(cleanStoreMsg(err), ": not found"))
	}
	if err != nil {
		return nil, fmt.Errorf("look up hosts: %w", err)
	}
	return servers, nil
}

// start validates a run request, records the run, then dispatches it in the
// background. Nothing is recorded when validation fails (badRequest).
func (m *runManager) start(ctx context.Context, who *principal, req runRequest) (string, error) {
	if req.ModuleID <= 0 {
		return "", badReq("module_id %d is not a positive integer", req.ModuleID)
	}
	mod, err := m.s.st.GetModule(ctx, req.ModuleID)
	if errors.Is(err, store.ErrNotFound) {
		return "", badReq("module %d does not exist", req.ModuleID)
	}
	if err != nil {
		return "", fmt.Errorf("look up module %d: %w", req.ModuleID, err)
	}
	servers, err := m.validateHosts(ctx, req.Hosts)
	if err != nil {
		return "", err
	}
	params, err := validateParams(mod.Params, req.Params)
	if err != nil {
		return "", err
	}
	id, err := newRunID()
	if err != nil {
		return "", err
	}
	hosts := make([]task.Host, len(servers))
	hostSet := make(map[string]bool, len(servers))
	for i, sv := range servers {
		hosts[i] = task.Host{IP: sv.IP, Name: sv.Name}
		hostSet[sv.IP] = true
	}
	t := task.Task{
		RunID: id, ModuleID: int(mod.ID), Hosts: hosts, Params: params, User: who.Name,
		IssuedAt: time.Now().UTC(), Nonce: id,
	}
	if err := t.Validate(); err != nil {
		return "", badReq("%s", strings.TrimPrefix(err.Error(), "task: "))
	}

	m.mu.Lock()
	if m.closing {
		m.mu.Unlock()
		return "", errShuttingDown
	}
	// Registered before the record is written, so a cancel or an SSE
	// subscriber arriving right after the 202 always finds it.
	runCtx, cancel := context.WithCancelCause(m.s.base)
	ar := &activeRun{
		id: id, cancel: cancel, broker: newBroker(), done: make(chan struct{}),
		seen: make(map[string]bool), hosts: hostSet,
	}
	m.active[id] = ar
	m.wg.Add(1)
	m.mu.Unlock()

	rec := store.Run{
		ID: id, ModuleID: mod.ID, ModuleName: mod.Name, Username: who.Name,
		Params: params, Hosts: hosts, Status: runRunning, Master: m.s.cfg.MasterName,
	}
	if err := m.s.st.CreateRun(ctx, rec); err != nil {
		m.forget(ar)
		cancel(err)
		m.wg.Done()
		return "", fmt.Errorf("record run: %w", err)
	}
	m.s.metrics.runsStarted.Inc()
	m.s.log.Info().Str("run_id", id).Int64("module_id", mod.ID).Int("hosts", len(hosts)).Str("user", who.Name).Msg("run started")
	go m.dispatch(runCtx, ar, t)
	return id, nil
}

func (m *runManager) forget(ar *activeRun) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.active[ar.id] == ar {
		delete(m.active, ar.id)
	}
}

// dispatch runs the task on the master and records its end.
func (m *runManager) dispatch(ctx context.Context, ar *activeRun, t task.Task) {
	defer m.wg.Done()
	defer close(ar.done)
	err := m.s.master.Run(ctx, t, func(r task.HostResult) { m.record(ar, r) })

	end := runEnd{Status: runDone}
	cause := context.Cause(ctx)
	userCancelled := ar.cancelled.Load()
	switch {
	case errors.Is(cause, errShuttingDown):
		end = runEnd{Status: runInterrupted, Error: "the web tier shut down before the run finished"}
	case userCancelled:
		end = runEnd{Status: runCancelled}
	case isInterrupted(err):
		end = runEnd{Status: runInterrupted, Error: err.Error()}
	case err != nil:
		end = runEnd{Status: runFailed, Error: err.Error()}
	}
	ar.mu.Lock()
	if ar.lost > 0 {
		end.Error = strings.TrimSpace(end.Error + fmt.Sprintf(" (%d host result(s) could not be recorded in the database; see the web tier's log)", ar.lost))
	}
	ar.mu.Unlock()
	m.finish(ar, end)
}

// isInterrupted reports whether err says the master accepted the run and
// was lost during it (see MasterClient): hosts may have run it, so the run
// is interrupted, not failed.
func isInterrupted(err error) bool {
	var ie interface{ Interrupted() bool }
	return errors.As(err, &ie) && ie.Interrupted()
}

// finish records a run's end once and tells its subscribers.
func (m *runManager) finish(ar *activeRun, end runEnd) {
	ar.endOnce.Do(func() { m.finishOnce(ar, end) })
}

func (m *runManager) finishOnce(ar *activeRun, end runEnd) {
	ctx, cancel := context.WithTimeout(context.Background(), storeWriteTimeout)
	defer cancel()
	if err := m.s.st.FinishRun(ctx, ar.id, end.Status, end.Error); err != nil {
		m.s.log.Error().Err(err).Str("run_id", ar.id).Str("status", end.Status).Msg("record run end")
	}
	ar.broker.finish(end)
	m.forget(ar)
	ar.cancel(nil)
	m.s.metrics.runsFinished.WithLabelValues(end.Status).Inc()
	ev := m.s.log.Info()
	if end.Status != runDone {
		ev = m.s.log.Warn()
	}
	ev.Str("run_id", ar.id).Str("status", end.Status).Str("error", end.Error).Msg("run finished")
}

// record stores one host's result, then publishes it. Results for hosts
// outside the task, or a second result for a host, are dropped: the master
// must not be able to add rows the run did not ask for.
func (m *runManager) record(ar *activeRun, r task.HostResult) {
	ar.mu.Lock()
	defer ar.mu.Unlock()
	if !ar.hosts[r.Host.IP] {
		m.s.log.Warn().Str("run_id", ar.id).Str("host", r.Host.IP).Msg("master reported a host that is not in the run; ignored")
		return
	}
	if ar.seen[r.Host.IP] {
		m.s.log.Warn().Str("run_id", ar.id).Str("host", r.Host.IP).Msg("second result for a host; ignored")
		return
	}
	if !r.Status.Valid() {
		r.Error = strings.TrimSpace(r.Error + " (master sent unknown status " + fmt.Sprintf("%q", string(r.Status)) + ")")
		r.Status = task.StatusFailed
	}
	r.RunID = ar.id
	ctx, cancel := context.WithTimeout(context.Background(), storeWriteTimeout)
	defer cancel()
	if err := m.s.st.AddRunResult(ctx, ar.id, r); err != nil {
		// Still shown live: the operator should see what happened even if
		// the record is incomplete; the run's error says so.
		m.s.log.Error().Err(err).Str("run_id", ar.id).Str("host", r.Host.IP).Msg("store host result")
		ar.lost++
	}
	ar.seen[r.Host.IP] = true
	ar.broker.publish(r)
}

var errNotRunning = errors.New("run is not running")

// cancel asks the master to stop a run; the run ends as cancelled when the
// master reports back, or after cancelGrace at the latest.
func (m *runManager) cancel(ctx context.Context, id string) error {
	ar := m.get(id)
	if ar == nil {
		return errNotRunning
	}
	if already := ar.cancelled.Swap(true); already {
		return nil
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := m.s.master.Cancel(cctx, id); err != nil {
		// The master cannot be told: cut the stream now.
		m.s.log.Warn().Err(err).Str("run_id", id).Msg("master cancel failed; stopping the run locally")
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

// shutdown refuses new runs, waits for in-flight ones until ctx ends, then
// interrupts what is left and records it as interrupted.
func (m *runManager) shutdown(ctx context.Context) error {
	m.mu.Lock()
	m.closing = true
	m.mu.Unlock()
	allDone := make(chan struct{})
	go func() { m.wg.Wait(); close(allDone) }()
	select {
	case <-allDone:
		return nil
	case <-ctx.Done():
	}
	m.mu.Lock()
	left := make([]*activeRun, 0, len(m.active))
	for _, ar := range m.active {
		left = append(left, ar)
	}
	m.mu.Unlock()
	for _, ar := range left {
		cctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		if err := m.s.master.Cancel(cctx, ar.id); err != nil {
			m.s.log.Warn().Err(err).Str("run_id", ar.id).Msg("cancel on shutdown")
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
			m.finish(ar, runEnd{Status: runInterrupted, Error: "the web tier shut down before the run finished"})
		}
	}
	return fmt.Errorf("web: %d run(s) did not stop in time and were marked interrupted", len(left))
}
