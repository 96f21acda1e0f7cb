package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	"github.com/unosync/uno/crdt"
	"github.com/unosync/uno/store"
)

// Tx is a multi-op transaction: every change made through it commits
// together, atomically, or none does. Reads through it see its own
// changes. A Tx is only valid inside the function given to [Client.Tx] and
// must not be used by other goroutines.
type Tx struct {
	c    *Client
	b    *crdt.Builder
	docs []*DocEdit // opened with Doc, committed when fn returns
}

// Tx runs fn in a transaction. If fn returns an error, nothing it did is
// kept and the error is returned. fn must not call other methods of the
// client (it holds the store's write lock).
func (c *Client) Tx(ctx context.Context, fn func(tx *Tx) error) error {
	if err := c.check(); err != nil {
		return err
	}
	var tx *Tx
	var kept uint64 // the seq whose span the push continues (see tracing.keep)
	ctx, span := c.tr.startTx(ctx)
	commit, err := c.store.Write(ctx, func(b *crdt.Builder) error {
		tx = &Tx{c: c, b: b}
		if err := fn(tx); err != nil {
			return err
		}
		if err := tx.commitDocs(); err != nil {
			return err
		}
		if b.Len() > c.cfg.MaxTxOps {
			return fmt.Errorf("%w: transaction of %d ops exceeds MaxTxOps %d", ErrTooLarge, b.Len(), c.cfg.MaxTxOps)
		}
		if b.Len() > 0 {
			// Kept before the commit: the sync loop may push the
			// transaction before Write returns (OnCommit).
			kept = b.Tx().Seq
			c.tr.keep(span, kept)
		}
		return nil
	})
	if tx != nil {
		tx.releaseDocs()
	}
	if span != nil {
		var committed *crdt.Tx
		if commit != nil {
			committed = commit.Tx
		}
		c.tr.endTx(span, committed, kept, err)
	}
	if err != nil {
		return err
	}
	c.notify(commit)
	if commit.Tx != nil && !c.wakesEarly {
		// One more pending: the status says so at once, online or not
		// (a connection then reads the store's count, which it keeps).
		c.setStatus(func(s *Status) {
			s.Pending++
			if s.State == StateUpToDate {
				s.State = StateSyncing
			}
		})
		c.wakeSync()
	}
	return nil
}

// committed runs as local writes commit, before their Tx calls return,
// in a store that says so (see Open): the status counts them and the
// sync loop wakes to push them. At full durability it runs as their
// fsync starts, so the push does not wait for it.
func (c *Client) committed() {
	n, err := c.store.Pending(context.Background())
	if err != nil {
		return // the store closed: so does the client
	}
	c.setStatus(func(s *Status) {
		s.Pending = n
		if s.State == StateUpToDate {
			s.State = StateSyncing
		}
	})
	c.wakeSync()
}

// key validates a collection and row ID.
func (tx *Tx) key(collection, id string) (crdt.RowKey, error) {
	if err := crdt.ValidName(collection, false); err != nil {
		return crdt.RowKey{}, err
	}
	if tx.c.cfg.Schema != nil {
		if _, ok := tx.c.cfg.Schema.Collection(collection); !ok {
			return crdt.RowKey{}, fmt.Errorf("%w: %q is not in the schema", ErrUnknownCollection, collection)
		}
	}
	if err := crdt.ValidID(id); err != nil {
		return crdt.RowKey{}, err
	}
	return crdt.RowKey{Collection: collection, Row: id}, nil
}

// kind validates a field name and returns its declared kind (0 when no
// schema declares it). want is the kind the operation needs.
func (tx *Tx) kind(collection, field string, want ...crdt.Kind) (crdt.Kind, error) {
	if err := crdt.ValidName(field, true); err != nil {
		return 0, err
	}
	s := tx.c.cfg.Schema
	if s == nil {
		return want[0], nil
	}
	col, _ := s.Collection(collection)
	f, ok := col.Field(field)
	if !ok {
		return 0, fmt.Errorf("%w: %s.%s is not in the schema", ErrUnknownField, collection, field)
	}
	k := s.KindOf(collection, field)
	for _, w := range want {
		if k == w {
			return k, nil
		}
	}
	return 0, fmt.Errorf("%w: %s.%s is a %s; %s", ErrKindMismatch, collection, f.Name, k, kindHint(k))
}

func kindHint(k crdt.Kind) string {
	switch k {
	case crdt.KindCounter:
		return "change it with Increment"
	case crdt.KindSet:
		return "change it with Add and Remove"
	case crdt.KindDoc:
		return "edit it with Tx.Doc or Collection.EditDoc"
	}
	return "write it with Put or Patch"
}

// Put creates or replaces fields of a row: every top-level field of doc (a
// struct or map encoding to a JSON object) is written. Fields doc lacks are
// kept; write null to clear one. Putting a deleted row revives it with only
// doc's fields. An "id" key in doc, if present and not empty, must equal id.
func (tx *Tx) Put(collection, id string, doc any) error {
	return tx.put(collection, id, doc, false)
}

// Patch writes the given fields of an existing row. It returns ErrNotFound
// if the row does not exist.
func (tx *Tx) Patch(collection, id string, fields any) error {
	return tx.put(collection, id, fields, true)
}

func (tx *Tx) put(collection, id string, doc any, mustExist bool) error {
	k, err := tx.key(collection, id)
	if err != nil {
		return err
	}
	fields, err := tx.fields(collection, id, doc)
	if err != nil {
		return err
	}
	if mustExist {
		r, err := tx.b.Row(k)
		if err != nil {
			return err
		}
		if !r.Alive() {
			return fmt.Errorf("%w: %s/%s", ErrNotFound, collection, id)
		}
	}
	type write struct {
		name  string
		kind  crdt.Kind
		value []byte
	}
	writes := make([]write, 0, len(fields))
	for name, v := range fields {
		kind, err := tx.kind(collection, name, crdt.KindRegister)
		if err != nil {
			return err
		}
		writes = append(writes, write{name, kind, v})
	}
	// Check every field before writing any, so an error writes nothing
	// even inside a larger transaction.
	if cur, err := tx.b.Row(k); err == nil && cur.Alive() {
		for _, w := range writes {
			if f, ok := cur.Field(w.name); ok && f.Kind != w.kind {
				return fmt.Errorf("%w: %s.%s is a %s; %s", ErrKindMismatch, collection, w.name, f.Kind, kindHint(f.Kind))
			}
		}
	}
	if len(writes) == 0 {
		return tx.b.Create(k) // an empty document still creates (or revives) the row
	}
	for _, w := range writes {
		if err := tx.b.Set(k, w.name, w.kind, w.value); err != nil {
			return err
		}
	}
	return nil
}

// fields encodes doc and splits it into validated top-level fields.
func (tx *Tx) fields(collection, id string, doc any) (map[string]json.RawMessage, error) {
	var fields map[string]json.RawMessage
	if m, ok := doc.(map[string]json.RawMessage); ok && m != nil {
		// Values already JSON (for example from JavaScript): validated
		// and compacted, not decoded.
		fields = make(map[string]json.RawMessage, len(m))
		for k, v := range m {
			var b bytes.Buffer
			if err := json.Compact(&b, v); err != nil {
				return nil, fmt.Errorf("%w: %s/%s field %s: %w", ErrInvalidValue, collection, id, k, err)
			}
			fields[k] = b.Bytes()
		}
	} else if m, ok := doc.(map[string]any); ok && m != nil {
		// The common case, without encoding the document twice.
		fields = make(map[string]json.RawMessage, len(m))
		for k, v := range m {
			b, err := json.Marshal(v)
			if err != nil {
				return nil, fmt.Errorf("%w: %s/%s field %s: %w", ErrInvalidValue, collection, id, k, err)
			}
			fields[k] = b
		}
	} else {
		b, err := json.Marshal(doc)
		if err != nil {
			return nil, fmt.Errorf("%w: %s/%s: %w", ErrInvalidValue, collection, id, err)
		}
		if err := json.Unmarshal(b, &fields); err != nil || fields == nil {
			return nil, fmt.Errorf("%w: %s/%s: a document must encode to a JSON object, got %.40s", ErrInvalidValue, collection, id, b)
		}
	}
	if raw, ok := fields["id"]; ok {
		var got string
		if json.Unmarshal(raw, &got) != nil || (got != id && got != "") {
			return nil, fmt.Errorf("%w: %s/%s: document id %s differs from the row id", ErrInvalidValue, collection, id, raw)
		}
		delete(fields, "id")
	}
	for name, v := range fields {
		if err := crdt.ValidName(name, true); err != nil {
			return nil, fmt.Errorf("%s/%s: %w", collection, id, err)
		}
		if len(v) > tx.c.cfg.MaxValueBytes {
			return nil, fmt.Errorf("%w: %s/%s field %s is %d bytes, max %d (Config.MaxValueBytes)", ErrTooLarge, collection, id, name, len(v), tx.c.cfg.MaxValueBytes)
		}
	}
	return fields, nil
}

// Delete deletes a row. Deleting a row that does not exist does nothing.
// A delete beats concurrent updates of the row made elsewhere; a later Put
// revives it.
func (tx *Tx) Delete(collection, id string) error {
	k, err := tx.key(collection, id)
	if err != nil {
		return err
	}
	_, err = tx.b.Delete(k)
	return err
}

// Increment adds delta (negative to subtract) to a counter field, creating
// the row if needed.
func (tx *Tx) Increment(collection, id, field string, delta int64) error {
	k, err := tx.key(collection, id)
	if err != nil {
		return err
	}
	if _, err := tx.kind(collection, field, crdt.KindCounter); err != nil {
		return err
	}
	return tx.b.Increment(k, field, delta)
}

// Add adds member (a JSON scalar: string, number, bool) to a set field,
// creating the row if needed. Concurrent adds and removes of one member
// resolve in favour of the add.
func (tx *Tx) Add(collection, id, field string, member any) error {
	return tx.member(collection, id, field, member, true)
}

// Remove removes member from a set field.
func (tx *Tx) Remove(collection, id, field string, member any) error {
	return tx.member(collection, id, field, member, false)
}

func (tx *Tx) member(collection, id, field string, member any, add bool) error {
	k, err := tx.key(collection, id)
	if err != nil {
		return err
	}
	if _, err := tx.kind(collection, field, crdt.KindSet); err != nil {
		return err
	}
	b, err := json.Marshal(member)
	if err != nil {
		return fmt.Errorf("%w: set member: %w", ErrInvalidValue, err)
	}
	if len(b) == 0 || b[0] == '{' || b[0] == '[' || bytes.Equal(b, []byte("null")) {
		return fmt.Errorf("%w: set member %.40s: want a string, number or bool", ErrInvalidValue, b)
	}
	if len(b) > tx.c.cfg.MaxValueBytes {
		return fmt.Errorf("%w: set member of %d bytes, max %d (Config.MaxValueBytes)", ErrTooLarge, len(b), tx.c.cfg.MaxValueBytes)
	}
	if add {
		return tx.b.Add(k, field, b)
	}
	return tx.b.Remove(k, field, b)
}

// Prefetch reads the rows ids of collection together, ahead of writes to
// them in this transaction, which would otherwise read each row when
// they first touch it. A transaction that writes many rows it can name
// up front (an import, a batch from the browser) runs faster with it;
// nothing else changes. Rows the transaction has read already are not
// read again.
func (tx *Tx) Prefetch(collection string, ids ...string) error {
	keys := make([]crdt.RowKey, len(ids))
	for i, id := range ids {
		k, err := tx.key(collection, id)
		if err != nil {
			return err
		}
		keys[i] = k
	}
	return tx.b.Preload(keys)
}

// Get reads a row as this transaction sees it. It returns ErrNotFound if
// the row does not exist.
func (tx *Tx) Get(collection, id string) (Doc, error) {
	k, err := tx.key(collection, id)
	if err != nil {
		return Doc{}, err
	}
	r, err := tx.b.Row(k)
	if err != nil {
		return Doc{}, err
	}
	return newDoc(tx.c.cfg.Schema, collection, id, r)
}

// Doc is a row as the app sees it.
type Doc struct {
	ID string
	// Fields maps each field to its JSON value: a register's value, a
	// counter's number, a set's members as an array, a doc's document as a
	// JSON object (text as strings, counters as numbers).
	Fields map[string]json.RawMessage
	// Siblings maps each multi-value field that holds concurrent values to
	// all of them; write the field to resolve them.
	Siblings map[string][]Sibling
}

// Sibling is one concurrent value of a multi-value field.
type Sibling struct {
	Value json.RawMessage
	Site  crdt.SiteID
	Time  crdt.Timestamp
}

func newDoc(s *store.Schema, collection, id string, r *crdt.Row) (Doc, error) {
	if r == nil || !r.Alive() {
		return Doc{}, fmt.Errorf("%w: %s/%s", ErrNotFound, collection, id)
	}
	d := Doc{ID: id, Fields: make(map[string]json.RawMessage, len(r.Fields))}
	for name, v := range store.ResolveFields(s, collection, r) {
		d.Fields[name] = v.JSON
		if len(v.Siblings) > 0 {
			if d.Siblings == nil {
				d.Siblings = map[string][]Sibling{}
			}
			for _, sv := range v.Siblings {
				d.Siblings[name] = append(d.Siblings[name], Sibling{Value: sv.Data, Site: sv.Dot.Site, Time: sv.Dot.Time})
			}
		}
	}
	return d, nil
}

// JSON returns the row as a JSON object: "id" and every field.
func (d Doc) JSON() []byte {
	m := make(map[string]json.RawMessage, len(d.Fields)+1)
	for k, v := range d.Fields {
		m[k] = v
	}
	id, _ := json.Marshal(d.ID)
	m["id"] = id
	b, err := json.Marshal(m)
	if err != nil {
		panic("client: stored values are not JSON: " + err.Error())
	}
	return b
}

// Decode decodes the row (its "id" and fields) into dst, a pointer to a
// struct or map, as encoding/json does.
func (d Doc) Decode(dst any) error {
	if err := json.Unmarshal(d.JSON(), dst); err != nil {
		return fmt.Errorf("decode %s: %w", d.ID, err)
	}
	return nil
}
