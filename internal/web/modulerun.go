package web

import (
	"context"
	"errors"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/omserver/omserver-go/internal/apperr"
	"github.com/omserver/omserver-go/internal/param"
	"github.com/omserver/omserver-go/internal/runs"
	"github.com/omserver/omserver-go/internal/store"
	"github.com/omserver/omserver-go/internal/task"
)

// The original's run endpoint, for its scripts:
//
//	GET /autoadmin/module_run/?ModuleID=1001&hosts=ip*name,ip*name&sys_param_1=50
//
// A run that needs a typed confirmation (a risky module, or more hosts
// than web.large_run_hosts) takes it as confirmed_hosts=<number of hosts>,
// as POST /api/v1/runs does (the original had no such check).
//
// It runs like any run (runs.Submit: the same validation, run record and
// audit entry), waits for the run to end (at most Config.ModuleRunTimeout)
// and answers with the text the original's master built in libraries.py
// (func_transform, the default AUTO_PLATFORM's): per host
//
//	<font color='#eeeeee'>主机：</font><font color=#ffffff><b>IP</b></font><br>
//	<font color='#eeeeee'>运行状态</font> <font color='#006699'><b>成功</b></font><br>
//	OUTPUT<br><table width='100%' height='15'>…B24.gif…</table><br>
//
// (失败 in red for a host that did not succeed), except that the host's
// output is HTML-escaped (the original inserted it raw) before its line
// breaks become <br>.
//
// A GET that runs something must never be reachable cross-site, and a
// browser sends its cookies with any cross-site GET: so only API tokens
// (Authorization: Bearer, which no other site can make a browser send) are
// accepted here, and a session cookie gets a 403 saying so.

var errTokenOnly = apperr.New(apperr.Forbidden,
	"/autoadmin/module_run/ runs modules on a GET, so it accepts API tokens only (Authorization: Bearer oms_...; create one on the API tokens page), "+
		"never a browser session: start runs from the dashboard or POST /api/v1/runs")

// tokenOnly refuses callers authenticated by a session cookie.
func (s *Server) tokenOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p := authOf(r); p != nil && !p.viaToken {
			s.fail(w, r, errTokenOnly)
			return
		}
		next.ServeHTTP(w, r)
	})
}

var legacyParamName = regexp.MustCompile(`^sys_param_[1-9][0-9]?$`)

// moduleRunRequest is a parsed module_run query.
type moduleRunRequest struct {
	ModuleID int64
	IPs      []string
	Names    map[string]string // IP -> name as the script sent it ("" if none)
	Params   map[string]string
	// Confirmed is confirmed_hosts: the host count, for a run that needs
	// a typed confirmation (0: none given).
	Confirmed int
}

// parseModuleRun reads the original's parameters: ModuleID, hosts as the
// dashboard's "ip*name" values (or bare IPs) joined by ",", and
// sys_param_N. Anything else is refused (prototype.js's cache-busting "_"
// excepted), so a misspelt parameter is not silently dropped.
func parseModuleRun(rawQuery string) (moduleRunRequest, error) {
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return moduleRunRequest{}, invalidf("the query string cannot be read (%s): percent-encode every value", clipRunes(err.Error(), 120))
	}
	req := moduleRunRequest{Names: map[string]string{}, Params: map[string]string{}}
	var unknown []string
	for k, vs := range q {
		switch {
		case k == "ModuleID" || k == "hosts" || k == "confirmed_hosts" || k == "_":
		case legacyParamName.MatchString(k):
			if len(vs) != 1 {
				return req, invalidf("parameter %s is given %d times; send it once", k, len(vs))
			}
			req.Params[k] = vs[0]
		default:
			unknown = append(unknown, fmt.Sprintf("%q", clipRunes(k, 40)))
		}
		if (k == "ModuleID" || k == "hosts" || k == "confirmed_hosts") && len(vs) != 1 {
			return req, invalidf("%s is given %d times; send it once", k, len(vs))
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return req, invalidf("unknown parameter(s) %s: module_run takes ModuleID, hosts, sys_param_1, sys_param_2, ... and confirmed_hosts", strings.Join(unknown, ", "))
	}
	if raw := q.Get("confirmed_hosts"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 || n > task.MaxHosts {
			return req, invalidf("confirmed_hosts %q is not a host count (1..%d)", clipRunes(raw, 40), task.MaxHosts)
		}
		req.Confirmed = n
	}
	raw := q.Get("ModuleID")
	if raw == "" {
		return req, invalidf("missing query parameter ModuleID")
	}
	if req.ModuleID, err = strconv.ParseInt(raw, 10, 64); err != nil || req.ModuleID <= 0 {
		return req, invalidf("ModuleID %q is not a positive integer", clipRunes(raw, 40))
	}
	hosts := q.Get("hosts")
	if strings.TrimSpace(hosts) == "" {
		return req, invalidf("missing query parameter hosts (ip*name,ip*name)")
	}
	for _, h := range strings.Split(hosts, ",") {
		ip, name, _ := strings.Cut(strings.TrimSpace(h), "*")
		if ip == "" {
			return req, invalidf("hosts has an empty entry: send ip*name,ip*name")
		}
		if _, dup := req.Names[ip]; dup {
			return req, invalidf("host %q is listed twice", clipRunes(ip, 64))
		}
		req.IPs = append(req.IPs, ip)
		req.Names[ip] = name
	}
	return req, nil
}

// checkNames refuses hosts whose name, as the script sent it, is not the
// inventory's name of that IP: the script would be aiming at another
// machine than it thinks. Case is ignored (the original's salt modules
// upper-cased names).
func checkNames(servers []store.Server, names map[string]string) error {
	for _, sv := range servers {
		if n := names[sv.IP]; n != "" && !strings.EqualFold(n, sv.Name) {
			return invalidf("%w: host %s is %q in the inventory, not %q", task.ErrUnknownHost, sv.IP, sv.Name, clipRunes(n, 64))
		}
	}
	return nil
}

// dropEmptyUndeclared removes empty parameters the module does not declare:
// the original's scripts send sys_param_2= to modules with one parameter,
// and its modules ignored what they did not read. A non-empty undeclared
// value is still refused by the run's validation.
func dropEmptyUndeclared(params map[string]string, schema []param.Param) {
	declared := make(map[string]bool, len(schema))
	for _, p := range schema {
		declared[p.Name] = true
	}
	for k, v := range params {
		if v == "" && !declared[k] {
			delete(params, k)
		}
	}
}

func (s *Server) legacyModuleRun(w http.ResponseWriter, r *http.Request) error {
	req, err := parseModuleRun(r.URL.RawQuery)
	if err != nil {
		return err
	}
	ctx := r.Context()
	mod, err := s.st.GetModule(ctx, req.ModuleID)
	if errors.Is(err, store.ErrNotFound) {
		return invalidf("module %d does not exist", req.ModuleID)
	}
	if err != nil {
		return err
	}
	servers, err := s.st.GetServers(ctx, req.IPs)
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrInvalid) {
		return invalidf("%w(s), not in the inventory: %s", task.ErrUnknownHost, strings.TrimSuffix(err.Error(), ": not found"))
	}
	if err != nil {
		return err
	}
	if err := checkNames(servers, req.Names); err != nil {
		return err
	}
	dropEmptyUndeclared(req.Params, mod.Params)
	p := authOf(r)
	id, err := s.runs.Submit(ctx, runs.Request{ModuleID: req.ModuleID, Hosts: req.IPs, Params: req.Params, User: p.Name, Role: p.Role, ConfirmedHosts: req.Confirmed})
	if err != nil {
		return err
	}
	s.audit(r, p.Name, "run.start", fmt.Sprintf("run %s module %d hosts %s (via /autoadmin/module_run/)", id, req.ModuleID, strings.Join(req.IPs, ",")))

	wctx, cancel := context.WithTimeout(ctx, s.cfg.ModuleRunTimeout)
	defer cancel()
	if err := s.runs.Wait(wctx, id); err != nil {
		if ctx.Err() != nil {
			return nil // the script went away; the run goes on and is recorded
		}
		writeText(w, http.StatusAccepted, fmt.Sprintf("运行中: run %s is still running after %s; its result will be at /api/v1/runs/%s", id, s.cfg.ModuleRunTimeout, id))
		return nil
	}
	run, results, err := s.st.GetRun(ctx, id)
	if err != nil {
		return err
	}
	writeText(w, http.StatusOK, legacyRunReply(run, results))
	return nil
}

// The pieces of func_transform's reply.
const (
	replyHost      = "<font color='#eeeeee'>主机：</font><font color=#ffffff><b>"
	replyHostEnd   = "</b></font><br>"
	replyOK        = "<font color='#eeeeee'>运行状态</font> <font color='#006699'><b>成功</b></font>"
	replyFailed    = "<font color='#eeeeee'>运行状态</font> <font color='red'><b>失败</b></font>"
	replySeparator = "<table width='100%' height='15'><tbody><tr><td background='/static/images/B24.gif'></td></tr></tbody></table><br>"
)

// legacyRunReply builds the original's reply for a finished run, one block
// per host in the run's order; a host without a result (the run failed or
// was interrupted first) is 失败 with the run's error.
func legacyRunReply(run store.Run, results []task.HostResult) string {
	byIP := make(map[string]task.HostResult, len(results))
	for _, res := range results {
		byIP[res.Host.IP] = res
	}
	var b strings.Builder
	for _, h := range run.Hosts {
		res, ok := byIP[h.IP]
		status, out := replyFailed, ""
		switch {
		case !ok:
			out = "no result: the run ended " + string(run.Status)
			if run.Error != "" {
				out += ": " + run.Error
			}
		default:
			if res.Status == task.StatusOK {
				status = replyOK
			}
			out = hostOutput(res)
		}
		b.WriteString(replyHost)
		b.WriteString(html.EscapeString(h.IP))
		b.WriteString(replyHostEnd)
		b.WriteString(status)
		b.WriteString("<br>")
		b.WriteString(strings.ReplaceAll(html.EscapeString(out), "\n", "<br>"))
		b.WriteString("<br>")
		b.WriteString(replySeparator)
	}
	return b.String()
}

// hostOutput is what a host printed, and why it failed when it did.
func hostOutput(res task.HostResult) string {
	parts := []string{}
	if res.Stdout != "" {
		o := strings.TrimRight(res.Stdout, "\n")
		if res.StdoutTruncated {
			o += "\n[output truncated]"
		}
		parts = append(parts, o)
	}
	if res.Stderr != "" {
		e := strings.TrimRight(res.Stderr, "\n")
		if res.StderrTruncated {
			e += "\n[output truncated]"
		}
		parts = append(parts, e)
	}
	if res.Status != task.StatusOK {
		why := string(res.Status)
		if res.Error != "" {
			why += ": " + res.Error
		}
		if res.ExitCode >= 0 && res.Status == task.StatusFailed {
			why += fmt.Sprintf(" (exit %d)", res.ExitCode)
		}
		parts = append(parts, why)
	}
	return strings.Join(parts, "\n")
}
