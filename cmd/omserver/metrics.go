package main

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/omserver/omserver-go/internal/master"
	"github.com/omserver/omserver-go/internal/task"
)

// masterMetrics counts runs and host results for /metrics.
type masterMetrics struct {
	runs     *prometheus.CounterVec
	hosts    *prometheus.CounterVec
	duration prometheus.Histogram
}

func newMasterMetrics(reg prometheus.Registerer) *masterMetrics {
	mm := &masterMetrics{
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "omserver_master_runs_total", Help: "Runs received over the relay, by outcome (accepted or refused).",
		}, []string{"outcome"}),
		hosts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "omserver_master_host_results_total", Help: "Per-host results, by status.",
		}, []string{"status"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "omserver_master_host_duration_seconds", Help: "Time one host took to run a module.",
			Buckets: prometheus.ExponentialBuckets(0.01, 4, 10),
		}),
	}
	reg.MustRegister(mm.runs, mm.hosts, mm.duration)
	return mm
}

// observe is the master's Observe hook: it sees every event of every run.
func (mm *masterMetrics) observe(ev task.Event) {
	if r := ev.Result; r != nil {
		mm.hosts.WithLabelValues(string(r.Status)).Inc()
		mm.duration.Observe(r.Duration.Seconds())
	}
}

// meteredMaster is the master as the relay sees it, counting the runs it
// accepts and refuses on the way through.
type meteredMaster struct {
	*master.Master
	metrics *masterMetrics
}

func newMeteredMaster(m *master.Master, mm *masterMetrics, reg prometheus.Registerer) *meteredMaster {
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "omserver_master_modules", Help: "Modules loaded.",
	}, func() float64 { return float64(m.ModuleCount()) }))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "omserver_master_runs_running", Help: "Runs in progress.",
	}, func() float64 { return float64(len(m.Running())) }))
	return &meteredMaster{Master: m, metrics: mm}
}

// Start counts the run as accepted or refused.
func (mm *meteredMaster) Start(t task.Task) error {
	err := mm.Master.Start(t)
	outcome := "accepted"
	if err != nil {
		outcome = "refused"
	}
	mm.metrics.runs.WithLabelValues(outcome).Inc()
	return err
}
