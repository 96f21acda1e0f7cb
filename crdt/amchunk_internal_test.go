//go:build cgo && (linux || darwin) && (amd64 || arm64)

package crdt

import (
	"testing"

	"pgregory.net/rapid"
)

// changeStartOp reads what the header's full parse reads, for real
// changes (of several authors, with dependencies) and for any cut or
// corruption of them: the same start op, or not ok where parse fails.
func TestChangeStartOp_MatchesParse(t *testing.T) {
	a, err := OpenDocument(&DocState{}, SiteID{0: 1, 15: 1})
	if err != nil {
		t.Fatal(err)
	}
	b, err := OpenDocument(&DocState{}, SiteID{0: 2, 15: 2})
	if err != nil {
		t.Fatal(err)
	}
	var changes [][]byte
	for i := range 6 {
		d, other := a, b
		if i%2 == 1 {
			d, other = b, a
		}
		if err := d.Splice(Path{"text"}, 0, 0, "typed"); err != nil {
			t.Fatal(err)
		}
		ch, err := d.Commit(MakeTimestamp(int64(i+1), 0))
		if err != nil || ch == nil {
			t.Fatalf("Commit: %v, %v", ch, err)
		}
		if err := other.Apply(ch); err != nil {
			t.Fatal(err)
		}
		changes = append(changes, ch)
	}
	parse := func(c []byte) (uint64, bool) {
		typ, contents, _, err := amChunk(c)
		if err != nil || typ != amChange {
			return 0, false
		}
		var h amChangeHeader
		if h.parse(contents) != nil {
			return 0, false
		}
		return h.StartOp, true
	}
	for i, c := range changes {
		got, ok := changeStartOp(c)
		want, wantOK := parse(c)
		if !wantOK || got != want || !ok {
			t.Fatalf("change %d: start op %d, %v; the parse gives %d, %v", i, got, ok, want, wantOK)
		}
	}
	rapid.Check(t, func(t *rapid.T) {
		c := append([]byte(nil), rapid.SampledFrom(changes).Draw(t, "change")...)
		c = c[:rapid.IntRange(0, len(c)).Draw(t, "cut")]
		for range rapid.IntRange(0, 3).Draw(t, "flips") {
			if len(c) > 0 {
				c[rapid.IntRange(0, len(c)-1).Draw(t, "at")] = rapid.Byte().Draw(t, "byte")
			}
		}
		got, ok := changeStartOp(c)
		want, wantOK := parse(c)
		if ok != wantOK || got != want {
			t.Fatalf("start op %d, %v; the parse gives %d, %v", got, ok, want, wantOK)
		}
	})
}
