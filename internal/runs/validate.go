package runs

import (
	"context"
	"errors"
	"fmt"
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
	Params   map[string]string
	User     string // who asks; recorded with the run
	Role     string // the user's role, for the per-role budget ("" for none)
	// Rollout narrows the module's rollout (nil: the module's own).
	Rollout *task.Rollout
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

// validHosts checks the requested IPs and returns them as inventory rows.
func (s *Service) validHosts(ctx context.Context, ips []string) ([]store.Server, error) {
	if len(ips) == 0 {
		return nil, invalidf("no hosts: choose at least one server")
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
	servers, err := s.st.GetServers(ctx, ips)
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrInvalid) {
		return nil, invalidf("%w(s), not in the inventory: %s", task.ErrUnknownHost, strings.TrimSuffix(err.Error(), ": not found"))
	}
	if err != nil {
		return nil, fmt.Errorf("look up hosts: %w", err)
	}
	return servers, nil
}

// validate checks a request against the catalog and the inventory and
// returns the task to dispatch (without run id, issue time and nonce) and
// the module's name. This is the web tier's one validation of a run.
func (s *Service) validate(ctx context.Context, req Request) (task.Task, string, error) {
	if req.ModuleID <= 0 {
		return task.Task{}, "", invalidf("module_id %d is not a positive integer", req.ModuleID)
	}
	if req.User == "" {
		return task.Task{}, "", errors.New("runs: a request must name its user")
	}
	mod, err := s.st.GetModule(ctx, req.ModuleID)
	if errors.Is(err, store.ErrNotFound) {
		return task.Task{}, "", invalidf("module %d does not exist", req.ModuleID)
	}
	if err != nil {
		return task.Task{}, "", fmt.Errorf("look up module %d: %w", req.ModuleID, err)
	}
	if err := s.cfg.Budgets.check(req.Role, req.ModuleID, len(req.Hosts)); err != nil {
		return task.Task{}, "", err
	}
	servers, err := s.validHosts(ctx, req.Hosts)
	if err != nil {
		return task.Task{}, "", err
	}
	// The same schema and checks the master applies again.
	params, err := param.Schema(mod.Params).Validate(req.Params)
	if err != nil {
		return task.Task{}, "", apperr.Wrap(apperr.Invalid, err)
	}
	hosts := make([]task.Host, len(servers))
	for i, sv := range servers {
		hosts[i] = task.Host{IP: sv.IP, Name: sv.Name}
	}
	if err := req.Rollout.Check(); err != nil {
		return task.Task{}, "", apperr.Wrap(apperr.Invalid, err)
	}
	return task.Task{ModuleID: int(mod.ID), Hosts: hosts, Params: params, User: req.User, Rollout: req.Rollout}, mod.Name, nil
}
