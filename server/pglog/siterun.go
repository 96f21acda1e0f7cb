package pglog

import (
	"context"
	"fmt"
	"math"

	"github.com/jackc/pgx/v5"
	"github.com/unosync/uno/crdt"
	"github.com/unosync/uno/server"
	usync "github.com/unosync/uno/sync"
	"github.com/unosync/uno/tenancy"
)

var _ server.SiteRunner = (*Log)(nil)

// SaveRun implements server.SiteRunner: in one transaction, it deletes
// the site's runs from run.First on and inserts run, leaving alone the
// runs of seqs the log holds (or, when another
// saved a run with the same First meanwhile, puts run's epoch in it).
func (l *Log) SaveRun(ctx context.Context, tenant string, site crdt.SiteID, run usync.Run) error {
	if err := tenancy.ValidTenant(tenant); err != nil {
		return err
	}
	if l.closed() {
		return server.ErrLogClosed
	}
	if run.First > math.MaxInt64 {
		return fmt.Errorf("save run: first seq %d out of range", run.First)
	}
	err := l.inTenant(ctx, tenant, func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		queueSaveRun(b, tenant, site, run)
		return tx.SendBatch(ctx, b).Close()
	})
	if err != nil {
		return fmt.Errorf("save run: %w", err)
	}
	return nil
}

// queueRun queues, in an append's transaction after the tenant's head
// lock and before its writes raise the site's mark, the save of the run
// ctx carries (server.WithRun), if any: the run commits with the append
// or not at all. Append checked it (server.CheckRun).
func queueRun(ctx context.Context, b *pgx.Batch, tenant string) {
	if site, run, ok := server.RunOf(ctx); ok {
		queueSaveRun(b, tenant, site, run)
	}
}

// queueSaveRun queues SaveRun's statements, in a transaction whose
// tenant setting is tenant.
func queueSaveRun(b *pgx.Batch, tenant string, site crdt.SiteID, run usync.Run) {
	// The runs of what the log holds (up to the site's mark) stay:
	// another session of the replica may have appended meanwhile.
	const mark = `coalesce((SELECT seq FROM uno_sites WHERE tenant_id = $1 AND site = $2), 0)`
	b.Queue(`DELETE FROM uno_site_runs WHERE tenant_id = $1 AND site = $2 AND first_seq >= $3 AND first_seq > `+mark,
		tenant, site[:], int64(run.First))
	// The epoch's bits as a bigint, which is signed.
	b.Queue(`INSERT INTO uno_site_runs (tenant_id, site, first_seq, epoch) SELECT $1, $2, $3, $4 WHERE $3 > `+mark+`
		ON CONFLICT (tenant_id, site, first_seq) DO UPDATE SET epoch = excluded.epoch`,
		tenant, site[:], int64(run.First), int64(run.Epoch))
}

// Runs implements server.SiteRunner. from and through above the largest
// int64 (no seq is) count as it.
func (l *Log) Runs(ctx context.Context, tenant string, site crdt.SiteID, from, through uint64, limit int) ([]usync.Run, error) {
	if l.closed() {
		return nil, server.ErrLogClosed
	}
	if limit <= 0 {
		limit = 1000
	}
	var out []usync.Run
	err := l.inTenant(ctx, tenant, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `(SELECT first_seq, epoch FROM uno_site_runs WHERE tenant_id = $1 AND site = $2 AND first_seq <= $3
				ORDER BY first_seq DESC LIMIT 1)
			UNION ALL
			(SELECT first_seq, epoch FROM uno_site_runs WHERE tenant_id = $1 AND site = $2 AND first_seq > $3 AND first_seq <= $4
				ORDER BY first_seq LIMIT $5)
			ORDER BY first_seq LIMIT $5`, tenant, site[:], clampSeq(from), clampSeq(through), limit)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (usync.Run, error) {
			var first, epoch int64
			err := r.Scan(&first, &epoch)
			return usync.Run{First: uint64(first), Epoch: uint64(epoch)}, err
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read runs: %w", err)
	}
	return out, nil
}

// clampSeq returns seq as an int64, the largest one if it is above.
func clampSeq(seq uint64) int64 {
	return int64(min(seq, math.MaxInt64))
}
