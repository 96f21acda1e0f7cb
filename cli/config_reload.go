package cli

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/unosync/uno/server"
)

// reloader applies uno serve's settings again on SIGHUP: the file and the
// environment are read again (the command line stays), and what can
// change live is applied; what needs a restart is named in the log.
type reloader struct {
	load   func() (serveOptions, map[string]source, error)
	level  *slog.LevelVar
	srv    *server.Server
	cert   *certificate // nil: no TLS
	logger *slog.Logger
	cur    serveOptions
}

// liveSettings is o's settings that the server takes live.
func liveSettings(o *serveOptions) server.Live {
	hello, _ := time.ParseDuration(o.HelloTimeout) // validated; empty means the default
	drift, _ := time.ParseDuration(o.MaxDrift)
	rules := map[string]server.Rule{}
	for coll, r := range o.Rules {
		rules[coll] = server.Rule{ReadOnly: r.ReadOnly, Owner: r.Owner, PrivateRead: r.PrivateRead}
	}
	return server.Live{MaxPushTxs: uint32(o.MaxPushTxs), MaxConnections: o.MaxConnections, MaxStreams: o.MaxStreams,
		BatchRows: o.BatchRows, BatchBytes: o.BatchBytes, HelloTimeout: hello, MaxDrift: drift, Rules: rules}
}

// watch reloads on each SIGHUP until ctx ends, from now on.
func (r *reloader) watch(ctx context.Context) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go r.run(ctx, hup)
}

func (r *reloader) run(ctx context.Context, hup chan os.Signal) {
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			if err := r.reload(); err != nil {
				r.logger.Error("reload refused: the running configuration stays", "err", err)
			}
		}
	}
}

// reload reads the settings again and applies those that change live. On
// an error it changes nothing.
func (r *reloader) reload() error {
	n, _, err := r.load()
	if err != nil {
		return err
	}
	if err := n.checkProfile(); err != nil {
		return err
	}
	var applied, restart []string
	for i := range settings {
		s := &settings[i]
		if s.format(&r.cur) == s.format(&n) {
			continue
		}
		isTLS := s.name == "tls-cert" || s.name == "tls-key"
		if s.live && (!isTLS || r.cert != nil && n.TLSCert != "") {
			applied = append(applied, s.name)
		} else {
			restart = append(restart, s.name)
		}
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(n.LogLevel)); err != nil {
		return fmt.Errorf("log-level %q: want debug, info, warn or error", n.LogLevel)
	}
	// The certificate is read again on every reload (renewed in place).
	var kp *tls.Certificate
	if r.cert != nil && n.TLSCert != "" {
		c, err := tls.LoadX509KeyPair(n.TLSCert, n.TLSKey)
		if err != nil {
			return fmt.Errorf("tls-cert %s, tls-key %s: %w", n.TLSCert, n.TLSKey, err)
		}
		kp = &c
	}
	if err := r.srv.SetLive(liveSettings(&n)); err != nil {
		return err
	}
	r.level.Set(level)
	if kp != nil {
		r.cert.current.Store(kp)
	}
	// Keep what was not applied as it runs, so that it is named again
	// until the restart.
	for _, name := range restart {
		copySetting(lookupSetting(name), &r.cur, &n)
	}
	r.cur = n
	r.logger.Info("reload: applied", "keys", listOrNone(applied))
	r.logger.Warn("reload: these need a restart", "keys", listOrNone(restart))
	return nil
}

// copySetting sets s in dst to its value in src.
func copySetting(s *setting, src, dst *serveOptions) {
	switch p := s.field(src).(type) {
	case *string:
		*s.field(dst).(*string) = *p
	case *bool:
		*s.field(dst).(*bool) = *p
	case *int:
		*s.field(dst).(*int) = *p
	case *int64:
		*s.field(dst).(*int64) = *p
	case *duration:
		*s.field(dst).(*duration) = *p
	case *[]string:
		*s.field(dst).(*[]string) = *p
	case *map[string]ruleOptions:
		*s.field(dst).(*map[string]ruleOptions) = *p
	case **schemaOptions:
		*s.field(dst).(**schemaOptions) = *p
	}
}

func listOrNone(l []string) string {
	if len(l) == 0 {
		return "none"
	}
	return strings.Join(l, ",")
}
