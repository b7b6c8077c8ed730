package relay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/omserver/omserver-go/internal/apperr"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/omserver/omserver-go/internal/relay/relaypb"
	"github.com/omserver/omserver-go/internal/task"
)

// assertRelayError checks err is an *Error of kind with code and a message
// containing want.
func assertRelayError(t *testing.T, err error, kind error, code codes.Code, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %v containing %q", kind, want)
	}
	if !errors.Is(err, kind) {
		t.Fatalf("error %q is not %v", err, kind)
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %q is not a *relay.Error", err)
	}
	if code != codes.OK && e.Code != code {
		t.Errorf("error %q has code %v, want %v", err, e.Code, code)
	}
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not contain %q", err, want)
	}
}

func TestRunStreamsResultsInCompletionOrder(t *testing.T) {
	p := newPKI(t)
	for _, scheme := range schemes {
		t.Run(scheme, func(t *testing.T) {
			// The fake finishes host i when the test sends i on release, so
			// the test decides the completion order and can check each
			// result arrives before the next host is even finished.
			release := make(chan int)
			exec := newFakeExec(func(ctx context.Context, tk task.Task, emit func(task.HostResult)) error {
				for range tk.Hosts {
					select {
					case i := <-release:
						emit(task.HostResult{RunID: tk.RunID, Host: tk.Hosts[i], Status: task.StatusOK, Stdout: fmt.Sprintf("out %d", i)})
					case <-ctx.Done():
						return ctx.Err()
					}
				}
				return nil
			})
			addr := startServer(t, serverConfig(p, scheme), exec)
			c := newTestClient(t, clientConfig(p, scheme, addr))

			got := make(chan task.HostResult)
			errc := make(chan error, 1)
			tk := newTask("run-order-"+scheme, 1003, hosts("127.0.0.1", "127.0.0.2", "127.0.0.3"), map[string]string{"lines": "5"})
			go func() { errc <- c.Run(testCtx(t), tk, onResults(func(r task.HostResult) { got <- r })) }()

			order := []int{2, 0, 1}
			for _, i := range order {
				release <- i
				select {
				case r := <-got:
					if r.Host != tk.Hosts[i] || r.Stdout != fmt.Sprintf("out %d", i) || r.RunID != tk.RunID {
						t.Fatalf("after finishing host %d got result %+v", i, r)
					}
				case err := <-errc:
					t.Fatalf("Run ended early: %v", err)
				case <-time.After(30 * time.Second):
					t.Fatalf("result of host %d never arrived", i)
				}
			}
			if err := <-errc; err != nil {
				t.Fatalf("Run: %v", err)
			}
			ran := exec.ran()
			if len(ran) != 1 || ran[0].RunID != tk.RunID || ran[0].Params["lines"] != "5" || ran[0].Nonce == "" || ran[0].IssuedAt.IsZero() {
				t.Fatalf("executor got %+v", ran)
			}
		})
	}
}

func TestWrongPasswordRefused(t *testing.T) {
	p := newPKI(t)
	exec := newFakeExec(instantRun)
	addr := startServer(t, serverConfig(p, "aead"), exec)

	cfg := clientConfig(p, "aead", addr)
	cfg.Password = "not the password"
	c := newTestClient(t, cfg)
	err := c.Run(testCtx(t), newTask("r1", 1003, hosts("127.0.0.1"), nil), onResults(func(task.HostResult) { t.Error("got a result") }))
	assertRelayError(t, err, ErrLoginRefused, codes.Unauthenticated, "master "+addr+" refused login: wrong user or password")
	// Keep trying: the master stops even checking and says why.
	for i := 1; i < loginBurst; i++ {
		c.Run(testCtx(t), newTask("r1", 1003, hosts("127.0.0.1"), nil), onResults(func(task.HostResult) {}))
	}
	err = c.Run(testCtx(t), newTask("r1", 1003, hosts("127.0.0.1"), nil), onResults(func(task.HostResult) {}))
	assertRelayError(t, err, ErrLoginRefused, codes.ResourceExhausted, "refused login: too many failed logins from this address")
	if len(exec.ran()) != 0 {
		t.Fatal("a task ran after a refused login")
	}
}

func TestLoginFailuresRateLimitedPerPeer(t *testing.T) {
	p := newPKI(t)
	addr := startServer(t, serverConfig(p, "aead"), newFakeExec(instantRun))
	rc := rawConn(t, p, addr, "127.0.0.1")
	ctx := testCtx(t)
	for i := 0; i < loginBurst; i++ {
		_, err := rc.Login(ctx, &relaypb.LoginRequest{User: testUser, Password: "wrong"})
		if status.Code(err) != codes.Unauthenticated {
			t.Fatalf("failure %d: got %v, want Unauthenticated", i+1, err)
		}
	}
	// The allowance is spent: even the right password is refused now.
	_, err := rc.Login(ctx, &relaypb.LoginRequest{User: testUser, Password: testPassword})
	if status.Code(err) != codes.ResourceExhausted || !strings.Contains(status.Convert(err).Message(), "too many failed logins") {
		t.Fatalf("after %d failures got %v, want ResourceExhausted", loginBurst, err)
	}
	// Another peer address is not affected.
	other := rawConn(t, p, addr, "127.0.0.2")
	if _, err := other.Login(ctx, &relaypb.LoginRequest{User: testUser, Password: testPassword}); err != nil {
		t.Fatalf("login from another address: %v", err)
	}
	// A wrong user with the right password is refused too.
	if _, err := other.Login(ctx, &relaypb.LoginRequest{User: "root", Password: testPassword}); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("wrong user: got %v", err)
	}
}

func TestUnauthenticatedCallsRefused(t *testing.T) {
	p := newPKI(t)
	exec := newFakeExec(instantRun)
	addr := startServer(t, serverConfig(p, "aead"), exec)
	rc := rawConn(t, p, addr, "")
	sealed := sealTask(t, mustCodec(t, "aead", testSecret), newTask("r1", 1003, hosts("127.0.0.1"), nil))
	for name, ctx := range map[string]context.Context{
		"no token":    testCtx(t),
		"bogus token": metadataCtx(t, "Bearer not-a-token"),
		"not bearer":  metadataCtx(t, "Basic cmVsYXk6cGFzcw=="),
	} {
		if _, err := runRaw(ctx, rc, sealed); status.Code(err) != codes.Unauthenticated {
			t.Errorf("%s: Run got %v, want Unauthenticated", name, err)
		}
		if _, err := rc.Cancel(ctx, &relaypb.Envelope{Sealed: sealed}); status.Code(err) != codes.Unauthenticated {
			t.Errorf("%s: Cancel got %v, want Unauthenticated", name, err)
		}
		if _, err := rc.Continue(ctx, &relaypb.Envelope{Sealed: sealed}); status.Code(err) != codes.Unauthenticated {
			t.Errorf("%s: Continue got %v, want Unauthenticated", name, err)
		}
	}
	if len(exec.ran()) != 0 {
		t.Fatal("a task ran without login")
	}
}

func TestClientLogsInAgainAfterMasterRestart(t *testing.T) {
	p := newPKI(t)
	exec := newFakeExec(instantRun)
	cfg := serverConfig(p, "aead")
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	_, stop := startServerOn(t, lis, cfg, exec)
	c := newTestClient(t, clientConfig(p, "aead", addr))
	if err := c.Run(testCtx(t), newTask("r1", 1003, hosts("127.0.0.1"), nil), onResults(func(task.HostResult) {})); err != nil {
		t.Fatal(err)
	}
	// A restarted master has forgotten every session: the client's token
	// is refused, and it logs in again by itself.
	stop()
	lis2, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listening again on %s: %v", addr, err)
	}
	startServerOn(t, lis2, cfg, exec)
	n := 0
	if err := c.Run(testCtx(t), newTask("r2", 1003, hosts("127.0.0.1"), nil), onResults(func(task.HostResult) { n++ })); err != nil {
		t.Fatalf("Run after master restart: %v", err)
	}
	if n != 1 || len(exec.ran()) != 2 {
		t.Fatalf("got %d results, executor ran %d tasks", n, len(exec.ran()))
	}
}

func TestWrongSecretKeyRefused(t *testing.T) {
	p := newPKI(t)
	for _, scheme := range schemes {
		t.Run(scheme, func(t *testing.T) {
			exec := newFakeExec(instantRun)
			addr := startServer(t, serverConfig(p, scheme), exec)
			cfg := clientConfig(p, scheme, addr)
			cfg.SecretKey = "some other key"
			c := newTestClient(t, cfg)
			// Many times: with the legacy scheme each attempt decrypts to
			// different random garbage, and every one must be recognised.
			for i := 0; i < 40; i++ {
				err := c.Run(testCtx(t), newTask(fmt.Sprintf("r%d", i), 1003, hosts("127.0.0.1"), nil), onResults(func(task.HostResult) { t.Error("got a result") }))
				assertRelayError(t, err, ErrRejected, codes.InvalidArgument, "wrong SECRET_KEY?")
				if !strings.Contains(err.Error(), "cannot open task envelope") {
					t.Fatalf("error %q does not say the task could not be opened", err)
				}
			}
			if len(exec.ran()) != 0 {
				t.Fatal("a task sealed with the wrong key ran")
			}
		})
	}
}

func TestSchemeMismatchRefused(t *testing.T) {
	p := newPKI(t)
	exec := newFakeExec(instantRun)
	addr := startServer(t, serverConfig(p, "aead"), exec)
	c := newTestClient(t, clientConfig(p, "legacy", addr))
	err := c.Run(testCtx(t), newTask("r1", 1003, hosts("127.0.0.1"), nil), onResults(func(task.HostResult) {}))
	assertRelayError(t, err, ErrRejected, codes.InvalidArgument, "cipher scheme mismatch")
	if err := c.Health(testCtx(t)); err == nil || !strings.Contains(err.Error(), `master expects cipher scheme "aead"`) {
		t.Fatalf("Health with a scheme mismatch: %v", err)
	}
	if len(exec.ran()) != 0 {
		t.Fatal("a task ran")
	}
}

func TestTamperedEnvelopeRefused(t *testing.T) {
	p := newPKI(t)
	cases := []struct {
		scheme string
		tamper func(string) string
		want   string
	}{
		{"aead", func(s string) string { return flipChar(s, len(s)/2) }, "message authentication failed"},
		{"aead", func(s string) string { return flipChar(s, len(s)-3) }, "message authentication failed"},
		{"aead", func(s string) string { return s[:len(s)-10] }, "cannot open task envelope"},
		{"aead", func(s string) string { return "omv9." + s[5:] }, "cannot open task envelope"},
		{"aead", func(s string) string { return "" }, "empty task envelope"},
		// RC4 has no integrity; a cut message decrypts to broken JSON.
		{"legacy", func(s string) string { return s[:len(s)-12] }, "wrong SECRET_KEY?"},
		{"legacy", func(s string) string { return "!!" + s }, "cannot open task envelope"},
	}
	for i, tc := range cases {
		t.Run(fmt.Sprintf("%s-%d", tc.scheme, i), func(t *testing.T) {
			exec := newFakeExec(instantRun)
			addr := startServer(t, serverConfig(p, tc.scheme), exec)
			rc := rawConn(t, p, addr, "")
			ctx := loginRaw(t, rc)
			sealed := sealTask(t, mustCodec(t, tc.scheme, testSecret), newTask("r1", 1003, hosts("127.0.0.1"), nil))
			_, err := runRaw(ctx, rc, tc.tamper(sealed))
			if status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), tc.want) {
				t.Fatalf("got %v, want InvalidArgument containing %q", err, tc.want)
			}
			if len(exec.ran()) != 0 {
				t.Fatal("a tampered task ran")
			}
		})
	}
}

func flipChar(s string, i int) string {
	b := []byte(s)
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	return string(b)
}

func TestReplayedTaskRefused(t *testing.T) {
	p := newPKI(t)
	for _, scheme := range schemes {
		t.Run(scheme, func(t *testing.T) {
			exec := newFakeExec(instantRun)
			addr := startServer(t, serverConfig(p, scheme), exec)
			rc := rawConn(t, p, addr, "")
			ctx := loginRaw(t, rc)
			codec := mustCodec(t, scheme, testSecret)
			tk := newTask("r1", 1003, hosts("127.0.0.1"), nil)
			tk.IssuedAt = time.Now().UTC()
			tk.Nonce = "nonce-1"
			sealed := sealTask(t, codec, tk)
			if n, err := runRaw(ctx, rc, sealed); err != nil || n != 2 {
				t.Fatalf("first run: %d messages, %v", n, err)
			}
			// The same envelope again.
			if _, err := runRaw(ctx, rc, sealed); status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), "replayed task") {
				t.Fatalf("replayed envelope: got %v", err)
			}
			// The same task sealed afresh (what a legacy attacker who knows
			// the plaintext format could not even do, but a buggy web tier
			// could): the nonce gives it away.
			if _, err := runRaw(ctx, rc, sealTask(t, codec, tk)); status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), "replayed task") {
				t.Fatalf("resealed task: got %v", err)
			}
			// A task issued long ago.
			old := newTask("r2", 1003, hosts("127.0.0.1"), nil)
			old.IssuedAt = time.Now().Add(-time.Hour)
			if _, err := runRaw(ctx, rc, sealTask(t, codec, old)); status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), "stale task") {
				t.Fatalf("old task: got %v", err)
			}
			if got := len(exec.ran()); got != 1 {
				t.Fatalf("executor ran %d tasks, want 1", got)
			}
		})
	}
}

func TestInvalidTaskRefused(t *testing.T) {
	p := newPKI(t)
	exec := newFakeExec(instantRun)
	addr := startServer(t, serverConfig(p, "aead"), exec)
	rc := rawConn(t, p, addr, "")
	ctx := loginRaw(t, rc)
	codec := mustCodec(t, "aead", testSecret)
	now := time.Now().UTC().Format(time.RFC3339Nano)
	cases := map[string]struct{ doc, want string }{
		"unknown field":  {`{"run_id":"r","module_id":1003,"hosts":[{"ip":"127.0.0.1"}],"issued_at":"` + now + `","nonce":"n1","shell":"id"}`, `unknown field "shell"`},
		"trailing data":  {`{"run_id":"r","module_id":1003,"hosts":[{"ip":"127.0.0.1"}],"issued_at":"` + now + `","nonce":"n2"} {}`, "trailing data"},
		"no hosts":       {`{"run_id":"r","module_id":1003,"hosts":[],"issued_at":"` + now + `","nonce":"n3"}`, "no hosts"},
		"bad module":     {`{"run_id":"r","module_id":-1,"hosts":[{"ip":"127.0.0.1"}],"issued_at":"` + now + `","nonce":"n4"}`, "not a positive integer"},
		"no nonce":       {`{"run_id":"r","module_id":1003,"hosts":[{"ip":"127.0.0.1"}],"issued_at":"` + now + `"}`, "nonce missing"},
		"wrong type":     {`{"run_id":"r","module_id":"1003","hosts":[{"ip":"127.0.0.1"}],"issued_at":"` + now + `","nonce":"n5"}`, "module_id"},
		"not json":       {`run_id=r`, "bad JSON document"},
		"duplicate host": {`{"run_id":"r","module_id":1003,"hosts":[{"ip":"127.0.0.1"},{"ip":"127.0.0.1"}],"issued_at":"` + now + `","nonce":"n6"}`, "listed twice"},
	}
	for name, tc := range cases {
		sealed, err := codec.Seal([]byte(tc.doc))
		if err != nil {
			t.Fatal(err)
		}
		_, err = runRaw(ctx, rc, sealed)
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want InvalidArgument containing %q", name, err, tc.want)
		}
	}
	if len(exec.ran()) != 0 {
		t.Fatal("an invalid task ran")
	}
	// The client refuses an invalid task before sending anything.
	c := newTestClient(t, clientConfig(p, "aead", addr))
	if err := c.Run(testCtx(t), newTask("", 1003, hosts("127.0.0.1"), nil), onResults(func(task.HostResult) {})); err == nil || !strings.Contains(err.Error(), "run id") {
		t.Fatalf("client with an invalid task: %v", err)
	}
}

func TestOversizedTaskRefused(t *testing.T) {
	p := newPKI(t)
	exec := newFakeExec(instantRun)
	cfg := serverConfig(p, "aead")
	cfg.MaxTaskBytes = 4096
	addr := startServer(t, cfg, exec)
	c := newTestClient(t, clientConfig(p, "aead", addr))

	many := func(n int) []task.Host {
		ips := make([]string, n)
		for i := range ips {
			ips[i] = fmt.Sprintf("127.0.%d.%d", i/250, i%250+1)
		}
		return hosts(ips...)
	}
	// Just over the limit: the decoder refuses it.
	err := c.Run(testCtx(t), newTask("big1", 1003, many(150), nil), onResults(func(task.HostResult) {}))
	assertRelayError(t, err, ErrRejected, codes.InvalidArgument, "more than the limit of 4096")
	// Far over: gRPC refuses the message before it is even decrypted.
	err = c.Run(testCtx(t), newTask("big2", 1003, many(2000), nil), onResults(func(task.HostResult) {}))
	assertRelayError(t, err, ErrRejected, codes.ResourceExhausted, "larger than max")
	if len(exec.ran()) != 0 {
		t.Fatal("an oversized task ran")
	}
}

func TestCancelStopsRun(t *testing.T) {
	p := newPKI(t)
	for _, scheme := range schemes {
		t.Run(scheme, func(t *testing.T) {
			started := make(chan struct{})
			exec := newFakeExec(func(ctx context.Context, tk task.Task, emit func(task.HostResult)) error {
				close(started)
				<-ctx.Done() // a long run, until cancelled
				for _, h := range tk.Hosts {
					emit(task.HostResult{RunID: tk.RunID, Host: h, Status: task.StatusCancelled, ExitCode: -1, Error: "cancelled"})
				}
				return nil
			})
			addr := startServer(t, serverConfig(p, scheme), exec)
			c := newTestClient(t, clientConfig(p, scheme, addr))
			tk := newTask("run-cancel", 1001, hosts("127.0.0.1", "127.0.0.2"), nil)

			var mu sync.Mutex
			var results []task.HostResult
			errc := make(chan error, 1)
			go func() {
				errc <- c.Run(testCtx(t), tk, onResults(func(r task.HostResult) { mu.Lock(); results = append(results, r); mu.Unlock() }))
			}()
			<-started
			if err := c.Cancel(testCtx(t), tk.RunID); err != nil {
				t.Fatalf("Cancel: %v", err)
			}
			if err := <-errc; err != nil {
				t.Fatalf("Run after cancel: %v", err)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(results) != 2 {
				t.Fatalf("got %d results, want 2", len(results))
			}
			for _, r := range results {
				if r.Status != task.StatusCancelled {
					t.Errorf("host %s: status %s, want cancelled", r.Host, r.Status)
				}
			}
			// Nothing is running any more.
			if err := c.Cancel(testCtx(t), tk.RunID); !errors.Is(err, ErrRunNotFound) {
				t.Fatalf("second Cancel: %v, want ErrRunNotFound", err)
			}
		})
	}
}

func TestClientGoingAwayLeavesTheRunToFinishAndResume(t *testing.T) {
	p := newPKI(t)
	started := make(chan struct{})
	release := make(chan struct{})
	exec := newFakeExec(func(ctx context.Context, tk task.Task, emit func(task.HostResult)) error {
		emit(task.HostResult{Host: tk.Hosts[0], Status: task.StatusOK, Stdout: "first"})
		close(started)
		select {
		case <-release:
		case <-ctx.Done():
			return ctx.Err()
		}
		emit(task.HostResult{Host: tk.Hosts[1], Status: task.StatusOK, Stdout: "second"})
		return nil
	})
	addr := startServer(t, serverConfig(p, "aead"), exec)
	c := newTestClient(t, clientConfig(p, "aead", addr))
	ctx, cancel := context.WithCancel(testCtx(t))
	seen := make(chan task.Event, 10)
	errc := make(chan error, 1)
	go func() {
		_, err := c.Dispatch(ctx, newTask("run-gone", 1001, hosts("127.0.0.1", "127.0.0.2"), nil), nil, func(ev task.Event) error {
			seen <- ev
			return nil
		})
		errc <- err
	}()
	<-started
	first := <-seen
	// The web tier goes away (its process stops, say) mid-run.
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("Dispatch: %v, want context.Canceled", err)
	}
	close(release)
	// The run was not cancelled: a new reader resumes after what it saw.
	var rest []task.Event
	err := c.Resume(testCtx(t), addr, "run-gone", first.Seq, func(ev task.Event) error {
		rest = append(rest, ev)
		return nil
	})
	if err != nil {
		t.Fatalf("Resume: %v", err)
	}
	if len(seen) != 0 || first.Seq != 1 || len(rest) != 2 || rest[0].Result.Stdout != "second" || rest[1].Type != task.EventDone ||
		rest[1].End.Status != task.RunDone || rest[0].Seq != 2 || rest[1].Seq != 3 {
		t.Fatalf("before: %+v; resumed: %+v", first, rest)
	}
	if err := c.Ack(testCtx(t), addr, "run-gone", 3); err != nil || exec.acked("run-gone") != 3 {
		t.Fatalf("Ack: %v (master has %d)", err, exec.acked("run-gone"))
	}
	// Resume of a run the master does not know, on an unknown master.
	if err := c.Resume(testCtx(t), addr, "never", 0, func(task.Event) error { return nil }); !errors.Is(err, ErrRunNotFound) {
		t.Fatalf("Resume of an unknown run: %v", err)
	}
	if err := c.Resume(testCtx(t), "127.0.0.9:1", "run-gone", 0, func(task.Event) error { return nil }); apperr.KindOf(err) != apperr.Invalid {
		t.Fatalf("Resume on a master not configured: %v", err)
	}
	// A second dispatch of the same id runs nothing.
	_, err = c.Dispatch(testCtx(t), newTask("run-gone", 1001, hosts("127.0.0.1"), nil), nil, func(task.Event) error {
		t.Error("the duplicate produced an event")
		return nil
	})
	if !errors.Is(err, ErrDuplicateRun) || len(exec.ran()) != 1 {
		t.Fatalf("second dispatch: %v, %d runs", err, len(exec.ran()))
	}
}

func TestResumeOfALostRun(t *testing.T) {
	p := newPKI(t)
	started := make(chan struct{})
	exec := newFakeExec(func(ctx context.Context, tk task.Task, emit func(task.HostResult)) error {
		emit(task.HostResult{Host: tk.Hosts[0], Status: task.StatusOK})
		close(started)
		<-ctx.Done()
		return nil
	})
	addr := startServer(t, serverConfig(p, "aead"), exec)
	c := newTestClient(t, clientConfig(p, "aead", addr))
	var n int
	errc := make(chan error, 1)
	go func() {
		_, err := c.Dispatch(testCtx(t), newTask("lost", 1001, hosts("127.0.0.1", "127.0.0.2"), nil), nil, func(task.Event) error { n++; return nil })
		errc <- err
	}()
	<-started
	exec.lose("lost")
	err := <-errc
	if !errors.Is(err, ErrInterrupted) || apperr.KindOf(err) != apperr.Interrupted || n != 1 {
		t.Fatalf("Dispatch of a run the master lost: %v after %d events", err, n)
	}
	n = 0
	err = c.Resume(testCtx(t), addr, "lost", 0, func(task.Event) error { n++; return nil })
	if !errors.Is(err, ErrInterrupted) || n != 1 {
		t.Fatalf("Resume of a lost run: %v after %d events", err, n)
	}
}

func TestMasterDownClearError(t *testing.T) {
	p := newPKI(t)
	addr := closedPort(t)
	cfg := clientConfig(p, "aead", addr)
	cfg.DialTimeout = 2 * time.Second
	c := newTestClient(t, cfg)
	err := c.Run(testCtx(t), newTask("r1", 1003, hosts("127.0.0.1"), nil), onResults(func(task.HostResult) {}))
	assertRelayError(t, err, ErrMasterDown, codes.Unavailable, "master "+addr+" is unreachable: ")
	if err := c.Health(testCtx(t)); !errors.Is(err, ErrMasterDown) {
		t.Fatalf("Health: %v", err)
	}
	if err := c.Cancel(testCtx(t), "r1"); !errors.Is(err, ErrMasterDown) {
		t.Fatalf("Cancel: %v", err)
	}

	// Two dead masters: the error names both.
	dead2 := closedPort(t)
	c2 := newTestClient(t, clientConfig(p, "aead", addr, dead2))
	err = c2.Run(testCtx(t), newTask("r2", 1003, hosts("127.0.0.1"), nil), onResults(func(task.HostResult) {}))
	if !errors.Is(err, ErrMasterDown) || !strings.Contains(err.Error(), "all masters unreachable") ||
		!strings.Contains(err.Error(), addr) || !strings.Contains(err.Error(), dead2) {
		t.Fatalf("two dead masters: %v", err)
	}
}

func TestFailoverToSecondMaster(t *testing.T) {
	p := newPKI(t)
	exec := newFakeExec(instantRun)
	live := startServer(t, serverConfig(p, "aead"), exec)
	c := newTestClient(t, clientConfig(p, "aead", closedPort(t), live))
	var got []task.HostResult
	if err := c.Run(testCtx(t), newTask("r1", 1003, hosts("127.0.0.1", "127.0.0.2"), nil), onResults(func(r task.HostResult) { got = append(got, r) })); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if len(got) != 2 || len(exec.ran()) != 1 {
		t.Fatalf("got %d results, executor ran %d tasks", len(got), len(exec.ran()))
	}
	if err := c.Health(testCtx(t)); err != nil {
		t.Fatalf("Health with one live master: %v", err)
	}
	hs := c.HealthAll(testCtx(t))
	if hs[0].Err == nil || hs[1].Err != nil || hs[1].Modules != 7 || hs[1].Scheme != "aead" || !hs[1].Serving {
		t.Fatalf("HealthAll: %+v", hs)
	}
}

func TestNoFailoverAfterRejection(t *testing.T) {
	p := newPKI(t)
	first := refusingExec(errors.New("disk on fire"))
	second := newFakeExec(instantRun)
	a1 := startServer(t, serverConfig(p, "aead"), first)
	a2 := startServer(t, serverConfig(p, "aead"), second)
	c := newTestClient(t, clientConfig(p, "aead", a1, a2))
	err := c.Run(testCtx(t), newTask("r1", 1003, hosts("127.0.0.1"), nil), onResults(func(task.HostResult) {}))
	assertRelayError(t, err, ErrRejected, codes.Internal, "run failed: disk on fire")
	if len(second.ran()) != 0 {
		t.Fatal("a run the first master refused was sent to the second")
	}
}

func TestTLSRequirements(t *testing.T) {
	p := newPKI(t)
	exec := newFakeExec(instantRun)
	addr := startServer(t, serverConfig(p, "aead"), exec)

	// A client that does not trust the master's CA.
	other := newPKI(t)
	c := newTestClient(t, clientConfig(other, "aead", addr))
	err := c.Run(testCtx(t), newTask("r1", 1003, hosts("127.0.0.1"), nil), onResults(func(task.HostResult) {}))
	assertRelayError(t, err, ErrMasterDown, codes.Unavailable, "certificate")

	// A plaintext client against a TLS master.
	cfg := clientConfig(p, "aead", addr)
	cfg.Insecure = true
	c = newTestClient(t, cfg)
	err = c.Run(testCtx(t), newTask("r2", 1003, hosts("127.0.0.1"), nil), onResults(func(task.HostResult) {}))
	if !errors.Is(err, ErrMasterDown) {
		t.Fatalf("plaintext client: %v", err)
	}
	if len(exec.ran()) != 0 {
		t.Fatal("a task ran")
	}
}

func TestMutualTLS(t *testing.T) {
	p := newPKI(t)
	cfg := serverConfig(p, "aead")
	cfg.ClientCAFile = p.CAFile
	addr := startServer(t, cfg, newFakeExec(instantRun))

	without := newTestClient(t, clientConfig(p, "aead", addr))
	if err := without.Run(testCtx(t), newTask("r1", 1003, hosts("127.0.0.1"), nil), onResults(func(task.HostResult) {})); !errors.Is(err, ErrMasterDown) {
		t.Fatalf("client without certificate: %v", err)
	}
	ccfg := clientConfig(p, "aead", addr)
	ccfg.CertFile, ccfg.KeyFile = p.ClientCertFile, p.ClientKeyFile
	with := newTestClient(t, ccfg)
	if err := with.Run(testCtx(t), newTask("r2", 1003, hosts("127.0.0.1"), nil), onResults(func(task.HostResult) {})); err != nil {
		t.Fatalf("client with certificate: %v", err)
	}
}

func TestPlaintextOnLoopback(t *testing.T) {
	p := newPKI(t)
	cfg := serverConfig(p, "legacy")
	cfg.CertFile, cfg.KeyFile = "", ""
	addr := startServer(t, cfg, newFakeExec(instantRun))
	ccfg := clientConfig(p, "legacy", addr)
	ccfg.Insecure = true
	c := newTestClient(t, ccfg)
	n := 0
	if err := c.Run(testCtx(t), newTask("r1", 1003, hosts("127.0.0.1"), nil), onResults(func(task.HostResult) { n++ })); err != nil || n != 1 {
		t.Fatalf("plaintext loopback run: %d results, %v", n, err)
	}
}

func TestServerConfigChecks(t *testing.T) {
	p := newPKI(t)
	exec := newFakeExec(instantRun)
	base := ServerConfig{User: testUser, Password: testPassword, SecretKey: testSecret}
	cases := []struct {
		name string
		edit func(*ServerConfig)
		want string // "" means accepted
	}{
		{"loopback plaintext", func(c *ServerConfig) { c.Listen = "127.0.0.1:7000" }, ""},
		{"ipv6 loopback plaintext", func(c *ServerConfig) { c.Listen = "[::1]:7000" }, ""},
		{"localhost plaintext", func(c *ServerConfig) { c.Listen = "localhost:7000" }, ""},
		{"all interfaces plaintext", func(c *ServerConfig) { c.Listen = "0.0.0.0:7000" },
			"refusing to listen on 0.0.0.0:7000 without TLS; set tls cert/key or pass --insecure-relay"},
		{"empty host plaintext", func(c *ServerConfig) { c.Listen = ":7000" }, "refusing to listen on :7000 without TLS"},
		{"lan plaintext", func(c *ServerConfig) { c.Listen = "192.168.1.10:7000" }, "refusing to listen on 192.168.1.10:7000"},
		{"all interfaces insecure", func(c *ServerConfig) { c.Listen = "0.0.0.0:7000"; c.Insecure = true }, ""},
		{"all interfaces tls", func(c *ServerConfig) { c.Listen = "0.0.0.0:7000"; c.CertFile, c.KeyFile = p.CertFile, p.KeyFile }, ""},
		{"no user", func(c *ServerConfig) { c.User = "" }, "relay user is empty"},
		{"no password", func(c *ServerConfig) { c.Password = "" }, "relay password is empty"},
		{"no secret", func(c *ServerConfig) { c.SecretKey = "" }, "SECRET_KEY is empty"},
		{"bad scheme", func(c *ServerConfig) { c.Scheme = "rot13" }, "unknown scheme"},
		{"cert without key", func(c *ServerConfig) { c.CertFile = p.CertFile }, "both a certificate file and a key file"},
		{"missing cert", func(c *ServerConfig) { c.CertFile, c.KeyFile = "/nonexistent.pem", p.KeyFile }, "loading TLS certificate"},
		{"client CA without cert", func(c *ServerConfig) { c.ClientCAFile = p.CAFile }, "needs a TLS certificate"},
		{"client CA not PEM", func(c *ServerConfig) {
			c.CertFile, c.KeyFile, c.ClientCAFile = p.CertFile, p.KeyFile, p.KeyFile
		}, "holds no PEM certificate"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := base
			tc.edit(&cfg)
			_, err := NewServer(cfg, exec, testLogger(t))
			if tc.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestClientConfigChecks(t *testing.T) {
	p := newPKI(t)
	base := clientConfig(p, "aead", "127.0.0.1:7000")
	cases := []struct {
		name string
		edit func(*ClientConfig)
		want string
	}{
		{"ok", func(*ClientConfig) {}, ""},
		{"insecure loopback", func(c *ClientConfig) { c.Insecure = true }, ""},
		{"insecure remote", func(c *ClientConfig) { c.Insecure = true; c.Addrs = []string{"127.0.0.1:7000", "10.0.0.5:7000"} },
			"only allowed to masters on loopback; 10.0.0.5:7000 is not"},
		{"no addrs", func(c *ClientConfig) { c.Addrs = nil }, "no master address"},
		{"bad addr", func(c *ClientConfig) { c.Addrs = []string{"127.0.0.1"} }, `master address "127.0.0.1"`},
		{"duplicate addr", func(c *ClientConfig) { c.Addrs = []string{"127.0.0.1:1", "127.0.0.1:1"} }, "listed twice"},
		{"no password", func(c *ClientConfig) { c.Password = "" }, "user and password must be set"},
		{"no secret", func(c *ClientConfig) { c.SecretKey = "" }, "SECRET_KEY is empty"},
		{"bad scheme", func(c *ClientConfig) { c.Scheme = "rc5" }, "unknown scheme"},
		{"bad CA", func(c *ClientConfig) { c.CAFile = "/nonexistent/ca.pem" }, "master CA"},
		{"cert without key", func(c *ClientConfig) { c.CertFile = p.ClientCertFile }, "both a certificate file and a key file"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := base
			tc.edit(&cfg)
			c, err := NewClient(cfg, testLogger(t))
			if tc.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				c.Close()
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestServeRefusesNonLoopbackListenerWithoutTLS(t *testing.T) {
	srv, err := NewServer(ServerConfig{User: testUser, Password: testPassword, SecretKey: testSecret}, newFakeExec(instantRun), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	lis := &fakeListener{addr: &net.TCPAddr{IP: net.IPv4zero, Port: 7000}}
	err = srv.Serve(testCtx(t), lis)
	if err == nil || !strings.Contains(err.Error(), "refusing to listen on 0.0.0.0:7000 without TLS") {
		t.Fatalf("Serve: %v", err)
	}
	if !lis.closed {
		t.Fatal("the refused listener was left open")
	}
}

// fakeListener is a listener that claims an address; Serve must refuse it
// before accepting anything.
type fakeListener struct {
	addr   net.Addr
	closed bool
}

func (l *fakeListener) Accept() (net.Conn, error) {
	return nil, errors.New("fake listener accepts nothing")
}
func (l *fakeListener) Close() error   { l.closed = true; return nil }
func (l *fakeListener) Addr() net.Addr { return l.addr }

func metadataCtx(t *testing.T, auth string) context.Context {
	return metadataOutgoing(testCtx(t), auth)
}

func TestRunStatusMapping(t *testing.T) {
	cases := []struct {
		err  error
		code codes.Code
		msg  string
	}{
		{fmt.Errorf("%w: module 9 is not installed", task.ErrUnknownModule), codes.NotFound, "module 9 is not installed"},
		{fmt.Errorf("module 1001: %w: sys_param_1 must be a number", task.ErrInvalidParams), codes.InvalidArgument, "sys_param_1 must be a number"},
		{fmt.Errorf("%w: r1", task.ErrDuplicateRun), codes.AlreadyExists, "already accepted"},
		{task.ErrShuttingDown, codes.Unavailable, "shutting down"},
		{fmt.Errorf("%w: salt", task.ErrUnknownBackend), codes.FailedPrecondition, "salt"},
		{fmt.Errorf("%w: after 3", task.ErrEventsDropped), codes.OutOfRange, "no longer keeps"},
		{fmt.Errorf("%w: r1", task.ErrInterrupted), codes.Aborted, "r1"},
		{fmt.Errorf("%w: r1", task.ErrRunNotFound), codes.NotFound, "r1"},
		{fmt.Errorf("%w: disk full", task.ErrJournal), codes.Unavailable, "disk full"},
		{apperr.Errorf(apperr.Forbidden, "budget exceeded"), codes.PermissionDenied, "budget exceeded"},
		{context.Canceled, codes.Canceled, "run cancelled"},
		{errors.New("boom"), codes.Internal, "run failed: boom"},
	}
	for _, tc := range cases {
		st := runStatus(tc.err)
		if st.Code() != tc.code || !strings.Contains(st.Message(), tc.msg) {
			t.Errorf("runStatus(%v) = %v %q, want %v containing %q", tc.err, st.Code(), st.Message(), tc.code, tc.msg)
		}
	}
}

func TestShuttingDownMasterFailsOver(t *testing.T) {
	p := newPKI(t)
	closing := refusingExec(task.ErrShuttingDown)
	full := refusingExec(fmt.Errorf("%w: no space left on device", task.ErrJournal))
	live := newFakeExec(instantRun)
	a1 := startServer(t, serverConfig(p, "aead"), closing)
	a0 := startServer(t, serverConfig(p, "aead"), full)
	a2 := startServer(t, serverConfig(p, "aead"), live)
	c := newTestClient(t, clientConfig(p, "aead", a1, a0, a2))
	n := 0
	var targets []string
	addr, err := c.Dispatch(testCtx(t), newTask("r1", 1003, hosts("127.0.0.1"), nil), func(a string) error {
		targets = append(targets, a)
		return nil
	}, func(ev task.Event) error {
		if ev.Type == task.EventResult {
			n++
		}
		return nil
	})
	if err != nil || n != 1 || addr != a2 {
		t.Fatalf("Dispatch: %d results from %s, %v", n, addr, err)
	}
	if len(closing.ran()) != 0 || len(full.ran()) != 0 || len(live.ran()) != 1 {
		t.Fatalf("closing master ran %d tasks, full %d, live %d", len(closing.ran()), len(full.ran()), len(live.ran()))
	}
	if strings.Join(targets, " ") != a1+" "+a0+" "+a2 {
		t.Fatalf("target was told %v, want every master tried in order", targets)
	}
}

func TestUnresponsiveMasterGivesUpAfterDialTimeout(t *testing.T) {
	p := newPKI(t)
	// A port whose kernel completes the TCP handshake but where nothing
	// ever answers the TLS handshake: a hung master.
	hung, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hung.Close()
	live := newFakeExec(instantRun)
	liveAddr := startServer(t, serverConfig(p, "aead"), live)

	// The dial timeout also bounds connecting and logging in to the live
	// master below: short enough to keep the test quick, long enough for
	// a TLS handshake on a loaded machine.
	const dialTimeout = 3 * time.Second
	cfg := clientConfig(p, "aead", hung.Addr().String())
	cfg.DialTimeout = dialTimeout
	c := newTestClient(t, cfg)
	// The caller's deadline is far away: only the dial timeout can end this.
	err = c.Run(testCtx(t), newTask("r1", 1003, hosts("127.0.0.1"), nil), onResults(func(task.HostResult) {}))
	assertRelayError(t, err, ErrMasterDown, codes.OK, "master "+hung.Addr().String()+" is unreachable")
	t.Logf("hung master: %v", err)

	// Listed first, the hung master is skipped for the live one.
	cfg = clientConfig(p, "aead", hung.Addr().String(), liveAddr)
	cfg.DialTimeout = dialTimeout
	c = newTestClient(t, cfg)
	if err := c.Run(testCtx(t), newTask("r2", 1003, hosts("127.0.0.1"), nil), onResults(func(task.HostResult) {})); err != nil {
		t.Fatalf("failover past a hung master: %v", err)
	}
	if len(live.ran()) != 1 {
		t.Fatal("the live master did not run the task")
	}
}

func TestConcurrentRunsShareOneLogin(t *testing.T) {
	p := newPKI(t)
	exec := newFakeExec(instantRun)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv, _ := startServerOn(t, lis, serverConfig(p, "aead"), exec)
	c := newTestClient(t, clientConfig(p, "aead", lis.Addr().String()))
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- c.Run(testCtx(t), newTask(fmt.Sprintf("par-%d", i), 1003, hosts("127.0.0.1"), nil), onResults(func(task.HostResult) {}))
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	srv.sessions.mu.Lock()
	logins := len(srv.sessions.expires)
	srv.sessions.mu.Unlock()
	if logins != 1 || len(exec.ran()) != 20 {
		t.Fatalf("%d logins for %d runs, want 1 for 20", logins, len(exec.ran()))
	}
}

func TestMasterLostMidRunIsNotRetriedElsewhere(t *testing.T) {
	p := newPKI(t)
	started := make(chan struct{})
	first := newFakeExec(func(ctx context.Context, tk task.Task, emit func(task.HostResult)) error {
		close(started)
		<-ctx.Done()
		return nil
	})
	second := newFakeExec(instantRun)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := serverConfig(p, "aead")
	cfg.ShutdownGrace = 100 * time.Millisecond
	_, stop := startServerOn(t, lis, cfg, first)
	a2 := startServer(t, serverConfig(p, "aead"), second)
	ccfg := clientConfig(p, "aead", lis.Addr().String(), a2)
	ccfg.ResumeFor = 2 * time.Second
	c := newTestClient(t, ccfg)

	// Dispatch reports the lost stream and which master may have the run.
	derr := make(chan error, 1)
	go func() {
		_, err := c.Dispatch(testCtx(t), newTask("r-lost-d", 1007, hosts("127.0.0.1"), nil), nil, func(task.Event) error { return nil })
		derr <- err
	}()
	<-started
	started = make(chan struct{})
	errc := make(chan error, 1)
	go func() {
		errc <- c.Run(testCtx(t), newTask("r-lost", 1007, hosts("127.0.0.1"), nil), onResults(func(task.HostResult) {}))
	}()
	<-started
	stop() // the first master goes away with the runs in progress
	if err := <-derr; !errors.Is(err, ErrStreamLost) || apperr.KindOf(err) != apperr.Unavailable {
		t.Fatalf("Dispatch: %v, want ErrStreamLost", err)
	}
	// Run resumes on that master only, and gives up when it stays away.
	err = <-errc
	assertRelayError(t, err, ErrInterrupted, codes.OK, "contact lost during the run and not regained")
	if !errors.Is(err, task.ErrInterrupted) || apperr.KindOf(err) != apperr.Interrupted {
		t.Fatalf("%v is not task.ErrInterrupted (category %v) for the web tier", err, apperr.KindOf(err))
	}
	t.Logf("lost master: %v", err)
	if len(second.ran()) != 0 {
		t.Fatal("a run the first master had started was run again on the second")
	}
}

func TestHealthCoversTheLogin(t *testing.T) {
	p := newPKI(t)
	exec := newFakeExec(instantRun)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv, _ := startServerOn(t, lis, serverConfig(p, "aead"), exec)
	addr := lis.Addr().String()
	good := newTestClient(t, clientConfig(p, "aead", addr))
	hs := good.HealthAll(testCtx(t))
	if hs[0].Err != nil || !hs[0].LoggedIn || !hs[0].Serving {
		t.Fatalf("health with the right login: %+v", hs[0])
	}
	// The master forgets its sessions (a restart): health logs in again.
	srv.sessions.mu.Lock()
	clear(srv.sessions.expires)
	srv.sessions.mu.Unlock()
	if hs := good.HealthAll(testCtx(t)); hs[0].Err != nil || !hs[0].LoggedIn {
		t.Fatalf("health after the master forgot the session: %+v", hs[0])
	}
	// The master answers Health, but the relay password is wrong: unusable.
	cfg := clientConfig(p, "aead", addr)
	cfg.Password = "not the relay password"
	bad := newTestClient(t, cfg)
	hs = bad.HealthAll(testCtx(t))
	if !errors.Is(hs[0].Err, ErrLoginRefused) || hs[0].LoggedIn || !hs[0].Serving {
		t.Fatalf("health with a wrong relay password: %+v", hs[0])
	}
	if err := bad.Health(testCtx(t)); !errors.Is(err, ErrLoginRefused) {
		t.Fatalf("Health with a wrong relay password: %v", err)
	}
	// Without a token Health stays open and says nothing about logins.
	rc := rawConn(t, p, addr, "")
	resp, err := rc.Health(testCtx(t), &relaypb.HealthRequest{})
	if err != nil || resp.GetAuthenticated() || !resp.GetServing() {
		t.Fatalf("anonymous Health: %+v, %v", resp, err)
	}
	resp, err = rc.Health(metadataCtx(t, "Bearer forged"), &relaypb.HealthRequest{})
	if err != nil || resp.GetAuthenticated() {
		t.Fatalf("Health with a forged token: %+v, %v", resp, err)
	}
}

// TestCategoryRoundTrip: the category of an executor's refusal reaches the
// web tier as it left the master (a budget refusal stays Forbidden, an
// unknown module NotFound...).
func TestCategoryRoundTrip(t *testing.T) {
	for _, k := range []apperr.Kind{apperr.Invalid, apperr.NotFound, apperr.Conflict, apperr.Unavailable,
		apperr.Forbidden, apperr.Interrupted, apperr.Internal} {
		if got := kindOf(codeOf(k)); got != k {
			t.Errorf("%v -> %v -> %v", k, codeOf(k), got)
		}
	}
}

// A sealed cancel request is not a continue request, nor the other way
// round: each call refuses the other's document, and a continue document
// is accepted once.
func TestCancelAndContinueRequestsDoNotCross(t *testing.T) {
	p := newPKI(t)
	exec := newFakeExec(instantRun)
	addr := startServer(t, serverConfig(p, "aead"), exec)
	rc := rawConn(t, p, addr, "")
	lr, err := rc.Login(testCtx(t), &relaypb.LoginRequest{User: testUser, Password: testPassword})
	if err != nil {
		t.Fatal(err)
	}
	ctx := metadataCtx(t, "Bearer "+lr.GetToken())
	codec := mustCodec(t, "aead", testSecret)
	seal := func(v any) *relaypb.Envelope {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		sealed, err := codec.Seal(b)
		if err != nil {
			t.Fatal(err)
		}
		return &relaypb.Envelope{Sealed: sealed}
	}
	now := time.Now().UTC()
	cancelDoc := seal(cancelRequest{RunID: "r1", IssuedAt: now, Nonce: "nonce-cancel-1"})
	continueDoc := seal(continueRequest{RunID: "r1", Continue: true, IssuedAt: now, Nonce: "nonce-continue-1"})
	if _, err := rc.Continue(ctx, cancelDoc); status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "does not say continue") {
		t.Fatalf("Continue with a cancel document: %v", err)
	}
	if _, err := rc.Cancel(ctx, continueDoc); status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "continue") {
		t.Fatalf("Cancel with a continue document: %v", err)
	}
	// An envelope is used once, even by a call that refused it.
	if _, err := rc.Continue(ctx, continueDoc); status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), "replayed") {
		t.Fatalf("Continue with the envelope Cancel refused: %v", err)
	}
	fresh := seal(continueRequest{RunID: "r1", Continue: true, IssuedAt: now, Nonce: "nonce-continue-2"})
	resp, err := rc.Continue(ctx, fresh)
	if err != nil || resp.GetFound() {
		t.Fatalf("Continue: %v, found %v; want no error and not found (the fake runs no rollouts)", err, resp.GetFound())
	}
	if _, err := rc.Continue(ctx, fresh); status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), "replayed") {
		t.Fatalf("replayed Continue: %v", err)
	}
}
