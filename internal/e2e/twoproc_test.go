package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/unosync/uno/client"
)

// Two `uno serve` processes (not two servers in one process) share one
// Postgres: a client of each writes, a live client of each sees the
// other's writes through LISTEN/NOTIFY, and every replica ends equal to
// the read model. Then one process is killed and its clients move to the
// other, losing nothing.
func TestServe_TwoProcessesOnePostgres(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	pg := newPG(t)
	nodes := []*unoProc{
		startUno(t, freeAddr(t), t.TempDir(), "--postgres", pg.app),
		startUno(t, freeAddr(t), t.TempDir(), "--postgres", pg.app),
	}
	dir := t.TempDir()
	open := func(name string, node *unoProc, manual bool) *client.Client {
		c, err := client.Open(ctx, client.Config{
			Path: filepath.Join(dir, name+".db"), Server: "ws://" + node.addr + "/v1/sync", Token: node.token,
			ManualSync: manual, BackoffMin: 20 * time.Millisecond, BackoffMax: time.Second,
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	watchers := []*client.Client{open("watch0", nodes[0], false), open("watch1", nodes[1], false)}
	writers := []*client.Client{open("write0", nodes[0], true), open("write1", nodes[1], true)}
	for i, w := range writers {
		for n := range 20 {
			if err := w.Collection("todos").Put(ctx, fmt.Sprintf("n%d-%d", i, n), map[string]any{"by": i, "n": n}); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Collection("stats").Increment(ctx, "all", "writes", 20); err != nil {
			t.Fatal(err)
		}
		syncCtx(t, w)
	}
	want, err := pg.log.RowsHash(ctx, "dev")
	if err != nil {
		t.Fatal(err)
	}
	for i, w := range watchers { // live: no Sync call, the background loop gets it
		waitFor(t, func() bool { h, _ := w.Hash(ctx); return h == want })
		t.Logf("watcher of node %d caught up by itself", i)
	}

	// Node 0 dies; its writer moves to node 1 and pushes what it wrote
	// meanwhile, offline.
	nodes[0].cmd.Process.Kill()
	nodes[0].wait(30 * time.Second)
	if err := writers[0].Collection("todos").Put(ctx, "after", map[string]any{"by": 0}); err != nil {
		t.Fatal(err)
	}
	if err := writers[0].Close(); err != nil {
		t.Fatal(err)
	}
	moved := open("write0", nodes[1], true) // the same replica, another node
	for _, c := range []*client.Client{moved, writers[1]} {
		syncCtx(t, c)
	}
	want, _ = pg.log.RowsHash(ctx, "dev")
	for _, c := range []*client.Client{moved, writers[1], watchers[1]} {
		waitFor(t, func() bool { h, _ := c.Hash(ctx); return h == want })
	}
	if _, err := writers[1].Collection("todos").Get(ctx, "after"); err != nil {
		t.Fatalf("the write made while its node was down did not arrive: %v", err)
	}
}
