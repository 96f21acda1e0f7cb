package crdt_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/unosync/uno/crdt"
)

// forked builds, on site A's state after its first transaction, the
// transactions A wrote and lost (the server holds them) and those it
// wrote instead after its database went back, with their deltas.
func forked(t *testing.T) (base []*crdt.Tx, lost []*crdt.Tx, again []*crdt.Tx, deltas [][]crdt.Delta) {
	t.Helper()
	a := seeded(t) // A/1 at ts(1): title "v0", n = 3, tags {"x"}
	base = a.txs
	var s crdt.State
	mustApply(t, &s, base[0])
	lostState := stateOf(t, base[0])
	lost = append(lost, buildTx(t, lostState, siteA, 2, ts(2), func(b *crdt.Builder) error {
		return errors.Join(b.Increment(keyR0, "n", 10), b.Add(keyR0, "tags", []byte(`"l"`)), b.Set(keyR0, "title", crdt.KindRegister, []byte(`"lost"`)))
	}))
	write := func(seq uint64, at crdt.Timestamp, fn func(b *crdt.Builder) error) {
		b := crdt.NewBuilder(siteA, seq, at, func(k crdt.RowKey) (*crdt.Row, error) { return s.Row(k), nil })
		if err := fn(b); err != nil {
			t.Fatal(err)
		}
		tx := b.Tx()
		mustApply(t, &s, tx)
		again = append(again, tx)
		deltas = append(deltas, b.Deltas())
	}
	write(2, ts(5), func(b *crdt.Builder) error {
		return errors.Join(b.Increment(keyR0, "n", 4), b.Add(keyR0, "tags", []byte(`"y"`)), b.Set(keyR0, "title", crdt.KindRegister, []byte(`"new1"`)))
	})
	write(3, ts(6), func(b *crdt.Builder) error {
		return errors.Join(b.Increment(keyR0, "n", -1), b.Remove(keyR0, "tags", []byte(`"y"`)), b.Set(keyR0, "title", crdt.KindRegister, []byte(`"new2"`)))
	})
	write(4, ts(7), func(b *crdt.Builder) error { return b.Increment(keyR1, "n", 2) })
	return base, lost, again, deltas
}

func TestBuilder_Deltas(t *testing.T) {
	_, _, _, deltas := forked(t)
	want := [][]crdt.Delta{{{P: 4}}, {{N: 1}}, {{P: 2}}}
	if !slices.EqualFunc(deltas, want, func(a, b []crdt.Delta) bool { return slices.Equal(a, b) }) {
		t.Errorf("deltas %v, want %v", deltas, want)
	}
}

// TestResite: writes moved to a new site survive beside the writes the
// old site lost, in either order, with counters adding up.
func TestResite(t *testing.T) {
	base, lost, again, deltas := forked(t)
	moved, docs := crdt.Resite(again, deltas, siteC, 1, base[0].Time)
	if len(docs) != 0 || len(moved) != 3 {
		t.Fatalf("moved %d, docs %v", len(moved), docs)
	}
	for i, tx := range moved {
		if tx.Site != siteC || tx.Seq != uint64(i+1) || tx.Time != again[i].Time {
			t.Fatalf("moved[%d] = %s/%d at %s", i, tx.Site, tx.Seq, tx.Time)
		}
		if err := tx.Validate(); err != nil {
			t.Fatal(err)
		}
	}
	if again[0].Site != siteA || again[1].Ops[1].Tags[0].Site != siteA {
		t.Fatal("Resite changed its input")
	}
	one := stateOf(t, append(append(slices.Clone(base), lost...), moved...)...)
	two := stateOf(t, append(append(slices.Clone(base), moved...), lost...)...)
	if one.Hash() != two.Hash() {
		t.Fatal("order matters")
	}
	row := one.Row(keyR0)
	wantCounter(3+10+4-1)(t, row)
	wantTags(`"l"`, `"x"`)(t, row)
	title, _ := row.Field("title")
	if win, _ := title.Register.Winner(); string(win.Value) != `"new2"` {
		t.Errorf("title %s", win.Value)
	}
	// The moved write saw A up to its first transaction, not the lost one.
	if len(title.Register.Entries) != 2 || string(title.Register.Entries[0].Value) != `"lost"` {
		t.Errorf("title entries %+v, want the lost write beside the moved one", title.Register.Entries)
	}
	if r1 := one.Row(keyR1); r1 == nil {
		t.Fatal("no r1")
	} else if f, _ := r1.Field("n"); f.Counter.Value() != 2 {
		t.Errorf("r1.n = %d", f.Counter.Value())
	}

	// A prior of 0 (unknown): the second moved write's context names no
	// write of A; the first one's still covers the seeded title, and
	// either order gives the same state.
	moved0, _ := crdt.Resite(again, deltas, siteC, 1, 0)
	if c := moved0[1].Ops[2].Context; len(c) != 1 || c[0].Site != siteC {
		t.Errorf("prior 0: context %v, want only C", c)
	}
	if c := moved[1].Ops[2].Context; len(c) != 2 || c[0] != (crdt.Dot{Site: siteA, Time: base[0].Time}) || c[1].Site != siteC {
		t.Errorf("context %v, want A at its first write and C", c)
	}
	one0 := stateOf(t, append(append(slices.Clone(base), lost...), moved0...)...)
	two0 := stateOf(t, append(append(slices.Clone(base), moved0...), lost...)...)
	if one0.Hash() != two0.Hash() {
		t.Fatal("prior 0: order matters")
	}
}

// TestResite_Docs: doc changes cannot move; a transaction left empty
// takes no sequence number.
func TestResite_Docs(t *testing.T) {
	doc := crdt.Op{Type: crdt.OpChange, Kind: crdt.KindDoc, Collection: "notes", Row: "n1", Field: "body", CL: 1, Value: []byte{1}}
	reg := crdt.Op{Type: crdt.OpSet, Kind: crdt.KindRegister, Collection: "notes", Row: "n1", Field: "title", CL: 1, Value: []byte(`"t"`)}
	txs := []*crdt.Tx{
		{Site: siteA, Seq: 5, Time: ts(1), Ops: []crdt.Op{doc}},
		{Site: siteA, Seq: 6, Time: ts(2), Ops: []crdt.Op{reg, doc}},
		{Site: siteA, Seq: 7, Time: ts(3), Ops: []crdt.Op{reg}},
	}
	moved, docs := crdt.Resite(txs, nil, siteC, 1, 0)
	if !slices.Equal(docs, []int{0, 1}) {
		t.Errorf("docs %v, want [0 1]", docs)
	}
	if len(moved) != 2 || moved[0].Seq != 1 || moved[0].Time != ts(2) || len(moved[0].Ops) != 1 || moved[1].Seq != 2 {
		t.Errorf("moved %+v", moved)
	}
}
