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
	usync "github.com/unosync/uno/sync"
	"github.com/unosync/uno/tenancy"
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
	admin := pgtest.NewDatabase(t)
	if err := pglog.Migrate(ctx, admin, pglog.SchemaVersion); err != nil {
		t.Fatal(err)
	}
	reg, err := pglog.OpenRegistry(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	if err := reg.Create(ctx, tenancy.Tenant{ID: "t1"}); err != nil {
		t.Fatal(err)
	}
	p := pglog.Projection{Name: "p", Async: true,
		Tables: []pglog.ProjectionTable{{Name: "p_seen", Columns: "tenant_id text NOT NULL, seq bigint NOT NULL, PRIMARY KEY (tenant_id, seq)"}},
		Fold: func(ctx context.Context, tx pgx.Tx, tenant string, chs []usync.Change) error {
			for _, ch := range chs {
				if _, err := tx.Exec(ctx, `INSERT INTO p_seen VALUES ($1, $2)`, tenant, int64(ch.Seq)); err != nil {
					return err
				}
			}
			return nil
		}}
	if err := pglog.SetupProjections(ctx, admin, p); err != nil {
		t.Fatal(err)
	}
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
