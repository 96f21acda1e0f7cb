package rowmodel

import (
	"testing"

	"github.com/unosync/uno/crdt"
)

// A doc field renders as its document, JSON, in a build that reads
// documents, and is left out of a build that cannot.
func TestDoc_DocField(t *testing.T) {
	r := &crdt.Row{CL: 1, Fields: []crdt.Field{{Name: "body", Kind: crdt.KindDoc, CL: 1}, {Name: "n", Kind: crdt.KindCounter, CL: 1}}}
	want := `{"n":0}`
	if crdt.DocEditing {
		want = `{"body":{},"n":0}`
	}
	if got := string(Doc(r)); got != want {
		t.Fatalf("Doc = %s, want %s", got, want)
	}
}
