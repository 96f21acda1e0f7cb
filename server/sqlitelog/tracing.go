package sqlitelog

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

const tracerName = "github.com/unosync/uno/server/sqlitelog"

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

// withSpanOf returns ctx carrying the span of from when that span
// records (a group commit runs on its own context, but each request's
// work belongs to its caller's trace); ctx itself otherwise.
func withSpanOf(ctx, from context.Context) context.Context {
	if span := trace.SpanFromContext(from); span.IsRecording() {
		return trace.ContextWithSpan(ctx, span)
	}
	return ctx
}
