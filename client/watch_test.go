package client_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/unosync/uno/client"
	"github.com/unosync/uno/crdt"
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
// It passes OnChange on to a store that reports its commits
// (store.SQLite), so a watch of a whole collection there takes its rows
// from the reports.
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

func (s *queryHookStore) OnChange(fn func([]crdt.RowKey, []*crdt.Row)) {
	if r, ok := s.Store.(interface {
		OnChange(func([]crdt.RowKey, []*crdt.Row))
	}); ok {
		r.OnChange(fn)
	}
}

// Writes that commit after the watch's first query but before Watch
// returns must still reach the watch: once writes stop, C shows what Find
// shows. Over SQLite they are reported while the query runs, which may or
// may not have seen them: the watch queries again rather than patch (or
// drop) them.
func TestCollection_WatchWriteDuringStart(t *testing.T) {
	ctx := context.Background()
	for name, open := range map[string]func(t *testing.T) store.Store{
		"memory": func(t *testing.T) store.Store {
			m, err := store.NewMemory(store.Options{Now: newClock(start).Now})
			must(t, err)
			return m
		},
		"sqlite": func(t *testing.T) store.Store {
			s, err := store.OpenSQLite(ctx, filepath.Join(t.TempDir(), "uno.db"), store.Options{})
			must(t, err)
			return s
		},
	} {
		t.Run(name, func(t *testing.T) {
			s := &queryHookStore{Store: open(t)}
			c, err := client.Open(ctx, client.Config{Store: s})
			must(t, err)
			defer c.Close()
			col := c.Collection("todos")
			must(t, col.Put(ctx, "t1", map[string]any{"title": "a"}))

			hook := func() {
				must(t, col.Put(ctx, "t2", map[string]any{"title": "b"}))
				must(t, col.Patch(ctx, "t1", map[string]any{"title": "c"}))
			}
			s.hook.Store(&hook)
			w, err := col.Watch(ctx, client.Query{})
			must(t, err)
			defer w.Close()
			if s.hook.Load() != nil {
				t.Fatal("the hook did not run")
			}
			recvUntil(t, w, render(find(t, c, "todos", client.Query{})))
		})
	}
}

// Local writes and merged remote ones from many goroutines at once: a
// whole-collection watch, patched from each commit's rows, never shows a
// row older than one it showed before, and once the writes stop it shows
// what Find shows. Each row's n only grows: one writer per row.
func TestCollection_WatchPatchedConcurrently(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	c, err := client.Open(ctx, client.Config{Path: filepath.Join(dir, "a.db")})
	must(t, err)
	defer c.Close()
	remote, err := client.Open(ctx, client.Config{Path: filepath.Join(dir, "b.db")})
	must(t, err)
	defer remote.Close()
	for round, q := range []client.Query{{}, {Desc: true}} {
		base := round * 1000 // n grows across rounds too
		w, err := c.Collection("items").Watch(ctx, q)
		must(t, err)
		// One reader takes every result in turn: no row's n goes down.
		var mu sync.Mutex
		var last []string
		checked := make(chan error, 1)
		go func() {
			seen := map[string]int{}
			var err error
			for docs := range w.C {
				for _, d := range docs {
					var n int
					if json.Unmarshal(d.Fields["n"], &n) != nil {
						continue
					}
					if n < seen[d.ID] && err == nil {
						err = fmt.Errorf("row %s showed n %d after %d", d.ID, n, seen[d.ID])
					}
					seen[d.ID] = n
				}
				mu.Lock()
				last = render(docs)
				mu.Unlock()
			}
			checked <- err
		}()
		var wg sync.WaitGroup
		const rounds = 40
		for g := range 3 { // local writers, each its own rows; one deletes and revives
			wg.Go(func() {
				items := c.Collection("items")
				for i := range rounds {
					id := fmt.Sprint("local", g, "-", i%5)
					must(t, items.Put(ctx, id, map[string]any{"n": base + i}))
					if g == 0 && i%7 == 3 {
						must(t, items.Delete(ctx, id))
					}
				}
			})
		}
		wg.Go(func() { // remote writes, merged as they come
			items := remote.Collection("items")
			var after uint64
			for i := range rounds {
				must(t, items.Put(ctx, fmt.Sprint("remote-", i%5), map[string]any{"n": base + i}))
				txs, err := remote.Outbox(ctx, after, 0)
				must(t, err)
				must(t, c.Merge(ctx, txs))
				after = txs[len(txs)-1].Seq
			}
		})
		wg.Wait()
		want := render(find(t, c, "items", q))
		for deadline := time.Now().Add(wait); ; time.Sleep(time.Millisecond) {
			mu.Lock()
			done := slices.Equal(last, want)
			mu.Unlock()
			if done {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("desc %v: the watch did not show what Find shows within %s", q.Desc, wait)
			}
		}
		w.Close()
		if err := <-checked; err != nil {
			t.Errorf("desc %v: %v", q.Desc, err)
		}
	}
}
