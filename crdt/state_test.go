package crdt_test

import (
	"bytes"
	"errors"
	"slices"
	"testing"

	"github.com/unosync/uno/crdt"
)

// TestState_JoinThenApplyLeavesSourceAlone: after s.Join(o), applying ops
// to s must not change o. (A store that joins a snapshot into its state and
// then applies local writes would otherwise corrupt the snapshot, or two
// in-memory replicas would silently share state.)
func TestState_JoinThenApplyLeavesSourceAlone(t *testing.T) {
	b := &node{site: siteB}
	tx1 := b.write(t, ts(1), func(b *crdt.Builder) error {
		return errors.Join(b.Increment(keyR0, "n", 1), b.Add(keyR0, "tags", []byte(`"x"`)))
	})
	tx2 := b.write(t, ts(2), func(b *crdt.Builder) error {
		return errors.Join(b.Increment(keyR0, "n", 1), b.Add(keyR0, "tags", []byte(`"x"`)))
	})

	t.Run("State.Join", func(t *testing.T) {
		src := stateOf(t, tx1)
		before := src.Hash()
		var dst crdt.State
		dst.Join(src)
		mustApply(t, &dst, tx2)
		if src.Hash() != before {
			f, _ := src.Row(keyR0).Field("n")
			t.Errorf("applying to the joined state changed the state joined from (its counter is now %d, was 1)", f.Counter.Value())
		}
	})
	t.Run("Row.Join", func(t *testing.T) {
		src := stateOf(t, tx1).Row(keyR0)
		before := crdt.EncodeRow(src)
		joined := crdt.Row{}.Join(*src)
		if _, err := joined.Apply(&tx2.Ops[0], tx2.Dot()); err != nil {
			t.Fatal(err)
		}
		if _, err := joined.Apply(&tx2.Ops[1], tx2.Dot()); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(crdt.EncodeRow(src), before) {
			t.Errorf("applying to a Row.Join result changed its argument")
		}
	})
}

func TestState_Keys(t *testing.T) {
	var s crdt.State
	if s.Len() != 0 || len(s.Keys()) != 0 || s.Row(keyR0) != nil {
		t.Fatal("zero State is not empty")
	}
	keys := []crdt.RowKey{{"b", "1"}, {"a", "2"}, {"a", "10"}, {"ab", ""}, {"a", "1"}}
	a := &node{site: siteA}
	for i, k := range keys {
		a.write(t, ts(int64(i)), setTitle(k, `1`))
	}
	want := []crdt.RowKey{{"a", "1"}, {"a", "10"}, {"a", "2"}, {"ab", ""}, {"b", "1"}}
	if got := a.state.Keys(); !slices.Equal(got, want) {
		t.Errorf("Keys() = %v, want %v", got, want)
	}
	if a.state.Len() != len(keys) {
		t.Errorf("Len() = %d, want %d", a.state.Len(), len(keys))
	}
}

func TestState_Hash(t *testing.T) {
	var empty crdt.State
	if empty.Hash() != crdt.NewHasher().Sum() {
		t.Error("empty state hash differs from an empty Hasher's")
	}
	a := &node{site: siteA}
	a.write(t, ts(1), setTitle(keyR0, `"v"`))
	a.write(t, ts(2), setTitle(keyR1, `"w"`))

	// Hasher over the rows in order gives State.Hash.
	h := crdt.NewHasher()
	for _, k := range a.state.Keys() {
		h.Add(k, a.state.Row(k))
	}
	if h.Sum() != a.state.Hash() {
		t.Error("Hasher over Keys() differs from Hash()")
	}
	// The hash depends on keys and rows: moving a row to another key changes it.
	b := &node{site: siteA}
	b.write(t, ts(1), setTitle(crdt.RowKey{Collection: "todo", Row: "r0x"}, `"v"`))
	b.write(t, ts(2), setTitle(keyR1, `"w"`))
	if a.state.Hash() == b.state.Hash() {
		t.Error("different keys, same hash")
	}
	// Key boundaries are length-prefixed: ("ab","c") and ("a","bc") differ.
	c1, c2 := &node{site: siteA}, &node{site: siteA}
	c1.write(t, ts(1), setTitle(crdt.RowKey{Collection: "ab", Row: "c"}, `1`))
	c2.write(t, ts(1), setTitle(crdt.RowKey{Collection: "a", Row: "bc"}, `1`))
	if c1.state.Hash() == c2.state.Hash() {
		t.Error("(ab, c) and (a, bc) hash alike")
	}
}

func TestHasher_AddOutOfOrderPanics(t *testing.T) {
	row := &crdt.Row{CL: 1}
	for _, keys := range [][]crdt.RowKey{
		{keyR1, keyR0},
		{keyR0, keyR0},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Add(%v) did not panic", keys)
				}
			}()
			h := crdt.NewHasher()
			for _, k := range keys {
				h.Add(k, row)
			}
		}()
	}
}
