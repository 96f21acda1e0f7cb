package pglog

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/unosync/uno/server/internal/logtrace"
	"github.com/unosync/uno/server/internal/wake"
)

// projector is an async projection's worker on one node: it folds the
// tenants whose logs grew (kicked by appends here and, through
// LISTEN/NOTIFY, on other nodes) from their checkpoints, a batch per
// transaction with the checkpoint. At start it visits every tenant of the
// registry (through uno_tenant_ids(): the server's role may not read the
// registry), so entries appended while no node ran are folded too.
type projector struct {
	l *Log
	p Projection

	queue *wake.Tenants
}

// projectBatch is the most entries folded in one transaction.
const projectBatch = 500

func newProjector(l *Log, p Projection) *projector {
	return &projector{l: l, p: p, queue: wake.NewTenants()}
}

func (pr *projector) kick(tenant string) { pr.queue.Kick(tenant) }

func (pr *projector) run(ctx context.Context) {
	if rows, err := pr.l.pool.Query(ctx, `SELECT uno_tenant_ids()`); err == nil {
		tenants, _ := pgx.CollectRows(rows, pgx.RowTo[string])
		for _, t := range tenants {
			pr.kick(t)
		}
	}
	pr.queue.Work(ctx, pr.catchUp, func(string, error) {})
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

// step folds one batch in one transaction with the checkpoint, whose row
// lock keeps other nodes from folding the same entries meanwhile.
func (pr *projector) step(ctx context.Context, tenant string) (int, error) {
	var n int
	err := pr.l.inTenant(ctx, tenant, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO uno_checkpoints (tenant_id, projection, seq) VALUES ($1, $2, 0) ON CONFLICT DO NOTHING`, tenant, pr.p.Name); err != nil {
			return err
		}
		var cp uint64
		if err := tx.QueryRow(ctx, `SELECT seq FROM uno_checkpoints WHERE tenant_id = $1 AND projection = $2 FOR UPDATE`, tenant, pr.p.Name).Scan(&cp); err != nil {
			return err
		}
		chs, err := readEvents(ctx, tx, tenant, cp, projectBatch, 0, nil)
		if err != nil || len(chs) == 0 {
			return err
		}
		fctx, span, err := startAsync(ctx, tx, pr.p.Name, tenant, chs)
		if err != nil {
			return err
		}
		err = pr.p.Fold(fctx, tx, tenant, chs)
		logtrace.End(span, err)
		if err != nil {
			return fmt.Errorf("projection %s: %w", pr.p.Name, err)
		}
		n = len(chs)
		_, err = tx.Exec(ctx, `UPDATE uno_checkpoints SET seq = $3 WHERE tenant_id = $1 AND projection = $2`, tenant, pr.p.Name, int64(chs[n-1].Seq))
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
	var seq uint64
	err := l.inTenant(ctx, tenant, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `SELECT seq FROM uno_checkpoints WHERE tenant_id = $1 AND projection = $2`, tenant, projection).Scan(&seq)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("read checkpoint: %w", err)
	}
	return seq, nil
}
