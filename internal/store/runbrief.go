package store

import (
	"context"
	"fmt"

	"github.com/omserver/omserver-go/internal/task"
)

// GetRunBrief returns a run's record and its per-status counts without
// loading any host's output (for notifications and schedules, which need
// the outcome, not the results).
func (s *Store) GetRunBrief(ctx context.Context, id string) (Run, error) {
	var rr runRow
	if err := s.db.GetContext(ctx, &rr, `SELECT `+runCols+` FROM runs WHERE id = ?`, id); err != nil {
		return Run{}, classify(err, "run "+id)
	}
	run, err := rr.run()
	if err != nil {
		return Run{}, err
	}
	var counts []struct {
		Status string `db:"status"`
		N      int    `db:"n"`
	}
	if err := s.db.SelectContext(ctx, &counts, `SELECT status, COUNT(*) AS n FROM run_hosts WHERE run_id = ? GROUP BY status`, id); err != nil {
		return Run{}, fmt.Errorf("store: run %s: summary: %w", id, err)
	}
	for _, c := range counts {
		run.Summary[task.Status(c.Status)] = c.N
	}
	return run, nil
}
