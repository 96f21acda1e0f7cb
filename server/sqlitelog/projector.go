package sqlitelog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"github.com/unosync/uno/server/internal/logtrace"
	"github.com/unosync/uno/server/internal/wake"
)

// projector is an async projection's worker: it folds the tenants whose
// logs grew (kicked by the log's commits) from their checkpoints, a batch
// per transaction with the checkpoint. At start it visits every tenant
// with a log, so entries appended while no server ran (or before a
// restart) are folded too.
type projector struct {
	l *Log
	p Projection

	queue *wake.Tenants
}

// projectBatch is the most entries folded in one transaction: appends
// wait for SQLite's one writer at most that long.
const projectBatch = 500

func newProjector(l *Log, p Projection) *projector {
	return &projector{l: l, p: p, queue: wake.NewTenants()}
}

func (pr *projector) kick(tenant string) { pr.queue.Kick(tenant) }

// runProjector folds until ctx is done.
func (pr *projector) run(ctx context.Context) {
	if tenants, err := pr.tenants(ctx); err == nil {
		for _, t := range tenants {
			pr.kick(t)
		}
	}
	pr.queue.Work(ctx, pr.catchUp, func(tenant string, err error) {
		pr.l.logf("projection %s: tenant %s: %v (retrying)", pr.p.Name, tenant, err)
	})
}

func (pr *projector) tenants(ctx context.Context) ([]string, error) {
	return queryTenants(ctx, pr.l.db, `SELECT tenant FROM heads`)
}

// catchUp folds the tenant's entries after its checkpoint.
func (pr *projector) catchUp(ctx context.Context, tenant string) error {
	for {
		n, err := pr.step(ctx, tenant)
		if err != nil || n < projectBatch {
			return err
		}
	}
}

// step folds one batch in one write transaction with the checkpoint:
// SQLite's one writer keeps anyone else (a rebuild, another process)
// from folding the same entries meanwhile.
func (pr *projector) step(ctx context.Context, tenant string) (int, error) {
	var n int
	err := inTx(ctx, pr.l.db, func(tx *sql.Tx) error {
		var cp uint64
		err := tx.QueryRowContext(ctx, `SELECT seq FROM checkpoints WHERE tenant = ? AND projection = ?`, tenant, pr.p.Name).Scan(&cp)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		chs, err := readEntries(ctx, tx, tenant, cp, projectBatch)
		if err != nil || len(chs) == 0 {
			return err
		}
		fctx, span, err := pr.l.startAsync(ctx, tx, pr.p.Name, tenant, chs)
		if err != nil {
			return err
		}
		err = pr.p.Fold(fctx, tx, tenant, chs)
		logtrace.End(span, err)
		if err != nil {
			return fmt.Errorf("projection %s: %w", pr.p.Name, err)
		}
		n = len(chs)
		_, err = tx.ExecContext(ctx, `INSERT INTO checkpoints (tenant, projection, seq) VALUES (?, ?, ?)
			ON CONFLICT (tenant, projection) DO UPDATE SET seq = excluded.seq`, tenant, pr.p.Name, int64(chs[n-1].Seq))
		return err
	})
	return n, err
}

// Checkpoint returns how far projection has folded tenant's log: the
// tenant's head for the rows read model and inline projections, the
// committed checkpoint for async ones.
func (l *Log) Checkpoint(ctx context.Context, tenant, projection string) (uint64, error) {
	async := false
	for _, pr := range l.async {
		async = async || pr.p.Name == projection
	}
	if !async {
		return l.Head(ctx, tenant)
	}
	if err := l.check(); err != nil {
		return 0, err
	}
	var seq uint64
	err := l.db.QueryRowContext(ctx, `SELECT seq FROM checkpoints WHERE tenant = ? AND projection = ?`, tenant, projection).Scan(&seq)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("read checkpoint: %w", err)
	}
	return seq, nil
}
