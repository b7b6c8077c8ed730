package web

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/omserver/omserver-go/internal/ledger"
	"github.com/omserver/omserver-go/internal/task"
	"github.com/omserver/omserver-go/internal/trail"
)

// With the masters' public key configured, a result whose signature does
// not verify is neither stored nor shown, and the run says so; signed
// results are stored and sealed into the results chain when the run ends.
func TestSignedResultsAndChainStatus(t *testing.T) {
	pub, key, _ := ed25519.GenerateKey(nil)
	e := newEnv(t, func(c *Config) { c.Trail = trail.Config{PublicKey: pub} })
	id := e.startRun("operator", `{"module_id":1003,"hosts":["192.168.1.10","192.168.1.20","192.168.1.21"]}`)
	call := e.master.nextCall(t)
	signed := func(ip, name, out string) task.HostResult {
		r := result(ip, name, task.StatusOK, out)
		r.RunID = id
		r.Started = r.Started.Truncate(time.Microsecond)
		r.Signature = ledger.SignResult(key, r)
		return r
	}
	call.send(t, signed("192.168.1.10", "sn2012-07-010", "genuine"))
	forged := signed("192.168.1.20", "sn2013-08-020", "genuine")
	forged.Stdout = "forged by the web tier"
	call.send(t, forged)
	_, otherKey, _ := ed25519.GenerateKey(nil)
	wrongKey := result("192.168.1.21", "sn2013-08-021", task.StatusOK, "from another master")
	wrongKey.RunID = id
	wrongKey.Signature = ledger.SignResult(otherKey, wrongKey)
	call.send(t, wrongKey)
	call.Finish <- nil
	run := e.waitStatus(id, task.RunPartial)
	if !strings.Contains(run.Error, "2 host result(s) refused") {
		t.Fatalf("run error %q", run.Error)
	}
	_, results, err := e.st.GetRun(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 1 || results[0].Stdout != "genuine" {
		t.Fatalf("stored results %+v", results)
	}

	// The run's result was sealed when it ended; both chains verify and
	// the audit page says so.
	var seq int64
	if err := e.st.DB().GetContext(context.Background(), &seq, `SELECT chain_seq FROM run_hosts WHERE run_id = ?`, id); err != nil || seq != 1 {
		t.Fatalf("result chain seq %d, %v", seq, err)
	}
	e.do(req{method: "GET", path: "/audit", as: "admin"}).want(t, http.StatusOK, "has not been verified")
	e.do(req{method: "POST", path: "/audit/verify", as: "admin", header: map[string]string{"Origin": e.ts.URL}}).want(t, http.StatusSeeOther)
	e.do(req{method: "GET", path: "/audit", as: "admin"}).want(t, http.StatusOK, "Record verified", "master signatures checked")
	e.do(req{method: "GET", path: "/api/v1/audit/chain", as: "admin"}).want(t, http.StatusOK, `"ok":true`, `"signed":1`)
	e.do(req{method: "POST", path: "/api/v1/audit/chain/verify", as: "operator"}).want(t, http.StatusForbidden)

	// An audit entry edited by hand is named on the page.
	var victim int64
	if err := e.st.DB().GetContext(context.Background(), &victim, `SELECT id FROM audit_log WHERE action = 'run.start'`); err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.DB().ExecContext(context.Background(), `UPDATE audit_log SET detail = 'nothing ran' WHERE id = ?`, victim); err != nil {
		t.Fatal(err)
	}
	e.do(req{method: "POST", path: "/api/v1/audit/chain/verify", as: "admin"}).want(t, http.StatusOK, `"ok":false`, fmt.Sprintf(`"row_id":%d`, victim))
	e.do(req{method: "GET", path: "/audit", as: "admin"}).want(t, http.StatusOK, "does not verify", fmt.Sprintf("audit_log row id %d", victim))
}
