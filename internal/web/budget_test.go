package web

import (
	"net/http"
	"testing"

	"github.com/omserver/omserver-go/internal/runs"
)

// Budgets refuse a run over a role's or a module's host limit before
// anything is recorded or dispatched.
func TestBudgets(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.Runs.Budgets = runs.Budgets{Roles: map[string]int{"operator": 2}, Modules: map[int64]int{1007: 1}}
	})
	before := e.snapshot()
	e.do(req{method: "POST", path: "/api/v1/runs", as: "operator", body: `{"module_id":1003,"hosts":["192.168.1.10","192.168.1.20","192.168.1.21"]}`}).
		want(t, http.StatusForbidden, "operator role may run on at most 2 hosts")
	e.do(req{method: "POST", path: "/api/v1/runs", as: "admin", body: `{"module_id":1007,"hosts":["192.168.1.10","192.168.1.20"],"params":{"sys_param_1":"nginx"}}`}).
		want(t, http.StatusForbidden, "module 1007 runs on at most 1 hosts")
	e.assertUnchanged(before)
	e.master.assertNoCall(t)
	// Within budget: admins are not limited by the operator role's budget.
	e.startRun("admin", `{"module_id":1003,"hosts":["192.168.1.10","192.168.1.20","192.168.1.21"]}`)
	e.master.nextCall(t)
}
