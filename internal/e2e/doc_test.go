//go:build cgo && (linux || darwin) && (amd64 || arm64)

package e2e

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/unosync/uno/client"
	"github.com/unosync/uno/server"
	"github.com/unosync/uno/server/pglog"
)

var textPath = client.Path{"text"}

func noteText(t *testing.T, c *client.Client, id string) string {
	t.Helper()
	s, err := c.Collection("notes").Text(context.Background(), id, "body", textPath)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func noteJSON(t *testing.T, c *client.Client, id string) string {
	t.Helper()
	b, err := c.Collection("notes").ReadDoc(context.Background(), id, "body", nil)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Three clients edit one note's text and structure offline, beside
// ordinary fields, and sync through the server in random orders: they
// end with the same document and hashes equal to the server's read model.
func TestDoc_OfflineEditsConvergeThroughServer(t *testing.T) {
	ctx := context.Background()
	e := startServer(t)
	cs := []*client.Client{e.client(t, "a", true), e.client(t, "b", true), e.client(t, "c", true)}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(cs[0].Collection("notes").EditDoc(ctx, "n1", "body", func(d *client.DocEdit) error {
		return errors.Join(d.Splice(textPath, 0, 0, "shared start"), d.Put(client.Path{"meta"}, map[string]any{}),
			d.Increment(client.Path{"edits"}, 0))
	}))
	for _, c := range cs {
		syncCtx(t, c)
	}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 2))
	words, inserted := 0, len("shared start")
	for round := range 3 {
		for i, c := range cs {
			for range 5 {
				must(c.Tx(ctx, func(tx *client.Tx) error {
					d, err := tx.Doc("notes", "n1", "body")
					if err != nil {
						return err
					}
					cur, err := d.Text(textPath)
					if err != nil {
						return err
					}
					pos := rng.IntN(len([]rune(cur)) + 1)
					words++
					w := fmt.Sprintf(" w%d-%d ", i, words)
					inserted += len(w)
					return errors.Join(d.Splice(textPath, pos, 0, w),
						d.Put(client.Path{"meta", fmt.Sprint("by", i)}, round), d.Increment(client.Path{"edits"}, 1),
						tx.Increment("notes", "n1", "saves", 1))
				}))
			}
		}
		for _, i := range rng.Perm(len(cs)) {
			syncCtx(t, cs[i])
		}
	}
	for _, c := range cs {
		syncCtx(t, c)
	}
	want := noteJSON(t, cs[0], "n1")
	text := noteText(t, cs[0], "n1")
	// Insertions land inside earlier ones at random, so words split; but
	// every character inserted anywhere is there once.
	if len(text) != inserted {
		t.Errorf("text of %d bytes, want %d: %q", len(text), inserted, text)
	}
	if !strings.Contains(want, fmt.Sprintf(`"edits":%d`, words)) {
		t.Errorf("doc %s: want edits %d", want, words)
	}
	rows, err := e.log.RowsHash(ctx, "dev")
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range cs {
		if got := noteJSON(t, c, "n1"); got != want {
			t.Errorf("client %d: %s, want %s", i, got, want)
		}
		if h, _ := c.Hash(ctx); h != rows {
			t.Errorf("client %d's hash differs from the server's read model", i)
		}
	}
}

// A large document reaches a new client by bootstrap, alone in its
// byte-bounded batch, and keeps merging after.
func TestDoc_LargeDocumentBootstraps(t *testing.T) {
	ctx := context.Background()
	e := startServerWith(t, server.Config{BatchBytes: 64 << 10})
	a := e.client(t, "a", true)
	line := strings.Repeat("x", 4000) + "\n"
	for i := range 50 { // 200 KB of text in 50 transactions
		if i%10 == 0 && i > 0 {
			syncCtx(t, a)
		}
		if err := a.Collection("notes").Splice(ctx, "big", "body", textPath, i*len(line), 0, line); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Tx(ctx, func(tx *client.Tx) error {
		for i := range 400 {
			if err := tx.Put("notes", fmt.Sprint("small", i), map[string]any{"i": i}); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	syncCtx(t, a)
	b := e.client(t, "b", true) // a new client bootstraps from the rows
	syncCtx(t, b)
	if st := b.Status(); !st.Bootstrap.Done || st.Bootstrap.Rows != 401 {
		t.Fatalf("bootstrap %+v, want 401 rows", st.Bootstrap)
	}
	if got := noteText(t, b, "big"); got != strings.Repeat(line, 50) {
		t.Fatalf("b's text: %d bytes, want %d", len(got), 50*len(line))
	}
	if err := b.Collection("notes").Splice(ctx, "big", "body", textPath, 0, 1, "y"); err != nil {
		t.Fatal(err)
	}
	syncCtx(t, b)
	syncCtx(t, a)
	if !strings.HasPrefix(noteText(t, a, "big"), "y") {
		t.Error("b's edit after its bootstrap did not reach a")
	}
}

// Edits from several goroutines on two clients, while their sync loops
// apply each other's changes in the background, never lose each other.
func TestDoc_ConcurrentEditorsWithLiveSync(t *testing.T) {
	ctx := context.Background()
	e := startServer(t)
	a, b := e.client(t, "a", false), e.client(t, "b", false)
	if err := a.Collection("notes").EditDoc(ctx, "n1", "body", func(d *client.DocEdit) error {
		return errors.Join(d.Splice(textPath, 0, 0, "|"), d.Increment(client.Path{"n"}, 0)) // made once, then shared
	}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { s, _ := b.Collection("notes").Text(ctx, "n1", "body", textPath); return s == "|" })
	const goroutines, edits = 2, 30
	var wg sync.WaitGroup
	errs := make(chan error, 2*goroutines*edits)
	for ci, c := range []*client.Client{a, b} {
		for g := range goroutines {
			wg.Add(1)
			go func() {
				defer wg.Done()
				mark := string(rune('a' + ci*goroutines + g))
				for range edits {
					errs <- c.Collection("notes").EditDoc(ctx, "n1", "body", func(d *client.DocEdit) error {
						cur, err := d.Text(textPath)
						if err != nil {
							return err
						}
						return errors.Join(d.Splice(textPath, len([]rune(cur))/2, 0, mark), d.Increment(client.Path{"n"}, 1))
					})
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	want := 1 + 2*goroutines*edits
	waitFor(t, func() bool {
		ja, jb := noteJSON(t, a, "n1"), noteJSON(t, b, "n1")
		return ja == jb && len(noteText(t, a, "n1")) == want
	})
	text := noteText(t, a, "n1")
	for m := range 2 * goroutines {
		if n := strings.Count(text, string(rune('a'+m))); n != edits {
			t.Errorf("editor %d's characters: %d, want %d", m, n, edits)
		}
	}
	if !strings.Contains(noteJSON(t, b, "n1"), fmt.Sprintf(`"n":%d`, 2*goroutines*edits)) {
		t.Errorf("counter: %s", noteJSON(t, b, "n1"))
	}
}

// Compaction drops doc changes from the log below its floor: the merged
// documents then live in the rows read model alone. A rebuild of that
// read model (Postgres) carries them over and gives back the very same
// rows — states, versions and JSON — and a client that bootstraps after
// it reads every document whole.
func TestDoc_RowsRebuildAfterCompactionKeepsDocs(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pg := newPG(t)
	e := startServerWith(t, server.Config{Log: pg.log})
	a, b := e.client(t, "a", true), e.client(t, "b", true)
	notes := func(c *client.Client) *client.Collection { return c.Collection("notes") }
	edit := func(c *client.Client, id string, pos int, text string) {
		t.Helper()
		if err := notes(c).EditDoc(ctx, id, "body", func(d *client.DocEdit) error { return d.Splice(textPath, pos, 0, text) }); err != nil {
			t.Fatal(err)
		}
	}
	// n1: doc edits and a title; n2: doc edits only; n3: a doc, then
	// deleted; n4: deleted, then revived with a new doc.
	edit(a, "n1", 0, "hello")
	edit(a, "n2", 0, "only a doc")
	edit(a, "n3", 0, "soon gone")
	edit(a, "n4", 0, "first life")
	if err := notes(a).Put(ctx, "n1", map[string]any{"title": "greeting"}); err != nil {
		t.Fatal(err)
	}
	syncCtx(t, a)
	syncCtx(t, b)
	edit(b, "n1", 5, " world")
	if err := notes(b).Delete(ctx, "n3"); err != nil {
		t.Fatal(err)
	}
	if err := notes(b).Delete(ctx, "n4"); err != nil {
		t.Fatal(err)
	}
	syncCtx(t, b)
	syncCtx(t, a)
	edit(a, "n4", 0, "second life")
	edit(a, "n2", 10, ", still")
	syncCtx(t, a)
	syncCtx(t, b)

	head, err := pg.log.Head(ctx, "dev")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pg.log.Compact(ctx, "dev", head+1); err != nil {
		t.Fatal(err)
	}
	if f, err := pg.log.CompactFloor(ctx, "dev"); err != nil || f <= 1 {
		t.Fatalf("compaction floor %d, %v: want the log compacted", f, err)
	}
	want, err := pg.log.RowsHash(ctx, "dev")
	if err != nil {
		t.Fatal(err)
	}
	before := dumpRows(t, pg.admin)
	if err := pglog.RebuildProjection(ctx, pg.admin, pglog.RowsProjection(), nil); err != nil {
		t.Fatal(err)
	}
	if after := dumpRows(t, pg.admin); after != before {
		t.Fatalf("the rebuilt read model differs:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if h, _ := pg.log.RowsHash(ctx, "dev"); h != want {
		t.Fatal("the rebuilt read model's hash differs")
	}
	// A new replica bootstraps from the rebuilt read model.
	c := e.client(t, "c", true)
	syncCtx(t, c)
	for id, text := range map[string]string{"n1": "hello world", "n2": "only a doc, still", "n4": "second life"} {
		if got := noteText(t, c, id); got != text {
			t.Errorf("%s after the rebuild: %q, want %q", id, got, text)
		}
	}
	if h, _ := c.Hash(ctx); h != want {
		t.Error("a client bootstrapped after the rebuild differs from the read model")
	}
}
