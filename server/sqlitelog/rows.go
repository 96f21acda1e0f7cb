package sqlitelog

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/unosync/uno/crdt"
	"github.com/unosync/uno/server"
	"github.com/unosync/uno/server/internal/rowmodel"
	usync "github.com/unosync/uno/sync"
)

// newFold returns the rows read model's fold for one append: rows are
// read, inside the append transaction, as the fold first touches them.
func newFold(ctx context.Context, at *appendTx, tenant string) *rowmodel.Fold {
	return &rowmodel.Fold{Docs: at.l.docs, Tenant: tenant, Load: func(k crdt.RowKey) (*crdt.Row, error) {
		var state []byte
		err := at.stmt(ctx, sqlRowState).QueryRowContext(ctx, tenant, k.Collection, k.Row).Scan(&state)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return &crdt.Row{}, nil
		case err != nil:
			return nil, err
		}
		return crdt.DecodeRow(state)
	}}
}

// saveFold writes the rows a fold changed, with their documents.
func saveFold(ctx context.Context, at *appendTx, tenant string, f *rowmodel.Fold) error {
	states, err := f.States()
	if err != nil {
		return err
	}
	for i, k := range f.Changed() {
		var doc any // NULL for a deleted row
		if d := at.l.docs.Doc(tenant, k, f.Rows[k]); d != nil {
			doc = string(d)
		}
		if _, err := at.stmt(ctx, sqlSaveState).ExecContext(ctx, tenant, k.Collection, k.Row, int64(f.Seq(k)), states[i], doc); err != nil {
			return fmt.Errorf("rows read model: %w", err)
		}
	}
	return nil
}

// RowsHash returns the canonical state hash of a tenant's rows read model:
// equal to the crdt.State hash of every client that applied the whole log.
func (l *Log) RowsHash(ctx context.Context, tenant string) ([32]byte, error) {
	if err := l.check(); err != nil {
		return [32]byte{}, err
	}
	rows, err := l.db.QueryContext(ctx, `SELECT coll, id, state FROM rows WHERE tenant = ? ORDER BY coll, id`, tenant)
	if err != nil {
		return [32]byte{}, fmt.Errorf("hash rows: %w", err)
	}
	defer rows.Close()
	sum, err := rowmodel.Hash(rows)
	if err != nil {
		return [32]byte{}, fmt.Errorf("hash rows: %w", err)
	}
	return sum, nil
}

// SnapshotRows implements server.Snapshotter.
func (l *Log) SnapshotRows(ctx context.Context, tenant string, after crdt.RowKey, limit, maxBytes int) ([]usync.SnapshotRow, bool, error) {
	if err := l.check(); err != nil {
		return nil, false, err
	}
	rows, err := l.db.QueryContext(ctx, `SELECT coll, id, state FROM rows
		WHERE tenant = ? AND (coll, id) > (?, ?) ORDER BY coll, id LIMIT ?`, tenant, after.Collection, after.Row, limit+1)
	if err != nil {
		return nil, false, fmt.Errorf("snapshot rows: %w", err)
	}
	defer rows.Close()
	out, more, err := rowmodel.CollectSnapshot(rows, limit, maxBytes)
	if err != nil {
		return nil, false, fmt.Errorf("snapshot rows: %w", err)
	}
	return out, more, nil
}

// SnapshotSize implements Snapshotter.
func (l *Log) SnapshotSize(ctx context.Context, tenant string) (uint64, uint64, error) {
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
func (l *Log) SnapshotSites(ctx context.Context, tenant string) ([]usync.SiteMark, error) {
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
func (l *Log) RowStates(ctx context.Context, tenant string, keys []crdt.RowKey) ([]usync.SnapshotRow, error) {
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

// QueryRows implements server.RowQuerier with SQLite's JSON functions.
// Ordered by a field, rows follow the query order both logs share
// (rowmodel.OrderKey: a missing field as null, then strings, numbers
// exactly, booleans, arrays, objects), then ID, all in byte order; a
// filter on a scalar matches as that order compares (1 matches 1.0), on
// null only a field that holds null.
func (l *Log) QueryRows(ctx context.Context, tenant string, q server.RowQuery) ([]server.QueryRow, error) {
	if err := l.check(); err != nil {
		return nil, err
	}
	var b strings.Builder
	// ?1 is the order field's path: doc -> ?1 is its JSON text, verbatim
	// (numbers keep every digit), NULL if missing.
	b.WriteString(`SELECT id, doc, `)
	if q.Order != "" {
		b.WriteString(`doc -> ?1`)
	} else {
		b.WriteString(`NULL`)
	}
	b.WriteString(` FROM rows WHERE tenant = ?2 AND coll = ?3 AND doc IS NOT NULL`)
	args := []any{jsonPath(q.Order), tenant, q.Collection}
	for _, w := range q.Where {
		n := len(args)
		switch rank, _, _, err := rowmodel.OrderParts(w.Value); {
		case err != nil:
			return nil, usync.Errorf(usync.CodeBadMessage, "where %s: %v", w.Field, err)
		case rank == rowmodel.RankNull:
			fmt.Fprintf(&b, ` AND json_type(doc, ?%d) = 'null'`, n+1)
			args = append(args, jsonPath(w.Field))
		case rank == rowmodel.RankArray || rank == rowmodel.RankObject:
			fmt.Fprintf(&b, ` AND json_extract(doc, ?%d) IS json_extract(?%d, '$') AND json_type(doc, ?%d) = json_type(?%d, '$')`, n+1, n+2, n+1, n+2)
			args = append(args, jsonPath(w.Field), string(w.Value))
		default:
			key, _ := rowmodel.OrderKey(w.Value)
			fmt.Fprintf(&b, ` AND uno_order_key(doc -> ?%d) = ?%d`, n+1, n+2)
			args = append(args, jsonPath(w.Field), key)
		}
	}
	cmp, dir := ">", ""
	if q.Desc {
		cmp, dir = "<", " DESC"
	}
	if q.After != nil {
		n := len(args)
		if q.Order == "" {
			fmt.Fprintf(&b, ` AND id %s ?%d`, cmp, n+1)
			args = append(args, q.After.ID)
		} else {
			key, err := rowmodel.OrderKey(q.After.Value)
			if err != nil {
				return nil, usync.Errorf(usync.CodeBadMessage, "cursor value: %v", err)
			}
			fmt.Fprintf(&b, ` AND (uno_order_key(doc -> ?1), id) %s (?%d, ?%d)`, cmp, n+1, n+2)
			args = append(args, key, q.After.ID)
		}
	}
	if q.Order != "" {
		fmt.Fprintf(&b, ` ORDER BY uno_order_key(doc -> ?1)%[1]s, id%[1]s`, dir)
	} else {
		fmt.Fprintf(&b, ` ORDER BY id%s`, dir)
	}
	fmt.Fprintf(&b, ` LIMIT %d`, q.Limit)
	rows, err := l.db.QueryContext(ctx, b.String(), args...)
	if err != nil {
		return nil, fmt.Errorf("query rows: %w", err)
	}
	defer rows.Close()
	var out []server.QueryRow
	for rows.Next() {
		var r server.QueryRow
		var doc string
		var order sql.NullString
		if err := rows.Scan(&r.ID, &doc, &order); err != nil {
			return nil, fmt.Errorf("query rows: %w", err)
		}
		r.Doc, r.Order = json.RawMessage(doc), json.RawMessage("null")
		if order.Valid {
			r.Order = json.RawMessage(order.String)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// jsonPath is the SQLite JSON path of a top-level field.
func jsonPath(field string) string {
	b, _ := json.Marshal(field)
	return "$." + string(b)
}
