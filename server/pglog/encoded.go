package pglog

import (
	"container/list"
	"sync"

	"github.com/unosync/uno/crdt"
	"github.com/unosync/uno/server"
	usync "github.com/unosync/uno/sync"
)

var _ server.EncodedTail = (*Log)(nil)

// encodedBytes bounds the encodings a Log keeps (server.EncodedTail):
// 16 MiB, about the newest few thousand entries of the tenants served.
const encodedBytes = 16 << 20

// Encoded implements server.EncodedTail: the encodings of entries (as
// Read returned them for the tenant) when this node appended or read them
// lately, so a fan-out to many connections encodes each entry once.
func (l *Log) Encoded(tenant string, entries []usync.Change) ([][]byte, bool) {
	return l.encoded.get(tenant, entries)
}

// encodings keeps the encodings of entries this node appended or read,
// keyed by tenant and seq. A committed entry never changes, so what it
// keeps stays right, with one exception: a tenant deleted (by any node)
// starts its log again from 1. Each entry asked for is therefore checked
// against the transaction kept, by its (site, seq), which names one
// transaction in a tenant's log, its time and its number of ops.
//
// It is bounded by bytes; the entries stored first go first.
type encodings struct {
	max int

	mu    sync.Mutex
	m     map[encKey]*list.Element // of *encoding
	fifo  list.List                // stored last at the front
	bytes int
}

type encKey struct {
	tenant string
	seq    uint64
}

type encoding struct {
	key  encKey
	site crdt.SiteID
	seq  uint64 // the site's
	time crdt.Timestamp
	ops  int
	enc  []byte
}

// same reports whether e was kept for tx.
func (e *encoding) same(tx *crdt.Tx) bool {
	return e.site == tx.Site && e.seq == tx.Seq && e.time == tx.Time && e.ops == len(tx.Ops)
}

func (e *encoding) cost() int { return len(e.enc) + len(e.key.tenant) + 128 }

func newEncodings(max int) *encodings {
	return &encodings{max: max, m: map[encKey]*list.Element{}}
}

// put keeps the encoding of the tenant's entry seq, tx.
func (c *encodings) put(tenant string, seq uint64, tx *crdt.Tx, enc []byte) {
	e := &encoding{key: encKey{tenant, seq}, site: tx.Site, seq: tx.Seq, time: tx.Time, ops: len(tx.Ops), enc: enc}
	if e.cost() > c.max/4 {
		return // one entry would crowd out the rest
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.m[e.key]; ok {
		if o := old.Value.(*encoding); o.same(tx) {
			return // every connection reads the same entries
		}
		c.bytes -= old.Value.(*encoding).cost()
		c.fifo.Remove(old)
	}
	c.m[e.key] = c.fifo.PushFront(e)
	c.bytes += e.cost()
	for c.bytes > c.max {
		last := c.fifo.Back()
		old := last.Value.(*encoding)
		c.fifo.Remove(last)
		delete(c.m, old.key)
		c.bytes -= old.cost()
	}
}

// get returns the encodings of entries, if it keeps every one.
func (c *encodings) get(tenant string, entries []usync.Change) ([][]byte, bool) {
	if len(entries) == 0 {
		return nil, false
	}
	out := make([][]byte, len(entries))
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range entries {
		el, ok := c.m[encKey{tenant, entries[i].Seq}]
		if !ok {
			return nil, false
		}
		e := el.Value.(*encoding)
		if !e.same(&entries[i].Tx) {
			return nil, false // another transaction: the tenant's log started again
		}
		out[i] = e.enc
	}
	return out, true
}

// size returns the bytes and entries kept.
func (c *encodings) size() (bytes, entries int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bytes, len(c.m)
}
