package pglog_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/unosync/uno/crdt"
	"github.com/unosync/uno/internal/pgtest"
	"github.com/unosync/uno/server/pglog"
)

// An entry appended in a recording span keeps its trace context, and the
// async projection's fold of it links to that span; an entry appended
// without one keeps none.
func TestPGTracing_AsyncProjectionLinksToTheAppend(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	prev := otel.GetTracerProvider()
	otel.SetTracerProvider(tp)
	t.Cleanup(func() { otel.SetTracerProvider(prev); tp.Shutdown(context.Background()) })

	ctx := context.Background()
	admin, p := seenProjection(t)
	l, err := pglog.Open(ctx, pgtest.NewAppRole(t, admin), p)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	tx := func(seq uint64) crdt.Tx {
		return crdt.Tx{Site: crdt.SiteID{1}, Seq: seq, Time: crdt.Timestamp(seq), Ops: []crdt.Op{{Type: crdt.OpSet, Kind: crdt.KindRegister, Collection: "c", Row: "r", Field: "f", CL: 1, Value: []byte(`1`)}}}
	}
	if _, err := l.Append(ctx, "t1", []crdt.Tx{tx(1)}); err != nil { // untraced
		t.Fatal(err)
	}
	actx, span := tp.Tracer("test").Start(ctx, "append")
	if _, err := l.Append(actx, "t1", []crdt.Tx{tx(2)}); err != nil {
		t.Fatal(err)
	}
	span.End()
	want := span.SpanContext()

	deadline := time.Now().Add(30 * time.Second)
	for {
		var links, folds int
		for _, s := range exp.GetSpans() {
			if s.Name != "uno.projection.async" {
				continue
			}
			folds++
			for _, ln := range s.Links {
				if ln.SpanContext.TraceID() == want.TraceID() && ln.SpanContext.SpanID() == want.SpanID() {
					links++
				} else {
					t.Errorf("async fold links to %v, which no traced append made", ln.SpanContext.SpanID())
				}
			}
		}
		if links == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d async fold spans, %d links to the traced append, want 1", folds, links)
		}
		time.Sleep(20 * time.Millisecond)
	}

	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var traced, untraced *string
	if err := conn.QueryRow(ctx, `SELECT (SELECT trace FROM uno_events WHERE tenant_id = 't1' AND seq = 2), (SELECT trace FROM uno_events WHERE tenant_id = 't1' AND seq = 1)`).Scan(&traced, &untraced); err != nil {
		t.Fatal(err)
	}
	if traced == nil || untraced != nil {
		t.Errorf("stored trace contexts: traced entry %v, untraced entry %v; want one and NULL", traced, untraced)
	}
}
