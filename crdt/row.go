package crdt

import (
	"fmt"
	"slices"
	"strings"
)

// Field is the merge state of one field in one life of a row. Exactly one of
// Register, Counter, Set and Doc is used, per Kind.
type Field struct {
	_        struct{} `cbor:",toarray"`
	Name     string
	Kind     Kind
	CL       uint64 // the row life this state belongs to
	Register Register
	Counter  Counter
	Set      Set
	Doc      DocState
}

// outranks orders field states of different lives or kinds: a later life
// replaces an earlier one entirely, and of two kinds in one life the higher
// wins (only possible when replicas first wrote a field concurrently with
// different kinds and no schema).
func (f *Field) outranks(o *Field) bool {
	if f.CL != o.CL {
		return f.CL > o.CL
	}
	return f.Kind > o.Kind
}

// Join returns the least upper bound of two states of the same field.
func (f Field) Join(o Field) Field {
	switch {
	case f.outranks(&o):
		return f
	case o.outranks(&f):
		return o
	}
	out := Field{Name: f.Name, Kind: f.Kind, CL: f.CL}
	switch f.Kind {
	case KindCounter:
		out.Counter = f.Counter.Join(o.Counter)
	case KindSet:
		out.Set = f.Set.Join(o.Set)
	case KindDoc:
		out.Doc = f.Doc.Join(o.Doc)
	default:
		out.Register = f.Register.Join(o.Register)
	}
	return out
}

// Row is the merge state of one row: its causal length (odd while alive,
// even once deleted) and the states of the fields written in its current
// life, sorted by name. States of earlier lives are dropped when the life
// changes, so two replicas that saw the same ops hold equal rows.
type Row struct {
	_      struct{} `cbor:",toarray"`
	CL     uint64
	Fields []Field
}

// Alive reports whether the row exists (its causal length is odd).
func (r *Row) Alive() bool { return r.CL%2 == 1 }

// Field returns the state of the named field in the current life.
func (r *Row) Field(name string) (*Field, bool) {
	i, ok := r.find(name)
	if !ok {
		return nil, false
	}
	return &r.Fields[i], true
}

func (r *Row) find(name string) (int, bool) {
	return slices.BinarySearchFunc(r.Fields, name, func(f Field, n string) int { return strings.Compare(f.Name, n) })
}

// advance raises the causal length to cl and drops states of older lives.
func (r *Row) advance(cl uint64) {
	if cl <= r.CL {
		return
	}
	r.CL = cl
	r.Fields = slices.DeleteFunc(r.Fields, func(f Field) bool { return f.CL < cl })
}

// Join returns the least upper bound of r and o, sharing nothing with them.
func (r Row) Join(o Row) Row {
	out := Row{CL: max(r.CL, o.CL)}
	i, j := 0, 0
	for i < len(r.Fields) || j < len(o.Fields) {
		var cmp int
		switch {
		case i == len(r.Fields):
			cmp = 1
		case j == len(o.Fields):
			cmp = -1
		default:
			cmp = strings.Compare(r.Fields[i].Name, o.Fields[j].Name)
		}
		var f Field
		switch {
		case cmp < 0:
			f = r.Fields[i]
			i++
		case cmp > 0:
			f = o.Fields[j]
			j++
		default:
			f = r.Fields[i].Join(o.Fields[j])
			i++
			j++
		}
		if f.CL >= out.CL {
			out.Fields = append(out.Fields, f)
		}
	}
	return *out.Clone() // share no slices with r or o: Apply mutates in place
}

// Effect describes what applying an op did.
type Effect struct {
	// Changed is true when the row's state changed.
	Changed bool
	// Stale is true when the op was ignored because it belongs to an older
	// life of the row (for example an update concurrent with a delete).
	Stale bool
	// Concurrent lists the register entries that were concurrent with the
	// applied write (neither writer saw the other): the raw material of
	// conflict records. The winner between them and the write is decided by
	// [Dot.Compare].
	Concurrent []Entry
}

// Apply applies op, stamped with d, to the row. Apply is a join: applying
// the same op twice, or ops in any order, gives the same row. It returns
// an error only for a malformed op, in which case the row is unchanged.
func (r *Row) Apply(op *Op, d Dot) (Effect, error) {
	if err := op.validate(); err != nil {
		return Effect{}, err
	}
	var changes []amChangeHeader
	if op.Type == OpChange {
		var err error
		if changes, err = docChanges(op.Value, d.Site); err != nil {
			return Effect{}, fmt.Errorf("%w: %w", ErrMalformedOp, err)
		}
	}
	before := r.CL
	switch op.Type {
	case OpDelete, OpRevive:
		r.advance(op.CL)
		return Effect{Changed: r.CL != before, Stale: op.CL < before}, nil
	}
	if op.CL < r.CL {
		return Effect{Stale: true}, nil
	}
	r.advance(op.CL)
	i, ok := r.find(op.Field)
	if !ok {
		r.Fields = slices.Insert(r.Fields, i, Field{Name: op.Field, Kind: op.Kind, CL: op.CL})
	}
	f := &r.Fields[i]
	if f.Kind != op.Kind {
		if f.Kind > op.Kind {
			return Effect{Changed: r.CL != before}, nil
		}
		*f = Field{Name: op.Field, Kind: op.Kind, CL: op.CL}
	}
	var eff Effect
	switch op.Type {
	case OpSet:
		eff.Changed = !f.Register.Context.Covers(d) || !covers(f.Register.Context, op.Context)
		eff.Concurrent = f.Register.write(d, op.Value, op.Context)
	case OpIncrement:
		i, had := f.Counter.find(d.Site)
		eff.Changed = !had || op.P > f.Counter.Parts[i].P || op.N > f.Counter.Parts[i].N
		f.Counter.merge(CounterPart{Site: d.Site, P: op.P, N: op.N})
	case OpAdd:
		eff.Changed = !f.Set.knows(op.Value, []Dot{d}, false)
		f.Set.merge(op.Value, []Dot{d}, nil)
	case OpRemove:
		eff.Changed = !f.Set.knows(op.Value, op.Tags, true)
		f.Set.merge(op.Value, nil, op.Tags)
	case OpChange:
		eff.Changed = f.Doc.apply(changes)
	}
	eff.Changed = eff.Changed || !ok || r.CL != before
	return eff, nil
}

// covers reports whether every dot of o is covered by c.
func covers(c, o Context) bool {
	for _, d := range o {
		if !c.Covers(d) {
			return false
		}
	}
	return true
}

// Malformed-op errors are returned by Apply; they indicate a buggy or
// hostile writer and leave the state unchanged.
func (op *Op) validate() error {
	switch op.Type {
	case OpDelete:
		if op.CL == 0 || op.CL%2 != 0 {
			return fmt.Errorf("%w: delete with causal length %d (want even)", ErrMalformedOp, op.CL)
		}
		return nil
	case OpRevive:
		if op.CL%2 != 1 {
			return fmt.Errorf("%w: revive with causal length %d (want odd)", ErrMalformedOp, op.CL)
		}
		return nil
	}
	if op.CL%2 != 1 {
		return fmt.Errorf("%w: %s on field %q with causal length %d (want odd)", ErrMalformedOp, op.Type, op.Field, op.CL)
	}
	if op.Field == "" {
		return fmt.Errorf("%w: %s without a field", ErrMalformedOp, op.Type)
	}
	for i := 1; i < len(op.Context); i++ {
		if op.Context[i-1].Site.Compare(op.Context[i].Site) >= 0 {
			return fmt.Errorf("%w: %s on field %q: context not sorted by site, or a site twice", ErrMalformedOp, op.Type, op.Field)
		}
	}
	var ok bool
	switch op.Type {
	case OpSet:
		ok = op.Kind == KindRegister
	case OpChange:
		ok = op.Kind == KindDoc
	case OpIncrement:
		ok = op.Kind == KindCounter
	case OpAdd, OpRemove:
		ok = op.Kind == KindSet
	}
	if !ok {
		return fmt.Errorf("%w: %s on a %s field", ErrMalformedOp, op.Type, op.Kind)
	}
	return nil
}
