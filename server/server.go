package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	gosync "sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/dgraph-io/ristretto/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/unosync/uno/crdt"
	usync "github.com/unosync/uno/sync"
	"github.com/unosync/uno/tenancy"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/semaphore"
)

// Config configures a Server. Log and Auth are required.
type Config struct {
	// Log is the event log, the system of record.
	Log Log
	// Auth verifies tokens: who each session and request acts as.
	Auth tenancy.Authenticator
	// Codec sets the frame limits. Zero fields take the sync defaults.
	Codec usync.CodecConfig
	// Session sets the protocol limits announced to clients.
	Session usync.ServerConfig
	// OriginPatterns lists the browser origins allowed to connect besides
	// the server's own host (see websocket.AcceptOptions). Default none.
	OriginPatterns []string
	// MaxConnections caps concurrent sync connections. Default 10,000.
	MaxConnections int
	// MaxStreams caps concurrent live query streams (Server-Sent
	// Events). Default 1,000.
	MaxStreams int
	// BatchRows caps the log entries sent in one Changes message, and the
	// rows in one Snapshot chunk. Default 500.
	BatchRows int
	// BatchBytes caps the bytes of entries (and of row states) in one
	// Changes or Snapshot message; a single entry or row larger than it
	// still goes alone (rows are at most MaxRowBytes). Default 1 MiB.
	BatchBytes int
	// MaxPushBytes bounds the bytes of frames the server holds at once,
	// over all connections, from decoding until their pushes are
	// appended and acknowledged (a compressed frame counts as the largest
	// message it may decompress to, at most the bound). Frames over the
	// bound wait. Default 64 MiB.
	MaxPushBytes int64
	// HelloTimeout is how long a new connection may take to send its
	// Hello: until then it holds a connection slot. Default 10s.
	HelloTimeout time.Duration
	// WriteTimeout bounds writing one frame to a client. Default 10s.
	WriteTimeout time.Duration
	// Schema, if set, is the declared schema pushes must follow: only its
	// collections and fields, each with its declared kind (CodeInvalidTx
	// otherwise). Nil: any valid name, any kind.
	Schema *crdt.Schema
	// Limits bound values and rows (crdt.Limits; zero fields take the
	// defaults, the same a client uses). A transaction larger than
	// MaxRowBytes, or that would make a row larger, is refused with
	// CodeRowTooLarge.
	Limits crdt.Limits
	// MaxDrift is how far ahead of the server's clock a pushed
	// transaction may be stamped. Default 24h (crdt.DefaultMaxDrift).
	MaxDrift time.Duration
	// Registry, if set, admits only registered, active tenants and
	// enforces their limits. Nil: every tenant the Auth accepts.
	Registry tenancy.Registry
	// StallTimeout is how long a client may hold no credit while the log
	// has entries for it before the server ends the session with
	// CodeSlowConsumer (the client reconnects and resumes from its
	// cursor). The server never buffers for it meanwhile. Default 60s.
	StallTimeout time.Duration
	// Validate, if set, is a write rule: it sees each pushed transaction
	// before it is appended and may refuse it by returning an error (a
	// *usync.Error chooses the code; others are CodeInvalidTx). A refused
	// transaction is appended as an empty one, so the site's sequence has
	// no gap and no replica sees its changes; its client gets a Reject with
	// the rows' server states and rolls it back.
	// UserFrom(ctx) names the session's user. Rules run before it. The
	// error's message goes to the client and to the server's log: it
	// should name rows and fields, not quote values.
	Validate func(ctx context.Context, tenant string, tx *crdt.Tx) error
	// Rules restrict writing and reading collections, by name (for
	// example: only a row's owner may write it). Refused writes are
	// rejected as Validate's are, with CodeForbidden.
	Rules map[string]Rule
	// RetentionInterval is how often the server deletes log entries older
	// than their tenants' retention (with a Registry that lists tenants and
	// the Postgres log). Default 1h; negative: never (a job queue,
	// package server/jobs, schedules it instead).
	RetentionInterval time.Duration
	// CompactInterval is how often the server compacts the logs of the
	// tenants written to through it (ApplyCompaction), with a log that
	// compacts. Default 1h; negative: never.
	CompactInterval time.Duration
	// Now returns the time; default time.Now.
	Now func() time.Time
	// Logger receives the server's structured logs; default discard. At
	// Info: each sync session's start (tenant, user, site, remote
	// address, cursor) and end (duration, close code and reason, bytes in
	// and out). At Warn: refused authentications (code, remote address;
	// never the token), refused sessions and writes (tenant, user, site,
	// seq, code, reason; never row values), slow consumers and expired
	// tokens. At Error: internal errors with their details, which clients
	// never see (they get a coded error). At Debug: each push.
	Logger *slog.Logger
	// TracerProvider receives the server's OpenTelemetry spans (see
	// Tracing in the package documentation); nil: the otel global,
	// read once, when New is called (a no-op unless an SDK is installed
	// before). A provider that does not record costs the push path
	// nothing.
	TracerProvider trace.TracerProvider
}

func (c *Config) validate() error {
	if c.Log == nil || c.Auth == nil {
		return errors.New("server: config: Log and Auth are required")
	}
	if err := c.validateRules(); err != nil {
		return err
	}
	c.Limits = c.Limits.WithDefaults()
	if c.Schema != nil {
		if err := c.Schema.Validate(); err != nil {
			return fmt.Errorf("server: config: %w", err)
		}
	}
	if c.MaxConnections <= 0 {
		c.MaxConnections = 10_000
	}
	if c.MaxStreams <= 0 {
		c.MaxStreams = 1_000
	}
	if c.BatchRows <= 0 {
		c.BatchRows = 500
	}
	if c.BatchBytes <= 0 {
		c.BatchBytes = 1 << 20
	}
	if c.MaxPushBytes <= 0 {
		c.MaxPushBytes = 64 << 20
	}
	if c.HelloTimeout <= 0 {
		c.HelloTimeout = 10 * time.Second
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.MaxDrift <= 0 {
		c.MaxDrift = 24 * time.Hour
	}
	if c.StallTimeout <= 0 {
		c.StallTimeout = time.Minute
	}
	if c.RetentionInterval == 0 {
		c.RetentionInterval = time.Hour
	}
	if c.CompactInterval == 0 {
		c.CompactInterval = time.Hour
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Server is uno's sync server, an http.Handler serving /v1/sync
// (WebSocket), the query API /v1/collections/{name} (JSON, or
// Server-Sent Events with ?live=1), /healthz, /readyz and Prometheus
// /metrics.
type Server struct {
	cfg      Config
	codec    *usync.Codec
	mux      *http.ServeMux
	conns    atomic.Int64
	streams  atomic.Int64
	draining atomic.Bool // /readyz answers 503 from Drain or Shutdown on
	m        *metrics
	appends  *appendTimes // when this process appended recent entries, for uno_delivery_seconds
	tr       *tracing
	rate     *tenancy.Limiter
	inFlight *semaphore.Weighted              // MaxPushBytes
	quotas   *tenancy.Quotas                  // tenants' usage, for quotas
	cache    *ristretto.Cache[string, []byte] // query results
	sessions *sessions                        // live sessions' positions, for compaction
	live     atomic.Pointer[Live]             // SetLive's settings

	mu     gosync.Mutex // guards closed and wg.Add against Close's wg.Wait
	closed bool
	wg     gosync.WaitGroup

	// ctx ends when the server starts closing (Shutdown or Close): new
	// sessions and queries are refused, live queries end, and each
	// session closes with CodeShuttingDown once its appends are done.
	ctx    context.Context
	cancel context.CancelFunc
	// cut ends when the sessions must stop at once, appending or not:
	// at Close, or when Shutdown's context ends.
	cut     context.Context
	cutNow  context.CancelFunc
	release gosync.Once // frees the codec and the cache
}

// New returns a server over cfg.Log.
func New(cfg Config) (*Server, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	codec, err := usync.NewCodec(cfg.Codec)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	cut, cutNow := context.WithCancel(context.Background())
	s := &Server{cfg: cfg, codec: codec, mux: http.NewServeMux(), ctx: ctx, cancel: cancel, cut: cut, cutNow: cutNow, m: newMetrics(), rate: tenancy.NewLimiter(0),
		quotas: tenancy.NewQuotas(0, 0), appends: newAppendTimes(appendTenants), inFlight: semaphore.NewWeighted(cfg.MaxPushBytes),
		sessions: newSessions()}
	s.live.Store(liveOf(&cfg))
	s.tr = newTracing(cfg.TracerProvider, s.m.reg)
	if s.cache, err = newQueryCache(s.m); err != nil {
		cancel()
		cutNow()
		return nil, err
	}
	if _, canForget := cfg.Log.(Retainer); cfg.Registry != nil && canForget && cfg.RetentionInterval > 0 {
		s.wg.Add(1)
		go s.retain()
	}
	if _, ok := cfg.Log.(Compactor); ok && cfg.CompactInterval > 0 {
		s.wg.Add(1)
		go s.compact()
	}
	s.mux.HandleFunc("GET /v1/sync", s.serveSync)
	s.mux.HandleFunc("GET /v1/collections/{name}", s.serveQuery)
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) })
	s.mux.HandleFunc("GET /readyz", s.serveReady)
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(s.m.reg, promhttp.HandlerOpts{}))
	return s, nil
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Close ends every sync connection at once, even one appending a push
// (its client pushes it again on reconnecting), and waits for them. It
// does not close the log. [Server.Shutdown] is the graceful way.
func (s *Server) Close() error {
	s.stop()
	s.cutNow()
	s.wg.Wait()
	s.free()
	return nil
}

// Shutdown stops the server gracefully. At once it refuses new sync
// connections and ends the live query streams (Server-Sent Events); each
// sync session finishes the pushes it is appending, sends their Acks, and
// closes with CodeShuttingDown (WebSocket close code
// CloseCode(CodeShuttingDown)), a retryable code: clients reconnect, to
// another node or to this one once it is back. Shutdown waits for the
// sessions until ctx ends, then cuts those left as Close does and returns
// ctx's error.
//
// It does not close the log, which the sessions use until Shutdown
// returns, nor the listener: with an http.Server, call its Shutdown
// alongside (it waits for the query streams this one ends; it does not
// track WebSocket sessions, which are hijacked connections).
func (s *Server) Shutdown(ctx context.Context) error {
	s.Drain()
	s.stop()
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = ctx.Err()
		s.cutNow()
		<-done
	}
	s.cutNow()
	s.free()
	return err
}

// Drain makes /readyz answer 503 "draining" from now on, while the server
// goes on serving: a load balancer polling readiness stops sending it new
// connections. Call it a while before [Server.Shutdown] (uno serve's
// --drain-delay); Shutdown calls it too.
func (s *Server) Drain() { s.draining.Store(true) }

// stop refuses new sessions and tells the running ones to close.
func (s *Server) stop() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cancel()
}

func (s *Server) free() {
	s.release.Do(func() {
		s.codec.Close()
		s.cache.Close()
	})
}

// serveReady answers /readyz: whether the log answers and the server is
// not draining. The reason stays in the server's log: the answer reveals
// nothing of the database.
func (s *Server) serveReady(w http.ResponseWriter, r *http.Request) {
	if s.draining.Load() {
		http.Error(w, "draining", http.StatusServiceUnavailable)
		return
	}
	if _, err := s.cfg.Log.Head(r.Context(), "_readyz"); err != nil {
		s.cfg.Logger.Warn("not ready: log unavailable", "err", err)
		http.Error(w, "log unavailable", http.StatusServiceUnavailable)
		return
	}
	w.Write([]byte("ready\n"))
}

// frameWeight is what a frame counts towards MaxPushBytes: its length, or
// for a compressed one the largest message it may decompress to; at most
// MaxPushBytes, so that any frame can go.
func (s *Server) frameWeight(b []byte) int64 {
	w := int64(len(b))
	if usync.Compressed(b) {
		w = int64(s.codec.Limits().MaxMessageBytes)
	}
	return min(w, s.cfg.MaxPushBytes)
}

// unavailable logs an internal failure with its details and returns the
// coded error a client sees, which carries none of them (a database
// error names hosts, users and tables).
func (s *Server) unavailable(what string, err error, attrs ...any) *usync.Error {
	if se := (*usync.Error)(nil); errors.As(err, &se) {
		return se
	}
	s.cfg.Logger.Error(what, append(attrs, "err", err)...)
	return usync.Errorf(usync.CodeUnavailable, "%s failed: retry later", what)
}

func (s *Server) serveSync(w http.ResponseWriter, r *http.Request) {
	if s.ctx.Err() != nil {
		http.Error(w, "server closing", http.StatusServiceUnavailable)
		return
	}
	if n := s.conns.Add(1); n > int64(s.live.Load().MaxConnections) {
		s.conns.Add(-1)
		http.Error(w, "too many connections", http.StatusServiceUnavailable)
		return
	}
	defer s.conns.Add(-1)
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{
		OriginPatterns:  s.cfg.OriginPatterns,
		CompressionMode: websocket.CompressionDisabled, // frames carry their own zstd
	})
	if err != nil {
		s.cfg.Logger.Debug("websocket accept", "err", err)
		return
	}
	ws.SetReadLimit(int64(s.codec.Limits().MaxFrameBytes))
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ws.Close(CloseCode(usync.CodeShuttingDown), "server shutting down: reconnect")
		return
	}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()
	s.m.connections.Inc()
	s.m.accepted.Inc()
	defer s.m.connections.Dec()
	live := s.live.Load()
	c := &conn{s: s, ws: ws, live: live, sess: usync.NewServerSession(s.sessionConfig(live)), started: time.Now(), remote: r.RemoteAddr, kick: make(chan *usync.Error, 1)}
	c.run(r.Context()) // closes the WebSocket with the session's code
}

// RegisterMetrics adds c's metrics to the server's /metrics (for example
// the job queue's, package server/jobs). It fails if a name is taken.
func (s *Server) RegisterMetrics(c prometheus.Collector) error { return s.m.reg.Register(c) }
