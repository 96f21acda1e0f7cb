package logtest

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"

	"github.com/unosync/uno/crdt"
	"github.com/unosync/uno/crdt/crdttest"
	"github.com/unosync/uno/server"
	usync "github.com/unosync/uno/sync"
)

// docChange is a transaction of site, numbered seq, carrying doc changes
// to field of docs/row.
func docChange(site crdt.SiteID, seq uint64, row, field string, changes []byte) crdt.Tx {
	return crdt.Tx{Site: site, Seq: seq, Time: crdt.MakeTimestamp(int64(1_700_000_000_000+seq), 0), Ops: []crdt.Op{
		{Type: crdt.OpRevive, Collection: "docs", Row: row, CL: 1},
		{Type: crdt.OpChange, Kind: crdt.KindDoc, Collection: "docs", Row: row, Field: field, CL: 1, Value: changes},
	}}
}

// testDocGap: a doc change that skips one of its site's changes fails the
// append with a *server.TxRefusedError (CodeMalformedTx) naming its
// transaction, appending nothing; the change in between, then the one
// that skipped it, append.
func testDocGap(t *testing.T, l server.Log) {
	defer l.Close()
	ctx := context.Background()
	s := site(1)
	ed := crdttest.NewEditor(t, s)
	ch1 := ed.Splice(0, "a", "text")
	ch2 := ed.Splice(1, "b", "text")
	ch3 := ed.Splice(2, "c", "text")
	mustAppend(t, l, "t1", []crdt.Tx{docChange(s, 1, "d", "body", ch1)})
	other := txs(site(2), 1, 1)
	skip := docChange(s, 2, "d", "body", ch3)
	_, err := l.Append(ctx, "t1", []crdt.Tx{skip})
	var refused *server.TxRefusedError
	if !errors.As(err, &refused) {
		t.Fatalf("Append of a doc change that skips one: %v, want a *server.TxRefusedError", err)
	}
	if refused.Code != usync.CodeMalformedTx || refused.Tx == nil || refused.Tx.Site != s || refused.Tx.Seq != 2 {
		t.Fatalf("refusal names tx %v with %v; want %s/2 with %v", refused.Tx, refused.Code, s, usync.CodeMalformedTx)
	}
	if !errors.Is(err, crdt.ErrInvalidValue) {
		t.Errorf("%v does not match crdt.ErrInvalidValue", err)
	}
	if h, _ := l.Head(ctx, "t1"); h != 1 {
		t.Fatalf("a refused append moved the head to %d", h)
	}
	if hw, _ := l.HighWater(ctx, "t1", s); hw != 1 {
		t.Fatalf("a refused append moved the mark to %d", hw)
	}
	// Another site's transaction in the same call is not refused with it.
	_, err = l.Append(ctx, "t1", append(other, skip))
	if !errors.As(err, &refused) || refused.Tx.Site != s {
		t.Fatalf("Append with another site's tx: %v, want the doc change refused", err)
	}
	mustAppend(t, l, "t1", other)
	// In order, both append; a change held already is no gap.
	mustAppend(t, l, "t1", []crdt.Tx{docChange(s, 2, "d", "body", append(append([]byte(nil), ch1...), ch2...))})
	mustAppend(t, l, "t1", []crdt.Tx{docChange(s, 3, "d", "body", ch3)})
	if h, _ := l.Head(ctx, "t1"); h != 4 {
		t.Fatalf("head %d after the changes in order, want 4", h)
	}
	// A new row's doc starts at the site's first change: a second
	// document of the same site must start at its change 1 too.
	ed2 := crdttest.NewEditor(t, s)
	ed2.Splice(0, "x", "text")
	late := ed2.Splice(1, "y", "text")
	if _, err := l.Append(ctx, "t1", []crdt.Tx{docChange(s, 4, "e", "body", late)}); !errors.As(err, &refused) {
		t.Fatalf("a new doc starting at the site's change 2: %v, want a *server.TxRefusedError", err)
	}
}

// testDocQuery: the query API returns a doc field as its JSON
// materialisation (text as a string, maps as objects), not its bytes.
func testDocQuery(t *testing.T, l server.Log) {
	defer l.Close()
	ctx := context.Background()
	s := site(1)
	ed := crdttest.NewEditor(t, s)
	ch := ed.Change(func(d *crdt.Document) error {
		if err := d.Splice(crdt.Path{"text"}, 0, 0, "hello doc"); err != nil {
			return err
		}
		if err := d.Put(crdt.Path{"meta", "tags"}, []byte(`["a","b"]`)); err != nil {
			return err
		}
		return d.Put(crdt.Path{"meta", "n"}, []byte(`2`))
	})
	mustAppend(t, l, "t1", []crdt.Tx{docChange(s, 1, "d", "body", ch)})
	rows, err := l.(server.RowQuerier).QueryRows(ctx, "t1", server.RowQuery{Collection: "docs", Limit: 10})
	if err != nil || len(rows) != 1 {
		t.Fatalf("QueryRows = %d rows, %v; want 1", len(rows), err)
	}
	var got struct {
		Body struct {
			Text string `json:"text"`
			Meta struct {
				Tags []string `json:"tags"`
				N    int      `json:"n"`
			} `json:"meta"`
		} `json:"body"`
	}
	if err := json.Unmarshal(rows[0].Doc, &got); err != nil {
		t.Fatalf("row %s: %v", rows[0].Doc, err)
	}
	if got.Body.Text != "hello doc" || got.Body.Meta.N != 2 || len(got.Body.Meta.Tags) != 2 {
		t.Fatalf("doc field as served: %s; want body {text: hello doc, meta: {tags: [a b], n: 2}}", rows[0].Doc)
	}
	// A later change shows in the next query.
	mustAppend(t, l, "t1", []crdt.Tx{docChange(s, 2, "d", "body", ed.Splice(9, "!", "text"))})
	rows, err = l.(server.RowQuerier).QueryRows(ctx, "t1", server.RowQuery{Collection: "docs", Limit: 10})
	if err != nil || len(rows) != 1 || json.Unmarshal(rows[0].Doc, &got) != nil || got.Body.Text != "hello doc!" {
		t.Fatalf("after a second change: %v %v", rows, err)
	}
}

// BenchmarkAppendDocChange measures what a writer typing into a large
// document costs the log: each op appends a one-character change to a
// doc field of docBytes of text (the rows read model re-reads the row,
// merges the change, and renders the document as JSON).
func BenchmarkAppendDocChange(b *testing.B, l server.Log, docBytes int) {
	defer l.Close()
	s := site(1)
	ed := crdttest.NewEditor(b, s)
	text := make([]byte, docBytes)
	for i := range text {
		text[i] = 'a' + byte(i%26)
	}
	mustAppend(b, l, "t1", []crdt.Tx{docChange(s, 1, "d", "body", ed.Splice(0, string(text), "text"))})
	seq := uint64(1)
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		seq++
		tx := docChange(s, seq, "d", "body", ed.Splice(int(seq), "x", "text"))
		b.StartTimer()
		mustAppend(b, l, "t1", []crdt.Tx{tx})
	}
}

// testCompactor: Compact drops the doc changes of the entries below its
// bound (capped at the head + 1), moves the floor past the last one it
// rewrote and changes
// nothing else: the head, the marks, the rows read model and the
// numbering; Read serves nothing below the floor; it is idempotent and
// per tenant.
func testCompactor(t *testing.T, l server.Log) {
	defer l.Close()
	ctx := context.Background()
	c := l.(server.Compactor)
	floor := func(tenant string) uint64 {
		t.Helper()
		f, err := c.CompactFloor(ctx, tenant)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	if f := floor("t1"); f != 1 {
		t.Fatalf("floor of an empty log = %d, want 1", f)
	}
	if res, err := c.Compact(ctx, "t1", 10); err != nil || res.Floor != 1 || res.Rewritten != 0 {
		t.Fatalf("Compact of an empty log = %+v, %v", res, err)
	}
	s := site(1)
	ed := crdttest.NewEditor(t, s)
	var chs [][]byte
	for i := range 6 {
		chs = append(chs, ed.Splice(i*20, "twenty characters.. ", "text"))
	}
	for i, ch := range chs { // entries 1..6, each with a doc change; 2 and 4 set a title too
		tx := docChange(s, uint64(i+1), "d", "body", ch)
		if i%2 == 1 {
			tx.Ops = append(tx.Ops, crdt.Op{Type: crdt.OpSet, Kind: crdt.KindRegister, Collection: "docs", Row: "d", Field: "title", CL: 1, Value: []byte(`"v"`)})
		}
		mustAppend(t, l, "t1", []crdt.Tx{tx})
	}
	mustAppend(t, l, "t1", txs(site(2), 1, 2))                              // entries 7, 8: no doc changes
	mustAppend(t, l, "t2", []crdt.Tx{docChange(s, 1, "d", "body", chs[0])}) // another tenant
	hash := func(tenant string) [32]byte { h, _ := l.(server.RowHasher).RowsHash(ctx, tenant); return h }
	before := hash("t1")

	res, err := c.Compact(ctx, "t1", 5)
	if err != nil || res.Floor != 5 || res.Rewritten != 4 || res.Saved <= 0 {
		t.Fatalf("Compact(5) = %+v, %v; want floor 5, 4 entries rewritten, bytes saved", res, err)
	}
	if f := floor("t1"); f != 5 {
		t.Fatalf("floor after Compact(5) = %d", f)
	}
	if hash("t1") != before {
		t.Fatal("Compact changed the rows read model")
	}
	if h, _ := l.Head(ctx, "t1"); h != 8 {
		t.Fatalf("head after Compact = %d, want 8", h)
	}
	// Nothing below the floor is served: a reader behind it sees a gap.
	for _, after := range []uint64{0, 3} {
		got, err := l.Read(ctx, "t1", after, 100, 0)
		if err != nil || len(got) != 4 || got[0].Seq != 5 || len(got[0].Tx.Ops) != 2 {
			t.Fatalf("Read(after %d) = %v, %v; want entries 5..8 as appended", after, seqsOf(got), err)
		}
	}
	if res, err := c.Compact(ctx, "t1", 5); err != nil || res.Rewritten != 0 || res.Floor != 5 {
		t.Fatalf("Compact(5) again = %+v, %v; want nothing rewritten", res, err)
	}
	// Appends stay idempotent and numbered on.
	if seqs := mustAppend(t, l, "t1", []crdt.Tx{docChange(s, 2, "d", "body", chs[1])}); seqs[0] != 0 {
		t.Fatalf("re-append of a compacted entry gave %v", seqs)
	}
	if seqs := mustAppend(t, l, "t1", txs(site(2), 3, 3)); seqs[0] != 9 {
		t.Fatalf("append after Compact gave %v, want [9]", seqs)
	}
	// The bound is capped at the head + 1.
	before = hash("t1")
	res, err = c.Compact(ctx, "t1", 1000)
	if err != nil || res.Floor != 7 || res.Rewritten != 2 {
		t.Fatalf("Compact(1000) = %+v, %v; want entries 5 and 6 rewritten, the floor after them: 7", res, err)
	}
	// The entries left as they were stay readable.
	if got, err := l.Read(ctx, "t1", 0, 100, 0); err != nil || !slices.Equal(seqsOf(got), []uint64{7, 8, 9}) {
		t.Fatalf("Read after compacting everything = %v, %v; want 7, 8, 9", seqsOf(got), err)
	}
	if res, err := c.Compact(ctx, "t1", 1000); err != nil || res.Floor != 7 || res.Rewritten != 0 {
		t.Fatalf("Compact(1000) again = %+v, %v; want nothing rewritten", res, err)
	}
	if hash("t1") != before {
		t.Fatal("Compact changed the rows read model")
	}
	if f := floor("t2"); f != 1 {
		t.Fatalf("t1's compaction moved t2's floor to %d", f)
	}
	if got := readAll(t, l, "t2"); len(got) != 1 || len(got[0].Tx.Ops) != 2 {
		t.Fatal("t1's compaction changed t2's log")
	}
}
