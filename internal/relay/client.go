package relay

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	grpccreds "google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/omserver/omserver-go/internal/apperr"
	"github.com/omserver/omserver-go/internal/cipher"
	"github.com/omserver/omserver-go/internal/relay/relaypb"
	"github.com/omserver/omserver-go/internal/task"
)

// Kinds of client failure; every error the Client returns about a master
// wraps one of them (test with errors.Is) inside an *Error, which also
// carries the failure's apperr category.
var (
	// ErrMasterDown: the master could not be reached (connection refused,
	// TLS handshake failed, no answer within the dial timeout) or is
	// shutting down. It is task.ErrMasterDown.
	ErrMasterDown = task.ErrMasterDown
	// ErrLoginRefused: wrong relay user or password, or too many failures.
	ErrLoginRefused = errors.New("master refused login")
	// ErrRejected: the master refused the request itself (bad envelope,
	// unknown module, invalid parameters, replay...) or the run failed there.
	ErrRejected = errors.New("master rejected the request")
	// ErrBadResult: something the master sent could not be opened or made
	// no sense (wrong SECRET_KEY on one side, or a corrupted stream).
	ErrBadResult = errors.New("bad message from master")
	// ErrInterrupted: the connection to the master was lost after it had
	// accepted the run; some hosts may have run it. The client does not run
	// it on another master, since that could run it twice. It is
	// task.ErrInterrupted.
	ErrInterrupted = task.ErrInterrupted
	// ErrRunNotFound: no master knows the run to cancel. It is
	// task.ErrRunNotFound.
	ErrRunNotFound = task.ErrRunNotFound
)

// Error is a failure reported by or about one master.
type Error struct {
	Addr string     // the master's address
	Kind error      // one of the sentinel errors above
	Code codes.Code // the gRPC status code when the master answered; codes.OK otherwise
	Msg  string     // the master's message, or what went wrong
}

func (e *Error) Error() string {
	switch e.Kind {
	case ErrMasterDown:
		return fmt.Sprintf("master %s is unreachable: %s", e.Addr, e.Msg)
	case ErrLoginRefused:
		return fmt.Sprintf("master %s refused login: %s", e.Addr, e.Msg)
	case ErrRejected:
		return fmt.Sprintf("master %s rejected the request: %s", e.Addr, e.Msg)
	case ErrBadResult:
		return fmt.Sprintf("bad message from master %s: %s", e.Addr, e.Msg)
	case ErrInterrupted:
		return fmt.Sprintf("master %s went away during the run (hosts may have run it; not retried elsewhere): %s", e.Addr, e.Msg)
	default:
		return fmt.Sprintf("master %s: %s", e.Addr, e.Msg)
	}
}

// Unwrap exposes the kind and the category: a task sentinel carries its
// own; a rejection takes the category of the master's status code.
func (e *Error) Unwrap() error {
	if k, ok := e.Kind.(*apperr.Error); ok {
		return k
	}
	kind := apperr.Unavailable // a refused login or a garbled stream: the run could not be handed over
	if e.Kind == ErrRejected {
		kind = kindOf(e.Code)
	}
	return &apperr.Error{Kind: kind, Err: e.Kind}
}

// ClientConfig configures the web tier's side of the relay.
type ClientConfig struct {
	Addrs     []string // masters, "host:port", tried in this order
	User      string   // the masters' relay login
	Password  string
	SecretKey string // SECRET_KEY shared with the masters
	Scheme    string // cipher scheme: "aead" (default) or "legacy"

	CAFile     string // CA that signed the masters' certificates; system roots when empty
	ServerName string // expected name in the masters' certificates; the address's host when empty
	CertFile   string // optional client certificate (mTLS)
	KeyFile    string
	Insecure   bool // plaintext; only allowed when every master is on loopback

	DialTimeout time.Duration // connecting and logging in to one master; default DefaultDialTimeout
	CallTimeout time.Duration // Cancel and Health calls; default DefaultCallTimeout
}

// Client calls one or more masters. Safe for concurrent use.
type Client struct {
	cfg     ClientConfig
	log     zerolog.Logger
	codec   cipher.Codec
	masters []*masterConn

	mu   sync.Mutex
	runs map[string]*masterConn // running run id -> the master running it
}

// masterConn is one master: its lazily connected gRPC channel and session.
type masterConn struct {
	addr string
	conn *grpc.ClientConn
	rpc  relaypb.MasterClient

	mu       sync.Mutex
	token    string
	expires  time.Time
	inflight *loginCall // the login in progress, if any
}

// NewClient checks cfg and prepares connections; nothing is dialled until
// the first call.
func NewClient(cfg ClientConfig, log zerolog.Logger) (*Client, error) {
	if len(cfg.Addrs) == 0 {
		return nil, errors.New("relay: no master address configured")
	}
	if cfg.User == "" || cfg.Password == "" {
		return nil, errors.New("relay: relay user and password must be set")
	}
	if cfg.SecretKey == "" {
		return nil, errors.New("relay: SECRET_KEY is empty")
	}
	codec, err := cipher.New(cfg.Scheme, cfg.SecretKey)
	if err != nil {
		return nil, fmt.Errorf("relay: %w", err)
	}
	seen := make(map[string]bool)
	for _, a := range cfg.Addrs {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return nil, fmt.Errorf("relay: master address %q: %w", a, err)
		}
		if seen[a] {
			return nil, fmt.Errorf("relay: master address %s listed twice", a)
		}
		seen[a] = true
		if cfg.Insecure && !isLoopbackHostPort(a) {
			return nil, fmt.Errorf("relay: plaintext (insecure) relay is only allowed to masters on loopback; %s is not; configure TLS", a)
		}
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = DefaultDialTimeout
	}
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = DefaultCallTimeout
	}
	var tc grpccreds.TransportCredentials
	if cfg.Insecure {
		tc = insecure.NewCredentials()
	} else {
		tlsConf, err := clientTLS(cfg)
		if err != nil {
			return nil, err
		}
		tc = grpccreds.NewTLS(tlsConf)
	}

	c := &Client{
		cfg:   cfg,
		log:   log.With().Str("component", "relay-client").Logger(),
		codec: codec,
		runs:  make(map[string]*masterConn),
	}
	for _, a := range cfg.Addrs {
		conn, err := grpc.NewClient("passthrough:///"+a,
			grpc.WithTransportCredentials(tc),
			grpc.WithConnectParams(grpc.ConnectParams{
				Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 3 * time.Second},
				MinConnectTimeout: cfg.DialTimeout,
			}),
			grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 30 * time.Second, Timeout: 10 * time.Second}),
			grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxResultMsgBytes)),
		)
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("relay: master %s: %w", a, err)
		}
		c.masters = append(c.masters, &masterConn{addr: a, conn: conn, rpc: relaypb.NewMasterClient(conn)})
	}
	return c, nil
}

func clientTLS(cfg ClientConfig) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: cfg.ServerName}
	if cfg.CAFile != "" {
		pool, err := loadCertPool(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("relay: master CA: %w", err)
		}
		tc.RootCAs = pool
	}
	if cfg.CertFile != "" || cfg.KeyFile != "" {
		if cfg.CertFile == "" || cfg.KeyFile == "" {
			return nil, errors.New("relay: a client certificate needs both a certificate file and a key file")
		}
		cert, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("relay: loading client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// Close closes every connection.
func (c *Client) Close() error {
	var errs []error
	for _, m := range c.masters {
		if err := m.conn.Close(); err != nil {
			errs = append(errs, fmt.Errorf("master %s: %w", m.addr, err))
		}
	}
	return errors.Join(errs...)
}

// Run asks a master to run t and calls onEvent for each output chunk and
// host result as it arrives (from one goroutine, in the master's order;
// the done event ends Run and is not passed on). It
// fills t.IssuedAt and t.Nonce when empty. Masters are tried in order: the
// next one only when the previous is down, or refused the task as shutting
// down, before running anything; so a run never executes twice (a master
// lost after it accepted the run gives ErrInterrupted). Logging in happens
// lazily and is retried once when the master no longer knows the session.
func (c *Client) Run(ctx context.Context, t task.Task, onEvent func(task.Event)) error {
	if t.IssuedAt.IsZero() {
		t.IssuedAt = time.Now().UTC()
	}
	if t.Nonce == "" {
		n, err := newNonce()
		if err != nil {
			return err
		}
		t.Nonce = n
	}
	if err := t.Validate(); err != nil {
		return err
	}
	plain, err := json.Marshal(t)
	if err != nil {
		return fmt.Errorf("relay: encoding task: %w", err)
	}
	var down []error
	for i, m := range c.masters {
		// Each attempt gets a fresh envelope: an AEAD envelope is single use.
		sealed, err := c.codec.Seal(plain)
		if err != nil {
			return fmt.Errorf("relay: sealing task: %w", err)
		}
		delivered, err := c.runOn(ctx, m, t, sealed, onEvent)
		if err == nil {
			return nil
		}
		if delivered || ctx.Err() != nil || !errors.Is(err, ErrMasterDown) {
			return err
		}
		down = append(down, err)
		if i+1 < len(c.masters) {
			c.log.Warn().Err(err).Str("run_id", t.RunID).Str("next", c.masters[i+1].addr).Msg("master down; failing over")
		}
	}
	if len(down) == 1 {
		return down[0]
	}
	return allDownError(down)
}

// allDownError says why each master was unreachable; errors.Is finds
// ErrMasterDown through it, and apperr.KindOf finds Unavailable.
type allDownError []error

func (e allDownError) Error() string {
	msgs := make([]string, len(e))
	for i, err := range e {
		msgs[i] = err.Error()
	}
	return "all masters unreachable (" + strings.Join(msgs, "; ") + ")"
}

func (e allDownError) Unwrap() []error { return e }

// runOn runs t on one master, logging in again once if the session is gone.
// delivered tells whether any event reached onEvent.
func (c *Client) runOn(ctx context.Context, m *masterConn, t task.Task, sealed string, onEvent func(task.Event)) (delivered bool, err error) {
	stale := ""
	for attempt := 0; ; attempt++ {
		token, err := c.login(ctx, m, stale)
		if err != nil {
			return false, err
		}
		delivered, err = c.stream(ctx, m, token, t, sealed, onEvent)
		var e *Error
		if attempt == 0 && !delivered && errors.As(err, &e) && e.Code == codes.Unauthenticated {
			c.log.Info().Str("master", m.addr).Msg("relay session no longer valid; logging in again")
			stale = token
			continue
		}
		return delivered, err
	}
}

// stream makes the Run call and reads its events.
func (c *Client) stream(ctx context.Context, m *masterConn, token string, t task.Task, sealed string, onEvent func(task.Event)) (delivered bool, err error) {
	runCtx, cancel := context.WithCancel(ctx)
	// Cancelling the call on any way out tells the master to stop the run.
	defer cancel()
	runCtx = metadata.AppendToOutgoingContext(runCtx, "authorization", "Bearer "+token)

	// A codec per run to open its results: the AEAD codec remembers every
	// message it opened (replay guard), and one shared by every run of a
	// long-lived web tier would fill that memory; per run it still catches
	// a result replayed inside the stream.
	opener, err := cipher.New(c.cfg.Scheme, c.cfg.SecretKey)
	if err != nil {
		return false, fmt.Errorf("relay: %w", err)
	}

	if c.track(t.RunID, m) {
		defer c.untrack(t.RunID)
	}

	st, err := m.rpc.Run(runCtx, &relaypb.Envelope{Sealed: sealed})
	if err != nil {
		return false, c.callError(ctx, m, err, false)
	}
	for {
		env, err := st.Recv()
		if errors.Is(err, io.EOF) {
			return delivered, &Error{Addr: m.addr, Kind: ErrBadResult, Msg: "the run's stream ended without a done event"}
		}
		if err != nil {
			err = c.callError(ctx, m, err, false)
			var e *Error
			if errors.As(err, &e) && e.Kind == ErrMasterDown && mayHaveRun(st) {
				e.Kind = ErrInterrupted
			}
			return delivered, err
		}
		ev, err := openEvent(opener, env.GetSealed())
		if err != nil {
			return delivered, &Error{Addr: m.addr, Kind: ErrBadResult, Msg: err.Error()}
		}
		if ev.RunID != t.RunID || (ev.Result != nil && ev.Result.RunID != t.RunID) {
			return delivered, &Error{Addr: m.addr, Kind: ErrBadResult, Msg: fmt.Sprintf("event for run %q in the stream of run %q", ev.RunID, t.RunID)}
		}
		if ev.Type == task.EventDone {
			return delivered, nil
		}
		delivered = true
		onEvent(ev)
	}
}

// mayHaveRun tells, after a stream ended with an error, whether the master
// had accepted the task without saying that nothing ran.
func mayHaveRun(st grpc.ClientStream) bool {
	md, err := st.Header()
	if err != nil || len(md.Get(mdAccepted)) == 0 {
		return false
	}
	return len(st.Trailer().Get(mdNothingRan)) == 0
}

// openEvent decrypts and decodes one streamed event. Unknown fields are
// tolerated (a newer master may add some); anything that does not parse is
// an error, which with the legacy scheme is how a wrong key shows.
func openEvent(codec cipher.Codec, sealed string) (task.Event, error) {
	plain, err := codec.Open(sealed)
	if err != nil {
		if errors.Is(err, cipher.ErrAuth) {
			return task.Event{}, errors.New("cannot open result envelope: message authentication failed (wrong SECRET_KEY?)")
		}
		return task.Event{}, fmt.Errorf("cannot open result envelope: %w", err)
	}
	ev, err := decodeEvent(plain)
	if err != nil {
		if errors.Is(err, errBadJSON) && codec.Scheme() == cipher.SchemeLegacy {
			return task.Event{}, errors.New("cannot open result envelope: decrypted data is not the expected JSON (wrong SECRET_KEY?)")
		}
		return task.Event{}, fmt.Errorf("bad event: %w", err)
	}
	return ev, nil
}

// decodeEvent decodes and checks one decrypted event: a known type
// carrying exactly what that type carries, a result with a known status,
// output of a known stream for a named host.
func decodeEvent(plain []byte) (task.Event, error) {
	var ev task.Event
	if err := json.Unmarshal(plain, &ev); err != nil {
		return task.Event{}, fmt.Errorf("%w: %v", errBadJSON, err)
	}
	switch ev.Type {
	case task.EventResult:
		if ev.Result == nil || ev.Output != nil {
			return task.Event{}, errors.New("result event without a result, or with output")
		}
		if !ev.Result.Status.Valid() {
			return task.Event{}, fmt.Errorf("result for host %s has unknown status %q", ev.Result.Host, ev.Result.Status)
		}
	case task.EventOutput:
		if ev.Output == nil || ev.Result != nil {
			return task.Event{}, errors.New("output event without output, or with a result")
		}
		if !ev.Output.Stream.Valid() {
			return task.Event{}, fmt.Errorf("output for host %s names unknown stream %q", ev.Output.Host, ev.Output.Stream)
		}
		if ev.Output.Host.IP == "" && ev.Output.Host.Name == "" {
			return task.Event{}, errors.New("output event without a host")
		}
	case task.EventDone:
		if ev.Result != nil || ev.Output != nil {
			return task.Event{}, errors.New("done event carries a result or output")
		}
	default:
		return task.Event{}, fmt.Errorf("unknown event type %q", ev.Type)
	}
	return ev, nil
}

// login returns a valid session token for m, logging in when it has none
// or only the one the caller found stale. Concurrent callers share one
// login call, so a master that does not answer costs each of them one dial
// timeout, not one each in turn.
func (c *Client) login(ctx context.Context, m *masterConn, stale string) (string, error) {
	m.mu.Lock()
	if m.token != "" && m.token != stale && time.Until(m.expires) > time.Minute {
		token := m.token
		m.mu.Unlock()
		return token, nil
	}
	call := m.inflight
	if call == nil {
		call = &loginCall{done: make(chan struct{})}
		m.inflight = call
		m.token = ""
		go c.doLogin(m, call)
	}
	m.mu.Unlock()
	select {
	case <-call.done:
		if call.err != nil {
			if ctx.Err() != nil {
				return "", fmt.Errorf("relay: call to master %s stopped: %w", m.addr, ctx.Err())
			}
			return "", call.err
		}
		return call.token, nil
	case <-ctx.Done():
		return "", fmt.Errorf("relay: logging in to master %s stopped: %w", m.addr, ctx.Err())
	}
}

// loginCall is one Login call shared by everyone waiting for it.
type loginCall struct {
	done  chan struct{}
	token string
	err   error
}

// doLogin makes the Login call with its own deadline (not a caller's
// context: others may be waiting for it) and publishes the outcome.
func (c *Client) doLogin(m *masterConn, call *loginCall) {
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.DialTimeout)
	defer cancel()
	resp, err := m.rpc.Login(ctx, &relaypb.LoginRequest{User: c.cfg.User, Password: c.cfg.Password})
	m.mu.Lock()
	defer m.mu.Unlock()
	m.inflight = nil
	if err != nil {
		call.err = c.callError(context.Background(), m, err, true)
	} else {
		call.token = resp.GetToken()
		m.token = call.token
		m.expires = time.Unix(resp.GetExpiresUnix(), 0)
		c.log.Debug().Str("master", m.addr).Time("expires", m.expires).Msg("relay login")
	}
	close(call.done)
}

// callError turns a gRPC error into an *Error of the right kind; ctx is the
// caller's context, whose own end is reported as such.
func (c *Client) callError(ctx context.Context, m *masterConn, err error, loggingIn bool) error {
	if ctx.Err() != nil {
		return fmt.Errorf("relay: call to master %s stopped: %w", m.addr, ctx.Err())
	}
	st := status.Convert(err)
	e := &Error{Addr: m.addr, Code: st.Code(), Msg: st.Message()}
	switch st.Code() {
	case codes.Unavailable:
		e.Kind = ErrMasterDown
	case codes.DeadlineExceeded:
		// Only our own dial or call timeout can expire here.
		e.Kind = ErrMasterDown
		e.Msg = fmt.Sprintf("no answer within %s", c.cfg.DialTimeout)
		if !loggingIn {
			e.Msg = "no answer in time"
		}
	case codes.Unauthenticated:
		e.Kind = ErrLoginRefused
	case codes.ResourceExhausted, codes.PermissionDenied:
		// From Login: rate limited. Elsewhere: oversized, replayed...
		e.Kind = ErrRejected
		if loggingIn {
			e.Kind = ErrLoginRefused
		}
	default:
		e.Kind = ErrRejected
	}
	return e
}

// track remembers which master runs runID, for Cancel. The first run of
// an id owns the entry; a duplicate (which the master refuses) must not
// erase it when it ends.
func (c *Client) track(runID string, m *masterConn) (owner bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.runs[runID]; ok {
		return false
	}
	c.runs[runID] = m
	return true
}

func (c *Client) untrack(runID string) {
	c.mu.Lock()
	delete(c.runs, runID)
	c.mu.Unlock()
}

// Cancel asks the master running runID to stop it. A run this client
// started goes straight to its master; otherwise every master is asked.
// It returns an error wrapping ErrRunNotFound when no master has the run.
func (c *Client) Cancel(ctx context.Context, runID string) error {
	if runID == "" || len(runID) > task.MaxRunIDBytes {
		return fmt.Errorf("relay: run id must be 1..%d bytes", task.MaxRunIDBytes)
	}
	c.mu.Lock()
	owner := c.runs[runID]
	c.mu.Unlock()
	targets := c.masters
	if owner != nil {
		targets = []*masterConn{owner}
	}
	var errs []error
	for _, m := range targets {
		found, err := c.cancelOn(ctx, m, runID)
		if err != nil {
			if ctx.Err() != nil {
				return err
			}
			errs = append(errs, err)
			continue
		}
		if found {
			c.log.Info().Str("master", m.addr).Str("run_id", runID).Msg("run cancelled")
			return nil
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("relay: cancelling run %s: %w", runID, errors.Join(errs...))
	}
	return fmt.Errorf("relay: cancelling run %s: %w", runID, ErrRunNotFound)
}

func (c *Client) cancelOn(ctx context.Context, m *masterConn, runID string) (bool, error) {
	stale := ""
	for attempt := 0; ; attempt++ {
		token, err := c.login(ctx, m, stale)
		if err != nil {
			return false, err
		}
		nonce, err := newNonce()
		if err != nil {
			return false, err
		}
		plain, err := json.Marshal(cancelRequest{RunID: runID, IssuedAt: time.Now().UTC(), Nonce: nonce})
		if err != nil {
			return false, fmt.Errorf("relay: encoding cancel request: %w", err)
		}
		sealed, err := c.codec.Seal(plain)
		if err != nil {
			return false, fmt.Errorf("relay: sealing cancel request: %w", err)
		}
		cctx, cancel := context.WithTimeout(ctx, c.cfg.DialTimeout+c.cfg.CallTimeout)
		cctx = metadata.AppendToOutgoingContext(cctx, "authorization", "Bearer "+token)
		resp, err := m.rpc.Cancel(cctx, &relaypb.Envelope{Sealed: sealed})
		cancel()
		if err != nil {
			err = c.callError(ctx, m, err, false)
			var e *Error
			if attempt == 0 && errors.As(err, &e) && e.Code == codes.Unauthenticated {
				stale = token
				continue
			}
			return false, err
		}
		return resp.GetFound(), nil
	}
}

// MasterHealth is one master's answer to Health.
type MasterHealth struct {
	Addr    string
	Serving bool
	Version string
	Modules int
	Scheme  string
	Err     error // why the master is not usable, nil when it is
}

// HealthAll asks every master for its health, in configuration order. A
// master that answers but expects another cipher scheme is reported with
// an error: every task sent to it would be refused.
func (c *Client) HealthAll(ctx context.Context) []MasterHealth {
	out := make([]MasterHealth, len(c.masters))
	var wg sync.WaitGroup
	for i, m := range c.masters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := MasterHealth{Addr: m.addr}
			hctx, cancel := context.WithTimeout(ctx, c.cfg.DialTimeout+c.cfg.CallTimeout)
			defer cancel()
			resp, err := m.rpc.Health(hctx, &relaypb.HealthRequest{})
			switch {
			case err != nil:
				h.Err = c.callError(ctx, m, err, false)
			case !resp.GetServing():
				h.Err = &Error{Addr: m.addr, Kind: ErrMasterDown, Msg: "not serving"}
			case resp.GetScheme() != c.codec.Scheme():
				h.Err = &Error{Addr: m.addr, Kind: ErrRejected,
					Msg: fmt.Sprintf("master expects cipher scheme %q but this side uses %q", resp.GetScheme(), c.codec.Scheme())}
			}
			if resp != nil {
				h.Serving = resp.GetServing()
				h.Version = resp.GetVersion()
				h.Modules = int(resp.GetModules())
				h.Scheme = resp.GetScheme()
			}
			out[i] = h
		}()
	}
	wg.Wait()
	return out
}

// Health returns nil when at least one master is usable, else an error
// naming why each is not.
func (c *Client) Health(ctx context.Context) error {
	var errs []error
	for _, h := range c.HealthAll(ctx) {
		if h.Err == nil {
			return nil
		}
		errs = append(errs, h.Err)
	}
	if len(errs) == 1 {
		return errs[0]
	}
	return fmt.Errorf("relay: no usable master: %w", errors.Join(errs...))
}
