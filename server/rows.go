package server

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/unosync/uno/crdt"
	usync "github.com/unosync/uno/sync"
)

// rowsProjection folds transactions into the rows read model: the merged
// state of every row (crdt.EncodeRow), the same state every client holds
// once it has the same transactions. It runs inline, in the append
// transaction, so the read model is always exactly the log's state.
type rowsProjection struct {
	tx     *appendTx
	tenant string
	rows   map[crdt.RowKey]*crdt.Row
	seqs   map[crdt.RowKey]uint64
	order  []crdt.RowKey
}

func newRowsProjection(tx *appendTx, tenant string) *rowsProjection {
	return &rowsProjection{tx: tx, tenant: tenant, rows: map[crdt.RowKey]*crdt.Row{}, seqs: map[crdt.RowKey]uint64{}}
}

func (p *rowsProjection) load(ctx context.Context, k crdt.RowKey) (*crdt.Row, error) {
	if r, ok := p.rows[k]; ok {
		return r, nil
	}
	var state []byte
	err := p.tx.stmt(ctx, sqlRowState).QueryRowContext(ctx, p.tenant, k.Collection, k.Row).Scan(&state)
	r := &crdt.Row{}
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return nil, fmt.Errorf("rows projection: %w", err)
	default:
		if r, err = crdt.DecodeRow(state); err != nil {
			return nil, fmt.Errorf("rows projection: row %s/%s: %w", k.Collection, k.Row, err)
		}
	}
	p.rows[k] = r
	p.order = append(p.order, k)
	return r, nil
}

func (p *rowsProjection) apply(ctx context.Context, t *crdt.Tx, seq uint64) error {
	d := t.Dot()
	for i := range t.Ops {
		op := &t.Ops[i]
		k := crdt.RowKey{Collection: op.Collection, Row: op.Row}
		r, err := p.load(ctx, k)
		if err != nil {
			return err
		}
		if _, err := r.Apply(op, d); err != nil {
			return err
		}
		p.seqs[k] = seq
	}
	return nil
}

func (p *rowsProjection) flush(ctx context.Context) error {
	for _, k := range p.order {
		seq, changed := p.seqs[k]
		if !changed {
			continue
		}
		var doc any // NULL for a deleted row
		if d := rowDoc(p.rows[k]); d != nil {
			doc = string(d)
		}
		if _, err := p.tx.stmt(ctx, sqlSaveState).ExecContext(ctx, p.tenant, k.Collection, k.Row, int64(seq), crdt.EncodeRow(p.rows[k]), doc); err != nil {
			return fmt.Errorf("rows projection: %w", err)
		}
	}
	return nil
}

// RowsHash returns the canonical state hash of a tenant's rows read model:
// equal to the crdt.State hash of every client that applied the whole log.
func (l *SQLiteLog) RowsHash(ctx context.Context, tenant string) ([32]byte, error) {
	if err := l.check(); err != nil {
		return [32]byte{}, err
	}
	rows, err := l.db.QueryContext(ctx, `SELECT coll, id, state FROM rows WHERE tenant = ? ORDER BY coll, id`, tenant)
	if err != nil {
		return [32]byte{}, fmt.Errorf("hash rows: %w", err)
	}
	defer rows.Close()
	sum, err := hashRows(rows)
	if err != nil {
		return [32]byte{}, fmt.Errorf("hash rows: %w", err)
	}
	return sum, nil
}

// rowScanner is what both logs' query results offer.
type rowScanner interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
}

// hashRows hashes rows of (collection, id, state) in key order.
func hashRows(rows rowScanner) ([32]byte, error) {
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

// SnapshotRows implements Snapshotter.
func (l *SQLiteLog) SnapshotRows(ctx context.Context, tenant string, after crdt.RowKey, limit int) ([]usync.SnapshotRow, error) {
	if err := l.check(); err != nil {
		return nil, err
	}
	rows, err := l.db.QueryContext(ctx, `SELECT coll, id, state FROM rows
		WHERE tenant = ? AND (coll, id) > (?, ?) ORDER BY coll, id LIMIT ?`, tenant, after.Collection, after.Row, limit)
	if err != nil {
		return nil, fmt.Errorf("snapshot rows: %w", err)
	}
	defer rows.Close()
	var out []usync.SnapshotRow
	for rows.Next() {
		var r usync.SnapshotRow
		if err := rows.Scan(&r.Collection, &r.Row, &r.State); err != nil {
			return nil, fmt.Errorf("snapshot rows: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// SnapshotSize implements Snapshotter.
func (l *SQLiteLog) SnapshotSize(ctx context.Context, tenant string) (uint64, uint64, error) {
	if err := l.check(); err != nil {
		return 0, 0, err
	}
	var n, b uint64
	if err := l.db.QueryRowContext(ctx, `SELECT count(*), coalesce(sum(length(state)), 0) FROM rows WHERE tenant = ?`, tenant).Scan(&n, &b); err != nil {
		return 0, 0, fmt.Errorf("snapshot size: %w", err)
	}
	return n, b, nil
}

// SnapshotSites implements Snapshotter.
func (l *SQLiteLog) SnapshotSites(ctx context.Context, tenant string) ([]usync.SiteMark, error) {
	if err := l.check(); err != nil {
		return nil, err
	}
	rows, err := l.db.QueryContext(ctx, `SELECT site, seq FROM sites WHERE tenant = ? ORDER BY site`, tenant)
	if err != nil {
		return nil, fmt.Errorf("snapshot sites: %w", err)
	}
	defer rows.Close()
	var out []usync.SiteMark
	for rows.Next() {
		var site []byte
		var m usync.SiteMark
		if err := rows.Scan(&site, &m.Seq); err != nil {
			return nil, fmt.Errorf("snapshot sites: %w", err)
		}
		copy(m.Site[:], site)
		out = append(out, m)
	}
	return out, rows.Err()
}

// RowStates returns the current states of the named rows; a row never
// written has no State.
func (l *SQLiteLog) RowStates(ctx context.Context, tenant string, keys []crdt.RowKey) ([]usync.SnapshotRow, error) {
	if err := l.check(); err != nil {
		return nil, err
	}
	var out []usync.SnapshotRow
	for _, k := range keys {
		var state []byte
		err := l.db.QueryRowContext(ctx, `SELECT state FROM rows WHERE tenant = ? AND coll = ? AND id = ?`, tenant, k.Collection, k.Row).Scan(&state)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return nil, fmt.Errorf("row states: %w", err)
		}
		out = append(out, usync.SnapshotRow{Collection: k.Collection, Row: k.Row, State: state})
	}
	return out, nil
}

// addRowDocs upgrades a log written before the rows read model kept JSON
// documents: it adds the doc column and fills it from the states.
func addRowDocs(ctx context.Context, db *sql.DB) error {
	var n int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM pragma_table_info('rows') WHERE name = 'doc'`).Scan(&n); err != nil || n > 0 {
		return err
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `ALTER TABLE rows ADD COLUMN doc TEXT`); err != nil {
		return err
	}
	rows, err := tx.QueryContext(ctx, `SELECT tenant, coll, id, state FROM rows`)
	if err != nil {
		return err
	}
	type docRow struct{ tenant, coll, id, doc string }
	var docs []docRow
	for rows.Next() {
		var d docRow
		var state []byte
		if err := rows.Scan(&d.tenant, &d.coll, &d.id, &state); err != nil {
			rows.Close()
			return err
		}
		r, err := crdt.DecodeRow(state)
		if err != nil {
			rows.Close()
			return fmt.Errorf("row %s/%s: %w", d.coll, d.id, err)
		}
		if doc := rowDoc(r); doc != nil {
			d.doc = string(doc)
			docs = append(docs, d)
		}
	}
	rows.Close()
	for _, d := range docs {
		if _, err := tx.ExecContext(ctx, `UPDATE rows SET doc = ? WHERE tenant = ? AND coll = ? AND id = ?`, d.doc, d.tenant, d.coll, d.id); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// QueryRows answers a query over the rows read model with SQLite's JSON
// functions. Ordered by a field, values sort as SQLite compares them
// (numbers before text); rows without the field come first.
func (l *SQLiteLog) QueryRows(ctx context.Context, tenant string, q RowQuery) ([]QueryRow, error) {
	if err := l.check(); err != nil {
		return nil, err
	}
	var b strings.Builder
	b.WriteString(`SELECT id, doc, `)
	// The order key is (has the field, its value, id): never NULL, so a
	// cursor compares with it as a row value.
	key := `id`
	if q.Order != "" {
		key = `json_type(doc, ?1) IS NOT NULL, ifnull(json_extract(doc, ?1), 0), id`
		b.WriteString(`json_extract(doc, ?1), json_type(doc, ?1)`)
	} else {
		b.WriteString(`NULL, NULL`)
	}
	b.WriteString(` FROM rows WHERE tenant = ?2 AND coll = ?3 AND doc IS NOT NULL`)
	args := []any{jsonPath(q.Order), tenant, q.Collection}
	for _, w := range q.Where {
		n := len(args)
		fmt.Fprintf(&b, ` AND json_extract(doc, ?%d) IS json_extract(?%d, '$') AND json_type(doc, ?%d) = json_type(?%d, '$')`, n+1, n+2, n+1, n+2)
		args = append(args, jsonPath(w.Field), string(w.Value))
	}
	cmp, dir := ">", ""
	if q.Desc {
		cmp, dir = "<", " DESC"
	}
	if q.After != nil {
		n := len(args)
		has, val := 0, any(0)
		if q.Order != "" && string(q.After.Value) != "null" {
			has = 1
			var v any
			if err := json.Unmarshal(q.After.Value, &v); err != nil {
				return nil, usync.Errorf(usync.CodeBadMessage, "cursor value: %v", err)
			}
			switch v := v.(type) {
			case bool: // json_extract gives 1 or 0
				val = map[bool]int{true: 1, false: 0}[v]
			case string, float64:
				val = v
			default:
				val = string(q.After.Value)
			}
		}
		if q.Order == "" {
			fmt.Fprintf(&b, ` AND id %s ?%d`, cmp, n+1)
			args = append(args, q.After.ID)
		} else {
			fmt.Fprintf(&b, ` AND (%s) %s (?%d, ?%d, ?%d)`, key, cmp, n+1, n+2, n+3)
			args = append(args, has, val, q.After.ID)
		}
	}
	if q.Order != "" {
		fmt.Fprintf(&b, ` ORDER BY json_type(doc, ?1) IS NOT NULL%[1]s, ifnull(json_extract(doc, ?1), 0)%[1]s, id%[1]s`, dir)
	} else {
		fmt.Fprintf(&b, ` ORDER BY id%s`, dir)
	}
	fmt.Fprintf(&b, ` LIMIT %d`, q.Limit)
	rows, err := l.db.QueryContext(ctx, b.String(), args...)
	if err != nil {
		return nil, fmt.Errorf("query rows: %w", err)
	}
	defer rows.Close()
	var out []QueryRow
	for rows.Next() {
		var r QueryRow
		var doc string
		var val any
		var typ sql.NullString
		if err := rows.Scan(&r.ID, &doc, &val, &typ); err != nil {
			return nil, fmt.Errorf("query rows: %w", err)
		}
		r.Doc = json.RawMessage(doc)
		r.Order = sqliteJSON(val, typ.String)
		out = append(out, r)
	}
	return out, rows.Err()
}

// sqliteJSON turns a json_extract result back into JSON.
func sqliteJSON(v any, typ string) json.RawMessage {
	switch typ {
	case "", "null":
		return json.RawMessage("null")
	case "true", "false":
		return json.RawMessage(typ)
	case "object", "array":
		switch v := v.(type) {
		case string:
			return json.RawMessage(v)
		case []byte:
			return json.RawMessage(v)
		}
	}
	b, _ := json.Marshal(v)
	return b
}
