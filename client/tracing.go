package client

import (
	"context"
	"slices"
	"sync"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/unosync/uno/crdt"
	usync "github.com/unosync/uno/sync"
)

// Span names and attributes: see Tracing in the package documentation.
const (
	tracerName = "github.com/unosync/uno/client"

	spanTx    = "uno.client.tx"
	spanPush  = "uno.client.push"
	spanApply = "uno.client.apply"

	// maxTracedTxs bounds the span contexts kept for pending writes
	// (by site seq): a write beyond it is pushed without its trace.
	maxTracedTxs = 4096
)

// tracing starts the client's spans. With a provider that does not
// record (the otel global with no SDK installed), on is false and no
// span is started.
type tracing struct {
	on     bool
	tracer trace.Tracer
	prop   propagation.TraceContext

	mu      sync.Mutex
	pending map[uint64]trace.SpanContext // local writes not yet pushed, by site seq
}

func newTracing(tp trace.TracerProvider) *tracing {
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	t := &tracing{tracer: tp.Tracer(tracerName), pending: map[uint64]trace.SpanContext{}}
	t.on = records(t.tracer)
	return t
}

// startTx starts the span of a local write transaction (nil when off).
func (t *tracing) startTx(ctx context.Context) (context.Context, trace.Span) {
	if !t.on {
		return ctx, nil
	}
	return t.tracer.Start(ctx, spanTx)
}

// keep keeps the context of a local write's span for the push of its
// transaction, numbered seq, before it commits: the sync loop may push it
// before Tx returns (store.SQLite.OnCommit).
func (t *tracing) keep(span trace.Span, seq uint64) {
	if span == nil {
		return
	}
	t.mu.Lock()
	if len(t.pending) < maxTracedTxs {
		t.pending[seq] = span.SpanContext()
	}
	t.mu.Unlock()
}

// endTx ends the span of a local write that committed tx (nil: nothing
// to push) or failed with err; kept is the seq keep kept its context
// under (0: none), forgotten if nothing committed.
func (t *tracing) endTx(span trace.Span, tx *crdt.Tx, kept uint64, err error) {
	if span == nil {
		return
	}
	if err != nil {
		span.SetStatus(codes.Error, "transaction failed")
	}
	if tx == nil && kept != 0 {
		t.mu.Lock()
		if sc, ok := t.pending[kept]; ok && sc.SpanID() == span.SpanContext().SpanID() {
			delete(t.pending, kept)
		}
		t.mu.Unlock()
	}
	if tx != nil {
		var cols []string
		for i := range tx.Ops {
			if c := tx.Ops[i].Collection; !slices.Contains(cols, c) {
				cols = append(cols, c)
			}
		}
		span.SetAttributes(attribute.String("uno.site", tx.Site.String()), attribute.Int64("uno.site_seq", int64(tx.Seq)),
			attribute.Int("uno.ops", len(tx.Ops)), attribute.StringSlice("uno.collections", cols))
	}
	span.End()
}

// startPush starts the span of a push of txs, continuing the trace of
// the first of them written with tracing (and linking the others'), and
// returns it with its traceparent. It returns a nil span when no
// transaction of txs was traced.
func (t *tracing) startPush(ctx context.Context, txs []crdt.Tx) (trace.Span, string) {
	if !t.on {
		return nil, ""
	}
	var parent trace.SpanContext
	var links []trace.Link
	t.mu.Lock()
	for i := range txs {
		sc, ok := t.pending[txs[i].Seq]
		if !ok {
			continue
		}
		delete(t.pending, txs[i].Seq)
		if !parent.IsValid() {
			parent = sc
		} else {
			links = append(links, trace.Link{SpanContext: sc})
		}
	}
	t.mu.Unlock()
	if !parent.IsValid() {
		return nil, ""
	}
	_, span := t.tracer.Start(trace.ContextWithSpanContext(ctx, parent), spanPush, trace.WithSpanKind(trace.SpanKindClient), trace.WithLinks(links...),
		trace.WithAttributes(attribute.Int("uno.txs", len(txs)), attribute.Int64("uno.site_seq", int64(txs[len(txs)-1].Seq))))
	return span, t.traceparent(span.SpanContext())
}

// startApply starts the span of applying ch, continuing the trace of its
// first entry that carries one (and linking the others'); nil when none
// does.
func (t *tracing) startApply(ctx context.Context, ch *usync.Changes) (context.Context, trace.Span) {
	if !t.on {
		return ctx, nil
	}
	var parent trace.SpanContext
	var links []trace.Link
	for i := range ch.Changes {
		if ch.Changes[i].Trace == "" {
			continue
		}
		sc := trace.SpanContextFromContext(t.prop.Extract(context.Background(), propagation.MapCarrier{"traceparent": ch.Changes[i].Trace}))
		if !sc.IsValid() {
			continue
		}
		if !parent.IsValid() {
			parent = sc
		} else {
			links = append(links, trace.Link{SpanContext: sc})
		}
	}
	if !parent.IsValid() {
		return ctx, nil
	}
	return t.tracer.Start(trace.ContextWithRemoteSpanContext(ctx, parent), spanApply, trace.WithSpanKind(trace.SpanKindConsumer), trace.WithLinks(links...),
		trace.WithAttributes(attribute.Int64("uno.from", int64(ch.From)), attribute.Int64("uno.to", int64(ch.To)), attribute.Int("uno.entries", len(ch.Changes))))
}

func (t *tracing) traceparent(sc trace.SpanContext) string {
	c := propagation.MapCarrier{}
	t.prop.Inject(trace.ContextWithSpanContext(context.Background(), sc), c)
	return c["traceparent"]
}

// endSpan ends span (nil: none), marking it failed if err is set (never
// with err's text, which may quote a value).
func endSpan(span trace.Span, err error) {
	if span == nil {
		return
	}
	if err != nil {
		span.SetStatus(codes.Error, "failed")
	}
	span.End()
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
