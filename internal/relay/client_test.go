package relay

import (
	"context"
	"encoding/json"
	"net"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	grpccreds "google.golang.org/grpc/credentials"

	"github.com/omserver/omserver-go/internal/cipher"
	"github.com/omserver/omserver-go/internal/relay/relaypb"
	"github.com/omserver/omserver-go/internal/task"
)

// rogueMaster accepts any login and answers Run with the events send
// returns, sealed with its own codec. It stands for a master configured
// with another SECRET_KEY (or a corrupted stream), which the real server
// cannot produce because it refuses the task first.
type rogueMaster struct {
	relaypb.UnimplementedMasterServer
	codec cipher.Codec
	send  func(runID string) []string // plaintext events
	dup   bool                        // send the first sealed event twice
}

func (r *rogueMaster) Login(context.Context, *relaypb.LoginRequest) (*relaypb.LoginResponse, error) {
	return &relaypb.LoginResponse{Token: "t", ExpiresUnix: 1 << 40}, nil
}

func (r *rogueMaster) Run(_ *relaypb.Envelope, st grpc.ServerStreamingServer[relaypb.Envelope]) error {
	for i, ev := range r.send("run-rogue") {
		sealed, err := r.codec.Seal([]byte(ev))
		if err != nil {
			return err
		}
		if err := st.Send(&relaypb.Envelope{Sealed: sealed}); err != nil {
			return err
		}
		if i == 0 && r.dup {
			if err := st.Send(&relaypb.Envelope{Sealed: sealed}); err != nil {
				return err
			}
		}
	}
	return nil
}

func startRogue(t *testing.T, p pki, r *rogueMaster) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	creds, err := grpccreds.NewServerTLSFromFile(p.CertFile, p.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer(grpc.Creds(creds))
	relaypb.RegisterMasterServer(gs, r)
	go gs.Serve(lis)
	t.Cleanup(gs.Stop)
	return lis.Addr().String()
}

func resultEvent(runID string) string {
	b, _ := json.Marshal(task.Event{Seq: 1, Type: task.EventResult, RunID: runID, Result: &task.HostResult{RunID: runID, Host: task.Host{IP: "127.0.0.1"}, Status: task.StatusOK}})
	return string(b)
}

func TestClientRejectsResultsItCannotOpen(t *testing.T) {
	p := newPKI(t)
	ok := func(id string) []string { return []string{resultEvent(id), `{"type":"done","run_id":"` + id + `"}`} }
	cases := []struct {
		name       string
		scheme     string
		rogueKey   string
		send       func(string) []string
		want       string
		wantResult int
		dup        bool
	}{
		{"aead wrong key", "aead", "another key", ok, "message authentication failed (wrong SECRET_KEY?)", 0, false},
		{"legacy wrong key", "legacy", "another key", ok, "decrypted data is not the expected JSON (wrong SECRET_KEY?)", 0, false},
		{"other run", "aead", testSecret, func(string) []string { return []string{resultEvent("someone-elses-run")} }, `event for run "someone-elses-run"`, 0, false},
		{"unknown type", "aead", testSecret, func(id string) []string { return []string{`{"type":"shell","run_id":"` + id + `"}`} }, `unknown event type "shell"`, 0, false},
		{"no done", "aead", testSecret, func(id string) []string { return []string{resultEvent(id)} }, "ended without a done event", 1, false},
		{"unknown status", "aead", testSecret, func(id string) []string {
			return []string{`{"type":"result","run_id":"` + id + `","result":{"run_id":"` + id + `","host":{"ip":"127.0.0.1"},"status":"rebooted"}}`}
		}, `unknown status "rebooted"`, 0, false},
		{"replayed result", "aead", testSecret, ok, "replayed message", 1, true},
		{"empty result", "aead", testSecret, func(id string) []string { return []string{`{"type":"result","run_id":"` + id + `"}`} }, "result event without a result", 0, false},
		{"output without host", "aead", testSecret, func(id string) []string {
			return []string{`{"type":"output","run_id":"` + id + `","output":{"host":{},"stream":"stdout","data":"x"}}`}
		}, "output event without a host", 0, false},
		{"output of unknown stream", "aead", testSecret, func(id string) []string {
			return []string{`{"type":"output","run_id":"` + id + `","output":{"host":{"ip":"127.0.0.1"},"stream":"stdin","data":"x"}}`}
		}, `unknown stream "stdin"`, 0, false},
		{"done with output", "aead", testSecret, func(id string) []string {
			return []string{`{"type":"done","run_id":"` + id + `","output":{"host":{"ip":"127.0.0.1"},"stream":"stdout","data":"x"}}`}
		}, "done event carries a result, output or batch", 0, false},
		{"batch without a batch", "aead", testSecret, func(id string) []string {
			return []string{`{"type":"batch","run_id":"` + id + `"}`}
		}, "batch event without a batch", 0, false},
		{"batch out of range", "aead", testSecret, func(id string) []string {
			return []string{`{"type":"batch","run_id":"` + id + `","batch":{"index":3,"count":2,"hosts":1}}`}
		}, "batch event out of range: batch 3 of 2", 0, false},
		{"confirm without a pause", "aead", testSecret, func(id string) []string {
			return []string{`{"type":"batch","run_id":"` + id + `","batch":{"index":2,"count":2,"hosts":1,"confirm":true}}`}
		}, "batch event out of range", 0, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			addr := startRogue(t, p, &rogueMaster{codec: mustCodec(t, tc.scheme, tc.rogueKey), send: tc.send, dup: tc.dup})
			c := newTestClient(t, clientConfig(p, tc.scheme, addr))
			n := 0
			err := c.Run(testCtx(t), newTask("run-rogue", 1003, hosts("127.0.0.1"), nil), onResults(func(task.HostResult) { n++ }))
			assertRelayError(t, err, ErrBadResult, codes.OK, tc.want)
			if n != tc.wantResult {
				t.Fatalf("onResult called %d times, want %d", n, tc.wantResult)
			}
		})
	}
}
