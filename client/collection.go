package client

import (
	"context"

	"github.com/unosync/uno/crdt"
	"github.com/unosync/uno/store"
)

// Collection is a handle on one collection: single-op transactions and
// queries. Handles are cheap; make them as needed.
type Collection struct {
	c    *Client
	name string
}

// Collection returns a handle on the named collection. The name is checked
// when the handle is used.
func (c *Client) Collection(name string) *Collection { return &Collection{c: c, name: name} }

// Name returns the collection's name.
func (col *Collection) Name() string { return col.name }

// Put writes doc's fields to row id in its own transaction; see [Tx.Put].
func (col *Collection) Put(ctx context.Context, id string, doc any) error {
	return col.c.Tx(ctx, func(tx *Tx) error { return tx.Put(col.name, id, doc) })
}

// Patch writes fields of an existing row; see [Tx.Patch].
func (col *Collection) Patch(ctx context.Context, id string, fields any) error {
	return col.c.Tx(ctx, func(tx *Tx) error { return tx.Patch(col.name, id, fields) })
}

// Delete deletes a row; see [Tx.Delete].
func (col *Collection) Delete(ctx context.Context, id string) error {
	return col.c.Tx(ctx, func(tx *Tx) error { return tx.Delete(col.name, id) })
}

// Increment adds delta to a counter field; see [Tx.Increment].
func (col *Collection) Increment(ctx context.Context, id, field string, delta int64) error {
	return col.c.Tx(ctx, func(tx *Tx) error { return tx.Increment(col.name, id, field, delta) })
}

// Add adds member to a set field; see [Tx.Add].
func (col *Collection) Add(ctx context.Context, id, field string, member any) error {
	return col.c.Tx(ctx, func(tx *Tx) error { return tx.Add(col.name, id, field, member) })
}

// Remove removes member from a set field; see [Tx.Remove].
func (col *Collection) Remove(ctx context.Context, id, field string, member any) error {
	return col.c.Tx(ctx, func(tx *Tx) error { return tx.Remove(col.name, id, field, member) })
}

// Get reads a row. It returns ErrNotFound if the row does not exist.
func (col *Collection) Get(ctx context.Context, id string) (Doc, error) {
	if err := col.c.check(); err != nil {
		return Doc{}, err
	}
	if err := col.c.checkCollection(col.name); err != nil {
		return Doc{}, err
	}
	if err := crdt.ValidID(id); err != nil {
		return Doc{}, err
	}
	r, err := col.c.store.Row(ctx, col.name, id)
	if err != nil {
		return Doc{}, err
	}
	return newDoc(col.c.cfg.Schema, col.name, id, r)
}

// Query selects rows: conditions that must all hold, an order and a limit.
// Values compare as SQLite compares them; see store.Op.
type Query struct {
	Where   []Cond
	OrderBy string // a field or "id"; ties and the default order are by id
	Desc    bool
	Limit   int // 0: no limit
}

// Cond is one condition of a query: Field Op Value.
type Cond = store.Cond

// Where returns the condition field op value, with op one of "=", "!=",
// "<", "<=", ">", ">=".
func Where(field, op string, value any) Cond {
	return Cond{Field: field, Op: store.Op(op), Value: value}
}

// Find returns the rows matching q, in its order.
func (col *Collection) Find(ctx context.Context, q Query) ([]Doc, error) {
	if err := col.c.check(); err != nil {
		return nil, err
	}
	return col.c.find(ctx, col.name, q)
}

func (c *Client) find(ctx context.Context, collection string, q Query) ([]Doc, error) {
	if err := c.checkCollection(collection); err != nil {
		return nil, err
	}
	if err := c.checkFields(collection, q); err != nil {
		return nil, err
	}
	rows, err := c.store.Query(ctx, store.Query{Collection: collection, Where: q.Where, OrderBy: q.OrderBy, Desc: q.Desc, Limit: q.Limit})
	if err != nil {
		return nil, err
	}
	out := make([]Doc, len(rows))
	for i, r := range rows {
		d, err := newDoc(c.cfg.Schema, collection, r.ID, r.Row)
		if err != nil {
			return nil, err
		}
		out[i] = d
	}
	return out, nil
}

func (c *Client) checkCollection(name string) error {
	if err := crdt.ValidName(name, false); err != nil {
		return err
	}
	if c.cfg.Schema != nil {
		if _, ok := c.cfg.Schema.Collection(name); !ok {
			return &nameError{ErrUnknownCollection, name}
		}
	}
	return nil
}

func (c *Client) checkFields(collection string, q Query) error {
	if c.cfg.Schema == nil {
		return nil
	}
	col, _ := c.cfg.Schema.Collection(collection)
	check := func(f string) error {
		if f == "" || f == "id" {
			return nil
		}
		if _, ok := col.Field(f); !ok {
			return &nameError{ErrUnknownField, collection + "." + f}
		}
		return nil
	}
	for _, w := range q.Where {
		if err := check(w.Field); err != nil {
			return err
		}
	}
	return check(q.OrderBy)
}

type nameError struct {
	err  error
	name string
}

func (e *nameError) Error() string { return e.err.Error() + ": " + e.name + " is not in the schema" }
func (e *nameError) Unwrap() error { return e.err }
