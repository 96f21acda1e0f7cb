package store

import (
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
