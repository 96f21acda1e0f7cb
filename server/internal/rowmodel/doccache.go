package rowmodel

import (
	"bytes"
	"container/list"
	"fmt"
	"sync"

	"github.com/unosync/uno/crdt"
)

// DocCache keeps the documents of the doc fields rendered last open, so
// that rendering a row again after a change applies only the chunks added
// since, rather than loading the whole document: loading a 100 KB text
// costs Automerge about 200 ms, applying a one-character change well
// under one. An open document is large: Automerge holds about 500 bytes
// of memory per character (a 100 KB text takes about 50 MB, whatever its
// saved size), so each document weighs docWeight times its JSON's length
// (at least its state's), and the cache is bounded by that estimate of
// memory (least recently rendered go first): it keeps the few documents
// being edited open, not every one. It is safe for concurrent use. A log
// keeps one and renders through [DocCache.Doc].
//
// A cached document is used only when the state is the cached one plus
// chunks appended after it, and its heads are then the state's: anything
// else (a compaction, a rolled-back append, a concurrent writer) loads the
// state afresh.
type DocCache struct {
	max int // estimated bytes of memory, over all documents

	mu    sync.Mutex
	size  int
	lru   *list.List // of *docEntry, most recently used first
	byKey map[docKey]*list.Element
}

// DefaultDocCacheBytes bounds a DocCache by default: the estimated
// memory of its open documents.
const DefaultDocCacheBytes = 256 << 20

// docWeight is the estimated memory of an open document per byte of its
// JSON (measured: about 500 bytes per character of text).
const docWeight = 512

type docKey struct {
	tenant string
	row    crdt.RowKey
	field  string
}

type docEntry struct {
	key    docKey
	doc    *crdt.Document
	chunks [][]byte // the checksum and length of each chunk loaded: a chunk's first 12 bytes at most
	bytes  int      // the estimated memory it holds
}

// NewDocCache returns a cache of documents holding at most about
// maxBytes of memory (0: DefaultDocCacheBytes).
func NewDocCache(maxBytes int) *DocCache {
	if maxBytes <= 0 {
		maxBytes = DefaultDocCacheBytes
	}
	return &DocCache{max: maxBytes, lru: list.New(), byKey: map[docKey]*list.Element{}}
}

// Doc is [Doc], rendering the tenant's row k with the cache's documents.
// A nil cache renders without one.
func (c *DocCache) Doc(tenant string, k crdt.RowKey, r *crdt.Row) []byte {
	if c == nil {
		return Doc(r)
	}
	return render(r, func(f *crdt.Field) ([]byte, bool) { return c.json(docKey{tenant, k, f.Name}, &f.Doc) })
}

// Verify checks that Automerge applies every change of the doc state s of
// the tenant's row k: that the document's heads are the state's. A change
// whose dependencies the document lacks passes every check of its own —
// it decodes, its author and sequence number are right — but Automerge
// holds it back, and every change after it, forever; a replica would show
// a document without them. A build without Automerge checks nothing.
func (c *DocCache) Verify(tenant string, k crdt.RowKey, field string, s *crdt.DocState) error {
	if c == nil || !crdt.DocEditing || len(s.Chunks) == 0 {
		return nil
	}
	key := docKey{tenant, k, field}
	e := c.take(key)
	if e == nil || !e.follows(s) {
		d, err := crdt.OpenDocument(s, crdt.SiteID{})
		if err != nil {
			return err
		}
		e = &docEntry{key: key, doc: d}
	} else {
		for _, ch := range s.Chunks[len(e.chunks):] {
			if err := e.doc.Apply(ch); err != nil {
				return err
			}
		}
	}
	if !s.HeadsAre(e.doc.Heads()) {
		return fmt.Errorf("%w: a change depends on changes the document does not have", crdt.ErrInvalidValue)
	}
	e.chunks = e.chunks[:0]
	for _, ch := range s.Chunks {
		e.chunks = append(e.chunks, bytes.Clone(chunkID(ch)))
	}
	e.bytes = max(e.bytes, s.Len())
	c.put(e)
	return nil
}

// json returns the JSON of the doc state s of key.
func (c *DocCache) json(key docKey, s *crdt.DocState) ([]byte, bool) {
	if !crdt.DocEditing {
		return nil, false
	}
	e := c.take(key)
	if e == nil || !e.follows(s) {
		d, err := crdt.OpenDocument(s, crdt.SiteID{})
		if err != nil {
			return nil, false
		}
		e = &docEntry{key: key, doc: d}
	} else {
		for _, ch := range s.Chunks[len(e.chunks):] {
			if err := e.doc.Apply(ch); err != nil {
				return docJSON(s)
			}
		}
		if !s.HeadsAre(e.doc.Heads()) {
			return docJSON(s)
		}
	}
	e.chunks = e.chunks[:0]
	for _, ch := range s.Chunks {
		e.chunks = append(e.chunks, bytes.Clone(chunkID(ch)))
	}
	j, err := e.doc.JSON()
	if err != nil {
		return nil, false
	}
	e.bytes = max(s.Len(), docWeight*len(j))
	c.put(e)
	return j, true
}

// follows reports whether s is the state e loaded plus chunks after it.
func (e *docEntry) follows(s *crdt.DocState) bool {
	if len(s.Chunks) < len(e.chunks) {
		return false
	}
	for i, id := range e.chunks {
		if !bytes.Equal(id, chunkID(s.Chunks[i])) {
			return false
		}
	}
	return true
}

// chunkID identifies an Automerge chunk by its header: magic, checksum
// (the first bytes of its hash), type and length.
func chunkID(ch []byte) []byte { return ch[:min(len(ch), 12):min(len(ch), 12)] }

// take removes key's entry from the cache and returns it (nil if none):
// a Document is not safe for concurrent use, so a renderer holds it alone.
func (c *DocCache) take(key docKey) *docEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.byKey[key]
	if !ok {
		return nil
	}
	e := c.lru.Remove(el).(*docEntry)
	delete(c.byKey, key)
	c.size -= e.bytes
	return e
}

// put puts e back (replacing an entry another renderer put meanwhile) and
// evicts the least recently used entries over the bound.
func (c *DocCache) put(e *docEntry) {
	if e.bytes > c.max {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.byKey[e.key]; ok {
		c.size -= c.lru.Remove(el).(*docEntry).bytes
	}
	c.byKey[e.key] = c.lru.PushFront(e)
	c.size += e.bytes
	for c.size > c.max {
		old := c.lru.Remove(c.lru.Back()).(*docEntry)
		delete(c.byKey, old.key)
		c.size -= old.bytes
	}
}
