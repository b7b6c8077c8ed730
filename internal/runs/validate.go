package runs

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/omserver/omserver-go/internal/apperr"
	"github.com/omserver/omserver-go/internal/legacyform"
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
}

// invalidf is a refused request: the message says what to change.
func invalidf(format string, args ...any) error {
	return apperr.Errorf(apperr.Invalid, format, args...)
}

// validParams checks submitted values against the module's declared
// schema and returns the full parameter set (defaults filled in). The
// master validates again; this is so a bad request is refused before
// anything is recorded.
func validParams(schema []legacyform.Param, in map[string]string) (map[string]string, error) {
	if len(in) > task.MaxParams {
		return nil, invalidf("%w: %d parameters is more than the limit of %d", task.ErrInvalidParams, len(in), task.MaxParams)
	}
	declared := make(map[string]legacyform.Param, len(schema))
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
		return nil, invalidf("%w: unknown parameter(s) %s: this module declares %s", task.ErrInvalidParams, strings.Join(unknown, ", "), declaredNames(schema))
	}
	out := make(map[string]string, len(schema))
	for _, p := range schema {
		v, ok := in[p.Name]
		if !ok {
			v = p.Default
		}
		if !utf8.ValidString(v) {
			return nil, invalidf("%w: parameter %s is not valid UTF-8", task.ErrInvalidParams, p.Name)
		}
		if i := strings.IndexFunc(v, unicode.IsControl); i >= 0 {
			return nil, invalidf("%w: parameter %s contains a control character at byte %d", task.ErrInvalidParams, p.Name, i)
		}
		if len(v) > task.MaxParamBytes {
			return nil, invalidf("%w: parameter %s is longer than %d bytes", task.ErrInvalidParams, p.Name, task.MaxParamBytes)
		}
		if err := p.Check(v); err != nil {
			return nil, invalidf("%w: parameter %s: %s", task.ErrInvalidParams, p.Name, strings.TrimPrefix(err.Error(), p.Name+": "))
		}
		out[p.Name] = v
	}
	return out, nil
}

func declaredNames(schema []legacyform.Param) string {
	if len(schema) == 0 {
		return "no parameters"
	}
	names := make([]string, len(schema))
	for i, p := range schema {
		names[i] = p.Name
	}
	return strings.Join(names, ", ")
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
	servers, err := s.validHosts(ctx, req.Hosts)
	if err != nil {
		return task.Task{}, "", err
	}
	params, err := validParams(mod.Params, req.Params)
	if err != nil {
		return task.Task{}, "", err
	}
	hosts := make([]task.Host, len(servers))
	for i, sv := range servers {
		hosts[i] = task.Host{IP: sv.IP, Name: sv.Name}
	}
	return task.Task{ModuleID: int(mod.ID), Hosts: hosts, Params: params, User: req.User}, mod.Name, nil
}
