package e2e

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/unosync/uno/client"
	"github.com/unosync/uno/crdt"
	"github.com/unosync/uno/server"
	"github.com/unosync/uno/server/sqlitelog"
	usync "github.com/unosync/uno/sync"
)

// tracedServer starts a server whose log folds an inline projection,
// tracing to tp.
func tracedServer(t *testing.T, tp trace.TracerProvider) *env {
	t.Helper()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "server.db")
	p := sqlitelog.Projection{
		Name:   "counts",
		Tables: []sqlitelog.Table{{Name: "counts", Columns: "tenant TEXT NOT NULL, n INTEGER NOT NULL, PRIMARY KEY (tenant)"}},
		Fold: func(ctx context.Context, tx *sql.Tx, tenant string, chs []usync.Change) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO counts (tenant, n) VALUES (?, ?) ON CONFLICT (tenant) DO UPDATE SET n = n + excluded.n`, tenant, len(chs))
			return err
		},
	}
	async := p
	async.Name, async.Async = "async_counts", true
	async.Tables = []sqlitelog.Table{{Name: "async_counts", Columns: p.Tables[0].Columns}}
	async.Fold = func(ctx context.Context, tx *sql.Tx, tenant string, chs []usync.Change) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO async_counts (tenant, n) VALUES (?, ?) ON CONFLICT (tenant) DO UPDATE SET n = n + excluded.n`, tenant, len(chs))
		return err
	}
	if err := sqlitelog.SetupProjections(ctx, path, p, async); err != nil {
		t.Fatal(err)
	}
	l, err := sqlitelog.Open(ctx, path, &sqlitelog.Options{Projections: []sqlitelog.Projection{p, async}, TracerProvider: tp})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return startServerWith(t, server.Config{Log: l, TracerProvider: tp})
}

func tracedClient(t *testing.T, e *env, name string, tp trace.TracerProvider) *client.Client {
	t.Helper()
	c, err := client.Open(context.Background(), client.Config{
		Path: filepath.Join(t.TempDir(), name+".db"), Server: e.url, Token: e.auth.Token,
		BackoffMin: 20 * time.Millisecond, BackoffMax: time.Second, TracerProvider: tp,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// waitSpan polls exp until a span named name is there.
func waitSpan(t *testing.T, exp *tracetest.InMemoryExporter, name string) tracetest.SpanStub {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		for _, s := range exp.GetSpans() {
			if s.Name == name {
				return s
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no span %s in %d spans: %v", name, len(exp.GetSpans()), spanNames(exp.GetSpans()))
	return tracetest.SpanStub{}
}

func spanNames(ss tracetest.SpanStubs) []string {
	var n []string
	for _, s := range ss {
		n = append(n, s.Name)
	}
	return n
}

// A write on client A, its push, the server's append, the inline
// projection, the fan-out to client B's session and B's apply form one
// trace, each span the child of the one before; no span carries a
// written value.
func TestTrace_WriteToEveryReplicaIsOneTrace(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })

	e := tracedServer(t, tp)
	a := tracedClient(t, e, "a", tp)
	b := tracedClient(t, e, "b", tp)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := b.Sync(ctx); err != nil { // B's session is open before A writes
		t.Fatal(err)
	}
	const secret, secretCount = "zebra-quartz-secret-value", 987654321
	if err := a.Collection("todos").Put(ctx, "r1", map[string]any{"title": secret, "note": secret + "-2"}); err != nil {
		t.Fatal(err)
	}
	if err := a.Collection("todos").Increment(ctx, "r1", "votes", secretCount); err != nil {
		t.Fatal(err)
	}
	if err := a.Sync(ctx); err != nil {
		t.Fatal(err)
	}

	apply := waitSpan(t, exp, "uno.client.apply")
	spans := exp.GetSpans()
	byID := map[trace.SpanID]tracetest.SpanStub{}
	for _, s := range spans {
		byID[s.SpanContext.SpanID()] = s
	}
	// Walk from B's apply up to the root: the chain must be exactly this.
	want := []string{"uno.client.apply", "uno.server.fanout", "uno.log.append", "uno.server.push", "uno.client.push", "uno.client.tx"}
	var chain []string
	for s, ok := apply, true; ok; s, ok = byID[s.Parent.SpanID()] {
		chain = append(chain, s.Name)
		if s.SpanContext.TraceID() != apply.SpanContext.TraceID() {
			t.Errorf("span %s is in trace %s, B's apply in %s", s.Name, s.SpanContext.TraceID(), apply.SpanContext.TraceID())
		}
	}
	if strings.Join(chain, " < ") != strings.Join(want, " < ") {
		t.Fatalf("parent chain from B's apply: %v, want %v", chain, want)
	}
	// The inline projection's span is the append's child. (The two
	// writes may go in two pushes, so two traces: take the one of B's
	// apply.)
	var proj tracetest.SpanStub
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		for _, s := range exp.GetSpans() {
			if s.Name == "uno.projection.inline" && s.SpanContext.TraceID() == apply.SpanContext.TraceID() {
				proj = s
			}
		}
		if proj.Name != "" {
			break
		}
	}
	for _, s := range exp.GetSpans() {
		byID[s.SpanContext.SpanID()] = s
	}
	parent, ok := byID[proj.Parent.SpanID()]
	if !ok || parent.Name != "uno.log.append" || proj.SpanContext.TraceID() != apply.SpanContext.TraceID() {
		t.Errorf("inline projection's parent: %q (in the trace: %v), want uno.log.append", parent.Name, proj.SpanContext.TraceID() == apply.SpanContext.TraceID())
	}

	// The async projection's fold links to the append's span.
	var appendSC trace.SpanContext
	for s, ok := apply, true; ok; s, ok = byID[s.Parent.SpanID()] {
		if s.Name == "uno.log.append" {
			appendSC = s.SpanContext
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	linked := false
	for !linked && time.Now().Before(deadline) {
		for _, s := range exp.GetSpans() {
			if s.Name != "uno.projection.async" {
				continue
			}
			for _, l := range s.Links {
				linked = linked || l.SpanContext.SpanID() == appendSC.SpanID() && l.SpanContext.TraceID() == appendSC.TraceID()
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !linked {
		t.Errorf("no uno.projection.async span links to the append span %v: %v", appendSC.SpanID(), spanNames(exp.GetSpans()))
	}

	// The append carries tenant, collections and seqs.
	var appendSpan tracetest.SpanStub
	for s, ok := apply, true; ok; s, ok = byID[s.Parent.SpanID()] {
		if s.Name == "uno.log.append" {
			appendSpan = s
		}
	}
	attrs := map[string]string{}
	for _, kv := range appendSpan.Attributes {
		attrs[string(kv.Key)] = kv.Value.String()
	}
	if attrs["uno.tenant"] != "dev" || attrs["uno.collections"] != `["todos"]` || attrs["uno.seqs"] == "" || attrs["uno.seqs"] == "[]" {
		t.Errorf("append span attributes %v: want tenant dev, collections [todos], seqs", attrs)
	}

	// No attribute, event or status anywhere carries a written value.
	for _, s := range exp.GetSpans() {
		texts := []string{s.Name, s.Status.Description}
		for _, kv := range s.Attributes {
			texts = append(texts, kv.Value.String())
		}
		for _, ev := range s.Events {
			texts = append(texts, ev.Name)
			for _, kv := range ev.Attributes {
				texts = append(texts, kv.Value.String())
			}
		}
		for _, x := range texts {
			if strings.Contains(x, "zebra") || strings.Contains(x, "987654321") {
				t.Errorf("span %s carries a written value: %q", s.Name, x)
			}
		}
	}
}

// holdingLog returns from each Append only once hold reports true (or
// its deadline passes): a session's fan-out of the entries then always
// runs before the append's caller goes on.
type holdingLog struct {
	*sqlitelog.Log
	hold func() bool
}

func (l holdingLog) Append(ctx context.Context, tenant string, txs []crdt.Tx) ([]uint64, error) {
	seqs, err := l.Log.Append(ctx, tenant, txs)
	for deadline := time.Now().Add(30 * time.Second); err == nil && !l.hold() && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	return seqs, err
}

// When another session delivers an entry before its append returns to
// the pushing session (which a busy machine does now and then), the
// delivery is still traced and measured: the server notes the entries
// as the log numbers them, before they can be read.
func TestTrace_FanoutBeforeTheAppendReturnsIsTraced(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	inner, err := sqlitelog.Open(context.Background(), filepath.Join(t.TempDir(), "server.db"), &sqlitelog.Options{TracerProvider: tp})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { inner.Close() })
	var b *client.Client
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	hl := holdingLog{Log: inner, hold: func() bool {
		_, err := b.Collection("todos").Get(ctx, "r1")
		return err == nil
	}}
	e := startServerWith(t, server.Config{Log: hl, TracerProvider: tp})
	a := tracedClient(t, e, "a", tp)
	b = tracedClient(t, e, "b", tp)
	if err := b.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if err := a.Collection("todos").Put(ctx, "r1", map[string]any{"title": "x"}); err != nil {
		t.Fatal(err)
	}
	if err := a.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	apply := waitSpan(t, exp, "uno.client.apply")
	byID := map[trace.SpanID]tracetest.SpanStub{}
	for _, s := range exp.GetSpans() {
		byID[s.SpanContext.SpanID()] = s
	}
	var chain []string
	for s, ok := apply, true; ok; s, ok = byID[s.Parent.SpanID()] {
		chain = append(chain, s.Name)
	}
	want := []string{"uno.client.apply", "uno.server.fanout", "uno.log.append", "uno.server.push", "uno.client.push", "uno.client.tx"}
	if strings.Join(chain, " < ") != strings.Join(want, " < ") {
		t.Errorf("parent chain from B's apply: %v, want %v", chain, want)
	}
	mfs, err := e.server.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var delivered uint64
	for _, mf := range mfs {
		if mf.GetName() == "uno_delivery_seconds" {
			for _, m := range mf.GetMetric() {
				delivered += m.GetHistogram().GetSampleCount()
			}
		}
	}
	if delivered == 0 {
		t.Error("uno_delivery_seconds measured no delivery")
	}
}

// A push with a malformed or oversized trace context, over a real
// socket, is appended and acknowledged; its span is a new root and the
// metric counts it.
func TestTrace_MalformedTraceparentIsIgnored(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	e := tracedServer(t, tp)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	codec, err := usync.NewCodec(usync.CodecConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer codec.Close()
	ws, _, err := websocket.Dial(ctx, e.url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	send := func(m usync.Message) {
		t.Helper()
		b, err := codec.Encode(m)
		if err != nil {
			t.Fatal(err)
		}
		if err := ws.Write(ctx, websocket.MessageBinary, b); err != nil {
			t.Fatal(err)
		}
	}
	recv := func() usync.Message {
		t.Helper()
		_, b, err := ws.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		m, err := codec.Decode(b)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	site := crdt.SiteID{7, 7, 7}
	send(&usync.Hello{Versions: usync.Versions, Site: site, Token: e.auth.Token, Credits: 4})
	if w, ok := recv().(*usync.Welcome); !ok || w.Version < usync.VersionTrace {
		t.Fatalf("want a Welcome of version %d or later, got %+v", usync.VersionTrace, w)
	}
	bad := []string{"not-a-traceparent", "00-" + strings.Repeat("a", 32) + "-" + strings.Repeat("b", 16) + "-01" + strings.Repeat("x", 200), "00-00000000000000000000000000000000-0000000000000000-01"}
	for i, traceparent := range bad {
		seq := uint64(i + 1)
		send(&usync.Push{Txs: []crdt.Tx{tx(site, seq)}, Trace: traceparent})
		for {
			m := recv()
			if ack, ok := m.(*usync.Ack); ok {
				if ack.HighWater != seq {
					t.Fatalf("push %d (%q): Ack %+v", seq, traceparent, ack)
				}
				break
			}
			if _, ok := m.(*usync.ErrorMessage); ok {
				t.Fatalf("push with trace %q: %+v", traceparent, m)
			}
		}
	}
	var roots int
	for _, s := range exp.GetSpans() {
		if s.Name == "uno.server.push" {
			if s.Parent.IsValid() {
				t.Errorf("push span with a malformed trace context has parent %v", s.Parent)
			}
			roots++
		}
	}
	if roots != len(bad) {
		t.Errorf("%d push spans, want %d", roots, len(bad))
	}
	_, body := httpGet(t, e.http+"/metrics", "")
	if !strings.Contains(body, "uno_trace_context_malformed_total 3") {
		t.Errorf("metrics do not count 3 malformed trace contexts:\n%s", grepLines(body, "uno_trace"))
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
