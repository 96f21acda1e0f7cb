package e2e

import (
	"context"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	gosync "sync"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/unosync/uno/client"
)

// stages are the spans of one write's trace, in the order they start.
var stages = []string{"uno.client.tx", "uno.client.push", "uno.server.push", "uno.log.append", "uno.server.fanout", "uno.client.apply"}

// BenchmarkPacedStages breaks the paced write → Watch latency down by the
// spans of each write's trace: one writer Puts at 50 Hz, one receiver
// watches, both relaxed, the server's log at sync=FULL. It reports, for
// each stage, the p50 and p99 of how long after the previous stage's
// start it started ("-wait") and how long it took, in µs: where the
// time of the paced latency goes.
//
//	go test ./internal/e2e -run '^$' -bench PacedStages -benchtime 1x
func BenchmarkPacedStages(b *testing.B) {
	ctx := context.Background()
	const writes = 250
	for range b.N {
		exp := &spanLog{spans: make([]sdktrace.ReadOnlySpan, 0, 8*writes)}
		tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
		base, token := benchServer(b, tp)
		url := "ws" + strings.TrimPrefix(base, "http") + "/v1/sync"
		open := func(name string) *client.Client {
			c, err := client.Open(ctx, client.Config{Path: filepath.Join(b.TempDir(), name+".db"), Server: url, Token: token,
				TracerProvider: tp, Durability: client.DurabilityRelaxed})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { c.Close() })
			return c
		}
		w, r := open("writer"), open("receiver")
		watch, err := r.Collection("items").Watch(ctx, client.Query{})
		if err != nil {
			b.Fatal(err)
		}
		<-watch.C
		got := make(chan struct{})
		go func() {
			for docs := range watch.C {
				if len(docs) > 0 && string(docs[0].Fields["seq"]) == strconv.Itoa(writes-1) {
					close(got)
					return
				}
			}
		}()
		tick := time.NewTicker(20 * time.Millisecond)
		for i := range writes {
			<-tick.C
			if err := w.Collection("items").Put(ctx, "x", map[string]any{"seq": i}); err != nil {
				b.Fatal(err)
			}
		}
		tick.Stop()
		select {
		case <-got:
		case <-time.After(time.Minute):
			b.Fatal("the receiver never saw the last write")
		}
		watch.Close()
		waits, durs, total := map[string][]float64{}, map[string][]float64{}, []float64(nil)
		byTrace := map[trace.TraceID]map[string]tracetest.SpanStub{}
		for _, s := range exp.stubs() {
			m := byTrace[s.SpanContext.TraceID()]
			if m == nil {
				m = map[string]tracetest.SpanStub{}
				byTrace[s.SpanContext.TraceID()] = m
			}
			m[s.Name] = s
		}
		for _, m := range byTrace {
			complete := true
			for _, st := range stages {
				_, ok := m[st]
				complete = complete && ok
			}
			if !complete {
				continue // the apply of a write another one superseded, or a trace still open
			}
			prev := m[stages[0]].StartTime
			for _, st := range stages {
				s := m[st]
				waits[st] = append(waits[st], float64(s.StartTime.Sub(prev).Microseconds()))
				durs[st] = append(durs[st], float64(s.EndTime.Sub(s.StartTime).Microseconds()))
				prev = s.StartTime
			}
			total = append(total, float64(m["uno.client.apply"].EndTime.Sub(m["uno.client.tx"].StartTime).Microseconds()))
		}
		if len(total) < writes/2 {
			b.Fatalf("%d complete traces of %d writes", len(total), writes)
		}
		for _, st := range stages {
			name := st[len("uno."):]
			if st != stages[0] {
				b.ReportMetric(quantile(waits[st], 0.5), name+"-wait-p50-µs")
				b.ReportMetric(quantile(waits[st], 0.99), name+"-wait-p99-µs")
			}
			b.ReportMetric(quantile(durs[st], 0.5), name+"-p50-µs")
			b.ReportMetric(quantile(durs[st], 0.99), name+"-p99-µs")
		}
		b.ReportMetric(quantile(total, 0.5), "total-p50-µs")
		b.ReportMetric(quantile(total, 0.99), "total-p99-µs")
	}
}

// spanLog keeps the spans ended, in memory it has from the start, and
// makes stubs of them only when asked. The stages are timed by the spans,
// so ending one must cost no more than an append: with
// tracetest.InMemoryExporter, which makes a stub of each span as it ends
// and appends it to a growing slice, the writer's Put (which ends its
// span before it wakes the push) took 1–4 ms to end it a few times a
// run, and those set the p99 of the push's wait.
type spanLog struct {
	mu    gosync.Mutex
	spans []sdktrace.ReadOnlySpan
}

func (l *spanLog) ExportSpans(_ context.Context, spans []sdktrace.ReadOnlySpan) error {
	l.mu.Lock()
	l.spans = append(l.spans, spans...)
	l.mu.Unlock()
	return nil
}

func (l *spanLog) Shutdown(context.Context) error { return nil }

func (l *spanLog) stubs() tracetest.SpanStubs {
	l.mu.Lock()
	defer l.mu.Unlock()
	return tracetest.SpanStubsFromReadOnlySpans(l.spans)
}

// quantile is the q-quantile of xs (nearest rank).
func quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	xs = slices.Clone(xs)
	slices.Sort(xs)
	return xs[int(q*float64(len(xs)-1))]
}
