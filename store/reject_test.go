package store_test

import (
	"context"
	"testing"

	"github.com/unosync/uno/crdt"
	"github.com/unosync/uno/store"
)

// Reject rolls a refused transaction back: the touched rows take the
// server's states, later pending transactions are replayed on them, a row
// only the refused transaction created disappears, and the feed records it.
func TestStore_Reject(t *testing.T) {
	for name, open := range map[string]func(*testing.T, store.Options) store.Store{"sqlite": openSQLite, "memory": openMemory} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			s := open(t, store.Options{})
			a := crdt.RowKey{Collection: "todos", Row: "a"}
			b := crdt.RowKey{Collection: "todos", Row: "b"}
			write := func(fn func(*crdt.Builder) error) *crdt.Tx {
				t.Helper()
				c, err := s.Write(ctx, fn)
				if err != nil {
					t.Fatal(err)
				}
				return c.Tx
			}
			tx1 := write(func(bl *crdt.Builder) error { return bl.Set(a, "title", crdt.KindRegister, []byte(`"ok"`)) })
			write(func(bl *crdt.Builder) error { // 2: refused below
				if err := bl.Set(a, "title", crdt.KindRegister, []byte(`"bad"`)); err != nil {
					return err
				}
				return bl.Set(b, "title", crdt.KindRegister, []byte(`"bad"`))
			})
			write(func(bl *crdt.Builder) error { return bl.Increment(a, "n", 5) }) // 3
			// The server's state of a: tx1 (and tx3, which it may already hold).
			var server crdt.State
			if _, err := server.Apply(tx1); err != nil {
				t.Fatal(err)
			}
			c, err := s.Reject(ctx, store.Rejection{Seq: 2, Code: 1203, Reason: "no"}, []store.RowState{
				{Key: a, Row: server.Row(a)},
				{Key: b, Row: &crdt.Row{}},
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(c.Changed) != 2 {
				t.Errorf("Changed %v, want both rows", c.Changed)
			}
			vals := store.Resolve(nil, "todos", mustRow(t, s, a))
			if string(vals["title"].JSON) != `"ok"` || string(vals["n"].JSON) != "5" {
				t.Errorf("a after rollback: title %s, n %s; want \"ok\" and 5", vals["title"].JSON, vals["n"].JSON)
			}
			if r, err := s.Row(ctx, "todos", "b"); err != nil || r != nil {
				t.Errorf("b after rollback: %+v, %v; want no row at all", r, err)
			}
			docs, err := s.Query(ctx, store.Query{Collection: "todos"})
			if err != nil || len(docs) != 1 || docs[0].ID != "a" {
				t.Errorf("query after rollback: %d rows, %v", len(docs), err)
			}
			rej, err := s.Rejections(ctx, 0, 0)
			if err != nil || len(rej) != 1 || rej[0].Seq != 2 || rej[0].Code != 1203 || rej[0].Reason != "no" || rej[0].ID == 0 {
				t.Errorf("rejections %+v, %v", rej, err)
			}
			if more, _ := s.Rejections(ctx, rej[0].ID, 0); len(more) != 0 {
				t.Errorf("rejections after the last: %+v", more)
			}
		})
	}
}

func mustRow(t *testing.T, s store.Store, k crdt.RowKey) *crdt.Row {
	t.Helper()
	r, err := s.Row(context.Background(), k.Collection, k.Row)
	if err != nil || r == nil {
		t.Fatalf("row %v: %v, %v", k, r, err)
	}
	return r
}
