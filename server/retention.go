package server

import (
	"context"
	"errors"
	"time"
)

// ApplyRetention deletes, for every tenant of the registry with a
// retention, the log entries older than it. The server runs it every
// RetentionInterval when its registry can list tenants and its log can
// forget entries.
func (s *Server) ApplyRetention(ctx context.Context) error {
	r, ok := s.cfg.Log.(Retainer)
	if s.cfg.Registry == nil || !ok {
		return errors.New("server: retention needs a registry and a log that forgets entries")
	}
	tenants, err := s.cfg.Registry.Retained(ctx)
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
