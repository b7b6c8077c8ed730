// Package ledger defines the canonical encodings of the tamper-evident
// record: the hash chains over the audit log and over finished runs'
// per-host results, and the master's ed25519 signature of each host result.
// It is pure (no database, no I/O), so the store, the master, the web tier
// and any outside checker compute the same bytes.
//
// # Chain hash (version 1)
//
// Each chained row holds its chain sequence number (1, 2, 3, ... without
// gaps), the hash of the row before it (GenesisHash for the first) and its
// own hash:
//
//	row_hash = hex(SHA-256( "omserver-chain-v1" F(chain) F(seq) F(prev_hash) F(field_1) ... F(field_n) ))
//
// where F(x) is the decimal byte length of x, a colon, then the bytes of x
// (no separator): "5:hello". Numbers are decimal, booleans "1"/"0", times
// UTC as 2006-01-02T15:04:05.000000Z (microseconds, as stored), a missing
// time the empty string, text as stored (UTF-8). The fields, in order:
//
//	audit:   at, username, action, detail, remote_addr
//	results: run_id, module_id, run user, run params (the stored JSON), run created_at,
//	         host_ip, host_name, status, exit_code, stdout, stderr,
//	         stdout_truncated, stderr_truncated, error, started_at, duration_ms, signature
//
// # Result signature (version 1)
//
// The master signs each host result with ed25519 over
//
//	"omserver-result-v1" F(run_id) F(host ip) F(host name) F(status) F(exit_code)
//	F(stdout) F(stderr) F(stdout_truncated) F(stderr_truncated) F(error) F(started) F(duration_ms)
//
// with text as it crosses the relay (JSON: each invalid UTF-8 byte becomes
// U+FFFD), started at microsecond precision and the duration in whole
// milliseconds, which is what the web tier stores, so a stored row can be
// checked again at any time. The signature travels base64-encoded in
// task.HostResult.Signature.
package ledger

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/omserver/omserver-go/internal/task"
)

// GenesisHash is the previous hash of a chain's first row.
const GenesisHash = "0000000000000000000000000000000000000000000000000000000000000000"

// Chain names.
const (
	ChainAudit   = "audit"
	ChainResults = "results"
)

const (
	chainDomain  = "omserver-chain-v1"
	resultDomain = "omserver-result-v1"
	timeLayout   = "2006-01-02T15:04:05.000000Z"
)

// writer feeds length-prefixed fields to a hash or a buffer.
type writer struct {
	h hash.Hash
	b *strings.Builder
}

func (w writer) field(s string) {
	p := strconv.Itoa(len(s)) + ":" + s
	if w.h != nil {
		w.h.Write([]byte(p))
	}
	if w.b != nil {
		w.b.WriteString(p)
	}
}

func (w writer) int(n int64) { w.field(strconv.FormatInt(n, 10)) }

func (w writer) bool(b bool) {
	if b {
		w.field("1")
	} else {
		w.field("0")
	}
}

// Time renders a stored time for hashing and signing.
func Time(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Truncate(time.Microsecond).Format(timeLayout)
}

// AuditRow is what an audit entry's hash covers.
type AuditRow struct {
	At         time.Time
	Username   string
	Action     string
	Detail     string
	RemoteAddr string
}

// AuditHash is the hash of the audit row at seq after prev.
func AuditHash(prev string, seq int64, e AuditRow) string {
	h := sha256.New()
	w := writer{h: h}
	h.Write([]byte(chainDomain))
	w.field(ChainAudit)
	w.int(seq)
	w.field(prev)
	w.field(Time(e.At))
	w.field(e.Username)
	w.field(e.Action)
	w.field(e.Detail)
	w.field(e.RemoteAddr)
	return hex.EncodeToString(h.Sum(nil))
}

// RunRow is the part of a run every one of its results' hashes covers.
type RunRow struct {
	RunID     string
	ModuleID  int64
	Username  string
	Params    string // the stored JSON
	CreatedAt time.Time
}

// ResultRow is a stored host result as its hash covers it.
type ResultRow struct {
	HostIP          string
	HostName        string
	Status          string
	ExitCode        int
	Stdout          string
	Stderr          string
	StdoutTruncated bool
	StderrTruncated bool
	Error           string
	Started         time.Time // zero when NULL
	DurationMS      int64
	Signature       string
}

// ResultHash is the hash of the result row at seq after prev.
func ResultHash(prev string, seq int64, run RunRow, r ResultRow) string {
	h := sha256.New()
	w := writer{h: h}
	h.Write([]byte(chainDomain))
	w.field(ChainResults)
	w.int(seq)
	w.field(prev)
	w.field(run.RunID)
	w.int(run.ModuleID)
	w.field(run.Username)
	w.field(run.Params)
	w.field(Time(run.CreatedAt))
	w.field(r.HostIP)
	w.field(r.HostName)
	w.field(r.Status)
	w.int(int64(r.ExitCode))
	w.field(r.Stdout)
	w.field(r.Stderr)
	w.bool(r.StdoutTruncated)
	w.bool(r.StderrTruncated)
	w.field(r.Error)
	w.field(Time(r.Started))
	w.int(r.DurationMS)
	w.field(r.Signature)
	return hex.EncodeToString(h.Sum(nil))
}

// wireText is s as it arrives through JSON: each byte that is not part of
// valid UTF-8 replaced by U+FFFD (encoding/json's rule).
func wireText(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	for len(s) > 0 {
		r, n := utf8.DecodeRuneInString(s)
		if r == utf8.RuneError && n == 1 {
			b.WriteString("\uFFFD")
		} else {
			b.WriteString(s[:n])
		}
		s = s[n:]
	}
	return b.String()
}

// ResultMessage is the byte string the master signs for r.
func ResultMessage(r task.HostResult) []byte {
	var b strings.Builder
	w := writer{b: &b}
	b.WriteString(resultDomain)
	w.field(r.RunID)
	w.field(r.Host.IP)
	w.field(r.Host.Name)
	w.field(string(r.Status))
	w.int(int64(r.ExitCode))
	w.field(wireText(r.Stdout))
	w.field(wireText(r.Stderr))
	w.bool(r.StdoutTruncated)
	w.bool(r.StderrTruncated)
	w.field(wireText(r.Error))
	w.field(Time(r.Started))
	w.int(r.Duration.Milliseconds())
	return []byte(b.String())
}

// SignResult returns r's signature, base64.
func SignResult(key ed25519.PrivateKey, r task.HostResult) string {
	return base64.StdEncoding.EncodeToString(ed25519.Sign(key, ResultMessage(r)))
}

// Errors of VerifyResult.
var (
	ErrUnsigned     = errors.New("result is not signed")
	ErrBadSignature = errors.New("result signature does not verify: the result is not what the master sent")
)

// VerifyResult checks r.Signature against pub.
func VerifyResult(pub ed25519.PublicKey, r task.HostResult) error {
	if r.Signature == "" {
		return ErrUnsigned
	}
	sig, err := base64.StdEncoding.DecodeString(r.Signature)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return ErrBadSignature
	}
	if !ed25519.Verify(pub, ResultMessage(r), sig) {
		return ErrBadSignature
	}
	return nil
}

// GenerateKey returns a new signing key: the private key file's content
// (base64 of the 32-byte seed) and the public key (base64).
func GenerateKey() (private, public string, err error) {
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		return "", "", fmt.Errorf("ledger: generate key: %w", err)
	}
	return base64.StdEncoding.EncodeToString(priv.Seed()), base64.StdEncoding.EncodeToString(pub), nil
}

// LoadPrivateKey reads a private key file written by `omserver audit
// keygen` (base64 of the ed25519 seed). The file must not be readable by
// group or others.
func LoadPrivateKey(path string) (ed25519.PrivateKey, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("ledger: signing key: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("ledger: signing key %s is readable by others (mode %04o): chmod 600 it", path, st.Mode().Perm())
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("ledger: signing key: %w", err)
	}
	seed, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(raw)))
	if err != nil || len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("ledger: signing key %s is not the base64 of a %d-byte ed25519 seed", path, ed25519.SeedSize)
	}
	return ed25519.NewKeyFromSeed(seed), nil
}

// ParsePublicKey reads a base64 ed25519 public key.
func ParsePublicKey(s string) (ed25519.PublicKey, error) {
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil || len(raw) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("ledger: public key is not the base64 of a %d-byte ed25519 key", ed25519.PublicKeySize)
	}
	return ed25519.PublicKey(raw), nil
}
