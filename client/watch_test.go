package client_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/unosync/uno/client"
	"github.com/unosync/uno/store"
)

var openTodos = client.Query{Where: []client.Cond{client.Where("done", "=", false)}, OrderBy: "title"}

func TestCollection_Watch(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		run  func(t *testing.T, c *client.Client, w *client.Watch)
	}{
		{"a put touching the result", func(t *testing.T, c *client.Client, w *client.Watch) {
			must(t, c.Collection("todos").Put(ctx, "t3", map[string]any{"title": "c", "done": false}))
			got := render(recv(t, w))
			want := []string{`{"done":false,"id":"t1","title":"a"}`, `{"done":false,"id":"t3","title":"c"}`}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("result after put (-want +got):\n%s", diff)
			}
			// An update of a row in the result, and a row leaving it.
			must(t, c.Collection("todos").Patch(ctx, "t1", map[string]any{"title": "z"}))
			recvUntil(t, w, []string{`{"done":false,"id":"t3","title":"c"}`, `{"done":false,"id":"t1","title":"z"}`})
			must(t, c.Collection("todos").Patch(ctx, "t3", map[string]any{"done": true}))
			recvUntil(t, w, []string{`{"done":false,"id":"t1","title":"z"}`})
			must(t, c.Collection("todos").Delete(ctx, "t1"))
			recvUntil(t, w, []string{})
		}},
		{"a transaction shows whole", func(t *testing.T, c *client.Client, w *client.Watch) {
			must(t, c.Tx(ctx, func(tx *client.Tx) error {
				for _, id := range []string{"t3", "t4", "t5"} {
					if err := tx.Put("todos", id, map[string]any{"title": id, "done": false}); err != nil {
						return err
					}
				}
				return tx.Delete("todos", "t1")
			}))
			got := ids(recv(t, w))
			if diff := cmp.Diff([]string{"t3", "t4", "t5"}, got); diff != "" {
				t.Errorf("result after tx (-want +got):\n%s", diff)
			}
		}},
		{"a write to another collection", func(t *testing.T, c *client.Client, w *client.Watch) {
			must(t, c.Collection("other").Put(ctx, "t3", map[string]any{"title": "c", "done": false}))
			must(t, c.Collection("other").Increment(ctx, "t1", "views", 1))
			recvNone(t, w)
		}},
		{"a write that does not change the result", func(t *testing.T, c *client.Client, w *client.Watch) {
			// t2 is excluded by the where filter.
			must(t, c.Collection("todos").Patch(ctx, "t2", map[string]any{"title": "bb"}))
			must(t, c.Collection("todos").Put(ctx, "t9", map[string]any{"title": "x", "done": true}))
			// Writing the value a row already shows.
			must(t, c.Collection("todos").Put(ctx, "t1", map[string]any{"title": "a"}))
			recvNone(t, w)
			// The watch is still live.
			must(t, c.Collection("todos").Patch(ctx, "t2", map[string]any{"done": false}))
			recvUntil(t, w, []string{`{"done":false,"id":"t1","title":"a"}`, `{"done":false,"id":"t2","title":"bb"}`})
		}},
		{"a failed write", func(t *testing.T, c *client.Client, w *client.Watch) {
			err := c.Tx(ctx, func(tx *client.Tx) error {
				must(t, tx.Put("todos", "t3", map[string]any{"title": "c", "done": false}))
				return context.Canceled
			})
			wantErr(t, err, context.Canceled)
			recvNone(t, w)
		}},
		{"close closes C", func(t *testing.T, c *client.Client, w *client.Watch) {
			w.Close()
			waitClosed(t, w)
			w.Close() // twice is fine
			if err := w.Err(); err != nil {
				t.Errorf("Err after Close = %v, want nil", err)
			}
			// Writes after the watch stopped do not block or panic.
			must(t, c.Collection("todos").Put(ctx, "t3", map[string]any{"title": "c", "done": false}))
		}},
		{"client close closes C", func(t *testing.T, c *client.Client, w *client.Watch) {
			must(t, c.Close())
			waitClosed(t, w)
			w.Close()
		}},
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					c := open(t, b, client.Config{})
					must(t, c.Collection("todos").Put(ctx, "t1", map[string]any{"title": "a", "done": false}))
					must(t, c.Collection("todos").Put(ctx, "t2", map[string]any{"title": "b", "done": true}))
					w, err := c.Collection("todos").Watch(ctx, openTodos)
					must(t, err)
					t.Cleanup(w.Close)
					// The initial result comes without any write.
					if diff := cmp.Diff([]string{`{"done":false,"id":"t1","title":"a"}`}, render(recv(t, w))); diff != "" {
						t.Fatalf("initial result (-want +got):\n%s", diff)
					}
					tt.run(t, c, w)
				})
			}
		})
	}
}

func TestCollection_WatchContext(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			c := open(t, b, client.Config{})
			ctx, cancel := context.WithCancel(context.Background())
			w, err := c.Collection("todos").Watch(ctx, client.Query{})
			must(t, err)
			if got := recv(t, w); len(got) != 0 {
				t.Errorf("initial result of an empty collection: %v", ids(got))
			}
			cancel()
			waitClosed(t, w)
			w.Close()
			// The client keeps working without the watch.
			must(t, c.Collection("todos").Put(context.Background(), "t1", map[string]any{"title": "a"}))
		})
	}
}

// Transactions merged from another replica wake the watch.
func TestCollection_WatchMerge(t *testing.T) {
	ctx := context.Background()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			a := open(t, b, client.Config{})
			r := open(t, b, client.Config{})
			must(t, r.Collection("todos").Put(ctx, "t1", map[string]any{"title": "mine", "done": false}))
			w, err := r.Collection("todos").Watch(ctx, openTodos)
			must(t, err)
			defer w.Close()
			recvUntil(t, w, []string{`{"done":false,"id":"t1","title":"mine"}`})

			must(t, a.Collection("todos").Put(ctx, "t2", map[string]any{"title": "theirs", "done": false}))
			must(t, a.Collection("other").Put(ctx, "o1", map[string]any{"x": 1}))
			must(t, r.Merge(ctx, outbox(t, a)))
			recvUntil(t, w, []string{`{"done":false,"id":"t1","title":"mine"}`, `{"done":false,"id":"t2","title":"theirs"}`})

			// Merging the same transactions again changes nothing.
			must(t, r.Merge(ctx, outbox(t, a)))
			recvNone(t, w)

			// A remote write to another collection does not wake it.
			must(t, a.Collection("other").Put(ctx, "o2", map[string]any{"x": 2}))
			must(t, r.Merge(ctx, outbox(t, a)))
			recvNone(t, w)
		})
	}
}

// queryHookStore is a store whose Query runs a hook, once, after reading.
type queryHookStore struct {
	store.Store
	hook atomic.Pointer[func()]
}

func (s *queryHookStore) Query(ctx context.Context, q store.Query) ([]store.Doc, error) {
	docs, err := s.Store.Query(ctx, q)
	if f := s.hook.Swap(nil); f != nil {
		(*f)()
	}
	return docs, err
}

// A write that commits after the watch's first query but before Watch
// returns must still reach the watch: once writes stop, C shows what Find
// shows.
func TestCollection_WatchWriteDuringStart(t *testing.T) {
	ctx := context.Background()
	m, err := store.NewMemory(store.Options{Now: newClock(start).Now})
	must(t, err)
	s := &queryHookStore{Store: m}
	c, err := client.Open(ctx, client.Config{Store: s})
	must(t, err)
	defer c.Close()
	col := c.Collection("todos")
	must(t, col.Put(ctx, "t1", map[string]any{"title": "a"}))

	hook := func() { must(t, col.Put(ctx, "t2", map[string]any{"title": "b"})) }
	s.hook.Store(&hook)
	w, err := col.Watch(ctx, client.Query{})
	must(t, err)
	defer w.Close()
	if s.hook.Load() != nil {
		t.Fatal("the hook did not run")
	}
	recvUntil(t, w, render(find(t, c, "todos", client.Query{})))
}
