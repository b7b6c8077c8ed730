package main

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/omserver/omserver-go/internal/master"
	"github.com/omserver/omserver-go/internal/task"
)

// meteredMaster is the master as the relay sees it, counting runs and host
// results for /metrics on the way through.
type meteredMaster struct {
	*master.Master
	runs     *prometheus.CounterVec
	hosts    *prometheus.CounterVec
	duration prometheus.Histogram
	running  prometheus.Gauge
}

func newMeteredMaster(m *master.Master, reg prometheus.Registerer) *meteredMaster {
	mm := &meteredMaster{
		Master: m,
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "omserver_master_runs_total", Help: "Runs received over the relay, by outcome (ok or error).",
		}, []string{"outcome"}),
		hosts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "omserver_master_host_results_total", Help: "Per-host results, by status.",
		}, []string{"status"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "omserver_master_host_duration_seconds", Help: "Time one host took to run a module.",
			Buckets: prometheus.ExponentialBuckets(0.01, 4, 10),
		}),
		running: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "omserver_master_runs_running", Help: "Runs in progress.",
		}),
	}
	reg.MustRegister(mm.runs, mm.hosts, mm.duration, mm.running)
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "omserver_master_modules", Help: "Modules loaded.",
	}, func() float64 { return float64(m.ModuleCount()) }))
	return mm
}

// Run counts the run and each host's result.
func (mm *meteredMaster) Run(ctx context.Context, t task.Task, emit func(task.Event)) error {
	mm.running.Inc()
	defer mm.running.Dec()
	err := mm.Master.Run(ctx, t, func(ev task.Event) {
		if r := ev.Result; r != nil {
			mm.hosts.WithLabelValues(string(r.Status)).Inc()
			mm.duration.Observe(r.Duration.Seconds())
		}
		emit(ev)
	})
	outcome := "ok"
	if err != nil {
		outcome = "error"
	}
	mm.runs.WithLabelValues(outcome).Inc()
	return err
}
