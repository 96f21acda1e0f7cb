package rowmodel

import (
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/unosync/uno/crdt"
	usync "github.com/unosync/uno/sync"
	"github.com/unosync/uno/tenancy"
)

// Fold applies transactions, in log order, to the rows they touch: the
// merged state of every row, the same state every client holds once it
// has the same transactions. It records, for each row, the sequence
// number of the last transaction that changed it, and the rows in the
// order they were first changed (the order writes go out in).
type Fold struct {
	// Rows holds the states: those loaded before, and those Load or the
	// fold adds.
	Rows map[crdt.RowKey]*crdt.Row
	// Load reads a row not in Rows (nil: such rows start empty).
	Load func(crdt.RowKey) (*crdt.Row, error)
	// MaxRowBytes bounds a row's encoded merged state. Default
	// DefaultMaxRowBytes.
	MaxRowBytes int
	// Docs, if set, verifies that Automerge applies each doc change
	// (DocCache.Verify) for Tenant; a change it would hold back is refused.
	Docs   *DocCache
	Tenant string

	seqs  map[crdt.RowKey]uint64
	last  map[crdt.RowKey]*crdt.Tx // the transaction that last changed each row
	order []crdt.RowKey
}

// DefaultMaxRowBytes is the largest merged row state by default
// (crdt.Limits): small enough that one row always fits a sync message.
const DefaultMaxRowBytes = crdt.DefaultMaxRowBytes

// RefusedError is how a fold refuses one transaction: applied, it would
// break a rule only the merged state can check (a row over MaxRowBytes, a
// doc change that skips one of its site's changes). The append fails,
// appending nothing; the caller refuses Tx with Code, replaces it by an
// empty transaction of the same site and seq (so the site's sequence
// stays gap-free) and appends again.
type RefusedError struct {
	Tx   *crdt.Tx
	Code usync.Code
	Err  error // why, naming the transaction
}

func (e *RefusedError) Error() string { return e.Err.Error() }

func (e *RefusedError) Unwrap() error { return e.Err }

// TooLargeError names the row that went over the limit and the
// transaction that last changed it. A fold returns it wrapped in a
// *RefusedError (CodeRowTooLarge).
type TooLargeError struct {
	Tx    *crdt.Tx
	Key   crdt.RowKey
	Bytes int
	Max   int
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("tx %s/%d makes row %s/%.40q %d bytes, over the %d a row may hold: split the value or store it elsewhere",
		e.Tx.Site, e.Tx.Seq, e.Key.Collection, e.Key.Row, e.Bytes, e.Max)
}

func (e *TooLargeError) Unwrap() error { return crdt.ErrRowTooLarge }

// Apply folds one transaction, numbered seq, into the rows. A doc change
// that skips one of its site's changes, or (with Docs) depends on changes
// the document lacks, fails it with a *RefusedError (CodeMalformedTx): a replica gets a site's changes in order, so only a
// buggy or hostile writer sends one, and no replica could apply it. After
// an error the fold is spent: the caller drops it.
func (f *Fold) Apply(t *crdt.Tx, seq uint64) error {
	if f.Rows == nil {
		f.Rows = map[crdt.RowKey]*crdt.Row{}
	}
	if f.seqs == nil {
		f.seqs, f.last = map[crdt.RowKey]uint64{}, map[crdt.RowKey]*crdt.Tx{}
	}
	d := t.Dot()
	for i := range t.Ops {
		op := &t.Ops[i]
		k := crdt.RowKey{Collection: op.Collection, Row: op.Row}
		r, ok := f.Rows[k]
		if !ok {
			var err error
			if r, err = f.load(k); err != nil {
				return err
			}
			f.Rows[k] = r
		}
		if op.Type == crdt.OpChange {
			if s := docBefore(r, op); s != nil {
				if err := s.CheckNext(t.Site, op.Value); err != nil {
					return &RefusedError{Tx: t, Code: usync.CodeMalformedTx,
						Err: fmt.Errorf("tx %s/%d, doc field %s/%.40q %s: %w", t.Site, t.Seq, k.Collection, k.Row, op.Field, err)}
				}
			}
		}
		if _, err := r.Apply(op, d); err != nil {
			return err
		}
		if op.Type == crdt.OpChange && f.Docs != nil {
			if fd, ok := r.Field(op.Field); ok && fd.Kind == crdt.KindDoc {
				if err := f.Docs.Verify(f.Tenant, k, op.Field, &fd.Doc); err != nil {
					return &RefusedError{Tx: t, Code: usync.CodeMalformedTx,
						Err: fmt.Errorf("tx %s/%d, doc field %s/%.40q %s: %w", t.Site, t.Seq, k.Collection, k.Row, op.Field, err)}
				}
			}
		}
		if _, seen := f.seqs[k]; !seen {
			f.order = append(f.order, k)
		}
		f.seqs[k], f.last[k] = seq, t
	}
	return nil
}

// docBefore returns the doc state a change op applies to in r: the
// field's state, an empty one when the op starts the field (a new life,
// a field not written yet, or one of a lower kind), or nil when the row
// ignores the op (an older life, a field of a higher kind).
func docBefore(r *crdt.Row, op *crdt.Op) *crdt.DocState {
	if op.CL < r.CL {
		return nil
	}
	f, ok := r.Field(op.Field)
	switch {
	case !ok || f.CL < op.CL || f.Kind < crdt.KindDoc:
		return &crdt.DocState{}
	case f.Kind > crdt.KindDoc:
		return nil
	}
	return &f.Doc
}

// States returns the encoded states of the changed rows, in Changed's
// order. A row over MaxRowBytes fails it with a *RefusedError wrapping a
// *TooLargeError, naming the transaction that last changed the row: the
// caller refuses that transaction and folds the others again.
func (f *Fold) States() ([][]byte, error) {
	max := f.MaxRowBytes
	if max <= 0 {
		max = DefaultMaxRowBytes
	}
	out := make([][]byte, len(f.order))
	for i, k := range f.order {
		out[i] = crdt.EncodeRow(f.Rows[k])
		if len(out[i]) > max {
			return nil, &RefusedError{Tx: f.last[k], Code: usync.CodeRowTooLarge,
				Err: &TooLargeError{Tx: f.last[k], Key: k, Bytes: len(out[i]), Max: max}}
		}
	}
	return out, nil
}

func (f *Fold) load(k crdt.RowKey) (*crdt.Row, error) {
	if f.Load == nil {
		return &crdt.Row{}, nil
	}
	r, err := f.Load(k)
	if err != nil {
		return nil, fmt.Errorf("rows read model: row %s/%s: %w", k.Collection, k.Row, err)
	}
	return r, nil
}

// Changed returns the rows the fold changed, in the order they were first
// changed.
func (f *Fold) Changed() []crdt.RowKey { return f.order }

// Seq returns the sequence number of the last transaction that changed
// the row (0 if none did).
func (f *Fold) Seq(k crdt.RowKey) uint64 { return f.seqs[k] }

// Keys returns the rows txs touch, each once, in order of first touch.
func Keys(txs []crdt.Tx) []crdt.RowKey {
	seen := map[crdt.RowKey]bool{}
	var keys []crdt.RowKey
	for i := range txs {
		for j := range txs[i].Ops {
			k := crdt.RowKey{Collection: txs[i].Ops[j].Collection, Row: txs[i].Ops[j].Row}
			if !seen[k] {
				seen[k] = true
				keys = append(keys, k)
			}
		}
	}
	return keys
}

// Doc renders a row's merged state as the JSON object other services
// read: each field's value (a register's last-writer-wins value, a
// counter's number, a set's members, a doc field's Automerge document
// materialised: its root map as an object, text as strings). A deleted
// row has no document (nil). A register value that is not one JSON value
// (only a log written before the server validated pushes can hold one)
// becomes a JSON string, so a document is always exactly its fields.
//
// A build without the Automerge library (crdt.DocEditing false: a server
// built with CGO_ENABLED=0) cannot read doc fields: it leaves them out,
// as it does a document that does not load. Such a build still stores,
// syncs and merges them.
func Doc(r *crdt.Row) []byte {
	return render(r, func(f *crdt.Field) ([]byte, bool) { return docJSON(&f.Doc) })
}

// render is Doc with docs rendered by doc.
func render(r *crdt.Row, doc func(*crdt.Field) ([]byte, bool)) []byte {
	if !r.Alive() {
		return nil
	}
	b := make([]byte, 0, 32*len(r.Fields)+2)
	b = append(b, '{')
	for i := range r.Fields {
		f := &r.Fields[i]
		n := len(b) // to drop a field without a value
		if n > 1 {
			b = append(b, ',')
		}
		b = appendJSONName(b, f.Name)
		b = append(b, ':')
		switch f.Kind {
		case crdt.KindCounter:
			b = strconv.AppendInt(b, f.Counter.Value(), 10)
		case crdt.KindSet:
			b = append(b, '[')
			for j, m := range f.Set.Values() {
				if j > 0 {
					b = append(b, ',')
				}
				b = appendJSONValue(b, m)
			}
			b = append(b, ']')
		case crdt.KindDoc:
			j, ok := doc(f)
			if !ok {
				b = b[:n]
				continue
			}
			b = append(b, j...)
		default:
			e, ok := f.Register.Winner()
			if !ok {
				b = b[:n]
				continue
			}
			b = appendJSONValue(b, e.Value)
		}
	}
	return append(b, '}')
}

// docJSON returns the JSON materialisation of a doc field's state, or
// false when the build cannot read documents or the state does not load.
func docJSON(s *crdt.DocState) ([]byte, bool) {
	if !crdt.DocEditing {
		return nil, false
	}
	d, err := crdt.OpenDocument(s, crdt.SiteID{})
	if err != nil {
		return nil, false
	}
	defer d.Close()
	j, err := d.JSON()
	return j, err == nil
}

// appendJSONValue appends v if it is one JSON value, else v as a JSON
// string.
func appendJSONValue(b, v []byte) []byte {
	if json.Valid(v) {
		return append(b, v...)
	}
	s, _ := json.Marshal(string(v))
	return append(b, s...)
}

// appendJSONName appends name as a JSON string, as encoding/json writes
// it.
func appendJSONName(b []byte, name string) []byte {
	for i := 0; i < len(name); i++ {
		if c := name[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			k, _ := json.Marshal(name)
			return append(b, k...)
		}
	}
	b = append(b, '"')
	b = append(b, name...)
	return append(b, '"')
}

// Scanner is what both logs' query results offer.
type Scanner interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
}

// Hash hashes rows of (collection, id, state), read in key order: the
// canonical state hash (crdt.Hasher) every client that applied the same
// log has.
func Hash(rows Scanner) ([32]byte, error) {
	h := crdt.NewHasher()
	for rows.Next() {
		var k crdt.RowKey
		var state []byte
		if err := rows.Scan(&k.Collection, &k.Row, &state); err != nil {
			return [32]byte{}, err
		}
		r, err := crdt.DecodeRow(state)
		if err != nil {
			return [32]byte{}, fmt.Errorf("row %s/%s: %w", k.Collection, k.Row, err)
		}
		h.Add(k, r)
	}
	return h.Sum(), rows.Err()
}

// CollectSnapshot reads rows of (collection, id, state), queried with
// a limit of limit+1, into a snapshot chunk of at most limit rows and
// maxBytes of states (at least one row), and reports whether more follow.
// Logs implement SnapshotRows with it.
func CollectSnapshot(rows Scanner, limit, maxBytes int) ([]usync.SnapshotRow, bool, error) {
	var out []usync.SnapshotRow
	size := 0
	for rows.Next() {
		var r usync.SnapshotRow
		if err := rows.Scan(&r.Collection, &r.Row, &r.State); err != nil {
			return nil, false, err
		}
		size += len(r.State)
		if len(out) == limit || len(out) > 0 && maxBytes > 0 && size > maxBytes {
			return out, true, rows.Err()
		}
		out = append(out, r)
	}
	return out, false, rows.Err()
}

// CollectEntries reads log entries, rows of (seq, encoded tx), into
// Changes: at most maxBytes of encodings (at least one entry; 0: no byte
// bound). keep, if not nil, is handed each entry with its encoding.
func CollectEntries(rows Scanner, maxBytes int, keep func(seq uint64, tx *crdt.Tx, enc []byte)) ([]usync.Change, error) {
	var out []usync.Change
	size := 0
	for rows.Next() {
		var seq uint64
		var b []byte
		if err := rows.Scan(&seq, &b); err != nil {
			return nil, err
		}
		if size += len(b); len(out) > 0 && maxBytes > 0 && size > maxBytes {
			break
		}
		t, err := crdt.DecodeTx(b)
		if err != nil {
			return nil, fmt.Errorf("entry %d: %w", seq, err)
		}
		if keep != nil {
			keep(seq, t, b)
		}
		out = append(out, usync.Change{Seq: seq, Tx: *t})
	}
	return out, rows.Err()
}

// CheckAppend checks what every log checks before an append: the tenant
// ID and each transaction's structure (the server ran the full rules
// before; this keeps a log that another caller uses as strict).
func CheckAppend(tenant string, txs []crdt.Tx) error {
	if err := tenancy.ValidTenant(tenant); err != nil {
		return err
	}
	for i := range txs {
		if err := txs[i].Validate(); err != nil {
			return usync.Errorf(usync.CodeMalformedTx, "%v", err)
		}
	}
	return nil
}

// CompactTx returns t without its doc changes (OpChange ops), and whether
// it had any: what log compaction keeps of an entry.
func CompactTx(t *crdt.Tx) (crdt.Tx, bool) {
	out := crdt.Tx{Site: t.Site, Seq: t.Seq, Time: t.Time}
	for _, op := range t.Ops {
		if op.Type != crdt.OpChange {
			out.Ops = append(out.Ops, op)
		}
	}
	return out, len(out.Ops) != len(t.Ops)
}
