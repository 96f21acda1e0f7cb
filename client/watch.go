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
	mu         sync.Mutex
	err        error

	// rows holds the last result's rows by ID with the merge state each
	// was built from, so a refresh decodes and resolves only the rows
	// whose state changed (store.Query.Known). Only the goroutine that
	// queries uses it: Watch for the first result, then run.
	rows map[string]watchRow
	// spare is the map rows held before the last query, emptied: the
	// next query fills it rather than make a map (with room for every
	// row) each time. A map per refresh was the largest allocation of a
	// receiver's delivery in the 49-receiver paced benchmark.
	spare   map[string]watchRow
	h       hash.Hash // for docSum
	decoded int       // rows the last query built afresh, for tests
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
		var err error
		docs, sum, err = w.query(ctx)
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
	return out, fp.Sum(nil), nil
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

// notify wakes the watches on the collections of the changed rows.
func (c *Client) notify(changed []crdt.RowKey) {
	if len(changed) == 0 {
		return
	}
	colls := map[string]bool{}
	for _, k := range changed {
		colls[k.Collection] = true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for w := range c.watchers {
		if colls[w.collection] {
			select {
			case w.wake <- struct{}{}:
			default: // already woken; it will see this change too
			}
		}
	}
}
