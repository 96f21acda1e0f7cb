package client

import (
	"context"
	"crypto/tls"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/unosync/uno/crdt"
	"github.com/unosync/uno/store"
	"go.opentelemetry.io/otel/trace"
)

// Errors returned by the client. Each is matched with errors.Is; the
// messages of wrapped errors say which name, value or field was at fault.
var (
	// ErrClosed is returned by every method of a closed client.
	ErrClosed = errors.New("client: closed")
	// ErrInvalidName is crdt.ErrInvalidName (and store.ErrInvalidName): a
	// collection or field name that is not [a-z][a-z0-9_]{0,62}, or is
	// reserved.
	ErrInvalidName = crdt.ErrInvalidName
	// ErrInvalidID is crdt.ErrInvalidID: a row ID that is empty, longer
	// than 256 bytes or not valid UTF-8.
	ErrInvalidID = crdt.ErrInvalidID
	// ErrInvalidValue is crdt.ErrInvalidValue: a value that cannot be
	// stored, because it is not JSON-compatible, is a document that is not
	// an object or a set member that is not a scalar, or breaks crdt's
	// rules for values (see crdt.ValidateTx: nesting, strings, numbers).
	ErrInvalidValue = crdt.ErrInvalidValue
	// ErrRowTooLarge is crdt.ErrRowTooLarge: a write after which a row's
	// merged state would exceed crdt's MaxRowBytes (2 MiB), the largest row
	// a sync message carries.
	ErrRowTooLarge = crdt.ErrRowTooLarge
	// ErrTooLarge reports a value over Config.MaxValueBytes or a
	// transaction over Config.MaxTxOps.
	ErrTooLarge = errors.New("client: too large")
	// ErrUnknownCollection reports a collection the declared schema lacks.
	ErrUnknownCollection = errors.New("client: unknown collection")
	// ErrUnknownField reports a field the declared schema lacks.
	ErrUnknownField = errors.New("client: unknown field")
	// ErrKindMismatch wraps crdt.ErrKindMismatch: an operation that does
	// not fit the field's kind, such as incrementing a register.
	ErrKindMismatch = crdt.ErrKindMismatch
	// ErrNotFound reports a row that does not exist (or was deleted).
	ErrNotFound = errors.New("client: not found")
)

// MaxIDBytes is the longest row ID, in bytes (crdt.MaxIDBytes).
const MaxIDBytes = crdt.MaxIDBytes

// Config configures a client. Path (or Store) is required; every other
// field has a working default.
type Config struct {
	// Path is the SQLite database file, created if missing. One process
	// at a time may own it: on Unix, Open in another process fails, after
	// about five seconds, with store.ErrInUse until this one closes it.
	Path string
	// Store, if set, is used instead of opening Path (for example a
	// store.Memory in tests), by this client alone: it registers with a
	// store.SQLite to hear of its commits (OnCommit, OnChange), and
	// closes it on Close. Synchronous,
	// MaxDrift and Now then come from the store's own options; Schema must
	// be nil (the store's is used) or the one the store was opened with.
	Store store.Store
	// Schema declares collections, field kinds, conflict policies and
	// indexes. Nil means undeclared: any valid name may be written, fields
	// are registers unless first written as counters or sets.
	Schema *store.Schema
	// Durability says what a committed local write survives: a power cut
	// (DurabilityFull, the default) or only the app crashing
	// (DurabilityRelaxed). See Durability.
	Durability Durability
	// Synchronous is SQLite's synchronous level for Path: "FULL" (default),
	// "NORMAL" or "EXTRA". See store.Options. Durability is the simpler
	// choice; DurabilityRelaxed means "NORMAL".
	Synchronous string
	// Server is the sync endpoint, such as ws://127.0.0.1:8080/v1/sync.
	// Empty: the client works offline only.
	Server string
	// Token authenticates the client to the server.
	Token string
	// TLS, if set, is the TLS configuration of a wss:// Server, for
	// example RootCAs trusting a private CA. Nil: the system's roots. The
	// client does not modify it. Ignored in the browser (its TLS is the
	// browser's).
	TLS *tls.Config
	// TokenSource, if set, is asked for a token at every connection
	// instead of Token, and again before that token expires: the client
	// renews it on the live connection (the server says when each token
	// expires), at 80% of its remaining lifetime or 30 s before expiry,
	// whichever comes first (but not before half of it). A token that
	// expires all the same (CodeTokenExpired) ends the connection, and the
	// client reconnects with a fresh one. TokenSource must return tokens
	// of one tenant: the server refuses another tenant's on a live
	// connection (CodeForbidden). It must be safe for concurrent use.
	TokenSource func(ctx context.Context) (string, error)
	// Subscriptions names the collections to receive from the server;
	// none means all the token allows. Local writes to other collections
	// are still pushed. Changing it (or Where) between runs is fine: the
	// server then sends just the rows that come into scope.
	Subscriptions []string
	// Where narrows subscribed collections to the rows whose fields equal
	// these values, for example {"todos": {"list": "groceries"}}. A row
	// that comes to match later arrives whole; one that stops matching
	// stays as it was last received.
	Where map[string]map[string]any
	// ManualSync turns off the background sync loop that otherwise runs
	// while Server is set; Sync then connects, syncs and disconnects.
	ManualSync bool
	// Heartbeat is the interval of pings on an idle connection; a
	// connection silent for three intervals is dropped. Default 15s.
	Heartbeat time.Duration
	// BackoffMin and BackoffMax bound the wait before each reconnection
	// attempt of the background loop. After n failed attempts in a row it
	// is a random time in (0, min(BackoffMax, BackoffMin·2^(n-1))]:
	// exponential backoff with full jitter, so that clients a server
	// outage cut off together do not come back together. After an error
	// no retry can fix (a refused token) it is a random time in
	// (0, BackoffMax]. A connection that lasted longer than BackoffMax
	// starts the count afresh. [Client.Sync] ends the wait at once; a
	// local write ends it too, but not twice in a row (see [Client.Sync]).
	// Defaults 200ms and 30s.
	BackoffMin, BackoffMax time.Duration
	// DialTimeout bounds connecting and the WebSocket handshake. Default 10s.
	DialTimeout time.Duration
	// MaxValueBytes caps the JSON size of one field value. Default and
	// maximum 1 MiB (crdt.DefaultMaxValueBytes, the limit servers enforce).
	MaxValueBytes int
	// MaxTxOps caps the ops of one transaction. Default 100,000.
	MaxTxOps int
	// MaxDrift bounds how far ahead of the local clock a remote timestamp
	// may be. Default 24h.
	MaxDrift time.Duration
	// Logger receives diagnostics. Default: discard.
	Logger *slog.Logger
	// Now returns the wall time. Default time.Now.
	Now func() time.Time
	// TracerProvider receives the client's OpenTelemetry spans (see
	// Tracing in the package documentation); nil: the otel global, read
	// once, when the client is opened (a no-op unless an SDK is
	// installed before).
	TracerProvider trace.TracerProvider
}

func (c *Config) validate() error {
	if c.Path == "" && c.Store == nil {
		return errors.New("client: config: set Path (a SQLite file) or Store")
	}
	switch c.Durability {
	case DurabilityFull:
	case DurabilityRelaxed:
		if c.Synchronous == "" {
			c.Synchronous = "NORMAL"
		}
		if !strings.EqualFold(c.Synchronous, "NORMAL") {
			return fmt.Errorf("client: config: DurabilityRelaxed is Synchronous NORMAL, not %q: set one of them", c.Synchronous)
		}
	default:
		return fmt.Errorf("client: config: Durability %d: want DurabilityFull or DurabilityRelaxed", c.Durability)
	}
	if err := c.Schema.Validate(); err != nil {
		return fmt.Errorf("client: config: %w", err)
	}
	for _, name := range c.Subscriptions {
		if err := crdt.ValidName(name, false); err != nil {
			return fmt.Errorf("client: config: subscription: %w", err)
		}
	}
	for name, where := range c.Where {
		if !slices.Contains(c.Subscriptions, name) {
			return fmt.Errorf("client: config: Where names %s, which Subscriptions does not", name)
		}
		for f, v := range where {
			if _, err := json.Marshal(v); err != nil || f == "" {
				return fmt.Errorf("client: config: Where %s.%s: want a field and a JSON value (%v)", name, f, err)
			}
		}
	}
	if c.MaxValueBytes < 0 || c.MaxTxOps < 0 {
		return errors.New("client: config: limits must not be negative")
	}
	if c.MaxValueBytes > crdt.DefaultMaxValueBytes {
		return fmt.Errorf("client: config: MaxValueBytes %d exceeds %d, the most any replica accepts", c.MaxValueBytes, crdt.DefaultMaxValueBytes)
	}
	if c.MaxValueBytes == 0 {
		c.MaxValueBytes = 1 << 20
	}
	if c.MaxTxOps == 0 {
		c.MaxTxOps = 100_000
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Heartbeat <= 0 {
		c.Heartbeat = 15 * time.Second
	}
	if c.BackoffMin <= 0 {
		c.BackoffMin = 200 * time.Millisecond
	}
	if c.BackoffMax < c.BackoffMin {
		c.BackoffMax = max(30*time.Second, c.BackoffMin)
	}
	if c.DialTimeout <= 0 {
		c.DialTimeout = 10 * time.Second
	}
	return nil
}

// Client is an embedded uno replica. Every read and write works offline
// against the local store. A Client is safe for concurrent use.
type Client struct {
	cfg   Config
	store store.Store
	tr    *tracing

	mu       sync.Mutex
	closed   bool
	watchers map[*Watch]struct{}
	wg       sync.WaitGroup // watch goroutines

	syncMu        sync.Mutex
	status        Status
	statusSubs    map[chan Status]func() bool // StatusChanges subscriptions, each with the stop of its context's AfterFunc; nil once closed
	upToDate      chan struct{}               // closed and replaced each time the status becomes up to date
	syncWake      chan struct{}               // a local write: something to push
	syncNow       chan struct{}               // a Sync call: connect now
	barriers      chan chan uint64            // Sync asks the live connection for the server's head
	reauths       chan chan error             // Reauthenticate asks the live connection to renew its token
	boot          *bootState                  // a bootstrap in progress (guarded by syncMu)
	resubscribing []byte                      // the subscriptions record to keep once a resubscription's rows are in (guarded by syncMu)
	syncStop      context.CancelFunc
	syncDone      chan struct{}
	wakesEarly    bool // the store calls committed as local writes commit
}

// Durability says what a committed local write survives.
type Durability int

const (
	// DurabilityFull, the default: a local write is on disk (fsync'd)
	// before Tx returns, and survives a power cut or an OS crash. The
	// background sync pushes it while its fsync runs, so the server and
	// other replicas see it one fsync sooner; a power cut in that window
	// is a lost commit the server holds, recovered as under
	// DurabilityRelaxed.
	// Changes received from the server, and its acknowledgements of local
	// writes, are stored without an fsync of their own: the server holds
	// them, and the sync cursor moves in the same transaction, so a power
	// cut can only make the client fetch them again.
	DurabilityFull Durability = iota
	// DurabilityRelaxed: commits do not wait for the disk. A local write
	// survives the app crashing or being killed, but a power cut or an OS
	// crash may lose the last writes made before it (those the OS had not
	// yet written out) — the default of Couchbase Lite, for instance. What
	// the server acknowledged is never lost: the client fetches it again.
	// In the browser every commit is one IndexedDB transaction either way.
	//
	// After a database lost its last commits (a power cut under
	// DurabilityRelaxed, or the file restored from an older copy, in
	// either mode), the client fetches what the server holds again. Local
	// writes made before it next reaches the server may take the
	// sequence numbers of lost writes the server holds; it finds those
	// (each opening of the store labels its writes with a random epoch,
	// which the server records) and moves them to a new site of the
	// replica, so both survive: Site changes, and the replica bootstraps
	// once. A doc edit among them cannot move (its Automerge changes are
	// authored by the old site): it goes on the rejection feed with
	// sync.CodeForked.
	DurabilityRelaxed
)

// Open opens (or creates) the local store and returns a ready client.
func Open(ctx context.Context, cfg Config) (*Client, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	st := cfg.Store
	if st != nil {
		switch {
		case cfg.Schema == nil:
			cfg.Schema = st.Schema()
		case cfg.Schema != st.Schema():
			return nil, errors.New("client: config: Schema differs from the Store's: pass the same *store.Schema in store.Options, or leave Config.Schema nil")
		}
	}
	if st == nil {
		s, err := store.OpenSQLite(ctx, cfg.Path, store.Options{
			Schema:      cfg.Schema,
			Synchronous: cfg.Synchronous,
			MaxDrift:    cfg.MaxDrift,
			Now:         cfg.Now,
		})
		if err != nil {
			return nil, err
		}
		st = s
	}
	// The status counts the writes left pending when the replica was last
	// open, offline too; writes and connections keep it from here.
	pending, err := st.Pending(ctx)
	if err != nil {
		if cfg.Store == nil {
			st.Close()
		}
		return nil, err
	}
	c := &Client{cfg: cfg, store: st, watchers: map[*Watch]struct{}{}, statusSubs: map[chan Status]func() bool{},
		upToDate: make(chan struct{}), syncWake: make(chan struct{}, 1), syncNow: make(chan struct{}, 1), barriers: make(chan chan uint64), reauths: make(chan chan error),
		status: Status{Pending: pending}, tr: newTracing(cfg.TracerProvider)}
	// A store that reports each commit's rows, in commit order
	// (store.SQLite), lets a live query update its result from them.
	if n, ok := st.(interface {
		OnChange(func([]crdt.RowKey, []*crdt.Row))
	}); ok {
		n.OnChange(c.changed)
	}
	if cfg.Server != "" && !cfg.ManualSync {
		// A store that says when local writes commit (store.SQLite) wakes
		// the loop then: at full durability, while the write's fsync
		// runs, so the push does not wait for it.
		if n, ok := st.(interface{ OnCommit(func()) }); ok {
			n.OnCommit(c.committed)
			c.wakesEarly = true
		}
		ctx, cancel := context.WithCancel(context.Background())
		c.syncStop, c.syncDone = cancel, make(chan struct{})
		go func() {
			defer close(c.syncDone)
			c.runSync(ctx)
		}()
	}
	return c, nil
}

// Close stops every watch and closes the store. Writes that returned are
// durable; Close is safe to call more than once.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	ws := c.watchers
	c.watchers = nil
	c.mu.Unlock()
	for w := range ws {
		w.stop()
	}
	c.wg.Wait()
	if c.syncStop != nil {
		c.syncStop()
		<-c.syncDone
	}
	c.syncMu.Lock()
	for ch, stop := range c.statusSubs {
		stop()
		close(ch)
	}
	c.statusSubs = nil // marks the client closed to StatusChanges
	c.syncMu.Unlock()
	return c.store.Close()
}

func (c *Client) check() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return ErrClosed
	}
	return nil
}

// Site returns this replica's site ID.
func (c *Client) Site() crdt.SiteID { return c.store.Site() }

// DB returns the SQLite database for reading collections with plain SQL,
// or nil when the client runs on another store. Never write through it.
func (c *Client) DB() *sql.DB {
	if s, ok := c.store.(*store.SQLite); ok {
		return s.DB()
	}
	return nil
}

// Pending returns the number of local transactions not yet acknowledged
// by a server.
func (c *Client) Pending(ctx context.Context) (int, error) {
	if err := c.check(); err != nil {
		return 0, err
	}
	return c.store.Pending(ctx)
}

// Conflicts returns up to limit conflict records with IDs above after,
// oldest first (limit 0: all). A record is made each time a write met a
// concurrent write of the same field: it names both values and writers.
// Remember the last ID seen to read the feed incrementally.
func (c *Client) Conflicts(ctx context.Context, after uint64, limit int) ([]store.ConflictEntry, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	return c.store.Conflicts(ctx, after, limit)
}

// Hash returns the canonical hash of the replica's state: replicas that
// applied the same transactions have equal hashes.
func (c *Client) Hash(ctx context.Context) ([32]byte, error) {
	if err := c.check(); err != nil {
		return [32]byte{}, err
	}
	return c.store.Hash(ctx)
}

// Outbox returns up to limit local transactions above sequence number
// after that no server has acknowledged yet. With [Client.Merge] it lets
// replicas exchange changes over any transport.
func (c *Client) Outbox(ctx context.Context, after uint64, limit int) ([]*crdt.Tx, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	return c.store.Outbox(ctx, after, limit)
}

// Merge applies transactions made by other replicas, atomically. Each
// transaction takes effect once, however often it is delivered. Watches
// and the conflict feed see the result.
func (c *Client) Merge(ctx context.Context, txs []*crdt.Tx) error {
	if err := c.check(); err != nil {
		return err
	}
	commit, err := c.store.Apply(ctx, txs)
	if err != nil {
		return err
	}
	c.notify(commit)
	return nil
}

// NewID returns a new row ID: a UUIDv7, which sorts by creation time.
func NewID() string {
	return uuid.Must(uuid.NewV7()).String()
}
