package client_test

import (
	"context"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/unosync/uno/client"
	"github.com/unosync/uno/conflict"
	"github.com/unosync/uno/crdt"
	"github.com/unosync/uno/store"
)

// badSchema is the schema of the declared client in TestClient_BadInput.
var badSchema = &store.Schema{Collections: []store.Collection{{
	Name: "todos",
	Fields: []store.Field{
		{Name: "title"},
		{Name: "views", Kind: crdt.KindCounter},
		{Name: "tags", Kind: crdt.KindSet},
		{Name: "body", Kind: crdt.KindDoc},
		{Name: "notes", Policy: conflict.MultiValue()},
	},
}}}

// Every bad input returns an error matching its sentinel and writes
// nothing: no outbox entry, no state change.
func TestClient_BadInput(t *testing.T) {
	ctx := context.Background()
	put := func(coll, id string, doc any) func(c *client.Client) error {
		return func(c *client.Client) error { return c.Collection(coll).Put(ctx, id, doc) }
	}
	patch := func(coll, id string, doc any) func(c *client.Client) error {
		return func(c *client.Client) error { return c.Collection(coll).Patch(ctx, id, doc) }
	}
	inc := func(coll, id, field string) func(c *client.Client) error {
		return func(c *client.Client) error { return c.Collection(coll).Increment(ctx, id, field, 1) }
	}
	add := func(coll, id, field string, m any) func(c *client.Client) error {
		return func(c *client.Client) error { return c.Collection(coll).Add(ctx, id, field, m) }
	}
	remove := func(coll, id, field string, m any) func(c *client.Client) error {
		return func(c *client.Client) error { return c.Collection(coll).Remove(ctx, id, field, m) }
	}
	del := func(coll, id string) func(c *client.Client) error {
		return func(c *client.Client) error { return c.Collection(coll).Delete(ctx, id) }
	}
	getFn := func(coll, id string) func(c *client.Client) error {
		return func(c *client.Client) error { _, err := c.Collection(coll).Get(ctx, id); return err }
	}
	findFn := func(coll string, q client.Query) func(c *client.Client) error {
		return func(c *client.Client) error { _, err := c.Collection(coll).Find(ctx, q); return err }
	}
	watchFn := func(coll string, q client.Query) func(c *client.Client) error {
		return func(c *client.Client) error {
			w, err := c.Collection(coll).Watch(ctx, q)
			if w != nil {
				w.Close()
			}
			return err
		}
	}
	prefetch := func(coll string, ids ...string) func(c *client.Client) error {
		return func(c *client.Client) error {
			return c.Tx(ctx, func(tx *client.Tx) error { return tx.Prefetch(coll, ids...) })
		}
	}
	long := strings.Repeat("x", 200)
	tests := []struct {
		name     string
		declared bool // run on the client with badSchema
		call     func(c *client.Client) error
		want     error
	}{
		// Collection names.
		{"collection with capitals", false, put("Todos", "t9", map[string]any{"a": 1}), client.ErrInvalidName},
		{"collection starting with a digit", false, put("1x", "t9", map[string]any{"a": 1}), client.ErrInvalidName},
		{"empty collection", false, put("", "t9", map[string]any{"a": 1}), client.ErrInvalidName},
		{"reserved sqlite_ collection", false, put("sqlite_x", "t9", map[string]any{"a": 1}), client.ErrInvalidName},
		{"collection of 64 chars", false, put("a"+strings.Repeat("b", 63), "t9", map[string]any{"a": 1}), client.ErrInvalidName},
		{"collection with a dash", false, put("to-dos", "t9", map[string]any{"a": 1}), client.ErrInvalidName},
		{"collection with a quote", false, put(`t"x`, "t9", map[string]any{"a": 1}), client.ErrInvalidName},
		{"increment in a bad collection", false, inc("Todos", "t1", "views"), client.ErrInvalidName},
		{"add in a bad collection", false, add("Todos", "t1", "tags", "x"), client.ErrInvalidName},
		{"delete in a bad collection", false, del("Todos", "t1"), client.ErrInvalidName},
		{"get in a bad collection", false, getFn("Todos", "t1"), client.ErrInvalidName},
		{"find in a bad collection", false, findFn("Todos", client.Query{}), client.ErrInvalidName},
		{"watch a bad collection", false, watchFn("Todos", client.Query{}), client.ErrInvalidName},
		{"prefetch in a bad collection", false, prefetch("Todos", "t1", "t2"), client.ErrInvalidName},

		// Field names.
		{"field with capitals", false, put("todos", "t1", map[string]any{"Title": "a"}), client.ErrInvalidName},
		{"field with a dash", false, put("todos", "t1", map[string]any{"bad-name": "a"}), client.ErrInvalidName},
		{"empty field name", false, put("todos", "t1", map[string]any{"": "a"}), client.ErrInvalidName},
		{"reserved sqlite_ field", false, put("todos", "t1", map[string]any{"sqlite_x": "a"}), client.ErrInvalidName},
		{"field of 64 chars", false, put("todos", "t1", map[string]any{"f" + strings.Repeat("x", 63): "a"}), client.ErrInvalidName},
		{"one bad field among good ones", false, put("todos", "t1", map[string]any{"title": "changed", "ok": 1, "Bad": 2}), client.ErrInvalidName},
		{"one bad field in a patch", false, patch("todos", "t1", map[string]any{"title": "changed", "Bad": 2}), client.ErrInvalidName},
		{"increment a bad field", false, inc("todos", "t1", "Views"), client.ErrInvalidName},
		{"increment the id", false, inc("todos", "t1", "id"), client.ErrInvalidName},
		{"add to a bad field", false, add("todos", "t1", "Tags", "x"), client.ErrInvalidName},

		// The id field.
		{"id field differs from the row id", false, put("todos", "t1", map[string]any{"id": "t2", "title": "changed"}), client.ErrInvalidValue},
		{"id field is a number", false, put("todos", "t1", map[string]any{"id": 1, "title": "changed"}), client.ErrInvalidValue},
		{"struct id differs from the row id", false, put("todos", "t1", todo{ID: "t2", Title: "changed"}), client.ErrInvalidValue},

		// Row IDs.
		{"empty id", false, put("todos", "", map[string]any{"a": 1}), client.ErrInvalidID},
		{"id of 257 bytes", false, put("todos", strings.Repeat("x", client.MaxIDBytes+1), map[string]any{"a": 1}), client.ErrInvalidID},
		{"id not UTF-8", false, put("todos", "t\xff\xfe", map[string]any{"a": 1}), client.ErrInvalidID},
		{"increment an empty id", false, inc("todos", "", "views"), client.ErrInvalidID},
		{"add to a long id", false, add("todos", strings.Repeat("x", client.MaxIDBytes+1), "tags", "x"), client.ErrInvalidID},
		{"delete an invalid id", false, del("todos", "\xff"), client.ErrInvalidID},
		{"get an empty id", false, getFn("todos", ""), client.ErrInvalidID},
		{"prefetch an invalid id among good ones", false, prefetch("todos", "t1", "\xff", "t2"), client.ErrInvalidID},

		// Sizes (MaxValueBytes is 100).
		{"value over MaxValueBytes", false, put("todos", "t1", map[string]any{"title": long}), client.ErrTooLarge},
		{"value just over MaxValueBytes", false, put("todos", "t1", map[string]any{"title": strings.Repeat("x", 99)}), client.ErrTooLarge},
		{"large value beside a good one", false, put("todos", "t9", map[string]any{"ok": 1, "title": long}), client.ErrTooLarge},
		{"set member over MaxValueBytes", false, add("todos", "t1", "tags", long), client.ErrTooLarge},
		{"MaxTxOps exceeded", false, func(c *client.Client) error {
			return c.Tx(ctx, func(tx *client.Tx) error {
				for _, id := range []string{"a", "b", "c", "d"} {
					if err := tx.Put("todos", id, map[string]any{"title": id}); err != nil {
						return err
					}
				}
				return nil
			})
		}, client.ErrTooLarge},
		{"MaxTxOps exceeded by increments", false, func(c *client.Client) error {
			return c.Tx(ctx, func(tx *client.Tx) error {
				for _, f := range []string{"a", "b", "c", "d"} {
					if err := tx.Increment("todos", "t1", f, 1); err != nil {
						return err
					}
				}
				return nil
			})
		}, client.ErrTooLarge},

		// Documents that are not objects.
		{"doc is a string", false, put("todos", "t1", "just a string"), client.ErrInvalidValue},
		{"doc is a slice", false, put("todos", "t1", []any{"a", 1}), client.ErrInvalidValue},
		{"doc is a number", false, put("todos", "t1", 42), client.ErrInvalidValue},
		{"doc is nil", false, put("todos", "t1", nil), client.ErrInvalidValue},
		{"doc is a nil map", false, put("todos", "t1", map[string]any(nil)), client.ErrInvalidValue},
		{"patch with a string", false, patch("todos", "t1", "x"), client.ErrInvalidValue},

		// Values that do not encode as JSON.
		{"doc is a channel", false, put("todos", "t1", make(chan int)), client.ErrInvalidValue},
		{"doc is a func", false, put("todos", "t1", func() {}), client.ErrInvalidValue},
		{"field is a channel", false, put("todos", "t1", map[string]any{"title": "changed", "c": make(chan int)}), client.ErrInvalidValue},
		{"field is a func", false, put("todos", "t1", map[string]any{"f": func() {}}), client.ErrInvalidValue},
		{"field is NaN", false, put("todos", "t1", map[string]any{"f": math.NaN()}), client.ErrInvalidValue},
		{"member is a channel", false, add("todos", "t1", "tags", make(chan int)), client.ErrInvalidValue},

		// Set members that are not scalars.
		{"member is an object", false, add("todos", "t1", "tags", map[string]any{"a": 1}), client.ErrInvalidValue},
		{"member is an array", false, add("todos", "t1", "tags", []int{1}), client.ErrInvalidValue},
		{"member is null", false, add("todos", "t1", "tags", nil), client.ErrInvalidValue},
		{"removed member is an object", false, remove("todos", "t1", "tags", map[string]any{}), client.ErrInvalidValue},

		// Kinds, without a schema (t1: title register, views counter, tags set).
		{"increment a register", false, inc("todos", "t1", "title"), client.ErrKindMismatch},
		{"increment a set", false, inc("todos", "t1", "tags"), client.ErrKindMismatch},
		{"put to a counter", false, put("todos", "t1", map[string]any{"views": 5}), client.ErrKindMismatch},
		{"put to a counter beside a register", false, put("todos", "t1", map[string]any{"title": "changed", "views": 5}), client.ErrKindMismatch},
		{"patch a set", false, patch("todos", "t1", map[string]any{"tags": []string{"y"}}), client.ErrKindMismatch},
		{"add to a register", false, add("todos", "t1", "title", "x"), client.ErrKindMismatch},
		{"add to a counter", false, add("todos", "t1", "views", "x"), client.ErrKindMismatch},
		{"remove from a counter", false, remove("todos", "t1", "views", "x"), client.ErrKindMismatch},
		{"increment a register written earlier in the tx", false, func(c *client.Client) error {
			return c.Tx(ctx, func(tx *client.Tx) error {
				if err := tx.Put("todos", "t9", map[string]any{"n": 1}); err != nil {
					return err
				}
				return tx.Increment("todos", "t9", "n", 1)
			})
		}, client.ErrKindMismatch},

		// With a declared schema.
		{"unknown collection", true, put("other", "o1", map[string]any{"title": "a"}), client.ErrUnknownCollection},
		{"increment in an unknown collection", true, inc("other", "o1", "views"), client.ErrUnknownCollection},
		{"add in an unknown collection", true, add("other", "o1", "tags", "x"), client.ErrUnknownCollection},
		{"prefetch in an unknown collection", true, prefetch("other", "o1", "o2"), client.ErrUnknownCollection},
		{"delete in an unknown collection", true, del("other", "o1"), client.ErrUnknownCollection},
		{"get in an unknown collection", true, getFn("other", "o1"), client.ErrUnknownCollection},
		{"find in an unknown collection", true, findFn("other", client.Query{}), client.ErrUnknownCollection},
		{"watch an unknown collection", true, watchFn("other", client.Query{}), client.ErrUnknownCollection},
		{"unknown field", true, put("todos", "t1", map[string]any{"title": "changed", "nope": 1}), client.ErrUnknownField},
		{"increment an unknown field", true, inc("todos", "t1", "nope"), client.ErrUnknownField},
		{"add to an unknown field", true, add("todos", "t1", "nope", "x"), client.ErrUnknownField},
		{"find on an unknown field", true, findFn("todos", client.Query{Where: []client.Cond{client.Where("nope", "=", 1)}}), client.ErrUnknownField},
		{"order by an unknown field", true, findFn("todos", client.Query{OrderBy: "nope"}), client.ErrUnknownField},
		{"watch an unknown field", true, watchFn("todos", client.Query{Where: []client.Cond{client.Where("nope", "=", 1)}}), client.ErrUnknownField},
		{"increment a declared register", true, inc("todos", "t1", "title"), client.ErrKindMismatch},
		{"increment a declared register on a new row", true, inc("todos", "t9", "title"), client.ErrKindMismatch},
		{"put to a declared counter", true, put("todos", "t9", map[string]any{"views": 1}), client.ErrKindMismatch},
		{"put to a declared set", true, put("todos", "t1", map[string]any{"tags": []string{"a"}}), client.ErrKindMismatch},
		{"add to a declared counter", true, add("todos", "t1", "views", "x"), client.ErrKindMismatch},
		{"add to a declared register", true, add("todos", "t9", "title", "x"), client.ErrKindMismatch},
		{"increment a declared set", true, inc("todos", "t1", "tags"), client.ErrKindMismatch},
		{"doc field written whole", true, put("todos", "t1", map[string]any{"title": "changed", "body": 5}), client.ErrKindMismatch},
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			plain := open(t, b, client.Config{MaxValueBytes: 100, MaxTxOps: 3})
			declared := open(t, b, client.Config{Schema: badSchema, MaxValueBytes: 100, MaxTxOps: 3})
			for _, c := range []*client.Client{plain, declared} {
				col := c.Collection("todos")
				must(t, col.Put(ctx, "t1", map[string]any{"title": "a"}))
				must(t, col.Increment(ctx, "t1", "views", 2))
				must(t, col.Add(ctx, "t1", "tags", "x"))
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					c := plain
					if tt.declared {
						c = declared
					}
					before := snap(t, c)
					err := tt.call(c)
					wantErr(t, err, tt.want)
					if after := snap(t, c); after != before {
						t.Errorf("the failed call changed the replica: pending %d → %d, hash changed %v",
							before.Pending, after.Pending, after.Hash != before.Hash)
					}
					wantFields(t, c, "todos", "t1", map[string]string{"title": `"a"`, "views": "2", "tags": `["x"]`})
				})
			}
		})
	}
}

// Inputs at the limits are accepted.
func TestClient_Limits(t *testing.T) {
	ctx := context.Background()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			c := open(t, b, client.Config{MaxValueBytes: 100, MaxTxOps: 3})
			col := c.Collection("todos")
			must(t, col.Put(ctx, "t1", map[string]any{"title": strings.Repeat("x", 98)})) // 100 bytes of JSON
			must(t, col.Add(ctx, "t1", "tags", strings.Repeat("y", 98)))
			must(t, col.Put(ctx, strings.Repeat("i", client.MaxIDBytes), map[string]any{"a": 1}))
			// Three ops: a revive and two sets.
			must(t, col.Put(ctx, "t2", map[string]any{"a": 1, "b": 2}))
			must(t, c.Tx(ctx, func(tx *client.Tx) error {
				for _, f := range []string{"a", "b", "c"} {
					if err := tx.Increment("todos", "t1", f, 1); err != nil {
						return err
					}
				}
				return nil
			}))
			// Repeated writes to one field fold into one op.
			must(t, c.Tx(ctx, func(tx *client.Tx) error {
				for i := range 10 {
					if err := tx.Increment("todos", "t1", "a", 1); err != nil {
						return err
					}
					if err := tx.Put("todos", "t1", map[string]any{"title": i}); err != nil {
						return err
					}
				}
				return nil
			}))
			got := fields(get(t, c, "todos", "t1"))
			if got["a"] != "11" || got["title"] != "9" {
				t.Errorf("after folded writes a=%s title=%s, want 11 and 9", got["a"], got["title"])
			}
		})
	}
}

// Values crdt's rules refuse, which the client's own checks let through,
// are refused by the store with the same sentinels and change nothing; so
// is a write that would make a row larger than any sync message carries.
func TestClient_ValueRules(t *testing.T) {
	ctx := context.Background()
	var deep any = 1
	for range 65 {
		deep = []any{deep}
	}
	big := strings.Repeat("x", 900_000) // three make a row over 2 MiB
	put := func(id string, doc any) func(c *client.Client) error {
		return func(c *client.Client) error { return c.Collection("todos").Put(ctx, id, doc) }
	}
	tests := []struct {
		name string
		call func(c *client.Client) error
		want error
	}{
		{"value nested 65 deep", put("t1", map[string]any{"title": deep}), client.ErrInvalidValue},
		{"string with NUL", put("t1", map[string]any{"title": "a\x00b"}), client.ErrInvalidValue},
		{"raw JSON with a lone surrogate", put("t1", map[string]json.RawMessage{"title": json.RawMessage(`"\ud800"`)}), client.ErrInvalidValue},
		{"raw JSON number out of range", put("t1", map[string]json.RawMessage{"title": json.RawMessage(`1e400`)}), client.ErrInvalidValue},
		{"row over MaxRowBytes in one put", put("t2", map[string]any{"a": big, "b": big, "c": big}), client.ErrRowTooLarge},
		{"row over MaxRowBytes by a patch", func(c *client.Client) error {
			return c.Collection("todos").Patch(ctx, "t1", map[string]any{"c": big})
		}, client.ErrRowTooLarge},
		{"row over MaxRowBytes by a set member", func(c *client.Client) error {
			return c.Collection("todos").Add(ctx, "t1", "tags", big+"y")
		}, client.ErrRowTooLarge},
		{"row over MaxRowBytes beside a small write", func(c *client.Client) error {
			return c.Tx(ctx, func(tx *client.Tx) error {
				if err := tx.Put("todos", "t3", map[string]any{"title": "small"}); err != nil {
					return err
				}
				return tx.Patch("todos", "t1", map[string]any{"c": big})
			})
		}, client.ErrRowTooLarge},
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			c := open(t, b, client.Config{})
			must(t, c.Collection("todos").Put(ctx, "t1", map[string]any{"title": "a", "a": big, "b": big}))
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					before := snap(t, c)
					err := tt.call(c)
					wantErr(t, err, tt.want)
					if tt.want == client.ErrRowTooLarge {
						wantErr(t, err, crdt.ErrRowTooLarge)
					}
					if after := snap(t, c); after != before {
						t.Errorf("the failed call changed the replica: pending %d → %d, hash changed %v",
							before.Pending, after.Pending, after.Hash != before.Hash)
					}
					wantErr(t, getErr(c, "todos", "t3"), client.ErrNotFound)
				})
			}
			// Within the limit, the row can still grow.
			must(t, c.Collection("todos").Patch(ctx, "t1", map[string]any{"c": "small"}))
		})
	}
}

// A batch from other replicas that cannot apply changes nothing.
func TestClient_MergeBadInput(t *testing.T) {
	ctx := context.Background()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			a := open(t, b, client.Config{})
			good := open(t, b, client.Config{})
			must(t, good.Collection("todos").Put(ctx, "g1", map[string]any{"title": "good"}))
			future := open(t, b, client.Config{Now: newClock(start.Add(72 * time.Hour)).Now})
			must(t, future.Collection("todos").Put(ctx, "f1", map[string]any{"title": "from the future"}))
			must(t, a.Collection("todos").Put(ctx, "a1", map[string]any{"title": "mine"}))

			before := snap(t, a)
			err := a.Merge(ctx, append(outbox(t, good), outbox(t, future)...))
			wantErr(t, err, crdt.ErrClockDrift)
			if after := snap(t, a); after != before {
				t.Errorf("a rejected batch changed the replica")
			}
			wantErr(t, getErr(a, "todos", "g1"), client.ErrNotFound)

			err = a.Merge(ctx, []*crdt.Tx{{Seq: 1}})
			wantErr(t, err, crdt.ErrMalformedOp)
			if after := snap(t, a); after != before {
				t.Errorf("a malformed batch changed the replica")
			}
			// A value that not every replica can store: refused by crdt's rules.
			bad, err := crdt.DecodeTx(crdt.EncodeTx(outbox(t, good)[0])) // a copy
			must(t, err)
			bad.Ops = append(bad.Ops, crdt.Op{Type: crdt.OpSet, Kind: crdt.KindRegister,
				Collection: "todos", Row: "g1", Field: "owner", CL: 1, Value: []byte(`1,"owner":"victim"`)})
			err = a.Merge(ctx, []*crdt.Tx{bad})
			wantErr(t, err, client.ErrInvalidValue)
			if after := snap(t, a); after != before {
				t.Errorf("a batch with an invalid value changed the replica")
			}
			// The good transaction still applies on its own afterwards.
			must(t, a.Merge(ctx, outbox(t, good)))
			wantFields(t, a, "todos", "g1", map[string]string{"title": `"good"`})
		})
	}
}
