package server

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are the server's Prometheus metrics, on its own registry (no
// package globals), served at /metrics.
type metrics struct {
	reg          *prometheus.Registry
	connections  prometheus.Gauge
	streams      prometheus.Gauge
	accepted     prometheus.Counter
	reauths      prometheus.Counter
	pushes       prometheus.Counter
	acks         prometheus.Counter
	appended     prometheus.Counter
	rejects      *prometheus.CounterVec
	delivered    prometheus.Counter
	lag          prometheus.Histogram
	bytesIn      prometheus.Counter
	bytesOut     prometheus.Counter
	snapshotRows prometheus.Counter
	resumes      prometheus.Counter
	resubscribes prometheus.Counter
	retained     prometheus.Counter
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		connections: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "uno_connections", Help: "Open sync connections.",
		}),
		streams: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "uno_live_streams", Help: "Open live query streams (Server-Sent Events).",
		}),
		accepted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "uno_connections_total", Help: "Sync connections accepted.",
		}),
		reauths: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "uno_reauthentications_total", Help: "Tokens renewed in band on live sessions (Auth accepted).",
		}),
		pushes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "uno_pushes_total", Help: "Push messages received.",
		}),
		acks: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "uno_acks_total", Help: "Ack messages sent (each after its commit).",
		}),
		appended: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "uno_events_appended_total", Help: "Transactions appended to event logs.",
		}),
		rejects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "uno_errors_total", Help: "Sessions ended or transactions refused, by protocol code.",
		}, []string{"code"}),
		delivered: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "uno_changes_delivered_total", Help: "Log entries sent to clients.",
		}),
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "uno_fanout_lag_entries",
			Help:    "How far behind the tenant's head a connection was when it was sent a batch of changes.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 10),
		}),
		bytesIn: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "uno_bytes_in_total", Help: "Frame bytes received from clients.",
		}),
		bytesOut: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "uno_bytes_out_total", Help: "Frame bytes sent to clients.",
		}),
		snapshotRows: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "uno_snapshot_rows_total", Help: "Rows sent in bootstrap snapshots.",
		}),
		retained: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "uno_retention_deleted_total", Help: "Log entries deleted by tenants' retention.",
		}),
		resubscribes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "uno_resubscribes_total", Help: "Sessions that changed their subscriptions and were sent just the rows added.",
		}),
		resumes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "uno_snapshot_resumes_total", Help: "Bootstraps resumed after an interruption.",
		}),
	}
	m.reg.MustRegister(m.connections, m.streams, m.accepted, m.reauths, m.pushes, m.acks, m.appended, m.rejects, m.delivered, m.lag, m.bytesIn, m.bytesOut, m.snapshotRows, m.resumes, m.resubscribes, m.retained,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}
