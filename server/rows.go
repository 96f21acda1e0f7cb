package server

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

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
		if _, err := p.tx.stmt(ctx, sqlSaveState).ExecContext(ctx, p.tenant, k.Collection, k.Row, int64(seq), crdt.EncodeRow(p.rows[k])); err != nil {
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
	h := crdt.NewHasher()
	for rows.Next() {
		var k crdt.RowKey
		var state []byte
		if err := rows.Scan(&k.Collection, &k.Row, &state); err != nil {
			return [32]byte{}, fmt.Errorf("hash rows: %w", err)
		}
		r, err := crdt.DecodeRow(state)
		if err != nil {
			return [32]byte{}, fmt.Errorf("hash rows: %w", err)
		}
		h.Add(k, r)
	}
	if err := rows.Err(); err != nil {
		return [32]byte{}, fmt.Errorf("hash rows: %w", err)
	}
	return h.Sum(), nil
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

// RowsPage returns up to limit rows of one collection with IDs above
// after, by ID.
func (l *SQLiteLog) RowsPage(ctx context.Context, tenant, coll, after string, limit int) ([]usync.SnapshotRow, error) {
	if err := l.check(); err != nil {
		return nil, err
	}
	rows, err := l.db.QueryContext(ctx, `SELECT id, state FROM rows WHERE tenant = ? AND coll = ? AND id > ? ORDER BY id LIMIT ?`, tenant, coll, after, limit)
	if err != nil {
		return nil, fmt.Errorf("rows page: %w", err)
	}
	defer rows.Close()
	var out []usync.SnapshotRow
	for rows.Next() {
		r := usync.SnapshotRow{Collection: coll}
		if err := rows.Scan(&r.Row, &r.State); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}
