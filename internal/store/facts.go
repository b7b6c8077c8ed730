package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
)

// Host facts: each server's latest facts (internal/facts parses them) and
// its disks as rows, for filters.

// ServerFacts is a server's stored facts.
type ServerFacts struct {
	IP          string    `db:"server_ip" json:"ip"`
	RunID       string    `db:"run_id" json:"run_id"`
	CollectedAt time.Time `db:"collected_at" json:"collected_at"`
	CPUCount    int       `db:"cpu_count" json:"cpu_count"`
	Load1       float64   `db:"load1" json:"load1"`
	MemUsedPct  float64   `db:"mem_used_pct" json:"mem_used_pct"`
	Facts       string    `db:"facts" json:"-"` // JSON
}

// FactDisk is one disk row of a server's facts.
type FactDisk struct {
	Mount   string  `db:"mount" json:"mount"`
	SizeKB  int64   `db:"size_kb" json:"size_kb"`
	UsedKB  int64   `db:"used_kb" json:"used_kb"`
	AvailKB int64   `db:"avail_kb" json:"avail_kb"`
	UsedPct float64 `db:"used_pct" json:"used_pct"`
}

// SaveFacts replaces a server's facts and disks, unless newer facts are
// already stored (results of an older run arriving late change nothing).
func (s *Store) SaveFacts(ctx context.Context, f ServerFacts, disks []FactDisk) error {
	if f.IP == "" || len(f.IP) > MaxIPLen || f.RunID == "" || len(f.Facts) > maxOutputStored {
		return invalid("facts: server address, run id or size out of range")
	}
	for _, d := range disks {
		if d.Mount == "" || len(d.Mount) > 255 {
			return invalid("facts of %s: mount point %q out of range", f.IP, clipText(d.Mount, 60))
		}
	}
	at := dbTime(f.CollectedAt)
	return s.inTx(ctx, func(tx *sqlx.Tx) error {
		var prev []time.Time
		if err := tx.SelectContext(ctx, &prev, `SELECT collected_at FROM server_facts WHERE server_ip = ?`, f.IP); err != nil {
			return fmt.Errorf("store: facts of %s: %w", f.IP, err)
		}
		if len(prev) == 1 && prev[0].After(at) {
			return nil
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM server_facts WHERE server_ip = ?`, f.IP); err != nil {
			return fmt.Errorf("store: facts of %s: %w", f.IP, err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM server_disks WHERE server_ip = ?`, f.IP); err != nil {
			return fmt.Errorf("store: disks of %s: %w", f.IP, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO server_facts (server_ip, run_id, collected_at, cpu_count, load1, mem_used_pct, facts)
			VALUES (?, ?, ?, ?, ?, ?, ?)`, f.IP, f.RunID, at, f.CPUCount, f.Load1, f.MemUsedPct, f.Facts); err != nil {
			return classify(err, "facts of "+f.IP)
		}
		for _, d := range disks {
			if _, err := tx.ExecContext(ctx, `INSERT INTO server_disks (server_ip, mount, size_kb, used_kb, avail_kb, used_pct) VALUES (?, ?, ?, ?, ?, ?)`,
				f.IP, d.Mount, d.SizeKB, d.UsedKB, d.AvailKB, d.UsedPct); err != nil {
				return classify(err, fmt.Sprintf("facts of %s: disk %s", f.IP, d.Mount))
			}
		}
		return nil
	})
}

// FactsFilter selects servers by their facts; zero fields do not filter.
type FactsFilter struct {
	Mount     string  // with DiskAbove: the disk mounted here
	DiskAbove float64 // used percent strictly above
	MemAbove  float64 // memory used percent strictly above
	LoadAbove float64 // 1-minute load strictly above
	After     string  // page: servers with an address after this one
	Limit     int     // default 100, at most 500
}

// ListFacts returns servers' facts by address, one page (paged by key).
func (s *Store) ListFacts(ctx context.Context, f FactsFilter) ([]ServerFacts, error) {
	if f.Limit <= 0 {
		f.Limit = 100
	}
	if f.Limit > 500 || f.DiskAbove < 0 || f.MemAbove < 0 || f.LoadAbove < 0 {
		return nil, invalid("facts: limit must be 1..500 and thresholds not negative")
	}
	if f.DiskAbove > 0 && f.Mount == "" {
		return nil, invalid("facts: a disk threshold needs the mount point (for example / or /data)")
	}
	q := `SELECT f.server_ip, f.run_id, f.collected_at, f.cpu_count, f.load1, f.mem_used_pct, f.facts FROM server_facts f`
	var where []string
	var args []any
	if f.Mount != "" {
		q += ` JOIN server_disks d ON d.server_ip = f.server_ip AND d.mount = ?`
		args = append(args, f.Mount)
		if f.DiskAbove > 0 {
			where, args = append(where, "d.used_pct > ?"), append(args, f.DiskAbove)
		}
	}
	if f.MemAbove > 0 {
		where, args = append(where, "f.mem_used_pct > ?"), append(args, f.MemAbove)
	}
	if f.LoadAbove > 0 {
		where, args = append(where, "f.load1 > ?"), append(args, f.LoadAbove)
	}
	if f.After != "" {
		where, args = append(where, "f.server_ip > ?"), append(args, f.After)
	}
	for i, w := range where {
		if i == 0 {
			q += " WHERE " + w
		} else {
			q += " AND " + w
		}
	}
	q += ` ORDER BY f.server_ip LIMIT ?`
	out := []ServerFacts{}
	if err := s.db.SelectContext(ctx, &out, q, append(args, f.Limit)...); err != nil {
		return nil, fmt.Errorf("store: list facts: %w", err)
	}
	for i := range out {
		out[i].CollectedAt = out[i].CollectedAt.UTC()
	}
	return out, nil
}

// GetFacts returns one server's facts and disks.
func (s *Store) GetFacts(ctx context.Context, ip string) (ServerFacts, []FactDisk, error) {
	var f ServerFacts
	if err := s.db.GetContext(ctx, &f, `SELECT server_ip, run_id, collected_at, cpu_count, load1, mem_used_pct, facts FROM server_facts WHERE server_ip = ?`, ip); err != nil {
		return f, nil, classify(err, "facts of "+ip)
	}
	f.CollectedAt = f.CollectedAt.UTC()
	disks := []FactDisk{}
	if err := s.db.SelectContext(ctx, &disks, `SELECT mount, size_kb, used_kb, avail_kb, used_pct FROM server_disks WHERE server_ip = ? ORDER BY mount LIMIT 500`, ip); err != nil {
		return f, nil, fmt.Errorf("store: disks of %s: %w", ip, err)
	}
	return f, disks, nil
}
