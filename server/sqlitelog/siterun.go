package sqlitelog

import (
	"context"
	"database/sql"
	"fmt"
	"math"

	"github.com/unosync/uno/crdt"
	"github.com/unosync/uno/server"
	usync "github.com/unosync/uno/sync"
	"github.com/unosync/uno/tenancy"
)

var _ server.SiteRunner = (*Log)(nil)

// SaveRun implements server.SiteRunner: in one write transaction, it
// deletes the site's runs from run.First on and inserts run, leaving
// alone the runs of seqs the log holds. The
// transaction begins IMMEDIATE (as the log's every write does), so it
// waits for SQLite's one writer, an append's group commit, up to the busy
// timeout, rather than fail when the lock is taken.
func (l *Log) SaveRun(ctx context.Context, tenant string, site crdt.SiteID, run usync.Run) error {
	if err := tenancy.ValidTenant(tenant); err != nil {
		return err
	}
	if err := l.check(); err != nil {
		return err
	}
	if err := inTx(ctx, l.db, func(tx *sql.Tx) error { return saveRun(ctx, tx, tenant, site, run) }); err != nil {
		return fmt.Errorf("save run: %w", err)
	}
	return nil
}

// saveRun is SaveRun's work, in tx: an append's (see commitGroup) or
// its own.
func saveRun(ctx context.Context, tx *sql.Tx, tenant string, site crdt.SiteID, run usync.Run) error {
	if run.First > math.MaxInt64 {
		return fmt.Errorf("save run: first seq %d out of range", run.First)
	}
	// The runs of what the log holds (up to the site's mark) stay:
	// another session of the replica may have appended meanwhile.
	const mark = `coalesce((SELECT seq FROM sites WHERE tenant = ?1 AND site = ?2), 0)`
	if _, err := tx.ExecContext(ctx, `DELETE FROM site_runs WHERE tenant = ?1 AND site = ?2 AND first_seq >= ?3 AND first_seq > `+mark,
		tenant, site[:], int64(run.First)); err != nil {
		return err
	}
	// The epoch's bits as an int64: SQLite's integers are signed.
	_, err := tx.ExecContext(ctx, `INSERT INTO site_runs (tenant, site, first_seq, epoch) SELECT ?1, ?2, ?3, ?4 WHERE ?3 > `+mark,
		tenant, site[:], int64(run.First), int64(run.Epoch))
	return err
}

// Runs implements server.SiteRunner. from and through above the largest
// int64 (no seq is) count as it.
func (l *Log) Runs(ctx context.Context, tenant string, site crdt.SiteID, from, through uint64, limit int) ([]usync.Run, error) {
	if err := l.check(); err != nil {
		return nil, err
	}
	if limit <= 0 {
		limit = 1000
	}
	rows, err := l.db.QueryContext(ctx, `SELECT first_seq, epoch FROM (
			SELECT first_seq, epoch FROM site_runs WHERE tenant = ?1 AND site = ?2 AND first_seq <= ?3
			ORDER BY first_seq DESC LIMIT 1)
		UNION ALL
		SELECT first_seq, epoch FROM (
			SELECT first_seq, epoch FROM site_runs WHERE tenant = ?1 AND site = ?2 AND first_seq > ?3 AND first_seq <= ?4
			ORDER BY first_seq LIMIT ?5)
		ORDER BY first_seq LIMIT ?5`, tenant, site[:], clampSeq(from), clampSeq(through), limit)
	if err != nil {
		return nil, fmt.Errorf("read runs: %w", err)
	}
	defer rows.Close()
	var out []usync.Run
	for rows.Next() {
		var first, epoch int64
		if err := rows.Scan(&first, &epoch); err != nil {
			return nil, fmt.Errorf("read runs: %w", err)
		}
		out = append(out, usync.Run{First: uint64(first), Epoch: uint64(epoch)})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read runs: %w", err)
	}
	return out, nil
}

// clampSeq returns seq as an int64, the largest one if it is above.
func clampSeq(seq uint64) int64 {
	return int64(min(seq, math.MaxInt64))
}
