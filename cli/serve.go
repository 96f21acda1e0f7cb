package cli

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
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
	"github.com/spf13/pflag"
	"github.com/unosync/uno/server"
	"github.com/unosync/uno/server/pglog"
	"github.com/unosync/uno/server/sqlitelog"
	usync "github.com/unosync/uno/sync"
	"github.com/unosync/uno/tenancy"
)

// serveOptions are uno serve's settings: flags, or a JSON config file
// (--config) whose keys are the flag names. Flags given on the command
// line win over the file.
type serveOptions struct {
	Addr           string   `json:"addr"`
	DataDir        string   `json:"data"`
	LogLevel       string   `json:"log-level"`
	LogFormat      string   `json:"log-format"`
	Tenant         string   `json:"tenant"`
	MaxConnections int      `json:"max-connections"`
	MaxFrameBytes  int      `json:"max-frame-bytes"`
	MaxMessage     int      `json:"max-message-bytes"`
	MaxPushTxs     int      `json:"max-push-txs"`
	BatchRows      int      `json:"batch-rows"`
	MaxDrift       string   `json:"max-drift"`
	Origins        []string `json:"origins"`
	Postgres       string   `json:"postgres"`
	Registry       bool     `json:"registry"`
	JWTAlg         string   `json:"jwt-alg"`
	JWTKey         string   `json:"jwt-key"`
	JWTAudience    string   `json:"jwt-aud"`
	JWTIssuer      string   `json:"jwt-iss"`
	// Rules are per-collection write and read rules, by collection
	// (config file only), for example
	// {"rules": {"todos": {"owner": "owner", "private_read": true}}}.
	Rules map[string]ruleOptions `json:"rules"`
	// Web is a directory of static files (a web app) served at /.
	Web string `json:"web"`
}

// ruleOptions is a server.Rule in the config file.
type ruleOptions struct {
	ReadOnly    bool   `json:"read_only"`
	Owner       string `json:"owner"`
	PrivateRead bool   `json:"private_read"`
}

func (o *serveOptions) validate() error {
	if _, _, err := net.SplitHostPort(o.Addr); err != nil {
		return fmt.Errorf("addr %q: want host:port, such as 127.0.0.1:8080", o.Addr)
	}
	if o.DataDir == "" {
		return errors.New("data: want a directory")
	}
	for name, v := range map[string]int{"max-connections": o.MaxConnections, "max-frame-bytes": o.MaxFrameBytes,
		"max-message-bytes": o.MaxMessage, "max-push-txs": o.MaxPushTxs, "batch-rows": o.BatchRows} {
		if v < 0 {
			return fmt.Errorf("%s %d: must not be negative (0 takes the default)", name, v)
		}
	}
	if o.Registry && o.Postgres == "" {
		return errors.New("registry: the tenant registry lives in Postgres: add --postgres")
	}
	if o.MaxMessage != 0 && o.MaxMessage < 1024 {
		return fmt.Errorf("max-message-bytes %d: want at least 1024", o.MaxMessage)
	}
	for coll, r := range o.Rules {
		if r.PrivateRead && r.Owner == "" {
			return fmt.Errorf("rules: %s: private_read needs owner (the field naming each row's owner)", coll)
		}
	}
	if o.MaxDrift != "" {
		if d, err := time.ParseDuration(o.MaxDrift); err != nil || d <= 0 {
			return fmt.Errorf("max-drift %q: want a positive duration such as 24h", o.MaxDrift)
		}
	}
	return nil
}

// loadConfig reads a JSON config file into o, refusing unknown keys.
func loadConfig(path string, o *serveOptions) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	dec := json.NewDecoder(f)
	dec.DisallowUnknownFields()
	if err := dec.Decode(o); err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	return nil
}

func serveCmd(app Options) *cobra.Command {
	var o serveOptions
	var configPath string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the sync server (embedded SQLite log, development token)",
		Long: `Runs uno's sync server. With no flags it listens on 127.0.0.1:8080,
keeps its event log in ./uno-data/log.db and prints a development token
that clients pass as client.Config.Token (kept in ./uno-data/dev-token, so
it survives restarts).

Settings can also come from a JSON file (--config) whose keys are the flag
names, for example {"addr": "0.0.0.0:8080", "max-push-txs": 500}; flags
given on the command line win over it. Unknown keys are refused. The file
alone can set per-collection rules:
{"rules": {"todos": {"owner": "owner", "private_read": true}, "plans": {"read_only": true}}}
(owner: only the user named in that field writes a row; private_read:
each user receives only their rows; read_only: no client writes).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if configPath != "" {
				file := o
				if err := loadConfig(configPath, &file); err != nil {
					return err
				}
				// Flags set on the command line win over the file.
				cmd.Flags().Visit(func(fl *pflag.Flag) { file.setFlag(fl.Name, &o) })
				o = file
			}
			if err := o.validate(); err != nil {
				return err
			}
			return serve(cmd.Context(), o, app, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVar(&configPath, "config", "", "a JSON config file (keys: the flag names)")
	f.StringVar(&o.Addr, "addr", "127.0.0.1:8080", "address to listen on")
	f.StringVar(&o.DataDir, "data", "uno-data", "directory for the server's data")
	f.StringVar(&o.LogLevel, "log-level", "info", "debug, info, warn or error")
	f.StringVar(&o.LogFormat, "log-format", "text", "text or json (one JSON object a line)")
	f.StringVar(&o.Tenant, "tenant", "dev", "the tenant the development token grants")
	f.IntVar(&o.MaxConnections, "max-connections", 0, "concurrent sync connections (0: 10,000)")
	f.IntVar(&o.MaxFrameBytes, "max-frame-bytes", 0, "largest frame on the wire (0: 4 MiB)")
	f.IntVar(&o.MaxMessage, "max-message-bytes", 0, "largest message after decompression (0: 16 MiB)")
	f.IntVar(&o.MaxPushTxs, "max-push-txs", 0, "most transactions in one push (0: 1,000)")
	f.IntVar(&o.BatchRows, "batch-rows", 0, "most log entries or snapshot rows per message (0: 500)")
	f.StringVar(&o.MaxDrift, "max-drift", "", "how far ahead of the server's clock a write may be stamped (empty: 24h)")
	f.StringSliceVar(&o.Origins, "origins", nil, "browser origins allowed besides the server's host")
	f.StringVar(&o.JWTAlg, "jwt-alg", "", "verify JWTs with this algorithm (EdDSA, ES256, HS256) instead of the development token")
	f.StringVar(&o.JWTKey, "jwt-key", "", "file with the JWT key: a PEM public key (EdDSA, ES256) or the secret (HS256)")
	f.StringVar(&o.JWTAudience, "jwt-aud", "", "required JWT audience")
	f.StringVar(&o.JWTIssuer, "jwt-iss", "", "required JWT issuer")
	f.BoolVar(&o.Registry, "registry", false, "admit only tenants registered with uno tenant create (needs --postgres)")
	f.StringVar(&o.Postgres, "postgres", "", "keep the event log in Postgres at this DSN instead of SQLite in the data directory")
	f.StringVar(&o.Web, "web", "", "serve this directory's files (a web app, such as examples/web after wasm/build.sh) at /")
	return cmd
}

func serve(ctx context.Context, o serveOptions, app Options, out interface{ Write([]byte) (int, error) }) error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.LogLevel)); err != nil {
		return fmt.Errorf("--log-level %q: want debug, info, warn or error", o.LogLevel)
	}
	var logs slog.Handler
	switch o.LogFormat {
	case "text", "":
		logs = slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})
	case "json":
		logs = slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level})
	default:
		return fmt.Errorf("--log-format %q: want text or json", o.LogFormat)
	}
	logger := slog.New(logs)
	if err := os.MkdirAll(o.DataDir, 0o700); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	var log server.Log
	var err error
	if o.Postgres != "" {
		log, err = pglog.Open(ctx, o.Postgres, app.Projections...)
	} else {
		log, err = sqlitelog.Open(ctx, filepath.Join(o.DataDir, "log.db"), nil)
	}
	if err != nil {
		return err
	}
	defer log.Close()
	var auth tenancy.Authenticator
	var dev *tenancy.DevAuth
	if o.JWTAlg != "" {
		a, err := jwtAuth(o)
		if err != nil {
			return err
		}
		auth = a
	} else {
		if dev, err = devAuth(o.DataDir, o.Tenant); err != nil {
			return err
		}
		auth = dev
	}
	var registry tenancy.Registry
	if o.Registry {
		reg, err := pglog.OpenRegistry(ctx, o.Postgres)
		if err != nil {
			return err
		}
		defer reg.Close()
		registry = reg
	}
	drift, _ := time.ParseDuration(o.MaxDrift) // validated; empty means the default
	rules := map[string]server.Rule{}
	for coll, r := range o.Rules {
		rules[coll] = server.Rule{ReadOnly: r.ReadOnly, Owner: r.Owner, PrivateRead: r.PrivateRead}
	}
	srv, err := server.New(server.Config{
		Log: log, Auth: auth, Logger: logger,
		Codec:          usync.CodecConfig{MaxFrameBytes: o.MaxFrameBytes, MaxMessageBytes: o.MaxMessage},
		Session:        usync.ServerConfig{Limits: usync.Limits{MaxPushTxs: uint32(o.MaxPushTxs), MaxMessageBytes: uint32(o.MaxMessage)}},
		OriginPatterns: o.Origins,
		MaxConnections: o.MaxConnections,
		BatchRows:      o.BatchRows,
		MaxDrift:       drift,
		Registry:       registry,
		Rules:          rules,
	})
	if err != nil {
		return err
	}
	defer srv.Close()
	ln, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	var handler http.Handler = srv
	if o.Web != "" {
		if fi, err := os.Stat(o.Web); err != nil || !fi.IsDir() {
			return fmt.Errorf("web: %s is not a directory", o.Web)
		}
		handler = withWeb(srv, o.Web)
	}
	hs := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(out, "uno serve: listening on http://%s (sync endpoint ws://%s/v1/sync)\n", ln.Addr(), ln.Addr())
	fmt.Fprintf(out, "data: %s\n", o.DataDir)
	if dev != nil {
		fmt.Fprintf(out, "development token (tenant %q): %s\n", dev.Tenant, dev.Token)
		if o.Web != "" {
			fmt.Fprintf(out, "web app: http://%s/#token=%s\n", ln.Addr(), dev.Token)
		}
	} else {
		fmt.Fprintf(out, "tokens: JWT %s\n", o.JWTAlg)
	}
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

// setFlag copies the named flag's value from src into o.
func (o *serveOptions) setFlag(name string, src *serveOptions) {
	switch name {
	case "addr":
		o.Addr = src.Addr
	case "data":
		o.DataDir = src.DataDir
	case "log-level":
		o.LogLevel = src.LogLevel
	case "log-format":
		o.LogFormat = src.LogFormat
	case "tenant":
		o.Tenant = src.Tenant
	case "max-connections":
		o.MaxConnections = src.MaxConnections
	case "max-frame-bytes":
		o.MaxFrameBytes = src.MaxFrameBytes
	case "max-message-bytes":
		o.MaxMessage = src.MaxMessage
	case "max-push-txs":
		o.MaxPushTxs = src.MaxPushTxs
	case "batch-rows":
		o.BatchRows = src.BatchRows
	case "max-drift":
		o.MaxDrift = src.MaxDrift
	case "origins":
		o.Origins = src.Origins
	case "postgres":
		o.Postgres = src.Postgres
	case "web":
		o.Web = src.Web
	case "registry":
		o.Registry = src.Registry
	case "jwt-alg":
		o.JWTAlg = src.JWTAlg
	case "jwt-key":
		o.JWTKey = src.JWTKey
	case "jwt-aud":
		o.JWTAudience = src.JWTAudience
	case "jwt-iss":
		o.JWTIssuer = src.JWTIssuer
	}
}

// jwtAuth builds the JWT authenticator from the flags.
func jwtAuth(o serveOptions) (*tenancy.JWTAuth, error) {
	raw, err := os.ReadFile(o.JWTKey)
	if err != nil {
		return nil, fmt.Errorf("--jwt-key: %w", err)
	}
	var key any = raw
	if o.JWTAlg != "HS256" {
		block, _ := pem.Decode(raw)
		if block == nil {
			return nil, fmt.Errorf("--jwt-key %s: want a PEM public key", o.JWTKey)
		}
		if key, err = x509.ParsePKIXPublicKey(block.Bytes); err != nil {
			return nil, fmt.Errorf("--jwt-key %s: %w", o.JWTKey, err)
		}
	}
	v, err := tenancy.NewVerifier(tenancy.Config{Algorithm: o.JWTAlg, Key: key, Audience: o.JWTAudience, Issuer: o.JWTIssuer})
	if err != nil {
		return nil, err
	}
	return &tenancy.JWTAuth{Verifier: v}, nil
}

// devAuth loads the development token from the data directory, making one
// on first start.
func devAuth(dir, tenant string) (*tenancy.DevAuth, error) {
	path := filepath.Join(dir, "dev-token")
	if b, err := os.ReadFile(path); err == nil {
		if tok := strings.TrimSpace(string(b)); tok != "" {
			return &tenancy.DevAuth{Token: tok, Tenant: tenant}, nil
		}
	}
	auth, err := tenancy.NewDevAuth(tenant)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(path, []byte(auth.Token+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("save dev token: %w", err)
	}
	return auth, nil
}
