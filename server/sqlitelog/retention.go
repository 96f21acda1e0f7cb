package sqlitelog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/unosync/uno/server"
)

var _ server.Retainer = (*Log)(nil)

// retainBatch bounds the entries one retention transaction deletes, so
// appends (which wait for SQLite's one writer) wait for at most one batch.
const retainBatch = 10_000

// LogStart implements server.Retainer: the oldest sequence number the
// tenant's log holds, its head + 1 when it holds none, 1 for a tenant
// with no log.
func (l *Log) LogStart(ctx context.Context, tenant string) (uint64, error) {
	if err := l.check(); err != nil {
		return 0, err
	}
	var start uint64
	err := l.db.QueryRowContext(ctx, `SELECT coalesce(
		(SELECT min(seq) FROM events WHERE tenant = ?1),
		(SELECT seq + 1 FROM heads WHERE tenant = ?1),
		1)`, tenant).Scan(&start)
	if err != nil {
		return 0, fmt.Errorf("read log start: %w", err)
	}
	return start, nil
}

// Retain implements server.Retainer: it deletes the tenant's entries up
// to the newest one appended before the time (so the log stays gap-free
// from LogStart even if the clock went back) and returns how many. The
// rows read model and the inline projections are folded in the append
// transaction; it deletes no entry past the checkpoint of an async
// projection of the log, so no entry goes unfolded. The heads, the
// sites' high-water marks and the rows stay: appends remain idempotent,
// and a reader whose cursor falls behind the log reads the first entry
// held (a gap it sees) and bootstraps from a snapshot. Entries appended
// before schema version 3 count as appended when the log was migrated.
//
// It deletes in batches of a bounded size, each its own transaction, then
// forgets the tenant's entries kept in memory: once it returns, no reader
// is served an entry it deleted.
func (l *Log) Retain(ctx context.Context, tenant string, before time.Time) (int64, error) {
	if err := l.check(); err != nil {
		return 0, err
	}
	var cut int64
	err := l.db.QueryRowContext(ctx, `SELECT coalesce(max(seq), 0) FROM events WHERE tenant = ? AND appended_at < ?`,
		tenant, before.UnixMilli()).Scan(&cut)
	if err != nil {
		return 0, fmt.Errorf("retain log of %s: %w", tenant, err)
	}
	if cut == 0 {
		return 0, nil
	}
	for _, pr := range l.async {
		// Checkpoints only move forward: deleting up to one read here
		// stays safe.
		var folded int64
		err := l.db.QueryRowContext(ctx, `SELECT seq FROM checkpoints WHERE tenant = ? AND projection = ?`, tenant, pr.p.Name).Scan(&folded)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return 0, fmt.Errorf("retain log of %s: %w", tenant, err)
		}
		cut = min(cut, folded)
	}
	if cut == 0 {
		return 0, nil
	}
	var n int64
	for {
		res, err := l.db.ExecContext(ctx, `DELETE FROM events WHERE tenant = ?1 AND seq IN
			(SELECT seq FROM events WHERE tenant = ?1 AND seq <= ?2 ORDER BY seq LIMIT ?3)`, tenant, cut, retainBatch)
		if err != nil {
			l.forget(tenant)
			return n, fmt.Errorf("retain log of %s: %w", tenant, err)
		}
		d, _ := res.RowsAffected()
		n += d
		if d < retainBatch {
			l.forget(tenant)
			return n, nil
		}
	}
}

// forget drops what the log keeps in memory of tenant, after entries or
// the tenant were deleted from the database. Every commit that preceded
// the deletion has put its entries in memory by then (the committer holds
// publish from its commit until it has), so none comes back.
func (l *Log) forget(tenant string) {
	l.publish.Lock()
	defer l.publish.Unlock()
	l.tails.forget(tenant)
}
