package server

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	usync "github.com/unosync/uno/sync"
)

// SessionInfo describes one live sync session, for operators: who, from
// where, since when and how far it has read. It carries no data.
type SessionInfo struct {
	Tenant string    `json:"tenant"`
	User   string    `json:"user,omitempty"`
	Site   string    `json:"site"`
	Remote string    `json:"remote"`
	Since  time.Time `json:"since"`
	// Position is where the replica needs the log from: its cursor, or
	// the seq of the bootstrap in progress.
	Position uint64 `json:"position"`
}

// Sessions returns the live sync sessions (those past Hello), by tenant,
// then oldest first.
func (s *Server) Sessions() []SessionInfo {
	s.sessions.mu.Lock()
	out := make([]SessionInfo, 0, 16)
	for tenant, conns := range s.sessions.byTenant {
		for c := range conns {
			out = append(out, SessionInfo{Tenant: tenant, User: c.user, Site: c.sess.Site().String(),
				Remote: c.remote, Since: c.started, Position: c.pos.Load()})
		}
	}
	s.sessions.mu.Unlock()
	slices.SortFunc(out, func(a, b SessionInfo) int {
		if c := strings.Compare(a.Tenant, b.Tenant); c != 0 {
			return c
		}
		return a.Since.Compare(b.Since)
	})
	return out
}

// EndSessions ends every live sync session of the tenant with
// CodeForbidden and the reason (an operator suspended the tenant: its
// clients stop syncing, and their reconnections are refused while the
// registry says it is suspended). It returns how many it ended.
func (s *Server) EndSessions(tenant, reason string) int {
	err := usync.Errorf(usync.CodeForbidden, "%s", reason)
	s.sessions.mu.Lock()
	defer s.sessions.mu.Unlock()
	n := 0
	for c := range s.sessions.byTenant[tenant] {
		select {
		case c.kick <- err:
			n++
		default: // already being ended
		}
	}
	return n
}

// Gatherer returns the server's metrics (what /metrics serves), for an
// operator's view that reads them directly.
func (s *Server) Gatherer() prometheus.Gatherer { return s.m.reg }

// Log returns the server's event log (Config.Log), for operator tools
// that read its capabilities (heads, projection checkpoints).
func (s *Server) Log() Log { return s.cfg.Log }

// Heads returns the heads of the tenants' logs, 0 for one that failed
// to answer (the error is logged).
func (s *Server) Heads(ctx context.Context, tenants []string) map[string]uint64 {
	out := make(map[string]uint64, len(tenants))
	for _, t := range tenants {
		h, err := s.cfg.Log.Head(ctx, t)
		if err != nil {
			s.cfg.Logger.Warn("read head", "tenant", t, "err", err)
		}
		out[t] = h
	}
	return out
}
