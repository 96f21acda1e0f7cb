package store

import (
	"bytes"
	"container/list"

	"github.com/unosync/uno/crdt"
)

// The row cache's bounds: rows an app writes again soon (a task edited
// twice, a counter, a document's row, the rows another replica keeps
// changing) are few at a time; a row's state is tens to hundreds of
// bytes, its documents' chunks being kept apart (chunkCache).
const (
	rowCacheRows  = 1024
	rowCacheBytes = 1 << 20
)

// rowCache holds the merge states of the rows the store's transactions
// wrote last, as stored, with where each is: a transaction on one of
// them decodes it from here instead of reading it back (one remote
// transaction applied to a row written before: BenchmarkApplyOne,
// 36.7–41.2 → 32.1–35.3 µs of CPU, alternated).
//
// A state enters the cache only from a committed transaction: putState,
// which every write of a row's state goes through, stages it in the
// transaction (writeTx.states), and commit moves the staged states here
// once COMMIT succeeded; a transaction rolled back leaves the cache as
// it was, which is what the file holds. Nothing else writes the file:
// the store holds it exclusively (the unix-excl VFS natively, EXCLUSIVE
// locking mode in the browser), and a commit that fails empties the
// cache, its outcome not being known. It is bounded by rows and bytes,
// the least recently used going first, and guarded by the store's mu,
// as the transactions that use it are.
type rowCache struct {
	maxRows, maxBytes int
	bytes             int
	entries           map[crdt.RowKey]*list.Element // of *cachedRow
	order             list.List                     // most recently used first
	hits              int                           // for tests
}

// cachedRow is a row's merge state as stored (nil: not stored, where ==
// nowhere) and where it is stored.
type cachedRow struct {
	key   crdt.RowKey
	state []byte
	where place
}

func newRowCache(maxRows, maxBytes int) *rowCache {
	return &rowCache{maxRows: maxRows, maxBytes: maxBytes, entries: map[crdt.RowKey]*list.Element{}}
}

// get returns k's cached state, if any.
func (c *rowCache) get(k crdt.RowKey) (*cachedRow, bool) {
	e, ok := c.entries[k]
	if !ok {
		return nil, false
	}
	c.order.MoveToFront(e)
	c.hits++
	return e.Value.(*cachedRow), true
}

// put records k's state as committed; the cache keeps its own copy.
func (c *rowCache) put(k crdt.RowKey, state []byte, where place) {
	c.drop(k)
	size := len(state) + len(k.Collection) + len(k.Row)
	if size > c.maxBytes/4 {
		return // one row must not push out all the others
	}
	c.entries[k] = c.order.PushFront(&cachedRow{key: k, state: bytes.Clone(state), where: where})
	c.bytes += size
	for c.order.Len() > c.maxRows || c.bytes > c.maxBytes {
		c.drop(c.order.Back().Value.(*cachedRow).key)
	}
}

// committed records the states a transaction committed. One that wrote
// more rows than the cache holds (a bootstrap's chunk) empties it instead:
// most would only push the others out.
func (c *rowCache) committed(states map[crdt.RowKey]cachedRow) {
	if len(states) > c.maxRows {
		c.clear()
		return
	}
	for k, r := range states {
		c.put(k, r.state, r.where)
	}
}

// drop forgets k.
func (c *rowCache) drop(k crdt.RowKey) {
	e, ok := c.entries[k]
	if !ok {
		return
	}
	r := c.order.Remove(e).(*cachedRow)
	delete(c.entries, k)
	c.bytes -= len(r.state) + len(k.Collection) + len(k.Row)
}

// clear forgets every row.
func (c *rowCache) clear() {
	clear(c.entries)
	c.order.Init()
	c.bytes = 0
}
