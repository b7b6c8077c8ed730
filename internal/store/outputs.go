package store

import (
	"context"
	"fmt"

	"github.com/omserver/omserver-go/internal/task"
)

// HostOutput is one host's stdout in a run, for comparisons.
type HostOutput struct {
	ID     int64       `db:"id"`
	Host   task.Host   `db:"-"`
	IP     string      `db:"host_ip"`
	Name   string      `db:"host_name"`
	Status task.Status `db:"status"`
	Stdout string      `db:"stdout"`
}

const maxOutputPage = 500

// RunOutputs returns up to limit (at most 500) of a run's host outputs
// with a row id above after, in storage order: callers page through a
// run of any size without holding every output at once.
func (s *Store) RunOutputs(ctx context.Context, runID string, after int64, limit int) ([]HostOutput, error) {
	if limit <= 0 || limit > maxOutputPage {
		limit = maxOutputPage
	}
	var out []HostOutput
	if err := s.db.SelectContext(ctx, &out, `SELECT id, host_ip, host_name, status, stdout FROM run_hosts WHERE run_id = ? AND id > ?
		ORDER BY id LIMIT ?`, runID, after, limit); err != nil {
		return nil, fmt.Errorf("store: run %s: outputs: %w", runID, err)
	}
	for i := range out {
		out[i].Host = task.Host{IP: out[i].IP, Name: out[i].Name}
	}
	return out, nil
}

// RunHostOutput returns one host's output in a run (ErrNotFound when the
// run has no result for that address).
func (s *Store) RunHostOutput(ctx context.Context, runID, ip string) (HostOutput, error) {
	var o HostOutput
	if err := s.db.GetContext(ctx, &o, `SELECT id, host_ip, host_name, status, stdout FROM run_hosts WHERE run_id = ? AND host_ip = ?
		ORDER BY id LIMIT 1`, runID, ip); err != nil {
		return HostOutput{}, classify(err, fmt.Sprintf("run %s: result of host %s", runID, ip))
	}
	o.Host = task.Host{IP: o.IP, Name: o.Name}
	return o, nil
}
