package e2e

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/unosync/uno/client"
	"github.com/unosync/uno/crdt"
	"github.com/unosync/uno/server"
	usync "github.com/unosync/uno/sync"
)

// rawPeer speaks the protocol directly, so a test can stop reading.
type rawPeer struct {
	ws    *websocket.Conn
	codec *usync.Codec
}

func dialRaw(t *testing.T, ctx context.Context, url, token string, credits uint32, cursor uint64) *rawPeer {
	t.Helper()
	codec, err := usync.NewCodec(usync.CodecConfig{})
	if err != nil {
		t.Fatal(err)
	}
	ws, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	ws.SetReadLimit(8 << 20)
	p := &rawPeer{ws: ws, codec: codec}
	var site crdt.SiteID
	rand.Read(site[:])
	p.send(t, ctx, &usync.Hello{Versions: usync.Versions, Site: site, Token: token, Credits: credits, Cursor: cursor})
	if _, ok := p.recv(t, ctx).(*usync.Welcome); !ok {
		t.Fatal("no Welcome")
	}
	return p
}

func (p *rawPeer) send(t *testing.T, ctx context.Context, m usync.Message) {
	t.Helper()
	b, err := p.codec.Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.ws.Write(ctx, websocket.MessageBinary, b); err != nil {
		t.Fatal(err)
	}
}

func (p *rawPeer) recv(t *testing.T, ctx context.Context) usync.Message {
	t.Helper()
	_, b, err := p.ws.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	m, err := p.codec.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// drain reads Changes, granting a credit for each, until it has seen
// every entry up to head, and checks there is no gap.
func (p *rawPeer) drain(t *testing.T, ctx context.Context, cursor, head uint64) {
	t.Helper()
	for cursor < head {
		m := p.recv(t, ctx)
		ch, ok := m.(*usync.Changes)
		if !ok {
			continue
		}
		if ch.From != cursor {
			t.Fatalf("Changes from %d with the cursor at %d: a gap", ch.From, cursor)
		}
		for i, c := range ch.Changes {
			if c.Seq != ch.From+uint64(i)+1 {
				t.Fatalf("entry %d of a batch from %d has seq %d", i, ch.From, c.Seq)
			}
		}
		cursor = ch.To
		p.send(t, ctx, &usync.Credit{N: 1})
	}
}

// A client that stops reading while others write does not grow the
// server's memory (the server sends only against credit and buffers
// nothing), fast readers keep up, and the slow one catches up with no gap.
func TestSync_SlowConsumer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	e := startServer(t)
	slow := dialRaw(t, ctx, e.url, e.auth.Token, 1, 0)
	fast := dialRaw(t, ctx, e.url, e.auth.Token, 4, 0)
	fastDone := make(chan struct{})
	const txs, perTx = 200, 50
	go func() {
		defer close(fastDone)
		fast.drain(t, ctx, 0, txs)
	}()
	writer := e.client(t, "w", false)
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range txs {
		err := writer.Tx(ctx, func(tx *client.Tx) error {
			for j := range perTx {
				if err := tx.Put("items", fmt.Sprintf("r%d-%d", i, j), map[string]any{"pad": fmt.Sprintf("%0200d", j)}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := writer.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-fastDone:
	case <-ctx.Done():
		t.Fatal("the fast reader did not keep up")
	}
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	// The whole process (writer, server, readers) stays small; the log is
	// ~2.5 MB of rows and the server keeps its newest entries in memory.
	if grown := int64(after.HeapInuse) - int64(before.HeapInuse); grown > 64<<20 {
		t.Errorf("heap grew by %d MiB while a reader stalled", grown>>20)
	}
	// The server sent the stalled reader one batch (its one credit) and
	// nothing more: nothing was queued for it, in the server or the socket.
	first, ok := slow.recv(t, ctx).(*usync.Changes)
	if !ok {
		t.Fatal("the stalled reader's first message is not its one batch")
	}
	rctx, rcancel := context.WithTimeout(ctx, 300*time.Millisecond)
	_, _, err := slow.ws.Read(rctx)
	rcancel()
	if err == nil {
		t.Fatal("the server sent a stalled reader more than its credit allows")
	}
	// A timed-out read closes a coder/websocket connection: reconnect
	// from the cursor, as a real client would, and catch up with no gap.
	slow = dialRaw(t, ctx, e.url, e.auth.Token, 2, first.To)
	slow.drain(t, ctx, first.To, txs)
}

// A reader that holds no credit while the log has entries for it is told,
// after StallTimeout, to reconnect and resume from its cursor
// (CodeSlowConsumer, retryable); writers are unaffected.
func TestSync_StalledReaderIsToldToResume(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	e := startServerWith(t, server.Config{StallTimeout: 200 * time.Millisecond})
	slow := dialRaw(t, ctx, e.url, e.auth.Token, 1, 0)
	w := e.client(t, "w", true)
	for i := range 3 {
		if err := w.Collection("items").Put(ctx, fmt.Sprint("r", i), map[string]any{"n": i}); err != nil {
			t.Fatal(err)
		}
		syncCtx(t, w)
	}
	// One batch (its one credit), then, with no credit granted, the Error.
	var sawChanges bool
	for {
		m := slow.recv(t, ctx)
		switch m := m.(type) {
		case *usync.Changes:
			sawChanges = true
		case *usync.ErrorMessage:
			if m.Code != usync.CodeSlowConsumer || !m.Code.Retryable() || !sawChanges {
				t.Fatalf("got %+v after Changes=%v, want CodeSlowConsumer after one batch", m, sawChanges)
			}
			return
		}
	}
}

// A client that stops reading while it still has credit fills the
// socket's buffers, and the server's write to it blocks: after
// Config.WriteTimeout the server drops the connection, and the writer
// and everyone else go on.
func TestSync_WriteTimeoutDropsAStalledReader(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const timeout = 300 * time.Millisecond
	e := startServerWith(t, server.Config{WriteTimeout: timeout})
	dialRaw(t, ctx, e.url, e.auth.Token, 64, 0) // reads nothing after its Welcome
	writer := e.client(t, "w", false)
	waitConnections := func(n float64) {
		t.Helper()
		for e.metric(t, "uno_connections") != n {
			if ctx.Err() != nil {
				t.Fatalf("uno_connections = %v, want %v", e.metric(t, "uno_connections"), n)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitConnections(2)
	// 32 MB that do not compress: more than loopback's socket buffers
	// hold on both ends.
	raw := make([]byte, 75_000)
	for i := range 32 {
		err := writer.Tx(ctx, func(tx *client.Tx) error {
			for j := range 10 {
				rand.Read(raw)
				if err := tx.Put("blobs", fmt.Sprintf("r%d-%d", i, j), map[string]any{"pad": base64.StdEncoding.EncodeToString(raw)}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := writer.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	// The writer's connection stays; the stalled one goes once a write to
	// it has blocked for the timeout.
	waitConnections(1)
}
