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
	"google.golang.org/grpc/connectivity"
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
	// ErrStreamLost: contact with the master was lost after it may have
	// accepted the run. The run may go on there: follow it with Resume on
	// that master; it is never sent to another, which could run it twice.
	ErrStreamLost = apperr.New(apperr.Unavailable, "contact with the master lost during the run")
	// ErrInterrupted: the master lost the run (it stopped while the run was
	// in progress); hosts without a result may or may not have run it. It
	// is task.ErrInterrupted.
	ErrInterrupted = task.ErrInterrupted
	// ErrRunNotFound: the master does not know the run (never accepted,
	// or forgotten past its journal's age bound); for Cancel, no master
	// knows it. It is task.ErrRunNotFound.
	ErrRunNotFound = task.ErrRunNotFound
	// ErrEventsDropped: the master no longer keeps the events asked for.
	ErrEventsDropped = task.ErrEventsDropped
	// ErrDuplicateRun: the master accepted this run id before; nothing ran
	// now. It is task.ErrDuplicateRun.
	ErrDuplicateRun = task.ErrDuplicateRun
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
	case ErrStreamLost:
		return fmt.Sprintf("lost contact with master %s during the run (it may go on there; it is followed there, never sent elsewhere): %s", e.Addr, e.Msg)
	case ErrInterrupted:
		return fmt.Sprintf("master %s lost the run (hosts without a result may or may not have run it): %s", e.Addr, e.Msg)
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
	// ResumeFor bounds how long Run keeps trying to resume a run whose
	// master it lost contact with; default DefaultResumeFor.
	ResumeFor time.Duration
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
	if cfg.ResumeFor <= 0 {
		cfg.ResumeFor = DefaultResumeFor
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

// Dispatch asks one master to run t and streams the run's events to
// onEvent (from one goroutine, in the master's order, the done event
// included), returning the address of the master that has the run once
// the done event was handled.
//
// A run id is sent to a second master only when the first provably got
// nothing: it could not be reached (its connection was not up, or the
// login failed to reach it) or it refused the task before running anything
// as unavailable (shutting down, journal not writable). Before sending the
// task to a master Dispatch calls target with its address (the web tier
// records it); an error from target stops Dispatch with nothing sent.
//
// Errors: ErrMasterDown when no master could be reached (nothing ran);
// ErrRejected wrapping the master's refusal (nothing ran; a run id the
// master accepted before is task.ErrDuplicateRun); ErrStreamLost when
// contact was lost after the task may have reached the master (the run may
// go on there: Resume it on the returned address, never send it
// elsewhere); onEvent's own error, returned as is. It fills t.IssuedAt and
// t.Nonce when empty.
func (c *Client) Dispatch(ctx context.Context, t task.Task, target func(addr string) error, onEvent func(task.Event) error) (string, error) {
	if t.IssuedAt.IsZero() {
		t.IssuedAt = time.Now().UTC()
	}
	if t.Nonce == "" {
		n, err := newNonce()
		if err != nil {
			return "", err
		}
		t.Nonce = n
	}
	if err := t.Validate(); err != nil {
		return "", err
	}
	plain, err := json.Marshal(t)
	if err != nil {
		return "", fmt.Errorf("relay: encoding task: %w", err)
	}
	var down []error
	for i, m := range c.masters {
		err := c.dispatchOn(ctx, m, t, plain, target, onEvent)
		if err == nil {
			return m.addr, nil
		}
		var e *Error
		if ctx.Err() != nil || !errors.As(err, &e) || e.Kind != ErrMasterDown {
			return m.addr, err
		}
		down = append(down, err)
		if i+1 < len(c.masters) {
			c.log.Warn().Err(err).Str("run_id", t.RunID).Str("next", c.masters[i+1].addr).Msg("master down or stopping; nothing ran there; failing over")
		}
	}
	if len(down) == 1 {
		return "", down[0]
	}
	return "", allDownError(down)
}

// dispatchOn sends t to one master, logging in again once if the session
// is gone. An *Error of kind ErrMasterDown means nothing reached it.
func (c *Client) dispatchOn(ctx context.Context, m *masterConn, t task.Task, plain []byte, target func(string) error, onEvent func(task.Event) error) error {
	stale := ""
	for attempt := 0; ; attempt++ {
		token, err := c.login(ctx, m, stale)
		if err != nil {
			return err
		}
		// Only send over a connection that is up: a call on a connection
		// that is not cannot have reached the master, so failing over is
		// safe; a call that fails after this may have.
		if err := c.ready(ctx, m); err != nil {
			return err
		}
		if target != nil {
			if err := target(m.addr); err != nil {
				return err
			}
		}
		// Each attempt gets a fresh envelope: an AEAD envelope is single use.
		sealed, err := c.codec.Seal(plain)
		if err != nil {
			return fmt.Errorf("relay: sealing task: %w", err)
		}
		got, err := c.stream(ctx, m, token, t.RunID, 0, func(sctx context.Context) (grpc.ServerStreamingClient[relaypb.Envelope], error) {
			return m.rpc.Run(sctx, &relaypb.Envelope{Sealed: sealed})
		}, onEvent)
		var e *Error
		if attempt == 0 && !got.header && errors.As(err, &e) && e.Code == codes.Unauthenticated {
			c.log.Info().Str("master", m.addr).Msg("relay session no longer valid; logging in again")
			stale = token
			continue
		}
		if err == nil || !errors.As(err, &e) {
			return err
		}
		switch {
		case got.nothingRan && e.Code == codes.Unavailable:
			// Refused before running: stopping, or its journal is full.
			e.Kind = ErrMasterDown
		case got.nothingRan:
		case e.Kind == ErrMasterDown:
			// The task may have reached the master: never elsewhere.
			e.Kind = ErrStreamLost
		}
		return err
	}
}

// ready waits until m's connection is up, at most the dial timeout. A
// connection in transient failure fails at once, as a fail-fast call would.
func (c *Client) ready(ctx context.Context, m *masterConn) error {
	wctx, cancel := context.WithTimeout(ctx, c.cfg.DialTimeout)
	defer cancel()
	for {
		st := m.conn.GetState()
		switch st {
		case connectivity.Ready:
			return nil
		case connectivity.Idle:
			m.conn.Connect()
		case connectivity.TransientFailure, connectivity.Shutdown:
			return &Error{Addr: m.addr, Kind: ErrMasterDown, Msg: "not connected (" + strings.ToLower(st.String()) + ")"}
		}
		if !m.conn.WaitForStateChange(wctx, st) {
			if ctx.Err() != nil {
				return fmt.Errorf("relay: call to master %s stopped: %w", m.addr, ctx.Err())
			}
			return &Error{Addr: m.addr, Kind: ErrMasterDown, Msg: fmt.Sprintf("not connected within %s", c.cfg.DialTimeout)}
		}
	}
}

// Resume follows a run on the master at addr from after seq after: the
// events the master kept, then live ones, to onEvent, until the done event
// was handled. It never changes the run, so any number of readers may
// follow one run. Errors: ErrRunNotFound (the master never accepted the
// run, or forgot it), ErrInterrupted (the master lost it), ErrEventsDropped
// (the events asked for are no longer kept), ErrMasterDown or ErrStreamLost
// (try again later), onEvent's own error as is.
func (c *Client) Resume(ctx context.Context, addr, runID string, after uint64, onEvent func(task.Event) error) error {
	m, err := c.master(addr)
	if err != nil {
		return err
	}
	stale := ""
	for attempt := 0; ; attempt++ {
		token, err := c.login(ctx, m, stale)
		if err != nil {
			return err
		}
		if err := c.ready(ctx, m); err != nil {
			return err
		}
		sealed, err := c.sealRequest(resumeRequest{RunID: runID, AfterSeq: after})
		if err != nil {
			return err
		}
		got, err := c.stream(ctx, m, token, runID, after, func(sctx context.Context) (grpc.ServerStreamingClient[relaypb.Envelope], error) {
			return m.rpc.Resume(sctx, &relaypb.Envelope{Sealed: sealed})
		}, onEvent)
		var e *Error
		if attempt == 0 && got.events == 0 && errors.As(err, &e) && e.Code == codes.Unauthenticated {
			stale = token
			continue
		}
		if errors.As(err, &e) {
			switch {
			case e.Code == codes.NotFound:
				e.Kind = ErrRunNotFound
			case e.Kind == ErrMasterDown && got.header:
				e.Kind = ErrStreamLost
			}
		}
		return err
	}
}

// Ack tells the master at addr that the run's events up to seq are stored.
func (c *Client) Ack(ctx context.Context, addr, runID string, seq uint64) error {
	m, err := c.master(addr)
	if err != nil {
		return err
	}
	stale := ""
	for attempt := 0; ; attempt++ {
		token, err := c.login(ctx, m, stale)
		if err != nil {
			return err
		}
		sealed, err := c.sealRequest(ackRequest{RunID: runID, Seq: seq})
		if err != nil {
			return err
		}
		cctx, cancel := context.WithTimeout(ctx, c.cfg.DialTimeout+c.cfg.CallTimeout)
		cctx = metadata.AppendToOutgoingContext(cctx, "authorization", "Bearer "+token)
		_, err = m.rpc.Ack(cctx, &relaypb.Envelope{Sealed: sealed})
		cancel()
		if err != nil {
			err = c.callError(ctx, m, err, false)
			var e *Error
			if attempt == 0 && errors.As(err, &e) && e.Code == codes.Unauthenticated {
				stale = token
				continue
			}
			return err
		}
		return nil
	}
}

// sealRequest fills the issue time and nonce of a resume or ack request
// and seals it.
func (c *Client) sealRequest(req any) (string, error) {
	nonce, err := newNonce()
	if err != nil {
		return "", err
	}
	now := time.Now().UTC()
	switch r := req.(type) {
	case resumeRequest:
		r.IssuedAt, r.Nonce = now, nonce
		req = r
	case ackRequest:
		r.IssuedAt, r.Nonce = now, nonce
		req = r
	}
	plain, err := json.Marshal(req)
	if err != nil {
		return "", fmt.Errorf("relay: encoding request: %w", err)
	}
	sealed, err := c.codec.Seal(plain)
	if err != nil {
		return "", fmt.Errorf("relay: sealing request: %w", err)
	}
	return sealed, nil
}

// master finds a configured master by address.
func (c *Client) master(addr string) (*masterConn, error) {
	for _, m := range c.masters {
		if m.addr == addr {
			return m, nil
		}
	}
	return nil, apperr.Errorf(apperr.Invalid, "relay: master %q is not configured in this web tier (masters: %s)", addr, strings.Join(c.Addrs(), ", "))
}

// Addrs lists the configured masters in order.
func (c *Client) Addrs() []string {
	out := make([]string, len(c.masters))
	for i, m := range c.masters {
		out[i] = m.addr
	}
	return out
}

// Run is Dispatch for callers that do not record where the run went: it
// runs t, passes each output chunk and host result to onEvent (the done
// event ends Run), and when contact is lost after the master may have the
// run, it resumes the stream on that master (with backoff, for at most
// ResumeFor) instead of sending the run anywhere else; then it gives up
// with ErrInterrupted.
func (c *Client) Run(ctx context.Context, t task.Task, onEvent func(task.Event)) error {
	var last uint64
	handle := func(ev task.Event) error {
		last = ev.Seq
		if ev.Type != task.EventDone {
			onEvent(ev)
		}
		return nil
	}
	addr, err := c.Dispatch(ctx, t, nil, handle)
	if err == nil || !errors.Is(err, ErrStreamLost) {
		return err
	}
	giveUp := time.Now().Add(c.cfg.ResumeFor)
	backoff := 100 * time.Millisecond
	c.log.Warn().Err(err).Str("run_id", t.RunID).Uint64("after_seq", last).Msg("lost the run's stream; resuming")
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("relay: run %s: %w", t.RunID, ctx.Err())
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 3*time.Second)
		err = c.Resume(ctx, addr, t.RunID, last, handle)
		if err == nil {
			return nil
		}
		if !errors.Is(err, ErrStreamLost) && !errors.Is(err, ErrMasterDown) {
			return err
		}
		if time.Now().After(giveUp) {
			return &Error{Addr: addr, Kind: ErrInterrupted, Msg: "contact lost during the run and not regained: " + err.Error()}
		}
	}
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

// streamState is what one stream call got before it ended.
type streamState struct {
	header     bool // the master accepted the call (Run: may have started)
	nothingRan bool // the master said nothing ran despite the error
	events     int
}

// stream makes one streaming call (Run or Resume) and hands its events,
// checked and in seq order after after, to onEvent until the done event.
func (c *Client) stream(ctx context.Context, m *masterConn, token, runID string, after uint64,
	open func(context.Context) (grpc.ServerStreamingClient[relaypb.Envelope], error), onEvent func(task.Event) error) (got streamState, err error) {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sctx = metadata.AppendToOutgoingContext(sctx, "authorization", "Bearer "+token)

	// A codec per stream to open its events: the AEAD codec remembers every
	// message it opened (replay guard), and one shared by every run of a
	// long-lived web tier would fill that memory; per stream it still
	// catches an event replayed inside the stream.
	opener, err := cipher.New(c.cfg.Scheme, c.cfg.SecretKey)
	if err != nil {
		return got, fmt.Errorf("relay: %w", err)
	}
	if c.track(runID, m) {
		defer c.untrack(runID)
	}
	st, err := open(sctx)
	if err != nil {
		return got, c.callError(ctx, m, err, false)
	}
	defer func() {
		if err == nil {
			return
		}
		if md, herr := st.Header(); herr == nil && len(md.Get(mdAccepted)) > 0 {
			got.header = true
		}
		if len(st.Trailer().Get(mdNothingRan)) > 0 {
			got.nothingRan = true
		}
	}()
	for {
		env, err := st.Recv()
		if errors.Is(err, io.EOF) {
			return got, &Error{Addr: m.addr, Kind: ErrBadResult, Msg: "the run's stream ended without a done event"}
		}
		if err != nil {
			return got, c.callError(ctx, m, err, false)
		}
		got.header = true
		ev, err := openEvent(opener, env.GetSealed())
		if err != nil {
			return got, &Error{Addr: m.addr, Kind: ErrBadResult, Msg: err.Error()}
		}
		if ev.RunID != runID || (ev.Result != nil && ev.Result.RunID != runID) {
			return got, &Error{Addr: m.addr, Kind: ErrBadResult, Msg: fmt.Sprintf("event for run %q in the stream of run %q", ev.RunID, runID)}
		}
		if ev.Seq <= after {
			return got, &Error{Addr: m.addr, Kind: ErrBadResult, Msg: fmt.Sprintf("event %d of run %s after event %d: out of order", ev.Seq, runID, after)}
		}
		after = ev.Seq
		got.events++
		if err := onEvent(ev); err != nil {
			return got, err
		}
		if ev.Type == task.EventDone {
			return got, nil
		}
	}
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
		if ev.Result != nil || ev.Output != nil || ev.Batch != nil {
			return task.Event{}, errors.New("done event carries a result, output or batch")
		}
	case task.EventBatch:
		b := ev.Batch
		if b == nil || ev.Result != nil || ev.Output != nil || ev.End != nil {
			return task.Event{}, errors.New("batch event without a batch, or with a result, output or end")
		}
		if b.Count < 2 || b.Count > task.MaxHosts || b.Index < 1 || b.Index > b.Count || b.Hosts < 1 || b.Hosts > task.MaxHosts || (b.Confirm && !b.Paused) {
			return task.Event{}, fmt.Errorf("batch event out of range: batch %d of %d, %d hosts", b.Index, b.Count, b.Hosts)
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
	case codes.AlreadyExists:
		e.Kind = ErrDuplicateRun
	case codes.Aborted:
		e.Kind = ErrInterrupted
	case codes.OutOfRange:
		e.Kind = ErrEventsDropped
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
	return c.askRunMaster(ctx, runID, "cancel", func(nonce string) any {
		return cancelRequest{RunID: runID, IssuedAt: time.Now().UTC(), Nonce: nonce}
	}, func(ctx context.Context, m *masterConn, env *relaypb.Envelope) (bool, error) {
		resp, err := m.rpc.Cancel(ctx, env)
		return resp.GetFound(), err
	})
}

// Continue asks the master running runID to go on with a rollout paused
// for an operator's decision, as Cancel finds that master. It returns an
// error wrapping ErrRunNotFound when no master has the run waiting.
func (c *Client) Continue(ctx context.Context, runID string) error {
	return c.askRunMaster(ctx, runID, "continue", func(nonce string) any {
		return continueRequest{RunID: runID, Continue: true, IssuedAt: time.Now().UTC(), Nonce: nonce}
	}, func(ctx context.Context, m *masterConn, env *relaypb.Envelope) (bool, error) {
		resp, err := m.rpc.Continue(ctx, env)
		return resp.GetFound(), err
	})
}

// runCall sends one sealed request about a run to a master and reports
// whether the master found the run.
type runCall func(ctx context.Context, m *masterConn, env *relaypb.Envelope) (bool, error)

// askRunMaster sends a small sealed request about runID (what: "cancel",
// "continue") to the master that runs it: the one this client started it
// on, or else every master until one finds it.
func (c *Client) askRunMaster(ctx context.Context, runID, what string, doc func(nonce string) any, call runCall) error {
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
		found, err := c.askOn(ctx, m, what, doc, call)
		if err != nil {
			if ctx.Err() != nil {
				return err
			}
			errs = append(errs, err)
			continue
		}
		if found {
			c.log.Info().Str("master", m.addr).Str("run_id", runID).Msg("run " + what + " delivered")
			return nil
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("relay: %s of run %s: %w", what, runID, errors.Join(errs...))
	}
	return fmt.Errorf("relay: %s of run %s: %w", what, runID, ErrRunNotFound)
}

// askOn sends one request to m, logging in again once if its token went
// stale.
func (c *Client) askOn(ctx context.Context, m *masterConn, what string, doc func(nonce string) any, call runCall) (bool, error) {
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
		plain, err := json.Marshal(doc(nonce))
		if err != nil {
			return false, fmt.Errorf("relay: encoding %s request: %w", what, err)
		}
		sealed, err := c.codec.Seal(plain)
		if err != nil {
			return false, fmt.Errorf("relay: sealing %s request: %w", what, err)
		}
		cctx, cancel := context.WithTimeout(ctx, c.cfg.DialTimeout+c.cfg.CallTimeout)
		cctx = metadata.AppendToOutgoingContext(cctx, "authorization", "Bearer "+token)
		found, err := call(cctx, m, &relaypb.Envelope{Sealed: sealed})
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
		return found, nil
	}
}

// maxCatalogBytes bounds a decrypted catalog: a few thousand modules with
// their parameter schemas.
const maxCatalogBytes = 16 << 20

// Catalog returns the module catalog of the first usable master, in
// configuration order: a master that is down or refuses the login is
// skipped; any other failure is returned.
func (c *Client) Catalog(ctx context.Context) ([]task.ModuleInfo, error) {
	var down []error
	for _, m := range c.masters {
		mods, err := c.catalogOn(ctx, m)
		if err == nil {
			return mods, nil
		}
		if ctx.Err() != nil {
			return nil, err
		}
		if !errors.Is(err, ErrMasterDown) && !errors.Is(err, ErrLoginRefused) {
			return nil, err
		}
		down = append(down, err)
	}
	if len(down) == 1 {
		return nil, down[0]
	}
	return nil, allDownError(down)
}

func (c *Client) catalogOn(ctx context.Context, m *masterConn) ([]task.ModuleInfo, error) {
	stale := ""
	for attempt := 0; ; attempt++ {
		token, err := c.login(ctx, m, stale)
		if err != nil {
			return nil, err
		}
		cctx, cancel := context.WithTimeout(ctx, c.cfg.DialTimeout+c.cfg.CallTimeout)
		cctx = metadata.AppendToOutgoingContext(cctx, "authorization", "Bearer "+token)
		env, err := m.rpc.Catalog(cctx, &relaypb.CatalogRequest{})
		cancel()
		if err != nil {
			err = c.callError(ctx, m, err, false)
			var e *Error
			if attempt == 0 && errors.As(err, &e) && e.Code == codes.Unauthenticated {
				stale = token
				continue
			}
			return nil, err
		}
		mods, err := openCatalog(c.codec, env.GetSealed())
		if err != nil {
			return nil, &Error{Addr: m.addr, Kind: ErrBadResult, Msg: err.Error()}
		}
		return mods, nil
	}
}

// openCatalog decrypts and checks a catalog.
func openCatalog(codec cipher.Codec, sealed string) ([]task.ModuleInfo, error) {
	plain, err := codec.Open(sealed)
	if err != nil {
		return nil, fmt.Errorf("cannot open catalog envelope: %w", err)
	}
	mods, err := decodeCatalog(plain)
	if errors.Is(err, errBadJSON) && codec.Scheme() == cipher.SchemeLegacy {
		return nil, errors.New("cannot open catalog envelope: decrypted data is not the expected JSON (wrong SECRET_KEY?)")
	}
	return mods, err
}

// decodeCatalog decodes a decrypted catalog strictly and checks it: every
// module with a positive, unique id, a name, a version and a parameter
// schema that is JSON.
func decodeCatalog(plain []byte) ([]task.ModuleInfo, error) {
	var doc catalogDoc
	if err := decodeStrict(plain, maxCatalogBytes, &doc); err != nil {
		return nil, fmt.Errorf("bad catalog: %w", err)
	}
	seen := make(map[int]bool, len(doc.Modules))
	for _, mi := range doc.Modules {
		switch {
		case mi.ID <= 0 || seen[mi.ID]:
			return nil, fmt.Errorf("bad catalog: module id %d is not positive or listed twice", mi.ID)
		case mi.Name == "" || mi.Version == "":
			return nil, fmt.Errorf("bad catalog: module %d has no name or no version", mi.ID)
		case !json.Valid(mi.Params):
			return nil, fmt.Errorf("bad catalog: module %d: parameter schema is not JSON", mi.ID)
		}
		seen[mi.ID] = true
	}
	if doc.Modules == nil {
		doc.Modules = []task.ModuleInfo{}
	}
	return doc.Modules, nil
}

// MasterHealth is one master's answer to Health.
type MasterHealth struct {
	Addr    string
	Serving bool
	Version string
	Modules int
	Scheme  string
	// LoggedIn: the relay login works (a session token was accepted).
	LoggedIn bool
	Err      error // why the master is not usable, nil when it is
}

// HealthAll asks every master for its health, in configuration order,
// with a session token, so a master whose login fails (wrong relay
// password, rate limited) is reported unusable although it answers. A
// master that expects another cipher scheme is reported with an error too:
// every task sent to it would be refused.
func (c *Client) HealthAll(ctx context.Context) []MasterHealth {
	out := make([]MasterHealth, len(c.masters))
	var wg sync.WaitGroup
	for i, m := range c.masters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = c.healthOf(ctx, m)
		}()
	}
	wg.Wait()
	return out
}

func (c *Client) healthOf(ctx context.Context, m *masterConn) MasterHealth {
	h := MasterHealth{Addr: m.addr}
	hctx, cancel := context.WithTimeout(ctx, c.cfg.DialTimeout+c.cfg.CallTimeout)
	defer cancel()
	call := func(token string) (*relaypb.HealthResponse, error) {
		cctx := hctx
		if token != "" {
			cctx = metadata.AppendToOutgoingContext(hctx, "authorization", "Bearer "+token)
		}
		return m.rpc.Health(cctx, &relaypb.HealthRequest{})
	}
	token, loginErr := c.login(hctx, m, "")
	resp, err := call(token)
	if err == nil && loginErr == nil && !resp.GetAuthenticated() {
		// The master forgot our session (it restarted): log in again.
		token, loginErr = c.login(hctx, m, token)
		if loginErr == nil {
			resp, err = call(token)
		}
	}
	switch {
	case err != nil:
		h.Err = c.callError(ctx, m, err, false)
	case !resp.GetServing():
		h.Err = &Error{Addr: m.addr, Kind: ErrMasterDown, Msg: "not serving"}
	case resp.GetScheme() != c.codec.Scheme():
		h.Err = &Error{Addr: m.addr, Kind: ErrRejected,
			Msg: fmt.Sprintf("master expects cipher scheme %q but this side uses %q", resp.GetScheme(), c.codec.Scheme())}
	case loginErr != nil:
		h.Err = loginErr
	case !resp.GetAuthenticated():
		h.Err = &Error{Addr: m.addr, Kind: ErrLoginRefused, Msg: "the master does not accept the session it just issued"}
	}
	if resp != nil {
		h.Serving = resp.GetServing()
		h.Version = resp.GetVersion()
		h.Modules = int(resp.GetModules())
		h.Scheme = resp.GetScheme()
		h.LoggedIn = loginErr == nil && resp.GetAuthenticated()
	}
	return h
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
