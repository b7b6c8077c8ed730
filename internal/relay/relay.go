// Package relay is the link between the web tier and a master daemon: a gRPC
// service (relaypb, contract in relaypb/relay.proto) and the client the web
// tier uses to call it.
//
// What crosses the link:
//
//   - Login: the master's configured user and password (over TLS), answered
//     with a random session token kept in the master's memory. The token
//     travels in the "authorization: Bearer <token>" metadata of later calls.
//   - Run: a task (internal/task.Task as JSON) sealed with the cipher keyed by
//     SECRET_KEY, answered by a stream of sealed JSON events (task.Event,
//     numbered by seq): {"type":"output"} chunks while hosts print, one
//     {"type":"result"} per host in completion order, then {"type":"done"}.
//   - Cancel: a sealed {"run_id", "issued_at", "nonce"} request.
//   - Continue: a sealed {"run_id", "continue", "issued_at", "nonce"} request.
//   - Health: unauthenticated, no secrets.
//   - Catalog: the master's loaded modules (task.ModuleInfo: id, name,
//     caption, parameter schema, version hash), sealed.
//
// Every sealed task and cancel request carries an issue time and a nonce
// that the master checks against a replay guard, because the legacy cipher
// scheme has no replay protection of its own. The task JSON is decoded
// strictly (unknown fields, trailing data and oversized documents are
// errors) and validated before anything runs.
package relay

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/omserver/omserver-go/internal/task"
)

// Defaults used when a config field is zero.
const (
	// DefaultMaxTaskBytes bounds the decrypted task JSON a master accepts.
	DefaultMaxTaskBytes = 1 << 20
	// DefaultTokenTTL is how long a login token stays valid.
	DefaultTokenTTL = 12 * time.Hour
	// DefaultDialTimeout bounds connecting (and logging in) to one master.
	DefaultDialTimeout = 5 * time.Second
	// DefaultCallTimeout bounds the unary calls Cancel and Health, on top of
	// connecting. Run has no timeout of its own: its context bounds it.
	DefaultCallTimeout = 10 * time.Second
	// DefaultShutdownGrace is how long Serve lets open calls finish after
	// its context ends before it cuts them off.
	DefaultShutdownGrace = 60 * time.Second
	// DefaultResumeFor is how long Client.Run tries to regain a run's
	// stream before it reports the run interrupted.
	DefaultResumeFor = time.Minute

	// maxCancelBytes bounds a decrypted cancel, resume or ack request.
	maxCancelBytes = 4096
	// maxResultMsgBytes bounds one sealed result the client accepts: two
	// capped outputs, JSON escaping (up to 6x for control bytes) and base64.
	maxResultMsgBytes = 64 << 20
	// envelopeSlack is what sealing and base64 add on top of 4/3 of the
	// plaintext; generous, it only sizes the transport limit.
	envelopeSlack = 64 << 10
)

// Metadata keys of the Run stream: the header mdAccepted says the master
// accepted the task and may have started it; the trailer mdNothingRan says
// that, despite the error, no host ran anything.
const (
	mdAccepted   = "omserver-run-accepted"
	mdNothingRan = "omserver-run-nothing-ran"
)

// cancelRequest is the sealed JSON document of a Cancel call. Issue time and
// nonce make a captured request useless later (legacy scheme).
type cancelRequest struct {
	RunID    string    `json:"run_id"`
	IssuedAt time.Time `json:"issued_at"`
	Nonce    string    `json:"nonce"`
}

func (c cancelRequest) replayKey() (string, time.Time) { return c.Nonce, c.IssuedAt }

func (c cancelRequest) validate() error {
	if err := checkRequest(c.RunID, c.IssuedAt, c.Nonce); err != nil {
		return fmt.Errorf("cancel: %w", err)
	}
	return nil
}

// continueRequest is the sealed JSON document of a Continue call. Its
// "continue" field, which a cancel request lacks, keeps either from being
// taken for the other (requests are decoded strictly).
type continueRequest struct {
	RunID    string    `json:"run_id"`
	Continue bool      `json:"continue"`
	IssuedAt time.Time `json:"issued_at"`
	Nonce    string    `json:"nonce"`
}

func (c continueRequest) replayKey() (string, time.Time) { return c.Nonce, c.IssuedAt }

func (c continueRequest) validate() error {
	if !c.Continue {
		return errors.New("continue: the request does not say continue")
	}
	if err := checkRequest(c.RunID, c.IssuedAt, c.Nonce); err != nil {
		return fmt.Errorf("continue: %w", err)
	}
	return nil
}

// checkRequest checks the fields every small sealed request (cancel,
// resume, ack) has.
func checkRequest(runID string, issued time.Time, nonce string) error {
	if runID == "" || len(runID) > task.MaxRunIDBytes {
		return fmt.Errorf("run id must be 1..%d bytes", task.MaxRunIDBytes)
	}
	if issued.IsZero() {
		return errors.New("issue time missing")
	}
	if nonce == "" || len(nonce) > task.MaxNonceBytes {
		return fmt.Errorf("nonce must be 1..%d bytes", task.MaxNonceBytes)
	}
	return nil
}

// errBadJSON marks a document that does not decode as one JSON value of the
// expected shape (syntax, types, unknown fields, trailing data); with the
// legacy scheme that is what a wrong SECRET_KEY looks like.
var errBadJSON = errors.New("bad JSON document")

// decodeStrict decodes exactly one JSON document of at most limit bytes into
// v, refusing unknown fields and trailing data.
func decodeStrict(data []byte, limit int, v any) error {
	if len(data) > limit {
		return fmt.Errorf("document is %d bytes, more than the limit of %d", len(data), limit)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: %v", errBadJSON, err)
	}
	var extra json.RawMessage
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: trailing data after the document", errBadJSON)
	}
	return nil
}

// decodeTask turns a decrypted task document into a validated task. It is
// the master's only way in from the wire, so it is strict: one document, at
// most limit bytes, no unknown fields, and task.Validate must pass.
func decodeTask(data []byte, limit int) (task.Task, error) {
	var t task.Task
	if err := decodeStrict(data, limit, &t); err != nil {
		return task.Task{}, fmt.Errorf("task: %w", err)
	}
	if err := t.Validate(); err != nil {
		return task.Task{}, err
	}
	return t, nil
}

// newNonce returns 16 random bytes, base64url encoded.
func newNonce() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("relay: reading random nonce: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// isLoopbackHostPort reports whether addr ("host:port") names a loopback
// address. An empty host (":7000") means every interface, so it is not.
func isLoopbackHostPort(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// isLoopbackAddr is isLoopbackHostPort for a listener's address.
func isLoopbackAddr(a net.Addr) bool {
	if tcp, ok := a.(*net.TCPAddr); ok {
		return tcp.IP.IsLoopback()
	}
	return isLoopbackHostPort(a.String())
}
