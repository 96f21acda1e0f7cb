package crdt_test

import (
	"bytes"
	"testing"

	"github.com/unosync/uno/crdt"
	"pgregory.net/rapid"
)

// The join of every merge state is a semilattice join: commutative,
// associative and idempotent, with the zero value as identity, and it
// does not modify its arguments. Equality is canonical-encoding equality,
// which is what the state hash is made of.
//
// States are generated, not made up: 2–4 sites apply random ops to one row
// through Builder and exchange them in causal order, and the states
// compared are snapshots of the row at random replicas and times, so each
// is a state some replica really held (its causal context covers its
// entries).

// drawRows returns three snapshots of one row from a random run.
func drawRows(t *rapid.T, ops []simOp) (a, b, c *crdt.Row) {
	cfg := defaultSimConfig()
	cfg.minReplicas, cfg.maxReplicas = 2, 4
	cfg.keys = cfg.keys[:1]
	cfg.ops = ops
	cfg.maxOpsPerTx = 3
	w := newWorld(t, cfg)
	k := cfg.keys[0]
	pool := []*crdt.Row{{}} // the bottom: a row nobody wrote
	steps := rapid.IntRange(1, 40).Draw(t, "steps")
	for range steps {
		w.step(t)
		for _, r := range w.reps {
			pool = append(pool, rowCopy(t, r.state.Row(k)))
		}
	}
	pick := rapid.SampledFrom(pool)
	return pick.Draw(t, "a"), pick.Draw(t, "b"), pick.Draw(t, "c")
}

// checkJoinLaws checks the semilattice laws for join on a, b, c with
// bottom as identity.
func checkJoinLaws[T any](t *rapid.T, a, b, c, bottom T, join func(T, T) T, enc func(T) []byte) {
	ea, eb, ec := enc(a), enc(b), enc(c)
	eq := func(law string, x, y T) {
		if ex, ey := enc(x), enc(y); !bytes.Equal(ex, ey) {
			t.Fatalf("%s does not hold:\n%x\n%x", law, ex, ey)
		}
	}
	ab := join(a, b)
	eq("commutativity a⊔b = b⊔a", ab, join(b, a))
	eq("associativity (a⊔b)⊔c = a⊔(b⊔c)", join(ab, c), join(a, join(b, c)))
	eq("idempotence a⊔a = a", join(a, a), a)
	eq("identity a⊔⊥ = a", join(a, bottom), a)
	eq("identity ⊥⊔a = a", join(bottom, a), a)
	eq("absorption (a⊔b)⊔a = a⊔b", join(ab, a), ab)
	eq("absorption (a⊔b)⊔b = a⊔b", join(ab, b), ab)
	if !bytes.Equal(enc(a), ea) || !bytes.Equal(enc(b), eb) || !bytes.Equal(enc(c), ec) {
		t.Fatalf("join modified its arguments")
	}
}

func fieldOrBottom(r *crdt.Row, name string) crdt.Field {
	if f, ok := r.Field(name); ok {
		return *f
	}
	return crdt.Field{Name: name}
}

func TestRegister_JoinLaws(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		a, b, c := drawRows(t, []simOp{simOpSet})
		name := rapid.SampledFrom(simRegisters).Draw(t, "field")
		reg := func(r *crdt.Row) crdt.Register { return fieldOrBottom(r, name).Register }
		checkJoinLaws(t, reg(a), reg(b), reg(c), crdt.Register{}, crdt.Register.Join, encodeRegister)
	})
}

func TestCounter_JoinLaws(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		a, b, c := drawRows(t, []simOp{simOpIncrement})
		ctr := func(r *crdt.Row) crdt.Counter { return fieldOrBottom(r, simCounter).Counter }
		checkJoinLaws(t, ctr(a), ctr(b), ctr(c), crdt.Counter{}, crdt.Counter.Join, encodeCounter)
		// The value of the join is the sum of per-site maxima.
		j := ctr(a).Join(ctr(b))
		for _, p := range j.Parts {
			ca, cb := ctr(a), ctr(b)
			pa, na := ca.Part(p.Site)
			pb, nb := cb.Part(p.Site)
			if p.P != max(pa, pb) || p.N != max(na, nb) {
				t.Fatalf("joined part %v, want max of (%d,%d) and (%d,%d)", p, pa, na, pb, nb)
			}
		}
	})
}

func TestSet_JoinLaws(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		a, b, c := drawRows(t, []simOp{simOpAdd, simOpAdd, simOpRemove})
		set := func(r *crdt.Row) crdt.Set { return fieldOrBottom(r, simSet).Set }
		checkJoinLaws(t, set(a), set(b), set(c), crdt.Set{}, crdt.Set.Join, encodeSet)
	})
}

func TestField_JoinLaws(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		// Deletes included: fields of different lives meet.
		a, b, c := drawRows(t, simAllOps)
		name := rapid.SampledFrom([]string{"title", simCounter, simSet}).Draw(t, "field")
		checkJoinLaws(t, fieldOrBottom(a, name), fieldOrBottom(b, name), fieldOrBottom(c, name),
			crdt.Field{Name: name}, crdt.Field.Join, encodeField)
	})
}

func TestRow_JoinLaws(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		a, b, c := drawRows(t, simAllOps)
		checkJoinLaws(t, *a, *b, *c, crdt.Row{}, crdt.Row.Join, func(r crdt.Row) []byte { return crdt.EncodeRow(&r) })
		// The join keeps the greatest life and only fields of it.
		j := a.Join(*b)
		if j.CL != max(a.CL, b.CL) {
			t.Fatalf("joined CL %d, want %d", j.CL, max(a.CL, b.CL))
		}
		for _, f := range j.Fields {
			if f.CL != j.CL {
				t.Fatalf("joined row at CL %d keeps field %s of CL %d", j.CL, f.Name, f.CL)
			}
		}
	})
}

// TestState_JoinLaws checks the laws on whole replicas (all keys) by hash.
func TestState_JoinLaws(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		w := newWorld(t, defaultSimConfig())
		w.run(t, 60)
		pick := rapid.SampledFrom(w.reps)
		a, b, c := &pick.Draw(t, "a").state, &pick.Draw(t, "b").state, &pick.Draw(t, "c").state
		ha, hb, hc := a.Hash(), b.Hash(), c.Hash()
		var empty crdt.State
		eq := func(law string, x, y *crdt.State) {
			if x.Hash() != y.Hash() {
				t.Fatalf("%s does not hold", law)
			}
		}
		eq("commutativity", joinAll(a, b), joinAll(b, a))
		eq("associativity", joinAll(joinAll(a, b), c), joinAll(a, joinAll(b, c)))
		eq("idempotence", joinAll(a, a), a)
		eq("identity", joinAll(a, &empty), a)
		if a.Hash() != ha || b.Hash() != hb || c.Hash() != hc {
			t.Fatalf("Join modified its argument")
		}
	})
}
