package server

import (
	gosync "sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	usync "github.com/unosync/uno/sync"
)

// metrics are the server's Prometheus metrics, on its own registry (no
// package globals), served at /metrics.
type metrics struct {
	reg          *prometheus.Registry
	connections  prometheus.Gauge
	streams      prometheus.Gauge
	pushWait     prometheus.Histogram
	accepted     prometheus.Counter
	reauths      prometheus.Counter
	pushes       prometheus.Counter
	acks         prometheus.Counter
	appended     prometheus.Counter
	rejects      *prometheus.CounterVec
	delivered    prometheus.Counter
	ownSkipped   prometheus.Counter
	lag          prometheus.Histogram
	bytesIn      prometheus.Counter
	bytesOut     prometheus.Counter
	snapshotRows prometheus.Counter
	resumes      prometheus.Counter
	resubscribes prometheus.Counter
	retained     prometheus.Counter
	appendTime   prometheus.Histogram // one Log.Append call
	pushAck      prometheus.Histogram // a Push received to its Ack sent
	delivery     prometheus.Histogram // an entry appended to it sent to a connection
}

// latencyBuckets span 100µs to about 26s.
var latencyBuckets = prometheus.ExponentialBuckets(0.0001, 4, 10)

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		connections: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "uno_connections", Help: "Open sync connections.",
		}),
		pushWait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "uno_frame_wait_seconds",
			Help:    "How long received frames waited for room under MaxPushBytes (the bytes held until their pushes are acknowledged).",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10),
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
		ownSkipped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "uno_changes_own_skipped_total", Help: "Log entries not sent back to the connection that pushed them (its Ack covers them).",
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
		appendTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "uno_append_seconds", Help: "Latency of appending a push's transactions to the event log (one durable commit).", Buckets: latencyBuckets,
		}),
		pushAck: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "uno_push_ack_seconds", Help: "Time from receiving a Push to sending its Ack (queueing, rules, append).", Buckets: latencyBuckets,
		}),
		delivery: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "uno_delivery_seconds", Help: "Time from numbering a log entry (just before its commit) to sending it to a connection, for entries this process appended.", Buckets: latencyBuckets,
		}),
	}
	m.reg.MustRegister(m.connections, m.streams, m.pushWait, m.accepted, m.reauths, m.pushes, m.acks, m.appended, m.rejects, m.delivered, m.ownSkipped, m.lag, m.bytesIn, m.bytesOut, m.snapshotRows, m.resumes, m.resubscribes, m.retained,
		m.appendTime, m.pushAck, m.delivery,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// appendTimes remembers when this process appended the newest entries of
// the tenants it appended to most recently, so that delivery latency can be
// measured: entries it does not know (appended by another node, or older
// than the last appendRingSize entries) are not measured. It is bounded:
// appendRingSize entries per tenant (16 bytes each), at most max tenants
// (the one appended to longest ago makes room for a new one).
type appendTimes struct {
	mu      gosync.Mutex
	base    time.Time // times are kept as monotonic offsets from it
	tenants map[string]*appendRing
	max     int
}

// appendRing holds the append times of a tenant's entries, by seq modulo
// its size.
type appendRing struct {
	seqs [appendRingSize]uint64
	at   [appendRingSize]time.Duration // since base
	last time.Duration                 // the newest append
}

const (
	appendRingSize = 256
	appendTenants  = 1024 // 4 MiB of rings at most
)

func newAppendTimes(maxTenants int) *appendTimes {
	return &appendTimes{base: time.Now(), tenants: map[string]*appendRing{}, max: maxTenants}
}

// record notes that seqs (0s are skipped) of tenant were appended at t.
func (a *appendTimes) record(tenant string, seqs []uint64, t time.Time) {
	at := t.Sub(a.base)
	a.mu.Lock()
	defer a.mu.Unlock()
	r := a.tenants[tenant]
	if r == nil {
		if len(a.tenants) >= a.max {
			a.evict()
		}
		r = &appendRing{}
		a.tenants[tenant] = r
	}
	r.last = at
	for _, seq := range seqs {
		if seq != 0 {
			r.seqs[seq%appendRingSize], r.at[seq%appendRingSize] = seq, at
		}
	}
}

// forget drops what record noted for seqs of tenant.
func (a *appendTimes) forget(tenant string, seqs []uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if r := a.tenants[tenant]; r != nil {
		for _, seq := range seqs {
			if seq != 0 && r.seqs[seq%appendRingSize] == seq {
				r.seqs[seq%appendRingSize] = 0
			}
		}
	}
}

// evict forgets the tenant appended to longest ago.
func (a *appendTimes) evict() {
	oldest, at := "", time.Duration(0)
	for tenant, r := range a.tenants {
		if oldest == "" || r.last < at {
			oldest, at = tenant, r.last
		}
	}
	delete(a.tenants, oldest)
}

// observe records in h, for each of tenant's entries whose append time it
// knows, the time from that append to now.
func (a *appendTimes) observe(h prometheus.Observer, tenant string, chs []usync.Change, now time.Time) {
	at := now.Sub(a.base)
	a.mu.Lock()
	defer a.mu.Unlock()
	r := a.tenants[tenant]
	if r == nil {
		return
	}
	for i := range chs {
		if seq := chs[i].Seq; r.seqs[seq%appendRingSize] == seq {
			h.Observe((at - r.at[seq%appendRingSize]).Seconds())
		}
	}
}
