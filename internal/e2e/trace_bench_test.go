package e2e

import (
	"context"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/coder/websocket"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/unosync/uno/client"
	"github.com/unosync/uno/crdt"
	"github.com/unosync/uno/server"
	"github.com/unosync/uno/server/sqlitelog"
	usync "github.com/unosync/uno/sync"
	"github.com/unosync/uno/tenancy"
)

// pushRig is a server on a real socket and a raw session pushing to it.
type pushRig struct {
	ws    *websocket.Conn
	codec *usync.Codec
	site  crdt.SiteID
	seq   uint64
	trace string
}

// benchServer starts a server on an embedded log and a loopback socket,
// tracing to tp; it returns its base URL and development token.
func benchServer(tb testing.TB, tp trace.TracerProvider) (string, string) {
	tb.Helper()
	ctx := context.Background()
	l, err := sqlitelog.Open(ctx, filepath.Join(tb.TempDir(), "server.db"), &sqlitelog.Options{TracerProvider: tp})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { l.Close() })
	auth, err := tenancy.NewDevAuth("dev")
	if err != nil {
		tb.Fatal(err)
	}
	srv, err := server.New(server.Config{Log: l, Auth: auth, TracerProvider: tp})
	if err != nil {
		tb.Fatal(err)
	}
	hts := httptest.NewServer(srv)
	tb.Cleanup(func() { hts.Close(); srv.Close() })
	return hts.URL, auth.Token
}

func newPushRig(tb testing.TB, tp trace.TracerProvider) *pushRig {
	tb.Helper()
	ctx := context.Background()
	hs, token := benchServer(tb, tp)
	codec, err := usync.NewCodec(usync.CodecConfig{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(codec.Close)
	ws, _, err := websocket.Dial(ctx, "ws://"+strings.TrimPrefix(hs, "http://")+"/v1/sync", nil)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ws.CloseNow() })
	r := &pushRig{ws: ws, codec: codec, site: crdt.SiteID{9, 9, 9},
		trace: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}
	r.send(tb, &usync.Hello{Versions: usync.Versions, Site: r.site, Token: token, Credits: 1})
	if _, ok := r.recv(tb).(*usync.Welcome); !ok {
		tb.Fatal("no Welcome")
	}
	return r
}

func (r *pushRig) send(tb testing.TB, m usync.Message) {
	b, err := r.codec.Encode(m)
	if err != nil {
		tb.Fatal(err)
	}
	if err := r.ws.Write(context.Background(), websocket.MessageBinary, b); err != nil {
		tb.Fatal(err)
	}
}

func (r *pushRig) recv(tb testing.TB) usync.Message {
	_, b, err := r.ws.Read(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	m, err := r.codec.Decode(b)
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

// push pushes one transaction, with the trace context of a traced
// client, and waits for its Ack.
func (r *pushRig) push(tb testing.TB) {
	r.seq++
	r.send(tb, &usync.Push{Txs: []crdt.Tx{tx(r.site, r.seq)}, Trace: r.trace})
	for {
		if ack, ok := r.recv(tb).(*usync.Ack); ok {
			if ack.HighWater != r.seq {
				tb.Fatalf("Ack %+v for seq %d", ack, r.seq)
			}
			return
		}
	}
}

// BenchmarkTrace_PushRoundTrip pushes a traced transaction over a real
// socket and waits for its Ack: tracing off (a no-op provider) against
// on (the SDK, every span recorded into memory).
func BenchmarkTrace_PushRoundTrip(b *testing.B) {
	for _, bb := range []struct {
		name string
		tp   func() trace.TracerProvider
	}{
		{"off", func() trace.TracerProvider { return noop.NewTracerProvider() }},
		{"on", func() trace.TracerProvider {
			return sdktrace.NewTracerProvider(sdktrace.WithSyncer(tracetest.NewInMemoryExporter()))
		}},
	} {
		b.Run(bb.name, func(b *testing.B) {
			r := newPushRig(b, bb.tp())
			b.ReportAllocs()
			for b.Loop() {
				r.push(b)
			}
		})
	}
}

// BenchmarkTrace_ClientWrite writes one row on a client and waits until
// the server has acknowledged it (Put, then Sync): the client's spans and
// the server's, tracing off against on, for both.
func BenchmarkTrace_ClientWrite(b *testing.B) {
	for _, bb := range []struct {
		name string
		tp   func() trace.TracerProvider
	}{
		{"off", func() trace.TracerProvider { return noop.NewTracerProvider() }},
		{"on", func() trace.TracerProvider {
			return sdktrace.NewTracerProvider(sdktrace.WithSyncer(tracetest.NewInMemoryExporter()))
		}},
	} {
		b.Run(bb.name, func(b *testing.B) {
			tp := bb.tp()
			hs, token := benchServer(b, tp)
			ctx := context.Background()
			c, err := client.Open(ctx, client.Config{Path: filepath.Join(b.TempDir(), "a.db"), Server: "ws://" + strings.TrimPrefix(hs, "http://") + "/v1/sync",
				Token: token, TracerProvider: tp, Durability: client.DurabilityRelaxed})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { c.Close() })
			todos := c.Collection("todos")
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				i++
				if err := todos.Put(ctx, "r"+strconv.Itoa(i), map[string]any{"title": "x"}); err != nil {
					b.Fatal(err)
				}
				if err := c.Sync(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
