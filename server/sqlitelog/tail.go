package sqlitelog

import (
	"container/list"
	"sync"

	"github.com/unosync/uno/crdt"
	usync "github.com/unosync/uno/sync"
)

// tails keeps tenants' newest entries in memory, decoded and encoded, so
// that tailing readers (every connection, after every append) do not each
// query and decode them again, and a fan-out encodes each entry once. It
// also knows those tenants' heads. The log's process is the database's
// only writer, so what it holds stays exact.
//
// It is bounded by bytes and by tenants: a tenant's tail keeps at most
// half the budget, and the tenants appended to least recently are
// evicted first. An evicted tenant's readers read the database.
type tails struct {
	maxBytes, maxTenants int

	mu    sync.RWMutex
	m     map[string]*list.Element // of *tail
	lru   list.List                // most recently appended to first
	bytes int
}

type tail struct {
	tenant  string
	head    uint64
	entries []usync.Change
	encoded [][]byte
	bytes   int // what entries and encoded hold, about
}

func newTails(maxBytes, maxTenants int) *tails {
	return &tails{maxBytes: maxBytes, maxTenants: maxTenants, m: map[string]*list.Element{}}
}

// entryCost is what one entry costs in memory: its encoding, and about as
// much again decoded.
func entryCost(enc []byte) int { return 2*len(enc) + 64 }

// add records committed entries (seq 0: skipped) and the tenant's new head.
func (c *tails) add(tenant string, txs []crdt.Tx, encs [][]byte, seqs []uint64, head uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[tenant]
	var t *tail
	if ok {
		t = e.Value.(*tail)
		c.lru.MoveToFront(e)
	} else {
		t = &tail{tenant: tenant}
		c.m[tenant] = c.lru.PushFront(t)
	}
	if len(t.entries) > 0 && t.entries[len(t.entries)-1].Seq != t.head {
		c.drop(t) // not contiguous with what it holds
	}
	for _, seq := range seqs {
		if seq != 0 {
			if seq != t.head+1 {
				c.drop(t) // the head moved without this log (a deletion by another process)
			}
			break
		}
	}
	for i, seq := range seqs {
		if seq != 0 {
			t.entries = append(t.entries, usync.Change{Seq: seq, Tx: txs[i]})
			t.encoded = append(t.encoded, encs[i])
			t.bytes += entryCost(encs[i])
			c.bytes += entryCost(encs[i])
		}
	}
	t.head = head
	// One tenant keeps at most half the budget: drop its oldest entries.
	if t.bytes > c.maxBytes/2 {
		n := 0
		for t.bytes > c.maxBytes/4 && n < len(t.entries) {
			t.bytes -= entryCost(t.encoded[n])
			c.bytes -= entryCost(t.encoded[n])
			n++
		}
		t.entries = append([]usync.Change(nil), t.entries[n:]...)
		t.encoded = append([][]byte(nil), t.encoded[n:]...)
	}
	for (c.bytes > c.maxBytes || c.lru.Len() > c.maxTenants) && c.lru.Len() > 1 {
		old := c.lru.Back()
		c.drop(old.Value.(*tail))
		c.lru.Remove(old)
		delete(c.m, old.Value.(*tail).tenant)
	}
}

// forget removes the tenant: its entries and head are read from the
// database again.
func (c *tails) forget(tenant string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[tenant]; ok {
		c.drop(e.Value.(*tail))
		c.lru.Remove(e)
		delete(c.m, tenant)
	}
}

func (c *tails) drop(t *tail) {
	c.bytes -= t.bytes
	t.entries, t.encoded, t.bytes = nil, nil, 0
}

// head returns the tenant's head, if known.
func (c *tails) head(tenant string) (uint64, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if e, ok := c.m[tenant]; ok {
		return e.Value.(*tail).head, true
	}
	return 0, false
}

// read returns up to limit entries after after, and at most about
// maxBytes of encodings (at least one), if the tail holds them. The
// entries are the tail's own, not copies (server.Log.Read: readers do
// not modify them): add only appends past them, and a trim copies.
func (c *tails) read(tenant string, after uint64, limit, maxBytes int) ([]usync.Change, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	e, ok := c.m[tenant]
	if !ok {
		return nil, false
	}
	t := e.Value.(*tail)
	if len(t.entries) == 0 || after+1 < t.entries[0].Seq || after > t.entries[len(t.entries)-1].Seq {
		return nil, false
	}
	i := int(after + 1 - t.entries[0].Seq)
	n, size := 0, 0
	for j := i; j < len(t.entries) && n < limit; j++ {
		size += len(t.encoded[j])
		if n > 0 && maxBytes > 0 && size > maxBytes {
			break
		}
		n++
	}
	return t.entries[i : i+n : i+n], true // capped: a caller's append copies
}

// encodings returns the encodings of entries (the tenant's, in order, as
// Read returned them, though some may be left out), if held.
func (c *tails) encodings(tenant string, entries []usync.Change) ([][]byte, bool) {
	if len(entries) == 0 {
		return nil, false
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	e, ok := c.m[tenant]
	if !ok {
		return nil, false
	}
	t := e.Value.(*tail)
	first, last := entries[0].Seq, entries[len(entries)-1].Seq
	if len(t.entries) == 0 || first < t.entries[0].Seq || last > t.entries[len(t.entries)-1].Seq {
		return nil, false
	}
	i := int(first - t.entries[0].Seq)
	if last-first+1 == uint64(len(entries)) {
		for j := range entries {
			if !sameTx(&entries[j].Tx, &t.entries[i+j].Tx) {
				return nil, false // not this tenant's entries
			}
		}
		return t.encoded[i : i+len(entries)], true
	}
	// Some left out (an author's own, for its connection): one by one.
	out := make([][]byte, len(entries))
	for j := range entries {
		seq, base := entries[j].Seq, t.entries[0].Seq
		k := seq - base
		if seq < base || k >= uint64(len(t.entries)) || !sameTx(&entries[j].Tx, &t.entries[k].Tx) {
			return nil, false
		}
		out[j] = t.encoded[k]
	}
	return out, true
}

// sameTx reports whether a and b are the same transaction of a tenant's
// log, where (site, seq) names one.
func sameTx(a, b *crdt.Tx) bool {
	return a.Site == b.Site && a.Seq == b.Seq && a.Time == b.Time && len(a.Ops) == len(b.Ops)
}

// size returns the bytes and tenants held.
func (c *tails) size() (bytes, tenants int) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.bytes, c.lru.Len()
}
