package relay

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"google.golang.org/grpc"
	grpccreds "google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"

	"github.com/omserver/omserver-go/internal/cipher"
	"github.com/omserver/omserver-go/internal/relay/relaypb"
	"github.com/omserver/omserver-go/internal/task"
	"github.com/omserver/omserver-go/internal/testutil/porttest"
)

const (
	testUser     = "relay"
	testPassword = "relay-password-for-tests"
	testSecret   = "the shared SECRET_KEY"
)

var schemes = []string{cipher.SchemeAEAD, cipher.SchemeLegacy}

// pki is a throwaway CA with a server certificate for 127.0.0.1/::1/
// localhost and a client certificate, written as PEM files.
type pki struct {
	CAFile, CertFile, KeyFile, ClientCertFile, ClientKeyFile string
}

func newPKI(t testing.TB) pki {
	t.Helper()
	dir := t.TempDir()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "omserver test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	p := pki{
		CAFile:         filepath.Join(dir, "ca.pem"),
		CertFile:       filepath.Join(dir, "server.pem"),
		KeyFile:        filepath.Join(dir, "server-key.pem"),
		ClientCertFile: filepath.Join(dir, "client.pem"),
		ClientKeyFile:  filepath.Join(dir, "client-key.pem"),
	}
	writePEM(t, p.CAFile, "CERTIFICATE", caDER)
	leaf := func(serial int64, cn string, usage x509.ExtKeyUsage, certFile, keyFile string) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial),
			Subject:      pkix.Name{CommonName: cn},
			NotBefore:    time.Now().Add(-time.Hour),
			NotAfter:     time.Now().Add(24 * time.Hour),
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  []x509.ExtKeyUsage{usage},
		}
		if usage == x509.ExtKeyUsageServerAuth {
			tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
			tmpl.DNSNames = []string{"localhost"}
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		keyDER, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		writePEM(t, certFile, "CERTIFICATE", der)
		writePEM(t, keyFile, "EC PRIVATE KEY", keyDER)
	}
	leaf(2, "omserver master", x509.ExtKeyUsageServerAuth, p.CertFile, p.KeyFile)
	leaf(3, "omserver web", x509.ExtKeyUsageClientAuth, p.ClientCertFile, p.ClientKeyFile)
	return p
}

func writePEM(t testing.TB, file, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

func testLogger(t testing.TB) zerolog.Logger {
	return zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
}

// serverConfig is a TLS server config for scheme with the test credentials.
func serverConfig(p pki, scheme string) ServerConfig {
	return ServerConfig{
		User: testUser, Password: testPassword, SecretKey: testSecret, Scheme: scheme,
		CertFile: p.CertFile, KeyFile: p.KeyFile, ShutdownGrace: 2 * time.Second,
	}
}

func clientConfig(p pki, scheme string, addrs ...string) ClientConfig {
	return ClientConfig{
		Addrs: addrs, User: testUser, Password: testPassword, SecretKey: testSecret, Scheme: scheme,
		CAFile: p.CAFile, DialTimeout: 5 * time.Second, CallTimeout: 10 * time.Second,
	}
}

// startServerOn serves on lis until the test ends or stop is called.
func startServerOn(t testing.TB, lis net.Listener, cfg ServerConfig, exec Executor) (srv *Server, stop func()) {
	t.Helper()
	srv, err := NewServer(cfg, exec, testLogger(t))
	if err != nil {
		lis.Close()
		t.Fatalf("NewServer: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, lis) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Serve: %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Errorf("Serve did not return after its context ended")
			}
		})
	}
	t.Cleanup(stop)
	return srv, stop
}

// serveLoopback serves an already built server on a fresh loopback port
// until the test ends and returns its address.
func serveLoopback(t testing.TB, srv *Server) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, lis) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return lis.Addr().String()
}

// startServer serves on a fresh loopback port and returns its address.
func startServer(t testing.TB, cfg ServerConfig, exec Executor) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	startServerOn(t, lis, cfg, exec)
	return lis.Addr().String()
}

func newTestClient(t testing.TB, cfg ClientConfig) *Client {
	t.Helper()
	c, err := NewClient(cfg, testLogger(t))
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// closedPort returns a loopback address nothing listens on, held for the
// whole test so no other listener can take it meanwhile.
func closedPort(t testing.TB) string {
	t.Helper()
	return porttest.ClosedAddr(t)
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func hosts(ips ...string) []task.Host {
	out := make([]task.Host, len(ips))
	for i, ip := range ips {
		out[i] = task.Host{IP: ip, Name: "host" + fmt.Sprint(i)}
	}
	return out
}

func newTask(runID string, moduleID int, hs []task.Host, params map[string]string) task.Task {
	return task.Task{RunID: runID, ModuleID: moduleID, Hosts: hs, Params: params, User: "tester"}
}

// fakeExec is an Executor whose behaviour each test sets: Start refuses
// with refuse's error when set, else runs run in the background, keeping
// the events in memory the way the master's journal does (numbered from
// 1, a done event last) for Follow. Cancel cancels the run's context.
type fakeExec struct {
	run    func(ctx context.Context, t task.Task, emit func(task.HostResult)) error
	refuse func(t task.Task) error

	mu      sync.Mutex
	tasks   []task.Task
	cancels map[string]context.CancelFunc
	logs    map[string]*fakeLog
	acks    map[string]uint64
}

// fakeLog is one run's events and whether the "master" lost it.
type fakeLog struct {
	events []task.Event
	ended  bool
	lost   bool
	wake   chan struct{}
}

func newFakeExec(run func(ctx context.Context, t task.Task, emit func(task.HostResult)) error) *fakeExec {
	return &fakeExec{run: run, cancels: make(map[string]context.CancelFunc), logs: make(map[string]*fakeLog), acks: make(map[string]uint64)}
}

// refusingExec refuses every task with err before running anything.
func refusingExec(err error) *fakeExec {
	f := newFakeExec(instantRun)
	f.refuse = func(task.Task) error { return err }
	return f
}

func (f *fakeExec) Start(t task.Task) error {
	if f.refuse != nil {
		if err := f.refuse(t); err != nil {
			return err
		}
	}
	f.mu.Lock()
	if _, dup := f.logs[t.RunID]; dup {
		f.mu.Unlock()
		return fmt.Errorf("%w: %q was accepted before", task.ErrDuplicateRun, t.RunID)
	}
	ctx, cancel := context.WithCancel(context.Background())
	f.tasks = append(f.tasks, t)
	f.cancels[t.RunID] = cancel
	f.logs[t.RunID] = &fakeLog{wake: make(chan struct{})}
	f.mu.Unlock()
	go func() {
		defer cancel()
		var seq uint64
		emit := func(r task.HostResult) {
			seq++
			f.append(t.RunID, task.Event{Seq: seq, RunID: t.RunID, Type: task.EventResult, Result: &r}, false)
		}
		err := f.run(ctx, t, emit)
		end := &task.RunEnd{Status: task.RunDone}
		if ctx.Err() != nil {
			end = &task.RunEnd{Status: task.RunCancelled, Error: "cancelled on request"}
		}
		if err != nil {
			end.Error = err.Error()
		}
		f.mu.Lock()
		delete(f.cancels, t.RunID)
		f.mu.Unlock()
		seq++
		f.append(t.RunID, task.Event{Seq: seq, RunID: t.RunID, Type: task.EventDone, End: end}, true)
	}()
	return nil
}

func (f *fakeExec) append(id string, ev task.Event, end bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	l := f.logs[id]
	if l.lost {
		return
	}
	l.events = append(l.events, ev)
	l.ended = end
	close(l.wake)
	l.wake = make(chan struct{})
}

// lose makes the "master" lose a run, as a restart after kill -9 does.
func (f *fakeExec) lose(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	l := f.logs[id]
	l.lost = true
	close(l.wake)
	l.wake = make(chan struct{})
}

func (f *fakeExec) Follow(ctx context.Context, id string, after uint64, send func(task.Event) error) error {
	for {
		f.mu.Lock()
		l, ok := f.logs[id]
		if !ok {
			f.mu.Unlock()
			return fmt.Errorf("%w: no run %s", task.ErrRunNotFound, id)
		}
		var todo []task.Event
		for _, ev := range l.events {
			if ev.Seq > after {
				todo = append(todo, ev)
			}
		}
		ended, lost, wake := l.ended, l.lost, l.wake
		f.mu.Unlock()
		for _, ev := range todo {
			if err := send(ev); err != nil {
				return err
			}
			after = ev.Seq
		}
		switch {
		case ended:
			return nil
		case lost:
			return fmt.Errorf("%w: the master stopped during run %s", task.ErrInterrupted, id)
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (f *fakeExec) Ack(id string, seq uint64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.logs[id]; !ok {
		return fmt.Errorf("%w: no run %s", task.ErrRunNotFound, id)
	}
	f.acks[id] = seq
	return nil
}

func (f *fakeExec) acked(id string) uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.acks[id]
}

func (f *fakeExec) Cancel(runID string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	cancel, ok := f.cancels[runID]
	if ok {
		cancel()
	}
	return ok
}

func (f *fakeExec) ModuleCount() int { return 7 }

// fakeCatalog is what every fakeExec's Catalog answers.
var fakeCatalog = []task.ModuleInfo{
	{ID: 1003, Name: "view OS version", Caption: "cat /etc/os-release", Params: json.RawMessage(`[]`), Version: "aa11"},
	{ID: 1007, Name: "restart a service", Params: json.RawMessage(`[{"name":"sys_param_1","type":"choice","options":[{"value":"nginx"}]}]`), Version: "bb22"},
}

func (f *fakeExec) Catalog() ([]task.ModuleInfo, error) { return fakeCatalog, nil }

func (f *fakeExec) ran() []task.Task {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]task.Task(nil), f.tasks...)
}

// onResults adapts a results callback to Client.Run's event callback: it
// gets each result event's result and fails on nothing else.
func onResults(fn func(task.HostResult)) func(task.Event) {
	return func(ev task.Event) {
		if ev.Type == task.EventResult {
			fn(*ev.Result)
		}
	}
}

// instantRun reports every host ok at once.
func instantRun(_ context.Context, t task.Task, emit func(task.HostResult)) error {
	now := time.Now()
	for _, h := range t.Hosts {
		emit(task.HostResult{RunID: t.RunID, Host: h, Status: task.StatusOK, Stdout: "hello from " + h.IP + "\n", Started: now})
	}
	return nil
}

// rawConn is a bare relaypb client for tests that send hand-made
// envelopes; localIP, when set, is the source address (a second "peer").
func rawConn(t testing.TB, p pki, addr, localIP string) relaypb.MasterClient {
	t.Helper()
	pool := x509.NewCertPool()
	caPEM, err := os.ReadFile(p.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool.AppendCertsFromPEM(caPEM)
	opts := []grpc.DialOption{grpc.WithTransportCredentials(grpccreds.NewTLS(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}))}
	if localIP != "" {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(localIP)}}
		opts = append(opts, grpc.WithContextDialer(func(ctx context.Context, a string) (net.Conn, error) {
			return d.DialContext(ctx, "tcp", a)
		}))
	}
	conn, err := grpc.NewClient("passthrough:///"+addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return relaypb.NewMasterClient(conn)
}

// loginRaw logs in and returns a context carrying the token.
func loginRaw(t testing.TB, rc relaypb.MasterClient) context.Context {
	t.Helper()
	ctx := testCtx(t)
	resp, err := rc.Login(ctx, &relaypb.LoginRequest{User: testUser, Password: testPassword})
	if err != nil {
		t.Fatalf("Login: %v", err)
	}
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+resp.GetToken())
}

// sealTask seals t (filling issue time and nonce) with codec.
func sealTask(t testing.TB, codec cipher.Codec, tk task.Task) string {
	t.Helper()
	if tk.IssuedAt.IsZero() {
		tk.IssuedAt = time.Now().UTC()
	}
	if tk.Nonce == "" {
		n, err := newNonce()
		if err != nil {
			t.Fatal(err)
		}
		tk.Nonce = n
	}
	plain, err := json.Marshal(tk)
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := codec.Seal(plain)
	if err != nil {
		t.Fatal(err)
	}
	return sealed
}

// runRaw sends one Run call and drains it, returning the final error.
func runRaw(ctx context.Context, rc relaypb.MasterClient, sealed string) (int, error) {
	st, err := rc.Run(ctx, &relaypb.Envelope{Sealed: sealed})
	if err != nil {
		return 0, err
	}
	n := 0
	for {
		_, err := st.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return n, nil
			}
			return n, err
		}
		n++
	}
}

func mustCodec(t testing.TB, scheme, key string) cipher.Codec {
	t.Helper()
	c, err := cipher.New(scheme, key)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func metadataOutgoing(ctx context.Context, auth string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", auth)
}

// Continue: the fake runs no rollouts, so no run ever waits.
func (f *fakeExec) Continue(string) bool { return false }
