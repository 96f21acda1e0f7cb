//go:build !js

package store

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/unosync/uno/crdt"
)

// A query runs on the held connection that wrote last when no write is
// running, and sees that write; one that returned more than
// heldQueryRows rows, or that comes while a write runs, goes to the pool.
func TestSQLite_QueryHeld(t *testing.T) {
	ctx := t.Context()
	s, held := openCountingHeld(t, func(string) bool { return true })
	set := func(n int, v string) {
		t.Helper()
		_, err := s.Write(ctx, func(b *crdt.Builder) error {
			for i := range n {
				if err := b.Set(crdt.RowKey{Collection: "c", Row: fmt.Sprintf("r%03d", i)}, "f", crdt.KindRegister, []byte(v)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	query := func(wantRows int, wantFirst string) {
		t.Helper()
		docs, err := s.Query(ctx, Query{Collection: "c"})
		if err != nil {
			t.Fatal(err)
		}
		if len(docs) != wantRows {
			t.Fatalf("query: %d rows, want %d", len(docs), wantRows)
		}
		f, _ := docs[0].Row.Field("f")
		if e, _ := f.Register.Winner(); string(e.Value) != wantFirst {
			t.Fatalf("query: first row's f = %s, want %s", e.Value, wantFirst)
		}
	}

	set(1, `1`)
	query(1, `1`)
	set(1, `2`)
	query(1, `2`) // the held connection's cache is current
	if *held != 2 {
		t.Fatalf("%d of 2 queries ran on the held connection", *held)
	}

	s.mu.Lock() // a write is running: the query does not wait for it
	query(1, `2`)
	s.mu.Unlock()
	if *held != 2 {
		t.Fatal("a query ran on the held connection while a write held it")
	}

	set(heldQueryRows+1, `3`)
	query(heldQueryRows+1, `3`) // held, and found too big to run there again
	query(heldQueryRows+1, `3`)
	if *held != 3 {
		t.Fatalf("%d queries ran on the held connection, want 3 (the last on the pool)", *held)
	}
}

// Outbox reads a few entries on the held connection that wrote last, and
// a backlog on the pool.
func TestSQLite_OutboxHeld(t *testing.T) {
	ctx := t.Context()
	s, held := openCountingHeld(t, func(q string) bool { return q == outboxSQL })
	write := func(n int) {
		t.Helper()
		for i := range n {
			_, err := s.Write(ctx, func(b *crdt.Builder) error {
				return b.Set(crdt.RowKey{Collection: "c", Row: "r"}, "f", crdt.KindRegister, []byte(fmt.Sprint(i)))
			})
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	outbox := func(after uint64, want int) {
		t.Helper()
		txs, err := s.Outbox(ctx, after, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(txs) != want || txs[0].Seq != after+1 {
			t.Fatalf("outbox after %d: %d entries from %d, want %d from %d", after, len(txs), txs[0].Seq, want, after+1)
		}
	}
	write(1)
	outbox(0, 1)
	if *held != 1 {
		t.Fatal("the outbox was not read on the held connection")
	}
	write(heldOutboxTxs)
	outbox(0, heldOutboxTxs+1) // a backlog: on the pool
	outbox(heldOutboxTxs, 1)
	if *held != 2 {
		t.Fatalf("%d of the outbox reads ran on the held connection, want 2", *held)
	}
}

// openCountingHeld opens a store that counts the reads run on a held
// connection for which count holds.
func openCountingHeld(t *testing.T, count func(query string) bool) (*SQLite, *int) {
	t.Helper()
	s, err := OpenSQLite(t.Context(), filepath.Join(t.TempDir(), "a.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	// No background checkpoint takes the write lock between a write and
	// the query after it (one that does sends the query to the pool).
	s.stopCheckpointer()
	held := new(int)
	s.testQueryHeld = func(q string) {
		if count(q) {
			*held++
		}
	}
	return s, held
}
