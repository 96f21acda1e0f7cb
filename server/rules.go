package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	"github.com/unosync/uno/crdt"
	usync "github.com/unosync/uno/sync"
)

type userKey struct{}

// UserFrom returns the user a write rule's context acts for (see
// Config.Validate); "" when the credentials name none.
func UserFrom(ctx context.Context) string {
	u, _ := ctx.Value(userKey{}).(string)
	return u
}

// Rule restricts who may write and read one collection's rows. Rules are
// checked on the server against its own state of each row, so a client
// cannot talk its way past them; a refused transaction is rejected whole
// (see Config.Validate).
type Rule struct {
	// ReadOnly refuses every client write to the collection.
	ReadOnly bool
	// Owner names the field holding the ID of each row's owner (a JSON
	// string). A client may create a row only with itself as the owner,
	// and write or delete only the rows it owns; ownership never moves.
	Owner string
	// PrivateRead sends each session only the rows it owns (needs Owner):
	// other users' rows never leave the server.
	PrivateRead bool
}

func (c *Config) validateRules() error {
	for coll, r := range c.Rules {
		if r.PrivateRead && r.Owner == "" {
			return fmt.Errorf("server: config: rule for %s: PrivateRead needs Owner", coll)
		}
	}
	return nil
}

// checkRules checks one pushed transaction against the collections'
// rules, with the rows' current server states and the owners set by the
// push's earlier accepted transactions (batch, which it updates).
func (c *conn) checkRules(ctx context.Context, tx *crdt.Tx, batch map[crdt.RowKey][]byte) error {
	rules := c.live.Rules
	if len(rules) == 0 {
		return nil
	}
	// The owner each touched row of an owned collection ends with in tx.
	type owned struct {
		set   bool
		value []byte
	}
	touched := map[crdt.RowKey]*owned{}
	var keys []crdt.RowKey
	for i := range tx.Ops {
		op := &tx.Ops[i]
		r, ok := rules[op.Collection]
		if !ok {
			continue
		}
		if r.ReadOnly {
			return usync.Errorf(usync.CodeForbidden, "collection %s is read-only", op.Collection)
		}
		if r.Owner == "" {
			continue
		}
		k := crdt.RowKey{Collection: op.Collection, Row: op.Row}
		o := touched[k]
		if o == nil {
			o = &owned{}
			touched[k] = o
			keys = append(keys, k)
		}
		if op.Field == r.Owner && op.Type == crdt.OpSet {
			o.set, o.value = true, op.Value
		}
	}
	if len(keys) == 0 {
		return nil
	}
	if c.user == "" {
		return usync.Errorf(usync.CodeForbidden, "collection %s has owned rows: the token names no user", keys[0].Collection)
	}
	me, _ := json.Marshal(c.user)
	rs, ok := c.s.cfg.Log.(RowStater)
	if !ok {
		return usync.Errorf(usync.CodeUnavailable, "owner rules need a log with a rows read model")
	}
	states, err := rs.RowStates(ctx, c.tenant, keys)
	if err != nil {
		return c.s.unavailable("read rows", err, "tenant", c.tenant)
	}
	for i, k := range keys {
		field := rules[k.Collection].Owner
		o := touched[k]
		if o.set && !sameJSON(o.value, me) {
			return usync.Errorf(usync.CodeForbidden, "%s/%s: %s must be your user ID %s", k.Collection, k.Row, field, me)
		}
		current := batch[k]
		if st := states[i].State; st != nil && current == nil {
			row, err := crdt.DecodeRow(st)
			if err != nil {
				c.s.cfg.Logger.Error("rules: row state", "tenant", c.tenant, "collection", k.Collection, "row", k.Row, "err", err)
				return usync.Errorf(usync.CodeInternal, "row %s/%s does not decode", k.Collection, k.Row)
			}
			current = fieldValue(row, field)
		}
		switch {
		case current != nil && !sameJSON(current, me):
			return usync.Errorf(usync.CodeForbidden, "%s/%s belongs to another user", k.Collection, k.Row)
		case current == nil && !o.set:
			return usync.Errorf(usync.CodeForbidden, "%s/%s: a new row needs %s set to your user ID %s", k.Collection, k.Row, field, me)
		}
	}
	for _, k := range keys {
		batch[k] = me
	}
	return nil
}

// fieldValue returns the JSON value of a row's register field (nil when
// it has none).
func fieldValue(r *crdt.Row, name string) []byte {
	for i := range r.Fields {
		f := &r.Fields[i]
		if f.Name != name {
			continue
		}
		if f.Kind == crdt.KindCounter {
			return fmt.Appendf(nil, "%d", f.Counter.Value())
		}
		if e, ok := f.Register.Winner(); ok {
			return e.Value
		}
	}
	return nil
}

// sameJSON reports whether two JSON texts are the same value, spacing
// aside.
func sameJSON(a, b []byte) bool {
	var ca, cb bytes.Buffer
	if json.Compact(&ca, a) != nil || json.Compact(&cb, b) != nil {
		return false
	}
	return bytes.Equal(ca.Bytes(), cb.Bytes())
}
