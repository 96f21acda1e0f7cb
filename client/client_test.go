package client_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/unosync/uno/client"
	"github.com/unosync/uno/conflict"
	"github.com/unosync/uno/crdt"
	"github.com/unosync/uno/store"
)

func TestOpen_CreatesFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.db")
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Stat before Open: %v, want not exist", err)
	}
	c, err := client.Open(context.Background(), client.Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("Stat after Open: %v", err)
	}
	if c.DB() == nil {
		t.Error("DB() is nil for a SQLite client")
	}
	if c.Site().IsZero() {
		t.Error("Site() is zero")
	}
}

// DurabilityRelaxed opens the file at synchronous=NORMAL; the default at
// FULL.
func TestOpen_Durability(t *testing.T) {
	for d, want := range map[client.Durability]int{client.DurabilityFull: 2, client.DurabilityRelaxed: 1} {
		c, err := client.Open(t.Context(), client.Config{Path: filepath.Join(t.TempDir(), "a.db"), Durability: d})
		must(t, err)
		var level int
		must(t, c.DB().QueryRowContext(t.Context(), `PRAGMA synchronous`).Scan(&level))
		c.Close()
		if level != want {
			t.Errorf("durability %d: synchronous %d, want %d", d, level, want)
		}
	}
}

func TestOpen_BadConfig(t *testing.T) {
	mem := func(t *testing.T) store.Store {
		m, err := store.NewMemory(store.Options{})
		must(t, err)
		return m
	}
	tests := []struct {
		name string
		cfg  func(t *testing.T) client.Config
		want error // nil: any error
	}{
		{"neither path nor store", func(*testing.T) client.Config { return client.Config{} }, nil},
		{"invalid collection name in schema", func(t *testing.T) client.Config {
			return client.Config{Path: filepath.Join(t.TempDir(), "a.db"), Schema: &store.Schema{Collections: []store.Collection{{Name: "Todos"}}}}
		}, store.ErrInvalidSchema},
		{"field named id in schema", func(t *testing.T) client.Config {
			return client.Config{Store: mem(t), Schema: &store.Schema{Collections: []store.Collection{{Name: "todos", Fields: []store.Field{{Name: "id"}}}}}}
		}, store.ErrInvalidSchema},
		{"field declared twice", func(t *testing.T) client.Config {
			return client.Config{Store: mem(t), Schema: &store.Schema{Collections: []store.Collection{{Name: "todos", Fields: []store.Field{{Name: "a"}, {Name: "a"}}}}}}
		}, store.ErrInvalidSchema},
		{"unknown kind", func(t *testing.T) client.Config {
			return client.Config{Store: mem(t), Schema: &store.Schema{Collections: []store.Collection{{Name: "todos", Fields: []store.Field{{Name: "a", Kind: 99}}}}}}
		}, store.ErrInvalidSchema},
		{"index on unknown field", func(t *testing.T) client.Config {
			return client.Config{Store: mem(t), Schema: &store.Schema{Collections: []store.Collection{{Name: "todos", Indexes: []store.Index{{Fields: []string{"nope"}}}}}}}
		}, store.ErrInvalidSchema},
		{"negative MaxValueBytes", func(t *testing.T) client.Config {
			return client.Config{Store: mem(t), MaxValueBytes: -1}
		}, nil},
		{"MaxValueBytes over what replicas accept", func(t *testing.T) client.Config {
			return client.Config{Store: mem(t), MaxValueBytes: crdt.DefaultMaxValueBytes + 1}
		}, nil},
		{"negative MaxTxOps", func(t *testing.T) client.Config {
			return client.Config{Store: mem(t), MaxTxOps: -1}
		}, nil},
		{"relaxed durability with synchronous FULL", func(t *testing.T) client.Config {
			return client.Config{Path: filepath.Join(t.TempDir(), "a.db"), Durability: client.DurabilityRelaxed, Synchronous: "FULL"}
		}, nil},
		{"unknown durability", func(t *testing.T) client.Config {
			return client.Config{Path: filepath.Join(t.TempDir(), "a.db"), Durability: 7}
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg(t)
			c, err := client.Open(context.Background(), cfg)
			if err == nil {
				c.Close()
				t.Fatal("Open succeeded, want an error")
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("Open: %v, want one matching %v", err, tt.want)
			}
			if cfg.Path != "" {
				if _, err := os.Stat(cfg.Path); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("a rejected config created %s (Stat: %v)", cfg.Path, err)
				}
			}
		})
	}
}

func TestClient_CloseTwice(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			c, err := client.Open(context.Background(), b.config(t, client.Config{}))
			must(t, err)
			if err := c.Close(); err != nil {
				t.Fatalf("first Close: %v", err)
			}
			if err := c.Close(); err != nil {
				t.Fatalf("second Close: %v", err)
			}
		})
	}
}

func TestClient_MethodsAfterClose(t *testing.T) {
	ctx := context.Background()
	calls := []struct {
		name string
		call func(c *client.Client) error
	}{
		{"Put", func(c *client.Client) error { return c.Collection("todos").Put(ctx, "t2", map[string]any{"a": 1}) }},
		{"Patch", func(c *client.Client) error { return c.Collection("todos").Patch(ctx, "t1", map[string]any{"a": 1}) }},
		{"Delete", func(c *client.Client) error { return c.Collection("todos").Delete(ctx, "t1") }},
		{"Increment", func(c *client.Client) error { return c.Collection("todos").Increment(ctx, "t1", "n", 1) }},
		{"Add", func(c *client.Client) error { return c.Collection("todos").Add(ctx, "t1", "tags", "x") }},
		{"Remove", func(c *client.Client) error { return c.Collection("todos").Remove(ctx, "t1", "tags", "x") }},
		{"Get", func(c *client.Client) error { _, err := c.Collection("todos").Get(ctx, "t1"); return err }},
		{"Find", func(c *client.Client) error { _, err := c.Collection("todos").Find(ctx, client.Query{}); return err }},
		{"Tx", func(c *client.Client) error {
			return c.Tx(ctx, func(tx *client.Tx) error { return tx.Put("todos", "t3", map[string]any{"a": 1}) })
		}},
		{"Pending", func(c *client.Client) error { _, err := c.Pending(ctx); return err }},
		{"Conflicts", func(c *client.Client) error { _, err := c.Conflicts(ctx, 0, 0); return err }},
		{"Watch", func(c *client.Client) error {
			w, err := c.Collection("todos").Watch(ctx, client.Query{})
			if w != nil {
				w.Close()
			}
			return err
		}},
		{"Merge", func(c *client.Client) error { return c.Merge(ctx, nil) }},
		{"Outbox", func(c *client.Client) error { _, err := c.Outbox(ctx, 0, 0); return err }},
		{"Hash", func(c *client.Client) error { _, err := c.Hash(ctx); return err }},
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			c, err := client.Open(ctx, b.config(t, client.Config{}))
			must(t, err)
			must(t, c.Collection("todos").Put(ctx, "t1", map[string]any{"title": "a"}))
			must(t, c.Close())
			for _, tt := range calls {
				t.Run(tt.name, func(t *testing.T) {
					if err := tt.call(c); !errors.Is(err, client.ErrClosed) {
						t.Errorf("%s after Close: %v, want an error matching client.ErrClosed", tt.name, err)
					}
				})
			}
		})
	}
}

func TestOpen_ReopenKeepsDataAndSite(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "app.db")
	clock := newClock(start)

	c, err := client.Open(ctx, client.Config{Path: path, Now: clock.Now})
	must(t, err)
	must(t, c.Collection("todos").Put(ctx, "t1", map[string]any{"title": "Buy milk"}))
	must(t, c.Collection("todos").Increment(ctx, "t1", "views", 3))
	site, h := c.Site(), hash(t, c)
	must(t, c.Close())

	// The wall clock went backwards while the app was closed: new writes
	// must still be stamped after the old ones (the clock is persisted).
	clock.Set(start.Add(-time.Hour))
	c, err = client.Open(ctx, client.Config{Path: path, Now: clock.Now})
	must(t, err)
	defer c.Close()
	if c.Site() != site {
		t.Errorf("Site after reopen = %s, want %s", c.Site(), site)
	}
	if got := hash(t, c); got != h {
		t.Errorf("Hash changed across reopen")
	}
	wantFields(t, c, "todos", "t1", map[string]string{"title": `"Buy milk"`, "views": "3"})
	if got := ids(find(t, c, "todos", client.Query{Where: []client.Cond{client.Where("views", ">", 2)}})); len(got) != 1 || got[0] != "t1" {
		t.Errorf("Find after reopen: %v, want [t1]", got)
	}
	if st := c.Status(); st.Pending != 2 {
		t.Errorf("Status().Pending after reopen (offline) = %d, want 2", st.Pending)
	}
	if n := pending(t, c); n != 2 {
		t.Errorf("Pending after reopen = %d, want 2", n)
	}
	must(t, c.Collection("todos").Put(ctx, "t1", map[string]any{"title": "Buy oat milk"}))
	txs := outbox(t, c)
	if len(txs) != 3 {
		t.Fatalf("outbox has %d txs, want 3", len(txs))
	}
	var last crdt.Timestamp
	for i, tx := range txs {
		if tx.Seq != uint64(i+1) {
			t.Errorf("tx %d has seq %d, want %d", i, tx.Seq, i+1)
		}
		if tx.Time <= last {
			t.Errorf("tx %d stamped %s, not after the previous %s", i, tx.Time, last)
		}
		last = tx.Time
	}
	wantFields(t, c, "todos", "t1", map[string]string{"title": `"Buy oat milk"`, "views": "3"})
}

// A client given both a Store and a Schema must not read with one policy
// and query with another: either Open refuses the pair, or Find matches
// what Get shows. (A store.Memory made without the schema resolves the
// field last-writer-wins when it materialises and records conflicts.)
func TestOpen_StoreWithSchema(t *testing.T) {
	ctx := context.Background()
	schema := &store.Schema{Collections: []store.Collection{{Name: "games", Fields: []store.Field{
		{Name: "best", Policy: conflict.Custom(maxResolver)},
	}}}}
	var cs []*client.Client
	for i, at := range []time.Time{start, start.Add(time.Second)} {
		m, err := store.NewMemory(store.Options{Now: newClock(at).Now})
		must(t, err)
		c, err := client.Open(ctx, client.Config{Store: m, Schema: schema})
		if err != nil {
			return // refusing a store that does not share the schema is fine
		}
		defer c.Close()
		must(t, c.Collection("games").Put(ctx, "g1", map[string]any{"best": []int{50, 7}[i]}))
		cs = append(cs, c)
	}
	exchange(t, cs...)
	c := cs[0]
	shown := fields(get(t, c, "games", "g1"))["best"]
	if shown != "50" {
		t.Fatalf("Get shows best = %s, want the resolver's 50", shown)
	}
	if got := ids(find(t, c, "games", client.Query{Where: []client.Cond{client.Where("best", "=", 50)}})); len(got) != 1 {
		t.Errorf("Get shows best = 50 but Find(best = 50) returns %v", got)
	}
	if got := ids(find(t, c, "games", client.Query{Where: []client.Cond{client.Where("best", "=", 7)}})); len(got) != 0 {
		t.Errorf("Get shows best = 50 but Find(best = 7) returns %v", got)
	}
	for _, e := range conflicts(t, c) {
		if e.Mode != conflict.ModeResolver {
			t.Errorf("conflict record under %s, want the schema's resolver policy", e.Mode)
		}
	}
}
