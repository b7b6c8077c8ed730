package runs

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/omserver/omserver-go/internal/apperr"
	"github.com/omserver/omserver-go/internal/param"
	"github.com/omserver/omserver-go/internal/store"
	"github.com/omserver/omserver-go/internal/task"
)

// Request is what a caller asks to run: a module of the web tier's catalog,
// on servers of the inventory (by IP), with the module's parameters.
type Request struct {
	ModuleID int64
	Hosts    []string
	// AppIDs and FunIDs target every server of these applications and of
	// every application of these function categories, besides Hosts.
	AppIDs []int64
	FunIDs []int64
	Params map[string]string
	User   string // who asks; recorded with the run
	Role   string // the user's role, for the per-role budget ("" for none)
	// Rollout narrows the module's rollout (nil: the module's own).
	Rollout *task.Rollout
	// ConfirmedHosts is the number of hosts the user typed to confirm the
	// run; a run on more than Config.LargeRunHosts hosts, or of a risky
	// module, needs it to equal the run's host count.
	ConfirmedHosts int
}

// Plan is a validated request: what would run where, and what
// confirmation it needs. Preview returns it without recording anything.
type Plan struct {
	ModuleID   int64             `json:"module_id"`
	ModuleName string            `json:"module_name"`
	Risky      bool              `json:"risky"`
	Params     map[string]string `json:"params"`
	Hosts      []task.Host       `json:"hosts"`
	// Typed: the user must type the number of hosts to confirm (a large
	// run, or a risky module).
	Typed bool `json:"typed_confirmation"`
	// LargeRunHosts is the threshold above which Typed is set.
	LargeRunHosts int `json:"large_run_hosts"`
}

// invalidf is a refused request: the message says what to change.
func invalidf(format string, args ...any) error {
	return apperr.Errorf(apperr.Invalid, format, args...)
}

// clipRunes shortens s to n runes for an error message, marking the cut.
func clipRunes(s string, n int) string {
	s = strings.ToValidUTF8(s, "?")
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n]) + "…"
}

// validHosts checks the requested IPs and targets and returns them as
// inventory rows: the listed hosts first, then those of the targeted
// applications and categories not listed already.
func (s *Service) validHosts(ctx context.Context, req Request) ([]store.Server, error) {
	ips := req.Hosts
	if len(ips) == 0 && len(req.AppIDs) == 0 && len(req.FunIDs) == 0 {
		return nil, invalidf("no hosts: choose at least one server, an application or a function category")
	}
	if len(ips) > task.MaxHosts {
		return nil, invalidf("%d hosts is more than the limit of %d", len(ips), task.MaxHosts)
	}
	seen := make(map[string]bool, len(ips))
	for _, ip := range ips {
		if strings.TrimSpace(ip) == "" {
			return nil, invalidf("a host is empty")
		}
		if seen[ip] {
			return nil, invalidf("host %q is listed twice", clipRunes(ip, 64))
		}
		seen[ip] = true
	}
	for _, ids := range [][]int64{req.AppIDs, req.FunIDs} {
		for _, id := range ids {
			if id <= 0 {
				return nil, invalidf("application and category ids must be positive integers, not %d", id)
			}
		}
	}
	servers, err := s.st.GetServers(ctx, ips)
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrInvalid) {
		return nil, invalidf("%w(s), not in the inventory: %s", task.ErrUnknownHost, strings.TrimSuffix(err.Error(), ": not found"))
	}
	if err != nil {
		return nil, fmt.Errorf("look up hosts: %w", err)
	}
	more, err := s.st.TargetServers(ctx, req.AppIDs, req.FunIDs, task.MaxHosts)
	if errors.Is(err, store.ErrInvalid) {
		return nil, invalidf("%s", strings.TrimPrefix(err.Error(), "targets: "))
	}
	if err != nil {
		return nil, fmt.Errorf("look up targets: %w", err)
	}
	for _, sv := range more {
		if !seen[sv.IP] {
			seen[sv.IP] = true
			servers = append(servers, sv)
		}
	}
	if len(servers) == 0 {
		return nil, invalidf("no hosts: the chosen applications and categories have no servers")
	}
	if len(servers) > task.MaxHosts {
		return nil, invalidf("%d hosts is more than the limit of %d", len(servers), task.MaxHosts)
	}
	return servers, nil
}

// plan checks a request against the catalog and the inventory and
// returns what would run where. This is the web tier's one validation of
// a run; it does not check the typed confirmation (see confirmed).
func (s *Service) plan(ctx context.Context, req Request) (Plan, error) {
	if req.ModuleID <= 0 {
		return Plan{}, invalidf("module_id %d is not a positive integer", req.ModuleID)
	}
	if req.User == "" {
		return Plan{}, errors.New("runs: a request must name its user")
	}
	mod, err := s.st.GetModule(ctx, req.ModuleID)
	if errors.Is(err, store.ErrNotFound) {
		return Plan{}, invalidf("module %d does not exist", req.ModuleID)
	}
	if err != nil {
		return Plan{}, fmt.Errorf("look up module %d: %w", req.ModuleID, err)
	}
	// The master owns the modules: with its catalog, a module it lacks is
	// refused now, and parameters are checked against its schema (the one
	// it applies again), whatever the web table says.
	name, schema, risky := mod.Name, param.Schema(mod.Params), false
	if cat, _, cerr := s.Catalog(ctx); cerr == nil {
		mm, ok := cat[req.ModuleID]
		if !ok {
			return Plan{}, apperr.Errorf(apperr.Invalid, "%v: module %d is not installed on the master (see the Modules page)", task.ErrUnknownModule, req.ModuleID)
		}
		name, schema, risky = mm.Name, mm.Params, mm.Risky
	}
	servers, err := s.validHosts(ctx, req)
	if err != nil {
		return Plan{}, err
	}
	if err := s.cfg.Budgets.check(req.Role, req.ModuleID, len(servers)); err != nil {
		return Plan{}, err
	}
	params, err := schema.Validate(req.Params)
	if err != nil {
		return Plan{}, apperr.Wrap(apperr.Invalid, err)
	}
	hosts := make([]task.Host, len(servers))
	for i, sv := range servers {
		hosts[i] = task.Host{IP: sv.IP, Name: sv.Name}
	}
	if err := req.Rollout.Check(); err != nil {
		return Plan{}, apperr.Wrap(apperr.Invalid, err)
	}
	p := Plan{ModuleID: mod.ID, ModuleName: name, Risky: risky, Params: params, Hosts: hosts, LargeRunHosts: s.cfg.LargeRunHosts}
	p.Typed = p.Risky || len(hosts) > s.cfg.LargeRunHosts
	return p, nil
}

// confirmed refuses a run that needs a typed confirmation without the
// right number.
func confirmed(p Plan, typed int) error {
	if !p.Typed || typed == len(p.Hosts) {
		return nil
	}
	why := fmt.Sprintf("it runs on %d hosts, more than %d", len(p.Hosts), p.LargeRunHosts)
	if p.Risky {
		why = "module " + strconv.FormatInt(p.ModuleID, 10) + " is marked risky"
	}
	if typed == 0 {
		return apperr.Errorf(apperr.Invalid, "this run must be confirmed by typing its number of hosts (%d): %s; send confirmed_hosts", len(p.Hosts), why)
	}
	return apperr.Errorf(apperr.Invalid, "confirmed_hosts is %d but the run has %d hosts: nothing was started", typed, len(p.Hosts))
}

// Preview validates a request and returns what it would run where, and
// whether it needs a typed confirmation; nothing is recorded or run.
func (s *Service) Preview(ctx context.Context, req Request) (Plan, error) {
	return s.plan(ctx, req)
}
