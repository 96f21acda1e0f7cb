package crdt_test

import (
	"slices"
	"testing"

	"github.com/unosync/uno/crdt"
)

// Register concurrency is detected from causal contexts, not guessed from
// timestamps: a write concurrent with a held value is reported in
// Effect.Concurrent, both are kept as siblings, and every replica picks the
// same LWW winner by (timestamp, site).

func titleOf(tb testing.TB, s *crdt.State, k crdt.RowKey) crdt.Register {
	tb.Helper()
	f, ok := s.Row(k).Field("title")
	if !ok {
		tb.Fatalf("no title in %v", k)
	}
	return f.Register
}

func dotsOf(entries []crdt.Entry) []crdt.Dot {
	var out []crdt.Dot
	for _, e := range entries {
		out = append(out, e.Dot)
	}
	return out
}

// concurrentOf returns the Concurrent entries of the register effects.
func concurrentOf(effects []crdt.OpEffect) []crdt.Entry {
	var out []crdt.Entry
	for _, e := range effects {
		if e.Op.Type == crdt.OpSet {
			out = append(out, e.Concurrent...)
		}
	}
	return out
}

func TestRegister_Concurrent(t *testing.T) {
	for _, tc := range []struct {
		name   string
		ta, tb crdt.Timestamp
	}{
		{"B later", ts(10), ts(11)},
		{"A later", ts(11), ts(10)},
		{"same timestamp: site breaks the tie", ts(10), ts(10)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b, c := &node{site: siteA}, &node{site: siteB}, &node{site: siteC}
			create := a.write(t, ts(1), setTitle(keyR0, `"v0"`))
			b.recv(t, create)
			c.recv(t, create)
			wa := a.write(t, tc.ta, setTitle(keyR0, `"a"`))
			wb := b.write(t, tc.tb, setTitle(keyR0, `"b"`))
			entryA := crdt.Entry{Dot: wa.Dot(), Value: []byte(`"a"`)}
			entryB := crdt.Entry{Dot: wb.Dot(), Value: []byte(`"b"`)}
			want, lose := entryB, entryA
			if wa.Dot().Compare(wb.Dot()) > 0 {
				want, lose = entryA, entryB
			}

			// Each side learns of the other's write as concurrent with its own.
			if got := dotsOf(concurrentOf(a.recv(t, wb))); !slices.Equal(got, []crdt.Dot{entryA.Dot}) {
				t.Errorf("A receiving B's write: concurrent %v, want A's own entry %v", got, entryA.Dot)
			}
			if got := dotsOf(concurrentOf(b.recv(t, wa))); !slices.Equal(got, []crdt.Dot{entryB.Dot}) {
				t.Errorf("B receiving A's write: concurrent %v, want B's own entry %v", got, entryB.Dot)
			}
			// A third replica sees the conflict when the second write arrives.
			if got := concurrentOf(c.recv(t, wb)); len(got) != 0 {
				t.Errorf("C receiving the first write: concurrent %v, want none (it overwrites v0, which it saw)", got)
			}
			if got := dotsOf(concurrentOf(c.recv(t, wa))); !slices.Equal(got, []crdt.Dot{entryB.Dot}) {
				t.Errorf("C receiving the second write: concurrent %v, want %v", got, entryB.Dot)
			}

			// Everyone keeps both as siblings and agrees on the winner.
			for name, s := range map[string]*crdt.State{"A": &a.state, "B": &b.state, "C": &c.state} {
				reg := titleOf(t, s, keyR0)
				wantDots := []crdt.Dot{lose.Dot, want.Dot}
				if got := dotsOf(reg.Entries); !slices.Equal(got, wantDots) {
					t.Errorf("replica %s: entries %v, want siblings %v", name, got, wantDots)
				}
				if win, ok := reg.Winner(); !ok || win.Dot != want.Dot || string(win.Value) != string(want.Value) {
					t.Errorf("replica %s: winner %v=%s, want %v=%s", name, win.Dot, win.Value, want.Dot, want.Value)
				}
			}
			if a.state.Hash() != b.state.Hash() || a.state.Hash() != c.state.Hash() {
				t.Fatal("replicas differ")
			}

			// A duplicate delivery reports no concurrency and changes nothing.
			h := a.state.Hash()
			effects := a.recv(t, wb)
			if got := concurrentOf(effects); len(got) != 0 || effects[0].Changed {
				t.Errorf("duplicate: concurrent %v, changed %v", got, effects[0].Changed)
			}
			if a.state.Hash() != h {
				t.Error("duplicate changed the state")
			}

			// A write that saw both collapses the register to one entry.
			resolve := c.write(t, ts(20), setTitle(keyR0, `"merged"`))
			if ctx := resolve.Ops[0].Context; !ctx.Covers(wa.Dot()) || !ctx.Covers(wb.Dot()) {
				t.Fatalf("resolving write's context %v does not cover both siblings", ctx)
			}
			for name, n := range map[string]*node{"A": a, "B": b} {
				if got := concurrentOf(n.recv(t, resolve)); len(got) != 0 {
					t.Errorf("replica %s: resolving write reported concurrent %v", name, got)
				}
			}
			for name, s := range map[string]*crdt.State{"A": &a.state, "B": &b.state, "C": &c.state} {
				reg := titleOf(t, s, keyR0)
				if len(reg.Entries) != 1 || reg.Entries[0].Dot != resolve.Dot() {
					t.Errorf("replica %s: entries %v, want only the resolving write", name, dotsOf(reg.Entries))
				}
			}
		})
	}
}

// TestRegister_ConcurrentPartialView: a write that saw one of two siblings
// replaces that one and is concurrent with the other only.
func TestRegister_ConcurrentPartialView(t *testing.T) {
	a, b, c := &node{site: siteA}, &node{site: siteB}, &node{site: siteC}
	create := a.write(t, ts(1), setTitle(keyR0, `"v0"`))
	b.recv(t, create)
	c.recv(t, create)
	wa := a.write(t, ts(10), setTitle(keyR0, `"a"`))
	wb := b.write(t, ts(10), setTitle(keyR0, `"b"`))
	c.recv(t, wa)
	wc := c.write(t, ts(11), setTitle(keyR0, `"c"`)) // saw a, not b

	a.recv(t, wb)
	if got := dotsOf(concurrentOf(a.recv(t, wc))); !slices.Equal(got, []crdt.Dot{wb.Dot()}) {
		t.Errorf("concurrent %v, want only B's %v", got, wb.Dot())
	}
	if got, want := dotsOf(titleOf(t, &a.state, keyR0).Entries), []crdt.Dot{wb.Dot(), wc.Dot()}; !slices.Equal(got, want) {
		t.Errorf("entries %v, want %v", got, want)
	}
	b.recv(t, wa, wc)
	c.recv(t, wb)
	if a.state.Hash() != b.state.Hash() || a.state.Hash() != c.state.Hash() {
		t.Fatal("replicas differ")
	}
}

// TestRegister_OverwrittenWriteArrivesLate: a state that already holds a
// write which overwrote w (learned by a join) treats w as seen: no
// concurrency, no change.
func TestRegister_OverwrittenWriteArrivesLate(t *testing.T) {
	a, b := &node{site: siteA}, &node{site: siteB}
	w1 := a.write(t, ts(1), setTitle(keyR0, `"one"`))
	b.recv(t, w1)
	b.write(t, ts(2), setTitle(keyR0, `"two"`))

	var late crdt.State
	late.Join(&b.state)
	h := late.Hash()
	effects := mustApply(t, &late, w1)
	for _, e := range effects {
		if e.Changed || len(e.Concurrent) != 0 {
			t.Errorf("%s: effect %+v, want nothing", e.Op.Type, e.Effect)
		}
	}
	if late.Hash() != h {
		t.Error("an overwritten write changed the state")
	}
}
