package e2e

import (
	"context"
	"errors"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/klauspost/compress/zstd"
	"github.com/unosync/uno/client"
	"github.com/unosync/uno/crdt"
	"github.com/unosync/uno/server"
	usync "github.com/unosync/uno/sync"
)

func tx(site crdt.SiteID, seq uint64) crdt.Tx {
	return crdt.Tx{Site: site, Seq: seq, Time: crdt.MakeTimestamp(time.Now().UnixMilli(), uint16(seq)), Ops: []crdt.Op{
		{Type: crdt.OpIncrement, Kind: crdt.KindCounter, Collection: "c", Row: "r", Field: "n", CL: 1, P: seq},
	}}
}

// helloSite opens a raw session for a known site.
func helloSite(t *testing.T, ctx context.Context, e *env, site crdt.SiteID) *rawPeer {
	t.Helper()
	codec, _ := usync.NewCodec(usync.CodecConfig{})
	ws, _, err := websocket.Dial(ctx, e.url, nil)
	if err != nil {
		t.Fatal(err)
	}
	p := &rawPeer{ws: ws, codec: codec}
	p.send(t, ctx, &usync.Hello{Versions: usync.Versions, Site: site, Token: e.auth.Token})
	if _, ok := p.recv(t, ctx).(*usync.Welcome); !ok {
		t.Fatal("no Welcome")
	}
	return p
}

func nextOf[T usync.Message](t *testing.T, ctx context.Context, p *rawPeer) T {
	t.Helper()
	for {
		if m, ok := p.recv(t, ctx).(T); ok {
			return m
		}
	}
}

// Duplicate and replayed pushes have no second effect; a push with a gap
// is rejected with its code and appends nothing.
func TestProtocol_DuplicatesAndGaps(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	e := startServer(t)
	site := crdt.SiteID{7, 7}
	p := helloSite(t, ctx, e, site)
	p.send(t, ctx, &usync.Push{Txs: []crdt.Tx{tx(site, 1), tx(site, 2)}})
	if a := nextOf[*usync.Ack](t, ctx, p); a.HighWater != 2 {
		t.Fatalf("Ack %+v, want high-water 2", a)
	}
	// The same push again, then an overlapping one: acknowledged, not re-appended.
	p.send(t, ctx, &usync.Push{Txs: []crdt.Tx{tx(site, 1), tx(site, 2)}})
	if a := nextOf[*usync.Ack](t, ctx, p); a.HighWater != 2 || a.Seqs[0] != 0 || a.Seqs[1] != 0 {
		t.Fatalf("replayed push: Ack %+v, want high-water 2 and no new seqs", a)
	}
	// Replayed on a second connection of the same site.
	q := helloSite(t, ctx, e, site)
	q.send(t, ctx, &usync.Push{Txs: []crdt.Tx{tx(site, 2), tx(site, 3)}})
	if a := nextOf[*usync.Ack](t, ctx, q); a.HighWater != 3 || a.Seqs[0] != 0 || a.Seqs[1] != 3 {
		t.Fatalf("overlapping push: Ack %+v", a)
	}
	// A gap: seq 5 after 3.
	q.send(t, ctx, &usync.Push{Txs: []crdt.Tx{tx(site, 5)}})
	if r := nextOf[*usync.Reject](t, ctx, q); r.Code != usync.CodeGap || r.Seq != 5 {
		t.Fatalf("gap: Reject %+v, want CodeGap for seq 5", r)
	}
	if head, _ := e.log.Head(ctx, "dev"); head != 3 {
		t.Fatalf("log head %d, want 3: a duplicate or a gap was appended", head)
	}
}

// Hostile frames get a coded close and change nothing.
func TestProtocol_HostileFrames(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	e := startServer(t)
	enc, _ := zstd.NewWriter(nil)
	bomb := append([]byte{1}, enc.EncodeAll(make([]byte, 64<<20), nil)...)
	cases := map[string]struct {
		frame []byte
		code  usync.Code
	}{
		"junk":          {[]byte{0, 0xff, 0xfe, 0x01}, usync.CodeBadMessage},
		"unknown type":  {[]byte{0, 0x82, 0x18, 99, 0x80}, usync.CodeUnknownType},
		"unknown flags": {[]byte{0x80, 0x82, 0x01, 0x80}, usync.CodeBadMessage},
		"zstd bomb":     {bomb, usync.CodeTooLarge},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			ws, _, err := websocket.Dial(ctx, e.url, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer ws.CloseNow()
			if err := ws.Write(ctx, websocket.MessageBinary, c.frame); err != nil {
				t.Fatal(err)
			}
			// The server answers with an Error message, then closes with the code.
			for {
				_, b, err := ws.Read(ctx)
				if err != nil {
					if got := websocket.CloseStatus(err); got != server.CloseCode(c.code) {
						t.Fatalf("closed with %v (%v), want %v", got, err, server.CloseCode(c.code))
					}
					break
				}
				codec, _ := usync.NewCodec(usync.CodecConfig{})
				m, err := codec.Decode(b)
				if err != nil {
					t.Fatal(err)
				}
				if em, ok := m.(*usync.ErrorMessage); !ok || em.Code != c.code {
					t.Fatalf("got %T %+v, want an Error with %v", m, m, c.code)
				}
			}
		})
	}
	// An oversized frame is cut by the read limit before it is decoded.
	ws, _, err := websocket.Dial(ctx, e.url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	_ = ws.Write(ctx, websocket.MessageBinary, make([]byte, 5<<20))
	if _, _, err := ws.Read(ctx); err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("an oversized frame did not close the connection: %v", err)
	}
	if head, _ := e.log.Head(ctx, "dev"); head != 0 {
		t.Fatalf("hostile frames appended %d entries", head)
	}
}

// A push stamped far beyond the server's clock is refused with
// CodeClockDrift and appends nothing; a device whose clock is days behind
// still syncs both ways, because it folds in the server's time.
func TestProtocol_ClockDrift(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	e := startServer(t)
	site := crdt.SiteID{9, 9}
	p := helloSite(t, ctx, e, site)
	future := tx(site, 1)
	future.Time = crdt.MakeTimestamp(time.Now().Add(72*time.Hour).UnixMilli(), 0)
	p.send(t, ctx, &usync.Push{Txs: []crdt.Tx{future}})
	if em := nextOf[*usync.ErrorMessage](t, ctx, p); em.Code != usync.CodeClockDrift {
		t.Fatalf("far-future push: %+v, want CodeClockDrift", em)
	}
	if head, _ := e.log.Head(ctx, "dev"); head != 0 {
		t.Fatalf("a far-future push was appended")
	}

	late, err := client.Open(ctx, client.Config{Path: filepath.Join(t.TempDir(), "late.db"), Server: e.url, Token: e.auth.Token,
		ManualSync: true, Now: func() time.Time { return time.Now().Add(-72 * time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	defer late.Close()
	ok := e.client(t, "ok", true)
	if err := ok.Collection("todos").Put(ctx, "t", map[string]any{"by": "ok"}); err != nil {
		t.Fatal(err)
	}
	syncCtx(t, ok)
	syncCtx(t, late)
	if err := late.Collection("todos").Put(ctx, "t", map[string]any{"by": "late"}); err != nil {
		t.Fatal(err)
	}
	syncCtx(t, late)
	syncCtx(t, ok)
	// late wrote after seeing ok's write: it must win everywhere, though
	// late's wall clock is three days behind ok's.
	d, err := ok.Collection("todos").Get(ctx, "t")
	if err != nil || string(d.Fields["by"]) != `"late"` {
		t.Fatalf("ok sees %v, %v; want late's later write", d.Fields, err)
	}
}

// The WebSocket endpoint checks Origin: a browser page from another site
// cannot open a sync connection unless the server allows its origin.
func TestProtocol_OriginCheck(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	e := startServer(t)
	h := http.Header{}
	h.Set("Origin", "https://evil.example")
	_, resp, err := websocket.Dial(ctx, e.url, &websocket.DialOptions{HTTPHeader: h})
	if err == nil {
		t.Fatal("a cross-origin WebSocket was accepted")
	}
	if resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-origin dial: %v (response %v), want 403", err, resp)
	}
}
