package server

import (
	"context"
	"slices"
	gosync "sync"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/unosync/uno/crdt"
	usync "github.com/unosync/uno/sync"
)

// Span names and attribute keys; server/doc.go lists them all.
const (
	tracerName = "github.com/unosync/uno/server"

	spanPush   = "uno.server.push"
	spanAppend = "uno.log.append"
	spanFanout = "uno.server.fanout"

	attrTenant      = attribute.Key("uno.tenant")
	attrSite        = attribute.Key("uno.site")
	attrTxs         = attribute.Key("uno.txs")
	attrCollections = attribute.Key("uno.collections")
	attrSeqs        = attribute.Key("uno.seqs")
	attrSeq         = attribute.Key("uno.seq")

	// maxTraceparent bounds a pushed traceparent: version 00 is 55
	// characters; a longer one of a future version is still accepted up
	// to this size, and anything longer is ignored.
	maxTraceparent = 128
)

// tracing starts the server's spans. When its tracer provider does not
// record (the otel global with no SDK installed), on is false and the
// push path does nothing more than test it: tracing off costs no
// allocation.
type tracing struct {
	on        bool
	tracer    trace.Tracer
	prop      propagation.TraceContext
	malformed prometheus.Counter
	recent    *traceRing
}

func newTracing(tp trace.TracerProvider, reg prometheus.Registerer) *tracing {
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	t := &tracing{tracer: tp.Tracer(tracerName), recent: newTraceRing(appendTenants)}
	t.on = records(t.tracer)
	t.malformed = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "uno_trace_context_malformed_total",
		Help: "Pushes whose trace context was malformed or oversized and was ignored (a new root span was started).",
	})
	reg.MustRegister(t.malformed)
	return t
}

// traceparent returns the W3C traceparent of sc ("" if invalid).
func (t *tracing) traceparent(sc trace.SpanContext) string {
	if !sc.IsValid() {
		return ""
	}
	c := propagation.MapCarrier{}
	t.prop.Inject(trace.ContextWithSpanContext(context.Background(), sc), c)
	return c["traceparent"]
}

// remote returns ctx with the span context of traceparent as its remote
// parent; ok is false (and ctx unchanged) for a malformed or oversized one.
func (t *tracing) remote(ctx context.Context, traceparent string) (context.Context, bool) {
	if len(traceparent) > maxTraceparent {
		return ctx, false
	}
	out := t.prop.Extract(ctx, propagation.MapCarrier{"traceparent": traceparent})
	if !trace.SpanContextFromContext(out).IsValid() {
		return ctx, false
	}
	return out, true
}

// startPush starts the span of a push's handling, continuing the trace of
// the pushed writes. A malformed trace context is counted and ignored:
// the span is a new root.
func (t *tracing) startPush(ctx context.Context, traceparent, tenant string, site crdt.SiteID, txs int) (context.Context, trace.Span) {
	if traceparent != "" {
		var ok bool
		if ctx, ok = t.remote(ctx, traceparent); !ok {
			t.malformed.Inc()
		}
	}
	return t.tracer.Start(ctx, spanPush, trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attrTenant.String(tenant), attrSite.String(site.String()), attrTxs.Int(txs)))
}

// startAppend starts the span of the log append of txs.
func (t *tracing) startAppend(ctx context.Context, tenant string, txs []crdt.Tx) (context.Context, trace.Span) {
	var cols []string
	for i := range txs {
		for j := range txs[i].Ops {
			if c := txs[i].Ops[j].Collection; !slices.Contains(cols, c) {
				cols = append(cols, c)
			}
		}
	}
	return t.tracer.Start(ctx, spanAppend, trace.WithAttributes(attrTenant.String(tenant), attrCollections.StringSlice(cols)))
}

// appended sets the sequence numbers given on the append span.
func (t *tracing) appended(span trace.Span, seqs []uint64) {
	ints := make([]int64, 0, len(seqs))
	for _, s := range seqs {
		if s != 0 {
			ints = append(ints, int64(s))
		}
	}
	span.SetAttributes(attrSeqs.Int64Slice(ints))
}

// recordAppend remembers the context of the append span (nil: none) for
// the fan-out of the entries numbered seqs.
func (t *tracing) recordAppend(span trace.Span, tenant string, seqs []uint64) {
	if span == nil {
		return
	}
	t.recent.record(tenant, seqs, span.SpanContext())
}

// forget drops what recordAppend noted for seqs.
func (t *tracing) forget(tenant string, seqs []uint64) {
	if t.on {
		t.recent.forget(tenant, seqs)
	}
}

// fanout starts, for each of chs whose append this process traced, a
// fan-out span (child of the append's) and returns chs with Trace set to
// it, so that the receiving client's apply continues the trace. It
// returns chs unchanged, and no spans, when none is known.
func (t *tracing) fanout(ctx context.Context, tenant string, site crdt.SiteID, chs []usync.Change) ([]usync.Change, []trace.Span) {
	var spans []trace.Span
	var out []usync.Change
	for i := range chs {
		if chs[i].Tx.Site == site {
			continue // never delivered back
		}
		sc, ok := t.recent.lookup(tenant, chs[i].Seq)
		if !ok {
			continue
		}
		_, span := t.tracer.Start(trace.ContextWithRemoteSpanContext(ctx, sc), spanFanout, trace.WithSpanKind(trace.SpanKindProducer),
			trace.WithAttributes(attrTenant.String(tenant), attrSeq.Int64(int64(chs[i].Seq)), attrSite.String(site.String())))
		spans = append(spans, span)
		if out == nil {
			out = slices.Clone(chs)
		}
		out[i].Trace = t.traceparent(span.SpanContext())
	}
	if out == nil {
		return chs, nil
	}
	return out, spans
}

// traceRing keeps the span contexts of the appends this process traced
// for the newest entries of the tenants appended to most recently, by seq
// modulo its size, like appendTimes.
type traceRing struct {
	mu      gosync.Mutex
	tenants map[string]*traceSlots
	order   []string // tenants, least recently appended to first
	max     int
}

type traceSlots struct {
	seqs [appendRingSize]uint64
	scs  [appendRingSize]trace.SpanContext
}

func newTraceRing(maxTenants int) *traceRing {
	return &traceRing{tenants: map[string]*traceSlots{}, max: maxTenants}
}

func (r *traceRing) record(tenant string, seqs []uint64, sc trace.SpanContext) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.tenants[tenant]
	if s == nil {
		if len(r.order) >= r.max {
			delete(r.tenants, r.order[0])
			r.order = r.order[1:]
		}
		s = &traceSlots{}
		r.tenants[tenant] = s
	} else if i := slices.Index(r.order, tenant); i >= 0 {
		r.order = slices.Delete(r.order, i, i+1)
	}
	r.order = append(r.order, tenant)
	for _, seq := range seqs {
		if seq != 0 {
			s.seqs[seq%appendRingSize], s.scs[seq%appendRingSize] = seq, sc
		}
	}
}

func (r *traceRing) forget(tenant string, seqs []uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s := r.tenants[tenant]; s != nil {
		for _, seq := range seqs {
			if seq != 0 && s.seqs[seq%appendRingSize] == seq {
				s.seqs[seq%appendRingSize], s.scs[seq%appendRingSize] = 0, trace.SpanContext{}
			}
		}
	}
}

func (r *traceRing) lookup(tenant string, seq uint64) (trace.SpanContext, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.tenants[tenant]
	if s == nil || s.seqs[seq%appendRingSize] != seq {
		return trace.SpanContext{}, false
	}
	return s.scs[seq%appendRingSize], true
}

// startPush starts the span of the push whose transactions rd asks to
// append; ctx unchanged and a nil span when tracing is off.
func (c *conn) startPush(ctx context.Context, rd usync.ServerReady) (context.Context, trace.Span) {
	if !c.s.tr.on {
		return ctx, nil
	}
	return c.s.tr.startPush(ctx, rd.AppendTrace, c.tenant, c.sess.Site(), len(rd.Append))
}

// startAppend starts the span of the log append of txs (a child of the
// push's), nil when tracing is off.
func (c *conn) startAppend(ctx context.Context, txs []crdt.Tx) (context.Context, trace.Span) {
	if !c.s.tr.on {
		return ctx, nil
	}
	return c.s.tr.startAppend(ctx, c.tenant, txs)
}

// endAppend ends the append span.
func (c *conn) endAppend(span trace.Span, seqs []uint64, err error) {
	if span == nil {
		return
	}
	if err == nil {
		c.s.tr.appended(span, seqs)
	}
	endSpan(span, err)
}

// fanout returns the entries to deliver with their trace context set
// (on a session that speaks it), and the fan-out spans to end once they
// are sent.
func (c *conn) fanout(ctx context.Context, chs []usync.Change) ([]usync.Change, []trace.Span) {
	if !c.s.tr.on || c.sess.Version() < usync.VersionTrace {
		return chs, nil
	}
	return c.s.tr.fanout(ctx, c.tenant, c.sess.Site(), chs)
}

// endSpan ends span (nil: none), recording err.
func endSpan(span trace.Span, err error) {
	if span == nil {
		return
	}
	if err != nil {
		span.SetStatus(codes.Error, loggedReason(err.Error()))
	}
	span.End()
}

func endSpans(spans []trace.Span, err error) {
	for _, s := range spans {
		endSpan(s, err)
	}
}

// records reports whether tracer makes spans of its own: a no-op tracer
// returns its parent's span context as the new span's. The probe's
// parent is not sampled, so a parent-based sampler (the default) neither
// records nor exports the probe.
func records(tracer trace.Tracer) bool {
	parent := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{1}, SpanID: trace.SpanID{1}})
	_, probe := tracer.Start(trace.ContextWithRemoteSpanContext(context.Background(), parent), "uno.probe")
	defer probe.End()
	return probe.SpanContext().SpanID() != parent.SpanID()
}
