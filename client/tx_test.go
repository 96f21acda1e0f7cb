package client_test

import (
	"context"
	"errors"
	"maps"
	"testing"

	"github.com/unosync/uno/client"
)

func TestClient_Tx(t *testing.T) {
	ctx := context.Background()
	errBoom := errors.New("boom")
	tests := []struct {
		name string
		run  func(t *testing.T, c *client.Client)
	}{
		{"an error from fn writes nothing", func(t *testing.T, c *client.Client) {
			before := snap(t, c)
			err := c.Tx(ctx, func(tx *client.Tx) error {
				must(t, tx.Put("todos", "n1", map[string]any{"title": "a"}))
				must(t, tx.Put("todos", "n2", map[string]any{"title": "b"}))
				must(t, tx.Increment("stats", "s1", "views", 3))
				must(t, tx.Add("todos", "n1", "tags", "x"))
				must(t, tx.Patch("todos", "t0", map[string]any{"title": "changed"}))
				must(t, tx.Delete("todos", "t0"))
				return errBoom
			})
			wantErr(t, err, errBoom)
			for _, k := range [][2]string{{"todos", "n1"}, {"todos", "n2"}, {"stats", "s1"}} {
				wantErr(t, getErr(c, k[0], k[1]), client.ErrNotFound)
			}
			wantFields(t, c, "todos", "t0", map[string]string{"title": `"zero"`})
			if after := snap(t, c); after != before {
				t.Errorf("a failed Tx changed the replica: pending %d → %d", before.Pending, after.Pending)
			}
		}},
		{"a failing third op writes none of the first two", func(t *testing.T, c *client.Client) {
			before := snap(t, c)
			err := c.Tx(ctx, func(tx *client.Tx) error {
				if err := tx.Put("todos", "n1", map[string]any{"title": "a"}); err != nil {
					return err
				}
				if err := tx.Increment("todos", "t0", "views", 1); err != nil {
					return err
				}
				return tx.Put("todos", "n2", map[string]any{"Title": "bad name"})
			})
			wantErr(t, err, client.ErrInvalidName)
			wantErr(t, getErr(c, "todos", "n1"), client.ErrNotFound)
			wantErr(t, getErr(c, "todos", "n2"), client.ErrNotFound)
			wantFields(t, c, "todos", "t0", map[string]string{"title": `"zero"`})
			if after := snap(t, c); after != before {
				t.Errorf("a failed Tx changed the replica")
			}
		}},
		{"a panic in fn writes nothing", func(t *testing.T, c *client.Client) {
			before := snap(t, c)
			func() {
				defer func() {
					if r := recover(); r != "oops" {
						t.Fatalf("recovered %v, want the panic to propagate", r)
					}
				}()
				_ = c.Tx(ctx, func(tx *client.Tx) error {
					must(t, tx.Put("todos", "n1", map[string]any{"title": "a"}))
					panic("oops")
				})
			}()
			wantErr(t, getErr(c, "todos", "n1"), client.ErrNotFound)
			if after := snap(t, c); after != before {
				t.Errorf("a panicking Tx changed the replica")
			}
			// The client still works.
			must(t, c.Collection("todos").Put(ctx, "n1", map[string]any{"title": "a"}))
		}},
		{"read your writes", func(t *testing.T, c *client.Client) {
			must(t, c.Tx(ctx, func(tx *client.Tx) error {
				d, err := tx.Get("todos", "t0") // committed before the Tx
				must(t, err)
				if got := fields(d)["title"]; got != `"zero"` {
					t.Errorf("Tx.Get t0 title = %s, want \"zero\"", got)
				}
				_, err = tx.Get("todos", "n1")
				wantErr(t, err, client.ErrNotFound)

				must(t, tx.Put("todos", "n1", map[string]any{"title": "a", "done": false}))
				must(t, tx.Increment("todos", "n1", "views", 2))
				must(t, tx.Add("todos", "n1", "tags", "x"))
				must(t, tx.Patch("todos", "n1", map[string]any{"done": true}))
				d, err = tx.Get("todos", "n1")
				must(t, err)
				want := map[string]string{"title": `"a"`, "done": "true", "views": "2", "tags": `["x"]`}
				if got := fields(d); !maps.Equal(got, want) {
					t.Errorf("Tx.Get n1 = %v, want %v", got, want)
				}
				must(t, tx.Increment("todos", "n1", "views", 5))
				must(t, tx.Remove("todos", "n1", "tags", "x"))
				d, err = tx.Get("todos", "n1")
				must(t, err)
				// Removing in the Tx what the Tx added leaves no trace of the set.
				if got := fields(d); !maps.Equal(got, map[string]string{"title": `"a"`, "done": "true", "views": "7"}) {
					t.Errorf("Tx.Get n1 after more ops = %v, want views 7 and no tags", got)
				}

				must(t, tx.Delete("todos", "t0"))
				_, err = tx.Get("todos", "t0")
				wantErr(t, err, client.ErrNotFound)
				wantErr(t, tx.Patch("todos", "t0", map[string]any{"title": "x"}), client.ErrNotFound)
				must(t, tx.Put("todos", "t0", map[string]any{"title": "again"}))
				d, err = tx.Get("todos", "t0")
				must(t, err)
				if got := fields(d); !maps.Equal(got, map[string]string{"title": `"again"`}) {
					t.Errorf("Tx.Get t0 after delete and put = %v, want only the new title", got)
				}
				return nil
			}))
			wantFields(t, c, "todos", "n1", map[string]string{"title": `"a"`, "done": "true", "views": "7"})
			wantFields(t, c, "todos", "t0", map[string]string{"title": `"again"`})
		}},
		{"one outbox entry per transaction", func(t *testing.T, c *client.Client) {
			n := pending(t, c)
			last := outbox(t, c)
			must(t, c.Tx(ctx, func(tx *client.Tx) error {
				for _, id := range []string{"a", "b", "c", "d", "e"} {
					if err := tx.Put("todos", id, map[string]any{"title": id, "n": 1}); err != nil {
						return err
					}
					if err := tx.Increment("stats", id, "views", 1); err != nil {
						return err
					}
				}
				return tx.Delete("todos", "t0")
			}))
			if got := pending(t, c); got != n+1 {
				t.Errorf("Pending after a 16-op Tx = %d, want %d", got, n+1)
			}
			txs := outbox(t, c)
			if len(txs) != len(last)+1 {
				t.Fatalf("outbox has %d txs, want %d", len(txs), len(last)+1)
			}
			tx := txs[len(txs)-1]
			if tx.Seq != last[len(last)-1].Seq+1 || tx.Site != c.Site() {
				t.Errorf("new outbox tx is %s/%d, want %s/%d", tx.Site, tx.Seq, c.Site(), last[len(last)-1].Seq+1)
			}
			// 5 × (revive + 2 sets) + 5 × (revive + increment) + 1 delete.
			if len(tx.Ops) != 26 {
				t.Errorf("tx has %d ops, want 26", len(tx.Ops))
			}
			// A single-op write is one entry too.
			must(t, c.Collection("todos").Put(ctx, "a", map[string]any{"title": "A"}))
			if got := pending(t, c); got != n+2 {
				t.Errorf("Pending = %d, want %d", got, n+2)
			}
		}},
		{"a transaction that changes nothing makes no entry", func(t *testing.T, c *client.Client) {
			before := snap(t, c)
			must(t, c.Tx(ctx, func(tx *client.Tx) error {
				if _, err := tx.Get("todos", "t0"); err != nil {
					return err
				}
				if err := tx.Delete("todos", "missing"); err != nil {
					return err
				}
				return tx.Remove("todos", "t0", "tags", "never")
			}))
			if after := snap(t, c); after != before {
				t.Errorf("an empty Tx changed the replica")
			}
		}},
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					c := open(t, b, client.Config{})
					must(t, c.Collection("todos").Put(ctx, "t0", map[string]any{"title": "zero"}))
					tt.run(t, c)
				})
			}
		})
	}
}
