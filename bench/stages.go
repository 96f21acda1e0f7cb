package bench

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/unosync/uno/client"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	oteltrace "go.opentelemetry.io/otel/trace"
)

// A paced write's stages, in the order they start: the spans of its
// trace (server/doc.go lists them), then the receiver's Watch showing it.
var stages = []struct{ span, short, title string }{
	{"uno.client.tx", "tx", "the writer's commit (`Put`)"},
	{"uno.client.push", "push", "the writer's push"},
	{"uno.server.push", "server", "the server's handling of the push"},
	{"uno.log.append", "append", "the log's append, fsync'd (inside the handling)"},
	{"uno.server.fanout", "fanout", "the fan-out to the receiver"},
	{"uno.client.apply", "apply", "the receiver's apply"},
	{"", "watch", "the receiver's `Watch` shows it (its update from the applied row)"},
}

// PacedStages is PacedWatch with one receiver at relaxed durability and
// every part traced: it breaks each write's latency down by the spans of
// its trace. For each stage it reports when it started after the Put
// started ("<stage>-at-p50-µs", "-at-p99-µs") and how long it took
// ("<stage>-p50-µs", "-p99-µs"); the watch stage's start is the
// latency. Tracing costs a little at each stage, so the latency is not
// PacedWatch's: the breakdown says where the time goes.
//
//	go test ./bench -run '^$' -bench PacedStages -benchtime 1x
func PacedStages(p Paced) func(B) {
	return func(b B) { pacedWatch(p, client.DurabilityRelaxed, &stageTrace{})(b) } // each run its own
}

// stageTrace collects the stages of a paced run's writes, round by round.
type stageTrace struct {
	spans *spanLog
	at    map[string][]float64 // µs after the Put's start, per stage
	took  map[string][]float64 // µs, per stage
}

// start begins a round of writes and returns the tracer provider its
// server and clients use.
func (st *stageTrace) start(writes int) oteltrace.TracerProvider {
	st.spans = &spanLog{spans: make([]sdktrace.ReadOnlySpan, 0, 8*(writes+1))}
	return sdktrace.NewTracerProvider(sdktrace.WithSyncer(st.spans))
}

// round takes the round's traces apart: a trace is the write whose Put
// started last before its commit did (sent), and watched says when the
// first receiver's Watch showed each write (0: never, another
// superseded it). A write whose trace lacks a stage (its apply was
// another's, a batch of two) is left out.
func (st *stageTrace) round(sent, watched []atomic.Int64) error {
	if st.at == nil {
		st.at, st.took = map[string][]float64{}, map[string][]float64{}
	}
	byTrace := map[oteltrace.TraceID]map[string]sdktrace.ReadOnlySpan{}
	for _, s := range st.spans.all() {
		m := byTrace[s.SpanContext().TraceID()]
		if m == nil {
			m = map[string]sdktrace.ReadOnlySpan{}
			byTrace[s.SpanContext().TraceID()] = m
		}
		m[s.Name()] = s
	}
	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
	complete := 0
	for _, m := range byTrace {
		tx, ok := m[stages[0].span]
		if !ok {
			continue
		}
		// The Put of seq starts just before its commit's span does.
		seq := sort.Search(len(sent), func(i int) bool { return sent[i].Load() > tx.StartTime().UnixNano() }) - 1
		if seq < 0 || watched[seq].Load() == 0 {
			continue // the untimed write, or one the Watch skipped
		}
		put := time.Unix(0, sent[seq].Load())
		var at, took []float64
		for _, s := range stages[:len(stages)-1] {
			span, ok := m[s.span]
			if !ok {
				break
			}
			at = append(at, us(span.StartTime().Sub(put)))
			took = append(took, us(span.EndTime().Sub(span.StartTime())))
		}
		if len(at) < len(stages)-1 {
			continue
		}
		apply := m[stages[len(stages)-2].span]
		shown := time.Unix(0, watched[seq].Load())
		at = append(at, us(shown.Sub(put)))
		took = append(took, us(shown.Sub(apply.EndTime())))
		for i, s := range stages {
			st.at[s.short] = append(st.at[s.short], at[i])
			st.took[s.short] = append(st.took[s.short], took[i])
		}
		complete++
	}
	if complete < len(sent)/2 {
		return fmt.Errorf("stages: %d complete traces of %d writes", complete, len(sent))
	}
	return nil
}

// report reports each stage's p50 and p99 over the rounds so far.
func (st *stageTrace) report(b B) {
	for _, s := range stages {
		b.ReportMetric(quantile(st.at[s.short], 0.50), s.short+"-at-p50-µs")
		b.ReportMetric(quantile(st.at[s.short], 0.99), s.short+"-at-p99-µs")
		b.ReportMetric(quantile(st.took[s.short], 0.50), s.short+"-p50-µs")
		b.ReportMetric(quantile(st.took[s.short], 0.99), s.short+"-p99-µs")
	}
}

// spanLog keeps the spans ended, in memory it has from the start. The
// stages are timed by the spans, so ending one must cost no more than an
// append: with tracetest.InMemoryExporter, which makes a stub of each
// span as it ends and appends it to a growing slice, the writer's Put
// (which ends its span before it wakes the push) took 1–4 ms to end it a
// few times a run, and those set the p99 of the push's start.
type spanLog struct {
	mu    sync.Mutex
	spans []sdktrace.ReadOnlySpan
}

func (l *spanLog) ExportSpans(_ context.Context, spans []sdktrace.ReadOnlySpan) error {
	l.mu.Lock()
	l.spans = append(l.spans, spans...)
	l.mu.Unlock()
	return nil
}

func (l *spanLog) Shutdown(context.Context) error { return nil }

func (l *spanLog) all() []sdktrace.ReadOnlySpan {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.spans)
}

// quantile is the q-quantile of xs (nearest rank), 0 for none.
func quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	xs = slices.Clone(xs)
	slices.Sort(xs)
	return xs[int(q*float64(len(xs)-1))]
}
