//go:build cgo && (linux || darwin) && (amd64 || arm64)

package store

import (
	"strings"
	"testing"

	"github.com/unosync/uno/crdt"
)

func docState(t *testing.T, site crdt.SiteID, text string) *crdt.DocState {
	t.Helper()
	d, err := crdt.OpenDocument(&crdt.DocState{}, site)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Splice(crdt.Path{"text"}, 0, 0, text); err != nil {
		t.Fatal(err)
	}
	ch, err := d.Commit(1)
	if err != nil {
		t.Fatal(err)
	}
	var r crdt.Row
	if _, err := r.Apply(&crdt.Op{Type: crdt.OpChange, Kind: crdt.KindDoc, Collection: "c", Row: "r", Field: "f", CL: 1, Value: ch}, crdt.Dot{Site: site, Time: 1}); err != nil {
		t.Fatal(err)
	}
	f, _ := r.Field("f")
	return &f.Doc
}

// The open documents are bounded by count and by their estimated memory;
// the one in use stays whatever its size.
func TestDocRenderer_Bounded(t *testing.T) {
	r := docRenderer{max: 3, maxBytes: docWeight * 1050} // two renders of ~413 bytes of JSON
	for i := range 6 {
		s := docState(t, crdt.SiteID{byte(i + 1)}, strings.Repeat("x", 400))
		if _, err := r.render(s); err != nil {
			t.Fatal(err)
		}
		if len(r.docs) > 2 {
			t.Fatalf("after %d renders %d documents are open, want at most 2 under maxBytes", i+1, len(r.docs))
		}
	}
	big := docState(t, crdt.SiteID{9}, strings.Repeat("y", 5000))
	if _, err := r.render(big); err != nil {
		t.Fatal(err)
	}
	if len(r.docs) != 1 {
		t.Fatalf("%d documents open beside one over the bound, want it alone", len(r.docs))
	}
	r = docRenderer{max: 2, maxBytes: 1 << 40}
	for i := range 5 {
		if _, err := r.render(docState(t, crdt.SiteID{byte(i + 1)}, "a")); err != nil {
			t.Fatal(err)
		}
	}
	if len(r.docs) != 2 {
		t.Fatalf("%d documents open, want max 2", len(r.docs))
	}
}
