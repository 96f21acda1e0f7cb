package pglog

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/unosync/uno/crdt"
	"github.com/unosync/uno/server"
	"github.com/unosync/uno/server/internal/rowmodel"
)

var _ server.Compactor = (*Log)(nil)

// compactBatch bounds the entries one compaction transaction rewrites.
const compactBatch = 1000

// CompactFloor implements server.Compactor.
func (l *Log) CompactFloor(ctx context.Context, tenant string) (uint64, error) {
	if l.closed() {
		return 0, server.ErrLogClosed
	}
	floor := uint64(1)
	err := l.inTenant(ctx, tenant, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `SELECT compact_floor FROM uno_heads WHERE tenant_id = $1`, tenant).Scan(&floor)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("read compaction floor: %w", err)
	}
	return floor, nil
}

// Compact implements server.Compactor. It rewrites the entries in
// batches of a bounded size, each its own transaction, which ends by
// moving the floor and recording how far it got: the head row's lock,
// which appends wait for, is held only from that update to the commit.
func (l *Log) Compact(ctx context.Context, tenant string, before uint64) (server.Compaction, error) {
	if l.closed() {
		return server.Compaction{}, server.ErrLogClosed
	}
	names := make([]string, len(l.async))
	for i, pr := range l.async {
		names[i] = pr.p.Name
	}
	var head, floor, done uint64
	err := l.inTenant(ctx, tenant, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `SELECT seq, compact_floor, compacted FROM uno_heads WHERE tenant_id = $1`, tenant).Scan(&head, &floor, &done)
		if errors.Is(err, pgx.ErrNoRows) {
			head, floor, done = 0, 1, 1
			return nil
		}
		if err != nil || len(names) == 0 {
			return err
		}
		var folded *int64 // every async projection's checkpoint, or none
		err = tx.QueryRow(ctx, `SELECT CASE WHEN count(*) = $3 THEN min(seq) END FROM uno_checkpoints
			WHERE tenant_id = $1 AND projection = ANY($2)`, tenant, names, len(names)).Scan(&folded)
		if err != nil {
			return err
		}
		if folded == nil {
			head = 0
		} else {
			head = min(head, uint64(*folded))
		}
		return nil
	})
	if err != nil {
		return server.Compaction{}, fmt.Errorf("compact log of %s: %w", tenant, err)
	}
	before = min(before, head+1)
	res := server.Compaction{Floor: floor}
	if before <= done {
		return res, nil
	}
	for done < before {
		err := l.inTenant(ctx, tenant, func(tx pgx.Tx) error {
			return compactBatchPG(ctx, tx, tenant, before, &done, &res)
		})
		if err != nil {
			return res, fmt.Errorf("compact log of %s: %w", tenant, err)
		}
	}
	return res, nil
}

// compactBatchPG rewrites the next batch of entries from *done below
// before in tx, moves the floor and records the progress. *done and res
// move only when tx commits: the caller retries nothing itself.
func compactBatchPG(ctx context.Context, tx pgx.Tx, tenant string, before uint64, done *uint64, res *server.Compaction) error {
	rows, err := tx.Query(ctx, `SELECT seq, tx FROM uno_events WHERE tenant_id = $1 AND seq >= $2 AND seq < $3 ORDER BY seq LIMIT $4`,
		tenant, int64(*done), int64(before), compactBatch)
	if err != nil {
		return err
	}
	var seqs []int64
	var encs [][]byte
	n, next := 0, before
	var saved int64
	for rows.Next() {
		var seq int64
		var b []byte
		if err := rows.Scan(&seq, &b); err != nil {
			rows.Close()
			return err
		}
		n++
		next = uint64(seq) + 1
		t, err := crdt.DecodeTx(b)
		if err != nil {
			rows.Close()
			return fmt.Errorf("entry %d: %w", seq, err)
		}
		if ct, ok := rowmodel.CompactTx(t); ok {
			enc := crdt.EncodeTx(&ct)
			seqs, encs = append(seqs, seq), append(encs, enc)
			saved += int64(len(b) - len(enc))
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	if n < compactBatch {
		next = before
	}
	if len(seqs) > 0 {
		if _, err := tx.Exec(ctx, `UPDATE uno_events e SET tx = u.tx FROM unnest($2::bigint[], $3::bytea[]) AS u(seq, tx)
			WHERE e.tenant_id = $1 AND e.seq = u.seq`, tenant, seqs, encs); err != nil {
			return err
		}
	}
	// The floor moves past the entries rewritten (not past those left
	// as they were: a replica that needs only those still reads them).
	top := uint64(1)
	if len(seqs) > 0 {
		top = uint64(seqs[len(seqs)-1]) + 1
	}
	if _, err := tx.Exec(ctx, `UPDATE uno_heads SET compact_floor = greatest(compact_floor, $2), compacted = greatest(compacted, $3)
		WHERE tenant_id = $1`, tenant, int64(top), int64(next)); err != nil {
		return err
	}
	// The caller's transaction commits after this returns; counting
	// before it does overstates only a failed run's report.
	*done = next
	res.Floor = max(res.Floor, top)
	res.Rewritten += int64(len(seqs))
	res.Saved += saved
	return nil
}

// Tenants lists the registered tenants, in order, through
// uno_tenant_ids() (row-level security hides the other tenants' heads
// from the server's role): what uno compact visits without --tenant.
func (l *Log) Tenants(ctx context.Context) ([]string, error) {
	if l.closed() {
		return nil, server.ErrLogClosed
	}
	rows, err := l.pool.Query(ctx, `SELECT uno_tenant_ids()`)
	if err != nil {
		return nil, fmt.Errorf("list tenants: %w", err)
	}
	ts, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("list tenants: %w", err)
	}
	return ts, nil
}
