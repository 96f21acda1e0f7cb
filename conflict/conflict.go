package conflict

import (
	"bytes"
	"fmt"

	"github.com/unosync/uno/crdt"
)

// Value is one written value of a register field with the write that made
// it: the writer's site and the transaction's hybrid logical timestamp.
type Value struct {
	Data []byte   // the JSON value
	Dot  crdt.Dot // who wrote it, and when
}

// Equal reports whether v and o are the same value from the same write.
func (v Value) Equal(o Value) bool { return v.Dot == o.Dot && bytes.Equal(v.Data, o.Data) }

func (v Value) String() string { return fmt.Sprintf("%s by %s", v.Data, v.Dot) }

// ValueOf converts a register entry.
func ValueOf(e crdt.Entry) Value { return Value{Data: e.Value, Dot: e.Dot} }

// Resolver merges two concurrent values of a field into one. It must be a
// pure, deterministic function that is commutative, associative and
// idempotent (r(a, a) == a); otherwise replicas that received the values
// in different orders would show different results. Check a resolver with
// conflicttest.CheckResolver (package conflict/conflicttest) in a test. When it computes a new value, give the result
// the greater of the two dots so the result stays commutative.
type Resolver func(a, b Value) Value

// Mode is the kind of a [Policy].
type Mode uint8

// Policy modes.
const (
	ModeLWW        Mode = iota // last writer wins by (timestamp, site): the default
	ModeResolver               // a custom Resolver folds concurrent values
	ModeMultiValue             // concurrent values are kept as siblings until the app resolves them
)

func (m Mode) String() string {
	switch m {
	case ModeLWW:
		return "lww"
	case ModeResolver:
		return "resolver"
	case ModeMultiValue:
		return "multi-value"
	}
	return fmt.Sprintf("mode(%d)", uint8(m))
}

// Policy decides what a register field shows when it holds concurrent
// values. The zero Policy is last-writer-wins.
//
// Policies only change how values are read: every replica stores the same
// merge state whatever the policy, so the canonical state hash does not
// depend on it.
type Policy struct {
	Mode     Mode
	Resolver Resolver // for ModeResolver
}

// LWW returns the last-writer-wins policy (the default).
func LWW() Policy { return Policy{Mode: ModeLWW} }

// Custom returns a policy that folds concurrent values with r.
func Custom(r Resolver) Policy { return Policy{Mode: ModeResolver, Resolver: r} }

// MultiValue returns a policy that keeps concurrent values as siblings.
// The field shows the last writer's value; [Resolution.Siblings] lists all
// of them until a write that saw them all (the app's resolution) replaces
// them.
func MultiValue() Policy { return Policy{Mode: ModeMultiValue} }

// Validate reports a policy that cannot work.
func (p Policy) Validate() error {
	switch p.Mode {
	case ModeLWW, ModeMultiValue:
		return nil
	case ModeResolver:
		if p.Resolver == nil {
			return fmt.Errorf("%w: resolver policy without a resolver", ErrInvalidPolicy)
		}
		return nil
	}
	return fmt.Errorf("%w: unknown mode %d", ErrInvalidPolicy, p.Mode)
}

// Resolution is what a register field shows under a policy.
type Resolution struct {
	Value    Value   // the value the field shows
	Siblings []Value // for ModeMultiValue with concurrent values: all of them, oldest first
}

// Resolve applies the policy to a register's entries (sorted by dot, as
// [crdt.Register] keeps them). ok is false for an empty register.
func (p Policy) Resolve(entries []crdt.Entry) (res Resolution, ok bool) {
	if len(entries) == 0 {
		return Resolution{}, false
	}
	last := ValueOf(entries[len(entries)-1])
	switch p.Mode {
	case ModeResolver:
		v := ValueOf(entries[0])
		for _, e := range entries[1:] {
			v = p.Resolver(v, ValueOf(e))
		}
		return Resolution{Value: v}, true
	case ModeMultiValue:
		res.Value = last
		if len(entries) > 1 {
			res.Siblings = make([]Value, len(entries))
			for i, e := range entries {
				res.Siblings[i] = ValueOf(e)
			}
		}
		return res, true
	}
	return Resolution{Value: last}, true
}

// Record describes one conflict: two concurrent writes to the same field
// (neither writer saw the other's value). Records feed the client's
// conflict feed. Loser is the value that no longer shows: under
// last-writer-wins the write with the smaller (timestamp, site); under a
// resolver both inputs are given and Winner is the resolver's result;
// under multi-value nothing is lost yet and Loser is the sibling that does
// not show by default.
type Record struct {
	Collection string
	Row        string
	Field      string
	Mode       Mode
	Winner     Value
	Loser      Value
}

func (r Record) String() string {
	return fmt.Sprintf("%s/%s.%s: %s lost to %s (%s)", r.Collection, r.Row, r.Field, r.Loser, r.Winner, r.Mode)
}

// Records builds the conflict records for one applied write (incoming) and
// the entries that were concurrent with it (from [crdt.Effect.Concurrent]).
func (p Policy) Records(collection, row, field string, incoming crdt.Entry, concurrent []crdt.Entry) []Record {
	if len(concurrent) == 0 {
		return nil
	}
	out := make([]Record, 0, len(concurrent))
	in := ValueOf(incoming)
	for _, e := range concurrent {
		other := ValueOf(e)
		winner, loser := in, other
		if other.Dot.Compare(in.Dot) > 0 {
			winner, loser = other, in
		}
		if p.Mode == ModeResolver {
			winner = p.Resolver(other, in)
		}
		out = append(out, Record{Collection: collection, Row: row, Field: field, Mode: p.Mode, Winner: winner, Loser: loser})
	}
	return out
}
