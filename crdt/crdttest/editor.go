package crdttest

import (
	"testing"
	"time"

	"github.com/unosync/uno/crdt"
)

// Editor makes one site's Automerge changes to one document, in order,
// as a client editing a doc field does. It needs a build that edits
// documents (crdt.DocEditing).
type Editor struct {
	tb   testing.TB
	doc  *crdt.Document
	Site crdt.SiteID
}

// NewEditor opens an empty document for site, closed when the test ends.
func NewEditor(tb testing.TB, site crdt.SiteID) *Editor {
	tb.Helper()
	d, err := crdt.OpenDocument(&crdt.DocState{}, site)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(d.Close)
	return &Editor{tb: tb, doc: d, Site: site}
}

// Change runs fn on the document and returns the change it made, stamped
// now (a server refuses changes of transactions far in the future).
func (e *Editor) Change(fn func(d *crdt.Document) error) []byte {
	e.tb.Helper()
	if err := fn(e.doc); err != nil {
		e.tb.Fatal(err)
	}
	ch, err := e.doc.Commit(crdt.MakeTimestamp(time.Now().UnixMilli(), 0))
	if err != nil || ch == nil {
		e.tb.Fatalf("commit doc change: %v", err)
	}
	return ch
}

// Splice returns a change inserting text at pos of the text at path.
func (e *Editor) Splice(pos int, text string, path ...any) []byte {
	return e.Change(func(d *crdt.Document) error { return d.Splice(crdt.Path(path), pos, 0, text) })
}
