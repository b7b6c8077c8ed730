// Package omaudit is 安全审计 (security audit), the original OMServer's
// omaudit app made safe: targets push each interactive shell command to the
// web tier, which stores it in the original server_history table; operators
// watch the stream live and search it.
//
// Ingest keeps the original URL and parameters, so existing collectors keep
// working, and adds what the original lacked:
//   - an ingest token (per server or fleet-wide; only its SHA-256 stored),
//     sent as "Authorization: Bearer omi_..." or, for agents that build
//     their URL by hand, a token parameter;
//   - the sender's TCP address must be the row's history_ip, a server of
//     the inventory. A request from a trusted reverse proxy is judged by the
//     right-most X-Forwarded-For address the proxy appended;
//   - a token bucket per sending host;
//   - strict validation (ParseRow): a bad row is refused whole, naming what
//     is wrong, and stores nothing;
//   - a resent row (the collector's spool after an outage) is stored once.
//
// Retention: rows stored longer ago than Config.Retention are deleted in
// bounded batches by a periodic purge (off by default: a migrated original
// database loses nothing unless an admin asks).
package omaudit

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/omserver/omserver-go/internal/apperr"
	"github.com/omserver/omserver-go/internal/store"
)

// TokenPrefix marks ingest tokens, so a leaked one is recognisable and is
// never mistaken for an API token (oms_).
const TokenPrefix = "omi_"

// maxTokenBytes bounds what is hashed and looked up.
const maxTokenBytes = 128

// Config tunes the service; zero values take the defaults.
type Config struct {
	// TrustedProxies are the reverse proxies in front of the web tier: a
	// request from one of them is attributed to the right-most address of
	// X-Forwarded-For that is not itself a trusted proxy.
	TrustedProxies []netip.Prefix
	// Rate is the rows per second one host may send in the long run
	// (default 5); Burst how many it may send at once (default 200, enough
	// for a spool flushed after an outage).
	Rate  float64
	Burst int
	// Retention deletes rows stored longer ago than this; 0 keeps them all.
	Retention time.Duration
	// PurgeInterval is how often the purge runs (default 1h); PurgeBatch
	// how many rows one statement deletes (default 1000).
	PurgeInterval time.Duration
	PurgeBatch    int
	// Registerer receives the metrics; nil registers nowhere.
	Registerer prometheus.Registerer
}

func (c *Config) setDefaults() {
	if c.Rate <= 0 {
		c.Rate = 5
	}
	if c.Burst <= 0 {
		c.Burst = 200
	}
	if c.PurgeInterval <= 0 {
		c.PurgeInterval = time.Hour
	}
	if c.PurgeBatch <= 0 {
		c.PurgeBatch = 1000
	}
}

// ParseProxies reads a list of trusted proxies: addresses or CIDR prefixes.
func ParseProxies(list []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(list))
	for _, s := range list {
		s = strings.TrimSpace(s)
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return nil, fmt.Errorf("trusted proxy %q is not an IP address or CIDR prefix", s)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// Service ingests, stores and announces history rows.
type Service struct {
	cfg     Config
	st      *store.Store
	log     zerolog.Logger
	limiter *hostLimiter
	metrics *prometheus.CounterVec

	mu      sync.Mutex
	changed chan struct{}
}

// New returns a service over st.
func New(cfg Config, st *store.Store, log zerolog.Logger) (*Service, error) {
	if st == nil {
		return nil, errors.New("omaudit: a store is required")
	}
	cfg.setDefaults()
	s := &Service{
		cfg: cfg, st: st, log: log.With().Str("component", "omaudit").Logger(),
		limiter: newHostLimiter(cfg.Rate, cfg.Burst),
		changed: make(chan struct{}),
		metrics: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "omserver_web", Name: "omaudit_ingest_total",
			Help: "安全审计 rows offered to /omaudit/omaudit_pull/, by outcome.",
		}, []string{"outcome"}),
	}
	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(s.metrics); err != nil {
			return nil, fmt.Errorf("omaudit: metrics: %w", err)
		}
	}
	return s, nil
}

// Submission is one ingest request as it arrived.
type Submission struct {
	Params       map[string][]string // the query parameters
	Token        string              // from the Authorization header, else the token parameter
	Peer         string              // the TCP peer, host:port (http.Request.RemoteAddr)
	ForwardedFor []string            // X-Forwarded-For header values, in order
}

// Errors of Ingest besides ParseRow's; each carries its category.
var (
	ErrNoToken      = apperr.New(apperr.Unauthenticated, "ingest token required: send Authorization: Bearer "+TokenPrefix+"... (or the token parameter); an admin creates tokens on the 安全审计 token page")
	ErrBadToken     = apperr.New(apperr.Unauthenticated, "ingest token not recognised (revoked or mistyped)")
	ErrRateLimited  = apperr.New(apperr.TooMany, "too many history rows from this host: slow down and send again later")
	ErrWrongSender  = apperr.New(apperr.Forbidden, "sender address does not match history_ip")
	ErrUnknownHost  = apperr.New(apperr.Forbidden, "history_ip is not a server of the inventory")
	ErrTokenForHost = apperr.New(apperr.Forbidden, "this ingest token is for another server")
)

// Ingest checks a submission and stores its row. It returns the row's id
// and whether it had been stored before (an idempotent resend).
func (s *Service) Ingest(ctx context.Context, sub Submission) (int64, bool, error) {
	id, dup, err := s.ingest(ctx, sub)
	switch {
	case err != nil:
		s.metrics.WithLabelValues("refused_" + strings.ReplaceAll(apperr.KindOf(err).String(), " ", "_")).Inc()
	case dup:
		s.metrics.WithLabelValues("duplicate").Inc()
	default:
		s.metrics.WithLabelValues("stored").Inc()
	}
	return id, dup, err
}

func (s *Service) ingest(ctx context.Context, sub Submission) (int64, bool, error) {
	token := strings.TrimSpace(sub.Token)
	if token == "" {
		return 0, false, ErrNoToken
	}
	sender, err := s.sender(sub.Peer, sub.ForwardedFor)
	if err != nil {
		return 0, false, err
	}
	// Before any database work: a flood from one address costs nothing.
	if !s.limiter.allow(sender, time.Now()) {
		return 0, false, ErrRateLimited
	}
	row, err := ParseRow(sub.Params)
	if err != nil {
		return 0, false, err
	}
	if len(token) > maxTokenBytes {
		return 0, false, ErrBadToken
	}
	tok, err := s.st.GetIngestToken(ctx, store.HashToken(token))
	if errors.Is(err, store.ErrNotFound) {
		return 0, false, ErrBadToken
	}
	if err != nil {
		return 0, false, fmt.Errorf("omaudit: look up ingest token: %w", err)
	}
	if tok.ServerIP != "" && tok.ServerIP != row.IP {
		return 0, false, fmt.Errorf("%w (%s), not %s", ErrTokenForHost, tok.ServerIP, row.IP)
	}
	if want := netip.MustParseAddr(row.IP); want != sender {
		return 0, false, fmt.Errorf("%w: the row says %s but was sent from %s (a proxy in between must be listed in web.omaudit.trusted_proxies and send X-Forwarded-For)",
			ErrWrongSender, row.IP, sender)
	}
	id, dup, err := s.st.AddHistory(ctx, row)
	if errors.Is(err, store.ErrNotFound) {
		return 0, false, fmt.Errorf("%w: add %s to the inventory first", ErrUnknownHost, row.IP)
	}
	if err != nil {
		return 0, false, fmt.Errorf("omaudit: store row: %w", err)
	}
	if err := s.st.TouchIngestToken(ctx, tok.ID); err != nil {
		s.log.Warn().Err(err).Int64("token_id", tok.ID).Msg("record ingest token use")
	}
	if !dup {
		s.announce()
	}
	return id, dup, nil
}

// sender is who sent a request: its TCP peer or, when the peer is a
// trusted proxy, the right-most forwarded address not itself trusted
// (addresses to its left were written by the client and prove nothing).
func (s *Service) sender(peer string, forwarded []string) (netip.Addr, error) {
	ap, err := netip.ParseAddrPort(peer)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("omaudit: peer address %q: %w", peer, err)
	}
	addr := ap.Addr().Unmap().WithZone("")
	if !s.trusted(addr) {
		return addr, nil
	}
	var hops []string
	for _, h := range forwarded {
		hops = append(hops, strings.Split(h, ",")...)
	}
	for i := len(hops) - 1; i >= 0; i-- {
		hop := strings.TrimSpace(hops[i])
		a, err := netip.ParseAddr(hop)
		if err != nil {
			return netip.Addr{}, fmt.Errorf("%w: X-Forwarded-For entry %q from proxy %s is not an IP address", ErrWrongSender, clip(hop, 64), addr)
		}
		a = a.Unmap().WithZone("")
		if !s.trusted(a) {
			return a, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("%w: the request came through the trusted proxy %s without X-Forwarded-For naming the sender", ErrWrongSender, addr)
}

func (s *Service) trusted(a netip.Addr) bool {
	for _, p := range s.cfg.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Changed returns a channel closed when the next new row is stored by this
// process. Watchers re-read the table then; rows stored by other web tiers
// are found by their periodic re-read.
func (s *Service) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

func (s *Service) announce() {
	s.mu.Lock()
	defer s.mu.Unlock()
	close(s.changed)
	s.changed = make(chan struct{})
}

// Start runs the retention purge now and every PurgeInterval until ctx
// ends; with no retention set it does nothing.
func (s *Service) Start(ctx context.Context) {
	if s.cfg.Retention <= 0 {
		return
	}
	go func() {
		t := time.NewTicker(s.cfg.PurgeInterval)
		defer t.Stop()
		for {
			if n, err := s.Purge(ctx); err != nil && ctx.Err() == nil {
				s.log.Error().Err(err).Msg("purge 安全审计 history")
			} else if n > 0 {
				s.log.Info().Int64("rows", n).Dur("retention", s.cfg.Retention).Msg("安全审计 history purged")
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
}

// maxPurgeBatches bounds one purge round; a larger backlog is finished by
// the next rounds.
const maxPurgeBatches = 1000

// purgePause lets other writers in between two batches.
const purgePause = 50 * time.Millisecond

// Purge deletes rows stored longer ago than the retention, a batch at a
// time, and returns how many it deleted. Several web tiers may purge at
// once: deleting is idempotent.
func (s *Service) Purge(ctx context.Context) (int64, error) {
	if s.cfg.Retention <= 0 {
		return 0, nil
	}
	cutoff := time.Now().Add(-s.cfg.Retention)
	var total int64
	for range maxPurgeBatches {
		n, err := s.st.PurgeHistory(ctx, cutoff, s.cfg.PurgeBatch)
		total += n
		if err != nil {
			return total, err
		}
		if n < int64(s.cfg.PurgeBatch) {
			return total, nil
		}
		select {
		case <-ctx.Done():
			return total, ctx.Err()
		case <-time.After(purgePause):
		}
	}
	return total, nil
}

// NewToken creates an ingest token for serverIP ("" for every server) and
// returns it with its secret, shown once; only the hash is stored.
func (s *Service) NewToken(ctx context.Context, name, serverIP, createdBy string) (store.IngestToken, string, error) {
	if serverIP != "" {
		a, err := netip.ParseAddr(serverIP)
		if err != nil || a.Zone() != "" {
			return store.IngestToken{}, "", invalidf("server %q is not an IP address", clip(serverIP, 64))
		}
		serverIP = a.Unmap().String()
	}
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return store.IngestToken{}, "", fmt.Errorf("omaudit: token: %w", err)
	}
	secret := TokenPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	id, err := s.st.CreateIngestToken(ctx, strings.TrimSpace(name), serverIP, store.HashToken(secret), createdBy)
	if err != nil {
		return store.IngestToken{}, "", err
	}
	return store.IngestToken{ID: id, Name: strings.TrimSpace(name), ServerIP: serverIP, CreatedBy: createdBy, CreatedAt: time.Now().UTC()}, secret, nil
}
