package crdt

import (
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"hash"
	"slices"
)

// RowKey names a row within a tenant.
type RowKey struct {
	Collection string
	Row        string
}

func (k RowKey) compare(o RowKey) int {
	return cmp.Or(cmp.Compare(k.Collection, o.Collection), cmp.Compare(k.Row, o.Row))
}

// State is an in-memory replica: the merge state of every row it has seen.
// It is the reference model the stores are tested against, and what the
// property tests drive directly. The zero State is empty and ready to use.
// State is not safe for concurrent use.
type State struct {
	rows map[RowKey]*Row
}

// Row returns the state of a row, or nil if the replica never saw it. The
// returned row must not be modified.
func (s *State) Row(k RowKey) *Row { return s.rows[k] }

// Len returns the number of rows seen, alive or deleted.
func (s *State) Len() int { return len(s.rows) }

// Keys returns the keys of every row seen, sorted.
func (s *State) Keys() []RowKey {
	keys := make([]RowKey, 0, len(s.rows))
	for k := range s.rows {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, RowKey.compare)
	return keys
}

// OpEffect is the effect of one op of a transaction.
type OpEffect struct {
	Op *Op
	Effect
}

// Apply applies every op of tx. If any op is malformed it returns the error
// and the state is unchanged: transactions are atomic.
func (s *State) Apply(tx *Tx) ([]OpEffect, error) {
	if err := tx.Validate(); err != nil {
		return nil, err
	}
	if s.rows == nil {
		s.rows = make(map[RowKey]*Row)
	}
	d := tx.Dot()
	effects := make([]OpEffect, 0, len(tx.Ops))
	for i := range tx.Ops {
		op := &tx.Ops[i]
		k := RowKey{op.Collection, op.Row}
		r := s.rows[k]
		if r == nil {
			r = &Row{}
			s.rows[k] = r
		}
		eff, err := r.Apply(op, d)
		if err != nil {
			panic("crdt: op failed after validation: " + err.Error())
		}
		effects = append(effects, OpEffect{Op: op, Effect: eff})
	}
	return effects, nil
}

// Join merges another replica's state into s.
func (s *State) Join(o *State) {
	if s.rows == nil {
		s.rows = make(map[RowKey]*Row)
	}
	for k, r := range o.rows {
		if mine, ok := s.rows[k]; ok {
			j := mine.Join(*r)
			s.rows[k] = &j
		} else {
			j := Row{}.Join(*r)
			s.rows[k] = &j
		}
	}
}

// Hash returns the canonical state hash. Replicas that saw the same set of
// transactions, in any order and with any duplicates, have equal hashes.
func (s *State) Hash() [32]byte {
	h := NewHasher()
	for _, k := range s.Keys() {
		h.Add(k, s.rows[k])
	}
	return h.Sum()
}

// Hasher computes the canonical state hash incrementally. Rows must be
// added in (collection, row) order, each exactly once; stores use it to
// hash their contents without building a [State].
type Hasher struct {
	sum  hash.Hash
	buf  []byte
	last RowKey
	n    int
}

// NewHasher returns an empty Hasher.
func NewHasher() *Hasher { return &Hasher{sum: sha256.New()} }

// Add adds one row. It panics if rows arrive out of order: that is a bug in
// the caller, and a silently wrong hash would hide divergence.
func (h *Hasher) Add(k RowKey, r *Row) {
	if h.n > 0 && k.compare(h.last) <= 0 {
		panic("crdt: Hasher.Add called out of order")
	}
	h.last, h.n = k, h.n+1
	h.buf = h.buf[:0]
	h.buf = appendString(h.buf, k.Collection)
	h.buf = appendString(h.buf, k.Row)
	row := encodeRow(r, true)
	h.buf = appendString(h.buf, string(row))
	h.sum.Write(h.buf)
}

// Sum returns the hash of the rows added so far.
func (h *Hasher) Sum() [32]byte {
	var out [32]byte
	copy(out[:], h.sum.Sum(nil))
	return out
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}
