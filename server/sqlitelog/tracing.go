package sqlitelog

import (
	"context"
	"database/sql"
	"iter"

	"github.com/unosync/uno/server/internal/logtrace"
	usync "github.com/unosync/uno/sync"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"
)

const tracerName = "github.com/unosync/uno/server/sqlitelog"

// withSpanOf returns ctx carrying the span of from when that span
// records (a group commit runs on its own context, but each request's
// work belongs to its caller's trace); ctx itself otherwise.
func withSpanOf(ctx, from context.Context) context.Context {
	if span := trace.SpanFromContext(from); span.IsRecording() {
		return trace.ContextWithSpan(ctx, span)
	}
	return ctx
}

// asyncTracer returns the tracer of async projections' spans: tp's, or
// the otel global's for nil (which follows a provider installed later).
func asyncTracer(tp trace.TracerProvider) trace.Tracer {
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	return tp.Tracer(tracerName)
}

// startAsync starts the span of an async projection's fold of chs (see
// logtrace.StartAsync), reading the entries' traceparents in tx.
func (l *Log) startAsync(ctx context.Context, tx *sql.Tx, name, tenant string, chs []usync.Change) (context.Context, trace.Span, error) {
	return logtrace.StartAsync(ctx, l.tracer, name, tenant, chs, func(from, to uint64) iter.Seq2[string, error] {
		return func(yield func(string, error) bool) {
			rows, err := tx.QueryContext(ctx, `SELECT trace FROM events WHERE tenant = ? AND seq >= ? AND seq <= ? AND trace IS NOT NULL`,
				tenant, int64(from), int64(to))
			if err != nil {
				yield("", err)
				return
			}
			defer rows.Close()
			for rows.Next() {
				var tp string
				if err := rows.Scan(&tp); err != nil {
					yield("", err)
					return
				}
				if !yield(tp, nil) {
					return
				}
			}
			if err := rows.Err(); err != nil {
				yield("", err)
			}
		}
	})
}
