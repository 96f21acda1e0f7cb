package logtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/unosync/uno/crdt"
	"github.com/unosync/uno/server"
	usync "github.com/unosync/uno/sync"
)

// writer writes one tenant's transactions of one site with crdt.Builder,
// keeping replica (which writers of the same tenant share) equal to what
// the log holds.
type writer struct {
	t       testing.TB
	l       server.Log
	tenant  string
	site    crdt.SiteID
	seq     uint64
	replica *crdt.State
}

// tx builds the site's next transaction with fn and applies it to the
// replica; it does not append it.
func (w *writer) tx(fn func(b *crdt.Builder) error) crdt.Tx {
	w.t.Helper()
	w.seq++
	b := crdt.NewBuilder(w.site, w.seq, crdt.MakeTimestamp(int64(1_700_000_000_000+w.seq), 0), func(k crdt.RowKey) (*crdt.Row, error) {
		if r := w.replica.Row(k); r != nil {
			return r.Clone(), nil
		}
		return nil, nil
	})
	if err := fn(b); err != nil {
		w.t.Fatal(err)
	}
	tx := *b.Tx()
	if _, err := w.replica.Apply(&tx); err != nil {
		w.t.Fatal(err)
	}
	return tx
}

// write appends the transaction fn builds and returns its seq.
func (w *writer) write(fn func(b *crdt.Builder) error) uint64 {
	w.t.Helper()
	return mustAppend(w.t, w.l, w.tenant, []crdt.Tx{w.tx(fn)})[0]
}

// set returns a builder step that sets register fields of one row.
func set(coll, row string, kv ...string) func(b *crdt.Builder) error {
	return func(b *crdt.Builder) error {
		k := crdt.RowKey{Collection: coll, Row: row}
		for i := 0; i+1 < len(kv); i += 2 {
			if err := b.Set(k, kv[i], crdt.KindRegister, []byte(kv[i+1])); err != nil {
				return err
			}
		}
		return nil
	}
}

// rowFixture writes rows of two collections to t1 (one deleted, sizes
// varied, IDs whose byte order is not a locale's) and rows of t2, and
// returns t1's replica and its keys in (collection, row) byte order.
func rowFixture(t *testing.T, l server.Log) (*crdt.State, []crdt.RowKey) {
	t.Helper()
	replica := &crdt.State{}
	a := &writer{t: t, l: l, tenant: "t1", site: site(1), replica: replica}
	b := &writer{t: t, l: l, tenant: "t1", site: site(2), replica: replica}
	rows := []crdt.RowKey{
		{Collection: "b", Row: "x"}, {Collection: "a", Row: "é"}, {Collection: "a", Row: "a1"},
		{Collection: "a", Row: "B"}, {Collection: "a", Row: "a"}, {Collection: "a_b", Row: "_"},
		{Collection: "a", Row: "a0"}, {Collection: "b", Row: "Z"},
	}
	for i, k := range rows {
		w := a
		if i%2 == 1 {
			w = b
		}
		w.write(set(k.Collection, k.Row, "v", fmt.Sprintf("%q", strings.Repeat("x", 40*i))))
	}
	a.write(func(b *crdt.Builder) error { _, err := b.Delete(rows[2]); return err })
	b.write(func(b *crdt.Builder) error { return b.Increment(rows[0], "n", 3) })
	other := &writer{t: t, l: l, tenant: "t2", site: site(3), replica: &crdt.State{}}
	other.write(set("a", "only-t2", "v", `1`))
	other.write(set("a", "a0", "v", `2`))
	keys := replica.Keys()
	slices.SortFunc(keys, func(x, y crdt.RowKey) int {
		if c := strings.Compare(x.Collection, y.Collection); c != 0 {
			return c
		}
		return strings.Compare(x.Row, y.Row)
	})
	return replica, keys
}

// testSnapshot: chunks of the rows read model come in (collection, row)
// byte order, bounded by rows and by bytes (one row at least), with more
// false exactly at the last; they resume after any key; sizes and sites
// are the tenant's.
func testSnapshot(t *testing.T, l server.Log) {
	defer l.Close()
	ctx := context.Background()
	replica, keys := rowFixture(t, l)
	sn := l.(server.Snapshotter)
	var want []usync.SnapshotRow
	var total uint64
	for _, k := range keys {
		state := crdt.EncodeRow(replica.Row(k))
		want = append(want, usync.SnapshotRow{Collection: k.Collection, Row: k.Row, State: state})
		total += uint64(len(state))
	}
	show := func(rs []usync.SnapshotRow) string {
		var b strings.Builder
		for _, r := range rs {
			fmt.Fprintf(&b, "%s/%s(%d) ", r.Collection, r.Row, len(r.State))
		}
		return b.String()
	}
	rowBytes := func(rs []usync.SnapshotRow) (n int) {
		for _, r := range rs {
			n += len(r.State)
		}
		return n
	}
	two := len(want[0].State) + len(want[1].State)
	for _, c := range []struct{ limit, maxBytes int }{
		{1, 0}, {2, 0}, {3, 0}, {4, 0}, {len(want), 0}, {len(want) + 1, 0}, {1000, 0},
		{1000, 1}, {1000, two}, {1000, two - 1}, {1000, two + 1}, {3, 1 << 20},
	} {
		var got []usync.SnapshotRow
		var after crdt.RowKey
		for n := 0; ; n++ {
			rows, more, err := sn.SnapshotRows(ctx, "t1", after, c.limit, c.maxBytes)
			if err != nil {
				t.Fatalf("limit %d, %d bytes: %v", c.limit, c.maxBytes, err)
			}
			if len(rows) == 0 || len(rows) > c.limit || len(rows) > 1 && c.maxBytes > 0 && rowBytes(rows) > c.maxBytes {
				t.Fatalf("limit %d, %d bytes: chunk %d is %s(more %v)", c.limit, c.maxBytes, n, show(rows), more)
			}
			got = append(got, rows...)
			if more != (len(got) < len(want)) {
				t.Fatalf("limit %d, %d bytes: chunk %d ends at row %d of %d with more %v", c.limit, c.maxBytes, n, len(got), len(want), more)
			}
			if !more {
				break
			}
			last := rows[len(rows)-1]
			after = crdt.RowKey{Collection: last.Collection, Row: last.Row}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("limit %d, %d bytes:\n got %s\nwant %s", c.limit, c.maxBytes, show(got), show(want))
		}
		// A chunk holds as many rows as fit.
		if first, _, _ := sn.SnapshotRows(ctx, "t1", crdt.RowKey{}, c.limit, c.maxBytes); (c.maxBytes == 0 || c.maxBytes >= two) && c.limit >= 2 && len(first) < 2 {
			t.Errorf("limit %d, %d bytes: first chunk %s holds less than fits", c.limit, c.maxBytes, show(first))
		}
	}
	// Resuming after a key the log does not hold starts at the next.
	rows, _, err := sn.SnapshotRows(ctx, "t1", crdt.RowKey{Collection: "a", Row: "a0x"}, 1, 0)
	if err != nil || len(rows) != 1 || rows[0].Row != "a1" {
		t.Fatalf("after a/a0x: %s, %v", show(rows), err)
	}
	rows, more, err := sn.SnapshotRows(ctx, "t1", crdt.RowKey{Collection: "c"}, 10, 0)
	if err != nil || len(rows) != 0 || more {
		t.Fatalf("after the last key: %s more %v, %v", show(rows), more, err)
	}
	if rows, more, err := sn.SnapshotRows(ctx, "t3", crdt.RowKey{}, 10, 0); err != nil || len(rows) != 0 || more {
		t.Fatalf("a tenant without rows: %s more %v, %v", show(rows), more, err)
	}
	if n, b, err := sn.SnapshotSize(ctx, "t1"); err != nil || n != uint64(len(want)) || b != total {
		t.Fatalf("SnapshotSize = %d rows, %d bytes, %v; want %d, %d", n, b, err, len(want), total)
	}
	marks, err := sn.SnapshotSites(ctx, "t1")
	if err != nil || fmt.Sprint(marks) != fmt.Sprint([]usync.SiteMark{{Site: site(1), Seq: 5}, {Site: site(2), Seq: 5}}) {
		t.Fatalf("SnapshotSites = %v, %v", marks, err)
	}
}

// testRowStates: states come in the keys' order, nil for rows never
// written (or written only by another tenant), a state for deleted rows.
func testRowStates(t *testing.T, l server.Log) {
	defer l.Close()
	ctx := context.Background()
	replica, keys := rowFixture(t, l)
	ask := []crdt.RowKey{keys[3], {Collection: "a", Row: "only-t2"}, keys[0], {Collection: "zz", Row: "a"}, {Collection: "a", Row: "a1"}, keys[3]}
	got, err := l.(server.RowStater).RowStates(ctx, "t1", ask)
	if err != nil || len(got) != len(ask) {
		t.Fatalf("RowStates = %d states, %v; want %d", len(got), err, len(ask))
	}
	for i, k := range ask {
		var want []byte
		if r := replica.Row(k); r != nil {
			want = crdt.EncodeRow(r)
		}
		if got[i].Collection != k.Collection || got[i].Row != k.Row || !bytes.Equal(got[i].State, want) || (got[i].State == nil) != (want == nil) {
			t.Errorf("key %d %s/%s: got %s/%s with %d bytes (nil %v), want %d", i, k.Collection, k.Row, got[i].Collection, got[i].Row, len(got[i].State), got[i].State == nil, len(want))
		}
	}
	if got, err := l.(server.RowStater).RowStates(ctx, "t1", nil); err != nil || len(got) != 0 {
		t.Fatalf("no keys: %v, %v", got, err)
	}
}

// testEncodedTail: the encodings a log hands out are those of the entries
// asked for, of the tenant asked for. (Which entries a log holds is its
// own business: each log's tests check that it holds the newest.)
func testEncodedTail(t *testing.T, l server.Log) {
	defer l.Close()
	ctx := context.Background()
	enc := l.(server.EncodedTail)
	check := func(tenant string, entries []usync.Change) bool {
		t.Helper()
		got, ok := enc.Encoded(tenant, entries)
		if !ok {
			return false
		}
		if len(got) != len(entries) {
			t.Fatalf("%s: %d encodings for %d entries", tenant, len(got), len(entries))
		}
		for i := range entries {
			if !bytes.Equal(got[i], crdt.EncodeTx(&entries[i].Tx)) {
				t.Fatalf("%s: encoding %d (seq %d) is not the entry's", tenant, i, entries[i].Seq)
			}
		}
		return true
	}
	for i := uint64(0); i < 4; i++ {
		mustAppend(t, l, "t1", txs(site(1), 3*i+1, 3*i+3))
		mustAppend(t, l, "t2", txs(site(2), 3*i+1, 3*i+3)) // same seqs, other entries
		newest, err := l.Read(ctx, "t1", 3*i, 10, 0)
		if err != nil || len(newest) != 3 {
			t.Fatalf("Read = %v, %v", seqsOf(newest), err)
		}
		check("t1", newest)
		check("t2", newest)
	}
	all := readAll(t, l, "t1")
	for from := range all {
		for to := from + 1; to <= len(all); to++ {
			check("t1", all[from:to])
			check("t2", all[from:to])
		}
	}
	check("t1", []usync.Change{all[0], all[2]})
	check("t3", all[:1])
	if got, ok := enc.Encoded("t1", nil); ok && len(got) != 0 {
		t.Fatalf("no entries: %d encodings", len(got))
	}
}

// testReadBytes: Read's byte bound holds whole entries up to maxBytes of
// encodings, one at least; 0 means no byte bound.
func testReadBytes(t *testing.T, l server.Log) {
	defer l.Close()
	ctx := context.Background()
	var in []crdt.Tx
	for i := range 6 {
		tx := txs(site(1), uint64(i+1), uint64(i+1))[0]
		tx.Ops[1].Value = []byte(fmt.Sprintf("%q", strings.Repeat("v", 100*(6-i))))
		in = append(in, tx)
	}
	mustAppend(t, l, "t1", in)
	size := func(n int) (s int) {
		for i := range n {
			s += len(crdt.EncodeTx(&in[i]))
		}
		return s
	}
	for _, c := range []struct {
		limit, maxBytes, want int
	}{
		{100, 1, 1}, {100, size(1), 1}, {100, size(2) - 1, 1}, {100, size(2), 2}, {100, size(3) + 1, 3},
		{100, 0, 6}, {2, 0, 2}, {2, size(6), 2}, {100, size(6), 6}, {100, 1 << 30, 6},
	} {
		got, err := l.Read(ctx, "t1", 0, c.limit, c.maxBytes)
		if err != nil || len(got) != c.want {
			t.Errorf("Read(limit %d, %d bytes) = %v, %v; want %d entries", c.limit, c.maxBytes, seqsOf(got), err, c.want)
			continue
		}
		for i := range got {
			if got[i].Seq != uint64(i+1) || !bytes.Equal(crdt.EncodeTx(&got[i].Tx), crdt.EncodeTx(&in[i])) {
				t.Errorf("Read(limit %d, %d bytes): entry %d is seq %d or differs", c.limit, c.maxBytes, i, got[i].Seq)
			}
		}
	}
	if got, err := l.Read(ctx, "t1", 4, 100, 1); err != nil || len(got) != 1 || got[0].Seq != 5 {
		t.Errorf("Read(after 4, 1 byte) = %v, %v", seqsOf(got), err)
	}
}

// testRetainer: Retain deletes the entries appended before the time and
// nothing else; the heads and marks stay, so appends stay idempotent and
// numbered on; a reader behind the cut reads the first entry held.
func testRetainer(t *testing.T, l server.Log) {
	defer l.Close()
	ctx := context.Background()
	r := l.(server.Retainer)
	start := func(tenant string, want uint64) {
		t.Helper()
		if got, err := r.LogStart(ctx, tenant); err != nil || got != want {
			t.Fatalf("LogStart(%s) = %d, %v; want %d", tenant, got, err, want)
		}
	}
	start("t1", 1)
	if n, err := r.Retain(ctx, "t1", time.Now().Add(time.Hour)); err != nil || n != 0 {
		t.Fatalf("Retain of an empty log = %d, %v", n, err)
	}
	mustAppend(t, l, "t1", txs(site(1), 1, 3))
	mustAppend(t, l, "t1", txs(site(2), 1, 2))
	mustAppend(t, l, "t2", txs(site(1), 1, 2))
	start("t1", 1)
	// Read the entries now, so a log that keeps them in memory does.
	if n := len(readAll(t, l, "t1")); n != 5 {
		t.Fatalf("%d entries, want 5", n)
	}
	var hash [32]byte
	rh, hasRows := l.(server.RowHasher)
	if hasRows {
		hash, _ = rh.RowsHash(ctx, "t1")
	}
	if n, err := r.Retain(ctx, "t1", time.Now().Add(-time.Hour)); err != nil || n != 0 {
		t.Fatalf("Retain(an hour ago) = %d, %v; want 0", n, err)
	}
	start("t1", 1)
	if n, err := r.Retain(ctx, "t1", time.Now().Add(time.Hour)); err != nil || n != 5 {
		t.Fatalf("Retain(in an hour) = %d, %v; want 5", n, err)
	}
	start("t1", 6)
	start("t2", 1)
	start("t3", 1)
	if h, err := l.Head(ctx, "t1"); err != nil || h != 5 {
		t.Fatalf("Head after Retain = %d, %v; want 5", h, err)
	}
	if chs, err := l.Read(ctx, "t1", 0, 10, 0); err != nil || len(chs) != 0 {
		t.Fatalf("Read after retaining all = %v, %v; want nothing", seqsOf(chs), err)
	}
	if hasRows {
		if got, _ := rh.RowsHash(ctx, "t1"); got != hash {
			t.Fatal("Retain changed the rows read model")
		}
	}
	// The marks stay: the same transactions again are skipped.
	if seqs := mustAppend(t, l, "t1", txs(site(1), 1, 3)); fmt.Sprint(seqs) != "[0 0 0]" {
		t.Fatalf("re-append after Retain gave %v", seqs)
	}
	if hw, err := l.HighWater(ctx, "t1", site(2)); err != nil || hw != 2 {
		t.Fatalf("HighWater after Retain = %d, %v", hw, err)
	}
	if seqs := mustAppend(t, l, "t1", txs(site(1), 4, 5)); fmt.Sprint(seqs) != "[6 7]" {
		t.Fatalf("append after Retain gave %v, want [6 7]", seqs)
	}
	start("t1", 6)
	// A reader behind the cut gets the first entry held: it sees the gap.
	for _, after := range []uint64{0, 2, 5} {
		chs, err := l.Read(ctx, "t1", after, 10, 0)
		if err != nil || len(chs) != 2 || chs[0].Seq != 6 {
			t.Fatalf("Read(after %d) = %v, %v; want [6 7]", after, seqsOf(chs), err)
		}
	}
	if n := len(readAll(t, l, "t2")); n != 2 {
		t.Fatalf("t2 holds %d entries after t1's retention, want 2", n)
	}
	if n, err := r.Retain(ctx, "t3", time.Now().Add(time.Hour)); err != nil || n != 0 {
		t.Fatalf("Retain of an unknown tenant = %d, %v", n, err)
	}
}

// testRowTooLarge: a transaction that would make a row's merged state
// larger than server.MaxRowBytes fails the append with a
// *server.TxRefusedError (CodeRowTooLarge) wrapping a
// *server.RowTooLargeError naming it, and the append adds nothing: head,
// marks, entries and rows are as before; the others then append alone.
func testRowTooLarge(t *testing.T, l server.Log) {
	defer l.Close()
	ctx := context.Background()
	replica := &crdt.State{}
	w := &writer{t: t, l: l, tenant: "t1", site: site(1), replica: replica}
	big := func(c byte) string { return `"` + strings.Repeat(string(c), server.MaxRowBytes/3) + `"` }
	first := w.tx(set("docs", "a", "x", big('x'), "y", big('y'))) // two thirds of the limit
	mustAppend(t, l, "t1", []crdt.Tx{first})
	before := func() (uint64, [32]byte) {
		h, err := l.Head(ctx, "t1")
		if err != nil {
			t.Fatal(err)
		}
		var hash [32]byte
		if rh, ok := l.(server.RowHasher); ok {
			hash, _ = rh.RowsHash(ctx, "t1")
		}
		return h, hash
	}
	head, hash := before()
	// The next two are built on a copy of the replica: the log will
	// refuse the second.
	scratch := &crdt.State{}
	if _, err := scratch.Apply(&first); err != nil {
		t.Fatal(err)
	}
	w2 := &writer{t: t, l: l, tenant: "t1", site: w.site, seq: w.seq, replica: scratch}
	ok := w2.tx(set("docs", "b", "v", `1`))
	tooLarge := w2.tx(set("docs", "a", "z", big('z'), "w", `1`))
	_, err := l.Append(ctx, "t1", []crdt.Tx{ok, tooLarge})
	var refused *server.TxRefusedError
	if !errors.As(err, &refused) || refused.Code != usync.CodeRowTooLarge || refused.Tx == nil || refused.Tx.Seq != tooLarge.Seq {
		t.Fatalf("Append of a too large row: %v, want a *server.TxRefusedError naming tx %d with CodeRowTooLarge", err, tooLarge.Seq)
	}
	var e *server.RowTooLargeError
	if !errors.As(err, &e) {
		t.Fatalf("Append of a too large row: %v, want a *server.RowTooLargeError", err)
	}
	if e.Tx == nil || e.Tx.Site != tooLarge.Site || e.Tx.Seq != tooLarge.Seq || e.Key != (crdt.RowKey{Collection: "docs", Row: "a"}) || e.Bytes <= server.MaxRowBytes {
		t.Fatalf("error names tx %v, row %v, %d bytes; want %s/%d, docs/a", e.Tx, e.Key, e.Bytes, tooLarge.Site, tooLarge.Seq)
	}
	if !errors.Is(err, crdt.ErrRowTooLarge) {
		t.Errorf("%v does not match crdt.ErrRowTooLarge", err)
	}
	if h, got := before(); h != head || got != hash {
		t.Fatalf("a refused append changed the head (%d, was %d) or the rows", h, head)
	}
	if hw, _ := l.HighWater(ctx, "t1", site(1)); hw != 1 {
		t.Fatalf("a refused append moved the mark to %d", hw)
	}
	if states, err := l.(server.RowStater).RowStates(ctx, "t1", []crdt.RowKey{{Collection: "docs", Row: "b"}}); err != nil || states[0].State != nil {
		t.Fatalf("a refused append wrote a row: %v", err)
	}
	// The other transaction goes in alone (the server refuses the large
	// one and appends the others again).
	if _, err := replica.Apply(&ok); err != nil {
		t.Fatal(err)
	}
	if seqs := mustAppend(t, l, "t1", []crdt.Tx{ok}); seqs[0] != head+1 {
		t.Fatalf("append after a refusal gave %v, want [%d]", seqs, head+1)
	}
	if n := len(readAll(t, l, "t1")); n != int(head)+1 {
		t.Fatalf("%d entries, want %d", n, head+1)
	}
	if rh, ok := l.(server.RowHasher); ok {
		if got, _ := rh.RowsHash(ctx, "t1"); got != replica.Hash() {
			t.Fatal("rows read model differs from the replica after a refusal")
		}
	}
}
