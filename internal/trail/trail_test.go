package trail

import (
	"context"
	"crypto/ed25519"
	"errors"
	"path/filepath"
	"testing"

	"github.com/rs/zerolog"

	"github.com/omserver/omserver-go/internal/ledger"
	"github.com/omserver/omserver-go/internal/runs"
	"github.com/omserver/omserver-go/internal/store"
	"github.com/omserver/omserver-go/internal/task"
)

func TestCheckResult(t *testing.T) {
	pub, key, _ := ed25519.GenerateKey(nil)
	r := task.HostResult{RunID: "r", Host: task.Host{IP: "127.0.0.1"}, Status: task.StatusOK, Stdout: "x"}
	signed := r
	signed.Signature = ledger.SignResult(key, r)
	forged := signed
	forged.Stdout = "y"
	for _, tt := range []struct {
		name string
		cfg  Config
		r    task.HostResult
		ok   bool
	}{
		{"no key: anything", Config{}, forged, true},
		{"signed", Config{PublicKey: pub}, signed, true},
		{"forged", Config{PublicKey: pub}, forged, false},
		{"unsigned allowed", Config{PublicKey: pub}, r, true},
		{"unsigned required", Config{PublicKey: pub, RequireSigned: true}, r, false},
	} {
		err := New(tt.cfg, nil, zerolog.Nop()).CheckResult(tt.r)
		if (err == nil) != tt.ok || (err != nil && !errors.Is(err, ErrRefused)) {
			t.Errorf("%s: %v", tt.name, err)
		}
	}
}

// The observer seals a run when it ends; the sweep seals a run whose tier
// stopped before; Verify keeps its outcome for the audit page.
func TestSealSweepVerify(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, store.DialectSQLite, filepath.Join(t.TempDir(), "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	tr := New(Config{}, st, zerolog.Nop())
	if _, ok := tr.Last(); ok {
		t.Fatal("an outcome before any verification")
	}
	for _, id := range []string{"a", "b"} {
		if err := st.CreateRun(ctx, store.Run{ID: id, ModuleID: 1, ModuleName: "m", Username: "u", Hosts: []task.Host{{IP: "127.0.0.1"}}}); err != nil {
			t.Fatal(err)
		}
		if err := st.AddRunResult(ctx, id, task.HostResult{Host: task.Host{IP: "127.0.0.1"}, Status: task.StatusOK}); err != nil {
			t.Fatal(err)
		}
		if err := st.FinishRun(ctx, id, task.RunDone, ""); err != nil {
			t.Fatal(err)
		}
	}
	tr.Observe(ctx, runs.Notice{Kind: runs.NoticeEnded, RunID: "a"})
	o := tr.Verify(ctx)
	if !o.OK || len(o.Chains) != 2 || o.Chains[1].Rows != 1 || o.Chains[1].Unsealed != 1 {
		t.Fatalf("after sealing a: %+v", o)
	}
	if n := tr.Sweep(ctx); n != 1 {
		t.Fatalf("sweep sealed %d", n)
	}
	o = tr.Verify(ctx)
	if last, ok := tr.Last(); !ok || last.At != o.At || o.Chains[1].Rows != 2 || o.Chains[1].Unsealed != 0 {
		t.Fatalf("after the sweep: %+v", o)
	}
}
