package store

import (
	"path/filepath"
	"strconv"
	"testing"

	"github.com/unosync/uno/crdt"
)

// Query keeps at most maxQueryStmts statements prepared, and answers
// every query beyond them too (unprepared).
func TestSQLite_QueryStatementsBounded(t *testing.T) {
	ctx := t.Context()
	s, err := OpenSQLite(ctx, filepath.Join(t.TempDir(), "a.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := range 3 {
		if _, err := s.Write(ctx, func(b *crdt.Builder) error {
			return b.Set(crdt.RowKey{Collection: "c", Row: strconv.Itoa(i)}, "n", crdt.KindRegister, []byte(strconv.Itoa(i)))
		}); err != nil {
			t.Fatal(err)
		}
	}
	prepared := func() int {
		s.stmtMu.Lock()
		defer s.stmtMu.Unlock()
		return len(s.stmts)
	}
	before := prepared()
	for shape := range maxQueryStmts + 20 {
		// shape+1 copies of one condition: a distinct text each.
		q := Query{Collection: "c", Where: make([]Cond, shape+1)}
		for i := range q.Where {
			q.Where[i] = Cond{Field: "n", Op: Ge, Value: 1}
		}
		for range 2 { // the second run reuses the statement, if kept
			docs, err := s.Query(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			if len(docs) != 2 || docs[0].ID != "1" || docs[1].ID != "2" {
				t.Fatalf("shape %d: %d docs, want rows 1 and 2", shape, len(docs))
			}
		}
	}
	if got := prepared() - before; got != maxQueryStmts {
		t.Errorf("%d query statements prepared, want %d (the bound)", got, maxQueryStmts)
	}
}
