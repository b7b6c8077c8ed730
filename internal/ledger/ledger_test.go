package ledger

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/omserver/omserver-go/internal/task"
)

// The encoding is pinned: the hash of a known row is computed here by hand
// from the documented layout, so a change to the code that changes the
// bytes fails.
func TestAuditHashLayout(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC)
	got := AuditHash(GenesisHash, 1, AuditRow{At: at, Username: "admin", Action: "login", Detail: "中文", RemoteAddr: "127.0.0.1"})
	raw := "omserver-chain-v1" + "5:audit" + "1:1" + "64:" + GenesisHash + "27:2026-01-02T03:04:05.123456Z" +
		"5:admin" + "5:login" + "6:中文" + "9:127.0.0.1"
	sum := sha256.Sum256([]byte(raw))
	if want := hex.EncodeToString(sum[:]); got != want {
		t.Fatalf("AuditHash = %s, want %s", got, want)
	}
	// Every field matters, and fields cannot slide into each other.
	if AuditHash(GenesisHash, 1, AuditRow{At: at, Username: "adminl", Action: "ogin", Detail: "中文", RemoteAddr: "127.0.0.1"}) == got {
		t.Fatal("moving a byte between fields kept the hash")
	}
	if AuditHash(GenesisHash, 2, AuditRow{At: at, Username: "admin", Action: "login", Detail: "中文", RemoteAddr: "127.0.0.1"}) == got {
		t.Fatal("the sequence number is not covered")
	}
}

func TestResultSignature(t *testing.T) {
	pub, key, _ := ed25519.GenerateKey(nil)
	r := task.HostResult{RunID: "r1", Host: task.Host{IP: "127.0.0.1", Name: "h"}, Status: task.StatusOK, Stdout: "ok \xff\xfe end",
		Started: time.Now(), Duration: 1500*time.Millisecond + 999*time.Microsecond}
	r.Signature = SignResult(key, r)
	if err := VerifyResult(pub, r); err != nil {
		t.Fatal(err)
	}
	// What the web tier receives through the relay's JSON and stores
	// (invalid bytes replaced, microsecond time, millisecond duration)
	// still verifies.
	b, _ := json.Marshal(r)
	var got task.HostResult
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	got.Started = got.Started.UTC().Truncate(time.Microsecond)
	got.Duration = time.Duration(got.Duration.Milliseconds()) * time.Millisecond
	if err := VerifyResult(pub, got); err != nil {
		t.Fatalf("the stored form does not verify: %v", err)
	}
	for name, mutate := range map[string]func(*task.HostResult){
		"stdout":    func(r *task.HostResult) { r.Stdout = "all fine" },
		"status":    func(r *task.HostResult) { r.Status = task.StatusFailed },
		"host":      func(r *task.HostResult) { r.Host.IP = "127.0.0.2" },
		"run":       func(r *task.HostResult) { r.RunID = "r2" },
		"exit":      func(r *task.HostResult) { r.ExitCode = 1 },
		"truncated": func(r *task.HostResult) { r.StdoutTruncated = true },
		"duration":  func(r *task.HostResult) { r.Duration += time.Second },
	} {
		m := got
		mutate(&m)
		if err := VerifyResult(pub, m); err != ErrBadSignature {
			t.Errorf("%s changed: err = %v, want ErrBadSignature", name, err)
		}
	}
	got.Signature = ""
	if err := VerifyResult(pub, got); err != ErrUnsigned {
		t.Errorf("unsigned: %v", err)
	}
	got.Signature = "not base64!"
	if err := VerifyResult(pub, got); err != ErrBadSignature {
		t.Errorf("garbage signature: %v", err)
	}
}

func TestKeys(t *testing.T) {
	priv, pub, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "result.key")
	if err := os.WriteFile(path, []byte(priv+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadPrivateKey(path); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("a world-readable key was loaded: %v", err)
	}
	os.Chmod(path, 0o600)
	key, err := LoadPrivateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	pk, err := ParsePublicKey(pub)
	if err != nil || !pk.Equal(key.Public()) {
		t.Fatalf("public key %v does not match: %v", pk, err)
	}
	for _, bad := range []string{"", "abc", strings.Repeat("A", 40)} {
		if _, err := ParsePublicKey(bad); err == nil {
			t.Errorf("ParsePublicKey(%q) accepted", bad)
		}
	}
	os.WriteFile(path, []byte("short"), 0o600)
	if _, err := LoadPrivateKey(path); err == nil {
		t.Fatal("a short key was loaded")
	}
}
