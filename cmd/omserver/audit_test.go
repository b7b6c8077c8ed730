package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/omserver/omserver-go/internal/store"
	"github.com/omserver/omserver-go/internal/testutil/mysqltest"
)

// `omserver audit verify` on a database whose audit log was edited by hand
// fails and names the row, on SQLite and MariaDB.
func TestAuditVerifyNamesEditedRow(t *testing.T) {
	for _, b := range []struct{ driver, dsn string }{
		{"sqlite", filepath.Join(t.TempDir(), "a.db")},
		{"mysql", mysqltest.New(t)},
	} {
		t.Run(b.driver, func(t *testing.T) {
			ctx := context.Background()
			cfg := writeConfig(t, fmt.Sprintf("web:\n  database:\n    driver: %s\n    dsn: %q\n", b.driver, b.dsn))
			if out, err := runCmd(t, "", "migrate", "--config", cfg); err != nil {
				t.Fatalf("migrate: %v\n%s", err, out)
			}
			st, err := store.Open(ctx, b.driver, b.dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			for i := 0; i < 5; i++ {
				if err := st.AddAudit(ctx, store.AuditEntry{Username: "admin", Action: "user.update", Detail: fmt.Sprintf("entry %d", i)}); err != nil {
					t.Fatal(err)
				}
			}
			out, err := runCmd(t, "", "audit", "verify", "--config", cfg)
			if err != nil || !strings.Contains(out, "OK: the record verifies") || !strings.Contains(out, "audit chain: 5 rows") {
				t.Fatalf("clean record: %v\n%s", err, out)
			}
			var id int64
			if err := st.DB().GetContext(ctx, &id, `SELECT id FROM audit_log WHERE chain_seq = 4`); err != nil {
				t.Fatal(err)
			}
			if _, err := st.DB().ExecContext(ctx, st.DB().Rebind(`UPDATE audit_log SET username = 'someone else' WHERE id = ?`), id); err != nil {
				t.Fatal(err)
			}
			out, err = runCmd(t, "", "audit", "verify", "--config", cfg)
			if !errors.Is(err, errChainBroken) || !strings.Contains(out, fmt.Sprintf("BROKEN: audit_log row id %d (chain seq 4)", id)) {
				t.Fatalf("edited record: %v\n%s", err, out)
			}
		})
	}
}

func TestAuditKeygen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "result.key")
	out, err := runCmd(t, "", "audit", "keygen", "--out", path)
	if err != nil || !strings.Contains(out, "public key (web.result_public_key): ") {
		t.Fatalf("%v\n%s", err, out)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file %v %v", st, err)
	}
	pub := strings.TrimSpace(out[strings.LastIndex(out, ": ")+2:])
	cfg := writeConfig(t, "web:\n  database:\n    driver: sqlite\n    dsn: "+filepath.Join(t.TempDir(), "k.db")+"\n  result_public_key: "+pub+"\n")
	if out, err := runCmd(t, "", "migrate", "--config", cfg); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	if out, err := runCmd(t, "", "audit", "verify", "--config", cfg); err != nil || !strings.Contains(out, "signatures verified") {
		t.Fatalf("verify with a key: %v\n%s", err, out)
	}
	if _, err := runCmd(t, "", "audit", "keygen", "--out", path); err == nil {
		t.Fatal("keygen overwrote an existing key")
	}
	if _, err := runCmd(t, "", "audit", "verify", "--config", cfg, "--public-key", "bm90IGEga2V5"); err == nil {
		t.Fatal("a bad public key was accepted")
	}
}
