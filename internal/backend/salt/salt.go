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
// The target is the host's minion id: its name by default; Config.MinionID
// maps it otherwise (upper: the name upper-cased, as the original
// targeted minions; ip; or a template such as {{.Name}}.example.com).
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
// a little beyond the host's remaining time, as a second bound.
//
// Never twice: a step's call is sent once. Its login token must outlive
// the host's deadline plus TokenTTLMargin before it is sent (a cached token
// that would not is replaced by a fresh login; a fresh one that would not
// means salt's token_expire is shorter than the run may last, and the host
// fails without sending anything). Salt's local client polls the minion
// with the caller's token while a job runs, so a token that dies anyway
// (salt-api restarted with its token store cleared, an operator revoked
// it) makes salt-api answer 401 while the job runs on. A 401, or any other
// failure after the call may have reached salt-api, is therefore never
// answered by sending the command again: the backend kills what the call
// may have started (the tag kill below) and reports the host failed.
//
// Output: salt-api answers once per call, so a command's output is passed
// on (Options.OnOutput) when its call returns; it cannot stream.
package salt

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/rs/zerolog"

	"github.com/omserver/omserver-go/internal/backend"
)

// Defaults for the zero values of Config.
const (
	DefaultTimeout          = 10 * time.Minute
	DefaultTokenTTLMargin   = time.Minute
	DefaultMaxResponseBytes = 32 << 20
	// DefaultEAuth is the external auth backend used when none is
	// configured: pam, salt-api's usual one. (Salt's "auto" backend is
	// not auto-detection: it is a testing backend that approves any
	// password: https://docs.saltproject.io/en/latest/ref/auth/all/index.html.)
	DefaultEAuth = "pam"
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
	EAuth              string // salt external auth backend (pam, ldap, file, ...); empty means pam
	CAFile             string // PEM bundle to verify salt-api's certificate; empty means system roots
	InsecureSkipVerify bool   // do not verify salt-api's certificate (testing only)
	// Timeout bounds one host's run when Options.Timeout is zero.
	Timeout time.Duration
	// TokenTTLMargin: log in again when the cached token expires within
	// this margin, so a run does not start with a token about to die.
	TokenTTLMargin time.Duration
	// MaxResponseBytes bounds one HTTP response body; 0 means DefaultMaxResponseBytes.
	MaxResponseBytes int64
	// MinionID says how a host names its minion: hostname (default),
	// upper, ip or a template (see ParseMinionID).
	MinionID string
}

// Backend is the salt-api backend: the step runner over sessions that each
// run one host's steps as cmd.run_all calls. It is safe for concurrent use;
// all runs share one login token. It cannot stream output: salt-api
// answers once per call, so a command's output is passed on when its call
// returns.
type Backend struct {
	*backend.Runner
	base     *url.URL
	cfg      Config
	client   *http.Client
	log      zerolog.Logger
	session  *session
	minionID *MinionID
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
	minionID, err := ParseMinionID(cfg.MinionID)
	if err != nil {
		return nil, fmt.Errorf("salt: %w", err)
	}
	if cfg.Password == "" {
		return nil, errors.New("salt: salt-api password is empty")
	}
	if cfg.EAuth == "auto" {
		log.Warn().Msg(`salt eauth "auto" is Salt's testing backend, which approves any password; use pam, ldap or another real backend`)
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
	if base.Scheme == "http" {
		log.Warn().Str("url", base.Redacted()).Msg("salt-api over plain HTTP: the eauth password and token cross the network in clear")
	}
	if cfg.InsecureSkipVerify {
		log.Warn().Str("url", base.Redacted()).Msg("salt-api certificate is not verified")
	}
	client, err := newHTTPClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("salt: %w", err)
	}
	b := &Backend{
		base:     base,
		cfg:      cfg,
		client:   client,
		log:      log.With().Str("backend", "salt").Logger(),
		session:  newSession(),
		minionID: minionID,
	}
	b.Runner = backend.NewRunner("salt", b, cfg.Timeout)
	return b, nil
}

func (s *minionSession) Close() error { return nil }

// Close drops idle connections to salt-api.
func (b *Backend) Close() { b.client.CloseIdleConnections() }
