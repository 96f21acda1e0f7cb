package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/unosync/uno/client"
	"github.com/unosync/uno/crdt"
	"github.com/unosync/uno/server"
	"github.com/unosync/uno/server/sqlitelog"
	usync "github.com/unosync/uno/sync"
)

// reader reads a raw session's messages, granting a credit for each
// Changes and checking that none has a gap.
type reader struct {
	p       *rawPeer
	cursor  uint64
	acked   uint64
	changes []usync.Change // every entry received
}

// until reads until the cursor reaches head and the Acks high-water hw.
func (r *reader) until(t *testing.T, ctx context.Context, head, hw uint64) {
	t.Helper()
	for r.cursor < head || r.acked < hw {
		switch m := r.p.recv(t, ctx).(type) {
		case *usync.Ack:
			r.acked = m.HighWater
		case *usync.Changes:
			if m.From != r.cursor {
				t.Fatalf("Changes from %d with the cursor at %d: a gap", m.From, r.cursor)
			}
			r.changes = append(r.changes, m.Changes...)
			r.cursor = m.To
			r.p.send(t, ctx, &usync.Credit{N: 1})
		case *usync.Reject, *usync.ErrorMessage:
			t.Fatalf("got %T %+v", m, m)
		}
	}
}

// The server never sends an author's transactions back to its
// connection: the author's cursor moves past them all the same (Changes
// covers them), while another connection receives every one.
func TestEcho_AuthorNeverReceivesItsOwn(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	e := startServer(t)
	siteA, siteB := crdt.SiteID{0xa1}, crdt.SiteID{0xb2}
	a := hello(t, ctx, e, usync.Hello{Site: siteA, Credits: 4})
	b := hello(t, ctx, e, usync.Hello{Site: siteB, Credits: 4})
	const n = 10
	ra, rb := &reader{p: a}, &reader{p: b}
	for seq := uint64(1); seq <= n; seq++ {
		a.send(t, ctx, &usync.Push{Txs: []crdt.Tx{tx(siteA, seq)}})
		ra.until(t, ctx, 0, seq)
	}
	b.send(t, ctx, &usync.Push{Txs: []crdt.Tx{tx(siteB, 1)}})
	rb.until(t, ctx, n+1, 1)
	ra.until(t, ctx, n+1, n)

	if got := ra.changes; len(got) != 1 || got[0].Tx.Site != siteB || got[0].Seq != n+1 {
		t.Errorf("A received %d entries, want only B's at %d", len(got), n+1)
	}
	if len(rb.changes) != n {
		t.Errorf("B received %d entries, want A's %d", len(rb.changes), n)
	}
	for i, ch := range rb.changes {
		if ch.Tx.Site != siteA || ch.Tx.Seq != uint64(i)+1 {
			t.Errorf("B's entry %d is %s/%d, want A's %d", i, ch.Tx.Site, ch.Tx.Seq, i+1)
		}
	}
	if own := e.metric(t, "uno_changes_own_skipped_total"); own != n+1 {
		t.Errorf("uno_changes_own_skipped_total = %v, want %d", own, n+1)
	}
	if sent := e.metric(t, "uno_changes_delivered_total"); sent != n+1 {
		t.Errorf("uno_changes_delivered_total = %v, want %d (each entry to the other site only)", sent, n+1)
	}
}

// Two real clients writing live converge (equal hashes, equal to the
// server's read model) although neither receives its own writes: the
// server sends each entry once, to the other one.
func TestEcho_ClientsConvergeWithoutEcho(t *testing.T) {
	ctx := context.Background()
	e := startServer(t)
	a, b := e.client(t, "a", false), e.client(t, "b", false)
	// Both connected at head 0, so neither bootstraps from a snapshot.
	waitFor(t, func() bool {
		return a.Status().State == client.StateUpToDate && b.Status().State == client.StateUpToDate
	})
	const n = 8
	for i := range n {
		if err := a.Collection("todos").Put(ctx, fmt.Sprintf("a%d", i), map[string]any{"title": "a", "n": i}); err != nil {
			t.Fatal(err)
		}
		if err := b.Collection("todos").Put(ctx, fmt.Sprintf("b%d", i), map[string]any{"title": "b", "n": i}); err != nil {
			t.Fatal(err)
		}
		if err := b.Collection("todos").Increment(ctx, "shared", "votes", 1); err != nil {
			t.Fatal(err)
		}
	}
	syncCtx(t, a)
	syncCtx(t, b)
	syncCtx(t, a)
	want, err := e.log.RowsHash(ctx, "dev")
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]*client.Client{"a": a, "b": b} {
		if h, _ := c.Hash(ctx); h != want {
			t.Errorf("%s's hash differs from the server's read model", name)
		}
		if st := c.Status(); st.Pending != 0 {
			t.Errorf("%s: %d pending after Sync", name, st.Pending)
		}
	}
	head, err := e.log.Head(ctx, "dev")
	if err != nil || head != 3*n {
		t.Fatalf("head %d, %v; want %d", head, err, 3*n)
	}
	if own := e.metric(t, "uno_changes_own_skipped_total"); own != 3*n {
		t.Errorf("uno_changes_own_skipped_total = %v, want %d (every entry, on its author's connection)", own, 3*n)
	}
	if sent := e.metric(t, "uno_changes_delivered_total"); sent != 3*n {
		t.Errorf("uno_changes_delivered_total = %v, want %d (every entry, to the other client only)", sent, 3*n)
	}
}

// cutLog cuts every connection through a proxy right after it appends
// the first transaction of a site, before the server can send its Ack.
type cutLog struct {
	*sqlitelog.Log
	proxy *cutProxy
	once  sync.Once
	mu    sync.Mutex
	site  crdt.SiteID // whose first append cuts (zero: none)
	done  bool        // the cut happened
}

func (l *cutLog) cutDone() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.done
}

func (l *cutLog) cutAfter(site crdt.SiteID) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.site = site
}

func (l *cutLog) Append(ctx context.Context, tenant string, txs []crdt.Tx) ([]uint64, error) {
	seqs, err := l.Log.Append(ctx, tenant, txs)
	l.mu.Lock()
	site := l.site
	l.mu.Unlock()
	if err == nil && len(txs) > 0 && !site.IsZero() && txs[0].Site == site {
		l.once.Do(func() {
			l.proxy.cut()
			l.mu.Lock()
			l.done = true
			l.mu.Unlock()
		})
	}
	return seqs, err
}

// An author whose connection drops after its write is appended, before
// the Ack reaches it, reconnects and learns from Welcome that the server
// holds the write: its outbox drains, the server never sends the write
// back, the log holds it once, and every replica converges.
func TestEcho_LostAckConverges(t *testing.T) {
	ctx := context.Background()
	l, err := sqlitelog.Open(ctx, filepath.Join(t.TempDir(), "server.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	cl := &cutLog{Log: l}
	e := startServerWith(t, server.Config{Log: cl})
	cl.proxy = newCutProxy(t, e.addr)

	// a talks through the proxy.
	a, err := client.Open(ctx, client.Config{
		Path: filepath.Join(t.TempDir(), "a.db"), Server: "ws://" + cl.proxy.addr() + "/v1/sync", Token: e.auth.Token,
		BackoffMin: 20 * time.Millisecond, BackoffMax: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	site := a.Site()
	b := e.client(t, "b", false)
	// Both connected at head 0, so neither bootstraps from a snapshot.
	waitFor(t, func() bool {
		return a.Status().State == client.StateUpToDate && b.Status().State == client.StateUpToDate
	})

	// b writes first, so a holds a cursor (and resumes from the log, not
	// from a snapshot).
	put(t, b, "todos", "b1", map[string]any{"title": "from b"})
	syncCtx(t, a)
	cl.cutAfter(site)
	if err := a.Collection("todos").Put(ctx, "a1", map[string]any{"title": "from a"}); err != nil {
		t.Fatal(err)
	}
	if err := a.Collection("todos").Increment(ctx, "b1", "votes", 2); err != nil {
		t.Fatal(err)
	}
	syncCtx(t, a) // across the cut: the first connection dies without its Ack
	syncCtx(t, b)

	if !cl.cutDone() {
		t.Fatal("the connection was never cut after a's append")
	}
	if n, err := a.Pending(ctx); err != nil || n != 0 {
		t.Fatalf("a: %d pending, %v; want an empty outbox", n, err)
	}
	if st := a.Status(); st.Pending != 0 {
		t.Fatalf("a's status: %d pending", st.Pending)
	}
	if rej, err := a.Rejections(ctx, 0, 0); err != nil || len(rej) != 0 {
		t.Fatalf("a's rejections %+v, %v", rej, err)
	}
	seqs, total := siteSeqs(t, l, "dev")
	if seqs[site.String()] != 2 || total != 3 {
		t.Fatalf("log holds a up to %d, %d entries; want a's 2 writes once each and b's 1", seqs[site.String()], total)
	}
	want, err := l.RowsHash(ctx, "dev")
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]*client.Client{"a": a, "b": b} {
		if h, _ := c.Hash(ctx); h != want {
			t.Errorf("%s's hash differs from the server's read model", name)
		}
	}
	if v, err := a.Collection("todos").Get(ctx, "b1"); err != nil || string(v.Fields["votes"]) != "2" {
		t.Errorf("a's b1 = %+v, %v; want votes 2", v, err)
	}
	// Each entry went to the other replica only: b1 to a, a's two to b.
	if sent := e.metric(t, "uno_changes_delivered_total"); sent != 3 {
		t.Errorf("uno_changes_delivered_total = %v, want 3", sent)
	}
}

// A receiver that is busy (no credit) while others append gets what
// piled up in few Changes frames, none larger than BatchBytes.
func TestEcho_PendingDeliveriesAreBatched(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const batchBytes = 4 << 10
	e := startServerWith(t, server.Config{BatchBytes: batchBytes})
	var recvSite, w1, w2 crdt.SiteID
	recvSite[0], w1[0], w2[0] = 1, 2, 3
	r := hello(t, ctx, e, usync.Hello{Site: recvSite, Credits: 1})
	writers := []*rawPeer{hello(t, ctx, e, usync.Hello{Site: w1}), hello(t, ctx, e, usync.Hello{Site: w2})}

	// The first append takes r's only credit.
	writers[0].send(t, ctx, &usync.Push{Txs: []crdt.Tx{tx(w1, 1)}})
	untilAck(t, ctx, writers[0])
	if ch := nextOf[*usync.Changes](t, ctx, r); ch.To != 1 || len(ch.Changes) != 1 {
		t.Fatalf("first Changes %+v, want entry 1", ch)
	}
	// Small entries, one append each, alternating writers: then larger ones.
	const small, large = 20, 12
	seq := []uint64{1, 0}
	for i := range small + large {
		k := i % 2
		seq[k]++
		txn := tx([]crdt.SiteID{w1, w2}[k], seq[k])
		if i >= small {
			txn.Ops = []crdt.Op{setOp("c", fmt.Sprint("big", i), "text", []byte(`"`+randomText(1500)+`"`))}
		}
		writers[k].send(t, ctx, &usync.Push{Txs: []crdt.Tx{txn}})
		if _, ack := untilAck(t, ctx, writers[k]); ack.HighWater != seq[k] {
			t.Fatalf("Ack %+v, want %d", ack, seq[k])
		}
	}
	head := uint64(1 + small + large)

	// Now r has room, one Changes at a time: it reads frames as they come.
	r.send(t, ctx, &usync.Credit{N: 1})
	cursor, frames := uint64(1), 0
	for cursor < head {
		_, b, err := r.ws.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		m, err := r.codec.Decode(b)
		if err != nil {
			t.Fatal(err)
		}
		ch, ok := m.(*usync.Changes)
		if !ok {
			continue
		}
		frames++
		if ch.From != cursor {
			t.Fatalf("Changes from %d at cursor %d", ch.From, cursor)
		}
		size := 0
		for _, c := range ch.Changes {
			size += len(crdt.EncodeTx(&c.Tx))
		}
		// The bound is on the entries; the frame adds a few bytes of envelope.
		if len(ch.Changes) > 1 && (size > batchBytes || len(b) > batchBytes+64) {
			t.Errorf("Changes (%d, %d]: %d entries of %d bytes in a frame of %d, over the %d bound", ch.From, ch.To, len(ch.Changes), size, len(b), batchBytes)
		}
		cursor = ch.To
		r.send(t, ctx, &usync.Credit{N: 1})
	}
	// 20 small entries fit one frame; 12 of ~1.5 kB take at least 4 at
	// 4 KiB: about 6 frames for 32 entries, never one each.
	if frames > 8 {
		t.Errorf("%d Changes frames for %d entries appended while r was busy, want at most 8", frames, small+large)
	}
	if frames < 4 {
		t.Errorf("%d Changes frames: the %d large entries cannot fit under the %d-byte bound in fewer than 4", frames, large, batchBytes)
	}
}

// A filtered row an author's own write brings into its filter arrives
// whole, with what others wrote while it was out of the filter: the
// server leaves the author's transaction out of Changes but still sends
// the row's state.
func TestEcho_OwnWriteIntoFilterArrivesWhole(t *testing.T) {
	ctx := context.Background()
	e := startServerWith(t, server.Config{Auth: userAuth{}})
	writer := userClient(t, e, "t1/writer", "", nil, nil)
	bob := userClient(t, e, "t1/bob", "", []string{"todos"}, map[string]map[string]any{"todos": {"list": "home"}})
	syncCtx(t, bob)
	if err := writer.Collection("todos").Put(ctx, "t1", map[string]any{"list": "work", "title": "by writer"}); err != nil {
		t.Fatal(err)
	}
	syncCtx(t, writer)
	syncCtx(t, bob)
	if got := ids(t, bob, "todos"); len(got) != 0 {
		t.Fatalf("bob holds %v before moving t1 home", got)
	}
	// bob never saw t1: he writes just its list.
	if err := bob.Collection("todos").Put(ctx, "t1", map[string]any{"list": "home"}); err != nil {
		t.Fatal(err)
	}
	syncCtx(t, bob) // pushes (a manual Sync reads up to the head at Welcome)
	syncCtx(t, bob) // reads past bob's write
	d, err := bob.Collection("todos").Get(ctx, "t1")
	if err != nil || string(d.Fields["title"]) != `"by writer"` || string(d.Fields["list"]) != `"home"` {
		t.Fatalf("bob's t1 = %v, %v; want it whole: home, by writer", d.Fields, err)
	}
}
