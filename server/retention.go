package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// logStarter is the optional capability of a log that forgets old
// entries: the oldest sequence number it still holds (the head + 1 when it
// holds none, 1 for a tenant with no log).
type logStarter interface {
	LogStart(ctx context.Context, tenant string) (uint64, error)
}

// retainer is the optional capability of a log that can forget entries
// appended before a time.
type retainer interface {
	Retain(ctx context.Context, tenant string, before time.Time) (int64, error)
}

// lister is the optional capability of a registry that lists its tenants.
type lister interface {
	List(ctx context.Context) ([]Tenant, error)
}

// LogStart implements logStarter.
func (l *PGLog) LogStart(ctx context.Context, tenant string) (uint64, error) {
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
func (l *PGLog) Retain(ctx context.Context, tenant string, before time.Time) (int64, error) {
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

// ApplyRetention deletes, for every tenant of the registry with a
// retention, the log entries older than it. The server runs it every
// RetentionInterval when its registry can list tenants and its log can
// forget entries.
func (s *Server) ApplyRetention(ctx context.Context) error {
	ls, ok1 := s.cfg.Registry.(lister)
	r, ok2 := s.cfg.Log.(retainer)
	if !ok1 || !ok2 {
		return errors.New("server: retention needs a registry that lists tenants and a log that forgets entries (Postgres)")
	}
	tenants, err := ls.List(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, t := range tenants {
		if t.RetentionDays <= 0 {
			continue
		}
		before := s.cfg.Now().Add(-time.Duration(t.RetentionDays) * 24 * time.Hour)
		n, err := r.Retain(ctx, t.ID, before)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		s.m.retained.Add(float64(n))
		if n > 0 {
			s.cfg.Logger.Info("retention", "tenant", t.ID, "deleted", n, "before", before)
		}
	}
	return errors.Join(errs...)
}

// retain runs ApplyRetention every RetentionInterval until the server closes.
func (s *Server) retain() {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.RetentionInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			if err := s.ApplyRetention(s.ctx); err != nil {
				s.cfg.Logger.Warn("retention", "err", err)
			}
		case <-s.ctx.Done():
			return
		}
	}
}
