package crdt_test

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/unosync/uno/crdt"
)

var (
	siteA = crdt.SiteID{0x0A}
	siteB = crdt.SiteID{0x0B}
	siteC = crdt.SiteID{0x0C}
	keyR0 = crdt.RowKey{Collection: "todo", Row: "r0"}
	keyR1 = crdt.RowKey{Collection: "todo", Row: "r1"}
)

// ts returns a timestamp n milliseconds after t0.
func ts(n int64) crdt.Timestamp { return crdt.MakeTimestamp(t0.UnixMilli()+n, 0) }

// node is a replica for hand-written scenarios: a State, a site and a
// sequence counter. Timestamps are passed in, so scenarios say exactly who
// is later.
type node struct {
	site  crdt.SiteID
	seq   uint64
	state crdt.State
	txs   []*crdt.Tx // made here, in order
}

// write builds a transaction against n's state, applies it there and
// returns it.
func (n *node) write(tb testing.TB, at crdt.Timestamp, fn func(*crdt.Builder) error) *crdt.Tx {
	tb.Helper()
	n.seq++
	tx := buildTx(tb, &n.state, n.site, n.seq, at, fn)
	mustApply(tb, &n.state, tx)
	n.txs = append(n.txs, tx)
	return tx
}

// recv applies txs (made elsewhere) to n's state.
func (n *node) recv(tb testing.TB, txs ...*crdt.Tx) []crdt.OpEffect {
	tb.Helper()
	var effects []crdt.OpEffect
	for _, tx := range txs {
		effects = append(effects, mustApply(tb, &n.state, tx)...)
	}
	return effects
}

func setTitle(k crdt.RowKey, v string) func(*crdt.Builder) error {
	return func(b *crdt.Builder) error { return b.Set(k, "title", crdt.KindRegister, []byte(v)) }
}

func deleteRow(k crdt.RowKey) func(*crdt.Builder) error {
	return func(b *crdt.Builder) error {
		_, err := b.Delete(k)
		return err
	}
}

// stateOf applies txs in order to a fresh state.
func stateOf(tb testing.TB, txs ...*crdt.Tx) *crdt.State {
	tb.Helper()
	var s crdt.State
	for _, tx := range txs {
		mustApply(tb, &s, tx)
	}
	return &s
}

func TestRow_Life(t *testing.T) {
	t.Run("delete beats a concurrent update of the same life", func(t *testing.T) {
		a, b := &node{site: siteA}, &node{site: siteB}
		create := a.write(t, ts(1), setTitle(keyR0, `"v1"`))
		b.recv(t, create)
		del := a.write(t, ts(2), deleteRow(keyR0))
		upd := b.write(t, ts(3), setTitle(keyR0, `"v2"`)) // later, but did not see the delete

		effects := a.recv(t, upd)
		if len(effects) != 1 || !effects[0].Stale || effects[0].Changed {
			t.Errorf("update after delete: effects %+v, want one stale, unchanged", effects)
		}
		b.recv(t, del)
		for name, s := range map[string]*crdt.State{"A": &a.state, "B": &b.state} {
			row := s.Row(keyR0)
			if row.Alive() || row.CL != 2 || len(row.Fields) != 0 {
				t.Errorf("replica %s: row CL %d, fields %v; want deleted (CL 2) with no fields", name, row.CL, fieldNames(row))
			}
		}
		if a.state.Hash() != b.state.Hash() {
			t.Error("replicas differ")
		}
	})

	t.Run("a write after observing the delete revives the row", func(t *testing.T) {
		a, b := &node{site: siteA}, &node{site: siteB}
		create := a.write(t, ts(1), func(b *crdt.Builder) error {
			return errors.Join(
				b.Set(keyR0, "title", crdt.KindRegister, []byte(`"old"`)),
				b.Increment(keyR0, "n", 5),
				b.Add(keyR0, "tags", []byte(`"x"`)))
		})
		del := a.write(t, ts(2), deleteRow(keyR0))
		b.recv(t, create, del)
		revive := b.write(t, ts(3), func(b *crdt.Builder) error {
			return errors.Join(b.Set(keyR0, "done", crdt.KindRegister, []byte(`true`)), b.Increment(keyR0, "n", 1))
		})
		if len(revive.Ops) != 3 || revive.Ops[0].Type != crdt.OpRevive || revive.Ops[0].CL != 3 {
			t.Fatalf("ops %+v: want a revive to CL 3 first", revive.Ops)
		}
		a.recv(t, revive)
		for name, s := range map[string]*crdt.State{"A": &a.state, "B": &b.state} {
			row := s.Row(keyR0)
			if row.CL != 3 || !row.Alive() {
				t.Fatalf("replica %s: row CL %d, want 3", name, row.CL)
			}
			if got := fieldNames(row); len(got) != 2 || got[0] != "done" || got[1] != "n" {
				t.Errorf("replica %s: fields %v, want only [done n] written in the new life", name, got)
			}
			if f, _ := row.Field("n"); f == nil || f.Counter.Value() != 1 {
				t.Errorf("replica %s: counter of the new life should start from 0: %+v", name, f)
			}
		}
		if a.state.Hash() != b.state.Hash() {
			t.Error("replicas differ")
		}
	})

	t.Run("concurrent revives merge their fields", func(t *testing.T) {
		a, b := &node{site: siteA}, &node{site: siteB}
		create := a.write(t, ts(1), setTitle(keyR0, `"v1"`))
		del := a.write(t, ts(2), deleteRow(keyR0))
		b.recv(t, create, del)
		ra := a.write(t, ts(3), func(b *crdt.Builder) error {
			return errors.Join(b.Set(keyR0, "title", crdt.KindRegister, []byte(`"from A"`)), b.Add(keyR0, "tags", []byte(`"a"`)))
		})
		rb := b.write(t, ts(4), func(b *crdt.Builder) error {
			return errors.Join(b.Increment(keyR0, "n", 2), b.Add(keyR0, "tags", []byte(`"b"`)))
		})
		a.recv(t, rb)
		b.recv(t, ra)
		for name, s := range map[string]*crdt.State{"A": &a.state, "B": &b.state} {
			row := s.Row(keyR0)
			if row.CL != 3 {
				t.Fatalf("replica %s: CL %d, want 3", name, row.CL)
			}
			if got := fieldNames(row); len(got) != 3 {
				t.Errorf("replica %s: fields %v, want [n tags title]", name, got)
			}
			if f, _ := row.Field("tags"); f == nil || len(f.Set.Values()) != 2 {
				t.Errorf("replica %s: tags %+v, want both revivers' members", name, f)
			}
		}
		if a.state.Hash() != b.state.Hash() {
			t.Error("replicas differ")
		}
	})

	t.Run("concurrent deletes of one life agree", func(t *testing.T) {
		a, b := &node{site: siteA}, &node{site: siteB}
		create := a.write(t, ts(1), setTitle(keyR0, `"v1"`))
		b.recv(t, create)
		da := a.write(t, ts(2), deleteRow(keyR0))
		db := b.write(t, ts(2), deleteRow(keyR0))
		if eff := a.recv(t, db); eff[0].Changed {
			t.Errorf("second delete of the same life reported a change")
		}
		b.recv(t, da)
		if a.state.Row(keyR0).CL != 2 || a.state.Hash() != b.state.Hash() {
			t.Errorf("want both at CL 2 with equal hashes")
		}
	})

	t.Run("a later delete beats a revive it observed, in any order", func(t *testing.T) {
		a, b, c := &node{site: siteA}, &node{site: siteB}, &node{site: siteC}
		create := a.write(t, ts(1), setTitle(keyR0, `"v1"`))
		del := a.write(t, ts(2), deleteRow(keyR0))
		b.recv(t, create, del)
		revive := b.write(t, ts(3), setTitle(keyR0, `"v3"`))
		c.recv(t, create, del, revive)
		del2 := c.write(t, ts(4), deleteRow(keyR0))
		if del2.Ops[0].CL != 4 {
			t.Fatalf("delete of life 3 carries CL %d, want 4", del2.Ops[0].CL)
		}
		want := stateOf(t, create, del, revive, del2).Hash()
		for _, order := range [][]*crdt.Tx{
			{create, del2, revive, del},
			{del2, del, create, revive},
			{revive, create, del2, del},
		} {
			if got := stateOf(t, order...); got.Hash() != want || got.Row(keyR0).CL != 4 {
				t.Errorf("order %v: CL %d, hash differs: %v", order, got.Row(keyR0).CL, got.Hash() != want)
			}
		}
	})
}

// TestRow_ApplyStale: a field op of an older life is ignored and says so.
func TestRow_ApplyStale(t *testing.T) {
	a := &node{site: siteA}
	a.write(t, ts(1), func(b *crdt.Builder) error {
		return errors.Join(
			b.Set(keyR0, "title", crdt.KindRegister, []byte(`"v1"`)),
			b.Increment(keyR0, "n", 1),
			b.Add(keyR0, "tags", []byte(`"x"`)))
	})
	a.write(t, ts(2), deleteRow(keyR0))
	deleted := rowCopy(t, a.state.Row(keyR0))
	a.write(t, ts(3), setTitle(keyR0, `"v3"`))
	alive := rowCopy(t, a.state.Row(keyR0))

	old := []crdt.Op{
		{Type: crdt.OpSet, Kind: crdt.KindRegister, Field: "title", CL: 1, Value: []byte(`"stale"`)},
		{Type: crdt.OpSet, Kind: crdt.KindRegister, Field: "other", CL: 1, Value: []byte(`"stale"`)},
		{Type: crdt.OpIncrement, Kind: crdt.KindCounter, Field: "n", CL: 1, P: 10},
		{Type: crdt.OpAdd, Kind: crdt.KindSet, Field: "tags", CL: 1, Value: []byte(`"y"`)},
		{Type: crdt.OpRemove, Kind: crdt.KindSet, Field: "tags", CL: 1, Value: []byte(`"x"`), Tags: []crdt.Dot{{Site: siteA, Time: ts(1)}}},
	}
	for _, base := range []*crdt.Row{deleted, alive} {
		for _, op := range old {
			t.Run(fmt.Sprintf("CL%d/%s/%s", base.CL, op.Type, op.Field), func(t *testing.T) {
				row := rowCopy(t, base)
				want := crdt.EncodeRow(row)
				eff, err := row.Apply(&op, crdt.Dot{Site: siteB, Time: ts(9)})
				if err != nil {
					t.Fatal(err)
				}
				if !eff.Stale || eff.Changed || len(eff.Concurrent) != 0 {
					t.Errorf("op of life 1 on a row at CL %d: effect %+v, want stale", base.CL, eff)
				}
				if !bytes.Equal(crdt.EncodeRow(row), want) {
					t.Errorf("stale op changed the row")
				}
			})
		}
	}
}

// TestRow_ApplyStaleRowOp: a delete or revive of an older life is ignored
// too, and, like a stale field op, should say so (Effect.Stale: "the op
// was ignored because it belongs to an older life of the row").
func TestRow_ApplyStaleRowOp(t *testing.T) {
	row := &crdt.Row{CL: 3}
	for _, op := range []crdt.Op{
		{Type: crdt.OpDelete, CL: 2},
		{Type: crdt.OpRevive, CL: 1},
	} {
		r := rowCopy(t, row)
		eff, err := r.Apply(&op, crdt.Dot{Site: siteB, Time: ts(9)})
		if err != nil {
			t.Fatal(err)
		}
		if r.CL != 3 || eff.Changed {
			t.Fatalf("%s of CL %d changed a row at CL 3: %+v", op.Type, op.CL, eff)
		}
		if !eff.Stale {
			t.Errorf("%s of CL %d on a row at CL 3: Stale = false, want true", op.Type, op.CL)
		}
	}
}

// TestRow_ApplyMalformed: ops no correct writer produces are refused with
// ErrMalformedOp and leave the row as it was.
func TestRow_ApplyMalformed(t *testing.T) {
	a := &node{site: siteA}
	a.write(t, ts(1), func(b *crdt.Builder) error {
		return errors.Join(
			b.Set(keyR0, "title", crdt.KindRegister, []byte(`"v1"`)),
			b.Increment(keyR0, "n", 1),
			b.Add(keyR0, "tags", []byte(`"x"`)))
	})
	base := a.state.Row(keyR0)

	tests := []struct {
		name string
		op   crdt.Op
	}{
		{"delete with odd CL", crdt.Op{Type: crdt.OpDelete, CL: 3}},
		{"delete with CL 0", crdt.Op{Type: crdt.OpDelete, CL: 0}},
		{"revive with even CL", crdt.Op{Type: crdt.OpRevive, CL: 2}},
		{"revive with CL 0", crdt.Op{Type: crdt.OpRevive, CL: 0}},
		{"set with even CL", crdt.Op{Type: crdt.OpSet, Kind: crdt.KindRegister, Field: "title", CL: 2, Value: []byte(`1`)}},
		{"set with CL 0", crdt.Op{Type: crdt.OpSet, Kind: crdt.KindRegister, Field: "title", CL: 0, Value: []byte(`1`)}},
		{"increment with even CL", crdt.Op{Type: crdt.OpIncrement, Kind: crdt.KindCounter, Field: "n", CL: 4, P: 9}},
		{"increment on a register", crdt.Op{Type: crdt.OpIncrement, Kind: crdt.KindRegister, Field: "title", CL: 1, P: 9}},
		{"set on a counter", crdt.Op{Type: crdt.OpSet, Kind: crdt.KindCounter, Field: "n", CL: 1, Value: []byte(`1`)}},
		{"set on a set", crdt.Op{Type: crdt.OpSet, Kind: crdt.KindSet, Field: "tags", CL: 1, Value: []byte(`1`)}},
		{"add on a register", crdt.Op{Type: crdt.OpAdd, Kind: crdt.KindRegister, Field: "title", CL: 1, Value: []byte(`1`)}},
		{"remove on a counter", crdt.Op{Type: crdt.OpRemove, Kind: crdt.KindCounter, Field: "n", CL: 1, Value: []byte(`1`)}},
		{"set with kind 0", crdt.Op{Type: crdt.OpSet, Field: "title", CL: 1, Value: []byte(`1`)}},
		{"set with unknown kind", crdt.Op{Type: crdt.OpSet, Kind: 9, Field: "title", CL: 1, Value: []byte(`1`)}},
		{"set without a field", crdt.Op{Type: crdt.OpSet, Kind: crdt.KindRegister, CL: 1, Value: []byte(`1`)}},
		{"increment without a field", crdt.Op{Type: crdt.OpIncrement, Kind: crdt.KindCounter, CL: 1, P: 1}},
		{"add without a field", crdt.Op{Type: crdt.OpAdd, Kind: crdt.KindSet, CL: 1, Value: []byte(`1`)}},
		{"op type 0", crdt.Op{Type: 0, Kind: crdt.KindRegister, Field: "title", CL: 1}},
		{"unknown op type", crdt.Op{Type: 7, Kind: crdt.KindRegister, Field: "title", CL: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			row := rowCopy(t, base)
			want := crdt.EncodeRow(row)
			eff, err := row.Apply(&tt.op, crdt.Dot{Site: siteB, Time: ts(5)})
			if !errors.Is(err, crdt.ErrMalformedOp) {
				t.Fatalf("Apply = %v, want ErrMalformedOp", err)
			}
			if eff.Changed || eff.Stale || eff.Concurrent != nil {
				t.Errorf("effect %+v, want zero", eff)
			}
			if !bytes.Equal(crdt.EncodeRow(row), want) {
				t.Errorf("malformed op changed the row")
			}
			// Through a transaction: the whole tx is refused, nothing changes.
			s := stateOf(t, &crdt.Tx{Site: siteA, Seq: 1, Time: ts(1), Ops: []crdt.Op{
				{Type: crdt.OpRevive, Collection: keyR0.Collection, Row: keyR0.Row, CL: 1},
				{Type: crdt.OpSet, Kind: crdt.KindRegister, Collection: keyR0.Collection, Row: keyR0.Row, Field: "title", CL: 1, Value: []byte(`"v1"`)},
			}})
			before := s.Hash()
			good := crdt.Op{Type: crdt.OpSet, Kind: crdt.KindRegister, Collection: keyR1.Collection, Row: keyR1.Row, Field: "title", CL: 1, Value: []byte(`"new row"`)}
			bad := tt.op
			bad.Collection, bad.Row = keyR0.Collection, keyR0.Row
			good2 := crdt.Op{Type: crdt.OpDelete, Collection: keyR0.Collection, Row: keyR0.Row, CL: 2}
			effects, err := s.Apply(&crdt.Tx{Site: siteB, Seq: 1, Time: ts(5), Ops: []crdt.Op{good, bad, good2}})
			if !errors.Is(err, crdt.ErrMalformedOp) || effects != nil {
				t.Fatalf("State.Apply = %v, %v; want ErrMalformedOp and no effects", effects, err)
			}
			if s.Hash() != before || s.Len() != 1 || s.Row(keyR1) != nil {
				t.Errorf("State.Apply of a tx with a malformed op changed the state")
			}
		})
	}
}

// TestRow_ApplyKindConflict: two replicas first write one field with
// different kinds concurrently (no schema). The higher kind wins whatever
// the order, and Join agrees with Apply.
func TestRow_ApplyKindConflict(t *testing.T) {
	a, b := &node{site: siteA}, &node{site: siteB}
	create := a.write(t, ts(1), setTitle(keyR1, `"x"`))
	b.recv(t, create)
	reg := a.write(t, ts(2), func(b *crdt.Builder) error { return b.Set(keyR1, "f", crdt.KindRegister, []byte(`"r"`)) })
	ctr := b.write(t, ts(3), func(b *crdt.Builder) error { return b.Increment(keyR1, "f", 4) })
	want := stateOf(t, create, reg, ctr).Hash()
	if got := stateOf(t, create, ctr, reg).Hash(); got != want {
		t.Fatal("register and counter writes in two orders give different states")
	}
	s := stateOf(t, create, reg, ctr)
	if f, _ := s.Row(keyR1).Field("f"); f.Kind != crdt.KindCounter || f.Counter.Value() != 4 {
		t.Fatalf("field f = %+v, want the counter (higher kind)", f)
	}
	// The builder refuses to write f as another kind on top of the counter.
	b2 := crdt.NewBuilder(siteA, 3, ts(5), func(k crdt.RowKey) (*crdt.Row, error) { return s.Row(k), nil })
	if err := b2.Set(keyR1, "f", crdt.KindRegister, []byte(`1`)); !errors.Is(err, crdt.ErrKindMismatch) {
		t.Fatalf("Set on a counter field = %v, want ErrKindMismatch", err)
	}
	if err := b2.Add(keyR1, "f", []byte(`1`)); !errors.Is(err, crdt.ErrKindMismatch) {
		t.Fatalf("Add on a counter field = %v, want ErrKindMismatch", err)
	}
	// Join of the two one-sided states agrees.
	j := joinAll(stateOf(t, create, reg), stateOf(t, create, ctr))
	if j.Hash() != want {
		t.Fatal("join disagrees with apply on a kind conflict")
	}
}

// TestRow_ApplyDuplicateReportsNoChange: at-least-once delivery re-applies
// ops; Effect.Changed ("the row's state changed") must then be false, or
// the store rewrites rows and watchers fire for nothing.
func TestRow_ApplyDuplicateReportsNoChange(t *testing.T) {
	a := &node{site: siteA}
	tx1 := a.write(t, ts(1), func(b *crdt.Builder) error {
		return errors.Join(
			b.Set(keyR0, "title", crdt.KindRegister, []byte(`"v1"`)),
			b.Increment(keyR0, "n", 2),
			b.Add(keyR0, "tags", []byte(`"x"`)),
			b.Add(keyR0, "tags", []byte(`"y"`)))
	})
	tx2 := a.write(t, ts(2), func(b *crdt.Builder) error {
		return errors.Join(
			b.Remove(keyR0, "tags", []byte(`"x"`)),
			b.Set(keyR0, "title", crdt.KindRegister, []byte(`"v2"`)),
			b.Increment(keyR0, "n", -1))
	})
	tx3 := a.write(t, ts(3), deleteRow(keyR0))
	synced := []*crdt.Tx{tx1, tx2, tx3}

	for upto := 2; upto <= 3; upto++ {
		row := stateOf(t, synced[:upto]...).Row(keyR0)
		for _, tx := range synced[:upto] {
			for i := range tx.Ops {
				op := &tx.Ops[i]
				t.Run(fmt.Sprintf("after tx%d/tx%d op %d %s %s", upto, tx.Seq, i, op.Type, op.Value), func(t *testing.T) {
					r := rowCopy(t, row)
					want := crdt.EncodeRow(r)
					eff, err := r.Apply(op, tx.Dot())
					if err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(crdt.EncodeRow(r), want) {
						t.Fatalf("duplicate changed the row")
					}
					if eff.Changed || len(eff.Concurrent) != 0 {
						t.Errorf("duplicate %s: effect %+v, want Changed false and no concurrency", op.Type, eff)
					}
				})
			}
		}
	}
}
