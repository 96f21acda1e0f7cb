package client_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/unosync/uno/client"
	"github.com/unosync/uno/crdt"
	"github.com/unosync/uno/store"
)

// start is the wall time fake clocks begin at.
var start = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// wait bounds every wait for something that should happen.
const wait = 5 * time.Second

// quiet is how long a negative check waits for something that should not
// happen.
const quiet = 100 * time.Millisecond

// fakeClock is a wall clock for Config.Now: each reading is step after the
// previous one, so timestamps increase without depending on real time.
type fakeClock struct {
	mu   sync.Mutex
	now  time.Time
	step time.Duration
}

func newClock(at time.Time) *fakeClock { return &fakeClock{now: at, step: time.Millisecond} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(c.step)
	return c.now
}

// Set moves the clock to t (the next reading is t plus one step).
func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// backend is a kind of local store a client can run on.
type backend struct {
	name string
	// config fills in Path or Store.
	config func(tb testing.TB, cfg client.Config) client.Config
}

var (
	sqliteBackend = backend{"sqlite", func(tb testing.TB, cfg client.Config) client.Config {
		tb.Helper()
		cfg.Path = filepath.Join(tb.TempDir(), "uno.db")
		return cfg
	}}
	memoryBackend = backend{"memory", func(tb testing.TB, cfg client.Config) client.Config {
		tb.Helper()
		// The client hands Schema, Now and MaxDrift only to a store it
		// opens itself, so a given store gets them here.
		m, err := store.NewMemory(store.Options{Schema: cfg.Schema, Now: cfg.Now, MaxDrift: cfg.MaxDrift})
		if err != nil {
			tb.Fatalf("store.NewMemory: %v", err)
		}
		cfg.Store = m
		return cfg
	}}
	backends = []backend{sqliteBackend, memoryBackend}
)

// open opens a client on b with cfg, closed when the test ends. A nil
// cfg.Now gets a fresh fake clock.
func open(tb testing.TB, b backend, cfg client.Config) *client.Client {
	tb.Helper()
	if cfg.Now == nil {
		cfg.Now = newClock(start).Now
	}
	c, err := client.Open(context.Background(), b.config(tb, cfg))
	if err != nil {
		tb.Fatalf("Open (%s): %v", b.name, err)
	}
	tb.Cleanup(func() {
		if err := c.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return c
}

func must(tb testing.TB, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatal(err)
	}
}

func wantErr(tb testing.TB, err, target error) {
	tb.Helper()
	if !errors.Is(err, target) {
		tb.Fatalf("got error %v, want one matching %v", err, target)
	}
}

// snapshot is what a write that fails must leave unchanged.
type snapshot struct {
	Pending int
	Hash    [32]byte
}

func snap(tb testing.TB, c *client.Client) snapshot {
	tb.Helper()
	ctx := context.Background()
	n, err := c.Pending(ctx)
	if err != nil {
		tb.Fatalf("Pending: %v", err)
	}
	h, err := c.Hash(ctx)
	if err != nil {
		tb.Fatalf("Hash: %v", err)
	}
	return snapshot{n, h}
}

func pending(tb testing.TB, c *client.Client) int {
	tb.Helper()
	n, err := c.Pending(context.Background())
	if err != nil {
		tb.Fatalf("Pending: %v", err)
	}
	return n
}

func hash(tb fataler, c *client.Client) [32]byte {
	tb.Helper()
	h, err := c.Hash(context.Background())
	if err != nil {
		tb.Fatalf("Hash: %v", err)
	}
	return h
}

// fields returns a document's fields as JSON text.
func fields(d client.Doc) map[string]string {
	out := make(map[string]string, len(d.Fields))
	for k, v := range d.Fields {
		out[k] = string(v)
	}
	return out
}

func get(tb testing.TB, c *client.Client, collection, id string) client.Doc {
	tb.Helper()
	d, err := c.Collection(collection).Get(context.Background(), id)
	if err != nil {
		tb.Fatalf("Get %s/%s: %v", collection, id, err)
	}
	return d
}

// wantFields checks a row's fields exactly.
func wantFields(tb testing.TB, c *client.Client, collection, id string, want map[string]string) {
	tb.Helper()
	if diff := cmp.Diff(want, fields(get(tb, c, collection, id))); diff != "" {
		tb.Fatalf("%s/%s fields (-want +got):\n%s", collection, id, diff)
	}
}

func ids(docs []client.Doc) []string {
	out := make([]string, len(docs))
	for i, d := range docs {
		out[i] = d.ID
	}
	return out
}

// render is a result as comparable text: each row's JSON, in order.
func render(docs []client.Doc) []string {
	out := make([]string, len(docs))
	for i, d := range docs {
		out[i] = string(d.JSON())
	}
	return out
}

func find(tb testing.TB, c *client.Client, collection string, q client.Query) []client.Doc {
	tb.Helper()
	docs, err := c.Collection(collection).Find(context.Background(), q)
	if err != nil {
		tb.Fatalf("Find %s: %v", collection, err)
	}
	return docs
}

// fataler is what helpers used inside rapid properties need: both
// testing.TB and *rapid.T have it.
type fataler interface {
	Helper()
	Fatalf(format string, args ...any)
}

// outbox returns every unacknowledged local transaction of c.
func outbox(tb fataler, c *client.Client) []*crdt.Tx {
	tb.Helper()
	txs, err := c.Outbox(context.Background(), 0, 0)
	if err != nil {
		tb.Fatalf("Outbox: %v", err)
	}
	return txs
}

// exchange gives every client the outbox of every other client.
func exchange(tb fataler, cs ...*client.Client) {
	tb.Helper()
	boxes := make([][]*crdt.Tx, len(cs))
	for i, c := range cs {
		boxes[i] = outbox(tb, c)
	}
	for i, c := range cs {
		for j := range cs {
			if i != j {
				if err := c.Merge(context.Background(), boxes[j]); err != nil {
					tb.Fatalf("Merge into client %d from %d: %v", i, j, err)
				}
			}
		}
	}
}

// recv returns the next result of a watch, failing if none comes in time
// or the watch stops.
func recv(tb testing.TB, w *client.Watch) []client.Doc {
	tb.Helper()
	select {
	case docs, ok := <-w.C:
		if !ok {
			tb.Fatalf("watch stopped (Err: %v), want a result", w.Err())
		}
		return docs
	case <-time.After(wait):
		tb.Fatalf("no watch result within %s", wait)
	}
	return nil
}

// recvUntil receives results until one renders as want. Because C keeps
// only the latest result, intermediate results may be skipped.
func recvUntil(tb testing.TB, w *client.Watch, want []string) {
	tb.Helper()
	deadline := time.After(wait)
	var last []string
	for {
		select {
		case docs, ok := <-w.C:
			if !ok {
				tb.Fatalf("watch stopped (Err: %v) before showing %v", w.Err(), want)
			}
			last = render(docs)
			if cmp.Equal(want, last) {
				return
			}
		case <-deadline:
			tb.Fatalf("watch did not show the expected result within %s (-want +last):\n%s", wait, cmp.Diff(want, last))
		}
	}
}

// recvNone checks that no result arrives for a short while.
func recvNone(tb testing.TB, w *client.Watch) {
	tb.Helper()
	select {
	case docs, ok := <-w.C:
		if !ok {
			tb.Fatalf("watch stopped (Err: %v), want it running", w.Err())
		}
		tb.Fatalf("unexpected watch result %v", render(docs))
	case <-time.After(quiet):
	}
}

// waitClosed drains C until it is closed.
func waitClosed(tb testing.TB, w *client.Watch) {
	tb.Helper()
	deadline := time.After(wait)
	for {
		select {
		case _, ok := <-w.C:
			if !ok {
				return
			}
		case <-deadline:
			tb.Fatalf("watch channel not closed within %s", wait)
		}
	}
}

// notesSchema declares notes with a doc field beside the other kinds.
var notesSchema = &store.Schema{Collections: []store.Collection{{Name: "notes", Fields: []store.Field{
	{Name: "title"}, {Name: "body", Kind: crdt.KindDoc}, {Name: "views", Kind: crdt.KindCounter}, {Name: "tags", Kind: crdt.KindSet},
}}}}
