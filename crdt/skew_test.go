package crdt_test

import (
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/unosync/uno/crdt"
	"pgregory.net/rapid"
)

// TestClock_SkewedWriteAfterObserveWins is the clock-skew target: with wall
// clocks skewed by up to ±24 h (and jumping, and restarting), a register
// write made after observing another write to the same field never loses
// to it. Checked after every step at every replica (the observed write is
// gone from the register wherever the later one is), on the timestamps
// (the later transaction is stamped later), and on the synced state.
func TestClock_SkewedWriteAfterObserveWins(t *testing.T) {
	cfg := defaultSimConfig()
	cfg.keys = cfg.keys[:2]
	cfg.ops = []simOp{simOpSet, simOpSet, simOpSet, simOpSet, simOpDelete}
	cfg.maxOpsPerTx = 2
	rapid.Check(t, func(t *rapid.T) {
		w := newWorld(t, cfg)
		steps := rapid.IntRange(10, 100).Draw(t, "steps")
		for range steps {
			w.step(t)
			for _, r := range w.reps {
				w.checkNoObservedWinner(t, r)
			}
		}
		w.checkHLC(t)
		w.deliverAll(t, rand.New(rand.NewPCG(rapid.Uint64().Draw(t, "seed"), 0)))
		for _, r := range w.reps {
			w.checkNoObservedWinner(t, r)
		}
		w.checkModel(t, &w.reps[0].state)
	})
}

// checkNoObservedWinner checks that no register entry at r was written by a
// transaction that r knows was observed by a later write to the same field
// in the same life.
func (w *world) checkNoObservedWinner(t *rapid.T, r *replica) {
	for _, k := range r.state.Keys() {
		row := r.state.Row(k)
		for _, f := range row.Fields {
			if f.Kind != crdt.KindRegister {
				continue
			}
			win, _ := f.Register.Winner()
			for _, e := range f.Register.Entries {
				old := w.byDot[e.Dot]
				for site, seq := range r.applied {
					for _, st := range w.log[site][:seq] {
						if st == old || !st.after(old) || !writes(st.tx, k, f.Name, row.CL) {
							continue
						}
						if st.tx.Time <= old.tx.Time {
							t.Fatalf("%v was made after observing %v but is not later", st, old)
						}
						what := "keeps"
						if e.Dot == win.Dot {
							what = "lets win"
						}
						t.Fatalf("replica %d: %v.%s %s the write of %v although %v overwrote it after observing it",
							r.idx, k, f.Name, what, old, st)
					}
				}
			}
		}
	}
}

// writes reports whether tx sets field of row k in life cl.
func writes(tx *crdt.Tx, k crdt.RowKey, field string, cl uint64) bool {
	for _, op := range tx.Ops {
		if op.Type == crdt.OpSet && op.Collection == k.Collection && op.Row == k.Row && op.Field == field && op.CL == cl {
			return true
		}
	}
	return false
}

// TestClock_BehindWriterWins walks the skew target by hand: B's wall clock
// is 48 h behind A's, yet B's write, made after observing A's, is stamped
// later and wins at every replica, whatever the delivery order.
func TestClock_BehindWriterWins(t *testing.T) {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	siteA, siteB := crdt.SiteID{0xAA}, crdt.SiteID{0x0B} // A also wins timestamp ties
	clockA := crdt.NewClock(0, simMaxDrift)
	clockB := crdt.NewClock(0, simMaxDrift)
	wallA, wallB := now.Add(24*time.Hour), now.Add(-24*time.Hour)
	k := crdt.RowKey{Collection: "todo", Row: "r0"}

	var stateA, stateB crdt.State
	txA := buildTx(t, &stateA, siteA, 1, clockA.Now(wallA), func(b *crdt.Builder) error {
		return b.Set(k, "title", crdt.KindRegister, []byte(`"from A"`))
	})
	mustApply(t, &stateA, txA)

	if err := clockB.Observe(txA.Time, wallB.Add(time.Second)); err != nil {
		t.Fatalf("Observe: %v", err)
	}
	mustApply(t, &stateB, txA)
	txB := buildTx(t, &stateB, siteB, 1, clockB.Now(wallB.Add(2*time.Second)), func(b *crdt.Builder) error {
		return b.Set(k, "title", crdt.KindRegister, []byte(`"from B"`))
	})
	mustApply(t, &stateB, txB)

	if txB.Time <= txA.Time {
		t.Fatalf("B's write %s is not after A's %s", txB.Time, txA.Time)
	}
	var stateC, stateD crdt.State
	mustApply(t, &stateA, txB)
	mustApply(t, &stateC, txA)
	mustApply(t, &stateC, txB)
	mustApply(t, &stateD, txB) // a join is order-free: even B's write first
	mustApply(t, &stateD, txA)
	for name, s := range map[string]*crdt.State{"A": &stateA, "B": &stateB, "C": &stateC, "D": &stateD} {
		f, ok := s.Row(k).Field("title")
		if !ok {
			t.Fatalf("replica %s: no title", name)
		}
		if win, _ := f.Register.Winner(); string(win.Value) != `"from B"` || len(f.Register.Entries) != 1 {
			t.Errorf("replica %s: title %s", name, showRegister(f.Register))
		}
		if s.Hash() != stateB.Hash() {
			t.Errorf("replica %s: hash differs from B's", name)
		}
	}
}

// TestClock_FarFutureRemoteRejected: a timestamp beyond the drift bound
// is refused and leaves the clock as it was, so it cannot drag the
// replica's clock (and every later write) into the future.
func TestClock_FarFutureRemoteRejected(t *testing.T) {
	wall := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	c := crdt.NewClock(0, simMaxDrift)
	last := c.Now(wall)
	remote := crdt.MakeTimestamp(wall.Add(simMaxDrift+time.Hour).UnixMilli(), 0)
	err := c.Observe(remote, wall)
	if !errors.Is(err, crdt.ErrClockDrift) {
		t.Fatalf("Observe(%s) = %v, want ErrClockDrift", remote, err)
	}
	if c.Last() != last {
		t.Fatalf("Last() = %s after a rejected Observe, want %s", c.Last(), last)
	}
	if next := c.Now(wall); next >= remote || next <= last {
		t.Fatalf("Now() = %s after rejecting %s (last %s)", next, remote, last)
	}
}

// buildTx builds one transaction against s with fn.
func buildTx(tb testing.TB, s *crdt.State, site crdt.SiteID, seq uint64, ts crdt.Timestamp, fn func(*crdt.Builder) error) *crdt.Tx {
	tb.Helper()
	b := crdt.NewBuilder(site, seq, ts, func(k crdt.RowKey) (*crdt.Row, error) { return s.Row(k), nil })
	if err := fn(b); err != nil {
		tb.Fatalf("build tx %d: %v", seq, err)
	}
	return b.Tx()
}

// mustApply applies tx to s and returns the effects.
func mustApply(tb testing.TB, s *crdt.State, tx *crdt.Tx) []crdt.OpEffect {
	tb.Helper()
	effects, err := s.Apply(tx)
	if err != nil {
		tb.Fatalf("apply %s: %v", tx.Dot(), err)
	}
	return effects
}
