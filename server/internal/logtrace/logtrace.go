package logtrace

import (
	"context"
	"fmt"
	"iter"

	usync "github.com/unosync/uno/sync"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// StartProjection starts the span of folding an inline projection, a
// child of the append's span in ctx; ctx unchanged and a nil span when
// that span does not record (tracing off).
func StartProjection(ctx context.Context, tracerName, name, tenant string, entries int) (context.Context, trace.Span) {
	parent := trace.SpanFromContext(ctx)
	if !parent.IsRecording() {
		return ctx, nil
	}
	return parent.TracerProvider().Tracer(tracerName).Start(ctx, "uno.projection.inline", trace.WithAttributes(
		attribute.String("uno.projection", name), attribute.String("uno.tenant", tenant), attribute.Int("uno.entries", entries)))
}

// End ends span (nil: none), recording whether err is set (never its
// text: a projection's error may quote a value).
func End(span trace.Span, err error) {
	if span == nil {
		return
	}
	if err != nil {
		span.SetStatus(codes.Error, "fold failed")
	}
	span.End()
}

// Of is the traceparent of ctx's span, kept with the entries it appends,
// when that span records; nil (SQL NULL) otherwise.
func Of(ctx context.Context) any {
	if !trace.SpanFromContext(ctx).IsRecording() {
		return nil
	}
	c := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(ctx, c)
	return c["traceparent"]
}

// StartAsync starts the span of an async projection's fold of chs, a new
// root linked to the spans of the appends of chs that kept one, whose
// traceparents traces reads (from the log's entries). It returns ctx
// unchanged and a nil span when the span does not record.
func StartAsync(ctx context.Context, tracer trace.Tracer, name, tenant string, chs []usync.Change,
	traces func(from, to uint64) iter.Seq2[string, error]) (context.Context, trace.Span, error) {
	from, to := chs[0].Seq, chs[len(chs)-1].Seq
	fctx, span := tracer.Start(ctx, "uno.projection.async", trace.WithNewRoot(), trace.WithAttributes(
		attribute.String("uno.projection", name), attribute.String("uno.tenant", tenant),
		attribute.Int64("uno.from", int64(from)), attribute.Int64("uno.to", int64(to))))
	if !span.IsRecording() {
		return ctx, nil, nil
	}
	for tp, err := range traces(from, to) {
		if err != nil {
			span.End()
			return nil, nil, fmt.Errorf("projection %s: read trace context: %w", name, err)
		}
		Link(span, tp)
	}
	return fctx, span, nil
}

// Link links span to the span of traceparent (a malformed one is
// skipped).
func Link(span trace.Span, traceparent string) {
	ctx := propagation.TraceContext{}.Extract(context.Background(), propagation.MapCarrier{"traceparent": traceparent})
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		span.AddLink(trace.Link{SpanContext: sc})
	}
}
