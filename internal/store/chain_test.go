package store

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/omserver/omserver-go/internal/ledger"
	"github.com/omserver/omserver-go/internal/task"
	"github.com/omserver/omserver-go/internal/testutil/mysqltest"
)

// chainRun records a finished run with n host results (signed with key
// when given) and seals it.
func chainRun(t *testing.T, s *Store, id string, n int, key ed25519.PrivateKey) {
	t.Helper()
	ctx := testCtx(t)
	hosts := make([]task.Host, n)
	for i := range hosts {
		hosts[i] = task.Host{IP: fmt.Sprintf("127.0.%d.%d", i/250, i%250+1), Name: fmt.Sprintf("h%d", i)}
	}
	if err := s.CreateRun(ctx, Run{ID: id, ModuleID: 1003, ModuleName: "view OS", Username: "ops", Params: map[string]string{"sys_param_1": "x"}, Hosts: hosts}); err != nil {
		t.Fatal(err)
	}
	for i, h := range hosts {
		r := task.HostResult{RunID: id, Host: h, Status: task.StatusOK, Stdout: fmt.Sprintf("out %d 中文 \xff", i), Stderr: "",
			Started: time.Now().UTC(), Duration: 1234567 * time.Microsecond}
		if i%3 == 1 {
			r.Status, r.ExitCode, r.Error = task.StatusFailed, 2, "exit 2"
		}
		if key != nil {
			// As it arrives through the relay's JSON.
			r.Stdout = strings.ToValidUTF8(r.Stdout, "\uFFFD")
			r.Signature = ledger.SignResult(key, r)
		}
		if err := s.AddRunResult(ctx, id, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.FinishRun(ctx, id, task.RunDone, ""); err != nil {
		t.Fatal(err)
	}
	if k, err := s.SealRunResults(ctx, id); err != nil || k != n {
		t.Fatalf("sealed %d, %v; want %d", k, err, n)
	}
	if k, err := s.SealRunResults(ctx, id); err != nil || k != 0 {
		t.Fatalf("second seal sealed %d, %v", k, err)
	}
}

func mustVerify(t *testing.T, s *Store, chain string, opt VerifyOptions) ChainReport {
	t.Helper()
	rep, err := s.VerifyChain(testCtx(t), chain, opt)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func wantBreak(t *testing.T, rep ChainReport, id int64, reason string) {
	t.Helper()
	if rep.Break == nil {
		t.Fatalf("chain %s verified after tampering: %+v", rep.Chain, rep)
	}
	if rep.Break.RowID != id || !strings.Contains(rep.Break.Reason, reason) {
		t.Fatalf("break = %s; want row id %d and %q", rep.Break, id, reason)
	}
}

func rowID(t *testing.T, s *Store, q string, args ...any) int64 {
	t.Helper()
	var id int64
	if err := s.db.GetContext(testCtx(t), &id, s.db.Rebind(q), args...); err != nil {
		t.Fatal(err)
	}
	return id
}

// Editing, deleting or inserting one row by hand (as someone with database
// access would) makes verification fail and name the row.
func TestChainDetectsTampering(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store) {
		ctx := testCtx(t)
		for i := 0; i < 7; i++ {
			if err := s.AddAudit(ctx, AuditEntry{Username: "admin", Action: "module.update", Detail: fmt.Sprintf("change %d 中文", i), RemoteAddr: "127.0.0.1"}); err != nil {
				t.Fatal(err)
			}
		}
		chainRun(t, s, "run-a", 4, nil)
		chainRun(t, s, "run-b", 3, nil)
		for _, c := range []string{ledger.ChainAudit, ledger.ChainResults} {
			if rep := mustVerify(t, s, c, VerifyOptions{}); !rep.OK() || rep.HeadSeq != rep.Rows {
				t.Fatalf("fresh chain %s: %+v %v", c, rep, rep.Break)
			}
		}
		if rep := mustVerify(t, s, ledger.ChainResults, VerifyOptions{}); rep.Rows != 7 || rep.Unsigned != 7 {
			t.Fatalf("results report %+v", rep)
		}

		exec := func(q string, args ...any) {
			t.Helper()
			if _, err := s.db.ExecContext(ctx, s.db.Rebind(q), args...); err != nil {
				t.Fatal(err)
			}
		}

		// 1. An edited audit detail.
		third := rowID(t, s, `SELECT id FROM audit_log WHERE chain_seq = 3`)
		exec(`UPDATE audit_log SET detail = 'nothing happened' WHERE id = ?`, third)
		wantBreak(t, mustVerify(t, s, ledger.ChainAudit, VerifyOptions{}), third, "content does not match")
		exec(`UPDATE audit_log SET detail = 'change 2 中文' WHERE id = ?`, third)
		if rep := mustVerify(t, s, ledger.ChainAudit, VerifyOptions{}); !rep.OK() {
			t.Fatalf("restored row still breaks: %v", rep.Break)
		}

		// 2. An edited host output.
		victim := rowID(t, s, `SELECT id FROM run_hosts WHERE run_id = 'run-b' AND host_name = 'h1'`)
		exec(`UPDATE run_hosts SET stdout = 'all fine' WHERE id = ?`, victim)
		wantBreak(t, mustVerify(t, s, ledger.ChainResults, VerifyOptions{}), victim, "content does not match")
		exec(`UPDATE run_hosts SET stdout = 'out 1 中文 `+"\uFFFD"+`' WHERE id = ?`, victim)
		if rep := mustVerify(t, s, ledger.ChainResults, VerifyOptions{}); !rep.OK() {
			t.Fatalf("restored result still breaks: %v", rep.Break)
		}

		// 3. The run's record changed (who ran it): every row of the run
		// breaks; the first is named.
		first := rowID(t, s, `SELECT MIN(id) FROM run_hosts WHERE run_id = 'run-a'`)
		exec(`UPDATE runs SET username = 'intern' WHERE id = 'run-a'`)
		wantBreak(t, mustVerify(t, s, ledger.ChainResults, VerifyOptions{}), first, "content does not match")
		exec(`UPDATE runs SET username = 'ops' WHERE id = 'run-a'`)

		// 4. A deleted row in the middle: the row after it is named.
		fifth := rowID(t, s, `SELECT id FROM audit_log WHERE chain_seq = 5`)
		sixth := rowID(t, s, `SELECT id FROM audit_log WHERE chain_seq = 6`)
		exec(`DELETE FROM audit_log WHERE id = ?`, fifth)
		wantBreak(t, mustVerify(t, s, ledger.ChainAudit, VerifyOptions{}), sixth, "deleted")

		// 5. The last result deleted: the head names the gap.
		last := rowID(t, s, `SELECT id FROM run_hosts WHERE chain_seq = 7`)
		before := rowID(t, s, `SELECT id FROM run_hosts WHERE chain_seq = 6`)
		exec(`DELETE FROM run_hosts WHERE id = ?`, last)
		wantBreak(t, mustVerify(t, s, ledger.ChainResults, VerifyOptions{}), before, "last row(s) were deleted")

		// 6. A row put in around the chain.
		exec(`INSERT INTO audit_log (at, username, action, detail, remote_addr) VALUES (?, 'x', 'login', 'forged', '')`, dbTime(time.Now()))
		exec(`INSERT INTO audit_log (at, username, action, detail, remote_addr, chain_seq, prev_hash, row_hash) SELECT at, username, action, 'change 4 中文', remote_addr, 5, prev_hash, row_hash FROM audit_log WHERE id = ?`, third)
		rep := mustVerify(t, s, ledger.ChainAudit, VerifyOptions{})
		if rep.Break == nil {
			t.Fatal("forged rows verified")
		}
	})
}

// The master's signature catches a forger who edits a result and rewrites
// every hash after it (and the head): the chain is consistent again, the
// signature is not.
func TestSignatureCatchesRewrittenChain(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store) {
		ctx := testCtx(t)
		pub, key, _ := ed25519.GenerateKey(nil)
		chainRun(t, s, "run-s", 5, key)
		rep := mustVerify(t, s, ledger.ChainResults, VerifyOptions{PublicKey: pub})
		if !rep.OK() || rep.Signed != 5 || rep.Unsigned != 0 {
			t.Fatalf("signed run: %+v %v", rep, rep.Break)
		}
		other, _, _ := ed25519.GenerateKey(nil)
		if rep := mustVerify(t, s, ledger.ChainResults, VerifyOptions{PublicKey: other}); rep.OK() {
			t.Fatal("results verified against another master's key")
		}

		victim := rowID(t, s, `SELECT id FROM run_hosts WHERE host_name = 'h2'`)
		if _, err := s.db.ExecContext(ctx, s.db.Rebind(`UPDATE run_hosts SET stdout = 'forged' WHERE id = ?`), victim); err != nil {
			t.Fatal(err)
		}
		// Rewrite the chain from the forged row on, as a forger with the
		// database and this source would.
		var rows []resultRow
		if err := s.db.SelectContext(ctx, &rows, `SELECT `+resultRowCols+` FROM run_hosts h JOIN runs r ON r.id = h.run_id ORDER BY h.chain_seq`); err != nil {
			t.Fatal(err)
		}
		prev := ledger.GenesisHash
		for _, row := range rows {
			run, res := row.ledger()
			h := ledger.ResultHash(prev, row.ChainSeq.Int64, run, res)
			if _, err := s.db.ExecContext(ctx, s.db.Rebind(`UPDATE run_hosts SET prev_hash = ?, row_hash = ? WHERE id = ?`), prev, h, row.ID); err != nil {
				t.Fatal(err)
			}
			prev = h
		}
		if _, err := s.db.ExecContext(ctx, s.db.Rebind(`UPDATE chain_heads SET hash = ? WHERE name = 'results'`), prev); err != nil {
			t.Fatal(err)
		}
		if rep := mustVerify(t, s, ledger.ChainResults, VerifyOptions{}); !rep.OK() {
			t.Fatalf("the rewritten chain should be consistent without signatures: %v", rep.Break)
		}
		wantBreak(t, mustVerify(t, s, ledger.ChainResults, VerifyOptions{PublicKey: pub}), victim, "signature does not verify")
	})
}

// Appenders on two handles (two web tiers) at once never fork the chain.
func TestChainConcurrentAppenders(t *testing.T) {
	for _, b := range []struct {
		name string
		dsn  func(t *testing.T) (string, string)
	}{
		{"sqlite", func(t *testing.T) (string, string) { return DialectSQLite, t.TempDir() + "/c.db" }},
		{"mariadb", func(t *testing.T) (string, string) { return DialectMySQL, mysqltest.New(t) }},
	} {
		t.Run(b.name, func(t *testing.T) {
			driver, dsn := b.dsn(t)
			open := func() *Store {
				s, err := Open(context.Background(), driver, dsn)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { s.Close() })
				return s
			}
			a := open()
			if err := a.Migrate(testCtx(t)); err != nil {
				t.Fatal(err)
			}
			tiers := []*Store{a, open()}
			const each = 40
			var wg sync.WaitGroup
			for ti, s := range tiers {
				for w := 0; w < 3; w++ {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for i := 0; i < each; i++ {
							if err := s.AddAudit(context.Background(), AuditEntry{Username: fmt.Sprintf("tier%d", ti), Action: "login", Detail: fmt.Sprintf("w%d i%d", w, i)}); err != nil {
								t.Error(err)
								return
							}
						}
					}()
				}
			}
			wg.Wait()
			rep := mustVerify(t, a, ledger.ChainAudit, VerifyOptions{})
			if !rep.OK() || rep.Rows != 2*3*each || rep.HeadSeq != 2*3*each {
				t.Fatalf("after concurrent appends: %+v %v", rep, rep.Break)
			}
		})
	}
}

// Rows from before the chain began are counted, not checked; a sweep
// finds runs left unsealed.
func TestChainLegacyAndSweep(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store) {
		ctx := testCtx(t)
		if _, err := s.db.ExecContext(ctx, `INSERT INTO audit_log (at, username, action, detail, remote_addr) VALUES (?, 'old', 'login', 'before', '')`, dbTime(time.Now())); err != nil {
			t.Fatal(err)
		}
		if _, err := s.db.ExecContext(ctx, `UPDATE chain_heads SET start_id = (SELECT MAX(id) FROM audit_log) WHERE name = 'audit'`); err != nil && s.dialect == DialectSQLite {
			t.Fatal(err)
		} else if err != nil {
			// MySQL cannot read the updated table in a subquery.
			var max int64
			_ = s.db.GetContext(ctx, &max, `SELECT MAX(id) FROM audit_log`)
			if _, err := s.db.ExecContext(ctx, `UPDATE chain_heads SET start_id = ? WHERE name = 'audit'`, max); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.AddAudit(ctx, AuditEntry{Username: "new", Action: "login"}); err != nil {
			t.Fatal(err)
		}
		rep := mustVerify(t, s, ledger.ChainAudit, VerifyOptions{})
		if !rep.OK() || rep.Legacy != 1 || rep.Rows != 1 {
			t.Fatalf("legacy: %+v %v", rep, rep.Break)
		}
		// A finished run not sealed (its tier stopped): counted, then found.
		if err := s.CreateRun(ctx, Run{ID: "lost", ModuleID: 1, ModuleName: "m", Username: "u", Hosts: []task.Host{{IP: "127.0.0.1"}}}); err != nil {
			t.Fatal(err)
		}
		if err := s.AddRunResult(ctx, "lost", task.HostResult{Host: task.Host{IP: "127.0.0.1"}, Status: task.StatusOK}); err != nil {
			t.Fatal(err)
		}
		if ids, _ := s.UnsealedRuns(ctx, 10); len(ids) != 0 {
			t.Fatalf("a running run listed as unsealed: %v", ids)
		}
		if _, err := s.SealRunResults(ctx, "lost"); err == nil {
			t.Fatal("a running run was sealed")
		}
		if err := s.FinishRun(ctx, "lost", task.RunInterrupted, "tier stopped"); err != nil {
			t.Fatal(err)
		}
		if rep := mustVerify(t, s, ledger.ChainResults, VerifyOptions{}); !rep.OK() || rep.Unsealed != 1 {
			t.Fatalf("unsealed: %+v", rep)
		}
		if ids, err := s.UnsealedRuns(ctx, 10); err != nil || len(ids) != 1 || ids[0] != "lost" {
			t.Fatalf("unsealed runs = %v, %v", ids, err)
		}
	})
}
