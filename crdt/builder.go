package crdt

import (
	"bytes"
	"fmt"
	"slices"
)

// ErrKindMismatch is returned by [Builder] when an op does not fit the kind
// a field already has in the row's current life.
var ErrKindMismatch = fmt.Errorf("crdt: kind mismatch")

// Builder builds one local transaction against the current state of the
// rows it touches. Each method reads the row (through the function given to
// [NewBuilder], once per row), computes the op a correct writer must emit —
// the register's causal context, the counter's cumulative part, the set
// member's observed tags, a revive when writing to a deleted row — and
// applies it to a working copy, so later ops in the transaction see it.
//
// Repeated writes to one field (or one set member) in a transaction are
// folded into a single op: the transaction has one timestamp, so two ops
// could not be told apart.
type Builder struct {
	tx      Tx
	get     func(RowKey) (*Row, error)
	preload func([]RowKey) error
	rows    map[RowKey]*builderRow
	keys    []RowKey // in first-touch order
}

type builderRow struct {
	base *Row // state before the transaction (owned copy)
	cur  *Row // base with ops applied
	ops  []int
}

// NewBuilder starts transaction (site, seq) stamped ts. get returns the
// current state of a row, or nil if the row was never seen; Builder does
// not modify what it returns.
func NewBuilder(site SiteID, seq uint64, ts Timestamp, get func(RowKey) (*Row, error)) *Builder {
	return &Builder{
		tx:   Tx{Site: site, Seq: seq, Time: ts},
		get:  get,
		rows: make(map[RowKey]*builderRow),
	}
}

// SetPreload gives the builder a function that reads many rows at once,
// ahead of get: see Preload.
func (b *Builder) SetPreload(f func([]RowKey) error) { b.preload = f }

// Preload reads the rows of keys ahead of the ops that will touch them,
// in as few reads as the store can (SetPreload); without such a function
// it does nothing, and each row is read when first touched, as always.
// It changes no outcome.
func (b *Builder) Preload(keys []RowKey) error {
	if b.preload == nil {
		return nil
	}
	var todo []RowKey
	for _, k := range keys {
		if _, ok := b.rows[k]; !ok {
			todo = append(todo, k)
		}
	}
	if len(todo) == 0 {
		return nil
	}
	return b.preload(todo)
}

// Row returns the working state of a row: its state before the transaction
// with the transaction's ops applied. The result must not be modified.
func (b *Builder) Row(k RowKey) (*Row, error) {
	br, err := b.row(k)
	if err != nil {
		return nil, err
	}
	return br.cur, nil
}

func (b *Builder) row(k RowKey) (*builderRow, error) {
	if br, ok := b.rows[k]; ok {
		return br, nil
	}
	r, err := b.get(k)
	if err != nil {
		return nil, err
	}
	base := &Row{}
	if r != nil {
		base = r.Clone()
	}
	br := &builderRow{base: base, cur: base.Clone()}
	b.rows[k] = br
	b.keys = append(b.keys, k)
	return br, nil
}

// Len returns the number of ops so far.
func (b *Builder) Len() int { return len(b.tx.Ops) }

// Touched returns the keys of the rows the transaction writes, in
// first-touch order, with their working states (which must not be modified).
func (b *Builder) Touched() ([]RowKey, []*Row) {
	var keys []RowKey
	var rows []*Row
	for _, k := range b.keys {
		if br := b.rows[k]; len(br.ops) > 0 {
			keys = append(keys, k)
			rows = append(rows, br.cur)
		}
	}
	return keys, rows
}

// Tx returns the transaction built so far. The Builder must not be used
// after Tx.
func (b *Builder) Tx() *Tx { return &b.tx }

func (b *Builder) append(k RowKey, br *builderRow, op Op) error {
	if err := op.validate(); err != nil {
		return err
	}
	b.tx.Ops = append(b.tx.Ops, op)
	br.ops = append(br.ops, len(b.tx.Ops)-1)
	if _, err := br.cur.Apply(&b.tx.Ops[len(b.tx.Ops)-1], b.tx.Dot()); err != nil {
		panic("crdt: builder made a malformed op: " + err.Error())
	}
	return nil
}

// replay recomputes a row's working state after one of its ops changed.
func (b *Builder) replay(br *builderRow) {
	br.cur = br.base.Clone()
	d := b.tx.Dot()
	for _, i := range br.ops {
		if _, err := br.cur.Apply(&b.tx.Ops[i], d); err != nil {
			panic("crdt: builder made a malformed op: " + err.Error())
		}
	}
}

// live makes sure the row is alive, reviving it if needed, and returns it.
func (b *Builder) live(k RowKey) (*builderRow, error) {
	br, err := b.row(k)
	if err != nil {
		return nil, err
	}
	if !br.cur.Alive() {
		if err := b.append(k, br, Op{Type: OpRevive, Collection: k.Collection, Row: k.Row, CL: br.cur.CL + 1}); err != nil {
			return nil, err
		}
	}
	return br, nil
}

// field returns the field's current state (nil if unwritten in this life)
// after checking its kind.
func (b *Builder) field(k RowKey, br *builderRow, name string, kind Kind) (*Field, error) {
	f, ok := br.cur.Field(name)
	if !ok {
		return nil, nil
	}
	if f.Kind != kind {
		return nil, fmt.Errorf("%w: %s.%s is a %s, not a %s", ErrKindMismatch, k.Collection, name, f.Kind, kind)
	}
	return f, nil
}

// findOp returns the index of this transaction's op on the field (and set
// member), or -1.
func (b *Builder) findOp(br *builderRow, field string, member []byte, set bool) int {
	for _, i := range br.ops {
		op := &b.tx.Ops[i]
		if op.Field != field || op.IsRowOp() || op.CL != br.cur.CL {
			continue
		}
		if !set || bytes.Equal(op.Value, member) {
			return i
		}
	}
	return -1
}

// precheck refuses an op before anything (such as a revive) is emitted
// for it.
func precheck(t OpType, field string, kind Kind) error {
	op := Op{Type: t, Kind: kind, Field: field, CL: 1}
	return op.validate()
}

// Set writes value to a register.
func (b *Builder) Set(k RowKey, field string, kind Kind, value []byte) error {
	if err := precheck(OpSet, field, kind); err != nil {
		return err
	}
	br, err := b.live(k)
	if err != nil {
		return err
	}
	f, err := b.field(k, br, field, kind)
	if err != nil {
		return err
	}
	if i := b.findOp(br, field, nil, false); i >= 0 {
		b.tx.Ops[i].Value = value
		b.replay(br)
		return nil
	}
	var ctx Context
	if f != nil {
		ctx = f.Register.Context
	}
	return b.append(k, br, Op{Type: OpSet, Kind: kind, Collection: k.Collection, Row: k.Row, Field: field,
		CL: br.cur.CL, Value: value, Context: ctx})
}

// Increment adds delta (which may be negative) to a counter.
func (b *Builder) Increment(k RowKey, field string, delta int64) error {
	if err := precheck(OpIncrement, field, KindCounter); err != nil {
		return err
	}
	br, err := b.live(k)
	if err != nil {
		return err
	}
	f, err := b.field(k, br, field, KindCounter)
	if err != nil {
		return err
	}
	var p, n uint64
	if f != nil {
		p, n = f.Counter.Part(b.tx.Site)
	}
	if delta >= 0 {
		p += uint64(delta)
	} else {
		n += uint64(-delta)
	}
	if i := b.findOp(br, field, nil, false); i >= 0 {
		b.tx.Ops[i].P, b.tx.Ops[i].N = p, n
		b.replay(br)
		return nil
	}
	return b.append(k, br, Op{Type: OpIncrement, Kind: KindCounter, Collection: k.Collection, Row: k.Row, Field: field,
		CL: br.cur.CL, P: p, N: n})
}

// Add adds member to a set.
func (b *Builder) Add(k RowKey, field string, member []byte) error {
	return b.setOp(k, field, member, OpAdd)
}

// Remove removes member from a set: the adds of it that this replica has
// seen. An add made concurrently elsewhere survives (add wins).
func (b *Builder) Remove(k RowKey, field string, member []byte) error {
	return b.setOp(k, field, member, OpRemove)
}

func (b *Builder) setOp(k RowKey, field string, member []byte, t OpType) error {
	if err := precheck(t, field, KindSet); err != nil {
		return err
	}
	if t == OpRemove {
		// Removing from a row that is not alive removes nothing; it must
		// not revive the row.
		br, err := b.row(k)
		if err != nil {
			return err
		}
		if !br.cur.Alive() {
			return nil
		}
	}
	br, err := b.live(k)
	if err != nil {
		return err
	}
	if _, err := b.field(k, br, field, KindSet); err != nil {
		return err
	}
	op := Op{Type: t, Kind: KindSet, Collection: k.Collection, Row: k.Row, Field: field, CL: br.cur.CL, Value: member}
	if t == OpRemove {
		// Only the adds seen before this transaction: an add of the member
		// earlier in this transaction is undone by dropping its op.
		if f, ok := br.base.Field(field); ok && f.CL == br.cur.CL && f.Kind == KindSet {
			op.Tags = f.Set.Observed(member)
		}
	}
	if i := b.findOp(br, field, member, true); i >= 0 {
		if b.tx.Ops[i].Type == t {
			return nil
		}
		if t == OpRemove && len(op.Tags) == 0 {
			b.tx.Ops = slices.Delete(b.tx.Ops, i, i+1)
			b.reindex(i)
		} else {
			b.tx.Ops[i] = op
		}
		b.replay(br)
		return nil
	}
	if t == OpRemove && len(op.Tags) == 0 {
		return nil // nothing seen to remove
	}
	return b.append(k, br, op)
}

// reindex fixes op indexes after the op at i was deleted.
func (b *Builder) reindex(i int) {
	for _, br := range b.rows {
		br.ops = slices.DeleteFunc(br.ops, func(j int) bool { return j == i })
		for n, j := range br.ops {
			if j > i {
				br.ops[n] = j - 1
			}
		}
	}
}

// Create makes sure the row is alive: a row never seen or deleted gets a
// new life with no fields; an alive row is left as it is.
func (b *Builder) Create(k RowKey) error {
	_, err := b.live(k)
	return err
}

// Delete ends the row's current life. Deleting a row that is not alive does
// nothing and returns false.
func (b *Builder) Delete(k RowKey) (bool, error) {
	br, err := b.row(k)
	if err != nil {
		return false, err
	}
	if !br.cur.Alive() {
		return false, nil
	}
	if err := b.append(k, br, Op{Type: OpDelete, Collection: k.Collection, Row: k.Row, CL: br.cur.CL + 1}); err != nil {
		return false, err
	}
	return true, nil
}

// Clone returns a deep copy of r.
func (r *Row) Clone() *Row {
	out := &Row{CL: r.CL, Fields: make([]Field, len(r.Fields))}
	for i, f := range r.Fields {
		out.Fields[i] = Field{
			Name: f.Name, Kind: f.Kind, CL: f.CL,
			Register: Register{Entries: slices.Clone(f.Register.Entries), Context: slices.Clone(f.Register.Context)},
			Counter:  Counter{Parts: slices.Clone(f.Counter.Parts)},
			Doc:      f.Doc.clone(),
		}
		if f.Set.Members != nil {
			ms := make([]Member, len(f.Set.Members))
			for j, m := range f.Set.Members {
				ms[j] = Member{Value: m.Value, Adds: slices.Clone(m.Adds), Removes: slices.Clone(m.Removes)}
			}
			out.Fields[i].Set.Members = ms
		}
	}
	return out
}

// Change adds Automerge change chunks, authored by the transaction's site,
// to a doc field. Changes to one field in a transaction share one op.
func (b *Builder) Change(k RowKey, field string, changes []byte) error {
	if err := precheck(OpChange, field, KindDoc); err != nil {
		return err
	}
	if _, err := docChanges(changes, b.tx.Site); err != nil {
		return err
	}
	br, err := b.live(k)
	if err != nil {
		return err
	}
	if _, err := b.field(k, br, field, KindDoc); err != nil {
		return err
	}
	if i := b.findOp(br, field, nil, false); i >= 0 {
		b.tx.Ops[i].Value = append(slices.Clip(b.tx.Ops[i].Value), changes...)
		b.replay(br)
		return nil
	}
	return b.append(k, br, Op{Type: OpChange, Kind: KindDoc, Collection: k.Collection, Row: k.Row, Field: field,
		CL: br.cur.CL, Value: changes})
}
