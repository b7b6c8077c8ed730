package master

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/omserver/omserver-go/internal/backend"
	"github.com/omserver/omserver-go/internal/store"
	"github.com/omserver/omserver-go/internal/task"
)

// paced is a backend whose every host takes hostTime, the cost of a quick
// command over SSH measured by internal/backend/ssh's BenchmarkSSHRun.
type paced struct{ d time.Duration }

func (paced) Name() string { return "fake" }
func (p paced) Run(ctx context.Context, h task.Host, _ []backend.Step, _ backend.Options) task.HostResult {
	t := time.NewTimer(p.d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
	return task.HostResult{Host: h, Status: task.StatusOK, Stdout: "Linux web 6.1.0 #1 SMP x86_64 GNU/Linux\n", Started: time.Now(), Duration: p.d}
}

const (
	benchHosts    = 500
	benchHostTime = 80 * time.Millisecond
)

// BenchmarkSafetyOverhead500 is a 500-host run, master to database, with
// and without what this work adds to every run: the master's per-host lock,
// the audit entry appended to its hash chain (vs a plain insert), and the
// run's results sealed into the results chain when it ends. Each iteration
// runs both variants back to back (alternating which goes first) on the
// same master and SQLite database, so the machine's noise hits both; the
// figure that matters is overhead-%. Results are stored one by one as
// they arrive, as the web tier does.
func BenchmarkSafetyOverhead500(b *testing.B) {
	m := newMaster(b, Config{Forks: 50}, writeModules(b, testModules), map[string]backend.Backend{"fake": paced{benchHostTime}})
	st, err := store.Open(context.Background(), store.DialectSQLite, filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	if err := st.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	hs := hosts(benchHosts)
	locks := m.locks
	one := func(id string, safe bool) time.Duration {
		start := time.Now()
		if safe {
			m.locks = locks
		} else {
			m.locks = nil
		}
		if err := st.CreateRun(ctx, store.Run{ID: id, ModuleID: 2, ModuleName: "bench", Username: "ops", Hosts: hs}); err != nil {
			b.Fatal(err)
		}
		if safe {
			if err := st.AddAudit(ctx, store.AuditEntry{Username: "ops", Action: "run.start", Detail: "run " + id}); err != nil {
				b.Fatal(err)
			}
		} else if _, err := st.DB().ExecContext(ctx, `INSERT INTO audit_log (at, username, action, detail, remote_addr) VALUES (?, 'ops', 'run.start', ?, '')`,
			time.Now().UTC(), "run "+id); err != nil {
			b.Fatal(err)
		}
		err := m.Run(ctx, newTask(id, 2, hs, map[string]string{"sys_param_1": "x"}), func(ev task.Event) {
			if ev.Type == task.EventResult {
				if err := st.AddRunResult(ctx, id, *ev.Result); err != nil {
					b.Error(err)
				}
			}
		})
		if err != nil {
			b.Fatal(err)
		}
		if err := st.FinishRun(ctx, id, task.RunDone, ""); err != nil {
			b.Fatal(err)
		}
		if safe {
			if n, err := st.SealRunResults(ctx, id); err != nil || n != benchHosts {
				b.Fatalf("sealed %d, %v", n, err)
			}
		}
		return time.Since(start)
	}
	var plain, safe time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i%2 == 0 {
			plain += one(fmt.Sprintf("plain-%d", i), false)
			safe += one(fmt.Sprintf("safe-%d", i), true)
		} else {
			safe += one(fmt.Sprintf("safe-%d", i), true)
			plain += one(fmt.Sprintf("plain-%d", i), false)
		}
	}
	m.locks = locks
	b.ReportMetric(float64(plain.Milliseconds())/float64(b.N), "plain-ms/run")
	b.ReportMetric(float64(safe.Milliseconds())/float64(b.N), "safe-ms/run")
	b.ReportMetric(100*(float64(safe)-float64(plain))/float64(plain), "overhead-%")
}
