package e2e

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/unosync/uno/client"
	"github.com/unosync/uno/crdt"
)

// copyDB copies a closed client's database files (the file and any WAL)
// from one directory to another, removing the destination's first.
func copyDB(t *testing.T, name, from, to string) {
	t.Helper()
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if err := os.Remove(filepath.Join(to, name+suffix)); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		src, err := os.Open(filepath.Join(from, name+suffix))
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		dst, err := os.Create(filepath.Join(to, name+suffix))
		if err == nil {
			_, err = io.Copy(dst, src)
		}
		src.Close()
		if err == nil {
			err = dst.Close()
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// A replica's database rolled back to an earlier copy — what a power cut
// does to the commits a relaxed store had not synced (remote changes and
// acknowledgements in every mode, local writes too under
// DurabilityRelaxed), or a restored backup — loses a batch of changes
// received from the server and a batch of its own writes the server
// acknowledged. It fetches both again and converges with the others,
// nothing duplicated (the counter adds each increment once, the log holds
// each write once), and its next writes take new sequence numbers rather
// than ones the server already holds.
func TestRollback_RefetchesAndConverges(t *testing.T) {
	for _, d := range []client.Durability{client.DurabilityFull, client.DurabilityRelaxed} {
		t.Run(fmt.Sprint("durability=", d), func(t *testing.T) { testRollback(t, d) })
	}
}

func testRollback(t *testing.T, durability client.Durability) {
	ctx := context.Background()
	e := startServer(t)
	dir, backup := t.TempDir(), t.TempDir()
	open := func(name string) *client.Client {
		c, err := client.Open(ctx, client.Config{Path: filepath.Join(dir, name+".db"), Server: e.url, Token: e.auth.Token,
			ManualSync: true, Durability: durability, BackoffMin: 20 * time.Millisecond, BackoffMax: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	a, b := open("a"), open("b")
	defer func() { a.Close() }()
	write := func(c *client.Client, who string, from, n, votes int) {
		t.Helper()
		for i := from; i < from+n; i++ {
			if err := c.Collection("todos").Put(ctx, fmt.Sprintf("%s%d", who, i), map[string]any{"title": who, "n": i}); err != nil {
				t.Fatal(err)
			}
		}
		for range votes {
			if err := c.Collection("todos").Increment(ctx, "shared", "votes", 1); err != nil {
				t.Fatal(err)
			}
		}
	}
	syncAll := func() {
		t.Helper()
		syncCtx(t, a)
		syncCtx(t, b)
		syncCtx(t, a)
	}
	write(a, "a", 0, 5, 1)
	write(b, "b", 0, 5, 3)
	syncAll()

	// The copy taken before the batch.
	b.Close()
	copyDB(t, "b.db", dir, backup)
	b = open("b")

	write(a, "a", 5, 5, 2) // a batch b receives
	write(b, "b", 5, 4, 4) // a batch of b's own, acknowledged
	syncAll()
	b.Close()
	copyDB(t, "b.db", backup, dir)
	b = open("b")
	defer func() { b.Close() }()
	if _, err := b.Collection("todos").Get(ctx, "b5"); err == nil {
		t.Fatal("the rolled-back replica still has its later writes: the copy is not older")
	}

	syncCtx(t, b) // finds the server ahead of it, and bootstraps
	write(b, "b", 9, 1, 1)
	syncAll()

	want, err := e.log.RowsHash(ctx, "dev")
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]*client.Client{"a": a, "b": b} {
		if h, err := c.Hash(ctx); err != nil || h != want {
			t.Errorf("%s's hash differs from the server's read model (%v)", name, err)
		}
		if st := c.Status(); st.Pending != 0 {
			t.Errorf("%s: %d writes still pending", name, st.Pending)
		}
		doc, err := c.Collection("todos").Get(ctx, "shared")
		if err != nil {
			t.Fatal(err)
		}
		if v := string(doc.Fields["votes"]); v != "11" {
			t.Errorf("%s: votes = %s, want 11 (1+3, then 2+4, then 1: each once)", name, v)
		}
		for _, id := range []string{"a9", "b8", "b9"} {
			if _, err := c.Collection("todos").Get(ctx, id); err != nil {
				t.Errorf("%s: %s: %v", name, id, err)
			}
		}
	}
	// The log holds each of b's writes once, with sequence numbers 1 to 18.
	entries, err := e.log.Read(ctx, "dev", 0, 1000, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	seqs := map[crdt.SiteID][]uint64{}
	for _, ch := range entries {
		seqs[ch.Tx.Site] = append(seqs[ch.Tx.Site], ch.Tx.Seq)
	}
	if len(seqs) != 2 {
		t.Fatalf("the log holds %d sites' writes, want 2", len(seqs))
	}
	for site, ss := range seqs {
		for i, s := range ss {
			if s != uint64(i)+1 {
				t.Fatalf("site %s's writes in the log: %v, want 1, 2, ... each once", site, ss)
			}
		}
	}
	if n := len(entries); n != 6+8+7+8+2 {
		t.Errorf("the log holds %d entries, want %d", n, 6+8+7+8+2)
	}
}
