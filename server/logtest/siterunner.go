package logtest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"testing"

	"github.com/unosync/uno/crdt"
	"github.com/unosync/uno/server"
	usync "github.com/unosync/uno/sync"
)

// testSiteRunner: Runs returns the run holding from, then those starting
// after it up to through, in order, at most limit; SaveRun replaces the
// site's runs from its First on above the site's mark, and leaves those
// of the seqs the log holds; epochs keep all 64 bits; one site's
// runs are not another's, nor one tenant's another's; a closed log
// refuses both.
func testSiteRunner(t *testing.T, l server.Log) {
	defer l.Close()
	ctx := context.Background()
	sr := l.(server.SiteRunner)
	s1, s2 := site(1), site(2)
	runs := func(tenant string, s crdt.SiteID, from, through uint64, limit int, want ...usync.Run) {
		t.Helper()
		got, err := sr.Runs(ctx, tenant, s, from, through, limit)
		if err != nil {
			t.Fatalf("Runs(%s, %x, %d..%d, limit %d): %v", tenant, s[:2], from, through, limit, err)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("Runs(%s, %x, %d..%d, limit %d) = %s; want %s", tenant, s[:2], from, through, limit, runsString(got), runsString(want))
		}
	}
	save := func(tenant string, s crdt.SiteID, first, epoch uint64) {
		t.Helper()
		if err := sr.SaveRun(ctx, tenant, s, usync.Run{First: first, Epoch: epoch}); err != nil {
			t.Fatalf("SaveRun(%s, %x, %d, %d): %v", tenant, s[:2], first, epoch, err)
		}
	}
	run := func(first, epoch uint64) usync.Run { return usync.Run{First: first, Epoch: epoch} }
	const e1, e2, e3, e4 = 0x1111, 0x2222, 0x3333, 0x4444
	big := uint64(1<<63 | 7) // above the largest int64

	runs("t1", s1, 0, math.MaxUint64, 0)
	runs("t1", s1, 1, 10, 10)
	save("t1", s1, 1, e1)
	save("t1", s1, 5, e2)
	save("t1", s1, 9, e3)
	// Another site of the tenant, and the same site in another tenant.
	save("t1", s2, 1, 100)
	save("t2", s1, 1, math.MaxUint64)
	save("t2", s1, 4, 200)

	all := []usync.Run{run(1, e1), run(5, e2), run(9, e3)}
	runs("t1", s1, 1, 10, 10, all...)
	runs("t1", s1, 6, 8, 10, run(5, e2))             // the run holding 6, none starting up to 8
	runs("t1", s1, 6, 9, 10, run(5, e2), run(9, e3)) // through is inclusive
	runs("t1", s1, 5, 5, 10, run(5, e2))             // a run starting at from holds it
	runs("t1", s1, 0, 4, 10, run(1, e1))             // nothing holds 0
	runs("t1", s1, 0, 0, 10)
	runs("t1", s1, 12, 20, 10, run(9, e3)) // the last run holds every seq after it
	runs("t1", s1, 0, math.MaxUint64, 10, all...)
	// At most limit; none or less: the log's default, here all.
	runs("t1", s1, 1, 10, 2, run(1, e1), run(5, e2))
	runs("t1", s1, 6, 10, 1, run(5, e2))
	runs("t1", s1, 1, 10, 0, all...)
	runs("t1", s1, 1, 10, -1, all...)

	// A run replaces the site's runs from its First on.
	save("t1", s1, 5, e4)
	runs("t1", s1, 0, math.MaxUint64, 10, run(1, e1), run(5, e4))
	runs("t1", s1, 9, 9, 10, run(5, e4))
	save("t1", s1, 3, e2)
	runs("t1", s1, 0, math.MaxUint64, 10, run(1, e1), run(3, e2))
	save("t1", s1, 3, e2) // again: the same
	runs("t1", s1, 0, math.MaxUint64, 10, run(1, e1), run(3, e2))
	// Every bit of an epoch is kept.
	save("t1", s1, 7, big)
	runs("t1", s1, 0, math.MaxUint64, 10, run(1, e1), run(3, e2), run(7, big))
	runs("t1", s1, 8, 8, 10, run(7, big))

	// The runs of what the log holds stay: a save at or below the site's
	// mark (another session appended meanwhile) changes nothing; above
	// it, it replaces the runs left by appends that did not commit.
	s3 := site(3)
	save("t1", s3, 1, e1)
	mustAppend(t, l, "t1", txs(s3, 1, 3))
	save("t1", s3, 4, e2)
	mustAppend(t, l, "t1", txs(s3, 4, 5))
	save("t1", s3, 2, e3)
	save("t1", s3, 4, e3)
	save("t1", s3, 5, e3)
	runs("t1", s3, 0, math.MaxUint64, 10, run(1, e1), run(4, e2))
	save("t1", s3, 8, e4) // an append of 6 to 9 that did not commit
	save("t1", s3, 6, e3)
	runs("t1", s3, 0, math.MaxUint64, 10, run(1, e1), run(4, e2), run(6, e3))

	// An append saves the run its context carries (server.WithRun) with
	// its entries, both or neither, by SaveRun's rule.
	s4 := site(4)
	appendRun := func(first, epoch, from, to uint64) error {
		t.Helper()
		_, err := l.Append(server.WithRun(ctx, s4, run(first, epoch)), "t1", txs(s4, from, to))
		return err
	}
	if err := appendRun(1, e1, 1, 3); err != nil {
		t.Fatal(err)
	}
	runs("t1", s4, 0, math.MaxUint64, 10, run(1, e1))
	if err := appendRun(5, e2, 5, 6); err == nil { // 4 is missing
		t.Fatal("an append past a gap: no error")
	}
	runs("t1", s4, 0, math.MaxUint64, 10, run(1, e1))
	if err := appendRun(2, e3, 2, 3); err != nil { // held already: a re-push
		t.Fatal(err)
	}
	runs("t1", s4, 0, math.MaxUint64, 10, run(1, e1))
	if err := appendRun(4, e2, 4, 5); err != nil {
		t.Fatal(err)
	}
	runs("t1", s4, 0, math.MaxUint64, 10, run(1, e1), run(4, e2))
	// A run no log can store fails the append, which writes nothing.
	if err := appendRun(math.MaxInt64+1, e3, 6, 6); err == nil {
		t.Fatal("an append whose run starts past the largest int64: no error")
	}
	runs("t1", s4, 0, math.MaxUint64, 10, run(1, e1), run(4, e2))
	if err := appendRun(7, e3, 7, 7); err == nil { // 6 is missing
		t.Fatal("an append past a gap: no error")
	}
	runs("t1", s4, 0, math.MaxUint64, 10, run(1, e1), run(4, e2))

	// The other site and tenant are untouched.
	runs("t1", s2, 0, math.MaxUint64, 10, run(1, 100))
	runs("t2", s1, 0, math.MaxUint64, 10, run(1, math.MaxUint64), run(4, 200))
	runs("t3", s1, 0, math.MaxUint64, 10)

	if err := sr.SaveRun(ctx, "", s1, run(1, e1)); !errors.Is(err, server.ErrInvalidTenant) {
		t.Errorf("SaveRun of an empty tenant: %v, want ErrInvalidTenant", err)
	}

	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := sr.SaveRun(ctx, "t1", s1, run(11, e1)); !errors.Is(err, server.ErrLogClosed) {
		t.Errorf("SaveRun after Close: %v", err)
	}
	if _, err := sr.Runs(ctx, "t1", s1, 0, 10, 10); !errors.Is(err, server.ErrLogClosed) {
		t.Errorf("Runs after Close: %v", err)
	}
}

// runsString shows runs as first:epoch (hex).
func runsString(runs []usync.Run) string {
	out := "["
	for i, r := range runs {
		if i > 0 {
			out += " "
		}
		out += fmt.Sprintf("%d:%#x", r.First, r.Epoch)
	}
	return out + "]"
}
