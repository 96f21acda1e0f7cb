package sqlitelog

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	gosync "sync"
	"time"

	"go.opentelemetry.io/otel/trace"
	"modernc.org/sqlite"

	"github.com/unosync/uno/crdt"
	"github.com/unosync/uno/internal/walfill"
	"github.com/unosync/uno/server"
	"github.com/unosync/uno/server/internal/logtrace"
	"github.com/unosync/uno/server/internal/rowmodel"
	"github.com/unosync/uno/server/internal/wake"
	usync "github.com/unosync/uno/sync"
)

// Log is the embedded event log: one SQLite file (WAL,
// synchronous=FULL) holding every tenant's log, its per-site high-water
// marks and the rows read model, which is updated inline, in the append
// transaction. Appends are serialised (SQLite has one writer), which is
// what makes sequence numbers gap-free and commit-ordered.
type Log struct {
	db      *sql.DB
	waiters *wake.Waiters
	stmts   map[string]*sql.Stmt // the append path's statements, prepared once

	tails *tails             // tenants' newest entries and heads, in memory
	docs  *rowmodel.DocCache // open documents of doc fields, for rendering rows

	inline []Projection // folded in every append
	async  []*projector // one worker each
	tracer trace.Tracer // async projections' spans
	stop   func()       // stops the workers
	work   gosync.WaitGroup
	logger *slog.Logger
	// publish is held by the committer from a commit until its entries
	// are in tails; deletions take it to forget a tenant (see forget).
	publish gosync.Mutex

	ckpt *checkpointer // background checkpoints (checkpoint.go)

	mu         gosync.Mutex // guards the fields below
	cond       *gosync.Cond // signalled when the committer stops
	closed     bool
	pending    []*appendReq // appends waiting for the committer
	committing bool         // a committer goroutine runs
	ckptWants  bool         // a checkpoint waits to hold the committer off (checkpoint.go)
}

var (
	_ server.Log     = (*Log)(nil)
	_ server.Watcher = (*Log)(nil)
)

// Options tune a Log. The zero value takes every default.
type Options struct {
	// CacheBytes bounds the newest entries kept in memory, over all
	// tenants (decoded and encoded). Default 64 MiB.
	CacheBytes int
	// CacheTenants bounds the tenants whose newest entries and head are
	// kept in memory. Default 10,000.
	CacheTenants int
	// DocCacheBytes bounds the memory of the doc fields' documents kept
	// open to render rows as JSON after a change (rowmodel.DocCache; an
	// open document takes about 500 bytes per character). Default 256 MiB.
	DocCacheBytes int
	// Projections are the application's read models, folded inline or
	// by a worker per async projection (see [Projection]). Their tables
	// must exist: SetupProjections creates them. Default none.
	Projections []Projection
	// Logger receives the async projections' failures (they are
	// retried). Default: discarded.
	Logger *slog.Logger
	// TracerProvider receives the spans of async projections' folds,
	// which link to the spans of the appends of the entries they fold
	// (the log keeps each traced entry's trace context); nil: the otel
	// global. Appends and inline projections trace into
	// the span of the Append's context.
	TracerProvider trace.TracerProvider
}

func (o *Options) fill() {
	if o.CacheBytes <= 0 {
		o.CacheBytes = 64 << 20
	}
	if o.CacheTenants <= 0 {
		o.CacheTenants = 10_000
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// Open opens (creating if needed) the log at path. opts may be nil.
func Open(ctx context.Context, path string, opts *Options) (*Log, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	o.fill()
	db, err := openDB(ctx, path, "immediate")
	if err != nil {
		return nil, err
	}
	// Appends commit at synchronous=FULL: into a preallocated log, each
	// fsync has no growth of the file to journal (package walfill).
	if err := walfill.Prefill(ctx, db, path, walPrefill); err != nil {
		db.Close()
		return nil, fmt.Errorf("open log %s: %w", path, err)
	}
	if err := checkProjections(ctx, db, o.Projections); err != nil {
		db.Close()
		return nil, fmt.Errorf("open log %s: %w", path, err)
	}
	l := &Log{db: db, waiters: wake.New(), stmts: map[string]*sql.Stmt{}, tracer: asyncTracer(o.TracerProvider),
		tails: newTails(o.CacheBytes, o.CacheTenants), docs: rowmodel.NewDocCache(o.DocCacheBytes), logger: o.Logger,
		ckpt: &checkpointer{pacer: walfill.NewPacer(checkpointFrames), kick: make(chan struct{}, 1)}}
	l.cond = gosync.NewCond(&l.mu)
	for _, q := range appendStmts {
		st, err := db.PrepareContext(ctx, q)
		if err != nil {
			db.Close()
			return nil, fmt.Errorf("open log %s: prepare: %w", path, err)
		}
		l.stmts[q] = st
	}
	for _, p := range o.Projections {
		if p.Async {
			l.async = append(l.async, newProjector(l, p))
		} else {
			l.inline = append(l.inline, p)
		}
	}
	wctx, stop := context.WithCancel(context.Background())
	l.stop = stop
	l.work.Add(1)
	go func() {
		defer l.work.Done()
		l.runCheckpoints(wctx)
	}()
	for _, pr := range l.async {
		l.work.Add(1)
		go func() {
			defer l.work.Done()
			pr.run(wctx)
		}()
	}
	return l, nil
}

func (l *Log) logf(format string, args ...any) {
	l.logger.Warn(fmt.Sprintf(format, args...))
}

// walPrefill is the size the log's write-ahead log is extended to when it
// opens (2,000 pages): past where the background checkpoints let it start
// over (checkpoint.go), with room for the group commits made meanwhile.
const walPrefill = 8 << 20

// openDB opens (creating if needed) the database at path and moves its
// schema to SchemaVersion.
//
// txlock is how its transactions begin: "immediate" takes the writer
// lock at BEGIN (the log's appends), "deferred" at the first write (a
// rebuild, whose replay writes only TEMP tables and so never holds the
// lock appends wait for).
func openDB(ctx context.Context, path, txlock string) (*sql.DB, error) {
	if path == "" || strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("sqlitelog: log path %q: want a file name without ? or #", path)
	}
	q := url.Values{}
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_pragma", "busy_timeout(5000)")
	q.Add("_pragma", fmt.Sprintf("wal_autocheckpoint(%d)", walBackstopPages)) // see checkpoint.go
	q.Set("_txlock", txlock)
	d, err := newDriver()
	if err != nil {
		return nil, fmt.Errorf("open log %s: %w", path, err)
	}
	db := sql.OpenDB(connector{d: d, dsn: "file:" + path + "?" + q.Encode()})
	db.SetMaxOpenConns(8)
	db.SetMaxIdleConns(8)
	if err := migrate(ctx, db, SchemaVersion); err != nil {
		db.Close()
		return nil, fmt.Errorf("open log %s: %w", path, err)
	}
	return db, nil
}

// newDriver returns a SQLite driver of the log's own, with the functions
// the log's queries call registered on it alone (not on the process's
// "sqlite" driver).
func newDriver() (*sqlite.Driver, error) {
	d := &sqlite.Driver{}
	// uno_order_key(json) is rowmodel.OrderKey: the query order.
	err := d.RegisterDeterministicScalarFunction("uno_order_key", 1, func(_ *sqlite.FunctionContext, args []driver.Value) (driver.Value, error) {
		switch v := args[0].(type) {
		case nil:
			return rowmodel.OrderKey(nil)
		case string:
			return rowmodel.OrderKey([]byte(v))
		case []byte:
			return rowmodel.OrderKey(v)
		}
		return nil, fmt.Errorf("uno_order_key: %T is not JSON text", args[0])
	})
	return d, err
}

// connector opens connections to dsn with the log's driver.
type connector struct {
	d   *sqlite.Driver
	dsn string
}

func (c connector) Connect(context.Context) (driver.Conn, error) { return c.d.Open(c.dsn) }
func (c connector) Driver() driver.Driver                        { return c.d }

const (
	sqlHead      = `SELECT seq FROM heads WHERE tenant = ?`
	sqlSiteMark  = `SELECT seq FROM sites WHERE tenant = ? AND site = ?`
	sqlInsert    = `INSERT INTO events (tenant, seq, site, site_seq, tx, appended_at, trace) VALUES (?, ?, ?, ?, ?, ?, ?)`
	sqlSaveMark  = `INSERT INTO sites (tenant, site, seq) VALUES (?, ?, ?) ON CONFLICT (tenant, site) DO UPDATE SET seq = excluded.seq`
	sqlSaveHead  = `INSERT INTO heads (tenant, seq) VALUES (?, ?) ON CONFLICT (tenant) DO UPDATE SET seq = excluded.seq`
	sqlRowState  = `SELECT state FROM rows WHERE tenant = ? AND coll = ? AND id = ?`
	sqlSaveState = `INSERT INTO rows (tenant, coll, id, seq, state, doc) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (tenant, coll, id) DO UPDATE SET seq = excluded.seq, state = excluded.state, doc = excluded.doc`
)

// The savepoint around each request of a group, prepared like the rest.
const (
	sqlSavepoint = `SAVEPOINT append`
	sqlRelease   = `RELEASE append`
	sqlRollback  = `ROLLBACK TO append`
)

var appendStmts = []string{sqlHead, sqlSiteMark, sqlInsert, sqlSaveMark, sqlSaveHead, sqlRowState, sqlSaveState, sqlSavepoint, sqlRelease, sqlRollback}

// appendTx is one append transaction with its bound statements.
type appendTx struct {
	now   int64 // Unix milliseconds: the entries' appended_at
	tx    *sql.Tx
	l     *Log
	bound map[string]*sql.Stmt
	// heads are the tenants' heads as the group's requests that went
	// through left them, each read once and saved once before the commit.
	heads map[string]groupHead
}

// groupHead is a tenant's head in a group commit.
type groupHead struct {
	seq   uint64
	moved bool // a request appended: saved before the commit
}

func (a *appendTx) stmt(ctx context.Context, q string) *sql.Stmt {
	st, ok := a.bound[q]
	if !ok {
		st = a.tx.StmtContext(ctx, a.l.stmts[q])
		a.bound[q] = st
	}
	return st
}

// DB returns the underlying database, for read-model queries.
func (l *Log) DB() *sql.DB { return l.db }

// Close implements Log.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	for l.committing { // let the appends already accepted commit
		l.cond.Wait()
	}
	l.mu.Unlock()
	l.stop()
	l.work.Wait() // an async batch under way rolls back
	l.waiters.Close()
	return l.db.Close()
}

func (l *Log) check() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return server.ErrLogClosed
	}
	return nil
}

// Append implements Log. In the same transaction it folds each appended
// transaction into the rows read model and the inline projections.
//
// Appends from concurrent callers are committed together (group commit):
// one committer takes every request waiting, applies each under its own
// savepoint (so one caller's gap or error does not fail the others) and
// commits them with one fsync. Append returns only after that commit, so
// an acknowledgement built on its result is always durable.
func (l *Log) Append(ctx context.Context, tenant string, txs []crdt.Tx) ([]uint64, error) {
	if err := rowmodel.CheckAppend(tenant, txs); err != nil {
		return nil, err
	}
	if err := server.CheckRun(ctx); err != nil {
		return nil, err
	}
	req := &appendReq{ctx: ctx, tenant: tenant, txs: txs, done: make(chan struct{})}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil, server.ErrLogClosed
	}
	l.pending = append(l.pending, req)
	lead := !l.committing && !l.ckptWants // (with a checkpoint waiting, it hands the queue off)
	if lead {
		l.committing = true
	}
	l.mu.Unlock()
	if lead {
		// No committer runs: this caller commits its own group, with
		// whatever else is waiting, sparing a lone append the handoff
		// to another goroutine and back.
		l.commitLoop(true)
	}
	<-req.done // never abandoned: the outcome must be known before replying
	return req.seqs, req.err
}

// appendReq is one caller's Append waiting for the committer.
type appendReq struct {
	ctx    context.Context
	tenant string
	txs    []crdt.Tx
	seqs   []uint64
	enc    [][]byte // the appended transactions, encoded (nil for skipped ones)
	head   uint64
	err    error
	done   chan struct{}
}

// maxGroup caps the requests committed together.
const maxGroup = 256

// commitLoop commits waiting requests in groups until none is left. A
// caller's Append that leads (first) commits one group, then hands what
// arrived meanwhile to a committer goroutine rather than keep its own
// caller waiting.
func (l *Log) commitLoop(first bool) {
	for done := false; ; done = true {
		l.mu.Lock()
		if len(l.pending) == 0 || l.ckptWants {
			l.committing = false
			l.cond.Broadcast()
			l.mu.Unlock()
			return
		}
		if first && done {
			l.mu.Unlock()
			go l.commitLoop(false)
			return
		}
		n := min(len(l.pending), maxGroup)
		group := l.pending[:n:n]
		l.pending = l.pending[n:]
		l.mu.Unlock()
		l.commitGroup(group)
	}
}

func (l *Log) commitGroup(group []*appendReq) {
	ctx := context.Background() // the group's fate must not hang on one caller's context
	finish := func(err error) {
		for _, r := range group {
			if err != nil && r.err == nil {
				r.err, r.seqs = err, nil
			}
			close(r.done)
		}
	}
	tx, err := l.db.BeginTx(ctx, nil)
	if err != nil {
		finish(fmt.Errorf("append: %w", err))
		return
	}
	defer tx.Rollback()
	at := &appendTx{now: time.Now().UnixMilli(), tx: tx, l: l, bound: map[string]*sql.Stmt{}, heads: map[string]groupHead{}}
	// A lone request needs no savepoint: if it fails, the transaction
	// rolls back and nothing else is in it.
	alone := len(group) == 1
	for _, r := range group {
		if err := r.ctx.Err(); err != nil {
			r.err = err
			continue
		}
		if !alone {
			if _, err := at.stmt(ctx, sqlSavepoint).ExecContext(ctx); err != nil {
				finish(fmt.Errorf("append: %w", err))
				return
			}
		}
		// The run the append starts (server.WithRun), saved before its
		// entries raise the site's mark, commits with them or not at all.
		if site, run, ok := server.RunOf(r.ctx); ok {
			r.err = saveRun(ctx, tx, r.tenant, site, run)
		}
		if r.err == nil {
			r.seqs, r.head, r.enc, r.err = l.appendOne(withSpanOf(ctx, r.ctx), at, r.tenant, r.txs)
		}
		if r.err == nil && r.head != at.heads[r.tenant].seq {
			at.heads[r.tenant] = groupHead{seq: r.head, moved: true}
		}
		if alone {
			if r.err != nil {
				finish(nil) // the deferred Rollback undoes it
				return
			}
			continue
		}
		if r.err != nil {
			if _, err := at.stmt(ctx, sqlRollback).ExecContext(ctx); err != nil {
				finish(fmt.Errorf("append: %w", err))
				return
			}
		}
		if _, err := at.stmt(ctx, sqlRelease).ExecContext(ctx); err != nil {
			finish(fmt.Errorf("append: %w", err))
			return
		}
	}
	for tenant, gh := range at.heads {
		if !gh.moved {
			continue
		}
		if _, err := at.stmt(ctx, sqlSaveHead).ExecContext(ctx, tenant, int64(gh.seq)); err != nil {
			finish(fmt.Errorf("append: save head: %w", err))
			return
		}
	}
	for _, r := range group {
		if r.err == nil {
			server.Numbered(r.ctx, r.seqs)
		}
	}
	l.publish.Lock()
	if err := tx.Commit(); err != nil {
		l.publish.Unlock()
		finish(fmt.Errorf("append: commit: %w", err))
		return
	}
	for _, r := range group {
		if r.err == nil {
			l.tails.add(r.tenant, r.txs, r.enc, r.seqs, r.head)
		}
	}
	l.publish.Unlock()
	txs := 0
	for _, r := range group {
		txs += len(r.txs)
	}
	l.ckpt.committed(txs)
	for _, r := range group {
		if r.err == nil {
			l.waiters.Advanced(r.tenant, r.head)
			for _, pr := range l.async {
				pr.kick(r.tenant)
			}
		}
	}
	finish(nil)
}

// appendOne appends one request's transactions inside the group's
// transaction and returns their sequence numbers and the tenant's new head.
func (l *Log) appendOne(ctx context.Context, at *appendTx, tenant string, txs []crdt.Tx) ([]uint64, uint64, [][]byte, error) {
	gh, ok := at.heads[tenant]
	if !ok {
		if err := at.stmt(ctx, sqlHead).QueryRowContext(ctx, tenant).Scan(&gh.seq); err != nil && !errors.Is(err, sql.ErrNoRows) {
			return nil, 0, nil, fmt.Errorf("append: read head: %w", err)
		}
		at.heads[tenant] = gh // read: the same whether this request goes through or not
	}
	head := gh.seq
	marks := map[crdt.SiteID]uint64{}
	seqs := make([]uint64, len(txs))
	encs := make([][]byte, len(txs))
	fold := newFold(ctx, at, tenant)
	for i := range txs {
		t := &txs[i]
		hw, ok := marks[t.Site]
		if !ok {
			if err := at.stmt(ctx, sqlSiteMark).QueryRowContext(ctx, tenant, t.Site[:]).Scan(&hw); err != nil && !errors.Is(err, sql.ErrNoRows) {
				return nil, 0, nil, fmt.Errorf("append: read high-water: %w", err)
			}
		}
		switch {
		case t.Seq <= hw:
			marks[t.Site] = hw
			continue // already held: idempotent
		case t.Seq > hw+1:
			return nil, 0, nil, usync.Errorf(usync.CodeGap, "tx %s/%d after %d", t.Site, t.Seq, hw)
		}
		head++
		encs[i] = crdt.EncodeTx(t)
		if _, err := at.stmt(ctx, sqlInsert).ExecContext(ctx, tenant, int64(head), t.Site[:], int64(t.Seq), encs[i], at.now, logtrace.Of(ctx)); err != nil {
			return nil, 0, nil, fmt.Errorf("append: %w", err)
		}
		if err := fold.Apply(t, head); err != nil {
			return nil, 0, nil, err
		}
		marks[t.Site] = t.Seq
		seqs[i] = head
	}
	for site, seq := range marks {
		if _, err := at.stmt(ctx, sqlSaveMark).ExecContext(ctx, tenant, site[:], int64(seq)); err != nil {
			return nil, 0, nil, fmt.Errorf("append: save high-water: %w", err)
		}
	}
	if err := saveFold(ctx, at, tenant, fold); err != nil {
		return nil, 0, nil, err
	}
	if len(l.inline) > 0 {
		var chs []usync.Change
		for i, seq := range seqs {
			if seq != 0 {
				chs = append(chs, usync.Change{Seq: seq, Tx: txs[i]})
			}
		}
		if err := l.foldInline(ctx, at.tx, tenant, chs); err != nil {
			return nil, 0, nil, err
		}
	}
	return seqs, head, encs, nil
}

// Encoded implements server.EncodedTail: the encodings of entries (from
// Read), when the log still holds them in memory.
func (l *Log) Encoded(tenant string, entries []usync.Change) ([][]byte, bool) {
	return l.tails.encodings(tenant, entries)
}

// HighWater implements Log.
func (l *Log) HighWater(ctx context.Context, tenant string, site crdt.SiteID) (uint64, error) {
	if err := l.check(); err != nil {
		return 0, err
	}
	var seq uint64
	err := l.db.QueryRowContext(ctx, `SELECT seq FROM sites WHERE tenant = ? AND site = ?`, tenant, site[:]).Scan(&seq)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("read high-water: %w", err)
	}
	return seq, nil
}

// Head implements Log.
func (l *Log) Head(ctx context.Context, tenant string) (uint64, error) {
	if err := l.check(); err != nil {
		return 0, err
	}
	if h, ok := l.tails.head(tenant); ok {
		return h, nil
	}
	var seq uint64
	err := l.db.QueryRowContext(ctx, `SELECT seq FROM heads WHERE tenant = ?`, tenant).Scan(&seq)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("read head: %w", err)
	}
	return seq, nil
}

// Read implements Log.
func (l *Log) Read(ctx context.Context, tenant string, after uint64, limit, maxBytes int) ([]usync.Change, error) {
	if err := l.check(); err != nil {
		return nil, err
	}
	if limit <= 0 {
		limit = 1000
	}
	if out, ok := l.tails.read(tenant, after, limit, maxBytes); ok {
		return out, nil
	}
	// Nothing below the compaction floor: a reader behind it sees a gap.
	rows, err := l.db.QueryContext(ctx, `SELECT seq, tx FROM events WHERE tenant = ?1
		AND seq > max(?2, coalesce((SELECT compact_floor FROM heads WHERE tenant = ?1), 1) - 1) ORDER BY seq LIMIT ?3`, tenant, int64(after), limit)
	if err != nil {
		return nil, fmt.Errorf("read log: %w", err)
	}
	defer rows.Close()
	out, err := rowmodel.CollectEntries(rows, maxBytes, nil)
	if err != nil {
		return nil, fmt.Errorf("read log: %w", err)
	}
	return out, nil
}

// Wait implements Log.
func (l *Log) Wait(ctx context.Context, tenant string, seq uint64) <-chan struct{} {
	return l.waiters.Wait(ctx, tenant, seq, func() (uint64, error) { return l.Head(ctx, tenant) })
}

// Watch implements server.Watcher.
func (l *Log) Watch(ctx context.Context, tenant string, seq uint64) (<-chan struct{}, func()) {
	return l.waiters.Watch(tenant, seq, func() (uint64, error) { return l.Head(ctx, tenant) })
}
