package cli

import (
	"cmp"
	"context"
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
	"github.com/spf13/pflag"
	"github.com/unosync/uno/crdt"
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
	JWTAudience    string   `json:"jwt-aud"`
	JWTIssuer      string   `json:"jwt-iss"`
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
	// DevTokenOnNetwork allows the development token on an address other
	// machines reach (refused by default).
	DevTokenOnNetwork bool `json:"dev-token-on-network"`
	// DrainTimeout bounds the graceful shutdown on SIGTERM or SIGINT.
	DrainTimeout duration `json:"drain-timeout"`
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
	// JobWorkers is how many background jobs this node runs at once (0:
	// none; it still enqueues them). Node names it in job records.
	JobWorkers int    `json:"job-workers"`
	Node       string `json:"node"`
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

Background work runs as jobs in a queue in the log's database (River):
compaction of the tenants written through this node every
--compact-interval, retention every hour (with --registry), and the
projection rebuilds, tenant exports and deletions that uno projection,
uno tenant and uno compact enqueue with --job. Any node runs any job
(--job-workers at once; 0: none), never the same work twice at once;
compaction spares the live clients of every node. uno jobs lists,
retries and cancels them.

Settings can also come from a JSON file (--config) whose keys are the flag
names, for example {"addr": "127.0.0.1:9000", "max-push-txs": 500}; flags
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
	f.IntVar(&o.BatchBytes, "batch-bytes", 0, "most bytes of log entries or row states per message; one larger still goes alone (0: 1 MiB)")
	f.Int64Var(&o.MaxPushBytes, "max-push-bytes", 0, "bytes of received frames held at once, over all connections, until their pushes are acknowledged; others wait (0: 64 MiB)")
	f.IntVar(&o.MaxStreams, "max-streams", 0, "most live query streams (Server-Sent Events) at once (0: 1000)")
	f.StringVar(&o.HelloTimeout, "hello-timeout", "", "how long a new connection may take to say Hello (default 10s)")
	f.StringVar(&o.MaxDrift, "max-drift", "", "how far ahead of the server's clock a write may be stamped (empty: 24h)")
	f.StringSliceVar(&o.Origins, "origins", nil, "browser origins allowed besides the server's host")
	f.StringVar(&o.JWTAlg, "jwt-alg", "", "verify JWTs with this algorithm (EdDSA, ES256, HS256) instead of the development token")
	f.StringVar(&o.JWTKey, "jwt-key", "", "file with the JWT key: a PEM public key (EdDSA, ES256) or the secret (HS256)")
	f.StringVar(&o.JWTAudience, "jwt-aud", "", "required JWT audience")
	f.StringVar(&o.JWTIssuer, "jwt-iss", "", "required JWT issuer")
	f.BoolVar(&o.Registry, "registry", false, "admit only tenants registered with uno tenant create, and enforce their limits")
	f.StringVar(&o.Postgres, "postgres", "", "keep the event log in Postgres at this DSN instead of SQLite in the data directory")
	f.StringVar(&o.Web, "web", "", "serve this directory's files (a web app, such as examples/web after wasm/build.sh) at /: regular files inside it only, no dotfiles, a directory's index.html")
	f.BoolVar(&o.DevTokenOnNetwork, "dev-token-on-network", false, "allow the development token on an address other machines reach (whoever holds the token reads and writes the tenant)")
	o.DrainTimeout, o.ReadHeaderTimeout, o.ReadTimeout = duration(defaultDrainTimeout), duration(defaultReadHeaderTimeout), duration(defaultReadTimeout)
	o.WriteTimeout, o.IdleTimeout = duration(defaultWriteTimeout), duration(defaultIdleTimeout)
	f.Var(&o.DrainTimeout, "drain-timeout", "on SIGTERM or SIGINT, how long sessions may take to finish before they are cut")
	f.Var(&o.ReadHeaderTimeout, "read-header-timeout", "time to read a request's headers")
	f.Var(&o.ReadTimeout, "read-timeout", "time to read a whole request (WebSocket sessions and live queries outlive it)")
	f.Var(&o.WriteTimeout, "write-timeout", "time to write a response (WebSocket sessions and live queries outlive it: each of their frames or events has 10s)")
	f.Var(&o.IdleTimeout, "idle-timeout", "how long a kept-alive connection may wait for its next request")
	f.IntVar(&o.MaxHeaderBytes, "max-header-bytes", defaultMaxHeaderBytes, "largest request header block, in bytes")
	o.CompactInterval = duration(defaultCompactInterval)
	f.IntVar(&o.JobWorkers, "job-workers", 2, "background jobs (compaction, retention, rebuilds, tenant export and delete) this node runs at once; 0: none, other nodes run them")
	f.StringVar(&o.Node, "node", "", "this node's name in job records (default: host name and process ID)")
	f.Var(&o.CompactInterval, "compact-interval", "how often to compact the logs written to through this server: drop doc changes every live client is past (those that come back later bootstrap); 0: never")
	return cmd
}

func serve(ctx context.Context, o serveOptions, app Options, out io.Writer) error {
	// SIGTERM is what Docker, systemd and Kubernetes send; SIGINT is ^C.
	// Either drains the server (below).
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
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
	drift, _ := time.ParseDuration(o.MaxDrift) // validated; empty means the default
	hello, _ := time.ParseDuration(o.HelloTimeout)
	rules := map[string]server.Rule{}
	for coll, r := range o.Rules {
		rules[coll] = server.Rule{ReadOnly: r.ReadOnly, Owner: r.Owner, PrivateRead: r.PrivateRead}
	}
	schema, _ := o.Schema.schema() // validated
	srv, err := server.New(server.Config{
		Log: log, Auth: auth, Logger: logger, Schema: schema,
		Codec:           usync.CodecConfig{MaxFrameBytes: o.MaxFrameBytes, MaxMessageBytes: o.MaxMessage},
		Session:         usync.ServerConfig{Limits: usync.Limits{MaxPushTxs: uint32(o.MaxPushTxs), MaxMessageBytes: uint32(o.MaxMessage)}},
		OriginPatterns:  o.Origins,
		MaxConnections:  o.MaxConnections,
		BatchRows:       o.BatchRows,
		BatchBytes:      o.BatchBytes,
		MaxPushBytes:    o.MaxPushBytes,
		MaxStreams:      o.MaxStreams,
		HelloTimeout:    hello,
		MaxDrift:        drift,
		Registry:        registry,
		Rules:           rules,
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
	fmt.Fprintf(out, "uno serve: listening on http://%s (sync endpoint ws://%s/v1/sync)\n", ln.Addr(), ln.Addr())
	fmt.Fprintf(out, "data: %s\n", o.DataDir)
	if dev != nil {
		fmt.Fprintf(out, "development token (tenant %q): %s\n", dev.Tenant, dev.Token)
		if o.Web != "" {
			fmt.Fprintf(out, "web app: http://%s/#token=%s\n", ln.Addr(), dev.Token)
			if _, err := os.Stat(filepath.Join(o.Web, "notes.html")); err == nil {
				fmt.Fprintf(out, "notes: http://%s/notes.html#token=%s\n", ln.Addr(), dev.Token)
			}
		}
	} else {
		fmt.Fprintf(out, "tokens: JWT %s\n", o.JWTAlg)
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
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
	case "batch-bytes":
		o.BatchBytes = src.BatchBytes
	case "max-push-bytes":
		o.MaxPushBytes = src.MaxPushBytes
	case "max-streams":
		o.MaxStreams = src.MaxStreams
	case "hello-timeout":
		o.HelloTimeout = src.HelloTimeout
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
	case "dev-token-on-network":
		o.DevTokenOnNetwork = src.DevTokenOnNetwork
	case "drain-timeout":
		o.DrainTimeout = src.DrainTimeout
	case "compact-interval":
		o.CompactInterval = src.CompactInterval
	case "read-header-timeout":
		o.ReadHeaderTimeout = src.ReadHeaderTimeout
	case "read-timeout":
		o.ReadTimeout = src.ReadTimeout
	case "write-timeout":
		o.WriteTimeout = src.WriteTimeout
	case "idle-timeout":
		o.IdleTimeout = src.IdleTimeout
	case "max-header-bytes":
		o.MaxHeaderBytes = src.MaxHeaderBytes
	case "job-workers":
		o.JobWorkers = src.JobWorkers
	case "node":
		o.Node = src.Node
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
