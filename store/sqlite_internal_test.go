package store

import (
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/unosync/uno/crdt"
)

// TestSQLite_StmtSurvivesColumnChange replays an interleaving of Row with
// a concurrent Write. Row takes a prepared statement from the store's cache
// and runs it without holding s.mu; a Write that adds a column to the same
// table commits in between, and mergeColumns → forget closes the cached
// statements of that table, the one Row holds included. Row then fails
// with "sql: statement is closed" (seen under load as a rare error from
// Row while another goroutine writes new fields). A statement handed out
// by the cache must stay usable until its user is done with it.
func TestSQLite_StmtSurvivesColumnChange(t *testing.T) {
	ctx := t.Context()
	s, err := OpenSQLite(ctx, filepath.Join(t.TempDir(), "uno.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	k := crdt.RowKey{Collection: "todos", Row: "a"}
	write := func(field string) {
		t.Helper()
		if _, err := s.Write(ctx, func(b *crdt.Builder) error {
			return b.Set(k, field, crdt.KindRegister, []byte("1"))
		}); err != nil {
			t.Fatal(err)
		}
	}
	write("f0")
	st, err := s.stmt(ctx, rowSQL(k.Collection, true)) // Row, first step
	if err != nil {
		t.Fatal(err)
	}
	write("f1")                                                           // another goroutine adds a column to todos
	r, _, err := scanRow(st.QueryRowContext(ctx, k.Collection, k.Row), k) // Row, second step
	if err != nil {
		t.Fatalf("Row racing a column change: %v", err)
	}
	if r == nil || len(r.Fields) != 2 {
		t.Errorf("Row racing a column change = %+v, want the row with f0 and f1", r)
	}
}

// TestSQLite_PendingIsKept checks that Pending, which a sync loop calls on
// every pass, reads the count the store keeps (counted on open, kept by
// Write and Ack) instead of counting the outbox, and that the count is
// the outbox's across Writes, Acks, an Ack of nothing and a reopen.
func TestSQLite_PendingIsKept(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "uno.db")
	s, err := OpenSQLite(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := func(s *SQLite, n int) {
		t.Helper()
		var counted int
		if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM _uno_outbox`).Scan(&counted); err != nil {
			t.Fatal(err)
		}
		if got, err := s.Pending(ctx); err != nil || got != n || counted != n {
			t.Fatalf("Pending = %d, %v; the outbox holds %d; want %d", got, err, counted, n)
		}
	}
	for i := range 5 {
		if _, err := s.Write(ctx, func(b *crdt.Builder) error {
			return b.Set(crdt.RowKey{Collection: "todos", Row: "a"}, "n", crdt.KindRegister, []byte{'0' + byte(i)})
		}); err != nil {
			t.Fatal(err)
		}
	}
	want(s, 5)
	for _, a := range []struct {
		seq  uint64
		left int
	}{{2, 3}, {2, 3}, {1, 3}, {4, 1}} {
		if err := s.Ack(ctx, a.seq); err != nil {
			t.Fatal(err)
		}
		want(s, a.left)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s, err = OpenSQLite(ctx, path, Options{}); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	want(s, 1)
	// Nothing is counted any more: with the outbox gone, Pending still answers.
	if _, err := s.db.ExecContext(ctx, `ALTER TABLE _uno_outbox RENAME TO _uno_outbox_gone`); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Pending(ctx); err != nil || n != 1 {
		t.Fatalf("Pending with the outbox renamed = %d, %v; want the kept 1", n, err)
	}
}

// TestSQLite_MarksSurviveReopen applies remote transactions one site at a
// time (the mark saved in the cursor's statement) and two sites at once
// (each mark its own statement), reopens, and checks each site's mark by
// the gap check: the next transaction of each applies, one past it fails.
func TestSQLite_MarksSurviveReopen(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	path := filepath.Join(dir, "a.db")
	a, err := OpenSQLite(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var txs [2][]*crdt.Tx // by site: b, c
	for i, name := range []string{"b", "c"} {
		o, err := OpenSQLite(ctx, filepath.Join(dir, name+".db"), Options{})
		if err != nil {
			t.Fatal(err)
		}
		for n := range 6 {
			c, err := o.Write(ctx, func(b *crdt.Builder) error {
				return b.Set(crdt.RowKey{Collection: "c", Row: name}, "f", crdt.KindRegister, []byte(fmt.Sprint(n)))
			})
			if err != nil {
				t.Fatal(err)
			}
			txs[i] = append(txs[i], c.Tx)
		}
		o.Close()
	}
	b, c := txs[0], txs[1]
	for _, batch := range [][]*crdt.Tx{{b[0]}, {c[0]}, {b[1], c[1]}, {b[2]}} {
		if _, err := a.Apply(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	a.Close()
	if a, err = OpenSQLite(ctx, path, Options{}); err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	for _, tc := range []struct {
		name       string
		next, skip *crdt.Tx
	}{{"b", b[3], b[5]}, {"c", c[2], c[4]}} {
		if _, err := a.Apply(ctx, []*crdt.Tx{tc.skip}); !errors.Is(err, ErrGap) {
			t.Errorf("site %s: applying past its mark: %v, want ErrGap", tc.name, err)
		}
		if _, err := a.Apply(ctx, []*crdt.Tx{tc.next}); err != nil {
			t.Errorf("site %s: applying the transaction after its mark: %v", tc.name, err)
		}
	}
}
