package web

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics live in a registry owned by the server (the runs service adds
// its own to it), never the global default,
// so several servers (tests, the demo) can coexist in one process.
type metrics struct {
	reg            *prometheus.Registry
	requests       *prometheus.CounterVec
	duration       *prometheus.HistogramVec
	sseSubscribers prometheus.Gauge
	loginFailures  prometheus.Counter
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "omserver_web", Name: "http_requests_total",
			Help: "HTTP requests by method, route pattern and status code.",
		}, []string{"method", "route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "omserver_web", Name: "http_request_duration_seconds",
			Help:    "HTTP request durations by method and route pattern (SSE streams last as long as the run).",
			Buckets: prometheus.DefBuckets,
		}, []string{"method", "route"}),
		sseSubscribers: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "omserver_web", Name: "sse_subscribers",
			Help: "Open server-sent event streams.",
		}),
		loginFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "omserver_web", Name: "login_failures_total",
			Help: "Failed or rate-limited login attempts.",
		}),
	}
	m.reg.MustRegister(m.requests, m.duration, m.sseSubscribers, m.loginFailures,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}
