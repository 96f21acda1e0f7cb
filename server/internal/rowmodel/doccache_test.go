//go:build cgo && (linux || darwin) && (amd64 || arm64)

package rowmodel

import (
	"testing"

	"github.com/unosync/uno/crdt"
)

// docRow is a row whose doc field body holds state.
func docRow(state crdt.DocState) *crdt.Row {
	return &crdt.Row{CL: 1, Fields: []crdt.Field{{Name: "body", Kind: crdt.KindDoc, CL: 1, Doc: state}}}
}

// The cache renders what Doc renders, whatever happened to the state
// between two renders: changes appended, a compaction, a state that lost
// changes the cached document has (a rolled-back append), another row.
func TestDocCache_RendersAsDoc(t *testing.T) {
	site := crdt.SiteID{1}
	d, err := crdt.OpenDocument(&crdt.DocState{}, site)
	if err != nil {
		t.Fatal(err)
	}
	var row crdt.Row
	key := crdt.RowKey{Collection: "notes", Row: "n"}
	change := func(seq uint64, text string) crdt.Tx {
		t.Helper()
		if err := d.Splice(crdt.Path{"text"}, 0, 0, text); err != nil {
			t.Fatal(err)
		}
		ch, err := d.Commit(crdt.MakeTimestamp(1_700_000_000_000+int64(seq), 0))
		if err != nil {
			t.Fatal(err)
		}
		return crdt.Tx{Site: site, Seq: seq, Time: crdt.MakeTimestamp(1_700_000_000_000+int64(seq), 0), Ops: []crdt.Op{
			{Type: crdt.OpChange, Kind: crdt.KindDoc, Collection: "notes", Row: "n", Field: "body", CL: 1, Value: ch}}}
	}
	apply := func(tx crdt.Tx) {
		t.Helper()
		if _, err := row.Apply(&tx.Ops[0], tx.Dot()); err != nil {
			t.Fatal(err)
		}
	}
	row.CL = 1
	c := NewDocCache(0)
	check := func(what string, r *crdt.Row) {
		t.Helper()
		got, want := c.Doc("t1", key, r), Doc(r)
		if string(got) != string(want) {
			t.Fatalf("%s: the cache renders %s, Doc %s", what, got, want)
		}
	}
	apply(change(1, "a"))
	check("first render", &row)
	apply(change(2, "b"))
	apply(change(3, "c"))
	check("changes appended", &row)
	old := row.Fields[0].Doc
	old.Chunks = old.Chunks[:len(old.Chunks):len(old.Chunks)]
	apply(change(4, "d"))
	check("one more", &row)
	check("a state without the last change", docRow(old))
	if !row.Fields[0].Doc.Compact() {
		t.Fatal("the state did not compact")
	}
	check("compacted", &row)
	apply(change(5, "e"))
	check("a change after the compaction", &row)
	if got := string(c.Doc("t1", key, &row)); got != `{"body":{"text":"edcba"}}` {
		t.Fatalf("rendered %s", got)
	}
	check("the older state again", docRow(old))
	// The bound: a cache too small for the document holds nothing and
	// still renders.
	small := NewDocCache(1)
	if got, want := small.Doc("t1", key, &row), Doc(&row); string(got) != string(want) || small.lru.Len() != 0 {
		t.Fatalf("a cache of 1 byte rendered %s (want %s) and holds %d", got, want, small.lru.Len())
	}
}
