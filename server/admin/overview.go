package admin

import (
	"context"
	"maps"
	"slices"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/unosync/uno/server"
	"github.com/unosync/uno/server/jobs"
)

// Overview is what the dashboard shows: one snapshot of the server.
// Rates and latencies are over the time since the previous snapshot
// (Window).
type Overview struct {
	Time     time.Time `json:"time"`
	Window   float64   `json:"window_seconds"`
	Sessions int       `json:"sessions"`
	Streams  float64   `json:"live_streams"`
	// Rates per second over the window.
	Rates map[string]float64 `json:"rates"`
	// Latencies in milliseconds over the window: p50 and p99 of each.
	Latency map[string]Quantiles `json:"latency_ms"`
	// CacheHitRatio is the query result cache's hit ratio since start.
	CacheHitRatio float64              `json:"cache_hit_ratio"`
	Errors        map[string]float64   `json:"errors_total"` // by protocol code, since start
	Tenants       []TenantView         `json:"tenants"`
	Projections   []ProjectionView     `json:"projections"`
	Live          []server.SessionInfo `json:"live"` // at most maxLive
	Totals        map[string]float64   `json:"totals"`
	// Jobs are the newest jobs (at most maxJobs) and the counts of all
	// by state and kind, when the server runs a job queue.
	Jobs      []jobs.Job   `json:"jobs,omitempty"`
	JobCounts []jobs.Count `json:"job_counts,omitempty"`
	Notes     []string     `json:"notes,omitempty"` // what could not be read, for the operator
}

// Quantiles are a latency's p50 and p99 in milliseconds (0 with no
// observation in the window).
type Quantiles struct {
	P50   float64 `json:"p50"`
	P99   float64 `json:"p99"`
	Count uint64  `json:"count"`
}

// TenantView is one tenant: its registry entry (when there is a
// registry), its live sessions and its log's head.
type TenantView struct {
	ID        string `json:"id"`
	Suspended bool   `json:"suspended"`
	// Limits as the registry holds them (0: none).
	MaxRows       int64  `json:"max_rows"`
	MaxBytes      int64  `json:"max_bytes"`
	OpsPerSecond  int    `json:"ops_per_second"`
	RetentionDays int    `json:"retention_days"`
	Sessions      int    `json:"sessions"`
	Head          uint64 `json:"head"`
	// Usage: rows and bytes of the rows read model.
	Rows  uint64 `json:"rows"`
	Bytes uint64 `json:"bytes"`
}

// ProjectionView is a projection with each shown tenant's checkpoint and
// lag (entries appended and not folded yet; inline projections never lag).
type ProjectionView struct {
	Projection
	Checkpoints map[string]uint64 `json:"checkpoints,omitempty"`
	Lag         map[string]uint64 `json:"lag,omitempty"`
}

const (
	maxTenants = 50  // tenants shown: those with sessions first
	maxLive    = 200 // live sessions listed
	maxJobs    = 20  // newest jobs listed
)

// sample is the metrics read at one time.
type sample struct {
	at       time.Time
	counters map[string]float64
	hists    map[string]*dto.Histogram
}

// rateOf names the counters shown as rates.
var rateOf = map[string]string{
	"uno_events_appended_total":   "appended",
	"uno_changes_delivered_total": "delivered",
	"uno_pushes_total":            "pushes",
	"uno_connections_total":       "connections",
	"uno_bytes_in_total":          "bytes_in",
	"uno_bytes_out_total":         "bytes_out",
}

// latencyOf names the histograms shown as latencies.
var latencyOf = map[string]string{
	"uno_append_seconds":   "append",
	"uno_push_ack_seconds": "push_ack",
	"uno_delivery_seconds": "delivery",
}

// invalidate makes the next overview fresh (after an action).
func (h *Handler) invalidate() {
	h.mu.Lock()
	h.view = nil
	h.mu.Unlock()
}

// overview returns the current overview, computing it at most twice an
// Interval however many ask (a stream's ticker may fire a little early).
func (h *Handler) overview(ctx context.Context) *Overview {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := h.cfg.Now()
	if h.view != nil && now.Sub(h.view.Time) < h.cfg.Interval/2 {
		return h.view
	}
	o := &Overview{Time: now, Rates: map[string]float64{}, Latency: map[string]Quantiles{}, Errors: map[string]float64{}, Totals: map[string]float64{}}
	cur := h.read(o)
	if prev := h.last; prev != nil {
		o.Window = cur.at.Sub(prev.at).Seconds()
		for name, short := range rateOf {
			if o.Window > 0 {
				o.Rates[short] = max(0, cur.counters[name]-prev.counters[name]) / o.Window
			}
		}
		for name, short := range latencyOf {
			o.Latency[short] = quantiles(cur.hists[name], prev.hists[name])
		}
	} else {
		for name, short := range latencyOf {
			o.Latency[short] = quantiles(cur.hists[name], nil)
		}
	}
	h.last = cur
	live := h.cfg.Server.Sessions()
	o.Sessions = len(live)
	o.Live = live[:min(len(live), maxLive)]
	h.tenants(ctx, o, live)
	h.projections(ctx, o)
	h.jobs(ctx, o)
	h.view = o
	return o
}

// read gathers the server's metrics into a sample and o's gauges.
func (h *Handler) read(o *Overview) *sample {
	s := &sample{at: o.Time, counters: map[string]float64{}, hists: map[string]*dto.Histogram{}}
	mfs, err := h.cfg.Server.Gatherer().Gather()
	if err != nil {
		o.Notes = append(o.Notes, "some metrics could not be read: "+err.Error())
	}
	for _, mf := range mfs {
		name := mf.GetName()
		for _, m := range mf.GetMetric() {
			switch {
			case name == "uno_errors_total":
				for _, l := range m.GetLabel() {
					if l.GetName() == "code" {
						o.Errors[l.GetValue()] = m.GetCounter().GetValue()
					}
				}
			case m.Counter != nil:
				s.counters[name] = m.GetCounter().GetValue()
				if short, ok := rateOf[name]; ok {
					o.Totals[short] = m.GetCounter().GetValue()
				}
			case m.Histogram != nil:
				s.hists[name] = m.GetHistogram()
			case name == "uno_live_streams":
				o.Streams = m.GetGauge().GetValue()
			case name == "uno_query_cache_hit_ratio":
				o.CacheHitRatio = m.GetGauge().GetValue()
			}
		}
	}
	return s
}

// quantiles estimates the p50 and p99 of the observations made between
// prev and cur (all of cur's when prev is nil), interpolating linearly
// within a bucket as Prometheus's histogram_quantile does.
func quantiles(cur, prev *dto.Histogram) Quantiles {
	if cur == nil {
		return Quantiles{}
	}
	type bucket struct {
		le float64
		n  uint64
	}
	var bs []bucket
	for i, b := range cur.GetBucket() {
		n := b.GetCumulativeCount()
		if prev != nil && i < len(prev.GetBucket()) {
			n -= min(n, prev.GetBucket()[i].GetCumulativeCount())
		}
		bs = append(bs, bucket{b.GetUpperBound(), n})
	}
	total := cur.GetSampleCount()
	if prev != nil {
		total -= min(total, prev.GetSampleCount())
	}
	if total == 0 {
		return Quantiles{}
	}
	at := func(q float64) float64 {
		rank := q * float64(total)
		lo, below := 0.0, uint64(0)
		for _, b := range bs {
			if float64(b.n) >= rank {
				if b.n == below {
					return b.le
				}
				return lo + (b.le-lo)*(rank-float64(below))/float64(b.n-below)
			}
			lo, below = b.le, b.n
		}
		return lo // above the last bucket: its bound, as histogram_quantile
	}
	return Quantiles{P50: at(0.5) * 1000, P99: at(0.99) * 1000, Count: total}
}

// tenants fills o.Tenants: the registry's tenants (when there is one)
// and those with live sessions, those with sessions first, at most
// maxTenants.
func (h *Handler) tenants(ctx context.Context, o *Overview, live []server.SessionInfo) {
	byID := map[string]*TenantView{}
	for _, s := range live {
		if byID[s.Tenant] == nil {
			byID[s.Tenant] = &TenantView{ID: s.Tenant}
		}
		byID[s.Tenant].Sessions++
	}
	if h.cfg.Registry != nil {
		ts, err := h.cfg.Registry.List(ctx)
		if err != nil {
			o.Notes = append(o.Notes, "the tenant registry did not answer")
			h.cfg.Logger.Warn("admin: list tenants", "err", err)
		}
		for _, t := range ts {
			v := byID[t.ID]
			if v == nil {
				v = &TenantView{ID: t.ID}
				byID[t.ID] = v
			}
			v.Suspended, v.MaxRows, v.MaxBytes = t.Suspended, t.MaxRows, t.MaxBytes
			v.OpsPerSecond, v.RetentionDays = t.OpsPerSec, t.RetentionDays
		}
	}
	ids := slices.SortedFunc(maps.Keys(byID), func(a, b string) int {
		if d := byID[b].Sessions - byID[a].Sessions; d != 0 {
			return d
		}
		if a < b {
			return -1
		}
		return 1
	})
	ids = ids[:min(len(ids), maxTenants)]
	heads := h.cfg.Server.Heads(ctx, ids)
	sizer, _ := h.cfg.Server.Log().(server.Snapshotter)
	for _, id := range ids {
		v := byID[id]
		v.Head = heads[id]
		if sizer != nil {
			v.Rows, v.Bytes, _ = sizer.SnapshotSize(ctx, id)
		}
		o.Tenants = append(o.Tenants, *v)
	}
}

// checkpointer is the capability of a log whose async projections keep
// per-tenant checkpoints.
type checkpointer interface {
	Checkpoint(ctx context.Context, tenant, projection string) (uint64, error)
}

// projections fills o.Projections: the rows read model (inline) and the
// configured ones, with the shown tenants' checkpoints and lags.
func (h *Handler) projections(ctx context.Context, o *Overview) {
	o.Projections = append(o.Projections, ProjectionView{Projection: Projection{Name: "rows"}})
	cp, _ := h.cfg.Server.Log().(checkpointer)
	for _, p := range h.cfg.Projections {
		v := ProjectionView{Projection: p}
		if p.Async && cp != nil {
			v.Checkpoints, v.Lag = map[string]uint64{}, map[string]uint64{}
			for _, t := range o.Tenants {
				c, err := cp.Checkpoint(ctx, t.ID, p.Name)
				if err != nil {
					o.Notes = append(o.Notes, "projection "+p.Name+": checkpoint of "+t.ID+" unreadable")
					continue
				}
				v.Checkpoints[t.ID] = c
				v.Lag[t.ID] = t.Head - min(t.Head, c)
			}
		}
		o.Projections = append(o.Projections, v)
	}
}

// jobs fills o's jobs from the queue, if the server runs one.
func (h *Handler) jobs(ctx context.Context, o *Overview) {
	if h.cfg.Jobs == nil {
		return
	}
	var err error
	if o.Jobs, err = h.cfg.Jobs.List(ctx, jobs.Filter{Limit: maxJobs}); err == nil {
		o.JobCounts, err = h.cfg.Jobs.Counts(ctx)
	}
	if err != nil {
		o.Notes = append(o.Notes, "the job queue did not answer")
		h.cfg.Logger.Warn("admin: list jobs", "err", err)
	}
}
