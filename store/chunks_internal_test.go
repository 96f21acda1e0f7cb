//go:build cgo && (linux || darwin) && (amd64 || arm64)

package store

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/unosync/uno/crdt"
)

var noteKey = crdt.RowKey{Collection: "notes", Row: "n1"}

// appendText appends text to the document in notes/n1.body, in one write.
func appendText(t *testing.T, s *SQLite, text string) {
	t.Helper()
	_, err := s.Write(t.Context(), func(b *crdt.Builder) error {
		r, err := b.Row(noteKey)
		if err != nil {
			return err
		}
		state := &crdt.DocState{}
		if r != nil {
			if f, ok := r.Field("body"); ok {
				state = &f.Doc
			}
		}
		d, err := crdt.OpenDocument(state, b.Tx().Site)
		if err != nil {
			return err
		}
		defer d.Close()
		cur, err := d.Text(crdt.Path{"text"})
		if err != nil {
			return err
		}
		if err := d.Splice(crdt.Path{"text"}, len([]rune(cur)), 0, text); err != nil {
			return err
		}
		ch, err := d.Commit(b.Tx().Time)
		if err != nil {
			return err
		}
		return b.Change(noteKey, "body", ch)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// chunkRows returns the rowids of the note's chunks in _uno_chunks.
func chunkRows(t *testing.T, db *sql.DB) []int64 {
	t.Helper()
	rows, err := db.QueryContext(t.Context(), `SELECT rowid FROM _uno_chunks WHERE coll = 'notes' AND id = 'n1' AND field = 'body' ORDER BY rowid`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		out = append(out, id)
	}
	return out
}

func noteText(t *testing.T, s *SQLite) string {
	t.Helper()
	r, err := s.Row(t.Context(), "notes", "n1")
	if err != nil {
		t.Fatal(err)
	}
	f, ok := r.Field("body")
	if !ok {
		t.Fatal("no body")
	}
	var text string
	if err := ReadDoc(&f.Doc, func(d *crdt.Document) (err error) { text, err = d.Text(crdt.Path{"text"}); return }); err != nil {
		t.Fatal(err)
	}
	return text
}

// A write to a document appends its change to _uno_chunks and rewrites
// only the row's small state; reads put the chunks back, from the cache or
// (reopened, or with the cache emptied) from the table in one snapshot.
func TestSQLite_DocChunksAppended(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "uno.db")
	s, err := OpenSQLite(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var want strings.Builder
	var before []int64
	for i := range 60 {
		word := fmt.Sprintf("word%d ", i)
		appendText(t, s, word)
		want.WriteString(word)
		after := chunkRows(t, s.DB())
		if len(after) != i+1 || !slices.Equal(after[:i], before) {
			t.Fatalf("write %d: chunk rows %v, were %v: want one appended", i, after, before)
		}
		before = after
	}
	var state []byte
	if err := s.DB().QueryRowContext(ctx, `SELECT _uno FROM notes WHERE id = 'n1'`).Scan(&state); err != nil {
		t.Fatal(err)
	}
	if len(state) > 512 {
		t.Errorf("the row's state is %d bytes with 60 changes: the chunks are in it", len(state))
	}
	if got := noteText(t, s); got != want.String() {
		t.Fatalf("text %q, want %q", got, want.String())
	}
	hash, err := s.Hash(ctx)
	if err != nil {
		t.Fatal(err)
	}

	// Not cached: Row and Query read the chunks from the table.
	s.chunks = newChunkCache(chunkCacheBytes, chunkCacheDocs)
	if got := noteText(t, s); got != want.String() {
		t.Fatalf("uncached: text %q, want %q", got, want.String())
	}
	s.chunks = newChunkCache(chunkCacheBytes, chunkCacheDocs)
	docs, err := s.Query(ctx, Query{Collection: "notes"})
	if err != nil || len(docs) != 1 {
		t.Fatalf("Query = %v, %v", docs, err)
	}
	if v := Resolve(nil, "notes", docs[0].Row)["body"]; !strings.Contains(string(v.JSON), "word59") {
		t.Fatalf("uncached query shows body %.60s", v.JSON)
	}
	s.Close()

	s, err = OpenSQLite(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := noteText(t, s); got != want.String() {
		t.Fatalf("reopened: text %q, want %q", got, want.String())
	}
	if h, err := s.Hash(ctx); err != nil || h != hash {
		t.Fatalf("reopened: hash %x, %v; want %x", h, err, hash)
	}
	// A write after reopening (cache empty) still appends.
	appendText(t, s, "end")
	if after := chunkRows(t, s.DB()); len(after) != 61 || !slices.Equal(after[:60], before) {
		t.Fatalf("after reopening: chunk rows %v, were %v", after, before)
	}

	// A compaction replaces the chunks: the table holds the saved document.
	// (Compaction counts a change's operations by the next one's start.)
	appendText(t, s, strings.Repeat("x", 40<<10))
	appendText(t, s, "!")
	if after := chunkRows(t, s.DB()); len(after) != 1 {
		t.Fatalf("after a compaction: %d chunk rows, want 1", len(after))
	}
	s.chunks = newChunkCache(chunkCacheBytes, chunkCacheDocs)
	if got := noteText(t, s); !strings.HasPrefix(got, want.String()+"end") || len(got) != want.Len()+4+40<<10 {
		t.Fatalf("after a compaction: text of %d characters", len(got))
	}
}

// Deleting a row drops its document, and its chunks; a row that never
// existed (a creation rolled back by a server's rejection) leaves none.
func TestSQLite_DocChunksDeletedRow(t *testing.T) {
	ctx := t.Context()
	s, err := OpenSQLite(ctx, filepath.Join(t.TempDir(), "uno.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	appendText(t, s, "hello")
	if _, err := s.Write(ctx, func(b *crdt.Builder) error { _, err := b.Delete(noteKey); return err }); err != nil {
		t.Fatal(err)
	}
	if n := len(chunkRows(t, s.DB())); n != 0 {
		t.Fatalf("deleted row: %d chunk rows, want 0", n)
	}
	appendText(t, s, "again")
	if n := len(chunkRows(t, s.DB())); n != 1 {
		t.Fatalf("row written again: %d chunk rows, want 1", n)
	}
	if got := noteText(t, s); got != "again" {
		t.Fatalf("row written again: text %q", got)
	}
	s.chunks = newChunkCache(chunkCacheBytes, chunkCacheDocs)
	w, err := s.begin(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	defer w.end()
	if _, err := w.get(noteKey); err != nil {
		t.Fatal(err)
	}
	if err := w.put(noteKey, &crdt.Row{}); err != nil {
		t.Fatal(err)
	}
	if err := w.commit(); err != nil {
		t.Fatal(err)
	}
	if n := len(chunkRows(t, s.DB())); n != 0 {
		t.Fatalf("a row that never existed: %d chunk rows left", n)
	}
}

// Going down to the schema before _uno_chunks puts every document's
// chunks back into its row's state, for an older uno; coming up again,
// such rows read as they are and move to the table when next written.
func TestMigrate_DocChunksInlined(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "uno.db")
	s, err := OpenSQLite(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	appendText(t, s, "one ")
	appendText(t, s, "two ")
	s.Close()

	db, err := openDB(path, &Options{Synchronous: "FULL"})
	if err != nil {
		t.Fatal(err)
	}
	if err := migrate(ctx, db, 5); err != nil {
		t.Fatal(err)
	}
	var state []byte
	if err := db.QueryRowContext(ctx, `SELECT _uno FROM notes WHERE id = 'n1'`).Scan(&state); err != nil {
		t.Fatal(err)
	}
	r, err := crdt.DecodeRow(state)
	if err != nil {
		t.Fatal(err)
	}
	if f, _ := r.Field("body"); len(f.Doc.Chunks) == 0 {
		t.Fatal("the document's chunks were not put back into its row")
	}
	db.Close()

	s, err = OpenSQLite(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := noteText(t, s); got != "one two " {
		t.Fatalf("after down and up: text %q", got)
	}
	appendText(t, s, "three")
	if n := len(chunkRows(t, s.DB())); n != 3 {
		t.Fatalf("written again: %d chunk rows, want 3", n)
	}
	s.chunks = newChunkCache(chunkCacheBytes, chunkCacheDocs)
	if got := noteText(t, s); got != "one two three" {
		t.Fatalf("written again: text %q", got)
	}
}
