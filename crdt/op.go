package crdt

import (
	"fmt"
	"slices"
)

// Dot names one write: the site that made it and the timestamp of its
// transaction. Dots order writes for last-writer-wins: by timestamp, then
// by site, so every replica picks the same winner.
type Dot struct {
	_    struct{} `cbor:",toarray"`
	Site SiteID
	Time Timestamp
}

// Compare orders dots by timestamp, then site.
func (d Dot) Compare(o Dot) int {
	switch {
	case d.Time < o.Time:
		return -1
	case d.Time > o.Time:
		return 1
	}
	return d.Site.Compare(o.Site)
}

func (d Dot) String() string { return fmt.Sprintf("%s@%s", d.Site.String()[:8], d.Time) }

// Context is a causal context: for each site, the latest timestamp of that
// site's writes that has been seen. Because each site's writes are applied
// in order, a dot is covered when its timestamp is at or below its site's
// entry. Context is kept sorted by site with one dot per site; treat it as
// a value (methods return new contexts).
type Context []Dot

// Covers reports whether the write d has been seen.
func (c Context) Covers(d Dot) bool {
	i, ok := slices.BinarySearchFunc(c, d.Site, func(e Dot, s SiteID) int { return e.Site.Compare(s) })
	return ok && c[i].Time >= d.Time
}

// Add returns c with d included.
func (c Context) Add(d Dot) Context {
	i, ok := slices.BinarySearchFunc(c, d.Site, func(e Dot, s SiteID) int { return e.Site.Compare(s) })
	if ok {
		if c[i].Time >= d.Time {
			return c
		}
		out := slices.Clone(c)
		out[i].Time = d.Time
		return out
	}
	out := make(Context, 0, len(c)+1)
	out = append(out, c[:i]...)
	out = append(out, d)
	return append(out, c[i:]...)
}

// Join returns the per-site maximum of c and o.
func (c Context) Join(o Context) Context {
	out := make(Context, 0, max(len(c), len(o)))
	i, j := 0, 0
	for i < len(c) && j < len(o) {
		switch cmp := c[i].Site.Compare(o[j].Site); {
		case cmp < 0:
			out = append(out, c[i])
			i++
		case cmp > 0:
			out = append(out, o[j])
			j++
		default:
			out = append(out, Dot{Site: c[i].Site, Time: max(c[i].Time, o[j].Time)})
			i++
			j++
		}
	}
	out = append(out, c[i:]...)
	return append(out, o[j:]...)
}

// Kind fixes how concurrent writes to a field merge.
type Kind uint8

// Field kinds. Their order matters only in the rare case of two replicas
// first writing the same field with different kinds concurrently: the
// higher kind wins, so replicas still agree.
const (
	KindRegister Kind = 1 // last writer wins by (timestamp, site); any JSON value
	KindCounter  Kind = 2 // PN-counter: per-site increments summed
	KindSet      Kind = 3 // add-wins observed-remove set of JSON scalars
	KindDoc      Kind = 4 // an Automerge document: changes merged by Automerge (see DocState)
)

var kindNames = map[Kind]string{KindRegister: "register", KindCounter: "counter", KindSet: "set", KindDoc: "doc"}

func (k Kind) String() string {
	if n, ok := kindNames[k]; ok {
		return n
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Valid reports whether k is one of the defined kinds.
func (k Kind) Valid() bool { _, ok := kindNames[k]; return ok }

// ParseKind maps "register", "counter", "set" and "doc" to their Kind.
func ParseKind(s string) (Kind, error) {
	for k, n := range kindNames {
		if n == s {
			return k, nil
		}
	}
	return 0, fmt.Errorf("crdt: unknown field kind %q", s)
}

// OpType says what an operation does.
type OpType uint8

// Operation types.
const (
	OpSet       OpType = 1 // register: replace the value
	OpIncrement OpType = 2 // counter: the writer's new cumulative parts
	OpAdd       OpType = 3 // set: add a member
	OpRemove    OpType = 4 // set: remove the observed adds of a member
	OpDelete    OpType = 5 // row: end the current life (CL becomes even)
	OpRevive    OpType = 6 // row: start a new life (CL becomes odd)
	OpChange    OpType = 7 // doc: add Automerge changes (Value holds the change chunks)
)

var opNames = map[OpType]string{OpSet: "set", OpIncrement: "increment", OpAdd: "add", OpRemove: "remove", OpDelete: "delete", OpRevive: "revive", OpChange: "change"}

func (t OpType) String() string {
	if n, ok := opNames[t]; ok {
		return n
	}
	return fmt.Sprintf("op(%d)", uint8(t))
}

// Op is one change to one row or field. Ops are immutable values produced
// by a writer that has read the current state; applying an op anywhere is a
// join with that state, so it is idempotent and commutes with other ops.
type Op struct {
	_          struct{} `cbor:",toarray"`
	Type       OpType
	Kind       Kind // field kind for field ops; zero for row ops
	Collection string
	Row        string
	Field      string // empty for row ops
	// CL is the row's causal length the op belongs to. For field ops it is
	// the (odd) life written into; for OpDelete the new even length; for
	// OpRevive the new odd length.
	CL uint64
	// Value is the JSON value (OpSet), the JSON scalar member (OpAdd,
	// OpRemove) or Automerge change chunks, concatenated, each authored
	// by the transaction's site (OpChange).
	Value []byte
	// Context is, for OpSet, the field's causal context the writer saw:
	// every value it covers is overwritten by this one.
	Context Context
	// P and N are, for OpIncrement, the writer site's cumulative positive
	// and negative parts after the increment.
	P, N uint64
	// Tags are, for OpRemove, the add tags of the member the writer saw.
	Tags []Dot
}

// IsRowOp reports whether the op changes a row's life rather than a field.
func (o *Op) IsRowOp() bool { return o.Type == OpDelete || o.Type == OpRevive }

// Tx is a transaction: the atomic unit of change. All its ops apply or none,
// on every replica. (Site, Seq) identifies it; Seq starts at 1 and has no
// gaps per site. Every op of the transaction is stamped with Time.
type Tx struct {
	_    struct{} `cbor:",toarray"`
	Site SiteID
	Seq  uint64
	Time Timestamp
	Ops  []Op
}

// Validate checks that the transaction and each of its ops are well formed.
// It returns an error wrapping ErrMalformedOp otherwise, or ErrInvalidValue
// for doc changes that are not Automerge changes authored by the site.
func (t *Tx) Validate() error {
	if t.Site.IsZero() {
		return fmt.Errorf("%w: transaction without a site", ErrMalformedOp)
	}
	if t.Seq == 0 {
		return fmt.Errorf("%w: transaction with sequence number 0", ErrMalformedOp)
	}
	for i := range t.Ops {
		op := &t.Ops[i]
		if err := op.validate(); err != nil {
			return err
		}
		if op.Type == OpChange {
			if _, err := docChanges(op.Value, t.Site); err != nil {
				return fmt.Errorf("%s.%s: %w", op.Collection, op.Field, err)
			}
		}
	}
	return nil
}

// SizeBound returns an upper bound of the transaction's encoded size
// (EncodeTx), without encoding it: what batching by bytes needs.
func (t *Tx) SizeBound() int {
	n := 64
	for i := range t.Ops {
		op := &t.Ops[i]
		n += 64 + len(op.Collection) + len(op.Row) + len(op.Field) + len(op.Value) + 40*(len(op.Context)+len(op.Tags))
	}
	return n
}

// Dot returns the dot that stamps every write of the transaction.
func (t *Tx) Dot() Dot { return Dot{Site: t.Site, Time: t.Time} }
