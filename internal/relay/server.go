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

// Executor runs tasks; *master.Master (with its journal) is the real one.
// Errors carry internal/task's sentinels; their apperr category becomes
// the gRPC status code.
type Executor interface {
	// Start accepts t and starts running it, independently of the call
	// that brought it: the run goes on if the web tier goes away. It
	// returns an error only when it refused the task before anything ran
	// (a run id it accepted before is task.ErrDuplicateRun).
	Start(t task.Task) error
	// Follow calls send with the run's events after seq after, in order,
	// as they become available, and returns nil once the done event was
	// sent. task.ErrRunNotFound: never accepted; task.ErrInterrupted: the
	// master lost the run; task.ErrEventsDropped: no longer kept.
	Follow(ctx context.Context, runID string, after uint64, send func(task.Event) error) error
	// Ack records that the web tier stored the run's events up to seq.
	Ack(runID string, seq uint64) error
	// Cancel stops a running run; false when no run has that id.
	Cancel(runID string) bool
	// Continue lets a rollout paused for an operator's decision go on;
	// false when no run of that id waits for one.
	Continue(runID string) bool
}

// ModuleCounter is implemented by an Executor that can report how many
// modules it has loaded; Health includes the count when it does.
type ModuleCounter interface {
	ModuleCount() int
}

// Cataloger is implemented by an Executor that can describe its modules;
// the Catalog call answers with it (and is refused when the executor is
// not one).
type Cataloger interface {
	Catalog() ([]task.ModuleInfo, error)
}

// catalogDoc is the sealed JSON document of a Catalog answer.
type catalogDoc struct {
	Modules []task.ModuleInfo `json:"modules"`
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

	TokenTTL     time.Duration // login token lifetime; default DefaultTokenTTL
	MaxTaskBytes int           // decrypted task size limit; default DefaultMaxTaskBytes
	ReplayWindow time.Duration // accepted task issue-time skew; default cipher.DefaultReplayWindow
	// ShutdownGrace is how long Serve lets open calls finish after its
	// context ends (streams deliver the events of runs that are ending)
	// before it cuts them; default DefaultShutdownGrace. Stop the executor
	// (drain its runs) before ending Serve's context: runs do not depend on
	// the calls, so cutting a call loses nothing the journal keeps.
	ShutdownGrace time.Duration
	Version       string // reported by Health
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
	// From here on the task may run: say so before anything can, so a
	// client that loses the connection later knows not to send it to
	// another master. A caller gone before this gets nothing run.
	if err := stream.SendHeader(metadata.Pairs(mdAccepted, "1")); err != nil {
		log.Warn().Err(err).Msg("relay: the caller went away before the run started; nothing ran")
		return status.Error(codes.Unavailable, "cannot answer: the caller went away")
	}
	if err := s.exec.Start(t); err != nil {
		stream.SetTrailer(metadata.Pairs(mdNothingRan, "1"))
		log.Warn().Err(err).Msg("relay run refused")
		return runStatus(err).Err()
	}
	log.Info().Msg("relay run accepted")
	return s.follow(stream, t.RunID, 0, log)
}

// follow streams a run's events after seq after until its done event, the
// caller going away (the run goes on), or an error of the executor.
func (s *Server) follow(stream grpc.ServerStreamingServer[relaypb.Envelope], runID string, after uint64, log zerolog.Logger) error {
	ctx := stream.Context()
	started := s.now()
	sent := 0
	err := s.exec.Follow(ctx, runID, after, func(ev task.Event) error {
		ev.RunID = runID
		if ev.Result != nil {
			ev.Result.RunID = runID
		}
		env, err := s.seal(ev)
		if err != nil {
			return err
		}
		if err := stream.Send(env); err != nil {
			return err
		}
		sent++
		return nil
	})
	switch {
	case err == nil:
		log.Info().Int("events", sent).Dur("took", s.now().Sub(started)).Msg("relay stream finished")
		return nil
	case ctx.Err() != nil:
		log.Info().Int("events", sent).Msg("relay stream ended: the caller went away (the run goes on)")
		return status.Error(codes.Canceled, "the caller went away; the run goes on")
	}
	log.Warn().Err(err).Int("events", sent).Msg("relay stream ended with an error")
	return runStatus(err).Err()
}

// resumeRequest is the sealed JSON document of a Resume call.
type resumeRequest struct {
	RunID    string    `json:"run_id"`
	AfterSeq uint64    `json:"after_seq"`
	IssuedAt time.Time `json:"issued_at"`
	Nonce    string    `json:"nonce"`
}

// ackRequest is the sealed JSON document of an Ack call.
type ackRequest struct {
	RunID    string    `json:"run_id"`
	Seq      uint64    `json:"seq"`
	IssuedAt time.Time `json:"issued_at"`
	Nonce    string    `json:"nonce"`
}

func (h *service) Resume(req *relaypb.Envelope, stream grpc.ServerStreamingServer[relaypb.Envelope]) error {
	s := h.s
	ctx := stream.Context()
	who := peerHost(ctx)
	if err := s.authorize(ctx); err != nil {
		s.log.Warn().Str("peer", who).Msg("relay resume refused: not logged in")
		return err
	}
	var rr resumeRequest
	if err := s.openRequest(req.GetSealed(), "resume request", &rr); err != nil {
		s.log.Warn().Str("peer", who).Str("reason", status.Convert(err).Message()).Msg("relay resume refused")
		return err
	}
	if err := checkRequest(rr.RunID, rr.IssuedAt, rr.Nonce); err != nil {
		return status.Errorf(codes.InvalidArgument, "invalid resume request: %v", err)
	}
	if err := s.checkReplay(rr.Nonce, rr.IssuedAt, "resume request"); err != nil {
		return err
	}
	log := s.log.With().Str("run_id", rr.RunID).Uint64("after_seq", rr.AfterSeq).Str("peer", who).Logger()
	log.Info().Msg("relay resume")
	return s.follow(stream, rr.RunID, rr.AfterSeq, log)
}

func (h *service) Ack(ctx context.Context, req *relaypb.Envelope) (*relaypb.AckResponse, error) {
	s := h.s
	who := peerHost(ctx)
	if err := s.authorize(ctx); err != nil {
		s.log.Warn().Str("peer", who).Msg("relay ack refused: not logged in")
		return nil, err
	}
	var ar ackRequest
	if err := s.openRequest(req.GetSealed(), "ack", &ar); err != nil {
		return nil, err
	}
	if err := checkRequest(ar.RunID, ar.IssuedAt, ar.Nonce); err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "invalid ack: %v", err)
	}
	if err := s.checkReplay(ar.Nonce, ar.IssuedAt, "ack"); err != nil {
		return nil, err
	}
	if err := s.exec.Ack(ar.RunID, ar.Seq); err != nil {
		s.log.Warn().Err(err).Str("run_id", ar.RunID).Uint64("seq", ar.Seq).Msg("relay ack refused")
		return nil, runStatus(err).Err()
	}
	s.log.Debug().Str("peer", who).Str("run_id", ar.RunID).Uint64("seq", ar.Seq).Msg("relay ack")
	return &relaypb.AckResponse{}, nil
}

// openRequest decrypts and strictly decodes a small sealed request.
func (s *Server) openRequest(sealed, what string, v any) error {
	plain, err := s.openEnvelope(sealed, what)
	if err != nil {
		return err
	}
	if err := decodeStrict(plain, maxCancelBytes, v); err != nil {
		return s.decodeError(err, what)
	}
	return nil
}

func (h *service) Cancel(ctx context.Context, req *relaypb.Envelope) (*relaypb.CancelResponse, error) {
	var cr cancelRequest
	if err := h.s.acceptRunRequest(ctx, req, "cancel", &cr); err != nil {
		return nil, err
	}
	found := h.s.exec.Cancel(cr.RunID)
	h.s.log.Info().Str("peer", peerHost(ctx)).Str("run_id", cr.RunID).Bool("found", found).Msg("relay cancel")
	return &relaypb.CancelResponse{Found: found}, nil
}

func (h *service) Continue(ctx context.Context, req *relaypb.Envelope) (*relaypb.ContinueResponse, error) {
	var cr continueRequest
	if err := h.s.acceptRunRequest(ctx, req, "continue", &cr); err != nil {
		return nil, err
	}
	found := h.s.exec.Continue(cr.RunID)
	h.s.log.Info().Str("peer", peerHost(ctx)).Str("run_id", cr.RunID).Bool("found", found).Msg("relay continue")
	return &relaypb.ContinueResponse{Found: found}, nil
}

// runRequest is a small sealed request about one run (cancel, continue).
type runRequest interface {
	validate() error
	replayKey() (nonce string, issued time.Time)
}

// acceptRunRequest checks a small sealed request about a run (what:
// "cancel", "continue"): a logged-in caller, a sealed document that
// decodes strictly into v, valid fields, and never seen before.
func (s *Server) acceptRunRequest(ctx context.Context, req *relaypb.Envelope, what string, v runRequest) error {
	who := peerHost(ctx)
	if err := s.authorize(ctx); err != nil {
		s.log.Warn().Str("peer", who).Msg("relay " + what + " refused: not logged in")
		return err
	}
	if err := s.openRequest(req.GetSealed(), what+" request", v); err != nil {
		s.log.Warn().Str("peer", who).Str("reason", status.Convert(err).Message()).Msg("relay " + what + " refused")
		return err
	}
	if err := v.validate(); err != nil {
		return status.Errorf(codes.InvalidArgument, "invalid %s request: %v", what, err)
	}
	nonce, issued := v.replayKey()
	return s.checkReplay(nonce, issued, what+" request")
}

func (h *service) Health(ctx context.Context, _ *relaypb.HealthRequest) (*relaypb.HealthResponse, error) {
	s := h.s
	resp := &relaypb.HealthResponse{Serving: true, Version: s.cfg.Version, Scheme: s.codec.Scheme()}
	// A call carrying a token learns whether it is accepted, so the web
	// tier's health check covers the login; without one Health stays open.
	if md, _ := metadata.FromIncomingContext(ctx); len(md.Get("authorization")) > 0 {
		resp.Authenticated = s.authorize(ctx) == nil
	}
	if mc, ok := s.exec.(ModuleCounter); ok {
		resp.Modules = int32(mc.ModuleCount())
	}
	return resp, nil
}

func (h *service) Catalog(ctx context.Context, _ *relaypb.CatalogRequest) (*relaypb.Envelope, error) {
	s := h.s
	who := peerHost(ctx)
	if err := s.authorize(ctx); err != nil {
		s.log.Warn().Str("peer", who).Msg("relay catalog refused: not logged in")
		return nil, err
	}
	cat, ok := s.exec.(Cataloger)
	if !ok {
		return nil, status.Error(codes.Unimplemented, "this master does not serve a module catalog")
	}
	mods, err := cat.Catalog()
	if err != nil {
		s.log.Error().Err(err).Msg("relay catalog")
		return nil, status.Error(codes.Internal, "cannot describe the modules")
	}
	if mods == nil {
		mods = []task.ModuleInfo{}
	}
	plain, err := json.Marshal(catalogDoc{Modules: mods})
	if err != nil {
		return nil, status.Errorf(codes.Internal, "encoding the catalog: %v", err)
	}
	sealed, err := s.codec.Seal(plain)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "sealing the catalog: %v", err)
	}
	return &relaypb.Envelope{Sealed: sealed}, nil
}
