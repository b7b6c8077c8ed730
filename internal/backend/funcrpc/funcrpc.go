// Package funcrpc runs module steps on Func minions (funcd, the Fedora
// Unified Network Controller daemon) the way the original OMServer's Func
// platform did, speaking funcd's wire protocol directly.
//
// Wire format. funcd is an XML-RPC server (http://xmlrpc.com/spec.md) over
// HTTPS on port 51234 that requires a client certificate signed by the
// certmaster CA and presents its own certificate from that CA; see funcd(1)
// (https://linux.die.net/man/1/funcd), func(1)
// (https://www.mankier.com/1/func) and Func's source, which is its protocol
// reference (https://github.com/makkalot/func): the overlord's
// SSLXMLRPCServerProxy posts to https://<minion>:51234/
// (func/overlord/sslclient.py) and the minion dispatches "<module>.<method>"
// (func/minion/server.py). The calls used here:
//
//   - command.run(command) -> [exit code, stdout, stderr]; the minion runs
//     the command with subprocess.Popen(command, shell=True), i.e.
//     /bin/sh -c (func/minion/modules/command.py). Very old Func releases
//     split the command on blanks without a shell; they are not supported.
//   - copyfile.copyfile(path, <base64 data>, mode, uid, gid) -> 1 (written),
//     0 (already identical, left alone) or -1 (could not write); the minion
//     creates missing parent directories and keeps a dated backup of a file
//     it replaces (func/minion/modules/copyfile.py). The file is sent owned
//     by root (uid 0, gid 0), Func's own default.
//
// A minion method that raises does not answer with an XML-RPC fault: funcd
// returns ["REMOTE_ERROR", type, value, traceback] (certmaster utils
// nice_exception); an unknown method or an ACL refusal is a fault. Both are
// reported as failed with the minion's message.
//
// Security. The master's certificate and key (issued by certmaster) are
// presented to every minion, and a minion's certificate must chain to
// CAFile and name the host: its DNS/IP subject alternative names, or, for
// certmaster's certificates which carry only a common name, its CN must
// equal the host's name (or the address dialled when the host has no name).
//
// The minion's TLS stack must offer TLS 1.2 or later: Go offers no SSLv3,
// which the oldest funcd releases were pinned to (func/SSLCommon.py).
//
// Timeouts and cancellation. command.run is synchronous, funcd has no call
// to stop it, and funcd serves one request at a time (a SocketServer.TCPServer
// handle_request loop, func/SSLCommon.py), so a second call could not stop
// the first anyway. The backend therefore wraps each command in
// `timeout -k 5 <seconds left> /bin/sh -c '<command>'` (coreutils or busybox
// timeout on the minion): the remote process is killed when the host's time
// is up. Cancelling a run stops the wait at once and reports the host
// cancelled, but the remote command then runs on until that timeout.
package funcrpc

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/kolo/xmlrpc"
	"github.com/rs/zerolog"

	"github.com/omserver/omserver-go/internal/backend"
	"github.com/omserver/omserver-go/internal/backend/copysrc"
	"github.com/omserver/omserver-go/internal/module"
	"github.com/omserver/omserver-go/internal/task"
)

// Defaults for the zero values of Config and Options.
const (
	DefaultPort             = 51234
	DefaultTimeout          = 10 * time.Minute
	DefaultConnectTimeout   = 10 * time.Second
	DefaultMaxResponseBytes = 32 << 20
	// MaxCopyBytes bounds the file a copy step sends inside one XML-RPC call.
	MaxCopyBytes = 16 << 20
	// killGrace is how long `timeout` waits after TERM before KILL.
	killGrace = 5
)

// Config says how to reach Func minions.
type Config struct {
	Port              int    // funcd's port; 0 means 51234
	CertFile, KeyFile string // the master's certmaster-issued certificate and key (PEM)
	CAFile            string // the certmaster CA that signed the minions' certificates (PEM)
	// Timeout bounds one host's run when Options.Timeout is zero.
	Timeout time.Duration
	// Hosts overrides the address dialled for a host, keyed by host name or
	// IP: "addr" or "addr:port". Without an entry the host's IP is dialled
	// (its name when it has no IP).
	Hosts map[string]string
	// MaxResponseBytes bounds one XML-RPC answer; 0 means DefaultMaxResponseBytes.
	MaxResponseBytes int64
}

// Backend is the Func backend. It is safe for concurrent use.
type Backend struct {
	cfg   Config
	cert  tls.Certificate
	roots *x509.CertPool
	hosts map[string]string // validated overrides, each host:port
	log   zerolog.Logger
}

// New loads and checks the certificates and the host overrides.
func New(cfg Config, log zerolog.Logger) (*Backend, error) {
	if cfg.Port == 0 {
		cfg.Port = DefaultPort
	}
	if cfg.Port < 1 || cfg.Port > 65535 {
		return nil, fmt.Errorf("funcrpc: port %d is outside 1..65535", cfg.Port)
	}
	if cfg.Timeout < 0 || cfg.MaxResponseBytes < 0 {
		return nil, errors.New("funcrpc: timeout and response limit must not be negative")
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.MaxResponseBytes == 0 {
		cfg.MaxResponseBytes = DefaultMaxResponseBytes
	}
	if cfg.CertFile == "" || cfg.KeyFile == "" || cfg.CAFile == "" {
		return nil, errors.New("funcrpc: certificate, key and CA files are all required (Func minions only answer mutual TLS)")
	}
	cert, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("funcrpc: loading the master's certificate and key: %w", err)
	}
	caPEM, err := os.ReadFile(cfg.CAFile)
	if err != nil {
		return nil, fmt.Errorf("funcrpc: reading CA file: %w", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("funcrpc: CA file %s holds no PEM certificate", cfg.CAFile)
	}
	hosts := make(map[string]string, len(cfg.Hosts))
	for key, addr := range cfg.Hosts {
		hp, err := hostPort(addr, cfg.Port)
		if err != nil {
			return nil, fmt.Errorf("funcrpc: address for host %q: %w", key, err)
		}
		hosts[key] = hp
	}
	return &Backend{cfg: cfg, cert: cert, roots: roots, hosts: hosts, log: log.With().Str("backend", "func").Logger()}, nil
}

// hostPort normalises "addr" or "addr:port" to host:port.
func hostPort(addr string, defPort int) (string, error) {
	if addr == "" {
		return "", errors.New("empty")
	}
	if strings.ContainsAny(addr, "/ \t\r\n@?#") {
		return "", fmt.Errorf("%q is not a host or host:port", addr)
	}
	if h, p, err := net.SplitHostPort(addr); err == nil {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 || h == "" {
			return "", fmt.Errorf("%q has a bad host or port", addr)
		}
		return net.JoinHostPort(h, p), nil
	}
	if strings.Contains(addr, ":") && net.ParseIP(addr) == nil {
		return "", fmt.Errorf("%q is not a host or host:port", addr)
	}
	return net.JoinHostPort(addr, strconv.Itoa(defPort)), nil
}

// Name implements backend.Backend.
func (b *Backend) Name() string { return "func" }

// Run implements backend.Backend: it runs steps in order on one minion and
// stops at the first step that fails.
func (b *Backend) Run(ctx context.Context, host task.Host, steps []backend.Step, opts backend.Options) task.HostResult {
	res, out := backend.NewResult(host, opts)
	stdout, stderr := out.Stdout, out.Stderr
	finish := func(status task.Status, msg string) task.HostResult {
		res.Status, res.Error = status, msg
		out.Fill(&res)
		return res
	}
	addr, identity, err := b.address(host)
	if err != nil {
		return finish(task.StatusFailed, err.Error())
	}
	limit := opts.Timeout
	if limit <= 0 {
		limit = b.cfg.Timeout
	}
	hr := backend.NewHostRun(ctx, limit)
	defer hr.Close()
	runCtx := hr.Ctx
	// errStatus says why a call failed: the run was stopped, the minion was
	// never reached, or the call itself failed.
	errStatus := func(err error) task.Status {
		if st, ok := hr.Stopped(); ok {
			return st
		}
		if errors.Is(err, errUnreachable) {
			return task.StatusUnreachable
		}
		return task.StatusFailed
	}
	client := b.client(identity, opts.ConnectTimeoutOr(DefaultConnectTimeout))
	defer client.CloseIdleConnections()
	c := &call{b: b, client: client, url: "https://" + addr + "/"}

	for i, step := range steps {
		if runCtx.Err() != nil {
			return finish(errStatus(nil), fmt.Sprintf("step %d: stopped before it started", i+1))
		}
		if step.Copy != nil {
			params, err := copyParams(step.Copy)
			if err != nil {
				return finish(task.StatusFailed, fmt.Sprintf("step %d: %v", i+1, err))
			}
			v, err := c.do(runCtx, "copyfile.copyfile", params...)
			if err != nil {
				return finish(errStatus(err), fmt.Sprintf("step %d (copy to %s): %v", i+1, step.Copy.Dest, err))
			}
			if err := copyResult(v); err != nil {
				return finish(task.StatusFailed, fmt.Sprintf("step %d (copy to %s): %v", i+1, step.Copy.Dest, err))
			}
			res.ExitCode = 0
		}
		if step.Command == "" {
			continue
		}
		if err := xmlText(step.Command); err != nil {
			return finish(task.StatusFailed, fmt.Sprintf("step %d: command %v", i+1, err))
		}
		wrapped, remoteSecs := wrapTimeout(runCtx, step.Command)
		v, err := c.do(runCtx, "command.run", wrapped)
		if err != nil {
			st := errStatus(err)
			msg := fmt.Sprintf("step %d: %v", i+1, err)
			if st == task.StatusCancelled {
				// funcd offers no way to stop a running call (package doc).
				msg += fmt.Sprintf("; funcd cannot stop the command, which its %d s timeout on the minion ends", remoteSecs)
			}
			return finish(st, msg)
		}
		code, out, errOut, err := runResult(v)
		if err != nil {
			return finish(task.StatusFailed, fmt.Sprintf("step %d: %v", i+1, err))
		}
		_, _ = stdout.Write(out)
		_, _ = stderr.Write(errOut)
		res.ExitCode = code
		if code != 0 {
			return finish(task.StatusFailed, fmt.Sprintf("step %d: exit status %d", i+1, code))
		}
	}
	return finish(task.StatusOK, "")
}

// address picks the dial address and the name the minion's certificate
// must carry.
func (b *Backend) address(h task.Host) (addr, identity string, err error) {
	addr = b.hosts[h.Name]
	if addr == "" && h.IP != "" {
		addr = b.hosts[h.IP]
	}
	if addr == "" {
		target := h.IP
		if target == "" {
			target = h.Name
		}
		if target == "" {
			return "", "", errors.New("host has neither IP nor name")
		}
		if addr, err = hostPort(target, b.cfg.Port); err != nil {
			return "", "", fmt.Errorf("host %s: %w", h, err)
		}
	}
	identity = h.Name
	if identity == "" {
		identity, _, _ = net.SplitHostPort(addr)
	}
	return addr, identity, nil
}

// client is an HTTPS client for one host's run: mutual TLS with the
// master's certificate, the minion verified against the Func CA and
// identity. One per run, since the identity differs per host; a run's
// steps share its connection.
func (b *Backend) client(identity string, connectTimeout time.Duration) *http.Client {
	tlsConf := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{b.cert},
		// Go's default check wants the dialled name in a SAN; certmaster
		// certificates carry only a CN. VerifyConnection does the full
		// check (chain to the Func CA, then identity) instead.
		InsecureSkipVerify: true,
		VerifyConnection:   func(cs tls.ConnectionState) error { return b.verifyMinion(cs, identity) },
	}
	transport := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: connectTimeout}).DialContext,
		TLSClientConfig:     tlsConf,
		TLSHandshakeTimeout: connectTimeout,
		MaxIdleConnsPerHost: 1,
	}
	return &http.Client{Transport: transport, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// errMinionIdentity marks a certificate that does not belong to the host.
var errMinionIdentity = errors.New("minion certificate rejected")

func (b *Backend) verifyMinion(cs tls.ConnectionState, identity string) error {
	if len(cs.PeerCertificates) == 0 {
		return fmt.Errorf("%w: the minion presented none", errMinionIdentity)
	}
	leaf := cs.PeerCertificates[0]
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: b.roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return fmt.Errorf("%w: not signed by the Func CA %s: %v", errMinionIdentity, b.cfg.CAFile, err)
	}
	if leaf.VerifyHostname(identity) == nil || strings.EqualFold(leaf.Subject.CommonName, identity) {
		return nil
	}
	return fmt.Errorf("%w: it is for %q (SANs %v %v), not %q", errMinionIdentity, leaf.Subject.CommonName, leaf.DNSNames, leaf.IPAddresses, identity)
}

// errUnreachable marks failures before the minion got the call: refused or
// timed-out connections and TLS failures.
var errUnreachable = errors.New("minion unreachable")

type call struct {
	b      *Backend
	client *http.Client
	url    string
}

// do posts one XML-RPC call and decodes its answer.
func (c *call) do(ctx context.Context, method string, params ...any) (any, error) {
	body, err := xmlrpc.EncodeMethodCall(method, params...)
	if err != nil {
		return nil, fmt.Errorf("encoding %s call: %w", method, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("building %s call: %w", method, err)
	}
	req.Header.Set("Content-Type", "text/xml")
	req.Header.Set("User-Agent", "omserver-go funcrpc")
	resp, err := c.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%s stopped: %w", method, ctx.Err())
		}
		return nil, classify(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, c.b.cfg.MaxResponseBytes+1))
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%s stopped: %w", method, ctx.Err())
		}
		return nil, fmt.Errorf("reading %s answer: %w", method, err)
	}
	if int64(len(data)) > c.b.cfg.MaxResponseBytes {
		return nil, fmt.Errorf("%s answer is larger than the limit of %d bytes", method, c.b.cfg.MaxResponseBytes)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: minion answered HTTP %d", method, resp.StatusCode)
	}
	v, fault, err := decodeResponse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", method, err)
	}
	if fault != nil {
		return nil, fmt.Errorf("%s: %w", method, fault)
	}
	return v, nil
}

// classify turns a transport error into a message, marking the ones that
// mean the call never reached the minion: a failed dial, and TLS failures
// on either side (a refused client certificate arrives as a "remote error"
// alert, in TLS 1.3 only once the request is written).
func classify(err error) error {
	var (
		opErr   *net.OpError
		recErr  tls.RecordHeaderError
		certErr *tls.CertificateVerificationError
	)
	inner := err
	var ue *url.Error
	if errors.As(err, &ue) {
		inner = ue.Err
	}
	switch {
	case errors.Is(err, errMinionIdentity), errors.As(err, &recErr), errors.As(err, &certErr),
		errors.As(err, &opErr) && opErr.Op == "remote error":
		return fmt.Errorf("%w: TLS: %v", errUnreachable, inner)
	case errors.As(err, &opErr) && opErr.Op == "dial",
		strings.Contains(err.Error(), "TLS handshake timeout"):
		return fmt.Errorf("%w: %v", errUnreachable, inner)
	}
	return fmt.Errorf("connection lost during the call (the command may have run): %v", inner)
}

// wrapTimeout bounds the remote command by the run's remaining time and
// returns that time in seconds.
func wrapTimeout(ctx context.Context, command string) (string, int64) {
	secs := int64(DefaultTimeout / time.Second)
	if dl, ok := ctx.Deadline(); ok {
		secs = int64(math.Ceil(time.Until(dl).Seconds()))
		if secs < 1 {
			secs = 1
		}
	}
	return fmt.Sprintf("timeout -k %d %d /bin/sh -c %s", killGrace, secs, module.ShellQuote(command)), secs
}

// copyParams reads the source file and builds copyfile.copyfile's
// parameters: path, base64 data, mode, uid, gid.
func copyParams(c *backend.Copy) ([]any, error) {
	if err := xmlText(c.Dest); err != nil {
		return nil, fmt.Errorf("copy destination %v", err)
	}
	data, err := copysrc.Read(c, MaxCopyBytes)
	if err != nil {
		return nil, err
	}
	return []any{c.Dest, xmlrpc.Base64(base64.StdEncoding.EncodeToString(data)), int(c.Mode.Perm()), 0, 0}, nil
}

// xmlText refuses what XML 1.0 cannot carry (invalid UTF-8, most control
// characters): the encoder would silently replace it, changing the command.
func xmlText(s string) error {
	if !utf8.ValidString(s) {
		return errors.New("is not valid UTF-8")
	}
	for _, r := range s {
		if r == '\t' || r == '\n' || r == '\r' || (r >= 0x20 && r <= 0xD7FF) || (r >= 0xE000 && r <= 0xFFFD) || r >= 0x10000 {
			continue
		}
		return fmt.Errorf("holds the character %U, which XML-RPC cannot carry", r)
	}
	return nil
}

// remoteError recognises funcd's ["REMOTE_ERROR", type, value, traceback].
func remoteError(v any) error {
	l, ok := v.([]any)
	if !ok || len(l) == 0 || l[0] != "REMOTE_ERROR" {
		return nil
	}
	parts := make([]string, 0, 2)
	for _, x := range l[1:min(len(l), 3)] {
		if s, ok := x.(string); ok && s != "" {
			parts = append(parts, s)
		}
	}
	if len(parts) == 0 {
		return errors.New("minion raised an error without a message")
	}
	return fmt.Errorf("minion raised %s", truncate(strings.Join(parts, ": ")))
}

func copyResult(v any) error {
	if err := remoteError(v); err != nil {
		return err
	}
	n, ok := v.(int64)
	if !ok {
		return fmt.Errorf("copyfile answered %T, want an integer", v)
	}
	switch n {
	case 1, 0:
		return nil
	case -1:
		return errors.New("the minion could not write the file (copyfile returned -1)")
	}
	return fmt.Errorf("copyfile answered %d, want 1, 0 or -1", n)
}

// runResult checks command.run's [exit code, stdout, stderr].
func runResult(v any) (code int, stdout, stderr []byte, err error) {
	if err := remoteError(v); err != nil {
		return -1, nil, nil, err
	}
	l, ok := v.([]any)
	if !ok || len(l) != 3 {
		return -1, nil, nil, fmt.Errorf("command.run answered %s, want [exit code, stdout, stderr]", describe(v))
	}
	n, ok := l[0].(int64)
	if !ok || n < math.MinInt32 || n > math.MaxInt32 {
		return -1, nil, nil, fmt.Errorf("command.run exit code is %s, want an integer", describe(l[0]))
	}
	if stdout, ok = asBytes(l[1]); !ok {
		return -1, nil, nil, fmt.Errorf("command.run stdout is %s, want a string", describe(l[1]))
	}
	if stderr, ok = asBytes(l[2]); !ok {
		return -1, nil, nil, fmt.Errorf("command.run stderr is %s, want a string", describe(l[2]))
	}
	return int(n), stdout, stderr, nil
}

func asBytes(v any) ([]byte, bool) {
	switch v := v.(type) {
	case string:
		return []byte(v), true
	case []byte:
		return v, true
	}
	return nil, false
}

func describe(v any) string {
	switch v := v.(type) {
	case nil:
		return "nil"
	case []any:
		return fmt.Sprintf("an array of %d", len(v))
	case map[string]any:
		return "a struct"
	}
	return fmt.Sprintf("%T", v)
}
