package logtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/unosync/uno/crdt"
	"github.com/unosync/uno/server"
	usync "github.com/unosync/uno/sync"
)

// Run runs the suite. open returns a fresh, empty log; the suite closes it.
func Run(t *testing.T, open func(t *testing.T) server.Log) {
	t.Run("AppendAssignsGapFreeSeqs", func(t *testing.T) { testAppend(t, open(t)) })
	t.Run("AppendIsIdempotent", func(t *testing.T) { testIdempotent(t, open(t)) })
	t.Run("AppendNumbersBeforeCommit", func(t *testing.T) { testNumbered(t, open(t)) })
	t.Run("AppendRejectsGaps", func(t *testing.T) { testGap(t, open(t)) })
	t.Run("ReadFromCursor", func(t *testing.T) { testRead(t, open(t)) })
	t.Run("TenantsAreIsolated", func(t *testing.T) { testTenants(t, open(t)) })
	t.Run("WaitWakesOnAppend", func(t *testing.T) { testWait(t, open(t)) })
	t.Run("ConcurrentAppendersAndTailingReader", func(t *testing.T) { testConcurrent(t, open(t)) })
	t.Run("InvalidInput", func(t *testing.T) { testInvalid(t, open(t)) })
	t.Run("Closed", func(t *testing.T) { testClosed(t, open(t)) })
	t.Run("ReadBoundedByBytes", func(t *testing.T) { testReadBytes(t, open(t)) })
	// Each capability a log has is checked.
	probe := open(t)
	if _, ok := probe.(server.RowHasher); ok {
		// Logs with a rows read model must keep it equal to the merged state.
		t.Run("RowsReadModelIsTheMergedState", func(t *testing.T) { testRowsReadModel(t, open(t)) })
		t.Run("ConcurrentAppendsToSharedRows", func(t *testing.T) { testSharedRows(t, open(t)) })
	}
	if _, ok := probe.(server.RowStater); ok {
		t.Run("RowStates", func(t *testing.T) { testRowStates(t, open(t)) })
		t.Run("AppendRefusesTooLargeRows", func(t *testing.T) { testRowTooLarge(t, open(t)) })
		if crdt.DocEditing { // the cases make Automerge changes
			t.Run("AppendRefusesDocGaps", func(t *testing.T) { testDocGap(t, open(t)) })
		}
	}
	if _, ok := probe.(server.Snapshotter); ok {
		t.Run("SnapshotChunks", func(t *testing.T) { testSnapshot(t, open(t)) })
	}
	if _, ok := probe.(server.RowQuerier); ok {
		t.Run("QueryRows", func(t *testing.T) { testQueryRows(t, open(t)) })
		t.Run("QueryRowsOrderAndPages", func(t *testing.T) { testQueryOrder(t, open(t)) })
		if crdt.DocEditing {
			t.Run("QueryRowsDocFieldsAsJSON", func(t *testing.T) { testDocQuery(t, open(t)) })
		}
	}
	if _, ok := probe.(server.EncodedTail); ok {
		t.Run("EncodedTail", func(t *testing.T) { testEncodedTail(t, open(t)) })
	}
	if _, ok := probe.(server.Watcher); ok {
		t.Run("WatchWakesOnAppend", func(t *testing.T) { testWatch(t, open(t)) })
	}
	if _, ok := probe.(server.SiteRunner); ok {
		t.Run("SiteRuns", func(t *testing.T) { testSiteRunner(t, open(t)) })
	}
	if _, ok := probe.(server.Retainer); ok {
		t.Run("Retain", func(t *testing.T) { testRetainer(t, open(t)) })
	}
	if _, ok := probe.(server.Compactor); ok && crdt.DocEditing {
		t.Run("Compact", func(t *testing.T) { testCompactor(t, open(t)) })
	}
	probe.Close()
}

// testRowsReadModel: two sites write the same row concurrently; the read
// model's hash equals that of a replica that applied every entry, and
// another tenant's differs.
func testRowsReadModel(t *testing.T, l server.Log) {
	defer l.Close()
	ctx := context.Background()
	var replica crdt.State
	for i, s := range []crdt.SiteID{{1}, {2}} {
		var seq uint64
		for n := range 5 {
			seq++
			b := crdt.NewBuilder(s, seq, crdt.MakeTimestamp(int64(1_700_000_000_000+10*n+i), 0), func(k crdt.RowKey) (*crdt.Row, error) { return replica.Row(k), nil })
			k := crdt.RowKey{Collection: "todos", Row: fmt.Sprint("r", n%2)}
			if err := b.Set(k, "title", crdt.KindRegister, []byte(`"v"`)); err != nil {
				t.Fatal(err)
			}
			if err := b.Increment(k, "n", 1); err != nil {
				t.Fatal(err)
			}
			tx := b.Tx()
			if _, err := replica.Apply(tx); err != nil {
				t.Fatal(err)
			}
			mustAppend(t, l, "t1", []crdt.Tx{*tx})
		}
	}
	rh := l.(server.RowHasher)
	got, err := rh.RowsHash(ctx, "t1")
	if err != nil {
		t.Fatal(err)
	}
	if got != replica.Hash() {
		t.Fatal("rows read model hash differs from the replica's")
	}
	if other, _ := rh.RowsHash(ctx, "t2"); other == got {
		t.Fatal("another tenant's read model has the same hash")
	}
}

// testSharedRows: sites write the same few rows concurrently, and each
// site's batches are pushed twice at once (a client that reconnects while
// its first push is in flight). The log holds each transaction once, in
// site order; every site's mark is its last transaction; the read model
// equals a replica that applied every transaction.
func testSharedRows(t *testing.T, l server.Log) {
	defer l.Close()
	const sites, perSite, batch = 4, 24, 4
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var replica crdt.State
	work := make([][]crdt.Tx, sites)
	for i := range work {
		var local crdt.State // the site's own replica
		s := site(byte(i + 1))
		for seq := uint64(1); seq <= perSite; seq++ {
			b := crdt.NewBuilder(s, seq, crdt.MakeTimestamp(int64(1_700_000_000_000+seq), uint16(i)), func(k crdt.RowKey) (*crdt.Row, error) { return local.Row(k), nil })
			k := crdt.RowKey{Collection: "shared", Row: fmt.Sprint("r", seq%3)}
			if err := b.Set(k, "by", crdt.KindRegister, []byte(fmt.Sprint(i))); err != nil {
				t.Fatal(err)
			}
			if err := b.Increment(crdt.RowKey{Collection: "shared", Row: "total"}, "n", 1); err != nil {
				t.Fatal(err)
			}
			tx := b.Tx()
			for _, st := range []*crdt.State{&local, &replica} {
				if _, err := st.Apply(tx); err != nil {
					t.Fatal(err)
				}
			}
			work[i] = append(work[i], *tx)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, 2*sites)
	for i := range 2 * sites {
		wg.Add(1)
		go func() {
			defer wg.Done()
			txs := work[i%sites]
			for from := 0; from < len(txs); from += batch {
				if _, err := l.Append(ctx, "t1", txs[from:from+batch]); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	all := readAll(t, l, "t1")
	if len(all) != sites*perSite {
		t.Fatalf("log holds %d entries, want %d", len(all), sites*perSite)
	}
	last := map[crdt.SiteID]uint64{}
	for i, ch := range all {
		if ch.Seq != uint64(i+1) || ch.Tx.Seq != last[ch.Tx.Site]+1 {
			t.Fatalf("entry %d: seq %d, %s/%d after %d", i, ch.Seq, ch.Tx.Site, ch.Tx.Seq, last[ch.Tx.Site])
		}
		last[ch.Tx.Site] = ch.Tx.Seq
	}
	for i := range sites {
		if hw, err := l.HighWater(ctx, "t1", site(byte(i+1))); err != nil || hw != perSite {
			t.Fatalf("site %d high-water %d, %v; want %d", i+1, hw, err, perSite)
		}
	}
	got, err := l.(server.RowHasher).RowsHash(ctx, "t1")
	if err != nil {
		t.Fatal(err)
	}
	if got != replica.Hash() {
		t.Fatal("rows read model hash differs from the replica's")
	}
}

// testQueryRows: filters, orders (by ID and by a field, both ways) and
// cursor pages over the rows read model see exactly the alive rows that
// match, each once, in order, and nothing of another tenant.
func testQueryRows(t *testing.T, l server.Log) {
	defer l.Close()
	ctx := context.Background()
	var replica crdt.State
	const n = 30
	seq := uint64(0)
	write := func(tenant string, s crdt.SiteID, fn func(b *crdt.Builder) error) {
		seq++
		b := crdt.NewBuilder(s, seq, crdt.MakeTimestamp(int64(1_700_000_000_000+seq), 0), func(k crdt.RowKey) (*crdt.Row, error) { return replica.Row(k), nil })
		if err := fn(b); err != nil {
			t.Fatal(err)
		}
		if tenant == "t1" {
			if _, err := replica.Apply(b.Tx()); err != nil {
				t.Fatal(err)
			}
		}
		mustAppend(t, l, tenant, []crdt.Tx{*b.Tx()})
	}
	write("t1", site(1), func(b *crdt.Builder) error {
		for i := range n {
			k := crdt.RowKey{Collection: "items", Row: fmt.Sprintf("r%02d", i)}
			if err := b.Set(k, "title", crdt.KindRegister, []byte(fmt.Sprintf(`"t%d"`, i%5))); err != nil {
				return err
			}
			if err := b.Set(k, "done", crdt.KindRegister, []byte(fmt.Sprint(i%2 == 0))); err != nil {
				return err
			}
			if i%10 != 9 { // r09, r19, r29 have no n
				if err := b.Increment(k, "n", int64(i%7)); err != nil {
					return err
				}
			}
		}
		return nil
	})
	write("t1", site(1), func(b *crdt.Builder) error { // delete r00 and r01
		for _, id := range []string{"r00", "r01"} {
			if _, err := b.Delete(crdt.RowKey{Collection: "items", Row: id}); err != nil {
				return err
			}
		}
		return nil
	})
	seq = 0
	write("t2", site(2), func(b *crdt.Builder) error {
		return b.Set(crdt.RowKey{Collection: "items", Row: "other"}, "done", crdt.KindRegister, []byte(`true`))
	})
	q := l.(server.RowQuerier)
	// all pages through q with a small limit.
	all := func(tenant string, rq server.RowQuery) []server.QueryRow {
		t.Helper()
		rq.Collection, rq.Limit = "items", 4
		var out []server.QueryRow
		for range 100 {
			page, err := q.QueryRows(ctx, tenant, rq)
			if err != nil {
				t.Fatalf("%+v: %v", rq, err)
			}
			out = append(out, page...)
			if len(page) < rq.Limit {
				return out
			}
			last := page[len(page)-1]
			rq.After = &server.QueryCursor{Value: last.Order, ID: last.ID}
		}
		t.Fatal("query pages do not end")
		return nil
	}
	ids := func(rs []server.QueryRow) (out []string) {
		for _, r := range rs {
			out = append(out, r.ID)
		}
		return out
	}
	want := func(keep func(i int) bool) (out []string) {
		for i := 2; i < n; i++ {
			if keep(i) {
				out = append(out, fmt.Sprintf("r%02d", i))
			}
		}
		return out
	}
	check := func(name string, got, want []string) {
		t.Helper()
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s:\n got %v\nwant %v", name, got, want)
		}
	}
	check("by id", ids(all("t1", server.RowQuery{})), want(func(int) bool { return true }))
	rev := want(func(int) bool { return true })
	for i, j := 0, len(rev)-1; i < j; i, j = i+1, j-1 {
		rev[i], rev[j] = rev[j], rev[i]
	}
	check("by id, descending", ids(all("t1", server.RowQuery{Desc: true})), rev)
	check("where done", ids(all("t1", server.RowQuery{Where: []server.FieldValue{{Field: "done", Value: []byte(`true`)}}})), want(func(i int) bool { return i%2 == 0 }))
	check("where title and done", ids(all("t1", server.RowQuery{Where: []server.FieldValue{{Field: "title", Value: []byte(`"t3"`)}, {Field: "done", Value: []byte(`false`)}}})),
		want(func(i int) bool { return i%5 == 3 && i%2 == 1 }))
	check("where n", ids(all("t1", server.RowQuery{Where: []server.FieldValue{{Field: "n", Value: []byte(`4`)}}})), want(func(i int) bool { return i%7 == 4 && i%10 != 9 }))
	// Ordered by n: rows without it first, then by n, ties by ID.
	var byN []string
	for _, v := range append([]int{-1}, 0, 1, 2, 3, 4, 5, 6) {
		byN = append(byN, want(func(i int) bool { return (v == -1 && i%10 == 9) || (v >= 0 && i%10 != 9 && i%7 == v) })...)
	}
	rows := all("t1", server.RowQuery{Order: "n"})
	check("order n", ids(rows), byN)
	for _, r := range rows {
		var doc map[string]any
		if err := json.Unmarshal(r.Doc, &doc); err != nil {
			t.Fatalf("row %s doc %s: %v", r.ID, r.Doc, err)
		}
		var i int
		fmt.Sscanf(r.ID, "r%d", &i)
		if doc["title"] != fmt.Sprintf("t%d", i%5) || doc["done"] != (i%2 == 0) {
			t.Errorf("row %s doc %s", r.ID, r.Doc)
		}
	}
	for i, j := 0, len(byN)-1; i < j; i, j = i+1, j-1 {
		byN[i], byN[j] = byN[j], byN[i]
	}
	check("order -n", ids(all("t1", server.RowQuery{Order: "n", Desc: true})), byN)
	check("other tenant", ids(all("t2", server.RowQuery{})), []string{"other"})
	check("unknown tenant", ids(all("t3", server.RowQuery{})), nil)
}

// txs returns transactions n..m of site, each setting one register.
func txs(site crdt.SiteID, from, to uint64) []crdt.Tx {
	var out []crdt.Tx
	for seq := from; seq <= to; seq++ {
		out = append(out, crdt.Tx{Site: site, Seq: seq, Time: crdt.MakeTimestamp(int64(1_700_000_000_000+seq), 0), Ops: []crdt.Op{
			{Type: crdt.OpRevive, Collection: "items", Row: fmt.Sprintf("%x-%d", site[:2], seq), CL: 1},
			{Type: crdt.OpSet, Kind: crdt.KindRegister, Collection: "items", Row: fmt.Sprintf("%x-%d", site[:2], seq), Field: "n", CL: 1, Value: []byte(fmt.Sprint(seq))},
		}})
	}
	return out
}

func site(b byte) crdt.SiteID { return crdt.SiteID{b, 0xAA} }

func mustAppend(t testing.TB, l server.Log, tenant string, in []crdt.Tx) []uint64 {
	t.Helper()
	seqs, err := l.Append(context.Background(), tenant, in)
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	if len(seqs) != len(in) {
		t.Fatalf("Append returned %d seqs for %d txs", len(seqs), len(in))
	}
	return seqs
}

func readAll(t testing.TB, l server.Log, tenant string) []usync.Change {
	t.Helper()
	var out []usync.Change
	var after uint64
	for {
		chs, err := l.Read(context.Background(), tenant, after, 7, 0)
		if err != nil {
			t.Fatalf("Read: %v", err)
		}
		if len(chs) == 0 {
			return out
		}
		out = append(out, chs...)
		after = chs[len(chs)-1].Seq
	}
}

func testAppend(t *testing.T, l server.Log) {
	defer l.Close()
	ctx := context.Background()
	a, b := site(1), site(2)
	seqs := mustAppend(t, l, "t1", txs(a, 1, 3))
	seqs = append(seqs, mustAppend(t, l, "t1", txs(b, 1, 2))...)
	seqs = append(seqs, mustAppend(t, l, "t1", txs(a, 4, 4))...)
	for i, s := range seqs {
		if s != uint64(i+1) {
			t.Fatalf("seqs %v: want 1..%d", seqs, len(seqs))
		}
	}
	if h, err := l.Head(ctx, "t1"); err != nil || h != 6 {
		t.Fatalf("Head = %d, %v; want 6", h, err)
	}
	if hw, err := l.HighWater(ctx, "t1", a); err != nil || hw != 4 {
		t.Fatalf("HighWater(a) = %d, %v; want 4", hw, err)
	}
	if hw, err := l.HighWater(ctx, "t1", site(9)); err != nil || hw != 0 {
		t.Fatalf("HighWater(unknown) = %d, %v; want 0", hw, err)
	}
	all := readAll(t, l, "t1")
	if len(all) != 6 {
		t.Fatalf("read %d entries, want 6", len(all))
	}
	for i, ch := range all {
		if ch.Seq != uint64(i+1) {
			t.Fatalf("entry %d has seq %d", i, ch.Seq)
		}
	}
	// The entries are the transactions, byte for byte.
	if got, want := crdt.EncodeTx(&all[3].Tx), crdt.EncodeTx(&txs(b, 1, 1)[0]); string(got) != string(want) {
		t.Fatalf("entry 4 differs from what was appended")
	}
}

// testNumbered checks that Append calls server.Numbered with the seqs it
// returns, before the entries can be read.
func testNumbered(t *testing.T, l server.Log) {
	defer l.Close()
	ctx := context.Background()
	a := site(1)
	mustAppend(t, l, "t1", txs(a, 1, 2))
	var calls int
	var numbered []uint64
	var headThen uint64
	var readThen []usync.Change
	var errThen error
	nctx := server.WithNumbered(ctx, func(seqs []uint64) {
		calls++
		numbered = slices.Clone(seqs)
		var err1, err2 error
		headThen, err1 = l.Head(ctx, "t1")
		readThen, err2 = l.Read(ctx, "t1", 2, 10, 0)
		errThen = errors.Join(err1, err2)
	})
	// Two new transactions and one already in the log (numbered 0).
	seqs, err := l.Append(nctx, "t1", txs(a, 2, 4))
	if err != nil {
		t.Fatal(err)
	}
	if calls != 1 || !slices.Equal(numbered, seqs) {
		t.Fatalf("Numbered called %d times with %v; Append returned %v: want once, the same seqs", calls, numbered, seqs)
	}
	if errThen != nil || headThen != 2 || len(readThen) != 0 {
		t.Fatalf("when numbered, Head = %d and Read after 2 gave %d entries (%v): want 2 and none, before the commit", headThen, len(readThen), errThen)
	}
	if h, err := l.Head(ctx, "t1"); err != nil || h != 4 {
		t.Fatalf("Head after the append = %d, %v; want 4", h, err)
	}
}

func testIdempotent(t *testing.T, l server.Log) {
	defer l.Close()
	a := site(1)
	mustAppend(t, l, "t1", txs(a, 1, 3))
	// The same transactions again, and an overlapping batch.
	if seqs := mustAppend(t, l, "t1", txs(a, 1, 3)); seqs[0] != 0 || seqs[1] != 0 || seqs[2] != 0 {
		t.Fatalf("re-append gave seqs %v, want zeros", seqs)
	}
	seqs := mustAppend(t, l, "t1", txs(a, 2, 5))
	if want := []uint64{0, 0, 4, 5}; fmt.Sprint(seqs) != fmt.Sprint(want) {
		t.Fatalf("overlapping append gave %v, want %v", seqs, want)
	}
	if n := len(readAll(t, l, "t1")); n != 5 {
		t.Fatalf("%d entries after duplicates, want 5", n)
	}
}

func testGap(t *testing.T, l server.Log) {
	defer l.Close()
	ctx := context.Background()
	a := site(1)
	mustAppend(t, l, "t1", txs(a, 1, 2))
	batch := append(txs(site(2), 1, 1), txs(a, 4, 4)...) // site a skips 3
	if _, err := l.Append(ctx, "t1", batch); !errors.Is(err, usync.ErrGap) {
		t.Fatalf("Append with a gap: %v, want ErrGap", err)
	}
	if h, _ := l.Head(ctx, "t1"); h != 2 {
		t.Fatalf("a failed append changed the head to %d", h)
	}
	if hw, _ := l.HighWater(ctx, "t1", site(2)); hw != 0 {
		t.Fatalf("a failed append recorded site 2 at %d", hw)
	}
	// The log goes on after the failure.
	if seqs := mustAppend(t, l, "t1", txs(a, 3, 3)); fmt.Sprint(seqs) != "[3]" {
		t.Fatalf("append after a failed one gave %v, want [3]", seqs)
	}
}

func testRead(t *testing.T, l server.Log) {
	defer l.Close()
	ctx := context.Background()
	mustAppend(t, l, "t1", txs(site(1), 1, 10))
	chs, err := l.Read(ctx, "t1", 4, 3, 0)
	if err != nil || len(chs) != 3 || chs[0].Seq != 5 || chs[2].Seq != 7 {
		t.Fatalf("Read(after 4, limit 3) = %v, %v", seqsOf(chs), err)
	}
	if chs, err := l.Read(ctx, "t1", 10, 5, 0); err != nil || len(chs) != 0 {
		t.Fatalf("Read at head = %v, %v", seqsOf(chs), err)
	}
}

func seqsOf(chs []usync.Change) []uint64 {
	var out []uint64
	for _, c := range chs {
		out = append(out, c.Seq)
	}
	return out
}

func testTenants(t *testing.T, l server.Log) {
	defer l.Close()
	ctx := context.Background()
	a := site(1)
	mustAppend(t, l, "t1", txs(a, 1, 3))
	// The same site and seqs in another tenant are new there.
	if seqs := mustAppend(t, l, "t2", txs(a, 1, 2)); seqs[0] != 1 || seqs[1] != 2 {
		t.Fatalf("t2 seqs %v", seqs)
	}
	if n := len(readAll(t, l, "t2")); n != 2 {
		t.Fatalf("t2 reads %d entries, want 2", n)
	}
	if h, _ := l.Head(ctx, "t1"); h != 3 {
		t.Fatalf("t1 head %d", h)
	}
	if hw, _ := l.HighWater(ctx, "t3", a); hw != 0 {
		t.Fatalf("t3 sees a high-water of %d", hw)
	}
	if chs, _ := l.Read(ctx, "t3", 0, 10, 0); len(chs) != 0 {
		t.Fatalf("t3 reads %d entries", len(chs))
	}
}

func testWait(t *testing.T, l server.Log) {
	defer l.Close()
	ctx := context.Background()
	mustAppend(t, l, "t1", txs(site(1), 1, 2))
	select {
	case <-l.Wait(ctx, "t1", 1):
	case <-time.After(5 * time.Second):
		t.Fatal("Wait below the head did not return at once")
	}
	ch := l.Wait(ctx, "t1", 2)
	other := l.Wait(ctx, "t2", 0)
	select {
	case <-ch:
		t.Fatal("Wait at the head returned before an append")
	default:
	}
	mustAppend(t, l, "t1", txs(site(1), 3, 3))
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatal("Wait did not wake after an append")
	}
	select {
	case <-other:
		t.Fatal("an append to t1 woke a waiter on t2")
	default:
	}
	cctx, cancel := context.WithCancel(ctx)
	ch = l.Wait(cctx, "t1", 100)
	cancel()
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatal("Wait did not end with its context")
	}
}

// testWatch: Watch fires as Wait does, and a watch cancelled before an
// append stays unfired; Close wakes those left.
func testWatch(t *testing.T, l server.Log) {
	ctx := context.Background()
	w := l.(server.Watcher)
	mustAppend(t, l, "t1", txs(site(1), 1, 2))
	below, cancelBelow := w.Watch(ctx, "t1", 1)
	defer cancelBelow()
	select {
	case <-below:
	case <-time.After(5 * time.Second):
		t.Fatal("a Watch below the head did not fire at once")
	}
	ch, cancel := w.Watch(ctx, "t1", 2)
	defer cancel()
	other, cancelOther := w.Watch(ctx, "t2", 0)
	defer cancelOther()
	gone, cancelGone := w.Watch(ctx, "t1", 2)
	cancelGone()
	select {
	case <-ch:
		t.Fatal("a Watch at the head fired before an append")
	default:
	}
	mustAppend(t, l, "t1", txs(site(1), 3, 3))
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatal("a Watch did not fire after an append")
	}
	select {
	case <-other:
		t.Fatal("an append to t1 fired a watch on t2")
	case <-gone:
		t.Fatal("a cancelled watch fired")
	default:
	}
	l.Close()
	select {
	case <-other:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not wake a watch")
	}
}

// testConcurrent runs 8 appenders (one site each) and a tailing reader that
// follows the head with Wait: the reader must see every entry once, in
// seq order, with no gap, and each site's transactions in order.
func testConcurrent(t *testing.T, l server.Log) {
	defer l.Close()
	const appenders, perSite, batch = 8, 40, 4
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, appenders+1)
	for i := range appenders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := site(byte(i + 1))
			for from := uint64(1); from <= perSite; from += batch {
				if _, err := l.Append(ctx, "t1", txs(s, from, from+batch-1)); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	seen := make(chan []usync.Change, 1)
	go func() {
		var got []usync.Change
		var cursor uint64
		for len(got) < appenders*perSite {
			chs, err := l.Read(ctx, "t1", cursor, 50, 0)
			if err != nil {
				errs <- err
				break
			}
			if len(chs) == 0 {
				select {
				case <-l.Wait(ctx, "t1", cursor):
					continue
				case <-ctx.Done():
				}
				break
			}
			got = append(got, chs...)
			cursor = chs[len(chs)-1].Seq
		}
		seen <- got
	}()
	wg.Wait()
	got := <-seen
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if len(got) != appenders*perSite {
		t.Fatalf("reader saw %d entries, want %d", len(got), appenders*perSite)
	}
	last := map[crdt.SiteID]uint64{}
	for i, ch := range got {
		if ch.Seq != uint64(i+1) {
			t.Fatalf("entry %d has seq %d: skipped or reordered", i, ch.Seq)
		}
		if ch.Tx.Seq != last[ch.Tx.Site]+1 {
			t.Fatalf("site %s: seq %d after %d", ch.Tx.Site, ch.Tx.Seq, last[ch.Tx.Site])
		}
		last[ch.Tx.Site] = ch.Tx.Seq
	}
}

func testInvalid(t *testing.T, l server.Log) {
	defer l.Close()
	ctx := context.Background()
	if _, err := l.Append(ctx, "", txs(site(1), 1, 1)); !errors.Is(err, server.ErrInvalidTenant) {
		t.Errorf("empty tenant: %v", err)
	}
	bad := txs(site(1), 1, 1)
	bad[0].Ops[1].CL = 2 // a field op needs an odd life
	if _, err := l.Append(ctx, "t1", bad); !errors.Is(err, usync.ErrMalformedTx) {
		t.Errorf("malformed tx: %v", err)
	}
	if h, _ := l.Head(ctx, "t1"); h != 0 {
		t.Errorf("bad input changed the head to %d", h)
	}
}

func testClosed(t *testing.T, l server.Log) {
	ctx := context.Background()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(ctx, "t1", txs(site(1), 1, 1)); !errors.Is(err, server.ErrLogClosed) {
		t.Errorf("Append after Close: %v", err)
	}
	if _, err := l.Read(ctx, "t1", 0, 1, 0); !errors.Is(err, server.ErrLogClosed) {
		t.Errorf("Read after Close: %v", err)
	}
}

// orderRow is a row of testQueryOrder: its ID and what it does to the
// field v (see there).
type orderRow struct {
	id, v string
}

// testQueryOrder: ordered by a field holding every kind of JSON value —
// integers around and beyond 2^53 and beyond int64, decimals, strings
// (byte order, escapes), booleans, null, cleared and missing fields,
// arrays and objects — pages of any size, both ways, see every alive row
// once, in the query order both logs share (see server/internal/rowmodel:
// missing or null < strings < numbers < false < true < arrays <
// objects; strings by bytes, numbers exactly, arrays and objects all
// equal; then ID in byte order). Filters on those values match as that
// order compares.
func testQueryOrder(t *testing.T, l server.Log) {
	defer l.Close()
	ctx := context.Background()
	// In the order: v is a JSON value, "" for a row without v, "cleared"
	// for a row whose v was set and then set to null.
	want := []orderRow{
		{"n1", ""}, {"n2", "null"}, {"n3", "cleared"},
		{"s1", `""`}, {"s2", `"10"`}, {"s3", `"B"`}, {"s0", `"a"`}, {"s4", `"a"`}, {"s6", `"ab"`}, {"s5", `"\u00e9"`},
		{"m1", `-123456789012345678901234567891`}, {"m18", `-123456789012345678901234567890`},
		{"m2", `-9007199254740993`}, {"m3", `-9007199254740992`}, {"m4", `-1.5`}, {"m5", `-1e-7`},
		{"m6", `0`}, {"m7", `-0.0`}, {"m8", `1e-7`}, {"m10", `1.0`}, {"m9", `1`}, {"m11", `2.5`},
		{"m12", `9007199254740992`}, {"m13", `9007199254740993`}, {"m14", `9007199254740994`},
		{"m15", `1E20`}, {"m16", `123456789012345678901234567890`}, {"m17", `123456789012345678901234567891`},
		{"b1", `false`}, {"b0", `true`}, {"b2", `true`},
		{"a1", `[1,2,3]`}, {"a2", `[2]`}, {"o1", `{"x":1}`},
	}
	w := &writer{t: t, l: l, tenant: "t1", site: site(1), replica: &crdt.State{}}
	// Written in another order than the IDs', some in one transaction.
	for i := len(want) - 1; i >= 0; i -= 2 {
		group := []orderRow{want[i]}
		if i > 0 {
			group = append(group, want[i-1])
		}
		w.write(func(b *crdt.Builder) error {
			for _, r := range group {
				k := crdt.RowKey{Collection: "vals", Row: r.id}
				if err := b.Set(k, "other", crdt.KindRegister, []byte(`1`)); err != nil {
					return err
				}
				v := r.v
				if v == "cleared" {
					v = `5`
				}
				if v != "" {
					if err := b.Set(k, "v", crdt.KindRegister, []byte(v)); err != nil {
						return err
					}
				}
			}
			return nil
		})
	}
	w.write(set("vals", "n3", "v", `null`))
	w.write(set("vals", "d1", "v", `7`))
	w.write(func(b *crdt.Builder) error {
		_, err := b.Delete(crdt.RowKey{Collection: "vals", Row: "d1"})
		return err
	})
	other := &writer{t: t, l: l, tenant: "t2", site: site(2), replica: &crdt.State{}}
	other.write(set("vals", "x", "v", `9007199254740993`))

	q := l.(server.RowQuerier)
	page := func(rq server.RowQuery) ([]server.QueryRow, error) {
		rq.Collection = "vals"
		return q.QueryRows(ctx, "t1", rq)
	}
	all := func(rq server.RowQuery) []server.QueryRow {
		t.Helper()
		var out []server.QueryRow
		for range 200 {
			p, err := page(rq)
			if err != nil {
				t.Fatalf("%+v: %v", rq, err)
			}
			out = append(out, p...)
			if len(p) < rq.Limit {
				return out
			}
			last := p[len(p)-1]
			rq.After = &server.QueryCursor{Value: last.Order, ID: last.ID}
		}
		t.Fatalf("%+v: pages do not end", rq)
		return nil
	}
	wantIDs := func(rows []orderRow) (out []string) {
		for _, r := range rows {
			out = append(out, r.id)
		}
		return out
	}
	ids := func(rs []server.QueryRow) (out []string) {
		for _, r := range rs {
			out = append(out, r.ID)
		}
		return out
	}
	ascending := wantIDs(want)
	descending := slices.Clone(ascending)
	slices.Reverse(descending)
	values := map[string]string{}
	for _, r := range want {
		values[r.id] = r.v
	}
	for _, limit := range []int{1, 2, 3, 5, 7, 100} {
		for _, desc := range []bool{false, true} {
			got := all(server.RowQuery{Order: "v", Desc: desc, Limit: limit})
			exp := ascending
			if desc {
				exp = descending
			}
			if fmt.Sprint(ids(got)) != fmt.Sprint(exp) {
				t.Fatalf("order v, limit %d, desc %v:\n got %v\nwant %v", limit, desc, ids(got), exp)
			}
			if limit != 3 {
				continue
			}
			for _, r := range got {
				v := values[r.ID]
				if v == "" || v == "cleared" {
					v = "null"
				}
				if !sameJSON(r.Order, []byte(v)) {
					t.Errorf("row %s ordered by %s, its v is %s", r.ID, r.Order, v)
				}
			}
		}
	}
	// A cursor may spell its value in any way that means it.
	for _, c := range []struct {
		after server.QueryCursor
		desc  bool
		want  string
	}{
		{server.QueryCursor{Value: []byte(`1.00`), ID: "m10"}, false, "m9"},
		{server.QueryCursor{Value: []byte(`10e-1`), ID: "m9"}, true, "m10"},
		{server.QueryCursor{Value: []byte(`9.007199254740993e15`), ID: "m13"}, false, "m14"},
		{server.QueryCursor{Value: []byte(`"\u0061"`), ID: "s0"}, false, "s4"},
		{server.QueryCursor{Value: []byte(`null`), ID: "n3"}, false, "s1"},
		{server.QueryCursor{Value: nil, ID: "n2"}, false, "n3"},
		{server.QueryCursor{Value: []byte(`"é"`), ID: "s5"}, true, "s6"},
		{server.QueryCursor{Value: []byte(`[]`), ID: "a1"}, false, "a2"},
		{server.QueryCursor{Value: []byte(`-1e-6`), ID: "zz"}, false, "m5"},
	} {
		got, err := page(server.RowQuery{Order: "v", Desc: c.desc, After: &c.after, Limit: 1})
		if err != nil || len(got) != 1 || got[0].ID != c.want {
			t.Errorf("after %s/%s (desc %v): %v, %v; want %s", c.after.Value, c.after.ID, c.desc, ids(got), err, c.want)
		}
	}
	for _, bad := range []string{`nul`, `"a`, `1e`, `{`} {
		if _, err := page(server.RowQuery{Order: "v", After: &server.QueryCursor{Value: []byte(bad), ID: "a"}, Limit: 1}); !errors.Is(err, usync.ErrBadMessage) {
			t.Errorf("cursor value %s: %v, want ErrBadMessage", bad, err)
		}
	}
	// Filters match values as the order compares them.
	for _, c := range []struct {
		v    string
		want []string
	}{
		{`9007199254740993`, []string{"m13"}},
		{`9007199254740992`, []string{"m12"}},
		{`123456789012345678901234567891`, []string{"m17"}},
		{`1`, []string{"m10", "m9"}},
		{`0`, []string{"m6", "m7"}},
		{`1e20`, []string{"m15"}},
		{`"\u00e9"`, []string{"s5"}},
		{`"a"`, []string{"s0", "s4"}},
		{`null`, []string{"n2", "n3"}},
		{`true`, []string{"b0", "b2"}},
		{`[2]`, []string{"a2"}},
		{`7`, nil},
	} {
		got := all(server.RowQuery{Where: []server.FieldValue{{Field: "v", Value: []byte(c.v)}}, Limit: 2})
		if fmt.Sprint(ids(got)) != fmt.Sprint(c.want) {
			t.Errorf("where v = %s: %v, want %v", c.v, ids(got), c.want)
		}
	}
	if got, err := q.QueryRows(ctx, "t2", server.RowQuery{Collection: "vals", Order: "v", Limit: 10}); err != nil || fmt.Sprint(ids(got)) != "[x]" {
		t.Errorf("t2: %v, %v", ids(got), err)
	}
}

// sameJSON reports whether a and b are the same JSON value, numbers
// compared exactly.
func sameJSON(a, b []byte) bool {
	decode := func(v []byte) (any, bool) {
		d := json.NewDecoder(bytes.NewReader(v))
		d.UseNumber()
		var x any
		return x, d.Decode(&x) == nil
	}
	x, ok1 := decode(a)
	y, ok2 := decode(b)
	return ok1 && ok2 && sameValue(x, y)
}

func sameValue(x, y any) bool {
	switch x := x.(type) {
	case json.Number:
		y, ok := y.(json.Number)
		if !ok {
			return false
		}
		rx, ok1 := new(big.Rat).SetString(string(x))
		ry, ok2 := new(big.Rat).SetString(string(y))
		return ok1 && ok2 && rx.Cmp(ry) == 0
	case []any:
		y, ok := y.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !sameValue(x[i], y[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		y, ok := y.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, v := range x {
			if w, ok := y[k]; !ok || !sameValue(v, w) {
				return false
			}
		}
		return true
	}
	return x == y
}
