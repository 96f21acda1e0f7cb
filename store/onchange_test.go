package store_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/unosync/uno/crdt"
	"github.com/unosync/uno/store"
)

// OnChange's function gets each commit's changed rows with their new
// states, for local writes, merged transactions and rejections, and the
// Commit says so; a commit that changed nothing reports nothing. Each
// reported row is the state the store then holds.
func TestSQLite_OnChange(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := store.OpenSQLite(ctx, filepath.Join(dir, "a.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	other, err := store.OpenSQLite(ctx, filepath.Join(dir, "b.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()

	type report struct {
		keys []crdt.RowKey
		rows []*crdt.Row
	}
	var got []report
	s.OnChange(func(keys []crdt.RowKey, rows []*crdt.Row) {
		got = append(got, report{keys, rows}) // under the store's write lock
	})
	check := func(what string, c *store.Commit, want ...crdt.RowKey) {
		t.Helper()
		if !c.Reported {
			t.Errorf("%s: the commit does not say it was reported", what)
		}
		if len(want) == 0 {
			if len(got) != 0 {
				t.Errorf("%s changed nothing and reported %v", what, got)
			}
			return
		}
		if len(got) != 1 || len(got[0].keys) != len(want) || len(got[0].rows) != len(want) {
			t.Fatalf("%s: reports %+v, want one of %v", what, got, want)
		}
		for i, k := range want {
			if got[0].keys[i] != k {
				t.Errorf("%s: reported %v, want %v", what, got[0].keys[i], k)
			}
			held, err := s.Row(ctx, k.Collection, k.Row)
			if err != nil {
				t.Fatal(err)
			}
			if held == nil {
				held = &crdt.Row{}
			}
			if a, b := crdt.EncodeRow(got[0].rows[i]), crdt.EncodeRow(held); string(a) != string(b) {
				t.Errorf("%s: reported row %v is not the one the store holds", what, k)
			}
		}
		got = nil
	}
	a := crdt.RowKey{Collection: "todos", Row: "a"}
	b := crdt.RowKey{Collection: "todos", Row: "b"}

	c, err := s.Write(ctx, setJSON("todos", "a", "title", `"one"`))
	if err != nil {
		t.Fatal(err)
	}
	check("a local write", c, a)
	if _, err := s.Write(ctx, func(*crdt.Builder) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 0 {
		t.Errorf("an empty write reported %v", got)
	}

	rc, err := other.Write(ctx, setJSON("todos", "b", "title", `"two"`))
	if err != nil {
		t.Fatal(err)
	}
	if c, err = s.Apply(ctx, []*crdt.Tx{rc.Tx}); err != nil {
		t.Fatal(err)
	}
	check("a merged transaction", c, b)
	if c, err = s.ApplyAt(ctx, []*crdt.Tx{rc.Tx}, 7); err != nil {
		t.Fatal(err)
	}
	check("a transaction merged again", c)

	c2, err := s.Write(ctx, func(bl *crdt.Builder) error { _, err := bl.Delete(a); return err })
	if err != nil {
		t.Fatal(err)
	}
	check("a delete", c2, a)
	if got, err := s.Row(ctx, "todos", "a"); err != nil || got.Alive() {
		t.Fatalf("a after the delete: %+v, %v", got, err)
	}
	rej, err := s.Reject(ctx, store.Rejection{Seq: c2.Tx.Seq, Code: 1203, Reason: "no"}, []store.RowState{{Key: a, Row: &crdt.Row{}}})
	if err != nil {
		t.Fatal(err)
	}
	check("a rejection", rej, a)
}
