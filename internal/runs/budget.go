package runs

import (
	"fmt"

	"github.com/omserver/omserver-go/internal/task"
)

// Budgets are blast-radius limits: the most hosts one run may have, per
// role of the user who starts it and per module. The master enforces its
// modules' own max_hosts again.
type Budgets struct {
	Roles   map[string]int // role (admin, operator) -> max hosts per run
	Modules map[int64]int  // module id -> max hosts per run
}

// check refuses a run over a budget (task.ErrOverBudget).
func (b Budgets) check(role string, moduleID int64, hosts int) error {
	if n, ok := b.Modules[moduleID]; ok && n > 0 && hosts > n {
		return fmt.Errorf("%w: module %d runs on at most %d hosts at once; this run has %d (split it into smaller runs)", task.ErrOverBudget, moduleID, n, hosts)
	}
	if n, ok := b.Roles[role]; ok && n > 0 && hosts > n {
		return fmt.Errorf("%w: a user with the %s role may run on at most %d hosts at once; this run has %d (split it, or ask an admin)", task.ErrOverBudget, role, n, hosts)
	}
	return nil
}
