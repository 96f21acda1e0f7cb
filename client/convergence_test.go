package client_test

import (
	"context"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/unosync/uno/client"
	"github.com/unosync/uno/crdt"
	"github.com/unosync/uno/store"
	"pgregory.net/rapid"
)

// Three replicas change one counter and one set offline, then exchange
// everything in different orders, with duplicates.
func TestClient_CounterAndSetConvergence(t *testing.T) {
	ctx := context.Background()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			cs := []*client.Client{
				open(t, b, client.Config{Now: newClock(start).Now}),
				open(t, b, client.Config{Now: newClock(start.Add(time.Second)).Now}),
				open(t, b, client.Config{Now: newClock(start.Add(-time.Second)).Now}),
			}
			a, r, c := cs[0], cs[1], cs[2]
			col := func(c *client.Client) *client.Collection { return c.Collection("stats") }

			// Shared start: x and y in the set, everyone has seen them.
			must(t, col(a).Add(ctx, "s1", "tags", "x"))
			must(t, col(a).Add(ctx, "s1", "tags", "y"))
			must(t, col(a).Increment(ctx, "s1", "n", 100))
			exchange(t, cs...)

			// Offline.
			var total int64 = 100
			for _, step := range []struct {
				c     *client.Client
				delta int64
			}{{a, 5}, {a, -2}, {r, 7}, {c, -1}, {c, 10}, {r, -30}, {a, 1}} {
				must(t, col(step.c).Increment(ctx, "s1", "n", step.delta))
				total += step.delta
			}
			must(t, col(r).Remove(ctx, "s1", "tags", "x")) // r removes x …
			must(t, col(c).Add(ctx, "s1", "tags", "x"))    // … while c adds it again: the add wins
			must(t, col(a).Remove(ctx, "s1", "tags", "y")) // y is removed with no concurrent add
			must(t, col(r).Add(ctx, "s1", "tags", "z"))    // z is added twice concurrently …
			must(t, col(c).Add(ctx, "s1", "tags", "z"))
			must(t, col(a).Remove(ctx, "s1", "tags", "z")) // … and a, who never saw it, removes nothing
			must(t, col(c).Add(ctx, "s1", "tags", "w"))    // w is added and removed by c
			must(t, col(c).Remove(ctx, "s1", "tags", "w"))

			boxA, boxR, boxC := outbox(t, a), outbox(t, r), outbox(t, c)
			// a: one outbox at a time, r's twice.
			for _, box := range [][]*crdt.Tx{boxR, boxC, boxR} {
				must(t, a.Merge(ctx, box))
			}
			// r: one batch holding everything twice, c's first.
			must(t, r.Merge(ctx, slices.Concat(boxC, boxA, boxC, boxA)))
			// c: one transaction at a time, interleaving the sites, each
			// site's in order, then everything again.
			for i := range max(len(boxA), len(boxR)) {
				for _, box := range [][]*crdt.Tx{boxR, boxA} {
					if i < len(box) {
						must(t, c.Merge(ctx, box[i:i+1]))
					}
				}
			}
			must(t, c.Merge(ctx, slices.Concat(boxA, boxR)))

			wantSameHash(t, cs...)
			for i, cl := range cs {
				got := fields(get(t, cl, "stats", "s1"))
				want := map[string]string{"n": strconv.FormatInt(total, 10), "tags": `["x","z"]`}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("replica %d (-want +got):\n%s", i, diff)
				}
			}
		})
	}
}

// Replicas that each increment a counter by zero must still end with equal
// state hashes.
func TestClient_IncrementByZeroConverges(t *testing.T) {
	ctx := context.Background()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			a := open(t, b, client.Config{})
			r := open(t, b, client.Config{})
			must(t, a.Collection("stats").Increment(ctx, "s1", "n", 0))
			must(t, r.Collection("stats").Increment(ctx, "s1", "n", 0))
			exchange(t, a, r)
			wantSameHash(t, a, r)
			for _, c := range []*client.Client{a, r} {
				wantFields(t, c, "stats", "s1", map[string]string{"n": "0"})
			}
		})
	}
}

// A transport may deliver a site's transactions out of order. Merge
// refuses a batch with a gap in a site's sequence (store.ErrGap), changing
// nothing, so the skipped transaction is never lost: delivering everything
// in order afterwards converges.
func TestClient_MergeOutOfOrder(t *testing.T) {
	ctx := context.Background()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			a := open(t, b, client.Config{})
			r := open(t, b, client.Config{})
			for _, id := range []string{"t1", "t2", "t3"} {
				must(t, a.Collection("todos").Put(ctx, id, map[string]any{"title": id}))
			}
			box := outbox(t, a)
			before := snap(t, r)
			wantErr(t, r.Merge(ctx, box[1:]), store.ErrGap) // seq 2 before seq 1
			wantErr(t, r.Merge(ctx, []*crdt.Tx{box[0], box[2]}), store.ErrGap)
			if after := snap(t, r); after != before {
				t.Errorf("a batch with a gap changed the replica")
			}
			wantErr(t, getErr(r, "todos", "t1"), client.ErrNotFound)

			must(t, r.Merge(ctx, box[:1]))
			must(t, r.Merge(ctx, box)) // seq 1 again, then 2 and 3
			wantSameHash(t, a, r)
			for _, id := range []string{"t1", "t2", "t3"} {
				wantFields(t, r, "todos", id, map[string]string{"title": `"` + id + `"`})
			}
		})
	}
}

// Random offline edits on three replicas, exchanged in random orders
// (each site's transactions in order, with repeats), converge.
func TestClient_ConvergenceProperty(t *testing.T) {
	ctx := context.Background()
	rows := []string{"r0", "r1"}
	members := []string{"x", "y", "z"}
	rapid.Check(t, func(rt *rapid.T) {
		cs := make([]*client.Client, 3)
		for i := range cs {
			clock := newClock(start.Add(time.Duration(rapid.IntRange(-2000, 2000).Draw(rt, "skew")) * time.Millisecond))
			c, err := client.Open(ctx, memoryBackend.config(t, client.Config{Now: clock.Now}))
			if err != nil {
				rt.Fatal(err)
			}
			defer c.Close()
			cs[i] = c
		}
		// delivered[i][j] is how many of j's transactions i has merged.
		var delivered [3][3]int
		steps := rapid.IntRange(1, 40).Draw(rt, "steps")
		for range steps {
			i := rapid.IntRange(0, 2).Draw(rt, "replica")
			col := cs[i].Collection("items")
			row := rapid.SampledFrom(rows).Draw(rt, "row")
			var err error
			switch rapid.IntRange(0, 5).Draw(rt, "op") {
			case 0:
				err = col.Put(ctx, row, map[string]any{"title": rapid.IntRange(0, 9).Draw(rt, "title")})
			case 1:
				err = col.Increment(ctx, row, "n", int64(rapid.IntRange(-5, 5).Draw(rt, "delta")))
			case 2:
				err = col.Add(ctx, row, "tags", rapid.SampledFrom(members).Draw(rt, "member"))
			case 3:
				err = col.Remove(ctx, row, "tags", rapid.SampledFrom(members).Draw(rt, "member"))
			case 4:
				err = col.Delete(ctx, row)
			case 5: // i merges a prefix of j's outbox, possibly repeating some
				j := rapid.IntRange(0, 2).Draw(rt, "from")
				if j == i {
					continue
				}
				box := outbox(rt, cs[j])
				from := rapid.IntRange(0, delivered[i][j]).Draw(rt, "from seq")
				to := rapid.IntRange(delivered[i][j], len(box)).Draw(rt, "to seq")
				err = cs[i].Merge(ctx, box[from:to])
				delivered[i][j] = to
			}
			if err != nil {
				rt.Fatalf("step: %v", err)
			}
		}
		exchange(rt, cs...)
		h := hash(rt, cs[0])
		var want []string
		for _, row := range rows {
			if d, err := cs[0].Collection("items").Get(ctx, row); err == nil {
				want = append(want, string(d.JSON()))
			}
		}
		for i, c := range cs[1:] {
			if hash(rt, c) != h {
				rt.Fatalf("replica %d's hash differs from replica 0's", i+1)
			}
			var got []string
			for _, row := range rows {
				if d, err := c.Collection("items").Get(ctx, row); err == nil {
					got = append(got, string(d.JSON()))
				}
			}
			if diff := cmp.Diff(want, got); diff != "" {
				rt.Fatalf("replica %d shows (-replica 0 +replica %d):\n%s", i+1, i+1, diff)
			}
		}
	})
}
