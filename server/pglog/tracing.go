package pglog

import (
	"context"
	"iter"

	"github.com/jackc/pgx/v5"
	"github.com/unosync/uno/server/internal/logtrace"
	usync "github.com/unosync/uno/sync"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"
)

const tracerName = "github.com/unosync/uno/server/pglog"

// startAsync starts the span of an async projection's fold of chs (see
// logtrace.StartAsync), reading the entries' traceparents in tx. The
// spans go to the otel global tracer provider (a no-op unless one is
// installed).
func startAsync(ctx context.Context, tx pgx.Tx, name, tenant string, chs []usync.Change) (context.Context, trace.Span, error) {
	return logtrace.StartAsync(ctx, otel.GetTracerProvider().Tracer(tracerName), name, tenant, chs, func(from, to uint64) iter.Seq2[string, error] {
		return func(yield func(string, error) bool) {
			rows, err := tx.Query(ctx, `SELECT trace FROM uno_events WHERE tenant_id = $1 AND seq >= $2 AND seq <= $3 AND trace IS NOT NULL`,
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
