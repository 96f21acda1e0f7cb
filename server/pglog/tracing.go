package pglog

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	usync "github.com/unosync/uno/sync"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

const tracerName = "github.com/unosync/uno/server/pglog"

// startProjection starts the span of folding an inline projection, a
// child of the append's span in ctx; ctx unchanged and a nil span when
// that span does not record (tracing off).
func startProjection(ctx context.Context, name, tenant string, entries int) (context.Context, trace.Span) {
	parent := trace.SpanFromContext(ctx)
	if !parent.IsRecording() {
		return ctx, nil
	}
	return parent.TracerProvider().Tracer(tracerName).Start(ctx, "uno.projection.inline", trace.WithAttributes(
		attribute.String("uno.projection", name), attribute.String("uno.tenant", tenant), attribute.Int("uno.entries", entries)))
}

// endSpan ends span (nil: none), recording whether err is set (never its
// text: a projection's error may quote a value).
func endSpan(span trace.Span, err error) {
	if span == nil {
		return
	}
	if err != nil {
		span.SetStatus(codes.Error, "fold failed")
	}
	span.End()
}

// traceOf is the traceparent of ctx's span, kept with the entries it
// appends, when that span records; nil (SQL NULL) otherwise.
func traceOf(ctx context.Context) any {
	if !trace.SpanFromContext(ctx).IsRecording() {
		return nil
	}
	c := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(ctx, c)
	return c["traceparent"]
}

// startAsync starts the span of an async projection's fold of chs, a new
// root linked to the spans of the appends of the entries that kept one;
// ctx unchanged and a nil span when it does not record. The spans go to
// the otel global tracer provider (a no-op unless one is installed).
func startAsync(ctx context.Context, tx pgx.Tx, name, tenant string, chs []usync.Change) (context.Context, trace.Span, error) {
	fctx, span := otel.GetTracerProvider().Tracer(tracerName).Start(ctx, "uno.projection.async", trace.WithNewRoot(), trace.WithAttributes(
		attribute.String("uno.projection", name), attribute.String("uno.tenant", tenant),
		attribute.Int64("uno.from", int64(chs[0].Seq)), attribute.Int64("uno.to", int64(chs[len(chs)-1].Seq))))
	if !span.IsRecording() {
		return ctx, nil, nil
	}
	rows, err := tx.Query(ctx, `SELECT trace FROM uno_events WHERE tenant_id = $1 AND seq >= $2 AND seq <= $3 AND trace IS NOT NULL`,
		tenant, int64(chs[0].Seq), int64(chs[len(chs)-1].Seq))
	if err != nil {
		span.End()
		return nil, nil, fmt.Errorf("projection %s: read trace context: %w", name, err)
	}
	defer rows.Close()
	for rows.Next() {
		var tp string
		if err := rows.Scan(&tp); err != nil {
			span.End()
			return nil, nil, fmt.Errorf("projection %s: read trace context: %w", name, err)
		}
		sc := trace.SpanContextFromContext(propagation.TraceContext{}.Extract(context.Background(), propagation.MapCarrier{"traceparent": tp}))
		if sc.IsValid() {
			span.AddLink(trace.Link{SpanContext: sc})
		}
	}
	if err := rows.Err(); err != nil {
		span.End()
		return nil, nil, fmt.Errorf("projection %s: read trace context: %w", name, err)
	}
	return fctx, span, nil
}
