package relay

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	grpccreds "google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/omserver/omserver-go/internal/cipher"
	"github.com/omserver/omserver-go/internal/relay/relaypb"
	"github.com/omserver/omserver-go/internal/task"
)

// Executor runs tasks; *master.Master is the real one.
type Executor interface {
	// Run runs t, calling emit (never concurrently) with its events:
	// output chunks, one result per host as each finishes, then done; it
	// returns when every host is done. It must stop the run when ctx ends.
	// It returns an error only when it refused the task before running
	// anything on any host (the relay tells the client so, which lets the
	// client try another master without running anything twice); the
	// error's apperr category becomes the gRPC status code.
	Run(ctx context.Context, t task.Task, emit func(task.Event)) error
	// Cancel stops a running run; false when no run has that id.
	Cancel(runID string) bool
}

// ModuleCounter is implemented by an Executor that can report how many
// modules it has loaded; Health includes the count when it does.
type ModuleCounter interface {
	ModuleCount() int
}

// ServerConfig configures the master side of the relay.
type ServerConfig struct {
	Listen    string // "127.0.0.1:7000"; ListenAndServe only
	User      string // the login the web tier must present
	Password  string
	SecretKey string // SECRET_KEY shared with the web tier
	Scheme    string // cipher scheme: "aead" (default) or "legacy"

	CertFile, KeyFile string // TLS server certificate; required off loopback unless Insecure
	ClientCAFile      string // optional: require client certificates signed by this CA (mTLS)
	Insecure          bool   // allow plaintext on a non-loopback address (--insecure-relay)

	TokenTTL      time.Duration // login token lifetime; default DefaultTokenTTL
	MaxTaskBytes  int           // decrypted task size limit; default DefaultMaxTaskBytes
	ReplayWindow  time.Duration // accepted task issue-time skew; default cipher.DefaultReplayWindow
	ShutdownGrace time.Duration // default DefaultShutdownGrace
	Version       string        // reported by Health
}

// replayChecker is cipher.ReplayGuard's Check.
type replayChecker interface {
	Check(id string, issued, now time.Time) error
}

// Server is the master's relay endpoint.
type Server struct {
	cfg      ServerConfig
	exec     Executor
	log      zerolog.Logger
	codec    cipher.Codec
	guard    replayChecker
	creds    credentials
	sessions *sessions
	limiter  *failureLimiter
	tls      *tls.Config
	now      func() time.Time
}

// NewServer checks cfg and prepares a server; nothing listens until Serve.
func NewServer(cfg ServerConfig, exec Executor, log zerolog.Logger) (*Server, error) {
	if exec == nil {
		return nil, errors.New("relay: no executor")
	}
	if cfg.User == "" {
		return nil, errors.New("relay: relay user is empty")
	}
	if cfg.Password == "" {
		return nil, errors.New("relay: relay password is empty")
	}
	if cfg.SecretKey == "" {
		return nil, errors.New("relay: SECRET_KEY is empty")
	}
	codec, err := cipher.New(cfg.Scheme, cfg.SecretKey)
	if err != nil {
		return nil, fmt.Errorf("relay: %w", err)
	}
	tlsConf, err := serverTLS(cfg)
	if err != nil {
		return nil, err
	}
	if cfg.Listen != "" && tlsConf == nil && !cfg.Insecure && !isLoopbackHostPort(cfg.Listen) {
		return nil, fmt.Errorf("relay: refusing to listen on %s without TLS; set tls cert/key or pass --insecure-relay", cfg.Listen)
	}
	if cfg.TokenTTL <= 0 {
		cfg.TokenTTL = DefaultTokenTTL
	}
	if cfg.MaxTaskBytes <= 0 {
		cfg.MaxTaskBytes = DefaultMaxTaskBytes
	}
	if cfg.ShutdownGrace <= 0 {
		cfg.ShutdownGrace = DefaultShutdownGrace
	}
	return &Server{
		cfg:      cfg,
		exec:     exec,
		log:      log.With().Str("component", "relay").Logger(),
		codec:    codec,
		guard:    cipher.NewReplayGuard(cfg.ReplayWindow, 0),
		creds:    newCredentials(cfg.User, cfg.Password),
		sessions: newSessions(cfg.TokenTTL),
		limiter:  newFailureLimiter(),
		tls:      tlsConf,
		now:      time.Now,
	}, nil
}

// serverTLS loads the TLS configuration, or returns nil when no certificate
// is configured.
func serverTLS(cfg ServerConfig) (*tls.Config, error) {
	if cfg.CertFile == "" && cfg.KeyFile == "" {
		if cfg.ClientCAFile != "" {
			return nil, errors.New("relay: a client CA (mTLS) needs a TLS certificate and key too")
		}
		return nil, nil
	}
	if cfg.CertFile == "" || cfg.KeyFile == "" {
		return nil, errors.New("relay: TLS needs both a certificate file and a key file")
	}
	cert, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("relay: loading TLS certificate: %w", err)
	}
	// TLS 1.3 is negotiated whenever the peer has it; 1.2 is the floor.
	tc := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	if cfg.ClientCAFile != "" {
		pool, err := loadCertPool(cfg.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("relay: client CA: %w", err)
		}
		tc.ClientCAs = pool
		tc.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return tc, nil
}

func loadCertPool(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", file)
	}
	return pool, nil
}

// ListenAndServe listens on cfg.Listen and serves until ctx ends.
func (s *Server) ListenAndServe(ctx context.Context) error {
	if s.cfg.Listen == "" {
		return errors.New("relay: no listen address configured")
	}
	var lc net.ListenConfig
	lis, err := lc.Listen(ctx, "tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("relay: listening on %s: %w", s.cfg.Listen, err)
	}
	return s.Serve(ctx, lis)
}

// Serve answers relay calls on lis until ctx ends, then stops gracefully:
// running calls get ShutdownGrace to finish before they are cut off (which
// cancels their runs on the executor). It closes lis.
func (s *Server) Serve(ctx context.Context, lis net.Listener) error {
	if s.tls == nil && !s.cfg.Insecure && !isLoopbackAddr(lis.Addr()) {
		lis.Close()
		return fmt.Errorf("relay: refusing to listen on %s without TLS; set tls cert/key or pass --insecure-relay", lis.Addr())
	}
	opts := []grpc.ServerOption{
		grpc.MaxRecvMsgSize(s.cfg.MaxTaskBytes/3*4 + envelopeSlack),
		// Notice a web tier that vanished without closing the connection,
		// so its runs get cancelled.
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 30 * time.Second, Timeout: 10 * time.Second}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
	}
	if s.tls != nil {
		opts = append(opts, grpc.Creds(grpccreds.NewTLS(s.tls)))
	}
	gs := grpc.NewServer(opts...)
	relaypb.RegisterMasterServer(gs, &service{s: s})

	mode := "tls"
	if s.tls == nil {
		mode = "plaintext"
	}
	s.log.Info().Str("addr", lis.Addr().String()).Str("transport", mode).Str("scheme", s.codec.Scheme()).Msg("relay listening")

	errc := make(chan error, 1)
	go func() { errc <- gs.Serve(lis) }()
	select {
	case err := <-errc:
		return fmt.Errorf("relay: serving on %s: %w", lis.Addr(), err)
	case <-ctx.Done():
	}

	stopped := make(chan struct{})
	go func() {
		gs.GracefulStop()
		close(stopped)
	}()
	grace := time.NewTimer(s.cfg.ShutdownGrace)
	defer grace.Stop()
	select {
	case <-stopped:
	case <-grace.C:
		s.log.Warn().Dur("grace", s.cfg.ShutdownGrace).Msg("relay: calls still running after the shutdown grace period; cutting them off")
		gs.Stop()
		<-stopped
	}
	<-errc
	s.log.Info().Str("addr", lis.Addr().String()).Msg("relay stopped")
	return nil
}

// service implements relaypb.MasterServer; kept apart from Server so the
// handlers are not part of Server's exported API.
type service struct {
	relaypb.UnimplementedMasterServer
	s *Server
}

func (h *service) Login(ctx context.Context, req *relaypb.LoginRequest) (*relaypb.LoginResponse, error) {
	s := h.s
	who := peerHost(ctx)
	now := s.now()
	if s.limiter.blocked(who, now) {
		s.log.Warn().Str("peer", who).Msg("relay login refused: too many failed logins from this address")
		return nil, status.Error(codes.ResourceExhausted, "too many failed logins from this address; try again later")
	}
	if !s.creds.match(req.GetUser(), req.GetPassword()) {
		s.limiter.fail(who, now)
		s.log.Warn().Str("peer", who).Msg("relay login failed: wrong user or password")
		return nil, status.Error(codes.Unauthenticated, "wrong user or password")
	}
	token, exp, err := s.sessions.issue(now)
	if err != nil {
		s.log.Error().Err(err).Msg("relay login")
		return nil, status.Error(codes.Internal, "cannot issue a session token")
	}
	s.log.Info().Str("peer", who).Time("expires", exp).Msg("relay login")
	return &relaypb.LoginResponse{Token: token, ExpiresUnix: exp.Unix()}, nil
}

// authorize checks the bearer token of a call.
func (s *Server) authorize(ctx context.Context) error {
	md, _ := metadata.FromIncomingContext(ctx)
	vals := md.Get("authorization")
	if len(vals) != 1 {
		return status.Error(codes.Unauthenticated, "not logged in: no session token; log in first")
	}
	token, ok := strings.CutPrefix(vals[0], "Bearer ")
	if !ok || !s.sessions.valid(token, s.now()) {
		return status.Error(codes.Unauthenticated, "not logged in or session expired; log in again")
	}
	return nil
}

// openEnvelope decrypts a sealed request and maps cipher failures to clear
// statuses. what names the request ("task", "cancel request").
func (s *Server) openEnvelope(sealed, what string) ([]byte, error) {
	if sealed == "" {
		return nil, status.Errorf(codes.InvalidArgument, "empty %s envelope", what)
	}
	plain, err := s.codec.Open(sealed)
	if err == nil {
		return plain, nil
	}
	switch {
	case errors.Is(err, cipher.ErrAuth):
		return nil, status.Errorf(codes.InvalidArgument, "cannot open %s envelope: message authentication failed (wrong SECRET_KEY?)", what)
	case errors.Is(err, cipher.ErrVersion):
		return nil, status.Errorf(codes.InvalidArgument, "cannot open %s envelope: not a %s message (cipher scheme mismatch between web tier and master?): %v", what, s.codec.Scheme(), err)
	case errors.Is(err, cipher.ErrReplay):
		return nil, status.Errorf(codes.PermissionDenied, "replayed %s: this envelope was already used", what)
	case errors.Is(err, cipher.ErrExpired):
		return nil, status.Errorf(codes.PermissionDenied, "stale %s: issued outside the accepted time window (clocks out of sync?): %v", what, err)
	case errors.Is(err, cipher.ErrReplayCacheFull):
		return nil, status.Errorf(codes.Unavailable, "master is overloaded with requests; retry later")
	default:
		return nil, status.Errorf(codes.InvalidArgument, "cannot open %s envelope: %v", what, err)
	}
}

// decodeError explains a decrypted document that would not decode. With
// the legacy scheme a wrong key yields garbage, never an error from Open,
// so "not JSON" is the wrong-key signal.
func (s *Server) decodeError(err error, what string) error {
	if errors.Is(err, errBadJSON) && s.codec.Scheme() == cipher.SchemeLegacy {
		return status.Errorf(codes.InvalidArgument, "cannot open %s envelope: decrypted data is not the expected JSON (wrong SECRET_KEY?)", what)
	}
	return status.Errorf(codes.InvalidArgument, "invalid %s: %v", what, err)
}

// checkReplay refuses a request whose nonce was seen or whose issue time is
// out of the window.
func (s *Server) checkReplay(nonce string, issued time.Time, what string) error {
	err := s.guard.Check(nonce, issued, s.now())
	switch {
	case err == nil:
		return nil
	case errors.Is(err, cipher.ErrReplay):
		return status.Errorf(codes.PermissionDenied, "replayed %s: nonce already used", what)
	case errors.Is(err, cipher.ErrExpired):
		return status.Errorf(codes.PermissionDenied, "stale %s: issued outside the accepted time window (clocks out of sync?): %v", what, err)
	case errors.Is(err, cipher.ErrReplayCacheFull):
		return status.Errorf(codes.Unavailable, "master is overloaded with requests; retry later")
	default:
		return status.Errorf(codes.Internal, "replay check: %v", err)
	}
}

// openTask turns a Run request into a validated, fresh task.
func (s *Server) openTask(sealed string) (task.Task, error) {
	plain, err := s.openEnvelope(sealed, "task")
	if err != nil {
		return task.Task{}, err
	}
	t, err := decodeTask(plain, s.cfg.MaxTaskBytes)
	if err != nil {
		return task.Task{}, s.decodeError(err, "task")
	}
	if err := s.checkReplay(t.Nonce, t.IssuedAt, "task"); err != nil {
		return task.Task{}, err
	}
	return t, nil
}

// seal encrypts one event.
func (s *Server) seal(ev task.Event) (*relaypb.Envelope, error) {
	plain, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("encoding %s event: %w", ev.Type, err)
	}
	sealed, err := s.codec.Seal(plain)
	if err != nil {
		return nil, fmt.Errorf("sealing %s event: %w", ev.Type, err)
	}
	return &relaypb.Envelope{Sealed: sealed}, nil
}

func (h *service) Run(req *relaypb.Envelope, stream grpc.ServerStreamingServer[relaypb.Envelope]) error {
	s := h.s
	ctx := stream.Context()
	who := peerHost(ctx)
	if err := s.authorize(ctx); err != nil {
		s.log.Warn().Str("peer", who).Msg("relay run refused: not logged in")
		return err
	}
	t, err := s.openTask(req.GetSealed())
	if err != nil {
		s.log.Warn().Str("peer", who).Str("reason", status.Convert(err).Message()).Msg("relay run refused")
		return err
	}
	log := s.log.With().Str("run_id", t.RunID).Int("module_id", t.ModuleID).
		Int("hosts", len(t.Hosts)).Str("user", t.User).Str("peer", who).Logger()
	log.Info().Msg("relay run started")
	started := s.now()

	// The executor may emit from several goroutines; a gRPC stream takes
	// one sender at a time, and nothing may be sent once Run has returned.
	var (
		mu       sync.Mutex
		closed   bool
		sendErr  error
		sent     int    // results sent
		lastSeq  uint64 // of the last event sent
		doneSent bool
	)
	emit := func(ev task.Event) {
		mu.Lock()
		defer mu.Unlock()
		if closed || sendErr != nil {
			return
		}
		ev.RunID = t.RunID
		if ev.Result != nil {
			ev.Result.RunID = t.RunID
		}
		env, err := s.seal(ev)
		if err == nil {
			err = stream.Send(env)
		}
		if err != nil {
			sendErr = err
			log.Warn().Err(err).Str("event", string(ev.Type)).Msg("relay: cannot send an event; the web tier will not see it")
			return
		}
		lastSeq = ev.Seq
		switch ev.Type {
		case task.EventResult:
			sent++
		case task.EventDone:
			doneSent = true
		}
	}
	// From here on the task may run: say so before anything can, so a
	// client that loses the connection later knows not to run it again
	// elsewhere.
	if err := stream.SendHeader(metadata.Pairs(mdAccepted, "1")); err != nil {
		log.Warn().Err(err).Msg("relay: the caller went away before the run started")
		return status.Error(codes.Unavailable, "cannot answer: the caller went away")
	}
	// ctx ends when the web tier goes away; the executor stops the run then.
	runErr := s.exec.Run(ctx, t, emit)
	mu.Lock()
	closed = true
	mu.Unlock()

	if runErr != nil {
		// The executor refused before running anything (its contract).
		stream.SetTrailer(metadata.Pairs(mdNothingRan, "1"))
		st := runStatus(runErr)
		if ctx.Err() != nil {
			st = status.New(codes.Canceled, "run cancelled: the caller went away")
		}
		log.Warn().Err(runErr).Int("sent", sent).Dur("took", s.now().Sub(started)).Msg("relay run ended with an error")
		return st.Err()
	}
	if sendErr != nil {
		log.Warn().Err(sendErr).Int("sent", sent).Msg("relay run finished but results were lost")
		return status.Errorf(codes.Unavailable, "sending results: %v", sendErr)
	}
	if !doneSent {
		// An executor that does not number its events still ends the
		// stream the one way a client recognises.
		env, err := s.seal(task.Event{Seq: lastSeq + 1, Type: task.EventDone, RunID: t.RunID})
		if err == nil {
			err = stream.Send(env)
		}
		if err != nil {
			log.Warn().Err(err).Msg("relay: cannot send the done event")
			return status.Errorf(codes.Unavailable, "sending done: %v", err)
		}
	}
	log.Info().Int("sent", sent).Dur("took", s.now().Sub(started)).Msg("relay run finished")
	return nil
}

func (h *service) Cancel(ctx context.Context, req *relaypb.Envelope) (*relaypb.CancelResponse, error) {
	s := h.s
	who := peerHost(ctx)
	if err := s.authorize(ctx); err != nil {
		s.log.Warn().Str("peer", who).Msg("relay cancel refused: not logged in")
		return nil, err
	}
	plain, err := s.openEnvelope(req.GetSealed(), "cancel request")
	if err != nil {
		s.log.Warn().Str("peer", who).Str("reason", status.Convert(err).Message()).Msg("relay cancel refused")
		return nil, err
	}
	var cr cancelRequest
	if err := decodeStrict(plain, maxCancelBytes, &cr); err != nil {
		return nil, s.decodeError(err, "cancel request")
	}
	if err := cr.validate(); err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "invalid cancel request: %v", err)
	}
	if err := s.checkReplay(cr.Nonce, cr.IssuedAt, "cancel request"); err != nil {
		return nil, err
	}
	found := s.exec.Cancel(cr.RunID)
	s.log.Info().Str("peer", who).Str("run_id", cr.RunID).Bool("found", found).Msg("relay cancel")
	return &relaypb.CancelResponse{Found: found}, nil
}

func (h *service) Health(context.Context, *relaypb.HealthRequest) (*relaypb.HealthResponse, error) {
	s := h.s
	resp := &relaypb.HealthResponse{Serving: true, Version: s.cfg.Version, Scheme: s.codec.Scheme()}
	if mc, ok := s.exec.(ModuleCounter); ok {
		resp.Modules = int32(mc.ModuleCount())
	}
	return resp, nil
}
