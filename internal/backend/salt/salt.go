// Package salt runs module steps through a Salt master's REST API,
// salt-api with the rest_cherrypy netapi module, the way the original
// OMServer drove Saltstack.
//
// Wire format (rest_cherrypy reference,
// https://docs.saltproject.io/en/latest/ref/netapi/all/salt.netapi.rest_cherrypy.html):
//
//   - POST /login with {"username", "password", "eauth"} answers
//     {"return": [{"token": "...", "expire": <unix seconds>, ...}]}, or 401.
//   - POST / with header X-Auth-Token and a JSON list of lowstate chunks,
//     here one chunk per call: {"client": "local", "tgt": [minion],
//     "tgt_type": "list", "fun": "cmd.run_all", "arg": [command],
//     "kwarg": {...}}. It answers {"return": [{"<minion id>": <result>}]}
//     and 401 when the token is unknown or expired.
//
// The target is the host's name, which the original used as the minion id.
// cmd.run_all (https://docs.saltproject.io/en/latest/ref/modules/all/salt.modules.cmdmod.html#salt.modules.cmdmod.run_all)
// returns {"pid", "retcode", "stdout", "stderr"}; its documented keyword
// arguments used here are python_shell (run through a shell), shell,
// rstrip (off: output is kept exactly), stdin and timeout (the minion kills
// the process after that many seconds).
// A minion that does not answer is missing from the return, or maps to false
// or to a "Minion did not return" string: all three are reported unreachable.
//
// File copy: salt's own transfer functions (cp.get_file, file.managed) pull
// from the master's salt:// file server, not from an arbitrary path on the
// OMServer master, so the copy step sends the file's bytes, base64-encoded,
// as the stdin of a cmd.run_all that decodes them into a temporary file
// beside the destination, sets its mode and renames it into place. The
// target therefore needs mktemp, base64, chmod and mv (coreutils or busybox).
//
// Cancellation: the synchronous local client gives no job id before the job
// ends, so saltutil.kill_job cannot be aimed at it, and abandoning the API
// call leaves the command running. Every command therefore runs as
// `exec /bin/sh -c '<command>' omserver-run-<random tag>`; when ctx ends or
// the host's time is up, the backend sends one more cmd.run_all that finds
// the tagged shell with pgrep -f and kills its whole process tree (the
// minion needs pgrep, from procps), then reports the host cancelled or
// timed out. The command's $0 is the tag. cmd.run_all's own timeout is set
// to the host's remaining time as a second bound.
package salt

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"path"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/rs/zerolog"

	"github.com/omserver/omserver-go/internal/backend"
	"github.com/omserver/omserver-go/internal/backend/copysrc"
	"github.com/omserver/omserver-go/internal/module"
	"github.com/omserver/omserver-go/internal/task"
)

// Defaults for the zero values of Config.
const (
	DefaultTimeout          = 10 * time.Minute
	DefaultTokenTTLMargin   = time.Minute
	DefaultMaxResponseBytes = 32 << 20
	DefaultEAuth            = "auto"
	// MaxCopyBytes bounds the file a copy step may send: it travels base64
	// encoded inside one JSON request and one Salt event.
	MaxCopyBytes = 16 << 20
	// defaultConnectTimeout bounds dialling and logging in when
	// Options.ConnectTimeout is zero.
	defaultConnectTimeout = 30 * time.Second
)

// Config says how to reach and authenticate to salt-api.
type Config struct {
	URL                string // base URL of salt-api, e.g. https://salt-master:8000
	Username, Password string
	EAuth              string // external auth backend: pam, ldap, auto...; empty means "auto"
	CAFile             string // PEM bundle to verify salt-api's certificate; empty means system roots
	InsecureSkipVerify bool   // do not verify salt-api's certificate (testing only)
	// Timeout bounds one host's run when Options.Timeout is zero.
	Timeout time.Duration
	// TokenTTLMargin: log in again when the cached token expires within
	// this margin, so a run does not start with a token about to die.
	TokenTTLMargin time.Duration
	// MaxResponseBytes bounds one HTTP response body; 0 means DefaultMaxResponseBytes.
	MaxResponseBytes int64
}

// Backend is the salt-api backend. It is safe for concurrent use; all runs
// share one login token.
type Backend struct {
	base    *url.URL
	cfg     Config
	client  *http.Client
	log     zerolog.Logger
	session *session
}

// New checks cfg and prepares the HTTP client. It does not contact salt-api:
// the first Run logs in.
func New(cfg Config, log zerolog.Logger) (*Backend, error) {
	if cfg.URL == "" {
		return nil, errors.New("salt: salt-api URL is empty")
	}
	base, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("salt: salt-api URL %q: %w", cfg.URL, err)
	}
	if base.Scheme != "https" && base.Scheme != "http" {
		return nil, fmt.Errorf("salt: salt-api URL %q must start with https:// (or http://)", cfg.URL)
	}
	if base.Host == "" {
		return nil, fmt.Errorf("salt: salt-api URL %q has no host", cfg.URL)
	}
	if base.User != nil || base.RawQuery != "" || base.Fragment != "" {
		return nil, fmt.Errorf("salt: salt-api URL %q must not hold credentials, a query or a fragment", cfg.URL)
	}
	if cfg.Username == "" {
		return nil, errors.New("salt: salt-api username is empty")
	}
	if cfg.Password == "" {
		return nil, errors.New("salt: salt-api password is empty")
	}
	if cfg.EAuth == "" {
		cfg.EAuth = DefaultEAuth
	}
	if cfg.Timeout < 0 || cfg.TokenTTLMargin < 0 || cfg.MaxResponseBytes < 0 {
		return nil, errors.New("salt: timeout, token TTL margin and response limit must not be negative")
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.TokenTTLMargin == 0 {
		cfg.TokenTTLMargin = DefaultTokenTTLMargin
	}
	if cfg.MaxResponseBytes == 0 {
		cfg.MaxResponseBytes = DefaultMaxResponseBytes
	}
	tlsConf := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: cfg.InsecureSkipVerify}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("salt: reading CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("salt: CA file %s holds no PEM certificate", cfg.CAFile)
		}
		tlsConf.RootCAs = pool
	}
	if base.Scheme == "http" {
		log.Warn().Str("url", base.Redacted()).Msg("salt-api over plain HTTP: the eauth password and token cross the network in clear")
	}
	if cfg.InsecureSkipVerify {
		log.Warn().Str("url", base.Redacted()).Msg("salt-api certificate is not verified")
	}
	transport := &http.Transport{
		Proxy:               nil, // salt-api is reached directly, never through an environment proxy
		DialContext:         (&net.Dialer{Timeout: defaultConnectTimeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:     tlsConf,
		TLSHandshakeTimeout: defaultConnectTimeout,
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     90 * time.Second,
		ForceAttemptHTTP2:   true,
	}
	b := &Backend{
		base: base,
		cfg:  cfg,
		// No client-wide timeout: every request carries the run's context.
		client:  &http.Client{Transport: transport, CheckRedirect: noRedirects},
		log:     log.With().Str("backend", "salt").Logger(),
		session: newSession(),
	}
	return b, nil
}

// noRedirects keeps the token and password from following a redirect to
// another server.
func noRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// Name implements backend.Backend.
func (b *Backend) Name() string { return "salt" }

// Close drops idle connections to salt-api.
func (b *Backend) Close() { b.client.CloseIdleConnections() }

// Run implements backend.Backend: it runs steps in order on the minion whose
// id is host.Name and stops at the first step that fails.
func (b *Backend) Run(ctx context.Context, host task.Host, steps []backend.Step, opts backend.Options) task.HostResult {
	res, out := backend.NewResult(host, opts)
	stdout, stderr := out.Stdout, out.Stderr
	finish := func(status task.Status, msg string) task.HostResult {
		res.Status, res.Error = status, msg
		out.Fill(&res)
		return res
	}
	if host.Name == "" {
		return finish(task.StatusFailed, fmt.Sprintf("salt targets minions by host name and host %s has none", host))
	}
	limit := opts.Timeout
	if limit <= 0 {
		limit = b.cfg.Timeout
	}
	hr := backend.NewHostRun(ctx, limit)
	defer hr.Close()
	runCtx := hr.Ctx
	connectTimeout := opts.ConnectTimeoutOr(defaultConnectTimeout)
	// errStatus says why a call failed: the run was stopped, or salt-api failed.
	errStatus := func() task.Status {
		if st, ok := hr.Stopped(); ok {
			return st
		}
		return task.StatusFailed
	}
	tag, err := newTag()
	if err != nil {
		return finish(task.StatusFailed, err.Error())
	}
	// stopped reports a call that ended because the run was cancelled or
	// timed out, after killing what it may have started on the minion.
	stopped := func(status task.Status, msg string) task.HostResult {
		if status == task.StatusCancelled || status == task.StatusTimeout {
			msg += b.stopRemote(ctx, host.Name, tag, connectTimeout)
		}
		return finish(status, msg)
	}

	for i, step := range steps {
		if runCtx.Err() != nil {
			return finish(errStatus(), fmt.Sprintf("step %d: stopped before it started", i+1))
		}
		if step.Copy != nil {
			chunk, err := b.copyChunk(runCtx, host.Name, tag, step.Copy, opts.ConnectTimeout)
			if err != nil {
				return finish(task.StatusFailed, fmt.Sprintf("step %d: %v", i+1, err))
			}
			out, err := b.call(runCtx, connectTimeout, chunk)
			if err != nil {
				return stopped(errStatus(), fmt.Sprintf("step %d (copy to %s): %v", i+1, step.Copy.Dest, err))
			}
			r := minionResult(out, host.Name)
			if r.status != task.StatusOK {
				_, _ = stderr.Write([]byte(r.stderr))
				res.ExitCode = r.retcode
				return finish(r.status, fmt.Sprintf("step %d (copy to %s): %s", i+1, step.Copy.Dest, r.err))
			}
			res.ExitCode = 0
		}
		if step.Command == "" {
			continue
		}
		if !utf8.ValidString(step.Command) {
			// JSON would silently replace the bad bytes, changing the command.
			return finish(task.StatusFailed, fmt.Sprintf("step %d: command is not valid UTF-8", i+1))
		}
		out, err := b.call(runCtx, connectTimeout, b.commandChunk(runCtx, host.Name, tag, step.Command, "", opts.ConnectTimeout))
		if err != nil {
			return stopped(errStatus(), fmt.Sprintf("step %d: %v", i+1, err))
		}
		r := minionResult(out, host.Name)
		_, _ = stdout.Write([]byte(r.stdout))
		_, _ = stderr.Write([]byte(r.stderr))
		res.ExitCode = r.retcode
		if r.status != task.StatusOK {
			return finish(r.status, fmt.Sprintf("step %d: %s", i+1, r.err))
		}
	}
	return finish(task.StatusOK, "")
}

// lowstate is one chunk of the rest_cherrypy request body.
type lowstate struct {
	Client  string         `json:"client"`
	Tgt     []string       `json:"tgt"`
	TgtType string         `json:"tgt_type"`
	Fun     string         `json:"fun"`
	Arg     []string       `json:"arg"`
	Kwarg   map[string]any `json:"kwarg,omitempty"`
	// Timeout is the local client's wait, in seconds, for a minion to
	// answer; a minion that reports the job still running (saltutil.find_job)
	// keeps it waiting, so this is a "no answer" limit, not a run limit.
	// Zero leaves the master's configured timeout.
	Timeout int `json:"timeout,omitempty"`
}

// commandChunk builds a cmd.run_all call of command through /bin/sh, with
// stdin when it is not empty. The command runs in a shell whose $0 carries
// the run's tag, so stopRemote can find it. The minion kills the command
// when the host's time is up (cmd.run_all's timeout); answerWait bounds how
// long salt waits for a minion that does not acknowledge the job at all.
func (b *Backend) commandChunk(ctx context.Context, minion, tag, command, stdin string, answerWait time.Duration) lowstate {
	command = "exec /bin/sh -c " + module.ShellQuote(command) + " " + tagPrefix + tag
	kw := map[string]any{
		"python_shell": true,
		"shell":        "/bin/sh",
		"rstrip":       false, // keep the output exactly, as the other backends do
		"timeout":      remainingSeconds(ctx),
	}
	if stdin != "" {
		kw["stdin"] = stdin
	}
	return lowstate{
		Client:  "local",
		Tgt:     []string{minion},
		TgtType: "list",
		Fun:     "cmd.run_all",
		Arg:     []string{command},
		Kwarg:   kw,
		Timeout: int(math.Ceil(answerWait.Seconds())),
	}
}

// tagPrefix starts the $0 of every command the backend starts on a minion.
const tagPrefix = "omserver-run-"

// stopTimeout bounds the call that kills a stopped run's command.
const stopTimeout = 20 * time.Second

func newTag() (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("making a run tag: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// stopRemote kills, on the minion, the process tree of the command tagged
// tag: the synchronous local client hands out no job id before the job
// ends, so saltutil.kill_job cannot be aimed at it, and salt itself keeps
// the command running when the API call is abandoned. It runs as a new
// cmd.run_all that finds the tagged shell with pgrep -f (the [x] bracket
// keeps the pattern from matching the killer's own command line), stops
// each process before listing its children so none can fork away, and
// kills them. The note it returns is appended to the result's error.
func (b *Backend) stopRemote(parent context.Context, minion, tag string, connectTimeout time.Duration) string {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(parent), stopTimeout)
	defer cancel()
	pattern := tagPrefix + "[" + tag[:1] + "]" + tag[1:]
	script := `k() { kill -STOP "$1" 2>/dev/null; for c in $(pgrep -P "$1"); do k "$c"; done; kill -KILL "$1" 2>/dev/null; }; ` +
		`n=0; for p in $(pgrep -f '` + pattern + `'); do k "$p"; n=$((n+1)); done; echo "$n"`
	chunk := lowstate{
		Client: "local", Tgt: []string{minion}, TgtType: "list", Fun: "cmd.run_all", Arg: []string{script},
		Kwarg:   map[string]any{"python_shell": true, "shell": "/bin/sh", "timeout": int(stopTimeout / time.Second)},
		Timeout: int(math.Ceil(connectTimeout.Seconds())),
	}
	out, err := b.call(ctx, connectTimeout, chunk)
	if err != nil {
		b.log.Warn().Str("minion", minion).Err(err).Msg("could not stop a cancelled command")
		return fmt.Sprintf("; stopping the remote command failed: %v", err)
	}
	r := minionResult(out, minion)
	if r.status != task.StatusOK {
		b.log.Warn().Str("minion", minion).Str("error", r.err).Msg("could not stop a cancelled command")
		return fmt.Sprintf("; stopping the remote command failed: %s", r.err)
	}
	if strings.TrimSpace(r.stdout) == "0" {
		return "; no remote command was left running"
	}
	return "; the remote command was stopped"
}

// remainingSeconds is the time left in ctx, rounded up, at least 1.
func remainingSeconds(ctx context.Context) int {
	dl, ok := ctx.Deadline()
	if !ok {
		return int(DefaultTimeout / time.Second)
	}
	s := math.Ceil(time.Until(dl).Seconds())
	if s < 1 {
		return 1
	}
	return int(s)
}

// copyChunk reads c.Src on this host and builds the cmd.run_all call that
// writes it to c.Dest on the minion.
func (b *Backend) copyChunk(ctx context.Context, minion, tag string, c *backend.Copy, answerWait time.Duration) (lowstate, error) {
	if !utf8.ValidString(c.Dest) {
		return lowstate{}, fmt.Errorf("copy destination %q is not valid UTF-8", c.Dest)
	}
	data, err := copysrc.Read(c, MaxCopyBytes)
	if err != nil {
		return lowstate{}, err
	}
	return b.commandChunk(ctx, minion, tag, copyCommand(c.Dest, c.Mode), base64.StdEncoding.EncodeToString(data), answerWait), nil
}

// copyCommand decodes base64 stdin into a temporary file beside dest, sets
// its mode and renames it over dest, so a half-written file never replaces
// the old one.
func copyCommand(dest string, mode os.FileMode) string {
	tmpl := module.ShellQuote(path.Join(path.Dir(dest), ".omserver-copy.XXXXXX"))
	return fmt.Sprintf(`t=$(mktemp %s) && { base64 -d >"$t" && chmod %04o "$t" && mv -f "$t" %s || { rm -f "$t"; exit 1; }; }`,
		tmpl, uint32(mode.Perm()), module.ShellQuote(dest))
}

// errLoginRefused is the login failure, kept distinct so a run reports it
// as such rather than as a generic HTTP error.
var errLoginRefused = errors.New("salt-api refused login")

// call runs one lowstate chunk and returns the "return" member's first
// element, logging in first when needed and once more on a 401.
func (b *Backend) call(ctx context.Context, connectTimeout time.Duration, chunk lowstate) (map[string]json.RawMessage, error) {
	body, err := json.Marshal([]lowstate{chunk})
	if err != nil {
		return nil, fmt.Errorf("encoding lowstate: %w", err)
	}
	for attempt := 0; ; attempt++ {
		token, err := b.token(ctx, connectTimeout)
		if err != nil {
			return nil, err
		}
		status, resp, err := b.post(ctx, "/", token, body)
		if err != nil {
			return nil, err
		}
		if status == http.StatusUnauthorized {
			b.session.invalidate(token)
			if attempt == 0 {
				b.log.Info().Msg("salt-api rejected the cached token; logging in again")
				continue
			}
			return nil, fmt.Errorf("%w: a fresh token was rejected too (HTTP 401; check the eauth user may run cmd.run_all on this minion)", errLoginRefused)
		}
		if status != http.StatusOK {
			return nil, fmt.Errorf("salt-api answered HTTP %d: %s", status, snippet(resp))
		}
		ret, err := decodeReturn(resp)
		if err != nil {
			return nil, err
		}
		return ret, nil
	}
}

// post sends a JSON body to salt-api and returns the status and the body,
// read up to the configured limit.
func (b *Backend) post(ctx context.Context, p, token string, body []byte) (int, []byte, error) {
	u := b.base.JoinPath(p)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return 0, nil, fmt.Errorf("building salt-api request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if token != "" {
		req.Header.Set("X-Auth-Token", token)
	}
	resp, err := b.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return 0, nil, fmt.Errorf("salt-api request stopped: %w", ctx.Err())
		}
		return 0, nil, fmt.Errorf("salt-api %s unreachable: %w", b.base.Redacted(), unwrapURLError(err))
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, b.cfg.MaxResponseBytes+1))
	if err != nil {
		if ctx.Err() != nil {
			return 0, nil, fmt.Errorf("salt-api request stopped: %w", ctx.Err())
		}
		return 0, nil, fmt.Errorf("reading salt-api response: %w", err)
	}
	if int64(len(data)) > b.cfg.MaxResponseBytes {
		return 0, nil, fmt.Errorf("salt-api response is larger than the limit of %d bytes", b.cfg.MaxResponseBytes)
	}
	return resp.StatusCode, data, nil
}

func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// snippet is the start of a response body, for error messages.
func snippet(b []byte) string {
	const max = 200
	s := strings.TrimSpace(strings.ToValidUTF8(string(b), "?"))
	if len(s) > max {
		s = s[:max] + "..."
	}
	if s == "" {
		return "(empty body)"
	}
	return s
}
