//go:build cgo && (linux || darwin) && (amd64 || arm64)

package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/unosync/uno/client"
)

func text(tb testing.TB, c *client.Client, id string) string {
	tb.Helper()
	s, err := c.Collection("notes").Text(context.Background(), id, "body", client.Path{"text"})
	if err != nil {
		tb.Fatalf("Text: %v", err)
	}
	return s
}

func readDoc(tb testing.TB, c *client.Client, id string) string {
	tb.Helper()
	b, err := c.Collection("notes").ReadDoc(context.Background(), id, "body", nil)
	if err != nil {
		tb.Fatalf("ReadDoc: %v", err)
	}
	return string(b)
}

// Three replicas edit one note's text, a nested map and a counter offline,
// then exchange everything: they end with the same document and hash, and
// concurrent insertions at one position do not interleave.
func TestDoc_ConcurrentEditsMerge(t *testing.T) {
	ctx := context.Background()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			cs := []*client.Client{
				open(t, b, client.Config{Schema: notesSchema}),
				open(t, b, client.Config{Schema: notesSchema}),
				open(t, b, client.Config{Schema: notesSchema}),
			}
			a, r, c := cs[0], cs[1], cs[2]
			notes := func(c *client.Client) *client.Collection { return c.Collection("notes") }
			// The structure is made once: two replicas that each create a
			// map or counter at one key concurrently make two objects, and
			// Automerge keeps one of them.
			must(t, notes(a).EditDoc(ctx, "n1", "body", func(e *client.DocEdit) error {
				return errors.Join(e.Splice(client.Path{"text"}, 0, 0, "hello world"), e.Put(client.Path{"meta"}, map[string]any{}),
					e.Increment(client.Path{"likes"}, 0))
			}))
			exchange(t, cs...)
			if got := text(t, r, "n1"); got != "hello world" {
				t.Fatalf("r's text = %q", got)
			}

			must(t, notes(a).Splice(ctx, "n1", "body", client.Path{"text"}, 5, 0, " brave"))
			must(t, notes(r).Splice(ctx, "n1", "body", client.Path{"text"}, 5, 0, " new"))
			must(t, notes(c).Splice(ctx, "n1", "body", client.Path{"text"}, 0, 5, "HELLO"))
			must(t, notes(a).EditDoc(ctx, "n1", "body", func(e *client.DocEdit) error {
				return errors.Join(e.Put(client.Path{"meta", "author"}, "ann"), e.Increment(client.Path{"likes"}, 2))
			}))
			must(t, notes(r).EditDoc(ctx, "n1", "body", func(e *client.DocEdit) error {
				return errors.Join(e.Put(client.Path{"meta", "lang"}, "en"), e.Increment(client.Path{"likes"}, 3),
					e.Put(client.Path{"items"}, []any{"a", "b"}))
			}))
			exchange(t, cs...)

			want := readDoc(t, a, "n1")
			for i, c := range cs {
				if got := readDoc(t, c, "n1"); got != want {
					t.Errorf("client %d: doc %s, want %s", i, got, want)
				}
				if hash(t, c) != hash(t, a) {
					t.Errorf("client %d: state hash differs", i)
				}
			}
			got := text(t, a, "n1")
			if got != "HELLO brave new world" && got != "HELLO new brave world" {
				t.Errorf("merged text %q: want the two insertions whole, in either order", got)
			}
			var doc struct {
				Likes int64
				Meta  map[string]string
				Items []string
			}
			if err := json.Unmarshal([]byte(want), &doc); err != nil {
				t.Fatal(err)
			}
			if doc.Likes != 5 || doc.Meta["author"] != "ann" || doc.Meta["lang"] != "en" || len(doc.Items) != 2 {
				t.Errorf("merged doc %s: want likes 5, both meta keys and two items", want)
			}
			// The row shows the document as JSON, like any other field.
			d := get(t, a, "notes", "n1")
			if string(d.Fields["body"]) != want {
				t.Errorf("Get body = %s, want %s", d.Fields["body"], want)
			}
		})
	}
}

// A transaction mixes doc edits with register, counter and set writes: all
// commit, or, when the function fails, none does and the next edit does not
// see the abandoned one.
func TestDoc_TxAtomic(t *testing.T) {
	ctx := context.Background()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			c := open(t, b, client.Config{Schema: notesSchema})
			must(t, c.Tx(ctx, func(tx *client.Tx) error {
				e, err := tx.Doc("notes", "n1", "body")
				if err != nil {
					return err
				}
				return errors.Join(e.Splice(client.Path{"text"}, 0, 0, "one"),
					tx.Put("notes", "n1", map[string]any{"title": "T"}),
					tx.Increment("notes", "n1", "views", 1),
					tx.Add("notes", "n1", "tags", "x"))
			}))
			boom := errors.New("boom")
			err := c.Tx(ctx, func(tx *client.Tx) error {
				e, err := tx.Doc("notes", "n1", "body")
				if err != nil {
					return err
				}
				if err := e.Splice(client.Path{"text"}, 3, 0, " two"); err != nil {
					return err
				}
				if got, _ := e.Text(client.Path{"text"}); got != "one two" {
					t.Errorf("DocEdit.Text inside the tx = %q", got)
				}
				must(t, tx.Increment("notes", "n1", "views", 1))
				return boom
			})
			if !errors.Is(err, boom) {
				t.Fatalf("Tx = %v, want boom", err)
			}
			must(t, c.Collection("notes").Splice(ctx, "n1", "body", client.Path{"text"}, 3, 0, " three"))
			if got := text(t, c, "n1"); got != "one three" {
				t.Errorf("text = %q, want %q (the failed transaction's edit must be gone)", got, "one three")
			}
			wantFields(t, c, "notes", "n1", map[string]string{"title": `"T"`, "views": "1", "tags": `["x"]`, "body": `{"text":"one three"}`})
			if n := pending(t, c); n != 2 {
				t.Errorf("pending = %d, want 2", n)
			}
			// A doc field is edited as a document, never written whole.
			err = c.Collection("notes").Put(ctx, "n1", map[string]any{"body": "x"})
			if !errors.Is(err, client.ErrKindMismatch) {
				t.Errorf("Put of a doc field = %v, want ErrKindMismatch", err)
			}
		})
	}
}

// Edits from several goroutines at once never lose each other.
func TestDoc_ConcurrentWriters(t *testing.T) {
	ctx := context.Background()
	c := open(t, sqliteBackend, client.Config{Schema: notesSchema})
	notes := c.Collection("notes")
	const writers, each = 4, 25
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				errs <- notes.EditDoc(ctx, "n1", "body", func(e *client.DocEdit) error {
					return errors.Join(e.Splice(client.Path{"text"}, 0, 0, string(rune('a'+w))), e.Increment(client.Path{"n"}, 1),
						e.Put(client.Path{"by", fmt.Sprint(w)}, i))
				})
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		must(t, err)
	}
	got := text(t, c, "n1")
	for w := range writers {
		if n := strings.Count(got, string(rune('a'+w))); n != each {
			t.Errorf("writer %d's characters: %d, want %d", w, n, each)
		}
	}
	var doc struct{ N int }
	must(t, json.Unmarshal([]byte(readDoc(t, c, "n1")), &doc))
	if doc.N != writers*each {
		t.Errorf("counter = %d, want %d", doc.N, writers*each)
	}
}

// WatchDoc sends the document with the paths each change touched, for
// local edits and merged ones.
func TestDoc_Watch(t *testing.T) {
	ctx := context.Background()
	a := open(t, sqliteBackend, client.Config{Schema: notesSchema})
	r := open(t, sqliteBackend, client.Config{Schema: notesSchema})
	w, err := r.Collection("notes").WatchDoc(ctx, "n1", "body")
	must(t, err)
	defer w.Close()
	next := func() client.DocUpdate {
		t.Helper()
		select {
		case u, ok := <-w.C:
			if !ok {
				t.Fatalf("watch closed: %v", w.Err())
			}
			return u
		case <-time.After(10 * time.Second):
			t.Fatal("no update")
		}
		return client.DocUpdate{}
	}
	if u := next(); string(u.JSON) != "null" {
		t.Fatalf("first update %s, want null (no such row)", u.JSON)
	}
	must(t, a.Collection("notes").EditDoc(ctx, "n1", "body", func(e *client.DocEdit) error {
		return errors.Join(e.Splice(client.Path{"text"}, 0, 0, "hi"), e.Put(client.Path{"meta", "a"}, 1))
	}))
	exchange(t, a, r)
	u := next()
	if string(u.JSON) != `{"meta":{"a":1},"text":"hi"}` {
		t.Fatalf("update %s", u.JSON)
	}
	must(t, r.Collection("notes").EditDoc(ctx, "n1", "body", func(e *client.DocEdit) error {
		return e.Put(client.Path{"meta", "b"}, 2)
	}))
	u = next()
	if len(u.Paths) != 1 || u.Paths[0].String() != "/meta/b" {
		t.Errorf("paths %v, want [/meta/b]", u.Paths)
	}
}

func TestDiffPaths(t *testing.T) {
	tests := []struct{ a, b, want string }{
		{`{"a":1}`, `{"a":1}`, `[]`},
		{`{"a":1,"t":"x"}`, `{"a":2,"t":"xy"}`, `[/a /t]`},
		{`{"m":{"k":[1,2]}}`, `{"m":{"k":[1,3]}}`, `[/m/k/1]`},
		{`{"m":{"k":[1,2]}}`, `{"m":{"k":[1]}}`, `[/m/k]`},
		{`null`, `{"a":1}`, `[/]`},
	}
	for _, tt := range tests {
		got := fmt.Sprint(client.DiffPaths(json.RawMessage(tt.a), json.RawMessage(tt.b)))
		if got != tt.want && !(tt.want == "[]" && got == "[]") {
			t.Errorf("DiffPaths(%s, %s) = %s, want %s", tt.a, tt.b, got, tt.want)
		}
	}
}

// A document that grows past the compaction threshold is saved whole
// (crdt.DocState.Compact) on both replicas, at different points; they
// still agree, and the text survives.
func TestDoc_LargeDocumentCompacts(t *testing.T) {
	ctx := context.Background()
	a := open(t, sqliteBackend, client.Config{Schema: notesSchema})
	r := open(t, memoryBackend, client.Config{Schema: notesSchema})
	var want strings.Builder
	line := strings.Repeat("all work and no play ", 20) + "\n"
	for i := range 300 {
		must(t, a.Collection("notes").Splice(ctx, "n1", "body", client.Path{"text"}, want.Len(), 0, line))
		want.WriteString(line)
		if i%97 == 0 {
			exchange(t, a, r)
		}
	}
	exchange(t, a, r)
	for _, c := range []*client.Client{a, r} {
		if got := text(t, c, "n1"); got != want.String() {
			t.Fatalf("text of %d bytes, want %d", len(got), want.Len())
		}
	}
	if hash(t, a) != hash(t, r) {
		t.Error("hashes differ")
	}
	row := outbox(t, a)
	if len(row) != 300 {
		t.Errorf("outbox holds %d transactions, want 300", len(row))
	}
}

// A watch of a whole collection with a document field shows the
// document's value after local and merged edits, as Find does.
func TestDoc_WatchCollection(t *testing.T) {
	ctx := context.Background()
	a := open(t, sqliteBackend, client.Config{Schema: notesSchema})
	r := open(t, sqliteBackend, client.Config{Schema: notesSchema})
	w, err := r.Collection("notes").Watch(ctx, client.Query{})
	must(t, err)
	defer w.Close()
	recvUntil(t, w, []string{})
	must(t, a.Collection("notes").EditDoc(ctx, "n1", "body", func(e *client.DocEdit) error {
		return e.Splice(client.Path{"text"}, 0, 0, "hi")
	}))
	exchange(t, a, r)
	recvUntil(t, w, render(find(t, r, "notes", client.Query{})))
	must(t, r.Collection("notes").EditDoc(ctx, "n1", "body", func(e *client.DocEdit) error {
		return e.Splice(client.Path{"text"}, 2, 0, " there")
	}))
	want := render(find(t, r, "notes", client.Query{}))
	if len(want) != 1 || !strings.Contains(want[0], "hi there") {
		t.Fatalf("Find shows %v", want)
	}
	recvUntil(t, w, want)
}
