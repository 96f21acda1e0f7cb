package server

import (
	"context"
	"errors"
	"time"
)

// ApplyRetention deletes, for every tenant of the registry with a
// retention, the log entries older than it. The server runs it every
// RetentionInterval (unless negative) when its registry can list tenants
// and its log can forget entries.
func (s *Server) ApplyRetention(ctx context.Context) error {
	_, err := s.Retain(ctx, "")
	return err
}

// Retain applies the retention of one tenant of the registry, or of
// every tenant when tenant is "", and returns the entries deleted.
func (s *Server) Retain(ctx context.Context, tenant string) (int64, error) {
	r, ok := s.cfg.Log.(Retainer)
	if s.cfg.Registry == nil || !ok {
		return 0, errors.New("server: retention needs a registry and a log that forgets entries")
	}
	tenants, err := s.cfg.Registry.Retained(ctx)
	if err != nil {
		return 0, err
	}
	var errs []error
	var total int64
	for _, t := range tenants {
		if t.RetentionDays <= 0 || tenant != "" && t.ID != tenant {
			continue
		}
		before := s.cfg.Now().Add(-time.Duration(t.RetentionDays) * 24 * time.Hour)
		n, err := r.Retain(ctx, t.ID, before)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		total += n
		s.m.retained.Add(float64(n))
		if n > 0 {
			s.cfg.Logger.Info("retention", "tenant", t.ID, "deleted", n, "before", before)
		}
	}
	return total, errors.Join(errs...)
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
