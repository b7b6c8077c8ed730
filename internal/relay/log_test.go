package relay

import (
	"bytes"
	"strings"
	"sync"
	"testing"

	"github.com/rs/zerolog"

	"github.com/omserver/omserver-go/internal/relay/relaypb"
	"github.com/omserver/omserver-go/internal/task"
)

// syncBuffer is a bytes.Buffer safe for the server's concurrent logging.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestLogsNameThePeerButNoSecret logs everything (debug level) on both
// sides through a failed login, a successful run and a cancel, and checks
// the failure names the peer while no password, SECRET_KEY or token
// appears anywhere.
func TestLogsNameThePeerButNoSecret(t *testing.T) {
	p := newPKI(t)
	var serverLog, clientLog syncBuffer
	srv, err := NewServer(serverConfig(p, "aead"), newFakeExec(instantRun), zerolog.New(&serverLog).Level(zerolog.DebugLevel))
	if err != nil {
		t.Fatal(err)
	}
	addr := serveLoopback(t, srv)

	rc := rawConn(t, p, addr, "127.0.0.2")
	const wrongPassword = "hunter2-wrong-password"
	if _, err := rc.Login(testCtx(t), &relaypb.LoginRequest{User: testUser, Password: wrongPassword}); err == nil {
		t.Fatal("wrong password accepted")
	}
	resp, err := rc.Login(testCtx(t), &relaypb.LoginRequest{User: testUser, Password: testPassword})
	if err != nil {
		t.Fatal(err)
	}

	c, err := NewClient(clientConfig(p, "aead", addr), zerolog.New(&clientLog).Level(zerolog.DebugLevel))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Run(testCtx(t), newTask("r-log", 1003, hosts("127.0.0.1"), nil), onResults(func(task.HostResult) {})); err != nil {
		t.Fatal(err)
	}
	c.Cancel(testCtx(t), "r-log")

	all := serverLog.String() + clientLog.String()
	if !strings.Contains(serverLog.String(), `"peer":"127.0.0.2"`) || !strings.Contains(serverLog.String(), "relay login failed") {
		t.Errorf("the failed login is not logged with its peer address:\n%s", serverLog.String())
	}
	for name, secret := range map[string]string{
		"wrong password": wrongPassword, "password": testPassword, "SECRET_KEY": testSecret, "token": resp.GetToken(),
	} {
		if strings.Contains(all, secret) {
			t.Errorf("the logs contain the %s", name)
		}
	}
	if !strings.Contains(serverLog.String(), `"run_id":"r-log"`) {
		t.Errorf("the run is not logged with its id:\n%s", serverLog.String())
	}
}
