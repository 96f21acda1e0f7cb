package store

import (
	"bytes"
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/unosync/uno/conflict"
	"github.com/unosync/uno/crdt"
)

// SQLite is the store on a SQLite database file. The app's collections are
// real tables named after them, with an "id" column and one column per
// field, which the app may read with plain SQL and index; the merge state
// of each row is beside its values, in the _uno column (and in
// _uno_deleted once the row is deleted). Every local write commits the
// values, the merge state and the outbox entry in one SQL transaction.
type SQLite struct {
	db       *sql.DB
	opts     Options
	declared *crdt.Schema // opts.Schema.Declared(), for crdt.ValidateTx
	site     crdt.SiteID  // under mu; Site reads siteV
	siteV    atomic.Pointer[crdt.SiteID]
	closed   atomic.Bool
	// epoch is this opening's (see Run): the outbox entries it writes
	// carry it. runs are the outbox's runs, for Runs.
	epoch uint64
	runs  runs
	// pending counts the outbox entries: counted on open, then kept by
	// Write and Ack (under mu), so Pending, which sync loops call on
	// every pass, reads a number rather than counting the outbox.
	pending atomic.Int64

	stmtMu  sync.Mutex
	stmts   map[string]*sql.Stmt // prepared statements by text
	queries map[string]bool      // of them, Query's (queryStmt)
	retired []*sql.Stmt          // forgotten statements, closed with the store

	queueMu sync.Mutex
	queue   []*writeReq   // writes waiting for the next group commit (Write)
	commits atomic.Uint64 // group commits of local writes

	mu    sync.Mutex // serialises writes; guards the fields below
	clock *crdt.Clock
	seq   uint64 // last local sequence number
	// cols lists the collection tables and their columns. Writers (under
	// mu) read it freely; changing it also takes colMu, which readers
	// outside mu hold to read it, so reads never wait for a write.
	cols    map[string]map[string]bool
	colMu   sync.RWMutex
	upserts map[string]upsertStmt // per collection, valid while its columns stay
	rowSQLs map[string]string     // per collection: rowSQL(coll, true)

	chunks *chunkCache // documents' chunks written or read last (chunks.go)
	rows   *rowCache   // rows' states written last, under mu (rowcache.go)

	// writer and relaxed are the connections write transactions run on
	// when the store holds them (held.go), under mu: writer at the
	// store's synchronous level, relaxed at NORMAL for remote changes and
	// acks (see relaxedConn); nil until the first transaction of each.
	writer, relaxed *heldConn
	// last is the held connection that began a write transaction last,
	// under mu: its page cache holds what that write left (queryHeld).
	last *heldConn
	// bigQueries lists, under mu, the queries that returned too many
	// rows to run on a held connection again (queryHeld); only prepared
	// queries, so at most maxQueryStmts or so.
	bigQueries map[string]bool

	// sites caches the high-water marks of other sites in _uno_sites,
	// under mu: read once, then kept by apply, which alone writes them.
	// One entry per site the replica has heard from, as the table has
	// one row (24 bytes each; the sites are the app's devices).
	sites map[crdt.SiteID]uint64

	// spare is the last write transaction's state, its maps emptied, for
	// the next one to reuse (under mu): a remote one-field transaction
	// otherwise allocates six maps and their first buckets, a fifth of
	// what it allocates (see recycle).
	spare *writeTx

	ckpt *checkpointer // background checkpoints (checkpoint.go); nil in the browser

	// wal syncs the log after local writes commit, when the store is
	// durable (synchronous FULL or EXTRA) and its journal a WAL; nil
	// otherwise (walsync.go). onCommit is OnCommit's function, onChange
	// OnChange's.
	wal      *walSyncer
	onCommit atomic.Pointer[func()]
	onChange atomic.Pointer[func([]crdt.RowKey, []*crdt.Row)]

	testBegin      func(*writeTx) // tests: called as each write transaction begins
	testNoPreload  bool           // tests: transactions read their rows one by one
	testNoRowCache bool           // tests: transactions read every row from the file
	testQueryHeld  func(string)   // tests: called as a query ran on a held connection
}

var _ Store = (*SQLite)(nil)

// OpenSQLite opens (creating if needed) the store at path, migrating its
// internal schema to the current version.
func OpenSQLite(ctx context.Context, path string, opts Options) (*SQLite, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if path == "" || strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("store: path %q: want a file name without ? or #", path)
	}
	db, err := openDB(path, &o)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	s := &SQLite{db: db, opts: o, declared: o.Schema.Declared(), cols: map[string]map[string]bool{}, stmts: map[string]*sql.Stmt{}, queries: map[string]bool{}, upserts: map[string]upsertStmt{}, rowSQLs: map[string]string{}, bigQueries: map[string]bool{},
		sites: map[crdt.SiteID]uint64{}, chunks: newChunkCache(chunkCacheBytes, chunkCacheDocs), rows: newRowCache(rowCacheRows, rowCacheBytes)}
	if err := s.init(ctx); err != nil {
		db.Close()
		if inUse(err) {
			err = ErrInUse
		}
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if err := prefillWAL(ctx, db, path); err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if s.relaxes() {
		if s.wal, err = newWALSyncer(ctx, path, func() (*sql.DB, error) {
			pin := o
			pin.MaxConns = 1
			return openDB(path, &pin)
		}); err != nil {
			db.Close()
			return nil, fmt.Errorf("open %s: %w", path, err)
		}
	}
	s.startCheckpointer()
	return s, nil
}

func (s *SQLite) init(ctx context.Context) error {
	if err := migrate(ctx, s.db, SchemaVersion); err != nil {
		return err
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var site []byte
	var seq, clock uint64
	err = tx.QueryRowContext(ctx, `SELECT site, seq, clock FROM _uno_replica WHERE id = 1`).Scan(&site, &seq, &clock)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		id, err := crdt.NewSiteID(s.opts.Rand)
		if err != nil {
			return err
		}
		site = id[:]
		if _, err := tx.ExecContext(ctx, `INSERT INTO _uno_replica (id, site, seq, clock) VALUES (1, ?, 0, 0)`, site); err != nil {
			return fmt.Errorf("create replica: %w", err)
		}
	case err != nil:
		return fmt.Errorf("read replica: %w", err)
	}
	if len(site) != len(s.site) {
		return fmt.Errorf("%w: site id of %d bytes", ErrCorrupt, len(site))
	}
	copy(s.site[:], site)
	s.setSite(s.site)
	if s.epoch, err = newEpoch(); err != nil {
		return err
	}
	var batchClock uint64 // the clock the last remote batch left
	if err := tx.QueryRowContext(ctx, `SELECT coalesce((SELECT seq FROM _uno_sites WHERE site = `+clockSite+`), 0)`).Scan(&batchClock); err != nil {
		return fmt.Errorf("read clock: %w", err)
	}
	clock = max(clock, batchClock)
	// Local writes leave _uno_replica alone; their seq and timestamp are
	// in the newest outbox entry, if it is newer.
	var last []byte
	err = tx.QueryRowContext(ctx, `SELECT tx FROM _uno_outbox ORDER BY seq DESC LIMIT 1`).Scan(&last)
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return fmt.Errorf("read outbox: %w", err)
	default:
		t, err := crdt.DecodeTx(last)
		if err != nil {
			return fmt.Errorf("%w: newest outbox entry: %w", ErrCorrupt, err)
		}
		seq, clock = max(seq, t.Seq), max(clock, uint64(t.Time))
	}
	s.seq = seq
	s.clock = crdt.NewClock(crdt.Timestamp(clock), s.opts.MaxDrift)
	var outbox int64
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM _uno_outbox`).Scan(&outbox); err != nil {
		return fmt.Errorf("count outbox: %w", err)
	}
	s.pending.Store(outbox)
	if err := s.loadRuns(ctx, tx); err != nil {
		return err
	}

	names, err := queryStrings(ctx, tx, `SELECT name FROM _uno_collections ORDER BY name`)
	if err != nil {
		return fmt.Errorf("read collections: %w", err)
	}
	for _, n := range names {
		cols, err := queryStrings(ctx, tx, `SELECT name FROM pragma_table_info(?)`, n)
		if err != nil {
			return fmt.Errorf("read columns of %s: %w", n, err)
		}
		s.cols[n] = map[string]bool{}
		for _, c := range cols {
			s.cols[n][c] = true
		}
	}
	pending := map[string]map[string]bool{}
	if s.opts.Schema != nil {
		for _, c := range s.opts.Schema.Collections {
			fields := make([]string, len(c.Fields))
			for i, f := range c.Fields {
				fields[i] = f.Name
			}
			if err := s.ensureColumns(ctx, tx, c.Name, fields, pending); err != nil {
				return err
			}
			for _, ix := range c.Indexes {
				cols := make([]string, len(ix.Fields))
				for i, f := range ix.Fields {
					cols[i] = quote(f)
				}
				stmt := fmt.Sprintf(`CREATE INDEX IF NOT EXISTS %s ON %s (%s)`, quote(ix.name(c.Name)), quote(c.Name), strings.Join(cols, ", "))
				if _, err := tx.ExecContext(ctx, stmt); err != nil {
					return fmt.Errorf("create index on %s: %w", c.Name, err)
				}
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	s.mergeColumns(pending)
	return nil
}

func queryStrings(ctx context.Context, tx *sql.Tx, q string, args ...any) ([]string, error) {
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// stateColumn holds an alive row's merge state in its collection's table.
// No field can have this name: fields start with a letter.
const stateColumn = "_uno"

// quote makes a validated name an SQL identifier.
func quote(name string) string { return `"` + name + `"` }

// ensureColumns creates the collection's table and missing columns inside
// tx, recording them in pending; they join s.cols only after commit.
func (s *SQLite) ensureColumns(ctx context.Context, tx sqlRunner, coll string, fields []string, pending map[string]map[string]bool) error {
	have := func(c string) bool { return s.cols[coll][c] || pending[coll][c] }
	if s.cols[coll] == nil && pending[coll] == nil {
		if _, err := tx.ExecContext(ctx, fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s (id TEXT PRIMARY KEY NOT NULL, %s BLOB NOT NULL)`, quote(coll), stateColumn)); err != nil {
			return fmt.Errorf("create table %s: %w", coll, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO _uno_collections (name) VALUES (?)`, coll); err != nil {
			return fmt.Errorf("register table %s: %w", coll, err)
		}
		pending[coll] = map[string]bool{"id": true, stateColumn: true}
	}
	for _, f := range fields {
		if have(f) {
			continue
		}
		// Columns have no declared type: values keep their SQLite type
		// (INTEGER, REAL, TEXT, BLOB) and compare as documented on Op.
		if _, err := tx.ExecContext(ctx, fmt.Sprintf(`ALTER TABLE %s ADD COLUMN %s`, quote(coll), quote(f))); err != nil {
			return fmt.Errorf("add column %s.%s: %w", coll, f, err)
		}
		if pending[coll] == nil {
			pending[coll] = map[string]bool{}
		}
		pending[coll][f] = true
	}
	return nil
}

func (s *SQLite) mergeColumns(pending map[string]map[string]bool) {
	if len(pending) == 0 {
		return
	}
	s.colMu.Lock()
	defer s.colMu.Unlock()
	for coll, cols := range pending {
		s.forget(coll)
		for _, h := range []*heldConn{s.writer, s.relaxed} {
			if h != nil {
				h.forget(coll)
			}
		}
		delete(s.upserts, coll)
		if s.cols[coll] == nil {
			s.cols[coll] = map[string]bool{}
		}
		for c := range cols {
			s.cols[coll][c] = true
		}
	}
}

// stmt returns the prepared statement for query, preparing it once.
// database/sql prepares it again on each connection that runs it.
func (s *SQLite) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	s.stmtMu.Lock()
	defer s.stmtMu.Unlock()
	if st, ok := s.stmts[query]; ok {
		return st, nil
	}
	st, err := s.db.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	s.stmts[query] = st
	return st, nil
}

// forget drops the prepared statements that mention a table whose
// columns changed.
func (s *SQLite) forget(table string) {
	s.stmtMu.Lock()
	defer s.stmtMu.Unlock()
	for q, st := range s.stmts {
		if strings.Contains(q, quote(table)) {
			s.retired = append(s.retired, st) // a reader may hold it: closed by Close
			delete(s.stmts, q)
			delete(s.queries, q)
		}
	}
}

// Schema implements Store.
func (s *SQLite) Schema() *Schema { return s.opts.Schema }

// Site implements Store.
func (s *SQLite) Site() crdt.SiteID { return *s.siteV.Load() }

func (s *SQLite) setSite(site crdt.SiteID) {
	s.site = site
	s.siteV.Store(&site)
}

// Runs implements Store.
func (s *SQLite) Runs() ([]Run, uint64) { return s.runs.get() }

// loadRuns reads the outbox's runs (on open).
func (s *SQLite) loadRuns(ctx context.Context, tx *sql.Tx) error {
	rows, err := tx.QueryContext(ctx, `SELECT seq, epoch FROM (
		SELECT seq, epoch, lag(epoch) OVER (ORDER BY seq) AS prev FROM _uno_outbox
	) WHERE prev IS NULL OR prev != epoch ORDER BY seq`)
	if err != nil {
		return fmt.Errorf("read outbox runs: %w", err)
	}
	defer rows.Close()
	var all []Run
	for rows.Next() {
		var seq, epoch int64
		if err := rows.Scan(&seq, &epoch); err != nil {
			return fmt.Errorf("read outbox runs: %w", err)
		}
		all = append(all, Run{First: uint64(seq), Epoch: uint64(epoch)})
	}
	s.runs.set(all, s.seq)
	return rows.Err()
}

// DB returns the underlying database for reading the materialised tables
// with plain SQL. Do not write through it: uno's metadata would not follow.
func (s *SQLite) DB() *sql.DB { return s.db }

// Close implements Store.
func (s *SQLite) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	s.stopCheckpointer()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.wal != nil {
		s.wal.close()
	}
	s.stmtMu.Lock()
	for _, st := range s.stmts {
		st.Close()
	}
	for _, st := range s.retired {
		st.Close()
	}
	s.stmtMu.Unlock()
	for _, h := range []*heldConn{s.writer, s.relaxed} {
		if h != nil {
			h.close(false)
		}
	}
	s.writer, s.relaxed, s.last = nil, nil, nil
	return s.db.Close()
}

func (s *SQLite) check() error {
	if s.closed.Load() {
		return ErrClosed
	}
	return nil
}

// writeTx is the state of one SQL write transaction: on a held
// connection between BEGIN IMMEDIATE and COMMIT (held.go), or an *sql.Tx
// on the pool.
type writeTx struct {
	s   *SQLite
	ctx context.Context
	q   sqlRunner
	// On a held connection:
	held *heldConn
	temp []*sql.Stmt // statements prepared for this transaction only
	done bool        // committed, or rolled back
	// Otherwise:
	tx   *sql.Tx
	conn *sql.Conn // a relaxed transaction's pooled connection

	rows    map[crdt.RowKey]*crdt.Row
	where   map[crdt.RowKey]place // where each loaded row's state was
	pending map[string]map[string]bool
	stmts   map[string]*sql.Stmt // the statements this transaction ran, ready to run
	upserts map[string]upsertStmt
	base    map[crdt.RowKey]map[string][][]byte // documents' chunks as the table holds them, by row and field
	written map[chunkKey]chunkEntry             // documents' chunks written, for the cache
	states  map[crdt.RowKey]cachedRow           // rows' states written, for the row cache once committed
	// A remote batch's merger's maps (merger.seen, merger.marks), kept
	// with the others for the next transaction.
	seen  map[crdt.RowKey]bool
	marks map[crdt.SiteID]uint64
}

// sqlRunner runs statements: an *sql.Tx, or a held *sql.Conn inside a
// transaction.
type sqlRunner interface {
	querier
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	PrepareContext(ctx context.Context, query string) (*sql.Stmt, error)
}

// exec runs a statement prepared once per store and bound once per
// transaction. coll names the collection table it touches, if any.
func (w *writeTx) exec(coll, query string, args ...any) (sql.Result, error) {
	st, err := w.stmt(coll, query)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(w.ctx, args...)
}

func (w *writeTx) stmt(coll, query string) (*sql.Stmt, error) {
	if st, ok := w.stmts[query]; ok {
		return st, nil
	}
	var st *sql.Stmt
	var err error
	switch {
	case w.pending[coll] != nil:
		// The table or a column is new in this transaction: other
		// connections cannot see it yet, and it is gone if the
		// transaction rolls back, so prepare it for this one only.
		st, err = w.q.PrepareContext(w.ctx, query)
		if err == nil && w.held != nil {
			w.temp = append(w.temp, st)
		}
	case w.held != nil:
		st, err = w.held.stmt(w.ctx, query)
	case w.s.opts.MaxConns == 1:
		// With a single connection (always in the browser), the store's
		// statement could not be prepared: the transaction holds the
		// connection that preparing it would wait for.
		st, err = w.tx.PrepareContext(w.ctx, query)
	default:
		st, err = w.s.stmt(w.ctx, query)
		if err == nil {
			st = w.tx.StmtContext(w.ctx, st)
		}
	}
	if err != nil {
		return nil, err
	}
	w.stmts[query] = st
	return st, nil
}

// begin starts a write transaction. A relaxed one commits without
// syncing (see relaxedConn); end it with end.
//
// Once begun, a transaction runs to its commit or its end: its statements
// do not watch ctx (which would cost the driver a goroutine each).
func (s *SQLite) begin(ctx context.Context, relaxed bool) (*writeTx, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	w := s.spare // emptied by recycle
	if w != nil {
		s.spare = nil
	} else {
		w = &writeTx{rows: map[crdt.RowKey]*crdt.Row{}, where: map[crdt.RowKey]place{},
			pending: map[string]map[string]bool{}, stmts: map[string]*sql.Stmt{},
			base: map[crdt.RowKey]map[string][][]byte{}, written: map[chunkKey]chunkEntry{}, states: map[crdt.RowKey]cachedRow{},
			seen: map[crdt.RowKey]bool{}, marks: map[crdt.SiteID]uint64{}}
	}
	w.s, w.ctx = s, context.WithoutCancel(ctx)
	var err error
	if s.holdConns() {
		if w.held, err = s.held(w.ctx, relaxed); err == nil {
			if err = w.held.run(w.ctx, `BEGIN IMMEDIATE`); err != nil {
				s.drop(w.held)
			} else {
				s.last = w.held
			}
			w.q = w.held.c
		}
	} else {
		if relaxed {
			w.conn, err = s.relaxedConn(w.ctx)
		}
		if err == nil && w.conn != nil {
			w.tx, err = w.conn.BeginTx(w.ctx, nil)
		} else if err == nil {
			w.tx, err = s.db.BeginTx(w.ctx, nil)
		}
		w.q = w.tx
	}
	if err != nil {
		w.held = nil
		w.end()
		return nil, fmt.Errorf("begin: %w", err)
	}
	if s.testBegin != nil {
		s.testBegin(w)
	}
	return w, nil
}

// end rolls the transaction back unless it committed, and gives back a
// relaxed transaction's connection.
func (w *writeTx) end() {
	defer w.recycle()
	if w.held != nil {
		for _, st := range w.temp {
			st.Close()
		}
		if !w.done {
			w.done = true
			if err := w.held.run(context.Background(), `ROLLBACK`); err != nil {
				w.s.drop(w.held) // in a transaction or not: unknown
			}
		}
		return
	}
	if w.tx != nil {
		w.tx.Rollback()
	}
	if w.conn != nil {
		w.s.releaseConn(w.conn)
	}
	w.conn = nil
}

// recycleRows bounds the rows a recycled transaction's maps held: a
// large transaction's maps are left to the garbage collector rather than
// kept for the life of the store.
const recycleRows = 64

// recycle empties w's maps and keeps w as its store's spare, for the next
// transaction (all run under the store's mu, and none keeps w after its
// end). The maps keep their buckets; what they referenced is released.
func (w *writeTx) recycle() {
	if len(w.rows) > recycleRows || len(w.where) > recycleRows || len(w.stmts) > recycleRows || len(w.seen) > recycleRows || len(w.states) > recycleRows {
		return
	}
	clear(w.rows)
	clear(w.where)
	clear(w.pending)
	clear(w.stmts)
	clear(w.base)
	clear(w.written)
	clear(w.states)
	clear(w.seen)
	clear(w.marks)
	s := w.s
	*w = writeTx{rows: w.rows, where: w.where, pending: w.pending, stmts: w.stmts, base: w.base, written: w.written, states: w.states, seen: w.seen, marks: w.marks}
	s.spare = w
}

// Remote changes and acknowledgements are stored without syncing the
// disk: both are recoverable from the server, and the sync cursor moves
// in the same transaction, so losing them to a power cut only makes the
// client fetch them again. The next synced commit (a local write) syncs
// them too: the WAL is written in order. The store's Synchronous level
// stays the one of local writes.
//
// relaxedConn returns a connection of the pool set to synchronous=NORMAL
// (in WAL mode: commit without fsync), or nil when that would change
// nothing (the level is NORMAL already, or the build's journal is not a
// WAL: in the browser every commit is one IndexedDB transaction). It
// serves a store that holds no connections (holdConns): one that does
// keeps a connection at NORMAL for its relaxed transactions instead.
func (s *SQLite) relaxedConn(ctx context.Context) (*sql.Conn, error) {
	if !s.relaxes() {
		return nil, nil
	}
	c, err := s.db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := c.ExecContext(ctx, `PRAGMA synchronous = NORMAL`); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// relaxes reports whether relaxed transactions commit at a level of their
// own: not when the store's level is NORMAL already, nor when the journal
// is no WAL.
func (s *SQLite) relaxes() bool { return walJournal && s.opts.Synchronous != "NORMAL" }

// releaseConn sets a relaxed connection back to the store's level before
// it returns to the pool, or drops it if that fails.
func (s *SQLite) releaseConn(c *sql.Conn) {
	// synchronous takes no parameter; the level is one withDefaults checked.
	if _, err := c.ExecContext(context.Background(), `PRAGMA synchronous = `+s.opts.Synchronous); err != nil {
		c.Raw(func(any) error { return driver.ErrBadConn })
	}
	c.Close()
}

// commit commits the transaction, then caches the documents' chunks and
// the rows' states it wrote. A commit that fails empties the row cache:
// whether the file holds the transaction is not known.
func (w *writeTx) commit() error {
	if w.held != nil {
		if err := w.held.run(context.Background(), `COMMIT`); err != nil {
			w.s.rows.clear()
			return err // end rolls back
		}
		w.done = true
	} else if err := w.tx.Commit(); err != nil {
		w.s.rows.clear()
		return fmt.Errorf("commit: %w", err)
	}
	for ck, e := range w.written {
		w.s.chunks.put(ck, e.heads, e.chunks)
	}
	w.s.rows.committed(w.states)
	w.s.committed(len(w.rows))
	return nil
}

// place says where a row's merge state is stored.
type place uint8

const (
	nowhere   place = iota // never seen
	inTable                // alive: the _uno column of the collection's table
	inDeleted              // deleted: _uno_deleted
)

// hasTable reports whether the collection's table exists (or is being created).
func (w *writeTx) hasTable(coll string) bool {
	return w.s.cols[coll] != nil || w.pending[coll] != nil
}

func (w *writeTx) get(k crdt.RowKey) (*crdt.Row, error) {
	if r, ok := w.rows[k]; ok {
		return r, nil
	}
	if ok, err := w.fromCache(k); ok || err != nil {
		return w.rows[k], err
	}
	q := deletedRowSQL
	if w.hasTable(k.Collection) {
		var ok bool
		if q, ok = w.s.rowSQLs[k.Collection]; !ok {
			q = rowSQL(k.Collection, true)
			w.s.rowSQLs[k.Collection] = q
		}
	}
	st, err := w.stmt(k.Collection, q)
	if err != nil {
		return nil, err
	}
	r, where, err := scanRow(st.QueryRowContext(w.ctx, k.Collection, k.Row), k)
	if err != nil {
		return nil, err
	}
	if r != nil {
		if err := w.s.attach(w.ctx, w.q, k, r, w.setBase); err != nil {
			return nil, err
		}
	}
	w.rows[k], w.where[k] = r, where
	return r, nil
}

// fromCache reads k as get does, from the row cache, and reports whether
// the cache had it.
func (w *writeTx) fromCache(k crdt.RowKey) (bool, error) {
	if w.s.testNoRowCache {
		return false, nil
	}
	c, ok := w.s.rows.get(k)
	if !ok {
		return false, nil
	}
	var r *crdt.Row
	if c.where != nowhere {
		var err error
		if r, err = crdt.DecodeRow(c.state); err != nil { // a private copy
			return true, fmt.Errorf("%w: row %s/%s: %w", ErrCorrupt, k.Collection, k.Row, err)
		}
		if err := w.s.attach(w.ctx, w.q, k, r, w.setBase); err != nil {
			return true, err
		}
	}
	w.rows[k], w.where[k] = r, c.where
	return true, nil
}

// preload reads the rows of keys that the transaction has not read yet,
// as get would, in one query per collection and loadChunk rows: a
// transaction that names the rows it writes up front (Builder.Preload)
// reads them together rather than one statement each.
func (w *writeTx) preload(keys []crdt.RowKey) error {
	if w.s.testNoPreload {
		return nil
	}
	byColl := map[string][]string{}
	var colls []string
	for _, k := range keys {
		if _, ok := w.rows[k]; ok {
			continue
		}
		if ok, err := w.fromCache(k); ok || err != nil {
			if err != nil {
				return err
			}
			continue
		}
		if byColl[k.Collection] == nil {
			colls = append(colls, k.Collection)
		}
		byColl[k.Collection] = append(byColl[k.Collection], k.Row)
	}
	total := 0
	for _, coll := range colls {
		byColl[coll] = slices.Compact(slices.Sorted(slices.Values(byColl[coll])))
		total += len(byColl[coll])
	}
	if total < 2 {
		return nil // get reads a lone row as fast
	}
	for _, coll := range colls {
		ids := byColl[coll]
		for len(ids) > 0 {
			n := min(len(ids), loadChunk)
			if err := w.loadRows(coll, ids[:n]); err != nil {
				return err
			}
			ids = ids[n:]
		}
	}
	return nil
}

// loadChunk is the most rows preload reads in one statement (a power
// of two: see loadRows).
const loadChunk = 256

// loadRows reads the rows ids of coll (each once, none read yet).
func (w *writeTx) loadRows(coll string, ids []string) error {
	// The list is padded to a power of two (the last ID repeated), so
	// each collection's statements take a few shapes, each prepared once.
	n := 8
	for n < len(ids) {
		n *= 2
	}
	var b strings.Builder // ?1 is coll; the ids follow: ?2, ?3, …
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "?%d", i+2)
	}
	in := b.String()
	query := fmt.Sprintf(`SELECT id, state, 2 FROM _uno_deleted WHERE coll = ?1 AND id IN (%s)`, in)
	if w.hasTable(coll) {
		query = fmt.Sprintf(`SELECT id, _uno, 1 FROM %s WHERE id IN (%s) UNION ALL %s`, quote(coll), in, query)
	}
	args := make([]any, 0, n+1)
	args = append(args, coll)
	for i := range n {
		args = append(args, ids[min(i, len(ids)-1)])
	}
	var rows *sql.Rows
	st, err := w.stmt(coll, query)
	if err == nil {
		rows, err = st.QueryContext(w.ctx, args...)
	}
	if err != nil {
		return fmt.Errorf("read rows of %s: %w", coll, err)
	}
	defer rows.Close()
	for _, id := range ids {
		k := crdt.RowKey{Collection: coll, Row: id}
		w.rows[k], w.where[k] = nil, nowhere // unless found below
	}
	for rows.Next() {
		var id string
		var state []byte
		var where place
		if err := rows.Scan(&id, &state, &where); err != nil {
			return fmt.Errorf("read rows of %s: %w", coll, err)
		}
		k := crdt.RowKey{Collection: coll, Row: id}
		if w.where[k] == inTable {
			continue // get reads the table first too
		}
		r, err := crdt.DecodeRow(state)
		if err != nil {
			return fmt.Errorf("%w: row %s/%s: %w", ErrCorrupt, coll, id, err)
		}
		w.rows[k], w.where[k] = r, where
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read rows of %s: %w", coll, err)
	}
	for _, id := range ids {
		k := crdt.RowKey{Collection: coll, Row: id}
		if r := w.rows[k]; r != nil {
			if err := w.s.attach(w.ctx, w.q, k, r, w.setBase); err != nil {
				return err
			}
		}
	}
	return nil
}

// rowSQL reads a row's state and place, from the collection's table if it
// has one, then from _uno_deleted. Parameters: collection, id.
func rowSQL(coll string, table bool) string {
	if !table {
		return deletedRowSQL
	}
	return fmt.Sprintf(`SELECT _uno, 1 FROM %s WHERE id = ?2 UNION ALL %s`, quote(coll), deletedRowSQL)
}

const deletedRowSQL = `SELECT state, 2 FROM _uno_deleted WHERE coll = ?1 AND id = ?2`

func scanRow(row *sql.Row, k crdt.RowKey) (*crdt.Row, place, error) {
	var state []byte
	var where place
	err := row.Scan(&state, &where)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nowhere, nil
	}
	if err != nil {
		return nil, nowhere, fmt.Errorf("read row %s/%s: %w", k.Collection, k.Row, err)
	}
	r, err := crdt.DecodeRow(state)
	if err != nil {
		return nil, nowhere, fmt.Errorf("%w: row %s/%s: %w", ErrCorrupt, k.Collection, k.Row, err)
	}
	return r, where, nil
}

// siteMark returns a site's stored high-water mark (0 if none), read
// once from _uno_sites, then from the store's copy.
func (w *writeTx) siteMark(site crdt.SiteID) (uint64, error) {
	if seq, ok := w.s.sites[site]; ok {
		return seq, nil
	}
	st, err := w.stmt("", `SELECT seq FROM _uno_sites WHERE site = ?`)
	if err != nil {
		return 0, err
	}
	var seq int64
	if err := st.QueryRowContext(w.ctx, site[:]).Scan(&seq); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("read high-water of %s: %w", site, err)
	}
	w.s.sites[site] = uint64(seq) // committed: read before this transaction writes it
	return uint64(seq), nil
}

// load returns the transaction's copy of a row, empty if never seen.
func (w *writeTx) load(k crdt.RowKey) (*crdt.Row, error) {
	r, err := w.get(k)
	if err != nil {
		return nil, err
	}
	if r == nil {
		r = &crdt.Row{}
		w.rows[k] = r
	}
	return r, nil
}

// put writes a row's new state: an alive row's values and state to its
// collection's table, a deleted row's state to _uno_deleted.
func (w *writeTx) put(k crdt.RowKey, r *crdt.Row) error {
	state, _ := crdt.EncodeRowSplit(r)
	return w.putState(k, r, state)
}

// putState is put for a row whose state, without its documents' chunks
// (crdt.EncodeRowSplit), is state.
func (w *writeTx) putState(k crdt.RowKey, r *crdt.Row, state []byte) error {
	s := w.s
	was := w.where[k]
	if r.CL == 0 && len(r.Fields) == 0 {
		// Never existed (a rolled-back creation): keep no trace of it.
		if was == inTable {
			if _, err := w.exec(k.Collection, fmt.Sprintf(`DELETE FROM %s WHERE id = ?`, quote(k.Collection)), k.Row); err != nil {
				return fmt.Errorf("delete %s/%s: %w", k.Collection, k.Row, err)
			}
		}
		if was == inDeleted {
			if _, err := w.exec("", `DELETE FROM _uno_deleted WHERE coll = ? AND id = ?`, k.Collection, k.Row); err != nil {
				return fmt.Errorf("delete %s/%s: %w", k.Collection, k.Row, err)
			}
		}
		w.where[k] = nowhere
		w.states[k] = cachedRow{where: nowhere}
		return w.dropChunks(k)
	}
	if !r.Alive() {
		if was == inTable {
			if _, err := w.exec(k.Collection, fmt.Sprintf(`DELETE FROM %s WHERE id = ?`, quote(k.Collection)), k.Row); err != nil {
				return fmt.Errorf("delete %s/%s: %w", k.Collection, k.Row, err)
			}
		}
		if _, err := w.exec("", `INSERT INTO _uno_deleted (coll, id, state) VALUES (?, ?, ?)
			ON CONFLICT (coll, id) DO UPDATE SET state = excluded.state`, k.Collection, k.Row, state); err != nil {
			return fmt.Errorf("write deleted row %s/%s: %w", k.Collection, k.Row, err)
		}
		w.where[k] = inDeleted
		w.states[k] = cachedRow{state: state, where: inDeleted}
		return w.putChunks(k, r)
	}
	if was == inDeleted {
		if _, err := w.exec("", `DELETE FROM _uno_deleted WHERE coll = ? AND id = ?`, k.Collection, k.Row); err != nil {
			return fmt.Errorf("revive %s/%s: %w", k.Collection, k.Row, err)
		}
	}
	names := make([]string, len(r.Fields))
	for i, f := range r.Fields {
		names[i] = f.Name
	}
	if err := s.ensureColumns(w.ctx, w.q, k.Collection, names, w.pending); err != nil {
		return err
	}
	cols, upsert := w.upsert(k.Collection)
	args := make([]any, 0, len(cols)+2)
	args = append(args, k.Row, state)
	for _, c := range cols {
		var v any
		if f, ok := r.Field(c); ok {
			v = columnValue(s.opts.Schema, k.Collection, f)
		}
		args = append(args, v)
	}
	if _, err := w.exec(k.Collection, upsert, args...); err != nil {
		return fmt.Errorf("write %s/%s: %w", k.Collection, k.Row, err)
	}
	w.where[k] = inTable
	w.states[k] = cachedRow{state: state, where: inTable}
	return w.putChunks(k, r)
}

// upsert returns the collection's field columns and the statement that
// writes a row, computing them once per transaction and column set.
func (w *writeTx) upsert(coll string) ([]string, string) {
	n := len(w.s.cols[coll]) + len(w.pending[coll])
	cache := w.s.upserts // shared by transactions while the columns stay
	if w.pending[coll] != nil {
		cache = w.upserts // columns new in this transaction
	}
	if u, ok := cache[coll]; ok && u.n == n {
		return u.cols, u.sql
	}
	cols := w.columns(coll)
	u := upsertStmt{n: n, cols: cols, sql: upsertSQL(coll, cols)}
	if w.pending[coll] != nil {
		if w.upserts == nil {
			w.upserts = map[string]upsertStmt{}
		}
		w.upserts[coll] = u
	} else {
		w.s.upserts[coll] = u
	}
	return u.cols, u.sql
}

type upsertStmt struct {
	n    int // columns known when computed
	cols []string
	sql  string
}

// columns returns the collection's field columns, sorted.
func (w *writeTx) columns(coll string) []string {
	var cols []string
	for c := range w.s.cols[coll] {
		if c != "id" && c != stateColumn {
			cols = append(cols, c)
		}
	}
	for c := range w.pending[coll] {
		if c != "id" && c != stateColumn && !w.s.cols[coll][c] {
			cols = append(cols, c)
		}
	}
	slices.Sort(cols)
	return cols
}

func upsertSQL(coll string, cols []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `INSERT INTO %s (id, %s`, quote(coll), stateColumn)
	for _, c := range cols {
		b.WriteString(", ")
		b.WriteString(quote(c))
	}
	b.WriteString(") VALUES (?, ?")
	b.WriteString(strings.Repeat(", ?", len(cols)))
	fmt.Fprintf(&b, ") ON CONFLICT (id) DO UPDATE SET %s = excluded.%s", stateColumn, stateColumn)
	for _, c := range cols {
		fmt.Fprintf(&b, ", %s = excluded.%s", quote(c), quote(c))
	}
	return b.String()
}

// Write implements Store.
func (s *SQLite) Write(ctx context.Context, fn func(b *crdt.Builder) error) (*Commit, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	// Group commit: a write joins the queue, and whoever holds the write
	// lock next commits everything queued in one SQL transaction, one
	// fsync for all. Each write keeps its own transaction (sequence
	// number, timestamp) and its own outcome: one whose function fails is
	// left out, the others commit.
	req := &writeReq{ctx: ctx, fn: fn, done: make(chan struct{})}
	s.queueMu.Lock()
	s.queue = append(s.queue, req)
	s.queueMu.Unlock()
	s.mu.Lock()
	s.queueMu.Lock()
	batch := s.queue[:min(len(s.queue), maxGroupCommit)]
	s.queue = s.queue[len(batch):]
	s.queueMu.Unlock()
	if len(batch) > 0 {
		s.finish(batch, s.writeBatch(batch))
	}
	s.mu.Unlock()
	<-req.done
	if req.panic != nil {
		panic(req.panic)
	}
	return req.commit, req.err
}

// OnCommit sets fn to be called each time local writes commit, before
// their Write calls return: a sync loop it wakes can push them at once.
// In a durable store it runs before their sync (see walSyncer), so the
// push and the fsync overlap. fn runs under the store's write lock: it
// must not block, nor write to the store.
func (s *SQLite) OnCommit(fn func()) { s.onCommit.Store(&fn) }

// OnChange sets fn to be called with the rows each commit changed and
// their new merge states, in commit order, for the commits of Write,
// Apply, ApplyAt, ApplyRowsAt, MergeRows, Receive and Reject: a live
// query can then update its result from the rows rather than read the
// collection again. A Commit whose changes fn was given says so
// (Commit.Reported). fn runs under the store's write lock, after the
// commit and before the call returns: it must not block, nor call the
// store. The rows are the store's: fn and whoever it hands them to must
// not modify them (the store does not touch them again).
func (s *SQLite) OnChange(fn func(keys []crdt.RowKey, rows []*crdt.Row)) { s.onChange.Store(&fn) }

// report passes a commit's changed rows to OnChange's function, under mu.
func (s *SQLite) report(c *Commit, rows []*crdt.Row) {
	fn := s.onChange.Load()
	if fn == nil {
		return
	}
	if len(c.Changed) > 0 {
		(*fn)(c.Changed, rows)
	}
	c.Reported = true
}

// finish ends the Write calls of a batch, under mu, once writeBatch
// committed it (committed: any of them): it tells OnCommit's function,
// syncs the log if the store is durable (walSyncer), and lets them
// return.
func (s *SQLite) finish(batch []*writeReq, committed bool) {
	if committed {
		for _, r := range batch {
			if r.err == nil && r.commit != nil && r.commit.Tx != nil {
				s.report(r.commit, r.rows)
			}
		}
		if fn := s.onCommit.Load(); fn != nil {
			(*fn)()
		}
		if s.wal != nil {
			if err := s.wal.sync(); err != nil {
				for _, r := range batch {
					if r.err == nil && r.commit != nil && r.commit.Tx != nil {
						r.commit, r.err = nil, err
					}
				}
			}
		}
	}
	for _, r := range batch {
		close(r.done)
	}
}

// maxGroupCommit bounds the writes one SQL transaction commits.
const maxGroupCommit = 64

// writeReq is one Write waiting in the group commit queue.
type writeReq struct {
	ctx    context.Context
	fn     func(b *crdt.Builder) error
	commit *Commit
	rows   []*crdt.Row // the commit's rows, for OnChange
	err    error
	panic  any // fn panicked: Write panics again in its own goroutine
	done   chan struct{}
}

// writeBatch commits the writes of batch in one SQL transaction, under
// mu, and reports whether any of them committed. A durable store commits
// them relaxed (without an fsync) and syncs them after (finish); after a
// failed sync it commits none.
func (s *SQLite) writeBatch(batch []*writeReq) bool {
	var ok []*writeReq
	fail := func(err error) {
		for _, r := range ok {
			r.commit, r.err = nil, err
		}
	}
	err := s.check()
	if err == nil && s.wal != nil {
		err = s.wal.failed()
	}
	if err != nil {
		for _, r := range batch {
			r.err = err
		}
		return false
	}
	// The transaction outlives any one caller's context: each is checked
	// before its function runs.
	w, err := s.begin(context.Background(), s.wal != nil)
	if err != nil {
		for _, r := range batch {
			r.err = err
		}
		return false
	}
	defer w.end()
	seq, clock := s.seq, *s.clock
	for _, r := range batch {
		if r.err = r.ctx.Err(); r.err != nil {
			continue
		}
		lt, next, err := s.buildGuarded(r, clock, seq, w)
		if r.panic != nil || err != nil {
			r.err = err
			continue
		}
		if lt == nil {
			r.commit = &Commit{} // nothing built: no transaction, no sequence number used
			continue
		}
		ok = append(ok, r)
		for i, k := range lt.keys {
			if err := w.putState(k, lt.rows[i], lt.states[i]); err != nil {
				fail(err)
				return false
			}
			w.rows[k] = lt.rows[i] // what the next write of the batch reads
		}
		if _, err := w.exec("", `INSERT INTO _uno_outbox (seq, tx, epoch, deltas) VALUES (?, ?, ?, ?)`,
			int64(lt.tx.Seq), crdt.EncodeTx(lt.tx), int64(s.epoch), encodeDeltas(lt.deltas)); err != nil {
			fail(fmt.Errorf("append outbox: %w", err))
			return false
		}
		seq, clock = lt.tx.Seq, next
		r.commit, r.rows = &Commit{Tx: lt.tx, Changed: lt.keys}, lt.rows
	}
	if len(ok) == 0 {
		return false
	}
	if err := w.commit(); err != nil {
		fail(err)
		return false
	}
	s.commits.Add(1)
	s.runs.wrote(s.seq+1, seq, s.epoch)
	s.seq = seq
	*s.clock = clock
	s.pending.Add(int64(len(ok)))
	s.mergeColumns(w.pending)
	return true
}

// buildGuarded runs buildLocal for r, recording a panic of r's function
// in r rather than letting it stop the batch.
func (s *SQLite) buildGuarded(r *writeReq, clock crdt.Clock, seq uint64, w *writeTx) (lt *localTx, next crdt.Clock, err error) {
	defer func() {
		if p := recover(); p != nil {
			r.panic = p
		}
	}()
	return buildLocal(clock, s.opts.Now(), s.site, seq+1, s.declared, w.get, w.preload, func(b *crdt.Builder) error {
		return r.fn(b)
	})
}

// Apply implements Store.
func (s *SQLite) Apply(ctx context.Context, txs []*crdt.Tx) (*Commit, error) {
	return s.apply(ctx, txs, nil, nil, nil, 0)
}

// MergeRows implements Store.
func (s *SQLite) MergeRows(ctx context.Context, rows []RowState, marks map[crdt.SiteID]uint64, cursor uint64) (*Commit, error) {
	return s.apply(ctx, nil, rows, &cursor, marks, 0)
}

// ApplyRowsAt implements Store.
func (s *SQLite) ApplyRowsAt(ctx context.Context, txs []*crdt.Tx, rows []RowState, cursor uint64) (*Commit, error) {
	return s.apply(ctx, txs, rows, &cursor, nil, 0)
}

// Subscriptions implements Store.
func (s *SQLite) Subscriptions(ctx context.Context) ([]byte, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	var b []byte
	if err := s.db.QueryRowContext(ctx, `SELECT subscriptions FROM _uno_replica WHERE id = 1`).Scan(&b); err != nil {
		return nil, fmt.Errorf("read subscriptions: %w", err)
	}
	return b, nil
}

// SetSubscriptions implements Store.
func (s *SQLite) SetSubscriptions(ctx context.Context, b []byte) error {
	if err := s.check(); err != nil {
		return err
	}
	if b == nil {
		b = []byte{}
	}
	if _, err := s.db.ExecContext(ctx, `UPDATE _uno_replica SET subscriptions = ? WHERE id = 1`, b); err != nil {
		return fmt.Errorf("store subscriptions: %w", err)
	}
	return nil
}

// Receive implements Store.
func (s *SQLite) Receive(ctx context.Context, txs []*crdt.Tx, rows []RowState, cursor, ack uint64) (*Commit, error) {
	if ack > 0 {
		s.mu.Lock()
		lost := ack > s.seq
		s.mu.Unlock()
		if lost {
			return nil, s.Ack(ctx, ack)
		}
	}
	return s.apply(ctx, txs, rows, &cursor, nil, ack)
}

// ApplyAt implements Store.
func (s *SQLite) ApplyAt(ctx context.Context, txs []*crdt.Tx, cursor uint64) (*Commit, error) {
	return s.apply(ctx, txs, nil, &cursor, nil, 0)
}

// Observe implements Store.
func (s *SQLite) Observe(ctx context.Context, ts crdt.Timestamp) error {
	if err := s.check(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	clock := *s.clock
	clock.ObserveTrusted(ts)
	if clock.Last() == s.clock.Last() {
		return nil
	}
	if _, err := s.db.ExecContext(ctx, `UPDATE _uno_replica SET clock = max(clock, ?) WHERE id = 1`, int64(clock.Last())); err != nil {
		return fmt.Errorf("save clock: %w", err)
	}
	*s.clock = clock
	return nil
}

// Reject implements Store.
func (s *SQLite) Reject(ctx context.Context, rej Rejection, rows []RowState) (*Commit, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	w, err := s.begin(ctx, false)
	if err != nil {
		return nil, err
	}
	defer w.end()
	pending, err := w.outboxAfter(rej.Seq)
	if err != nil {
		return nil, err
	}
	var changed []crdt.RowKey
	var loaded []*crdt.Row
	for _, rs := range rows {
		if err := validKey(rs.Key, rs.Row); err != nil {
			return nil, err
		}
		r, err := w.load(rs.Key)
		if err != nil {
			return nil, err
		}
		*r = *replay(rs.Key, rs.Row, pending)
		if err := w.put(rs.Key, r); err != nil {
			return nil, err
		}
		changed, loaded = append(changed, rs.Key), append(loaded, r)
	}
	if _, err := w.exec("", `INSERT INTO _uno_rejections (seq, code, reason) VALUES (?, ?, ?)`, int64(rej.Seq), int(rej.Code), rej.Reason); err != nil {
		return nil, fmt.Errorf("record rejection: %w", err)
	}
	if err := w.commit(); err != nil {
		return nil, err
	}
	s.mergeColumns(w.pending)
	commit := &Commit{Changed: changed}
	s.report(commit, loaded)
	return commit, nil
}

// outboxAfter returns the pending local transactions after seq.
func (w *writeTx) outboxAfter(seq uint64) ([]*crdt.Tx, error) {
	rows, err := w.q.QueryContext(w.ctx, `SELECT tx FROM _uno_outbox WHERE seq > ? ORDER BY seq`, int64(seq))
	if err != nil {
		return nil, fmt.Errorf("read outbox: %w", err)
	}
	defer rows.Close()
	var out []*crdt.Tx
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			return nil, err
		}
		tx, err := crdt.DecodeTx(b)
		if err != nil {
			return nil, fmt.Errorf("%w: outbox: %w", ErrCorrupt, err)
		}
		out = append(out, tx)
	}
	return out, rows.Err()
}

// Rejections implements Store.
func (s *SQLite) Rejections(ctx context.Context, after uint64, limit int) ([]Rejection, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	if limit <= 0 {
		limit = -1
	}
	rows, err := s.db.QueryContext(ctx, `SELECT id, seq, code, reason FROM _uno_rejections WHERE id > ? ORDER BY id LIMIT ?`, int64(after), limit)
	if err != nil {
		return nil, fmt.Errorf("read rejections: %w", err)
	}
	defer rows.Close()
	var out []Rejection
	for rows.Next() {
		var r Rejection
		if err := rows.Scan(&r.ID, &r.Seq, &r.Code, &r.Reason); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// Cursor implements Store.
func (s *SQLite) Cursor(ctx context.Context) (uint64, error) {
	if err := s.check(); err != nil {
		return 0, err
	}
	var c uint64
	if err := s.db.QueryRowContext(ctx, `SELECT coalesce((SELECT seq FROM _uno_sites WHERE site = `+cursorSite+`), 0)`).Scan(&c); err != nil {
		return 0, fmt.Errorf("read cursor: %w", err)
	}
	return c, nil
}

// apply applies remote transactions and row states, moves the cursor if
// given, and acknowledges the outbox up to ack (0: none, and ack must not
// be above the last local write), in one relaxed transaction.
func (s *SQLite) apply(ctx context.Context, txs []*crdt.Tx, rows []RowState, cursor *uint64, snapMarks map[crdt.SiteID]uint64, ack uint64) (*Commit, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(); err != nil {
		return nil, err
	}
	w, err := s.begin(ctx, true)
	if err != nil {
		return nil, err
	}
	defer w.end()
	clock := *s.clock
	wall := s.opts.Now()
	if keys := mergeKeys(txs, rows); len(keys) > 1 {
		if err := w.preload(keys); err != nil {
			return nil, err
		}
	}
	m := merger{seen: w.seen, marks: w.marks}
	err = m.run(mergeInput{
		own: s.site, ownSeq: s.seq, clock: &clock, wall: wall,
		txs: txs, rows: rows, snapMarks: snapMarks, gapsOK: cursor != nil,
		mark: w.siteMark, load: w.load, schema: s.opts.Schema,
	})
	if err != nil {
		return nil, err
	}
	for _, k := range m.changed {
		if err := w.put(k, w.rows[k]); err != nil {
			return nil, err
		}
	}
	// The marks that moved. The usual one (a batch from one site) is saved
	// with the cursor and the clock, below.
	var moved int
	var one crdt.SiteID
	for site, seq := range m.marks {
		if was, ok := s.sites[site]; !ok || was != seq {
			moved, one = moved+1, site
		}
	}
	for site, seq := range m.marks {
		if was, ok := s.sites[site]; moved == 1 || (ok && was == seq) {
			continue
		}
		if _, err := w.exec("", `INSERT INTO _uno_sites (site, seq) VALUES (?, ?)
			ON CONFLICT (site) DO UPDATE SET seq = max(seq, excluded.seq)`, site[:], int64(seq)); err != nil {
			return nil, fmt.Errorf("save high-water of %s: %w", site, err)
		}
	}
	entries := make([]ConflictEntry, len(m.conflicts))
	for i, r := range m.conflicts {
		res, err := w.exec("", `INSERT INTO _uno_conflicts
			(coll, row, field, mode, winner, winner_site, winner_time, loser, loser_site, loser_time)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			r.Collection, r.Row, r.Field, int(r.Mode),
			r.Winner.Data, r.Winner.Dot.Site[:], int64(r.Winner.Dot.Time),
			r.Loser.Data, r.Loser.Dot.Site[:], int64(r.Loser.Dot.Time))
		if err != nil {
			return nil, fmt.Errorf("record conflict: %w", err)
		}
		id, err := res.LastInsertId()
		if err != nil {
			return nil, fmt.Errorf("record conflict: %w", err)
		}
		entries[i] = ConflictEntry{ID: uint64(id), Record: r}
	}
	// The cursor and the clock in one statement, beside the marks (0
	// leaves the cursor; all only go up), with the one mark that moved.
	var cur int64
	if cursor != nil {
		cur = int64(*cursor)
	}
	if moved == 1 {
		if _, err := w.exec("", saveCursorMarkSQL, cur, int64(clock.Last()), one[:], int64(m.marks[one])); err != nil {
			return nil, fmt.Errorf("save clock, cursor and high-water of %s: %w", one, err)
		}
	} else if _, err := w.exec("", saveCursorSQL, cur, int64(clock.Last())); err != nil {
		return nil, fmt.Errorf("save clock and cursor: %w", err)
	}
	var acked int64
	if ack > 0 {
		if acked, err = w.ackOutbox(ack); err != nil {
			return nil, err
		}
	}
	if err := w.commit(); err != nil {
		return nil, err
	}
	s.pending.Add(-acked)
	if ack > 0 {
		s.runs.acked(ack)
	}
	*s.clock = clock
	for site, seq := range m.marks {
		s.sites[site] = seq
	}
	s.mergeColumns(w.pending)
	commit := &Commit{Changed: m.changed, Conflicts: entries}
	if s.onChange.Load() != nil {
		rows := make([]*crdt.Row, len(m.changed))
		for i, k := range m.changed {
			rows[i] = w.rows[k]
		}
		s.report(commit, rows)
	}
	return commit, nil
}

// The sync cursor and the clock remote batches leave are rows of
// _uno_sites under sites no real site has (its ID has 16 bytes): beside
// the marks a batch writes, on the same page (migration 7).
const (
	cursorSite    = `x''`
	clockSite     = `x'00'`
	saveCursorSQL = `INSERT INTO _uno_sites (site, seq) VALUES (` + cursorSite + `, ?), (` + clockSite + `, ?)
		ON CONFLICT (site) DO UPDATE SET seq = max(seq, excluded.seq)`
	saveCursorMarkSQL = `INSERT INTO _uno_sites (site, seq) VALUES (` + cursorSite + `, ?), (` + clockSite + `, ?), (?, ?)
		ON CONFLICT (site) DO UPDATE SET seq = max(seq, excluded.seq)`
)

// localTx is a local transaction buildLocal built and checked: the rows
// it wrote, with their new states encoded (once) for the caller to store.
type localTx struct {
	tx     *crdt.Tx
	deltas []crdt.Delta // tx's increments' (crdt.Builder.Deltas)
	keys   []crdt.RowKey
	rows   []*crdt.Row
	states [][]byte // crdt.EncodeRowSplit(rows[i])
}

// buildLocal runs fn against a builder for local transaction seq, stamped
// by a copy of clock at wall time now, and checks what it built: the
// transaction against crdt's rules (crdt.ValidateTx, with the store's
// declared schema, if any) and every row it wrote against the row size
// limit (crdt.ErrRowTooLarge). It returns nil when fn built nothing; the
// caller keeps the returned clock only if it commits.
func buildLocal(clock crdt.Clock, now time.Time, site crdt.SiteID, seq uint64, schema *crdt.Schema, get func(crdt.RowKey) (*crdt.Row, error), load func([]crdt.RowKey) error, fn func(*crdt.Builder) error) (*localTx, crdt.Clock, error) {
	b := crdt.NewBuilder(site, seq, clock.Now(now), get)
	b.SetPreload(load)
	if err := fn(b); err != nil {
		return nil, clock, err
	}
	if b.Len() == 0 {
		return nil, clock, nil
	}
	tx := b.Tx()
	if err := crdt.ValidateTx(tx, schema, crdt.Limits{}); err != nil {
		return nil, clock, err
	}
	keys, rows := b.Touched()
	states := make([][]byte, len(rows))
	for i, r := range rows {
		var full int
		states[i], full = crdt.EncodeRowSplit(r)
		if err := crdt.CheckRowBytes(keys[i], full, crdt.Limits{}); err != nil {
			return nil, clock, err
		}
	}
	return &localTx{tx: tx, deltas: b.Deltas(), keys: keys, rows: rows, states: states}, clock, nil
}

// mergeKeys lists the rows a batch of remote transactions and row states
// touches, for preload: a batch of many reads them together.
func mergeKeys(txs []*crdt.Tx, rows []RowState) []crdt.RowKey {
	var keys []crdt.RowKey
	for _, tx := range txs {
		for i := range tx.Ops {
			keys = append(keys, crdt.RowKey{Collection: tx.Ops[i].Collection, Row: tx.Ops[i].Row})
		}
	}
	for _, r := range rows {
		keys = append(keys, r.Key)
	}
	return keys
}

// merger applies remote transactions to rows loaded through get, collecting
// the changed rows, conflict records and sites' new high-water marks. Both
// stores use it. seen and marks may be given empty, to be reused; nil ones
// are made.
type merger struct {
	changed   []crdt.RowKey
	seen      map[crdt.RowKey]bool
	conflicts []conflict.Record
	marks     map[crdt.SiteID]uint64 // other sites' new marks, for the caller to save
}

// mergeInput is what merger.run merges, and how it reaches the store.
type mergeInput struct {
	own       crdt.SiteID // this replica: its own transactions are skipped
	ownSeq    uint64
	clock     *crdt.Clock // advanced past each applied transaction
	wall      time.Time
	txs       []*crdt.Tx
	rows      []RowState             // snapshot rows to join first
	snapMarks map[crdt.SiteID]uint64 // the snapshot's site marks
	gapsOK    bool                   // from a server: subscriptions leave gaps
	mark      func(crdt.SiteID) (uint64, error)
	load      func(crdt.RowKey) (*crdt.Row, error)
	schema    *Schema
}

// run merges in: snapshot rows, then each transaction its site's mark does
// not cover yet. A gap in a site's sequence fails with ErrGap unless
// in.gapsOK; a malformed or far-future transaction fails the whole batch.
func (m *merger) run(in mergeInput) error {
	if m.marks == nil {
		m.marks = map[crdt.SiteID]uint64{}
	}
	m.marks[in.own] = in.ownSeq
	for site, seq := range in.snapMarks {
		if site == in.own {
			continue
		}
		cur, err := in.mark(site)
		if err != nil {
			return err
		}
		m.marks[site] = max(seq, cur)
	}
	if err := m.mergeRows(in.rows, in.load); err != nil {
		return err
	}
	for _, tx := range in.txs {
		// The rules every replica runs, without the declared schema: the
		// server enforces its own, and a replica whose schema is older or
		// newer must still apply what the server accepted, or its sync
		// would stop.
		if err := crdt.ValidateTx(tx, nil, crdt.Limits{}); err != nil {
			return fmt.Errorf("apply: %w", err)
		}
		hw, ok := m.marks[tx.Site]
		if !ok {
			var err error
			if hw, err = in.mark(tx.Site); err != nil {
				return err
			}
		}
		if tx.Seq <= hw {
			m.marks[tx.Site] = hw
			continue
		}
		if tx.Seq > hw+1 && !in.gapsOK {
			return fmt.Errorf("%w: tx %s/%d after %d", ErrGap, tx.Site, tx.Seq, hw)
		}
		if err := in.clock.Observe(tx.Time, in.wall); err != nil {
			return fmt.Errorf("apply tx %s/%d: %w", tx.Site, tx.Seq, err)
		}
		if err := m.apply(tx, in.load, in.schema); err != nil {
			return err
		}
		m.marks[tx.Site] = tx.Seq
	}
	delete(m.marks, in.own)
	return nil
}

// validKey checks a row key and its state's field names from a server.
func validKey(k crdt.RowKey, r *crdt.Row) error {
	if err := crdt.ValidName(k.Collection, false); err != nil {
		return err
	}
	if err := crdt.ValidID(k.Row); err != nil {
		return err
	}
	for _, f := range r.Fields {
		if err := crdt.ValidName(f.Name, true); err != nil {
			return err
		}
	}
	return nil
}

// replay returns a copy of a server's row state with the ops of pending
// local transactions on the same row applied again.
func replay(k crdt.RowKey, server *crdt.Row, pending []*crdt.Tx) *crdt.Row {
	r := server.Clone()
	for _, tx := range pending {
		d := tx.Dot()
		for i := range tx.Ops {
			op := &tx.Ops[i]
			if op.Collection == k.Collection && op.Row == k.Row {
				if _, err := r.Apply(op, d); err != nil {
					panic("store: outbox op does not apply: " + err.Error())
				}
			}
		}
	}
	return r
}

// mergeRows joins row states into the rows load returns.
func (m *merger) mergeRows(rows []RowState, load func(crdt.RowKey) (*crdt.Row, error)) error {
	if m.seen == nil {
		m.seen = map[crdt.RowKey]bool{}
	}
	for _, rs := range rows {
		if err := validKey(rs.Key, rs.Row); err != nil {
			return err
		}
		r, err := load(rs.Key)
		if err != nil {
			return err
		}
		j := r.Join(*rs.Row)
		if bytes.Equal(crdt.EncodeRow(r), crdt.EncodeRow(&j)) {
			continue
		}
		*r = j
		if !m.seen[rs.Key] {
			m.seen[rs.Key] = true
			m.changed = append(m.changed, rs.Key)
		}
	}
	return nil
}

// apply applies one validated transaction. load returns the transaction's
// own copy of a row, an empty one if the row was never seen, which apply
// modifies in place.
func (m *merger) apply(tx *crdt.Tx, load func(crdt.RowKey) (*crdt.Row, error), schema *Schema) error {
	if m.seen == nil {
		m.seen = map[crdt.RowKey]bool{}
	}
	d := tx.Dot()
	// Load every row first so a read error cannot leave the transaction half applied.
	rows := make([]*crdt.Row, len(tx.Ops))
	for i := range tx.Ops {
		r, err := load(crdt.RowKey{Collection: tx.Ops[i].Collection, Row: tx.Ops[i].Row})
		if err != nil {
			return err
		}
		rows[i] = r
	}
	for i := range tx.Ops {
		op := &tx.Ops[i]
		k := crdt.RowKey{Collection: op.Collection, Row: op.Row}
		eff, err := rows[i].Apply(op, d)
		if err != nil {
			panic("store: op failed after validation: " + err.Error())
		}
		if eff.Changed && !m.seen[k] {
			m.seen[k] = true
			m.changed = append(m.changed, k)
		}
		if len(eff.Concurrent) > 0 {
			p := schema.PolicyOf(k.Collection, op.Field)
			m.conflicts = append(m.conflicts, p.Records(k.Collection, k.Row, op.Field, crdt.Entry{Dot: d, Value: op.Value}, eff.Concurrent)...)
		}
	}
	return nil
}
