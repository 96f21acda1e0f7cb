package crdt_test

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/unosync/uno/crdt"
	"pgregory.net/rapid"
)

// seeded returns a node whose state holds row r0 alive with title "v0",
// counter n = 3 and tags {"x"}.
func seeded(t *testing.T) *node {
	t.Helper()
	a := &node{site: siteA}
	a.write(t, ts(1), func(b *crdt.Builder) error {
		return errors.Join(
			b.Set(keyR0, "title", crdt.KindRegister, []byte(`"v0"`)),
			b.Increment(keyR0, "n", 3),
			b.Add(keyR0, "tags", []byte(`"x"`)))
	})
	return a
}

func TestBuilder_Fold(t *testing.T) {
	x, y := []byte(`"x"`), []byte(`"y"`)
	tests := []struct {
		name  string
		build func(b *crdt.Builder) error
		ops   []crdt.OpType // the ops of the transaction
		check func(t *testing.T, row *crdt.Row)
	}{
		{
			name: "set twice keeps the last value",
			build: func(b *crdt.Builder) error {
				return errors.Join(b.Set(keyR0, "title", crdt.KindRegister, []byte(`"a"`)), b.Set(keyR0, "title", crdt.KindRegister, []byte(`"b"`)))
			},
			ops:   []crdt.OpType{crdt.OpSet},
			check: wantTitle(`"b"`),
		},
		{
			name: "increment twice sums",
			build: func(b *crdt.Builder) error {
				return errors.Join(b.Increment(keyR0, "n", 4), b.Increment(keyR0, "n", -6))
			},
			ops:   []crdt.OpType{crdt.OpIncrement},
			check: wantCounter(3 + 4 - 6),
		},
		{
			name:  "add then remove of a new member: absent, no op",
			build: func(b *crdt.Builder) error { return errors.Join(b.Add(keyR0, "tags", y), b.Remove(keyR0, "tags", y)) },
			ops:   nil,
			check: wantTags(`"x"`),
		},
		{
			name:  "remove then add of a new member: present",
			build: func(b *crdt.Builder) error { return errors.Join(b.Remove(keyR0, "tags", y), b.Add(keyR0, "tags", y)) },
			ops:   []crdt.OpType{crdt.OpAdd},
			check: wantTags(`"x"`, `"y"`),
		},
		{
			name: "add, remove, add of a new member: present",
			build: func(b *crdt.Builder) error {
				return errors.Join(b.Add(keyR0, "tags", y), b.Remove(keyR0, "tags", y), b.Add(keyR0, "tags", y))
			},
			ops:   []crdt.OpType{crdt.OpAdd},
			check: wantTags(`"x"`, `"y"`),
		},
		{
			name:  "remove then add of a present member: present",
			build: func(b *crdt.Builder) error { return errors.Join(b.Remove(keyR0, "tags", x), b.Add(keyR0, "tags", x)) },
			ops:   []crdt.OpType{crdt.OpAdd},
			check: wantTags(`"x"`),
		},
		{
			name:  "add then remove of a present member: absent",
			build: func(b *crdt.Builder) error { return errors.Join(b.Add(keyR0, "tags", x), b.Remove(keyR0, "tags", x)) },
			ops:   []crdt.OpType{crdt.OpRemove},
			check: wantTags(),
		},
		{
			name: "add, remove, add of a present member: present",
			build: func(b *crdt.Builder) error {
				return errors.Join(b.Add(keyR0, "tags", x), b.Remove(keyR0, "tags", x), b.Add(keyR0, "tags", x))
			},
			ops:   []crdt.OpType{crdt.OpAdd},
			check: wantTags(`"x"`),
		},
		{
			name: "remove twice: one op",
			build: func(b *crdt.Builder) error {
				return errors.Join(b.Remove(keyR0, "tags", x), b.Remove(keyR0, "tags", x))
			},
			ops:   []crdt.OpType{crdt.OpRemove},
			check: wantTags(),
		},
		{
			name:  "add twice: one op",
			build: func(b *crdt.Builder) error { return errors.Join(b.Add(keyR0, "tags", y), b.Add(keyR0, "tags", y)) },
			ops:   []crdt.OpType{crdt.OpAdd},
			check: wantTags(`"x"`, `"y"`),
		},
		{
			name:  "remove of a member never added: no op",
			build: func(b *crdt.Builder) error { return b.Remove(keyR0, "tags", y) },
			ops:   nil,
			check: wantTags(`"x"`),
		},
		{
			name: "set, delete, set: a write per life",
			build: func(b *crdt.Builder) error {
				err1 := b.Set(keyR0, "title", crdt.KindRegister, []byte(`"a"`))
				_, err2 := b.Delete(keyR0)
				return errors.Join(err1, err2,
					b.Set(keyR0, "title", crdt.KindRegister, []byte(`"b"`)), b.Set(keyR0, "title", crdt.KindRegister, []byte(`"c"`)))
			},
			ops: []crdt.OpType{crdt.OpSet, crdt.OpDelete, crdt.OpRevive, crdt.OpSet},
			check: func(t *testing.T, row *crdt.Row) {
				wantTitle(`"c"`)(t, row)
				if row.CL != 3 || len(row.Fields) != 1 {
					t.Errorf("row CL %d fields %v, want CL 3 with only title", row.CL, fieldNames(row))
				}
			},
		},
		{
			name: "increment, delete, increment: the new life starts at zero",
			build: func(b *crdt.Builder) error {
				err1 := b.Increment(keyR0, "n", 10)
				_, err2 := b.Delete(keyR0)
				return errors.Join(err1, err2, b.Increment(keyR0, "n", 2))
			},
			ops:   []crdt.OpType{crdt.OpIncrement, crdt.OpDelete, crdt.OpRevive, crdt.OpIncrement},
			check: wantCounter(2),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := seeded(t)
			b := crdt.NewBuilder(siteA, 2, ts(2), func(k crdt.RowKey) (*crdt.Row, error) { return a.state.Row(k), nil })
			if err := tt.build(b); err != nil {
				t.Fatal(err)
			}
			work, err := b.Row(keyR0)
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, work)
			workEnc := crdt.EncodeRow(work)
			tx := b.Tx()
			var types []crdt.OpType
			for _, op := range tx.Ops {
				types = append(types, op.Type)
			}
			if !slices.Equal(types, tt.ops) {
				t.Errorf("ops %v, want %v", types, tt.ops)
			}
			mustApply(t, &a.state, tx)
			tt.check(t, a.state.Row(keyR0))
			if !bytes.Equal(crdt.EncodeRow(a.state.Row(keyR0)), workEnc) {
				t.Errorf("applied row differs from the builder's working row")
			}
		})
	}
}

func wantTitle(v string) func(*testing.T, *crdt.Row) {
	return func(t *testing.T, row *crdt.Row) {
		t.Helper()
		f, ok := row.Field("title")
		if !ok {
			t.Fatalf("no title")
		}
		if win, _ := f.Register.Winner(); string(win.Value) != v || len(f.Register.Entries) != 1 {
			t.Errorf("title %s, want only %s", showRegister(f.Register), v)
		}
	}
}

func wantCounter(v int64) func(*testing.T, *crdt.Row) {
	return func(t *testing.T, row *crdt.Row) {
		t.Helper()
		f, ok := row.Field("n")
		if !ok || f.Counter.Value() != v {
			t.Errorf("counter %+v, want %d", f, v)
		}
	}
}

func wantTags(members ...string) func(*testing.T, *crdt.Row) {
	return func(t *testing.T, row *crdt.Row) {
		t.Helper()
		f, ok := row.Field("tags")
		if !ok {
			t.Fatalf("no tags")
		}
		var got []string
		for _, v := range f.Set.Values() {
			got = append(got, string(v))
		}
		if !slices.Equal(got, members) {
			t.Errorf("tags %q, want %q", got, members)
		}
		for _, m := range members {
			if !f.Set.Has([]byte(m)) {
				t.Errorf("Has(%s) = false", m)
			}
		}
	}
}

// TestBuilder_Ops checks what the ops carry: a set's causal context is the
// field's, an increment's parts are cumulative for the writing site, a
// remove's tags are the adds seen.
func TestBuilder_Ops(t *testing.T) {
	a := seeded(t)
	row := a.state.Row(keyR0)
	title, _ := row.Field("title")
	tags, _ := row.Field("tags")
	b := crdt.NewBuilder(siteA, 2, ts(2), func(k crdt.RowKey) (*crdt.Row, error) { return a.state.Row(k), nil })
	if err := errors.Join(
		b.Set(keyR0, "title", crdt.KindRegister, []byte(`"v1"`)),
		b.Increment(keyR0, "n", 2),
		b.Increment(keyR0, "n", -1),
		b.Remove(keyR0, "tags", []byte(`"x"`)),
	); err != nil {
		t.Fatal(err)
	}
	if b.Len() != 3 {
		t.Fatalf("Len() = %d, want 3", b.Len())
	}
	tx := b.Tx()
	if tx.Site != siteA || tx.Seq != 2 || tx.Time != ts(2) || tx.Dot() != (crdt.Dot{Site: siteA, Time: ts(2)}) {
		t.Errorf("tx header %v/%d/%s", tx.Site, tx.Seq, tx.Time)
	}
	for _, op := range tx.Ops {
		if op.Collection != keyR0.Collection || op.Row != keyR0.Row || op.CL != 1 {
			t.Errorf("op %s on %s/%s CL %d, want %v CL 1", op.Type, op.Collection, op.Row, op.CL, keyR0)
		}
	}
	set, inc, rm := tx.Ops[0], tx.Ops[1], tx.Ops[2]
	if set.Type != crdt.OpSet || set.Kind != crdt.KindRegister || set.Field != "title" || !slices.Equal(set.Context, title.Register.Context) {
		t.Errorf("set op %+v, want context %v", set, title.Register.Context)
	}
	if inc.Type != crdt.OpIncrement || inc.Kind != crdt.KindCounter || inc.P != 5 || inc.N != 1 {
		t.Errorf("increment op %+v, want cumulative P 5, N 1", inc)
	}
	if want := tags.Set.Observed([]byte(`"x"`)); rm.Type != crdt.OpRemove || len(want) != 1 || !slices.Equal(rm.Tags, want) {
		t.Errorf("remove op %+v, want tags %v", rm, want)
	}

	// Another site's increment carries its own part only.
	c := &node{site: siteC}
	c.recv(t, a.txs...)
	tx2 := c.write(t, ts(3), func(b *crdt.Builder) error { return b.Increment(keyR0, "n", 1) })
	if op := tx2.Ops[0]; op.P != 1 || op.N != 0 {
		t.Errorf("site C's increment carries P %d N %d, want 1 0", op.P, op.N)
	}
	if f, _ := c.state.Row(keyR0).Field("n"); f.Counter.Value() != 4 {
		t.Errorf("counter %d, want 4", f.Counter.Value())
	}
}

func TestBuilder_KindMismatch(t *testing.T) {
	tests := []struct {
		name string
		fn   func(b *crdt.Builder) error
	}{
		{"increment a register", func(b *crdt.Builder) error { return b.Increment(keyR0, "title", 1) }},
		{"add to a register", func(b *crdt.Builder) error { return b.Add(keyR0, "title", []byte(`1`)) }},
		{"set a counter", func(b *crdt.Builder) error { return b.Set(keyR0, "n", crdt.KindRegister, []byte(`1`)) }},
		{"remove from a counter", func(b *crdt.Builder) error { return b.Remove(keyR0, "n", []byte(`1`)) }},
		{"set a set", func(b *crdt.Builder) error { return b.Set(keyR0, "tags", crdt.KindRegister, []byte(`1`)) }},
		{"change a register", func(b *crdt.Builder) error {
			return errors.Join(b.Set(keyR0, "new", crdt.KindRegister, []byte(`1`)), b.Change(keyR0, "new", must(emptyChange(siteA, 1))))
		}},
		{"increment a register set earlier in the tx", func(b *crdt.Builder) error {
			return errors.Join(b.Set(keyR0, "new", crdt.KindRegister, []byte(`1`)), b.Increment(keyR0, "new", 1))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := seeded(t)
			b := crdt.NewBuilder(siteA, 2, ts(2), func(k crdt.RowKey) (*crdt.Row, error) { return a.state.Row(k), nil })
			before := b.Len()
			err := tt.fn(b)
			if !errors.Is(err, crdt.ErrKindMismatch) {
				t.Fatalf("err = %v, want ErrKindMismatch", err)
			}
			if b.Len() > before+1 { // the last case made one valid op first
				t.Errorf("a refused op was added: %d ops", b.Len())
			}
		})
	}
}

func TestBuilder_Delete(t *testing.T) {
	a := seeded(t)
	a.write(t, ts(2), deleteRow(keyR1))
	b := crdt.NewBuilder(siteA, 2, ts(3), func(k crdt.RowKey) (*crdt.Row, error) { return a.state.Row(k), nil })
	never := crdt.RowKey{Collection: "todo", Row: "never"}
	if ok, err := b.Delete(never); ok || err != nil {
		t.Errorf("Delete of a never-seen row = %v, %v; want false", ok, err)
	}
	if ok, err := b.Delete(keyR0); !ok || err != nil {
		t.Errorf("Delete of a live row = %v, %v; want true", ok, err)
	}
	if ok, err := b.Delete(keyR0); ok || err != nil {
		t.Errorf("second Delete in one tx = %v, %v; want false", ok, err)
	}
	if b.Len() != 1 || b.Tx().Ops[0].Type != crdt.OpDelete || b.Tx().Ops[0].CL != 2 {
		t.Fatalf("ops %+v, want one delete to CL 2", b.Tx().Ops)
	}
	mustApply(t, &a.state, b.Tx())

	b = crdt.NewBuilder(siteA, 3, ts(4), func(k crdt.RowKey) (*crdt.Row, error) { return a.state.Row(k), nil })
	if ok, err := b.Delete(keyR0); ok || err != nil {
		t.Errorf("Delete of a deleted row = %v, %v; want false", ok, err)
	}
	if err := b.Set(keyR0, "title", crdt.KindRegister, []byte(`"back"`)); err != nil {
		t.Fatal(err)
	}
	ops := b.Tx().Ops
	if len(ops) != 2 || ops[0].Type != crdt.OpRevive || ops[0].CL != 3 || ops[1].CL != 3 || len(ops[1].Context) != 0 {
		t.Fatalf("ops %+v, want a revive to CL 3 then a set in life 3 with an empty context", ops)
	}
}

func TestBuilder_Create(t *testing.T) {
	a := seeded(t)
	a.write(t, ts(2), func(b *crdt.Builder) error {
		_, err := b.Delete(keyR0)
		return err
	})
	alive := crdt.RowKey{Collection: "todo", Row: "alive"}
	a.write(t, ts(3), setTitle(alive, `"here"`))
	never := crdt.RowKey{Collection: "todo", Row: "never"}
	tests := []struct {
		name   string
		k      crdt.RowKey
		wantCL uint64 // the revive's CL; 0 for no op
	}{
		{"never-seen row", never, 1},
		{"deleted row", keyR0, 3},
		{"alive row", alive, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := crdt.NewBuilder(siteA, 4, ts(4), func(k crdt.RowKey) (*crdt.Row, error) { return a.state.Row(k), nil })
			before, _ := b.Row(tt.k)
			beforeEnc := crdt.EncodeRow(before)
			for range 2 { // a second Create is a no-op
				if err := b.Create(tt.k); err != nil {
					t.Fatal(err)
				}
			}
			row, _ := b.Row(tt.k)
			if !row.Alive() {
				t.Fatalf("row not alive after Create (CL %d)", row.CL)
			}
			ops := b.Tx().Ops
			if tt.wantCL == 0 {
				if len(ops) != 0 || !bytes.Equal(crdt.EncodeRow(row), beforeEnc) {
					t.Errorf("Create of an alive row: ops %+v, row changed %v", ops, !bytes.Equal(crdt.EncodeRow(row), beforeEnc))
				}
				return
			}
			if len(ops) != 1 || ops[0].Type != crdt.OpRevive || ops[0].CL != tt.wantCL || len(row.Fields) != 0 {
				t.Errorf("ops %+v, fields %v; want one revive to CL %d and no fields", ops, fieldNames(row), tt.wantCL)
			}
		})
	}
}

func TestBuilder_GetError(t *testing.T) {
	errStore := errors.New("store: closed")
	b := crdt.NewBuilder(siteA, 1, ts(1), func(crdt.RowKey) (*crdt.Row, error) { return nil, errStore })
	for name, fn := range map[string]func() error{
		"Set":       func() error { return b.Set(keyR0, "title", crdt.KindRegister, []byte(`1`)) },
		"Increment": func() error { return b.Increment(keyR0, "n", 1) },
		"Add":       func() error { return b.Add(keyR0, "tags", []byte(`1`)) },
		"Remove":    func() error { return b.Remove(keyR0, "tags", []byte(`1`)) },
		"Delete":    func() error { _, err := b.Delete(keyR0); return err },
		"Create":    func() error { return b.Create(keyR0) },
		"Row":       func() error { _, err := b.Row(keyR0); return err },
	} {
		if err := fn(); !errors.Is(err, errStore) {
			t.Errorf("%s: err = %v, want the get error", name, err)
		}
	}
	if b.Len() != 0 {
		t.Errorf("ops were added: %d", b.Len())
	}
}

// TestBuilder_DoesNotModifyGet: the builder works on copies; the rows its
// get function returns stay as they were.
func TestBuilder_DoesNotModifyGet(t *testing.T) {
	a := seeded(t)
	before := a.state.Hash()
	b := crdt.NewBuilder(siteA, 2, ts(2), func(k crdt.RowKey) (*crdt.Row, error) { return a.state.Row(k), nil })
	_, _ = b.Delete(keyR1)
	if err := errors.Join(
		b.Set(keyR0, "title", crdt.KindRegister, []byte(`"v1"`)),
		b.Increment(keyR0, "n", 1),
		b.Add(keyR0, "tags", []byte(`"y"`)),
		b.Remove(keyR0, "tags", []byte(`"x"`)),
		b.Add(keyR0, "tags", []byte(`"x"`)),
	); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Delete(keyR0); err != nil {
		t.Fatal(err)
	}
	if a.state.Hash() != before {
		t.Fatal("building a transaction changed the state it read")
	}
}

// TestBuilder_TxMatchesTouched: for random builder calls, applying the
// transaction gives the builder's working rows, both on the state the
// builder read and (when it read an empty state) on a fresh one.
func TestBuilder_TxMatchesTouched(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		var s crdt.State
		seq := uint64(0)
		txs := rapid.IntRange(1, 4).Draw(t, "txs")
		for i := range txs {
			seq++
			b := crdt.NewBuilder(siteA, seq, ts(int64(i)), func(k crdt.RowKey) (*crdt.Row, error) { return s.Row(k), nil })
			fresh := s.Len() == 0
			n := rapid.IntRange(0, 12).Draw(t, "ops")
			keys := simAllKeys()[:2]
			for j := range n {
				k := rapid.SampledFrom(keys).Draw(t, "key")
				var err error
				switch rapid.IntRange(0, 6).Draw(t, "call") {
				case 0:
					err = b.Set(k, rapid.SampledFrom(simRegisters).Draw(t, "field"), crdt.KindRegister, fmt.Appendf(nil, "%d", j))
				case 1:
					err = b.Increment(k, simCounter, int64(rapid.IntRange(-5, 5).Draw(t, "delta")))
				case 2:
					err = b.Add(k, simSet, []byte(rapid.SampledFrom(simMembers).Draw(t, "member")))
				case 3:
					err = b.Remove(k, simSet, []byte(rapid.SampledFrom(simMembers).Draw(t, "member")))
				case 4:
					_, err = b.Delete(k)
				case 5:
					err = b.Create(k)
				default:
					_, err = b.Row(k)
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			touchedKeys, rows := b.Touched()
			want := make(map[crdt.RowKey][]byte)
			for i, k := range touchedKeys {
				want[k] = crdt.EncodeRow(rows[i])
			}
			tx := b.Tx()
			if fresh {
				var f crdt.State
				if _, err := f.Apply(tx); err != nil {
					t.Fatal(err)
				}
				for k, enc := range want {
					if got := encodedRow(&f, k); !bytes.Equal(got, enc) {
						t.Fatalf("fresh state: row %v differs from Touched", k)
					}
				}
			}
			if _, err := s.Apply(tx); err != nil {
				t.Fatal(err)
			}
			for k, enc := range want {
				if got := encodedRow(&s, k); !bytes.Equal(got, enc) {
					t.Fatalf("row %v differs from Touched", k)
				}
			}
			// Applying it again changes nothing.
			h := s.Hash()
			if _, err := s.Apply(tx); err != nil || s.Hash() != h {
				t.Fatalf("re-applying the tx changed the state (err %v)", err)
			}
		}
	})
}

// TestBuilder_BadInputReturnsError: bad arguments are bad input, which
// never panics (STYLE §4) but returns an error and adds no op.
func TestBuilder_BadInputReturnsError(t *testing.T) {
	tests := []struct {
		name string
		fn   func(b *crdt.Builder) error
	}{
		{"Set with kind counter", func(b *crdt.Builder) error { return b.Set(keyR0, "new", crdt.KindCounter, []byte(`1`)) }},
		{"Set with kind set", func(b *crdt.Builder) error { return b.Set(keyR0, "new", crdt.KindSet, []byte(`1`)) }},
		{"Set with kind 0", func(b *crdt.Builder) error { return b.Set(keyR0, "new", 0, []byte(`1`)) }},
		{"Set with an empty field", func(b *crdt.Builder) error { return b.Set(keyR0, "", crdt.KindRegister, []byte(`1`)) }},
		{"Increment an empty field", func(b *crdt.Builder) error { return b.Increment(keyR0, "", 1) }},
		{"Add to an empty field", func(b *crdt.Builder) error { return b.Add(keyR0, "", []byte(`1`)) }},
		{"Set with kind counter on a new row", func(b *crdt.Builder) error { return b.Set(keyR1, "new", crdt.KindCounter, []byte(`1`)) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := seeded(t)
			b := crdt.NewBuilder(siteA, 2, ts(2), func(k crdt.RowKey) (*crdt.Row, error) { return a.state.Row(k), nil })
			var err error
			func() {
				defer func() {
					if p := recover(); p != nil {
						err = fmt.Errorf("panic: %v", p)
					}
				}()
				err = tt.fn(b)
			}()
			if err == nil || strings.HasPrefix(err.Error(), "panic: ") {
				t.Fatalf("err = %v, want an error and no panic", err)
			}
			if b.Len() != 0 {
				t.Errorf("%d ops added for refused input", b.Len())
			}
		})
	}
}

// TestBuilder_RemoveFromDeadRowIsNoOp: removing a member from a row that is
// not alive has nothing to remove (a dead row has no fields), like removing
// a member never added from a live row. It must not emit an op, and above
// all must not bring the row back to life.
func TestBuilder_RemoveFromDeadRowIsNoOp(t *testing.T) {
	a := seeded(t)
	a.write(t, ts(2), deleteRow(keyR0))
	for name, k := range map[string]crdt.RowKey{"deleted row": keyR0, "never-seen row": keyR1} {
		t.Run(name, func(t *testing.T) {
			b := crdt.NewBuilder(siteA, 3, ts(3), func(k crdt.RowKey) (*crdt.Row, error) { return a.state.Row(k), nil })
			if err := b.Remove(k, "tags", []byte(`"x"`)); err != nil {
				t.Fatal(err)
			}
			if row, _ := b.Row(k); row.Alive() || b.Len() != 0 {
				t.Errorf("Remove from a %s: row alive=%v (CL %d), ops %+v; want no op and the row still dead", name, row.Alive(), row.CL, b.Tx().Ops)
			}
		})
	}
}
