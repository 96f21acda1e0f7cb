package server

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/unosync/uno/crdt"
	usync "github.com/unosync/uno/sync"
)

// With a provider that does not record, what tracing adds to the push
// path (the push and append spans, the fan-out) allocates nothing.
func TestTracing_OffAllocatesNothing(t *testing.T) {
	tr := newTracing(noop.NewTracerProvider(), prometheus.NewRegistry())
	if tr.on {
		t.Fatal("a no-op provider turned tracing on")
	}
	c := &conn{s: &Server{tr: tr}, sess: usync.NewServerSession(usync.ServerConfig{}), tenant: "t"}
	ctx := context.Background()
	rd := usync.ServerReady{Append: []crdt.Tx{{Seq: 1}}, AppendTrace: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}
	chs := []usync.Change{{Seq: 1}, {Seq: 2}}
	seqs := []uint64{1}
	allocs := testing.AllocsPerRun(1000, func() {
		pctx, span := c.startPush(ctx, rd)
		actx, aspan := c.startAppend(pctx, rd.Append)
		_ = actx
		c.endAppend(aspan, seqs, nil)
		endSpan(span, nil)
		out, spans := c.fanout(ctx, chs)
		endSpans(spans, nil)
		_ = out
	})
	if allocs != 0 {
		t.Errorf("tracing off allocates %v times per push", allocs)
	}
}

// A recording provider turns tracing on.
func TestTracing_OnWithARecordingProvider(t *testing.T) {
	if tr := newTracing(sdktrace.NewTracerProvider(), prometheus.NewRegistry()); !tr.on {
		t.Error("a recording provider left tracing off")
	}
}
