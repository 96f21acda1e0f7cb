package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"slices"
	"sync"

	"github.com/unosync/uno/crdt"
)

// DocJSON renders a doc field's document as a JSON object: text as
// strings, counters as numbers (crdt.Document.JSON). ok is false in a build
// without the Automerge library (crdt.DocEditing), where a doc field shows
// no value, and for a document that does not load (it should not happen:
// the changes were checked before they were stored).
//
// Rendering loads the document, which costs time in its size; a write
// that adds one change to a large document would pay it on every
// keystroke. So the documents rendered last stay open, and a state that
// extends one of them (the same chunks, and more) is rendered by applying
// only the new chunks.
func DocJSON(d *crdt.DocState) (json.RawMessage, bool) {
	if !crdt.DocEditing {
		return nil, false
	}
	if len(d.Chunks) == 0 {
		return json.RawMessage("{}"), true
	}
	b, err := openDocs.render(d)
	return b, err == nil
}

// openDocs holds the documents DocJSON rendered last.
var openDocs = docRenderer{max: 16, docs: map[docID]*openDoc{}}

// The documents kept open also make compaction cheap: compacting a doc
// field saves the open document that holds its chunks instead of loading
// them all again, and the saved document then names it.
func init() {
	if load := crdt.DocCompactor; load != nil {
		crdt.DocCompactor = func(chunks [][]byte, heads []crdt.DocHead) ([]byte, bool) {
			return openDocs.compact(chunks, heads, load)
		}
	}
}

// ReadDoc runs fn on the document of a doc field's state, kept open
// between calls (see DocJSON). fn must only read it.
func ReadDoc(d *crdt.DocState, fn func(*crdt.Document) error) error {
	if len(d.Chunks) == 0 {
		doc, err := crdt.OpenDocument(d, crdt.SiteID{})
		if err != nil {
			return err
		}
		defer doc.Close()
		return fn(doc)
	}
	return openDocs.with(d, fn)
}

type docRenderer struct {
	mu   sync.Mutex
	max  int
	docs map[docID]*openDoc
	lru  []docID // least recently used first
}

// docID names a document by its first chunk: its length and checksum.
type docID struct {
	n   int
	sum uint32
}

type openDoc struct {
	doc    *crdt.Document
	chunks [][]byte // the state's chunks the document holds
}

func idOf(first []byte) docID {
	id := docID{n: len(first)}
	if len(first) >= 8 {
		id.sum = binary.BigEndian.Uint32(first[4:8])
	}
	return id
}

func (r *docRenderer) render(d *crdt.DocState) (json.RawMessage, error) {
	var out json.RawMessage
	err := r.with(d, func(doc *crdt.Document) error {
		var err error
		out, err = doc.JSON()
		return err
	})
	return out, err
}

// with runs fn on d's document, opening it or bringing the open one up
// to date.
func (r *docRenderer) with(d *crdt.DocState, fn func(*crdt.Document) error) error {
	id := idOf(d.Chunks[0])
	r.mu.Lock()
	defer r.mu.Unlock()
	o := r.docs[id]
	if o != nil && !extends(d.Chunks, o.chunks) {
		o.doc.Close()
		delete(r.docs, id)
		o = nil
	}
	if o == nil {
		doc, err := crdt.OpenDocument(d, crdt.SiteID{})
		if err != nil {
			return err
		}
		o = &openDoc{doc: doc, chunks: slices.Clone(d.Chunks)}
		r.docs[id] = o
	} else if err := r.catchUp(id, o, d.Chunks); err != nil {
		return err
	}
	r.touch(id)
	return fn(o.doc)
}

// catchUp applies the chunks of chunks (which extend o's) o lacks.
func (r *docRenderer) catchUp(id docID, o *openDoc, chunks [][]byte) error {
	for _, c := range chunks[len(o.chunks):] {
		if err := o.doc.Apply(c); err != nil {
			o.doc.Close()
			delete(r.docs, id)
			return err
		}
	}
	o.chunks = slices.Clone(chunks)
	return nil
}

// compact saves the open document holding chunks (brought up to date), or
// has load do it, and keeps the document open under the saved chunk.
func (r *docRenderer) compact(chunks [][]byte, heads []crdt.DocHead, load func([][]byte, []crdt.DocHead) ([]byte, bool)) ([]byte, bool) {
	id := idOf(chunks[0])
	r.mu.Lock()
	defer r.mu.Unlock()
	o := r.docs[id]
	if o == nil || !extends(chunks, o.chunks) || r.catchUp(id, o, chunks) != nil {
		return load(chunks, heads)
	}
	saved := o.doc.Save()
	delete(r.docs, id)
	r.lru = slices.DeleteFunc(r.lru, func(x docID) bool { return x == id })
	nid := idOf(saved)
	if old := r.docs[nid]; old != nil {
		old.doc.Close()
	}
	o.chunks = [][]byte{saved}
	r.docs[nid] = o
	r.touch(nid)
	return saved, true
}

// extends reports whether chunks begins with the chunks of prefix.
func extends(chunks, prefix [][]byte) bool {
	if len(chunks) < len(prefix) {
		return false
	}
	for i, p := range prefix {
		if !bytes.Equal(chunks[i], p) {
			return false
		}
	}
	return true
}

func (r *docRenderer) touch(id docID) {
	r.lru = slices.DeleteFunc(r.lru, func(x docID) bool { return x == id })
	r.lru = append(r.lru, id)
	for len(r.lru) > r.max {
		if o := r.docs[r.lru[0]]; o != nil {
			o.doc.Close()
		}
		delete(r.docs, r.lru[0])
		r.lru = r.lru[1:]
	}
}
