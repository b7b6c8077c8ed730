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
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/omserver/omserver-go/internal/backend"
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

// Backend is the Func backend: the step runner over sessions that make one
// XML-RPC call per copy and per command. It is safe for concurrent use. It
// cannot stream output: command.run answers once, when the command has
// ended, so its output is passed on then.
type Backend struct {
	*backend.Runner
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
	roots, err := backend.LoadCertPool(cfg.CAFile)
	if err != nil {
		return nil, fmt.Errorf("funcrpc: %w", err)
	}
	hosts := make(map[string]string, len(cfg.Hosts))
	for key, addr := range cfg.Hosts {
		hp, err := hostPort(addr, cfg.Port)
		if err != nil {
			return nil, fmt.Errorf("funcrpc: address for host %q: %w", key, err)
		}
		hosts[key] = hp
	}
	b := &Backend{cfg: cfg, cert: cert, roots: roots, hosts: hosts, log: log.With().Str("backend", "func").Logger()}
	b.Runner = backend.NewRunner("func", b, cfg.Timeout)
	return b, nil
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
