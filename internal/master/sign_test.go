package master

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"testing"

	"github.com/rs/zerolog"

	"github.com/omserver/omserver-go/internal/backend"
	"github.com/omserver/omserver-go/internal/backend/local"
	"github.com/omserver/omserver-go/internal/ledger"
	"github.com/omserver/omserver-go/internal/task"
)

// With a signing key every result the master emits carries a signature
// that verifies against its public key, also after the relay's JSON; a
// master without a key signs nothing.
func TestResultsAreSigned(t *testing.T) {
	pub, key, _ := ed25519.GenerateKey(nil)
	hs := []task.Host{{IP: "127.0.0.1", Name: "localhost"}, {IP: "192.0.2.9", Name: "elsewhere"}}
	m := newMaster(t, Config{DefaultBackend: "local", SignKey: key}, shippedDir, map[string]backend.Backend{"local": local.New(zerolog.Nop())})
	c := newCollector(len(hs))
	if err := m.Run(context.Background(), newTask("signed", 1003, hs, nil), c.emit); err != nil {
		t.Fatal(err)
	}
	if len(c.results) != len(hs) {
		t.Fatalf("%d results", len(c.results))
	}
	for _, r := range c.results {
		b, _ := json.Marshal(r)
		var wire task.HostResult
		if err := json.Unmarshal(b, &wire); err != nil {
			t.Fatal(err)
		}
		if err := ledger.VerifyResult(pub, wire); err != nil {
			t.Errorf("%s (%s): %v", r.Host, r.Status, err)
		}
		wire.Stdout += "forged"
		if ledger.VerifyResult(pub, wire) == nil {
			t.Errorf("%s: a changed result verified", r.Host)
		}
	}
	unsigned := newMaster(t, Config{DefaultBackend: "local"}, shippedDir, map[string]backend.Backend{"local": local.New(zerolog.Nop())})
	c = newCollector(1)
	if err := unsigned.Run(context.Background(), newTask("plain", 1003, hs[:1], nil), c.emit); err != nil {
		t.Fatal(err)
	}
	if c.results[0].Signature != "" {
		t.Fatal("a master without a key signed")
	}
}
