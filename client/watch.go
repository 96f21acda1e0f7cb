package client

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"io"
	"maps"
	"slices"
	"sync"

	"github.com/unosync/uno/crdt"
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
	first, err := c.find(ctx, col.name, q)
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
		w.run(ctx, first)
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

func (w *Watch) run(ctx context.Context, docs []Doc) {
	defer close(w.out)
	defer w.Close()
	var last []byte
	for {
		if sum := fingerprint(docs); !bytes.Equal(sum, last) {
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
		docs, err = w.c.find(ctx, w.collection, w.q)
		if err != nil {
			w.mu.Lock()
			w.err = err
			w.mu.Unlock()
			return
		}
	}
}

// fingerprint identifies a result: IDs, order and field values. Each
// string goes in with its length first, the fields in name order (not
// through Doc.JSON: marshalling every row's fields took a third of a
// 100-row Watch's re-query).
func fingerprint(docs []Doc) []byte {
	h := sha256.New()
	var n [binary.MaxVarintLen64]byte
	length := func(l int) { h.Write(n[:binary.PutUvarint(n[:], uint64(l))]) }
	var names []string
	for _, d := range docs {
		length(len(d.ID))
		io.WriteString(h, d.ID)
		names = slices.AppendSeq(names[:0], maps.Keys(d.Fields))
		slices.Sort(names)
		length(len(names))
		for _, name := range names {
			length(len(name))
			io.WriteString(h, name)
			length(len(d.Fields[name]))
			h.Write(d.Fields[name])
		}
		sibs := slices.Sorted(maps.Keys(d.Siblings))
		length(len(sibs))
		for _, name := range sibs {
			length(len(name))
			io.WriteString(h, name)
			length(len(d.Siblings[name]))
			for _, v := range d.Siblings[name] {
				length(len(v.Value))
				h.Write(v.Value)
			}
		}
	}
	return h.Sum(nil)
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
