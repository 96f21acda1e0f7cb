package crdt_test

import (
	"math/rand/v2"
	"testing"

	"github.com/unosync/uno/crdt"
	"pgregory.net/rapid"
)

// TestState_Convergence is consistency rule 5 (strong eventual consistency)
// for the in-memory reference replica: 3–5 replicas with clocks skewed by up
// to ±24 h, jumping and restarting, make random transactions over 2
// collections × 3 rows and exchange them in random causal order with
// duplicates. Once everyone has everything, every replica has the same
// canonical hash, and so has a fresh replica fed the whole log in another
// causal order, and the join of all replicas' states taken before the final
// delivery (state-based merge agrees with op-based merge). The synced state
// also matches the model computed from causality alone (see checkModel).
func TestState_Convergence(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) { checkConvergence(t, defaultSimConfig(), 250) })
}

// TestState_ConvergenceMixedKinds: as TestState_Convergence, but without a
// schema replicas write one field name as a register, a counter and a set
// concurrently; the higher kind wins everywhere (no model check: the model
// assumes fixed kinds).
func TestState_ConvergenceMixedKinds(t *testing.T) {
	cfg := defaultSimConfig()
	cfg.mixedKinds = true
	rapid.Check(t, func(t *rapid.T) { checkConvergence(t, cfg, 120) })
}

func checkConvergence(t *rapid.T, cfg simConfig, maxSteps int) {
	w := newWorld(t, cfg)
	w.run(t, maxSteps)

	states := make([]*crdt.State, len(w.reps))
	for i, r := range w.reps {
		states[i] = &r.state
	}
	// Hash at once: the join shares memory with the replicas.
	joinedBefore := joinAll(states...).Hash()

	seed := rapid.Uint64().Draw(t, "seed")
	w.deliverAll(t, rand.New(rand.NewPCG(seed, 1)))
	want := w.reps[0].state.Hash()
	for _, r := range w.reps[1:] {
		if got := r.state.Hash(); got != want {
			t.Fatalf("replica %d hash %x, replica 0 hash %x (%d txs)", r.idx, got, want, w.ntx)
		}
	}
	if got := w.replay(t, rand.New(rand.NewPCG(seed, 2))).Hash(); got != want {
		t.Fatalf("replaying the log in another causal order: hash %x, want %x", got, want)
	}
	if joinedBefore != want {
		t.Fatalf("join of the replicas' states before the final delivery: hash %x, want %x", joinedBefore, want)
	}
	if got := joinAll(states...).Hash(); got != want {
		t.Fatalf("join of all synced replicas: hash %x, want %x", got, want)
	}
	w.checkHLC(t)
	if !cfg.mixedKinds {
		w.checkModel(t, &w.reps[0].state)
	}
}
