package facts

import (
	"context"
	"encoding/json"
	"time"

	"github.com/rs/zerolog"

	"github.com/omserver/omserver-go/internal/runs"
	"github.com/omserver/omserver-go/internal/store"
	"github.com/omserver/omserver-go/internal/task"
)

// DefaultModuleID is the shipped facts module.
const DefaultModuleID = 1008

// collectTimeout bounds storing one run's facts (5,000 hosts included).
const collectTimeout = 2 * time.Minute

// Collector stores the facts of every finished run of the facts module.
type Collector struct {
	moduleID int64
	st       *store.Store
	log      zerolog.Logger
}

// NewCollector returns a collector for runs of moduleID (0: DefaultModuleID).
func NewCollector(moduleID int64, st *store.Store, log zerolog.Logger) *Collector {
	if moduleID <= 0 {
		moduleID = DefaultModuleID
	}
	return &Collector{moduleID: moduleID, st: st, log: log.With().Str("component", "facts").Logger()}
}

var _ runs.Observer = (*Collector)(nil)

// Observe collects the facts of a finished facts run.
func (c *Collector) Observe(ctx context.Context, n runs.Notice) {
	if n.Kind != runs.NoticeEnded {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), collectTimeout)
	defer cancel()
	run, err := c.st.GetRunInfo(ctx, n.RunID)
	if err != nil {
		c.log.Warn().Err(err).Str("run_id", n.RunID).Msg("read run")
		return
	}
	if run.ModuleID != c.moduleID {
		return
	}
	stored, bad := c.Collect(ctx, run)
	c.log.Info().Str("run_id", run.ID).Int("stored", stored).Int("unparsed", bad).Msg("host facts collected")
}

// Collect parses and stores the facts of every ok host of run; it returns
// how many were stored and how many outputs could not be read.
func (c *Collector) Collect(ctx context.Context, run store.Run) (stored, bad int) {
	at := run.CreatedAt
	if run.FinishedAt != nil {
		at = *run.FinishedAt
	}
	var after int64
	for {
		page, err := c.st.RunOutputs(ctx, run.ID, after, 0)
		if err != nil {
			c.log.Warn().Err(err).Str("run_id", run.ID).Msg("read outputs")
			return stored, bad
		}
		if len(page) == 0 {
			return stored, bad
		}
		for _, o := range page {
			after = o.ID
			if o.Status != task.StatusOK {
				continue
			}
			f, err := Parse(o.Stdout)
			if err != nil {
				bad++
				c.log.Warn().Err(err).Str("run_id", run.ID).Str("host", o.IP).Msg("facts not readable")
				continue
			}
			if err := c.save(ctx, o.IP, run.ID, at, f); err != nil {
				bad++
				c.log.Warn().Err(err).Str("run_id", run.ID).Str("host", o.IP).Msg("store facts")
				continue
			}
			stored++
		}
	}
}

func (c *Collector) save(ctx context.Context, ip, runID string, at time.Time, f Facts) error {
	b, err := json.Marshal(f)
	if err != nil {
		return err
	}
	disks := make([]store.FactDisk, 0, len(f.Disks))
	seen := map[string]bool{}
	for _, d := range f.Disks {
		if seen[d.Mount] {
			continue // a mount point listed twice (bind mounts): the first wins
		}
		seen[d.Mount] = true
		disks = append(disks, store.FactDisk{Mount: d.Mount, SizeKB: d.SizeKB, UsedKB: d.UsedKB, AvailKB: d.AvailKB, UsedPct: d.UsedPct})
	}
	return c.st.SaveFacts(ctx, store.ServerFacts{IP: ip, RunID: runID, CollectedAt: at, CPUCount: f.CPUCount, Load1: f.Load[0],
		MemUsedPct: f.MemUsedPct(), Facts: string(b)}, disks)
}
