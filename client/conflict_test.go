package client_test

import (
	"bytes"
	"cmp"
	"context"
	"strconv"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"
	"github.com/unosync/uno/client"
	"github.com/unosync/uno/conflict"
	"github.com/unosync/uno/conflict/conflicttest"
	"github.com/unosync/uno/store"
)

// conflicts returns every conflict record of c.
func conflicts(tb testing.TB, c *client.Client) []store.ConflictEntry {
	tb.Helper()
	cs, err := c.Conflicts(context.Background(), 0, 0)
	if err != nil {
		tb.Fatalf("Conflicts: %v", err)
	}
	return cs
}

// wantSameHash checks that replicas converged.
func wantSameHash(tb testing.TB, cs ...*client.Client) {
	tb.Helper()
	h := hash(tb, cs[0])
	for i, c := range cs[1:] {
		if hash(tb, c) != h {
			tb.Errorf("replica %d's hash differs from replica 0's", i+1)
		}
	}
}

func TestClient_ConflictFeed(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		bLag time.Duration // how much later b's clock runs than a's
	}{
		{"later timestamp wins", time.Second},
		{"earlier timestamp loses", -time.Second},
		{"same timestamp, greater site wins", 0},
	}
	for _, b := range backends {
		for _, tt := range tests {
			t.Run(b.name+"/"+tt.name, func(t *testing.T) {
				ca, cb := newClock(start), newClock(start.Add(tt.bLag))
				a := open(t, b, client.Config{Now: ca.Now})
				r := open(t, b, client.Config{Now: cb.Now})
				// Both write title and done without seeing the other.
				must(t, a.Collection("todos").Put(ctx, "t1", map[string]any{"title": "from a", "done": false, "only_a": 1}))
				must(t, r.Collection("todos").Put(ctx, "t1", map[string]any{"title": "from b", "done": true}))
				timeA, timeB := outbox(t, a)[0].Time, outbox(t, r)[0].Time
				if (tt.bLag == 0) != (timeA == timeB) {
					t.Fatalf("timestamps a=%s b=%s; the case needs them equal iff bLag is 0", timeA, timeB)
				}
				// What each replica wrote, by field.
				wrote := map[*client.Client]map[string]string{
					a: {"title": `"from a"`, "done": "false"},
					r: {"title": `"from b"`, "done": "true"},
				}
				// The greater (timestamp, site) wins.
				winner, loser := r, a
				sa, sr := a.Site(), r.Site()
				if tt.bLag < 0 || tt.bLag == 0 && bytes.Compare(sa[:], sr[:]) > 0 {
					winner, loser = a, r
				}
				wantTitle, wantDone := wrote[winner]["title"], wrote[winner]["done"]

				exchange(t, a, r)
				for i, c := range []*client.Client{a, r} {
					got := fields(get(t, c, "todos", "t1"))
					if got["title"] != wantTitle || got["done"] != wantDone || got["only_a"] != "1" {
						t.Errorf("replica %d shows %v, want title %s, done %s, only_a 1", i, got, wantTitle, wantDone)
					}
				}
				wantSameHash(t, a, r)

				for i, c := range []*client.Client{a, r} {
					recs := conflicts(t, c)
					if len(recs) != 2 {
						t.Fatalf("replica %d has %d conflict records, want 2 (title, done): %v", i, len(recs), recs)
					}
					byField := map[string]store.ConflictEntry{}
					for _, e := range recs {
						byField[e.Field] = e
					}
					for _, field := range []string{"title", "done"} {
						e, ok := byField[field]
						if !ok {
							t.Errorf("replica %d: no conflict record for %s: %v", i, field, recs)
							continue
						}
						if e.Collection != "todos" || e.Row != "t1" || e.Mode != conflict.ModeLWW {
							t.Errorf("replica %d: record %v, want todos/t1 under lww", i, e.Record)
						}
						if w := wrote[winner][field]; string(e.Winner.Data) != w || e.Winner.Dot.Site != winner.Site() {
							t.Errorf("replica %d: %s winner %s, want %s by %s", i, field, e.Winner, w, winner.Site())
						}
						if l := wrote[loser][field]; string(e.Loser.Data) != l || e.Loser.Dot.Site != loser.Site() {
							t.Errorf("replica %d: %s loser %s, want %s by %s", i, field, e.Loser, l, loser.Site())
						}
						if e.Winner.Dot.Compare(e.Loser.Dot) <= 0 {
							t.Errorf("replica %d: winner %s does not outrank loser %s", i, e.Winner.Dot, e.Loser.Dot)
						}
					}
					// The feed reads incrementally.
					first, err := c.Conflicts(ctx, 0, 1)
					must(t, err)
					rest, err := c.Conflicts(ctx, first[0].ID, 0)
					must(t, err)
					if len(first) != 1 || len(rest) != 1 || rest[0].ID <= first[0].ID {
						t.Errorf("replica %d: paging gave %v then %v", i, first, rest)
					}
				}

				// Delivering the same transactions again changes nothing.
				ha, na := hash(t, a), len(conflicts(t, a))
				exchange(t, a, r)
				exchange(t, r, a)
				if hash(t, a) != ha || len(conflicts(t, a)) != na || len(conflicts(t, r)) != na {
					t.Errorf("a second delivery changed a hash or added conflicts")
				}
				wantSameHash(t, a, r)

				// A write made after seeing the other is not a conflict.
				must(t, loser.Collection("todos").Patch(ctx, "t1", map[string]any{"title": "resolved"}))
				exchange(t, a, r)
				for i, c := range []*client.Client{a, r} {
					if got := fields(get(t, c, "todos", "t1"))["title"]; got != `"resolved"` {
						t.Errorf("replica %d title = %s after the loser's later write, want \"resolved\"", i, got)
					}
					if n := len(conflicts(t, c)); n != na {
						t.Errorf("replica %d has %d conflicts after a causal write, want %d", i, n, na)
					}
				}
				wantSameHash(t, a, r)
			})
		}
	}
}

func TestClient_MultiValue(t *testing.T) {
	ctx := context.Background()
	schema := &store.Schema{Collections: []store.Collection{{Name: "notes", Fields: []store.Field{
		{Name: "body", Policy: conflict.MultiValue()},
		{Name: "title"},
	}}}}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			a := open(t, b, client.Config{Schema: schema, Now: newClock(start).Now})
			r := open(t, b, client.Config{Schema: schema, Now: newClock(start.Add(time.Second)).Now})
			must(t, a.Collection("notes").Put(ctx, "n1", map[string]any{"body": "A", "title": "x"}))
			must(t, r.Collection("notes").Put(ctx, "n1", map[string]any{"body": "B"}))
			exchange(t, a, r)
			wantSameHash(t, a, r)
			for i, c := range []*client.Client{a, r} {
				d := get(t, c, "notes", "n1")
				if got := string(d.Fields["body"]); got != `"B"` {
					t.Errorf("replica %d body = %s, want the last writer's \"B\"", i, got)
				}
				sibs := d.Siblings["body"]
				if len(sibs) != 2 {
					t.Fatalf("replica %d siblings = %v, want 2", i, d.Siblings)
				}
				if string(sibs[0].Value) != `"A"` || sibs[0].Site != a.Site() ||
					string(sibs[1].Value) != `"B"` || sibs[1].Site != r.Site() || sibs[0].Time >= sibs[1].Time {
					t.Errorf("replica %d siblings = %+v, want A by a then B by b", i, sibs)
				}
				if _, ok := d.Siblings["title"]; ok {
					t.Errorf("replica %d: siblings for title, written once", i)
				}
				recs := conflicts(t, c)
				if len(recs) != 1 || recs[0].Field != "body" || recs[0].Mode != conflict.ModeMultiValue {
					t.Errorf("replica %d conflicts = %v, want one multi-value record for body", i, recs)
				}
			}

			// A write by a replica that saw both collapses them everywhere.
			must(t, a.Collection("notes").Put(ctx, "n1", map[string]any{"body": "A+B"}))
			exchange(t, a, r)
			wantSameHash(t, a, r)
			for i, c := range []*client.Client{a, r} {
				d := get(t, c, "notes", "n1")
				if got := string(d.Fields["body"]); got != `"A+B"` || len(d.Siblings) != 0 {
					t.Errorf("replica %d body = %s siblings = %v, want \"A+B\" alone", i, got, d.Siblings)
				}
			}
		})
	}
}

// maxResolver keeps the larger number; numbers beat other values. Ties go
// to the greater dot, then to the greater bytes, so it is a total order.
func maxResolver(a, b conflict.Value) conflict.Value {
	c := compareNumbers(a.Data, b.Data)
	if c == 0 {
		c = a.Dot.Compare(b.Dot)
	}
	if c == 0 {
		c = bytes.Compare(a.Data, b.Data)
	}
	if c >= 0 {
		return a
	}
	return b
}

func compareNumbers(x, y []byte) int {
	fx, errx := strconv.ParseFloat(string(x), 64)
	fy, erry := strconv.ParseFloat(string(y), 64)
	switch {
	case errx == nil && erry == nil:
		return cmp.Compare(fx, fy)
	case errx == nil:
		return 1
	case erry == nil:
		return -1
	}
	return 0
}

func TestMaxResolver(t *testing.T) {
	conflicttest.CheckResolver(t, maxResolver, nil)
}

func TestClient_CustomResolver(t *testing.T) {
	ctx := context.Background()
	schema := &store.Schema{Collections: []store.Collection{{Name: "games", Fields: []store.Field{
		{Name: "best", Policy: conflict.Custom(maxResolver)},
	}}}}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			clients := []*client.Client{
				open(t, b, client.Config{Schema: schema, Now: newClock(start).Now}),
				open(t, b, client.Config{Schema: schema, Now: newClock(start.Add(time.Second)).Now}),
				open(t, b, client.Config{Schema: schema, Now: newClock(start.Add(2 * time.Second)).Now}),
			}
			// The largest value is written first, so last-writer-wins
			// would pick another.
			for i, v := range []int{50, 7, 12} {
				must(t, clients[i].Collection("games").Put(ctx, "g1", map[string]any{"best": v}))
			}
			exchange(t, clients...)
			wantSameHash(t, clients...)
			for i, c := range clients {
				if got := fields(get(t, c, "games", "g1"))["best"]; got != "50" {
					t.Errorf("replica %d best = %s, want 50", i, got)
				}
				if got := ids(find(t, c, "games", client.Query{Where: []client.Cond{client.Where("best", "=", 50)}})); !gocmp.Equal(got, []string{"g1"}) {
					t.Errorf("replica %d: Find best = 50 gave %v, want [g1]", i, got)
				}
				for _, e := range conflicts(t, c) {
					if e.Mode != conflict.ModeResolver || e.Field != "best" {
						t.Errorf("replica %d: record %v, want resolver records for best", i, e.Record)
					}
				}
				if len(conflicts(t, c)) == 0 {
					t.Errorf("replica %d: no conflict records", i)
				}
			}
		})
	}
}
