package client

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"hash"
	"io"
	"maps"
	"slices"
	"sync"

	"github.com/unosync/uno/crdt"
	"github.com/unosync/uno/store"
)

// Watch is a live query. Its channel C receives the query's result when the
// watch starts and again each time a committed change (local or merged)
// alters the result. Nothing polls: each commit wakes the watches on the
// collections it changed. A slow reader never blocks writers: C holds only
// the latest result, replacing one not yet received.
//
// A watch of a whole collection (no Where, no Limit, ordered by ID)
// whose store reports each commit's rows (the client's own SQLite store
// does) updates its result from the committed rows, without reading the
// collection again; other watches run their query again after each
// commit that touches their collection.
type Watch struct {
	// C receives results. It is closed when the watch stops: by Close, by
	// the context given to Watch ending, by the client closing, or by a
	// query error (see Err).
	C <-chan []Doc

	c          *Client
	collection string
	q          Query
	out        chan []Doc
	wake       chan struct{}
	done       chan struct{}
	stopOnce   sync.Once
	// whole says the query is one patch can answer: every live row of
	// the collection, by ID (see offer).
	whole bool

	mu  sync.Mutex
	err error
	// What changed since the last result (under mu): the rows the store
	// reported, by ID, to patch in; or requery, to run the query again
	// (a change not reported with its row, or one that came while the
	// query ran, which may or may not have seen it). querying is set
	// while the query runs.
	pend     map[string]*crdt.Row
	requery  bool
	querying bool

	// rows holds the last result's rows by ID with the merge state each
	// was built from, so a refresh decodes and resolves only the rows
	// whose state changed (store.Query.Known). Only the goroutine that
	// queries uses it: Watch for the first result, then run.
	rows map[string]watchRow
	// spare is the map rows held before the last query, emptied: the
	// next query fills it rather than make a map (with room for every
	// row) each time. A map per refresh was the largest allocation of a
	// receiver's delivery in the 49-receiver paced benchmark.
	spare map[string]watchRow
	h     hash.Hash // for docSum
	// kept says rows holds every row of the last result (none was too
	// big to keep), so patch can build the next one from it.
	kept    bool
	decoded int // rows the last query built afresh, for tests
	patched int // rows the last patch built, for tests; -1 after a query
}

// watchRow is a row of a Watch's last result: the Doc built from state
// (never handed out: the app gets copies) and its docSum.
type watchRow struct {
	state []byte
	doc   Doc
	sum   [sha256.Size]byte
}

// Watch starts a live query on the collection. Stop it with [Watch.Close].
func (col *Collection) Watch(ctx context.Context, q Query) (*Watch, error) {
	c := col.c
	if err := c.check(); err != nil {
		return nil, err
	}
	if err := c.checkCollection(col.name); err != nil {
		return nil, err
	}
	if err := c.checkFields(col.name, q); err != nil {
		return nil, err
	}
	w := &Watch{
		c:          c,
		collection: col.name,
		q:          q,
		out:        make(chan []Doc, 1),
		wake:       make(chan struct{}, 1),
		done:       make(chan struct{}),
		h:          sha256.New(),
		whole:      len(q.Where) == 0 && q.Limit == 0 && (q.OrderBy == "" || q.OrderBy == "id"),
		querying:   true, // the first query, below
	}
	w.C = w.out
	// Register before the first query, so a commit between the two wakes
	// the watch instead of being missed.
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, ErrClosed
	}
	c.watchers[w] = struct{}{}
	c.mu.Unlock()
	// Run the query once now, so a bad query fails here rather than later.
	first, sum, err := w.query(ctx)
	w.mu.Lock()
	w.querying = false
	w.mu.Unlock()
	if err != nil {
		w.Close()
		return nil, err
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, ErrClosed
	}
	c.wg.Add(1)
	c.mu.Unlock()
	go func() {
		defer c.wg.Done()
		w.run(ctx, first, sum)
	}()
	return w, nil
}

// Close stops the watch and closes C.
func (w *Watch) Close() {
	w.c.mu.Lock()
	delete(w.c.watchers, w)
	w.c.mu.Unlock()
	w.stop()
}

func (w *Watch) stop() { w.stopOnce.Do(func() { close(w.done) }) }

// Err returns the error that stopped the watch, if any.
func (w *Watch) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

func (w *Watch) run(ctx context.Context, docs []Doc, sum []byte) {
	defer close(w.out)
	defer w.Close()
	var last []byte
	for {
		if !bytes.Equal(sum, last) {
			last = sum
			select { // replace a result the reader has not taken yet
			case <-w.out:
			default:
			}
			w.out <- docs
		}
		select {
		case <-w.wake:
		case <-w.done:
			return
		case <-ctx.Done():
			return
		}
		// Changes reported before the query starts are in what it reads:
		// their rows are dropped.
		w.mu.Lock()
		pend, requery := w.pend, w.requery || (len(w.pend) > 0 && !w.kept)
		w.pend, w.requery, w.querying = nil, false, requery
		w.mu.Unlock()
		var err error
		switch {
		case requery:
			docs, sum, err = w.query(ctx)
			w.mu.Lock()
			w.querying = false
			w.mu.Unlock()
		case len(pend) > 0:
			docs, sum, err = w.patch(pend)
		default:
			continue // woken for changes a patch already took
		}
		if err != nil {
			w.mu.Lock()
			w.err = err
			w.mu.Unlock()
			return
		}
	}
}

// query runs the watch's query. It returns the result, each row a copy of
// the one the watch keeps, and the result's fingerprint. A row whose
// stored state is the one it was built from last time is not decoded or
// resolved again: in a 100-row live query after a write to one row,
// decoding and resolving the other 99 were a third of the refresh.
func (w *Watch) query(ctx context.Context) ([]Doc, []byte, error) {
	c := w.c // Watch checked the collection and the fields
	sq := store.Query{Collection: w.collection, Where: w.q.Where, OrderBy: w.q.OrderBy, Desc: w.q.Desc, Limit: w.q.Limit}
	if len(w.rows) > 0 {
		sq.Known = func(id string, state []byte) bool {
			r, ok := w.rows[id]
			return ok && bytes.Equal(r.state, state)
		}
	}
	rows, err := c.store.Query(ctx, sq)
	if err != nil {
		return nil, nil, err
	}
	next := w.spare
	if next == nil {
		next = make(map[string]watchRow, len(rows))
	}
	w.spare = nil
	out := make([]Doc, len(rows))
	fp := sha256.New()
	w.decoded = 0
	for i, r := range rows {
		wr, ok := w.rows[r.ID]
		if r.Row != nil || !ok {
			w.decoded++
			d, err := newDoc(c.cfg.Schema, w.collection, r.ID, r.Row)
			if err != nil {
				return nil, nil, err
			}
			wr = watchRow{state: r.State, doc: d, sum: docSum(w.h, d)}
		}
		// A store that keeps no encoded state is asked nothing; a result
		// too big to keep twice is decoded whole each time.
		if wr.state != nil && len(rows) <= maxWatchRows {
			next[r.ID] = wr
		}
		out[i] = wr.doc.clone()
		fp.Write(wr.sum[:])
	}
	if w.rows != nil {
		clear(w.rows) // the states it holds go to the collector
		w.spare = w.rows
	}
	w.rows = next
	w.kept = len(next) == len(rows)
	w.patched = -1
	return out, fp.Sum(nil), nil
}

// patch builds the next result of a whole-collection watch from the last
// one and the rows reported since, by ID: a live row is put in (its Doc
// built from the row), any other taken out. It reads nothing: a remote
// one-field change reached a watch of its collection in about a third of
// the CPU time a query took.
func (w *Watch) patch(pend map[string]*crdt.Row) ([]Doc, []byte, error) {
	c := w.c
	w.patched = 0
	for id, r := range pend {
		if !r.Alive() {
			delete(w.rows, id)
			continue
		}
		d, err := newDoc(c.cfg.Schema, w.collection, id, r)
		if err != nil {
			return nil, nil, err
		}
		w.patched++
		// No state: a query after this one builds the row again.
		w.rows[id] = watchRow{doc: d, sum: docSum(w.h, d)}
	}
	w.kept = len(w.rows) <= maxWatchRows
	ids := slices.Sorted(maps.Keys(w.rows))
	if w.q.Desc {
		slices.Reverse(ids)
	}
	out := make([]Doc, len(ids))
	fp := sha256.New()
	for i, id := range ids {
		wr := w.rows[id]
		out[i] = wr.doc.clone()
		fp.Write(wr.sum[:])
	}
	return out, fp.Sum(nil), nil
}

// offer tells the watch of a commit's changed rows, and their states when
// rows is not nil (as the store reported them, in commit order). It
// reports whether any was in its collection.
func (w *Watch) offer(keys []crdt.RowKey, rows []*crdt.Row) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	hit := false
	for i, k := range keys {
		if k.Collection != w.collection {
			continue
		}
		hit = true
		if w.requery {
			continue // the rows go: the query reads them
		}
		if rows == nil || !w.whole || w.querying || hasDoc(rows[i]) || len(w.pend) >= maxWatchRows {
			// A document field's value is built from the stored state,
			// which keeps the document apart (crdt.EncodeRowSplit).
			w.pend, w.requery = nil, true
			continue
		}
		if w.pend == nil {
			w.pend = make(map[string]*crdt.Row)
		}
		w.pend[k.Row] = rows[i]
	}
	return hit
}

// hasDoc reports whether r has a document field.
func hasDoc(r *crdt.Row) bool {
	for i := range r.Fields {
		if r.Fields[i].Kind == crdt.KindDoc {
			return true
		}
	}
	return false
}

// maxWatchRows is the largest result whose rows a Watch keeps (with their
// states) for its next refresh: ~1 KB each for small rows, beside the
// copies the app holds.
const maxWatchRows = 10_000

// clone returns a copy of d whose maps the app may change.
func (d Doc) clone() Doc {
	d.Fields = maps.Clone(d.Fields)
	if d.Siblings != nil {
		d.Siblings = maps.Clone(d.Siblings)
		for name, sibs := range d.Siblings {
			d.Siblings[name] = slices.Clone(sibs)
		}
	}
	return d
}

// fingerprint identifies a result: IDs, order and field values, as the
// docSum of each row in order. A Watch keeps each row's docSum with the
// row (see query).
func fingerprint(docs []Doc) []byte {
	fp, h := sha256.New(), sha256.New()
	for _, d := range docs {
		sum := docSum(h, d)
		fp.Write(sum[:])
	}
	return fp.Sum(nil)
}

// docSum hashes a row with h (reset first): its ID and fields, each
// string with its length first, the fields in name order (not through
// Doc.JSON: marshalling every row's fields took a third of a 100-row
// Watch's refresh).
func docSum(h hash.Hash, d Doc) (sum [sha256.Size]byte) {
	h.Reset()
	var n [binary.MaxVarintLen64]byte
	length := func(l int) { h.Write(n[:binary.PutUvarint(n[:], uint64(l))]) }
	blob := func(b []byte) { length(len(b)); h.Write(b) }
	str := func(s string) { length(len(s)); io.WriteString(h, s) }
	str(d.ID)
	names := slices.Sorted(maps.Keys(d.Fields))
	length(len(names))
	for _, name := range names {
		str(name)
		blob(d.Fields[name])
	}
	sibs := slices.Sorted(maps.Keys(d.Siblings))
	length(len(sibs))
	for _, name := range sibs {
		str(name)
		length(len(d.Siblings[name]))
		for _, v := range d.Siblings[name] {
			blob(v.Value)
		}
	}
	h.Sum(sum[:0])
	return sum
}

// notify wakes the watches on the collections a commit changed, unless
// the store reported it already (changed).
func (c *Client) notify(commit *store.Commit) {
	if commit == nil || commit.Reported {
		return
	}
	c.changed(commit.Changed, nil)
}

// changed tells the watches on the collections of keys that the rows
// changed, with their new states when rows is not nil, and wakes them.
// The store calls it (set by OnChange) under its write lock.
func (c *Client) changed(keys []crdt.RowKey, rows []*crdt.Row) {
	if len(keys) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for w := range c.watchers {
		if w.offer(keys, rows) {
			select {
			case w.wake <- struct{}{}:
			default: // already woken; it will see this change too
			}
		}
	}
}
