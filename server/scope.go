package server

import (
	"context"
	"encoding/json"

	"github.com/unosync/uno/crdt"
	usync "github.com/unosync/uno/sync"
)

// scope is what one session may receive: the collections it subscribes
// to (every collection when it names none), each with the field filters
// of its subscription and those the read rules force (a PrivateRead
// collection shows a user only its own rows). The tenant is never part of
// it: it is the token's, and every read is of that tenant alone.
type scope struct {
	all     bool
	colls   map[string]bool
	filters map[string][]usync.Filter
}

// newScope builds a session's scope from its subscriptions, the rules and
// its user. Filter values must be valid JSON.
func newScope(subs []usync.Subscription, rules map[string]Rule, user string) (scope, error) {
	s := scope{all: len(subs) == 0, colls: map[string]bool{}, filters: map[string][]usync.Filter{}}
	for _, sub := range subs {
		s.colls[sub.Collection] = true
		for _, f := range sub.Where {
			if f.Field == "" || !json.Valid(f.Value) {
				return scope{}, usync.Errorf(usync.CodeBadMessage, "subscription %s: filter on %q: want a field and a JSON value", sub.Collection, f.Field)
			}
			s.filters[sub.Collection] = append(s.filters[sub.Collection], f)
		}
	}
	for coll, r := range rules {
		if !r.PrivateRead {
			continue
		}
		var me []byte // nil matches nothing: no user, no rows
		if user != "" {
			me, _ = json.Marshal(user)
		}
		s.filters[coll] = append(s.filters[coll], usync.Filter{Field: r.Owner, Value: me})
	}
	return s, nil
}

// has reports whether the session receives anything of coll.
func (s *scope) has(coll string) bool { return s.all || s.colls[coll] }

// filtered reports whether coll's rows are filtered, and so travel as
// whole states rather than ops.
func (s *scope) filtered(coll string) bool { return len(s.filters[coll]) > 0 }

// admits reports whether the session may receive row (its state now) of
// coll. A deleted row is judged by the values it had, so that its
// deletion reaches those who had it.
func (s *scope) admits(coll string, row *crdt.Row) bool {
	if !s.has(coll) {
		return false
	}
	for _, f := range s.filters[coll] {
		v := fieldValue(row, f.Field)
		if v == nil || f.Value == nil || !sameJSON(v, f.Value) {
			return false
		}
	}
	return true
}

// restricted reports whether the scope leaves anything out.
func (s *scope) restricted() bool { return !s.all || len(s.filters) > 0 }

// visible cuts a batch of log entries down to what the session may
// receive: ops of collections it does not subscribe to are left out, as
// are ops of filtered collections, whose rows go instead as whole states
// (read now) when they pass the filters. Entries left with no ops are
// dropped. rewritten reports whether any entry lost ops. The client's
// own entries count here like any other (the session leaves them out of
// Changes afterwards): a filtered row its write brings into the filters
// must arrive whole, with what others wrote while it was out.
func (c *conn) visible(ctx context.Context, chs []usync.Change) (out []usync.Change, rows []usync.SnapshotRow, rewritten bool, err error) {
	if !c.scope.restricted() {
		return chs, nil, false, nil
	}
	seen := map[crdt.RowKey]bool{}
	var keys []crdt.RowKey
	out = chs[:0:0]
	for _, ch := range chs {
		kept := ch.Tx.Ops[:0:0]
		for i := range ch.Tx.Ops {
			op := &ch.Tx.Ops[i]
			switch {
			case !c.scope.has(op.Collection):
			case c.scope.filtered(op.Collection):
				k := crdt.RowKey{Collection: op.Collection, Row: op.Row}
				if !seen[k] {
					seen[k] = true
					keys = append(keys, k)
				}
			default:
				kept = append(kept, *op)
			}
		}
		if len(kept) == len(ch.Tx.Ops) {
			out = append(out, ch)
			continue
		}
		rewritten = true
		if len(kept) > 0 {
			ch.Tx.Ops = kept
			out = append(out, ch)
		}
	}
	if len(keys) == 0 {
		return out, nil, rewritten, nil
	}
	rs, ok := c.s.cfg.Log.(RowStater)
	if !ok {
		return nil, nil, false, usync.Errorf(usync.CodeUnavailable, "filtered subscriptions need a log with a rows read model")
	}
	states, err := rs.RowStates(ctx, c.tenant, keys)
	if err != nil {
		return nil, nil, false, err
	}
	for _, st := range states {
		if st.State == nil {
			continue
		}
		row, err := crdt.DecodeRow(st.State)
		if err != nil {
			return nil, nil, false, err
		}
		if c.scope.admits(st.Collection, row) {
			rows = append(rows, st)
		}
	}
	return out, rows, rewritten, nil
}
