package cli

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/unosync/uno/server"
	"github.com/unosync/uno/server/admin"
	"github.com/unosync/uno/server/jobs"
	"github.com/unosync/uno/server/pglog"
	"github.com/unosync/uno/server/sqlitelog"
	"github.com/unosync/uno/tenancy"
)

// adminHandler builds the dashboard of uno serve --admin-token-file: the
// token from the file, the registry when there is one, the job queue
// (compaction and rebuilds from the dashboard run as jobs), and the
// projections this binary folds.
func adminHandler(o serveOptions, app Options, srv *server.Server, registry tenancy.Registry, jc *jobs.Jobs, logger *slog.Logger) (*admin.Handler, error) {
	b, err := os.ReadFile(o.AdminTokenFile)
	if err != nil {
		return nil, fmt.Errorf("--admin-token-file: %w", err)
	}
	if fi, err := os.Stat(o.AdminTokenFile); err == nil && fi.Mode().Perm()&0o077 != 0 {
		logger.Warn("the admin token file can be read by other users: chmod 600 it", "file", o.AdminTokenFile)
	}
	cfg := admin.Config{Server: srv, Token: strings.TrimSpace(string(b)), Jobs: jc, Logger: logger}
	if a, ok := registry.(tenancy.Admin); ok {
		cfg.Registry = a
	}
	if o.Postgres != "" {
		byName := map[string]pglog.Projection{}
		for _, p := range app.Projections {
			cfg.Projections = append(cfg.Projections, admin.Projection{Name: p.Name, Async: p.Async})
			byName[p.Name] = p
		}
		cfg.Rebuild = func(ctx context.Context, name string) error {
			return pglog.RebuildProjection(ctx, o.Postgres, byName[name], nil)
		}
	} else {
		path := filepath.Join(o.DataDir, "log.db")
		byName := map[string]sqlitelog.Projection{}
		for _, p := range app.SQLiteProjections {
			cfg.Projections = append(cfg.Projections, admin.Projection{Name: p.Name, Async: p.Async})
			byName[p.Name] = p
		}
		cfg.Rebuild = func(ctx context.Context, name string) error {
			return sqlitelog.RebuildProjection(ctx, path, byName[name], nil)
		}
	}
	h, err := admin.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("--admin-token-file %s: %w", o.AdminTokenFile, err)
	}
	return h, nil
}
