package e2e

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/unosync/uno/client"
)

// otlpReceiver is an OTLP/HTTP trace receiver: it decodes each export
// request and keeps the spans' trace IDs and names.
type otlpReceiver struct {
	mu    sync.Mutex
	spans map[string][]string // trace ID (hex) → span names
	bad   []string
}

func (r *otlpReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	b, err := io.ReadAll(req.Body)
	var m collectortrace.ExportTraceServiceRequest
	if err == nil {
		err = proto.Unmarshal(b, &m)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil || req.URL.Path != "/v1/traces" || req.Header.Get("Content-Type") != "application/x-protobuf" {
		r.bad = append(r.bad, req.URL.Path+" "+req.Header.Get("Content-Type"))
		http.Error(w, "bad export", http.StatusBadRequest)
		return
	}
	for _, rs := range m.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				id := hexOf(s.TraceId)
				r.spans[id] = append(r.spans[id], s.Name)
			}
		}
	}
	out, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.Write(out)
}

func (r *otlpReceiver) names(traceID string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.spans[traceID]...)
}

func hexOf(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}

// `uno serve` with OTEL_EXPORTER_OTLP_ENDPOINT set exports its spans over
// OTLP/HTTP, in the trace of the client's write; the batch is flushed at
// shutdown (the batching delay is far longer than the test).
func TestOtel_ServeExportsTheClientsTrace(t *testing.T) {
	rcv := &otlpReceiver{spans: map[string][]string{}}
	hs := httptest.NewServer(rcv)
	defer hs.Close()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", hs.URL)
	t.Setenv("OTEL_SERVICE_NAME", "uno-under-test")
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "600000")
	t.Setenv("OTEL_SDK_DISABLED", "")
	t.Setenv("OTEL_TRACES_EXPORTER", "")
	addr := freeAddr(t)
	p := startUno(t, addr, t.TempDir())

	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	defer tp.Shutdown(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := client.Open(ctx, client.Config{Path: filepath.Join(t.TempDir(), "a.db"), Server: "ws://" + addr + "/v1/sync",
		Token: p.token, TracerProvider: tp, BackoffMin: 20 * time.Millisecond, BackoffMax: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Collection("todos").Put(ctx, "r1", map[string]any{"title": "x"}); err != nil {
		t.Fatal(err)
	}
	if err := c.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	var traceID string
	for _, s := range exp.GetSpans() {
		if s.Name == "uno.client.tx" {
			traceID = s.SpanContext.TraceID().String()
		}
	}
	if traceID == "" {
		t.Fatalf("the client made no uno.client.tx span: %v", spanNames(exp.GetSpans()))
	}
	if got := rcv.names(traceID); len(got) != 0 {
		t.Fatalf("spans exported before shutdown despite a 10-minute batching delay: %v", got)
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if !p.wait(60 * time.Second) {
		t.Fatalf("uno serve did not stop\n%s", p.output())
	}
	got := rcv.names(traceID)
	want := map[string]bool{"uno.server.push": false, "uno.log.append": false}
	for _, n := range got {
		if _, ok := want[n]; ok {
			want[n] = true
		}
	}
	for n, ok := range want {
		if !ok {
			t.Errorf("span %s of trace %s not exported at shutdown; got %v (bad requests: %v)\n%s", n, traceID, got, rcv.bad, p.output())
		}
	}
}

// Without an endpoint (nor OTEL_TRACES_EXPORTER=otlp) nothing is
// exported, and OTEL_SDK_DISABLED=true wins over an endpoint.
func TestOtel_OffUnlessConfigured(t *testing.T) {
	for _, tt := range []struct {
		name     string
		endpoint bool
		disabled string
	}{{"no endpoint", false, ""}, {"disabled", true, "true"}} {
		t.Run(tt.name, func(t *testing.T) {
			rcv := &otlpReceiver{spans: map[string][]string{}}
			hs := httptest.NewServer(rcv)
			defer hs.Close()
			endpoint := ""
			if tt.endpoint {
				endpoint = hs.URL
			}
			t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
			t.Setenv("OTEL_SDK_DISABLED", tt.disabled)
			t.Setenv("OTEL_TRACES_EXPORTER", "")
			t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "10")
			addr := freeAddr(t)
			p := startUno(t, addr, t.TempDir())
			exp := tracetest.NewInMemoryExporter()
			tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
			defer tp.Shutdown(context.Background())
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			c, err := client.Open(ctx, client.Config{Path: filepath.Join(t.TempDir(), "a.db"), Server: "ws://" + addr + "/v1/sync",
				Token: p.token, TracerProvider: tp, BackoffMin: 20 * time.Millisecond, BackoffMax: time.Second})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if err := c.Collection("todos").Put(ctx, "r1", map[string]any{"title": "x"}); err != nil {
				t.Fatal(err)
			}
			if err := c.Sync(ctx); err != nil {
				t.Fatal(err)
			}
			p.cmd.Process.Signal(syscall.SIGTERM)
			if !p.wait(60 * time.Second) {
				t.Fatalf("uno serve did not stop\n%s", p.output())
			}
			rcv.mu.Lock()
			defer rcv.mu.Unlock()
			if len(rcv.spans) != 0 || len(rcv.bad) != 0 {
				t.Errorf("exported %v (bad %v), want nothing", rcv.spans, rcv.bad)
			}
		})
	}
}
