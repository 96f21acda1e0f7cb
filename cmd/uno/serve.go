package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/unosync/uno/server"
)

type serveOptions struct {
	addr     string
	dataDir  string
	logLevel string
	tenant   string
}

func serveCmd() *cobra.Command {
	var o serveOptions
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the sync server (embedded SQLite log, development token)",
		Long: `Runs uno's sync server. With no flags it listens on 127.0.0.1:8080,
keeps its event log in ./uno-data/log.db and prints a development token
that clients pass as client.Config.Token (kept in ./uno-data/dev-token, so
it survives restarts).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return serve(cmd.Context(), o, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.addr, "addr", "127.0.0.1:8080", "address to listen on")
	f.StringVar(&o.dataDir, "data", "uno-data", "directory for the server's data")
	f.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	f.StringVar(&o.tenant, "tenant", "dev", "the tenant the development token grants")
	return cmd
}

func serve(ctx context.Context, o serveOptions, out interface{ Write([]byte) (int, error) }) error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		return fmt.Errorf("--log-level %q: want debug, info, warn or error", o.logLevel)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	if err := os.MkdirAll(o.dataDir, 0o700); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	log, err := server.OpenSQLiteLog(ctx, filepath.Join(o.dataDir, "log.db"))
	if err != nil {
		return err
	}
	defer log.Close()
	auth, err := devAuth(o.dataDir, o.tenant)
	if err != nil {
		return err
	}
	srv, err := server.New(server.Config{Log: log, Auth: auth, Logger: logger})
	if err != nil {
		return err
	}
	defer srv.Close()
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(out, "uno serve: listening on http://%s (sync endpoint ws://%s/v1/sync)\n", ln.Addr(), ln.Addr())
	fmt.Fprintf(out, "data: %s\n", o.dataDir)
	fmt.Fprintf(out, "development token (tenant %q): %s\n", auth.Tenant, auth.Token)
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	fmt.Fprintln(out, "uno serve: shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	srv.Close() // ends the WebSocket sessions, which Shutdown does not track
	if err := hs.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// devAuth loads the development token from the data directory, making one
// on first start.
func devAuth(dir, tenant string) (*server.DevAuth, error) {
	path := filepath.Join(dir, "dev-token")
	if b, err := os.ReadFile(path); err == nil {
		if tok := strings.TrimSpace(string(b)); tok != "" {
			return &server.DevAuth{Token: tok, Tenant: tenant}, nil
		}
	}
	auth, err := server.NewDevAuth(tenant)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(path, []byte(auth.Token+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("save dev token: %w", err)
	}
	return auth, nil
}
