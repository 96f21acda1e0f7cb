package pglog

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// LogStart implements server.Retainer.
func (l *Log) LogStart(ctx context.Context, tenant string) (uint64, error) {
	var start uint64
	err := l.inTenant(ctx, tenant, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `SELECT coalesce(
			(SELECT min(seq) FROM uno_events WHERE tenant_id = $1),
			(SELECT seq + 1 FROM uno_heads WHERE tenant_id = $1),
			1)`, tenant).Scan(&start)
	})
	if err != nil {
		return 0, fmt.Errorf("read log start: %w", err)
	}
	return start, nil
}

// Retain deletes the tenant's log entries appended before the time, but
// none that an async projection has not folded yet, and returns how many
// it deleted. The rows read model, the heads and the sites' high-water
// marks stay: appends remain idempotent and clients whose cursors fall
// behind the log bootstrap from the read model.
func (l *Log) Retain(ctx context.Context, tenant string, before time.Time) (int64, error) {
	var n int64
	names := make([]string, len(l.async))
	for i, pr := range l.async {
		names[i] = pr.p.Name
	}
	err := l.inTenant(ctx, tenant, func(tx pgx.Tx) error {
		var cut int64
		err := tx.QueryRow(ctx, `SELECT coalesce(max(seq), 0) FROM uno_events WHERE tenant_id = $1 AND appended_at < $2`, tenant, before).Scan(&cut)
		if err != nil || cut == 0 {
			return err
		}
		if len(names) > 0 {
			var folded *int64 // every async projection's checkpoint, or none
			err := tx.QueryRow(ctx, `SELECT CASE WHEN count(*) = $3 THEN min(seq) END FROM uno_checkpoints
				WHERE tenant_id = $1 AND projection = ANY($2)`, tenant, names, len(names)).Scan(&folded)
			if err != nil && !errors.Is(err, pgx.ErrNoRows) {
				return err
			}
			if folded == nil {
				return nil
			}
			cut = min(cut, *folded)
		}
		tag, err := tx.Exec(ctx, `DELETE FROM uno_events WHERE tenant_id = $1 AND seq <= $2`, tenant, cut)
		n = tag.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("retain log of %s: %w", tenant, err)
	}
	return n, nil
}
