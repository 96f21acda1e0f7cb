package sqlitelog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/unosync/uno/crdt"
	"github.com/unosync/uno/server"
	"github.com/unosync/uno/server/internal/rowmodel"
)

var _ server.Compactor = (*Log)(nil)

// compactBatch bounds the entries one compaction transaction reads, so
// appends (which wait for SQLite's one writer) wait for at most one batch.
const compactBatch = 1000

// CompactFloor implements server.Compactor.
func (l *Log) CompactFloor(ctx context.Context, tenant string) (uint64, error) {
	if err := l.check(); err != nil {
		return 0, err
	}
	var floor uint64
	err := l.db.QueryRowContext(ctx, `SELECT compact_floor FROM heads WHERE tenant = ?`, tenant).Scan(&floor)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return 1, nil
	case err != nil:
		return 0, fmt.Errorf("read compaction floor: %w", err)
	}
	return floor, nil
}

// Compact implements server.Compactor. It rewrites the entries in
// batches of a bounded size, each its own transaction, which moves the
// floor past the entries it rewrites (readers never see a rewritten entry
// above the floor) and records how far it got; then it forgets the
// tenant's entries kept in memory.
func (l *Log) Compact(ctx context.Context, tenant string, before uint64) (server.Compaction, error) {
	if err := l.check(); err != nil {
		return server.Compaction{}, err
	}
	var head, floor, done uint64
	err := l.db.QueryRowContext(ctx, `SELECT seq, compact_floor, compacted FROM heads WHERE tenant = ?`, tenant).Scan(&head, &floor, &done)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return server.Compaction{Floor: 1}, nil
	case err != nil:
		return server.Compaction{}, fmt.Errorf("compact log of %s: %w", tenant, err)
	}
	before = min(before, head+1)
	for _, pr := range l.async {
		var folded uint64
		err := l.db.QueryRowContext(ctx, `SELECT seq FROM checkpoints WHERE tenant = ? AND projection = ?`, tenant, pr.p.Name).Scan(&folded)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return server.Compaction{}, fmt.Errorf("compact log of %s: %w", tenant, err)
		}
		before = min(before, folded+1)
	}
	res := server.Compaction{Floor: floor}
	if before <= done {
		return res, nil
	}
	defer l.forget(tenant)
	for done < before {
		n, err := l.compactBatch(ctx, tenant, before, &done, &res)
		if err != nil {
			return res, fmt.Errorf("compact log of %s: %w", tenant, err)
		}
		if n < compactBatch {
			break
		}
	}
	return res, nil
}

// compactBatch rewrites the next batch of entries from *done below
// before, in one transaction, and moves *done past them.
func (l *Log) compactBatch(ctx context.Context, tenant string, before uint64, done *uint64, res *server.Compaction) (int, error) {
	tx, err := l.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, `SELECT seq, tx FROM events WHERE tenant = ? AND seq >= ? AND seq < ? ORDER BY seq LIMIT ?`,
		tenant, int64(*done), int64(before), compactBatch)
	if err != nil {
		return 0, err
	}
	type rewrite struct {
		seq uint64
		enc []byte
	}
	var rewrites []rewrite
	n, next := 0, before
	var rewritten, saved int64
	for rows.Next() {
		var seq uint64
		var b []byte
		if err := rows.Scan(&seq, &b); err != nil {
			rows.Close()
			return 0, err
		}
		n++
		next = seq + 1
		t, err := crdt.DecodeTx(b)
		if err != nil {
			rows.Close()
			return 0, fmt.Errorf("entry %d: %w", seq, err)
		}
		if ct, ok := rowmodel.CompactTx(t); ok {
			enc := crdt.EncodeTx(&ct)
			rewrites = append(rewrites, rewrite{seq, enc})
			rewritten, saved = rewritten+1, saved+int64(len(b)-len(enc))
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	if n < compactBatch {
		next = before
	}
	for _, r := range rewrites {
		if _, err := tx.ExecContext(ctx, `UPDATE events SET tx = ? WHERE tenant = ? AND seq = ?`, r.enc, tenant, int64(r.seq)); err != nil {
			return 0, err
		}
	}
	// The floor moves past the entries rewritten (not past those
	// left as they were: a replica that needs only those still reads
	// them), in the transaction that rewrites them.
	top := uint64(1)
	if len(rewrites) > 0 {
		top = rewrites[len(rewrites)-1].seq + 1
	}
	if _, err := tx.ExecContext(ctx, `UPDATE heads SET compact_floor = max(compact_floor, ?), compacted = max(compacted, ?) WHERE tenant = ?`,
		int64(top), int64(next), tenant); err != nil {
		return 0, err
	}
	if err := tx.Commit(); err != nil {
		return 0, err
	}
	*done = next
	res.Floor = max(res.Floor, top)
	res.Rewritten += rewritten
	res.Saved += saved
	return n, nil
}

// Tenants lists the tenants with a log, in byte order: what uno compact
// visits without --tenant.
func (l *Log) Tenants(ctx context.Context) ([]string, error) {
	if err := l.check(); err != nil {
		return nil, err
	}
	ts, err := queryTenants(ctx, l.db, `SELECT tenant FROM heads ORDER BY 1`)
	if err != nil {
		return nil, fmt.Errorf("list tenants: %w", err)
	}
	return ts, nil
}
