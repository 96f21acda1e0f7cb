package store

import (
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
var openDocs = docRenderer{max: 16, maxBytes: 256 << 20}

// docWeight estimates an open document's memory per byte of its JSON (or
// of its state, before it is rendered): Automerge holds about 500 bytes
// per character of text, whatever the saved size.
const docWeight = 512

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

// TakeDoc returns the document of a doc field's state to edit, with edits
// authored by site: an open one (see DocJSON), which is no longer shared,
// or a newly loaded one. The caller owns it: it hands it back with KeepDoc
// once its edits are stored, or drops it.
//
// A client editing a document thus uses one open document for typing,
// for the JSON its column shows and for compaction, instead of loading
// every change twice.
func TakeDoc(d *crdt.DocState, site crdt.SiteID) (*crdt.Document, error) {
	if len(d.Chunks) == 0 {
		return crdt.OpenDocument(d, site)
	}
	return openDocs.take(d, site)
}

// KeepDoc hands a document back to the open documents: doc holds exactly
// the document chunks make (the state it was taken for and the changes it
// committed since). Edits to it were authored by site. Handing it back
// before the changes are applied to the state lets a compaction they
// bring save it instead of loading the chunks again.
func KeepDoc(chunks [][]byte, doc *crdt.Document, site crdt.SiteID) {
	if len(chunks) == 0 {
		doc.Close()
		return
	}
	openDocs.keep(chunks, doc, site)
}

// docRenderer keeps at most max documents open, and at most maxBytes of
// their estimated memory (docWeight), least recently used going first.
type docRenderer struct {
	mu       sync.Mutex
	max      int
	maxBytes int
	docs     []*openDoc // least recently used first
}

// docID names a document by its first chunk: its length and checksum.
type docID struct {
	n   int
	sum uint32
}

// openDoc is an open document and the chunks of a state it holds. Several
// may share an ID: versions of one document in different replicas of a
// process, or one replica's before and after a write.
type openDoc struct {
	id     docID
	doc    *crdt.Document
	chunks [][]byte
	site   crdt.SiteID // the author of edits made to doc (zero: read only)
	weight int         // estimated memory
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
	if err == nil {
		r.weigh(d, docWeight*len(out))
	}
	return out, err
}

// weigh records that the open document of d weighs at least w.
func (r *docRenderer) weigh(d *crdt.DocState, w int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if o := r.find(d.Chunks); o != nil && w > o.weight {
		o.weight = w
		r.evict()
	}
}

// find returns the open document with the most of chunks (which extend
// its own), or nil.
func (r *docRenderer) find(chunks [][]byte) *openDoc {
	id := idOf(chunks[0])
	var best *openDoc
	for _, o := range r.docs {
		if o.id == id && hasPrefix(chunks, o.chunks) && (best == nil || len(o.chunks) > len(best.chunks)) {
			best = o
		}
	}
	return best
}

// with runs fn on d's document, opening it or bringing an open one up to
// date.
func (r *docRenderer) with(d *crdt.DocState, fn func(*crdt.Document) error) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	o := r.find(d.Chunks)
	if o == nil {
		doc, err := crdt.OpenDocument(d, crdt.SiteID{})
		if err != nil {
			return err
		}
		o = &openDoc{id: idOf(d.Chunks[0]), doc: doc, chunks: slices.Clip(d.Chunks), weight: docWeight * d.Len()}
		r.add(o)
	} else if err := r.catchUp(o, d.Chunks); err != nil {
		return err
	}
	r.touch(o)
	return fn(o.doc)
}

// take removes and returns an open document of d's that site edits, or
// opens one.
func (r *docRenderer) take(d *crdt.DocState, site crdt.SiteID) (*crdt.Document, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	id := idOf(d.Chunks[0])
	var best *openDoc
	for _, o := range r.docs {
		if o.id == id && o.site == site && hasPrefix(d.Chunks, o.chunks) && (best == nil || len(o.chunks) > len(best.chunks)) {
			best = o
		}
	}
	if best == nil {
		return crdt.OpenDocument(d, site)
	}
	if err := r.catchUp(best, d.Chunks); err != nil {
		return nil, err
	}
	r.docs = slices.DeleteFunc(r.docs, func(x *openDoc) bool { return x == best })
	return best.doc, nil
}

// keep adds doc, holding chunks, to the open documents.
func (r *docRenderer) keep(chunks [][]byte, doc *crdt.Document, site crdt.SiteID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, c := range chunks {
		n += len(c)
	}
	r.add(&openDoc{id: idOf(chunks[0]), doc: doc, chunks: slices.Clip(chunks), site: site, weight: docWeight * n})
}

// catchUp applies the chunks of chunks (which extend o's) o lacks.
func (r *docRenderer) catchUp(o *openDoc, chunks [][]byte) error {
	for _, c := range chunks[len(o.chunks):] {
		if err := o.doc.Apply(c); err != nil {
			r.remove(o)
			return err
		}
	}
	o.chunks = slices.Clip(chunks)
	return nil
}

// compact saves the open document holding chunks (brought up to date), or
// has load do it, and keeps the document open under the saved chunk.
func (r *docRenderer) compact(chunks [][]byte, heads []crdt.DocHead, load func([][]byte, []crdt.DocHead) ([]byte, bool)) ([]byte, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	o := r.find(chunks)
	if o == nil || r.catchUp(o, chunks) != nil {
		return load(chunks, heads)
	}
	saved := o.doc.Save()
	o.id, o.chunks = idOf(saved), [][]byte{saved}
	r.touch(o)
	return saved, true
}

func (r *docRenderer) add(o *openDoc) {
	r.docs = append(r.docs, o)
	r.evict()
}

// evict closes the least recently used documents over the bounds; the
// most recent one stays, however large.
func (r *docRenderer) evict() {
	total := 0
	for _, o := range r.docs {
		total += o.weight
	}
	for len(r.docs) > 1 && (len(r.docs) > r.max || total > r.maxBytes) {
		total -= r.docs[0].weight
		r.docs[0].doc.Close()
		r.docs = r.docs[1:]
	}
}

func (r *docRenderer) touch(o *openDoc) {
	r.docs = slices.DeleteFunc(r.docs, func(x *openDoc) bool { return x == o })
	r.docs = append(r.docs, o)
}

func (r *docRenderer) remove(o *openDoc) {
	o.doc.Close()
	r.docs = slices.DeleteFunc(r.docs, func(x *openDoc) bool { return x == o })
}
