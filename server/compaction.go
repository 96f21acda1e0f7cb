package server

import (
	"context"
	"errors"
	"math"
	gosync "sync"
	"time"
)

// sessions are the live sync sessions of each tenant on this server,
// with the position each replica needs the log from: compaction never
// moves a tenant's floor past one of them. A session counts from its
// Hello (at its cursor then) until it ends.
type sessions struct {
	mu       gosync.Mutex
	byTenant map[string]map[*conn]struct{}
	dirty    map[string]struct{} // tenants appended to since the last compaction pass
}

func newSessions() *sessions {
	return &sessions{byTenant: map[string]map[*conn]struct{}{}, dirty: map[string]struct{}{}}
}

func (ss *sessions) add(c *conn) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	m := ss.byTenant[c.tenant]
	if m == nil {
		m = map[*conn]struct{}{}
		ss.byTenant[c.tenant] = m
	}
	m[c] = struct{}{}
}

func (ss *sessions) remove(c *conn) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	delete(ss.byTenant[c.tenant], c)
	if len(ss.byTenant[c.tenant]) == 0 {
		delete(ss.byTenant, c.tenant)
	}
}

// appended marks tenant for the next compaction pass.
func (ss *sessions) appended(tenant string) {
	ss.mu.Lock()
	ss.dirty[tenant] = struct{}{}
	ss.mu.Unlock()
}

// lowest returns the lowest position of the tenant's live sessions, or
// false when none is live.
func (ss *sessions) lowest(tenant string) (uint64, bool) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	low, ok := uint64(math.MaxUint64), false
	for c := range ss.byTenant[tenant] {
		low, ok = min(low, c.pos.Load()), true
	}
	return low, ok
}

// floors returns the lowest position of each tenant's live sessions.
func (ss *sessions) floors() map[string]uint64 {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	out := make(map[string]uint64, len(ss.byTenant))
	for t, cs := range ss.byTenant {
		low := uint64(math.MaxUint64)
		for c := range cs {
			low = min(low, c.pos.Load())
		}
		out[t] = low
	}
	return out
}

// pending returns the tenants appended to since the last call and those
// with live sessions, and starts a new pass.
func (ss *sessions) pending() []string {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	var out []string
	for t := range ss.dirty {
		out = append(out, t)
	}
	for t := range ss.byTenant {
		if _, ok := ss.dirty[t]; !ok {
			out = append(out, t)
		}
	}
	clear(ss.dirty)
	return out
}

// Compact drops the doc changes of the tenant's log entries below before
// that no live session of this server still needs: the bound is capped at
// the lowest cursor among them + 1 (and by the log, at its head + 1). A
// replica that comes back with a cursor below the new floor bootstraps
// from a snapshot. A session on another server node, or one that starts
// while this runs, may find the entries it needs compacted: it is told
// to reconnect (CodeResync) and bootstraps. It needs a log that
// compacts (Compactor) and logs what it did.
func (s *Server) Compact(ctx context.Context, tenant string, before uint64) (Compaction, error) {
	cp, ok := s.cfg.Log.(Compactor)
	if !ok {
		return Compaction{}, errors.New("server: compaction needs a log that compacts")
	}
	if low, ok := s.sessions.lowest(tenant); ok {
		before = min(before, low+1)
	}
	start := time.Now()
	res, err := cp.Compact(ctx, tenant, before)
	if err != nil {
		return res, err
	}
	if res.Rewritten > 0 {
		s.cfg.Logger.Info("compaction", "tenant", tenant, "before", before, "floor", res.Floor,
			"rewritten", res.Rewritten, "bytes_saved", res.Saved, "duration", time.Since(start))
	}
	return res, nil
}

// ApplyCompaction compacts the log of every tenant appended to through
// this server since the last pass, or with a live session on it, as far
// as its live sessions allow. The server runs it every CompactInterval.
func (s *Server) ApplyCompaction(ctx context.Context) error {
	var errs []error
	for _, t := range s.sessions.pending() {
		if _, err := s.Compact(ctx, t, math.MaxUint64); err != nil {
			s.sessions.appended(t) // try again next pass
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// SessionFloors returns, by tenant, the lowest position of this server's
// live sync sessions: what a compaction anywhere must leave in the log
// for them. A job queue shared by several nodes records it for the
// others (package server/jobs).
func (s *Server) SessionFloors() map[string]uint64 { return s.sessions.floors() }

// PendingCompactions returns the tenants appended to through this server
// since the last call, and those with live sessions on it: what
// ApplyCompaction would compact. With CompactInterval negative, a job
// queue calls it to enqueue compaction jobs instead.
func (s *Server) PendingCompactions() []string { return s.sessions.pending() }

// compact runs ApplyCompaction every CompactInterval until the server
// closes.
func (s *Server) compact() {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.CompactInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			if err := s.ApplyCompaction(s.ctx); err != nil {
				s.cfg.Logger.Warn("compaction", "err", err)
			}
		case <-s.ctx.Done():
			return
		}
	}
}
