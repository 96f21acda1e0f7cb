package storetest

import (
	"bytes"
	"errors"
	"testing"

	"github.com/unosync/uno/crdt"
	"github.com/unosync/uno/store"
)

// testFork: Runs follow the outbox; Fork moves the writes from a
// sequence number on to a new site, so that they survive beside the old
// site's writes a server holds under the same numbers (a database that
// went back to an earlier state and wrote again).
func (s *suite) testFork(t *testing.T) {
	ctx := t.Context()
	r := s.replica(t, 1, store.Options{})
	old := r.Site()
	if runs, last := r.Runs(); len(runs) != 0 || last != 0 {
		t.Fatalf("Runs of an empty outbox = %v, %d", runs, last)
	}
	r0, r1 := key("todos", "r0"), key("todos", "r1")
	seed := write(t, r, func(b *crdt.Builder) error {
		return errors.Join(b.Set(r0, "title", crdt.KindRegister, []byte(`"v0"`)), b.Increment(r0, "n", 3), b.Add(r0, "tags", []byte(`"x"`)))
	}).Tx
	// What the server holds as the old site's seq 2: written on the seed
	// alone, then lost by this replica.
	var held crdt.State
	if _, err := held.Apply(seed); err != nil {
		t.Fatal(err)
	}
	lb := crdt.NewBuilder(old, 2, crdt.MakeTimestamp(r.clock.Now().UnixMilli(), 0), func(k crdt.RowKey) (*crdt.Row, error) { return held.Row(k), nil })
	if err := errors.Join(lb.Increment(r0, "n", 10), lb.Add(r0, "tags", []byte(`"l"`)), lb.Set(r0, "title", crdt.KindRegister, []byte(`"lost"`))); err != nil {
		t.Fatal(err)
	}
	lost := lb.Tx()

	// The replica's own seqs 2 to 4, written instead.
	instead := []func(b *crdt.Builder) error{
		func(b *crdt.Builder) error {
			return errors.Join(b.Increment(r0, "n", 4), b.Add(r0, "tags", []byte(`"y"`)), b.Set(r0, "title", crdt.KindRegister, []byte(`"new1"`)))
		},
		func(b *crdt.Builder) error {
			return errors.Join(b.Increment(r0, "n", -1), b.Remove(r0, "tags", []byte(`"y"`)), b.Set(r0, "title", crdt.KindRegister, []byte(`"new2"`)))
		},
		func(b *crdt.Builder) error { return b.Increment(r1, "n", 2) },
	}
	for _, fn := range instead {
		write(t, r, fn)
	}
	again := outbox(t, r)[1:]
	runs, last := r.Runs()
	if len(runs) != 1 || runs[0].First != 1 || runs[0].Epoch == 0 || last != 4 {
		t.Fatalf("Runs = %v, %d; want one run from 1 with an epoch, and 4", runs, last)
	}
	if err := r.Ack(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if got, _ := r.Runs(); len(got) != 1 || got[0] != (store.Run{First: 2, Epoch: runs[0].Epoch}) {
		t.Fatalf("Runs after Ack(1) = %v, want [{2 %d}]", got, runs[0].Epoch)
	}

	if site, err := r.Fork(ctx, 9, 1207); err != nil || site != old {
		t.Fatalf("Fork past the outbox = %s, %v; want the old site and nothing moved", site, err)
	}
	site, err := r.Fork(ctx, 2, 1207)
	if err != nil {
		t.Fatal(err)
	}
	if site == old || site.IsZero() || r.Site() != site {
		t.Fatalf("Fork = %s, Site() = %s (old %s): want a new site", site, r.Site(), old)
	}
	moved := outbox(t, r)
	if len(moved) != 3 || pending(t, r) != 3 {
		t.Fatalf("outbox after Fork holds %d (Pending %d), want 3", len(moved), pending(t, r))
	}
	for i, tx := range moved {
		if tx.Site != site || tx.Seq != uint64(i+1) || tx.Time != again[i].Time {
			t.Errorf("moved[%d] = %s/%d at %s, want %s/%d at %s", i, tx.Site, tx.Seq, tx.Time, site, i+1, again[i].Time)
		}
	}
	if got, last := r.Runs(); len(got) != 1 || got[0].First != 1 || got[0].Epoch != runs[0].Epoch || last != 3 {
		t.Errorf("Runs after Fork = %v, %d; want one run from 1 in this opening's epoch %d, and 3", got, last, runs[0].Epoch)
	}
	if cur, err := r.Cursor(ctx); err != nil || cur != 0 {
		t.Errorf("Cursor after Fork = %d, %v; want 0 (bootstrap)", cur, err)
	}
	// Until the bootstrap the touched rows hold the moved writes alone.
	if got := shown(t, r, nil, "todos", "r0"); got["n"] != "3" || got["title"] != `"new2"` || got["tags"] != "[]" {
		t.Errorf("r0 before the bootstrap = %v, want n 3 (4-1), title new2, no tags", got)
	}

	// A twin with the same outbox (a replica restored again from a copy
	// taken before the fork) forks to the same site and the same
	// transactions, which the server then holds already.
	twin := s.replica(t, 1, store.Options{})
	write(t, twin, func(b *crdt.Builder) error {
		return errors.Join(b.Set(r0, "title", crdt.KindRegister, []byte(`"v0"`)), b.Increment(r0, "n", 3), b.Add(r0, "tags", []byte(`"x"`)))
	})
	twin.clock.Now()
	for _, fn := range instead {
		write(t, twin, fn)
	}
	if site2, err := twin.Fork(ctx, 2, 1207); err != nil || site2 != site {
		t.Errorf("the twin forked to %s (%v), want %s", site2, err, site)
	}
	for i, tx := range outbox(t, twin) {
		if i >= len(moved) || !bytes.Equal(crdt.EncodeTx(tx), crdt.EncodeTx(moved[i])) {
			t.Errorf("the twin's moved transaction %d differs", i)
		}
	}

	// The bootstrap joins the server's rows: the lost writes come back,
	// the moved ones stay, and the counter adds every increment once.
	if _, err := held.Apply(lost); err != nil {
		t.Fatal(err)
	}
	var rows []store.RowState
	for _, k := range held.Keys() {
		rows = append(rows, store.RowState{Key: k, Row: held.Row(k)})
	}
	if _, err := r.MergeRows(ctx, rows, map[crdt.SiteID]uint64{old: 2}, 5); err != nil {
		t.Fatal(err)
	}
	got := shown(t, r, nil, "todos", "r0")
	if got["n"] != "16" || got["title"] != `"new2"` || got["tags"] != `["l","x"]` {
		t.Errorf("r0 after the bootstrap = %v, want n 16 (3+10+4-1), title new2, tags [l x]", got)
	}
	if h, want := hash(t, r), referenceHash(t, []*crdt.Tx{seed, lost}, moved); h != want {
		t.Error("state after the bootstrap differs from the log's: seed, lost write, moved writes")
	}

	// Later writes continue the new site.
	if c := set(t, r, "todos", "r2", "title", `"after"`); c.Tx.Site != site || c.Tx.Seq != 4 {
		t.Errorf("write after Fork = %s/%d, want %s/4", c.Tx.Site, c.Tx.Seq, site)
	}
	if err := r.Ack(ctx, 3); err != nil {
		t.Fatal(err)
	}
	if got, last := r.Runs(); len(got) != 1 || got[0] != (store.Run{First: 4, Epoch: runs[0].Epoch}) || last != 4 {
		t.Errorf("Runs after Ack(3) = %v, %d; want [{4 %d}], 4", got, last, runs[0].Epoch)
	}
	if err := r.Ack(ctx, 4); err != nil {
		t.Fatal(err)
	}
	if got, last := r.Runs(); len(got) != 0 || last != 4 {
		t.Errorf("Runs with an empty outbox = %v, %d; want none, 4", got, last)
	}
}
