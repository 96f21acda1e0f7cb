package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"

	"github.com/unosync/uno/crdt"
	"github.com/unosync/uno/store"
)

// ErrDocUnavailable is crdt.ErrDocUnavailable: this build cannot read or
// edit doc fields (a native build without cgo). It still stores and syncs
// them.
var ErrDocUnavailable = crdt.ErrDocUnavailable

// Path addresses a value inside a doc field: map keys (string) and list
// indexes (int) from the document's root map, as in
// Path{"items", 0, "title"}.
type Path = crdt.Path

// DocEdit edits one doc field (an Automerge document) inside a
// transaction: collaborative text, nested maps and lists, counters.
// Concurrent edits made elsewhere merge with these character by
// character. The edits become one Automerge change when the transaction's
// function returns, and commit with its other writes, atomically. A DocEdit
// is valid only inside its transaction.
type DocEdit struct {
	tx    *Tx
	key   crdt.RowKey
	field string
	doc   *crdt.Document
	base  [][]byte // the chunks of the state doc was opened at
}

// Doc opens a doc field of a row for editing, creating the row if needed.
// Opening the same field twice in a transaction returns the same DocEdit.
func (tx *Tx) Doc(collection, id, field string) (*DocEdit, error) {
	k, err := tx.key(collection, id)
	if err != nil {
		return nil, err
	}
	if _, err := tx.kind(collection, field, crdt.KindDoc); err != nil {
		return nil, err
	}
	for _, e := range tx.docs {
		if e.key == k && e.field == field {
			return e, nil
		}
	}
	r, err := tx.b.Row(k)
	if err != nil {
		return nil, err
	}
	state := &crdt.DocState{}
	if f, ok := r.Field(field); ok && r.Alive() {
		if f.Kind != crdt.KindDoc {
			return nil, fmt.Errorf("%w: %s.%s is a %s; %s", ErrKindMismatch, collection, field, f.Kind, kindHint(f.Kind))
		}
		state = &f.Doc
	}
	d, err := store.TakeDoc(state, tx.b.Tx().Site)
	if err != nil {
		return nil, err
	}
	e := &DocEdit{tx: tx, key: k, field: field, doc: d, base: slices.Clip(state.Chunks)}
	tx.docs = append(tx.docs, e)
	return e, nil
}

// commitDocs turns each opened document's edits into a change op. Each
// document goes back to the store's open documents (store.KeepDoc) as
// soon as it holds the field's new state, before the change is applied:
// the store renders the field's column from it, a compaction the change
// brings saves it, and the next edit takes it again. If the transaction
// then fails, the store holds a document of a state never stored, which
// no stored state matches: the next edit opens the stored one.
func (tx *Tx) commitDocs() error {
	for len(tx.docs) > 0 {
		e := tx.docs[0]
		ch, err := e.doc.Commit(tx.b.Tx().Time)
		if err == nil && ch != nil && len(ch) > tx.c.cfg.MaxValueBytes {
			err = fmt.Errorf("%w: doc change of %d bytes to %s.%s, max %d (Config.MaxValueBytes): commit smaller edits", ErrTooLarge, len(ch), e.key.Collection, e.field, tx.c.cfg.MaxValueBytes)
		}
		if err != nil {
			return fmt.Errorf("doc %s/%s.%s: %w", e.key.Collection, e.key.Row, e.field, err)
		}
		tx.docs = tx.docs[1:]
		if ch == nil {
			store.KeepDoc(e.base, e.doc, tx.b.Tx().Site)
			continue
		}
		store.KeepDoc(append(e.base, ch), e.doc, tx.b.Tx().Site)
		if err := tx.b.Change(e.key, e.field, ch); err != nil {
			return err
		}
	}
	return nil
}

// releaseDocs drops the documents a failed transaction opened and did
// not hand back: they hold edits that never happened.
func (tx *Tx) releaseDocs() {
	for _, e := range tx.docs {
		e.doc.Close()
	}
	tx.docs = nil
}

// Splice edits the text at path: deletes del characters at pos and
// inserts text there (a missing value becomes an empty text first).
// Positions count Unicode code points natively, UTF-16 code units in the
// browser.
func (e *DocEdit) Splice(path Path, pos, del int, text string) error {
	return e.doc.Splice(path, pos, del, text)
}

// Put sets the value at path to value (anything encoding/json encodes),
// creating missing maps on the way. Strings are stored whole, not as
// collaborative text: use Splice for text. An index one past the end of a
// list appends.
func (e *DocEdit) Put(path Path, value any) error {
	b, err := json.Marshal(value)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidValue, err)
	}
	return e.doc.Put(path, b)
}

// Insert inserts value into the list at path before index i.
func (e *DocEdit) Insert(path Path, i int, value any) error {
	b, err := json.Marshal(value)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidValue, err)
	}
	return e.doc.Insert(path, i, b)
}

// Delete removes the map key or list element at path.
func (e *DocEdit) Delete(path Path) error { return e.doc.Delete(path) }

// Increment adds delta to the counter at path, creating it at zero.
// Concurrent increments add up.
func (e *DocEdit) Increment(path Path, delta int64) error { return e.doc.Increment(path, delta) }

// Text returns the text (or string) at path as edited so far.
func (e *DocEdit) Text(path Path) (string, error) { return e.doc.Text(path) }

// JSON returns the document as edited so far, as a JSON object.
func (e *DocEdit) JSON() (json.RawMessage, error) { return e.doc.JSON() }

// EditDoc runs fn on a doc field of a row in its own transaction.
func (col *Collection) EditDoc(ctx context.Context, id, field string, fn func(*DocEdit) error) error {
	return col.c.Tx(ctx, func(tx *Tx) error {
		e, err := tx.Doc(col.name, id, field)
		if err != nil {
			return err
		}
		return fn(e)
	})
}

// Splice edits the text at path in a doc field in its own transaction:
// see [DocEdit.Splice].
func (col *Collection) Splice(ctx context.Context, id, field string, path Path, pos, del int, text string) error {
	return col.EditDoc(ctx, id, field, func(e *DocEdit) error { return e.Splice(path, pos, del, text) })
}

// ReadDoc returns the value at path in a doc field's document as JSON
// (the whole document, a JSON object, for an empty path; null where
// nothing is).
func (col *Collection) ReadDoc(ctx context.Context, id, field string, path Path) (json.RawMessage, error) {
	var out json.RawMessage
	err := col.c.read(ctx, col.name, id, field, func(d *crdt.Document) error {
		var err error
		out, err = d.Get(path)
		return err
	})
	return out, err
}

// Text returns the text at path in a doc field ("" if there is none).
func (col *Collection) Text(ctx context.Context, id, field string, path Path) (string, error) {
	var out string
	err := col.c.read(ctx, col.name, id, field, func(d *crdt.Document) error {
		var err error
		out, err = d.Text(path)
		return err
	})
	return out, err
}

func (c *Client) checkDocField(collection, field string) error {
	if err := crdt.ValidName(field, true); err != nil {
		return err
	}
	if c.cfg.Schema == nil {
		return nil
	}
	if k := c.cfg.Schema.KindOf(collection, field); k != crdt.KindDoc {
		return fmt.Errorf("%w: %s.%s is a %s, not a doc", ErrKindMismatch, collection, field, k)
	}
	return nil
}

// read runs fn on a doc field's document as committed.
func (c *Client) read(ctx context.Context, collection, id, field string, fn func(*crdt.Document) error) error {
	if err := c.checkDocField(collection, field); err != nil {
		return err
	}
	if err := c.check(); err != nil {
		return err
	}
	r, err := c.store.Row(ctx, collection, id)
	if err != nil {
		return err
	}
	state := &crdt.DocState{}
	if r != nil && r.Alive() {
		if f, ok := r.Field(field); ok && f.Kind == crdt.KindDoc {
			state = &f.Doc
		}
	}
	return store.ReadDoc(state, fn)
}

// DocUpdate is a doc field's document after a change, with the paths the
// change touched: the leaves (or the smallest lists and texts) whose
// values differ from the last update sent.
type DocUpdate struct {
	JSON  json.RawMessage // the document, a JSON object; null once the row is gone
	Paths []Path
}

// DocWatch follows one doc field. Its channel C receives the document when
// the watch starts and again after each committed change (local or
// merged) to it. A slow reader never blocks writers: updates not yet
// received are coalesced, their paths merged, and the latest document is
// never lost.
type DocWatch struct {
	// C receives updates; it is closed when the watch stops (Close, the
	// context ending, the client closing, an error: see Err).
	C <-chan DocUpdate

	w    *Watch
	out  chan DocUpdate
	done chan struct{}
	mu   sync.Mutex
	err  error
}

// WatchDoc starts watching a doc field of a row. Stop it with Close.
func (col *Collection) WatchDoc(ctx context.Context, id, field string) (*DocWatch, error) {
	if err := col.c.checkDocField(col.name, field); err != nil {
		return nil, err
	}
	if err := crdt.ValidID(id); err != nil {
		return nil, err
	}
	w, err := col.Watch(ctx, Query{Where: []Cond{Where("id", "=", id)}})
	if err != nil {
		return nil, err
	}
	dw := &DocWatch{w: w, out: make(chan DocUpdate, 1), done: make(chan struct{})}
	dw.C = dw.out
	go dw.run(field)
	return dw, nil
}

func (dw *DocWatch) run(field string) {
	defer close(dw.out)
	defer close(dw.done)
	last := json.RawMessage("null")
	first := true
	var pending *DocUpdate
	for {
		var in <-chan []Doc = dw.w.C
		var out chan<- DocUpdate
		var send DocUpdate
		if pending != nil {
			out, send = dw.out, *pending
		}
		select {
		case docs, ok := <-in:
			if !ok {
				dw.mu.Lock()
				dw.err = dw.w.Err()
				dw.mu.Unlock()
				if pending != nil { // the latest document is never lost
					dw.out <- *pending
				}
				return
			}
			cur := json.RawMessage("null")
			if len(docs) == 1 {
				if v, ok := docs[0].Fields[field]; ok {
					cur = v
				}
			}
			if !first && bytes.Equal(cur, last) {
				continue
			}
			paths := DiffPaths(last, cur)
			if first {
				paths, first = nil, false
			}
			last = cur
			if pending == nil {
				pending = &DocUpdate{JSON: cur, Paths: paths}
			} else {
				pending.JSON = cur
				for _, p := range paths {
					if !slices.ContainsFunc(pending.Paths, func(q Path) bool { return slices.Equal(p, q) }) {
						pending.Paths = append(pending.Paths, p)
					}
				}
			}
		case out <- send:
			pending = nil
		}
	}
}

// Close stops the watch and closes C.
func (dw *DocWatch) Close() { dw.w.Close() }

// Err returns the error that stopped the watch, if any.
func (dw *DocWatch) Err() error {
	dw.mu.Lock()
	defer dw.mu.Unlock()
	return dw.err
}

// DiffPaths returns the paths at which two JSON documents differ: the
// keys added, removed or changed in objects, recursively; an array of
// another length, or a string or scalar that changed, as a whole.
func DiffPaths(a, b json.RawMessage) []Path {
	var va, vb any
	if json.Unmarshal(a, &va) != nil || json.Unmarshal(b, &vb) != nil {
		return []Path{{}}
	}
	var out []Path
	diffValues(nil, va, vb, &out)
	return out
}

func diffValues(at Path, a, b any, out *[]Path) {
	switch a := a.(type) {
	case map[string]any:
		if b, ok := b.(map[string]any); ok {
			keys := make([]string, 0, len(a)+len(b))
			for k := range a {
				keys = append(keys, k)
			}
			for k := range b {
				if _, ok := a[k]; !ok {
					keys = append(keys, k)
				}
			}
			slices.Sort(keys)
			for _, k := range keys {
				diffValues(append(slices.Clip(at), k), a[k], b[k], out)
			}
			return
		}
	case []any:
		if b, ok := b.([]any); ok && len(a) == len(b) {
			for i := range a {
				diffValues(append(slices.Clip(at), i), a[i], b[i], out)
			}
			return
		}
	}
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	if !bytes.Equal(ja, jb) {
		*out = append(*out, slices.Clone(at))
	}
}
