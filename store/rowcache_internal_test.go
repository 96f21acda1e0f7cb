package store

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/unosync/uno/crdt"
)

// The row cache keeps the most recently used rows within its bounds of
// rows and bytes, keeps its own copy of a state, and forgets a row put
// again before it remembers it anew.
func TestRowCache_Bounds(t *testing.T) {
	key := func(i int) crdt.RowKey { return crdt.RowKey{Collection: "c", Row: strconv.Itoa(i)} }
	c := newRowCache(3, 1000)
	state := []byte("0123456789")
	for i := range 4 {
		c.put(key(i), state, inTable)
	}
	if _, ok := c.get(key(0)); ok {
		t.Error("4 rows in a cache of 3: the first is still there")
	}
	c.get(key(1)) // 1 is now the most recently used: 2 goes next
	c.put(key(4), state, inTable)
	if _, ok := c.get(key(2)); ok {
		t.Error("the least recently used row is still there")
	}
	state[0] = 'x'
	if r, ok := c.get(key(1)); !ok || string(r.state) != "0123456789" {
		t.Errorf("row 1: %v, %q; want its own copy of the state", ok, r.state)
	}
	c.put(key(1), nil, nowhere)
	if r, ok := c.get(key(1)); !ok || r.where != nowhere || len(c.entries) != 3 || c.order.Len() != 3 {
		t.Errorf("row 1 put again: %+v, %d entries, %d in order", r, len(c.entries), c.order.Len())
	}

	c = newRowCache(100, 100)
	for i := range 10 {
		c.put(key(i), state, inTable) // 12 bytes each with the key
	}
	if c.bytes > 100 || len(c.entries) != 8 {
		t.Errorf("%d bytes in %d rows; want at most 100 bytes, 8 rows", c.bytes, len(c.entries))
	}
	c.put(key(99), make([]byte, 30), inTable)
	if _, ok := c.get(key(99)); ok {
		t.Error("a row of over a quarter of the bytes was kept")
	}
	c.clear()
	if len(c.entries) != 0 || c.order.Len() != 0 || c.bytes != 0 {
		t.Errorf("after clear: %d entries, %d in order, %d bytes", len(c.entries), c.order.Len(), c.bytes)
	}

	// A transaction of more rows than the cache holds empties it: none
	// of its rows is kept, and none of the rows before it is left stale.
	c = newRowCache(3, 1000)
	c.put(key(0), state, inTable)
	c.committed(map[crdt.RowKey]cachedRow{key(1): {where: nowhere}, key(2): {where: nowhere}})
	if len(c.entries) != 3 {
		t.Errorf("after a transaction of 2 rows: %d cached, want 3", len(c.entries))
	}
	big := map[crdt.RowKey]cachedRow{}
	for i := range 4 {
		big[key(i)] = cachedRow{state: state, where: inDeleted}
	}
	c.committed(big)
	if len(c.entries) != 0 || c.bytes != 0 {
		t.Errorf("after a transaction of 4 rows in a cache of 3: %d cached (%d bytes), want none", len(c.entries), c.bytes)
	}
}

// The row cache changes no outcome: the same local writes (some failing
// after touching rows), remote transactions from another site and
// rollbacks of rejected writes, given to a store that caches rows'
// states and to one that reads every row from its file, leave the same
// rows, table for table; and the first did read rows from its cache.
func TestSQLite_RowCacheSameOutcome(t *testing.T) {
	hits := 0
	rapid.Check(t, func(rt *rapid.T) {
		var stores [2]*SQLite // caching, not
		base := time.Now()
		for n := range stores {
			stores[n] = openPreloadStore(rt, t, base, false)
			stores[n].testNoRowCache = n == 1
			defer stores[n].Close()
		}
		src, err := NewMemory(Options{Rand: bytes.NewReader(bytes.Repeat([]byte{5}, 16))})
		if err != nil {
			rt.Fatal(err)
		}
		errFail := errors.New("the app's function fails")
		for i := range rapid.IntRange(1, 16).Draw(rt, "steps") {
			ops := drawPreloadOps(rt, fmt.Sprint("w", i), i%2 == 0)
			switch step := rapid.IntRange(0, 3).Draw(rt, fmt.Sprint("step", i)); step {
			case 0, 1: // a local write, or one that fails after its ops
				for _, s := range stores {
					_, err := s.Write(rt.Context(), func(b *crdt.Builder) error {
						if err := applyPreloadOps(b, ops, i); err != nil {
							return err
						}
						if step == 1 {
							return errFail
						}
						return nil
					})
					if (step == 1) != errors.Is(err, errFail) || step == 0 && err != nil {
						rt.Fatalf("Write (step %d): %v", step, err)
					}
				}
			case 2: // a remote transaction
				c, err := src.Write(rt.Context(), func(b *crdt.Builder) error { return applyPreloadOps(b, ops, i) })
				if err != nil {
					rt.Fatal(err)
				}
				if c == nil || c.Tx == nil {
					continue
				}
				for _, s := range stores {
					if _, err := s.Apply(rt.Context(), []*crdt.Tx{c.Tx}); err != nil {
						rt.Fatalf("Apply: %v", err)
					}
				}
			case 3: // the server refuses the oldest write not acknowledged
				for _, s := range stores {
					out, err := s.Outbox(rt.Context(), 0, 1)
					if err != nil {
						rt.Fatal(err)
					}
					if len(out) == 0 {
						continue
					}
					// The server holds none of the rows it touched: each
					// goes back to what the later writes make of nothing.
					var rows []RowState
					for _, op := range out[0].Ops {
						k := crdt.RowKey{Collection: op.Collection, Row: op.Row}
						if !slices.ContainsFunc(rows, func(r RowState) bool { return r.Key == k }) {
							rows = append(rows, RowState{Key: k, Row: &crdt.Row{}})
						}
					}
					if _, err := s.Reject(rt.Context(), Rejection{Seq: out[0].Seq, Code: 1, Reason: "refused"}, rows); err != nil {
						rt.Fatalf("Reject: %v", err)
					}
					if err := s.Ack(rt.Context(), out[0].Seq); err != nil {
						rt.Fatalf("Ack: %v", err)
					}
				}
			}
		}
		if d0, d1 := dumpStates(rt, stores[0]), dumpStates(rt, stores[1]); !slices.Equal(d0, d1) {
			rt.Fatalf("stored rows differ:\n%q\nread from the file:\n%q", d0, d1)
		}
		hits += stores[0].rows.hits
		if stores[1].rows.hits != 0 {
			rt.Fatalf("the store that reads from its file hit its cache %d times", stores[1].rows.hits)
		}
	})
	if hits == 0 {
		t.Error("no transaction read a row from the cache")
	}
}
