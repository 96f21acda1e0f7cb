package cli

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/unosync/uno/crdt"
	"github.com/unosync/uno/server"
	"github.com/unosync/uno/server/pglog"
	"github.com/unosync/uno/server/sqlitelog"
	usync "github.com/unosync/uno/sync"
	"github.com/unosync/uno/tenancy"
)

// serveOptions are uno serve's settings: each field with a json tag is a
// flag, an environment variable and a config file key (see settings for
// how to declare one).
type serveOptions struct {
	// Profile is dev or prod (see settings).
	Profile        string   `json:"profile"`
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
	BatchBytes     int      `json:"batch-bytes"`
	MaxPushBytes   int64    `json:"max-push-bytes"`
	MaxStreams     int      `json:"max-streams"`
	HelloTimeout   string   `json:"hello-timeout"`
	MaxDrift       string   `json:"max-drift"`
	Origins        []string `json:"origins"`
	Postgres       string   `json:"postgres"`
	Registry       bool     `json:"registry"`
	JWTAlg         string   `json:"jwt-alg"`
	JWTKey         string   `json:"jwt-key"`
	JWTAudience    string   `json:"jwt-aud" doc:"required JWT audience"`
	JWTIssuer      string   `json:"jwt-iss" doc:"required JWT issuer"`
	// Rules are per-collection write and read rules, by collection
	// (config file only), for example
	// {"rules": {"todos": {"owner": "owner", "private_read": true}}}.
	Rules map[string]ruleOptions `json:"rules"`
	// Schema, if set, is the declared schema the server enforces (config
	// file only): only these collections and fields, each with its kind,
	// for example {"schema": {"version": 1, "collections":
	// {"todos": {"title": "register", "votes": "counter", "tags": "set"}}}}.
	Schema *schemaOptions `json:"schema"`
	// Web is a directory of static files (a web app) served at /.
	Web string `json:"web"`
	// AdminTokenFile names a file holding the operator's token for the
	// dashboard at /admin/ (at least 32 bytes; none: no dashboard).
	AdminTokenFile string `json:"admin-token-file" doc:"file holding the operator's token for the dashboard at /admin/ (at least 32 bytes, e.g. head -c 32 /dev/urandom | base64 > FILE; mode 600); none: no dashboard"`
	// DevTokenOnNetwork allows the development token on an address other
	// machines reach (refused by default).
	DevTokenOnNetwork bool `json:"dev-token-on-network"`
	// DrainTimeout bounds the graceful shutdown on SIGTERM or SIGINT.
	DrainTimeout duration `json:"drain-timeout"`
	// DrainDelay is how long the server keeps serving, with /readyz
	// answering 503, between SIGTERM and the drain: time for load
	// balancers to stop routing new connections to it (0: drain at once).
	DrainDelay duration `json:"drain-delay" default:"0s" doc:"on SIGTERM or SIGINT, how long to keep serving with /readyz answering 503 before draining, so load balancers stop routing here (5s behind Kubernetes); 0: drain at once"`
	// CompactInterval is how often the server compacts the logs written
	// to through it (0: never; the flag's default is 1h).
	CompactInterval duration `json:"compact-interval"`
	// The HTTP server's limits (net/http.Server's fields of the same
	// names). WebSocket sessions and live query streams outlive the
	// read and write timeouts.
	ReadHeaderTimeout duration `json:"read-header-timeout"`
	ReadTimeout       duration `json:"read-timeout"`
	WriteTimeout      duration `json:"write-timeout"`
	IdleTimeout       duration `json:"idle-timeout"`
	MaxHeaderBytes    int      `json:"max-header-bytes"`
	// TLSCert and TLSKey are PEM files: with both, the server serves
	// HTTPS and WSS.
	TLSCert string `json:"tls-cert"`
	TLSKey  string `json:"tls-key"`
	// TrustedProxies are the CIDRs of proxies terminating TLS in front
	// of the server.
	TrustedProxies []string `json:"trusted-proxies"`
	// JobWorkers is how many background jobs this node runs at once (0:
	// none; it still enqueues them). Node names it in job records.
	JobWorkers int    `json:"job-workers" default:"2" doc:"background jobs (compaction, retention, rebuilds, tenant export and delete) this node runs at once; 0: none, other nodes run them"`
	Node       string `json:"node" doc:"this node's name in job records (default: host name and process ID)"`
}

// The defaults of the settings whose zero value takes a default.
const (
	defaultDrainTimeout      = 30 * time.Second
	defaultReadHeaderTimeout = 10 * time.Second
	defaultReadTimeout       = 30 * time.Second
	defaultWriteTimeout      = 2 * time.Minute // a 5.5 MB gzipped uno.wasm on a slow link
	defaultIdleTimeout       = 2 * time.Minute
	defaultMaxHeaderBytes    = 64 << 10
	defaultCompactInterval   = time.Hour
)

// duration is a time.Duration as a flag and in the config file, written
// as Go writes durations ("30s", "2m").
type duration time.Duration

func (d *duration) Set(s string) error {
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("want a duration such as 30s or 2m")
	}
	*d = duration(v)
	return nil
}

func (d *duration) String() string { return time.Duration(*d).String() }

func (d *duration) Type() string { return "duration" }

func (d *duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("want a duration such as \"30s\"")
	}
	return d.Set(s)
}

// schemaOptions is a crdt.Schema in the config file: field kinds by
// field, by collection.
type schemaOptions struct {
	Version     int                          `json:"version"`
	Collections map[string]map[string]string `json:"collections"`
}

// schema converts the config file's schema, checking it.
func (so *schemaOptions) schema() (*crdt.Schema, error) {
	if so == nil {
		return nil, nil
	}
	s := &crdt.Schema{Version: so.Version}
	for _, coll := range slices.Sorted(maps.Keys(so.Collections)) {
		c := crdt.SchemaCollection{Name: coll}
		for _, field := range slices.Sorted(maps.Keys(so.Collections[coll])) {
			k, err := crdt.ParseKind(so.Collections[coll][field])
			if err != nil {
				return nil, fmt.Errorf("schema: %s.%s: %w", coll, field, err)
			}
			c.Fields = append(c.Fields, crdt.SchemaField{Name: field, Kind: k})
		}
		s.Collections = append(s.Collections, c)
	}
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("schema: %w", err)
	}
	return s, nil
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
		"max-message-bytes": o.MaxMessage, "max-push-txs": o.MaxPushTxs, "batch-rows": o.BatchRows,
		"batch-bytes": o.BatchBytes, "max-push-bytes": int(min(o.MaxPushBytes, 1<<40)), "max-streams": o.MaxStreams} {
		if v < 0 {
			return fmt.Errorf("%s %d: must not be negative (0 takes the default)", name, v)
		}
	}
	if o.MaxMessage != 0 && o.MaxMessage < 1024 {
		return fmt.Errorf("max-message-bytes %d: want at least 1024", o.MaxMessage)
	}
	for coll, r := range o.Rules {
		if r.PrivateRead && r.Owner == "" {
			return fmt.Errorf("rules: %s: private_read needs owner (the field naming each row's owner)", coll)
		}
	}
	if _, err := o.Schema.schema(); err != nil {
		return err
	}
	if o.HelloTimeout != "" {
		if d, err := time.ParseDuration(o.HelloTimeout); err != nil || d <= 0 {
			return fmt.Errorf("hello-timeout %q: want a positive duration such as 10s", o.HelloTimeout)
		}
	}
	if o.MaxDrift != "" {
		if d, err := time.ParseDuration(o.MaxDrift); err != nil || d <= 0 {
			return fmt.Errorf("max-drift %q: want a positive duration such as 24h", o.MaxDrift)
		}
	}
	for name, d := range map[string]*duration{"drain-timeout": &o.DrainTimeout, "read-header-timeout": &o.ReadHeaderTimeout,
		"read-timeout": &o.ReadTimeout, "write-timeout": &o.WriteTimeout, "idle-timeout": &o.IdleTimeout} {
		if *d < 0 {
			return fmt.Errorf("%s %s: must not be negative (0 takes the default)", name, d)
		}
	}
	if o.DrainDelay < 0 {
		return fmt.Errorf("drain-delay %s: must not be negative (0: drain at once)", &o.DrainDelay)
	}
	if o.CompactInterval < 0 {
		return fmt.Errorf("compact-interval %s: must not be negative (0: never compact)", &o.CompactInterval)
	}
	if o.JobWorkers < 0 {
		return fmt.Errorf("job-workers %d: must not be negative (0: this node runs no jobs)", o.JobWorkers)
	}
	if o.MaxHeaderBytes < 0 || o.MaxHeaderBytes > 0 && o.MaxHeaderBytes < 4096 {
		return fmt.Errorf("max-header-bytes %d: want at least 4096 (0 takes the default)", o.MaxHeaderBytes)
	}
	for d, def := range map[*duration]time.Duration{&o.DrainTimeout: defaultDrainTimeout, &o.ReadHeaderTimeout: defaultReadHeaderTimeout,
		&o.ReadTimeout: defaultReadTimeout, &o.WriteTimeout: defaultWriteTimeout, &o.IdleTimeout: defaultIdleTimeout} {
		if *d == 0 {
			*d = duration(def)
		}
	}
	if o.MaxHeaderBytes == 0 {
		o.MaxHeaderBytes = defaultMaxHeaderBytes
	}
	return nil
}

func serveCmd(app Options) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the sync server (embedded SQLite log, development token)",
		Long: `Runs uno's sync server. With no flags it listens on 127.0.0.1:8080,
keeps its event log in ./uno-data/log.db and prints a development token
that clients pass as client.Config.Token (kept in ./uno-data/dev-token, so
it survives restarts). The development token stays on this machine: on an
address other machines reach, use JWTs (--jwt-alg) or say so with
--dev-token-on-network.

One server owns a data directory: it locks the LOCK file in it while it
runs (the kernel releases the lock when the process ends, even killed),
and a second uno serve on the same directory stops at once, naming the
first.

A binary built with projections (package cli) folds them on the log it
runs: cli.Options.SQLiteProjections on the embedded log (their missing
tables are created at start), cli.Options.Projections with --postgres.
A projection with a fold for the other log only is refused, naming the
flag that selects that log.

On SIGTERM (what Docker, systemd and Kubernetes send) or SIGINT the server
drains: it stops accepting connections and requests, ends live query
streams, lets the pushes being appended commit and get their Acks, closes
each sync session with code 1402 (shutting down: clients reconnect), closes
its log and exits 0. What is still open after --drain-timeout is cut, and
the exit status is 1.

Every setting is a flag, an environment variable (UNO_ and the name in
capitals, dashes as underscores: UNO_MAX_PUSH_TXS) and a key of the config
file (--config or UNO_CONFIG: .json, .yaml, .yml or .toml, keys the flag
names, unknown keys refused). Flags win over variables, variables over the
file, the file over the profile's defaults. The file alone sets rules and
the schema. --profile prod refuses the development token, needs TLS
(--tls-cert, --tls-key) and logs JSON. uno config print shows the settings
in effect and where each came from; docs/configuration.md lists them all.

On SIGHUP the server reads the file and the environment again (the
command line stays) and applies the log level, the limits and rules of
new sessions and queries (running sessions keep theirs) and the TLS
certificate; it logs what it applied and what needs a restart. A refused
file changes nothing.

Background work runs as jobs in a queue in the log's database (River):
compaction of the tenants written through this node every
--compact-interval, retention every hour (with --registry), and the
projection rebuilds, tenant exports and deletions that uno projection,
uno tenant and uno compact enqueue with --job. Any node runs any job
(--job-workers at once; 0: none), never the same work twice at once;
compaction spares the live clients of every node. uno jobs lists,
retries and cancels them.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c := config{flags: cmd.Flags()}
			o, _, err := c.load()
			if err != nil {
				return err
			}
			return serve(cmd.Context(), o, app, cmd.OutOrStdout(), c.load)
		},
	}
	addSettingFlags(cmd.Flags())
	return cmd
}

// serve runs the server with o. On SIGHUP, load gives the settings to
// apply live (see reloader); nil: SIGHUP is not handled.
func serve(ctx context.Context, o serveOptions, app Options, out io.Writer, load func() (serveOptions, map[string]source, error)) error {
	// SIGTERM is what Docker, systemd and Kubernetes send; SIGINT is ^C.
	// Either drains the server (below).
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := o.checkProfile(); err != nil {
		return err
	}
	var level slog.LevelVar // a reload sets it
	if err := level.UnmarshalText([]byte(o.LogLevel)); err != nil {
		return fmt.Errorf("--log-level %q: want debug, info, warn or error", o.LogLevel)
	}
	var logs slog.Handler
	switch o.LogFormat {
	case "text", "":
		logs = slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: &level})
	case "json":
		logs = slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: &level})
	default:
		return fmt.Errorf("--log-format %q: want text or json", o.LogFormat)
	}
	logger := slog.New(logs)
	if err := o.checkExposure(ctx, o.Addr); err != nil {
		return err
	}
	if err := os.MkdirAll(o.DataDir, 0o700); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	unlock, err := lockDir(o.DataDir)
	if err != nil {
		return err
	}
	defer unlock()
	ln, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	defer ln.Close()
	if err := o.checkExposure(ctx, ln.Addr().String()); err != nil { // as resolved
		return err
	}
	var log server.Log
	var registry tenancy.Registry
	var lite *sqlitelog.Log // the embedded log, for the jobs
	switch {
	case o.Postgres != "":
		if err := app.checkProjections(true); err != nil {
			return err
		}
		log, err = pglog.Open(ctx, o.Postgres, app.Projections...)
	default:
		if err := app.checkProjections(false); err != nil {
			return err
		}
		// The data directory is this server's: it sets up the
		// projections' tables itself (zero setup).
		path := filepath.Join(o.DataDir, "log.db")
		if err := sqlitelog.SetupProjections(ctx, path, app.SQLiteProjections...); err != nil {
			return err
		}
		var sl *sqlitelog.Log
		sl, err = sqlitelog.Open(ctx, path, &sqlitelog.Options{Projections: app.SQLiteProjections, Logger: logger})
		if err == nil && o.Registry {
			registry = sl.Registry()
		}
		log, lite = sl, sl
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
	if o.Registry && o.Postgres != "" {
		reg, err := pglog.OpenRegistry(ctx, o.Postgres)
		if err != nil {
			return err
		}
		defer reg.Close()
		registry = reg
	}
	live := liveSettings(&o)
	schema, _ := o.Schema.schema() // validated
	tp, flushTraces, err := otelTracerProvider(ctx, os.LookupEnv, logger)
	if err != nil {
		return err
	}
	defer flushTraces() // after the server closes
	srv, err := server.New(server.Config{
		Log: log, Auth: auth, Logger: logger, Schema: schema, TracerProvider: tp,
		Codec:           usync.CodecConfig{MaxFrameBytes: o.MaxFrameBytes, MaxMessageBytes: o.MaxMessage},
		Session:         usync.ServerConfig{Limits: usync.Limits{MaxPushTxs: live.MaxPushTxs, MaxMessageBytes: uint32(o.MaxMessage)}},
		OriginPatterns:  o.Origins,
		MaxConnections:  live.MaxConnections,
		BatchRows:       live.BatchRows,
		BatchBytes:      live.BatchBytes,
		MaxPushBytes:    o.MaxPushBytes,
		MaxStreams:      live.MaxStreams,
		HelloTimeout:    live.HelloTimeout,
		MaxDrift:        live.MaxDrift,
		Registry:        registry,
		Rules:           live.Rules,
		CompactInterval: -1, RetentionInterval: -1, // they run as jobs: serveJobs
	})
	if err != nil {
		return err
	}
	defer srv.Close() // after a drain, or on an early return
	jc, err := serveJobs(ctx, o, app, srv, lite, registry, logger)
	if err != nil {
		return err
	}
	defer func() { // before the log closes; running jobs get the drain's time
		jctx, cancel := context.WithTimeout(context.Background(), time.Duration(o.DrainTimeout))
		defer cancel()
		jc.Close(jctx)
	}()
	var handler http.Handler = srv
	if o.Web != "" {
		w, err := newWeb(srv, o.Web)
		if err != nil {
			return err
		}
		defer w.Close()
		handler = w
	}
	if o.AdminTokenFile != "" {
		dash, err := adminHandler(o, app, srv, registry, jc, logger)
		if err != nil {
			return err
		}
		mux := http.NewServeMux()
		mux.Handle("/admin/", dash)
		mux.Handle("/", handler)
		handler = mux
	}
	var cert *certificate
	if o.TLSCert != "" {
		cert = &certificate{cert: o.TLSCert, key: o.TLSKey}
		if err := cert.load(); err != nil {
			return err
		}
	}
	if len(o.TrustedProxies) > 0 {
		proxies, _ := parseProxies(o.TrustedProxies) // validated
		handler = &proxied{next: handler, proxies: proxies, requireTLS: o.Profile == "prod" && cert == nil}
	}
	// WebSocket sessions are hijacked connections, which net/http
	// clears of its deadlines; live query streams clear the read
	// deadline and extend the write deadline per event (server.Server).
	hs := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: time.Duration(o.ReadHeaderTimeout),
		ReadTimeout:       time.Duration(o.ReadTimeout),
		WriteTimeout:      time.Duration(o.WriteTimeout),
		IdleTimeout:       time.Duration(o.IdleTimeout),
		MaxHeaderBytes:    o.MaxHeaderBytes,
	}
	scheme, wsScheme := "http", "ws"
	if cert != nil {
		hs.TLSConfig = &tls.Config{GetCertificate: cert.get, MinVersion: tls.VersionTLS12}
		scheme, wsScheme = "https", "wss"
	}
	fmt.Fprintf(out, "uno serve: listening on %s://%s (sync endpoint %s://%s/v1/sync)\n", scheme, ln.Addr(), wsScheme, ln.Addr())
	fmt.Fprintf(out, "data: %s\n", o.DataDir)
	if o.AdminTokenFile != "" {
		fmt.Fprintf(out, "admin dashboard: http://%s/admin/ (token in %s)\n", ln.Addr(), o.AdminTokenFile)
	}
	if dev != nil {
		fmt.Fprintf(out, "development token (tenant %q): %s\n", dev.Tenant, dev.Token)
		if o.Web != "" {
			fmt.Fprintf(out, "web app: %s://%s/#token=%s\n", scheme, ln.Addr(), dev.Token)
			if _, err := os.Stat(filepath.Join(o.Web, "notes.html")); err == nil {
				fmt.Fprintf(out, "notes: %s://%s/notes.html#token=%s\n", scheme, ln.Addr(), dev.Token)
			}
		}
	} else {
		fmt.Fprintf(out, "tokens: JWT %s\n", o.JWTAlg)
	}
	if load != nil {
		r := &reloader{load: load, level: &level, srv: srv, cert: cert, logger: logger, cur: o}
		r.watch(ctx)
	}
	errc := make(chan error, 1)
	go func() {
		if cert != nil {
			errc <- hs.ServeTLS(ln, "", "") // the certificate is cert's
			return
		}
		errc <- hs.Serve(ln)
	}()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	if delay := time.Duration(o.DrainDelay); delay > 0 {
		// Not ready, still serving: load balancers polling /readyz stop
		// sending new connections before the sessions are closed.
		srv.Drain()
		fmt.Fprintf(out, "uno serve: not ready, serving %s more before draining\n", delay)
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case err := <-errc:
			t.Stop()
			return fmt.Errorf("serve: %w", err)
		}
	}
	drain := time.Duration(o.DrainTimeout)
	fmt.Fprintf(out, "uno serve: shutting down (draining for up to %s)\n", drain)
	// Both at once: hs.Shutdown closes the listener and waits for the
	// HTTP requests, among them the live query streams srv.Shutdown
	// ends; srv.Shutdown lets the sessions finish their appends and
	// closes them with CodeShuttingDown. The log closes after both.
	dctx, cancel := context.WithTimeout(context.Background(), drain)
	defer cancel()
	httpDone := make(chan error, 1)
	go func() { httpDone <- hs.Shutdown(dctx) }()
	serr := srv.Shutdown(dctx)
	herr := <-httpDone
	if herr != nil {
		hs.Close()
	}
	if err := cmp.Or(serr, herr); err != nil {
		return fmt.Errorf("drain: cut what was still open after --drain-timeout %s: %w", drain, err)
	}
	fmt.Fprintln(out, "uno serve: stopped")
	return nil
}

// checkExposure refuses the development token on an address other
// machines reach, unless --dev-token-on-network allows it: whoever holds
// the token reads and writes the whole tenant.
func (o *serveOptions) checkExposure(ctx context.Context, addr string) error {
	if o.JWTAlg != "" || o.DevTokenOnNetwork || loopbackOnly(ctx, addr) {
		return nil
	}
	return fmt.Errorf("--addr %s: other machines can reach it, and the development token lets whoever holds it "+
		"read and write tenant %q: use JWTs (--jwt-alg, --jwt-key), listen on 127.0.0.1, "+
		"or allow it with --dev-token-on-network", o.Addr, o.Tenant)
}

// loopbackOnly reports whether a server listening on addr (host:port) is
// reachable from this machine only: its host is a loopback address, or a
// name whose addresses are all loopback ones. An empty host is every
// interface.
func loopbackOnly(ctx context.Context, addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return false
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		return ip.Unmap().IsLoopback()
	}
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil || len(ips) == 0 {
		return false
	}
	for _, ip := range ips {
		if !ip.Unmap().IsLoopback() {
			return false
		}
	}
	return true
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
