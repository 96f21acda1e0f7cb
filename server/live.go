package server

import (
	"fmt"
	"time"

	usync "github.com/unosync/uno/sync"
)

// Live are the settings a running server takes again without a restart
// ([Server.SetLive]), each as the Config field of the same name (with its
// default when zero). A sync session takes them when it starts and keeps
// them: a change applies to the sessions that start after it, and the
// live ones go on undisturbed. Connection and stream counts are checked
// against the current ones.
type Live struct {
	// MaxPushTxs is Config.Session.Limits.MaxPushTxs.
	MaxPushTxs     uint32
	MaxConnections int
	MaxStreams     int
	BatchRows      int
	BatchBytes     int
	HelloTimeout   time.Duration
	MaxDrift       time.Duration
	// Rules replaces Config.Rules, for new sessions and queries.
	Rules map[string]Rule
}

// liveOf is cfg's live settings (cfg validated).
func liveOf(cfg *Config) *Live {
	return &Live{MaxPushTxs: cfg.Session.Limits.MaxPushTxs, MaxConnections: cfg.MaxConnections, MaxStreams: cfg.MaxStreams,
		BatchRows: cfg.BatchRows, BatchBytes: cfg.BatchBytes, HelloTimeout: cfg.HelloTimeout, MaxDrift: cfg.MaxDrift, Rules: cfg.Rules}
}

// SetLive replaces the live settings. It checks them as New checks
// Config, and on an error changes nothing. Safe for concurrent use.
func (s *Server) SetLive(l Live) error {
	c := Config{Log: s.cfg.Log, Auth: s.cfg.Auth, Rules: l.Rules, MaxConnections: l.MaxConnections, MaxStreams: l.MaxStreams,
		BatchRows: l.BatchRows, BatchBytes: l.BatchBytes, HelloTimeout: l.HelloTimeout, MaxDrift: l.MaxDrift,
		Session: usync.ServerConfig{Limits: usync.Limits{MaxPushTxs: l.MaxPushTxs}}}
	if err := c.validate(); err != nil {
		return fmt.Errorf("server: set live settings: %w", err)
	}
	s.live.Store(liveOf(&c))
	return nil
}

// Live returns the live settings in force.
func (s *Server) Live() Live { return *s.live.Load() }

// sessionConfig is the configuration of a new session: Config.Session
// with the live MaxPushTxs.
func (s *Server) sessionConfig(l *Live) usync.ServerConfig {
	sc := s.cfg.Session
	sc.Limits.MaxPushTxs = l.MaxPushTxs
	return sc
}
