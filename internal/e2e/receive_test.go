package e2e

import (
	"context"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/unosync/uno/client"
	"github.com/unosync/uno/crdt"
	"github.com/unosync/uno/store"
)

// countingStore counts how acknowledgements reach the store: alone (Ack)
// or with a batch of changes in one transaction (Receive with an ack).
type countingStore struct {
	store.Store
	alone, together atomic.Int64
	outboxReads     atomic.Int64
}

func (s *countingStore) Outbox(ctx context.Context, after uint64, limit int) ([]*crdt.Tx, error) {
	s.outboxReads.Add(1)
	return s.Store.Outbox(ctx, after, limit)
}

func (s *countingStore) Ack(ctx context.Context, seq uint64) error {
	s.alone.Add(1)
	return s.Store.Ack(ctx, seq)
}

func (s *countingStore) Receive(ctx context.Context, txs []*crdt.Tx, rows []store.RowState, cursor, ack uint64) (*store.Commit, error) {
	if ack > 0 {
		s.together.Add(1)
	}
	return s.Store.Receive(ctx, txs, rows, cursor, ack)
}

// An author's Ack is followed at once by the Changes that moves its
// cursor past its own entry (the server sends it none of its own): the
// client stores the two in one transaction when both have arrived, and
// every write is acknowledged either way.
func TestReceive_AckAndChangesInOneTransaction(t *testing.T) {
	ctx := context.Background()
	e := startServer(t)
	st, err := store.OpenSQLite(ctx, filepath.Join(t.TempDir(), "a.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cs := &countingStore{Store: st}
	c, err := client.Open(ctx, client.Config{Store: cs, Server: e.url, Token: e.auth.Token,
		BackoffMin: 20 * time.Millisecond, BackoffMax: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const n = 50
	for i := range n {
		if err := c.Collection("todos").Put(ctx, strconv.Itoa(i), map[string]any{"n": i}); err != nil {
			t.Fatal(err)
		}
		// One write at a time, each acknowledged before the next.
		waitFor(t, func() bool { return c.Status().Pending == 0 })
	}
	syncCtx(t, c)
	if cs.together.Load() == 0 {
		t.Errorf("none of %d acknowledgements was stored with the batch after it (%d alone)", n, cs.alone.Load())
	}
	t.Logf("acknowledgements: %d with a batch, %d alone", cs.together.Load(), cs.alone.Load())
	if p, err := st.Pending(ctx); err != nil || p != 0 {
		t.Errorf("Pending = %d, %v", p, err)
	}
}

// A replica with nothing to push never reads its outbox, however many
// batches it receives: the sync loop asks the store's count first.
func TestReceive_NothingPendingReadsNoOutbox(t *testing.T) {
	ctx := context.Background()
	e := startServer(t)
	st, err := store.OpenSQLite(ctx, filepath.Join(t.TempDir(), "r.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cs := &countingStore{Store: st}
	r, err := client.Open(ctx, client.Config{Store: cs, Server: e.url, Token: e.auth.Token,
		BackoffMin: 20 * time.Millisecond, BackoffMax: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	w, err := client.Open(ctx, client.Config{Path: filepath.Join(t.TempDir(), "w.db"), Server: e.url, Token: e.auth.Token,
		BackoffMin: 20 * time.Millisecond, BackoffMax: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	const n = 30
	for i := range n {
		if err := w.Collection("todos").Put(ctx, strconv.Itoa(i), map[string]any{"n": i}); err != nil {
			t.Fatal(err)
		}
		syncCtx(t, w)
		syncCtx(t, r) // one batch at a time
	}
	if got := len(ids(t, r, "todos")); got != n {
		t.Fatalf("the receiver holds %d rows, want %d", got, n)
	}
	if got := cs.outboxReads.Load(); got != 0 {
		t.Errorf("the receiver read its empty outbox %d times over %d batches", got, n)
	}
	// And a write of its own still goes out.
	if err := r.Collection("todos").Put(ctx, "mine", map[string]any{"n": -1}); err != nil {
		t.Fatal(err)
	}
	syncCtx(t, r)
	syncCtx(t, w)
	if got := len(ids(t, w, "todos")); got != n+1 {
		t.Errorf("the writer holds %d rows after the receiver's own write, want %d", got, n+1)
	}
}
