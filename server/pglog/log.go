package pglog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/unosync/uno/crdt"
	"github.com/unosync/uno/server"
	"github.com/unosync/uno/server/internal/logtrace"
	"github.com/unosync/uno/server/internal/rowmodel"
	"github.com/unosync/uno/server/internal/wake"
	usync "github.com/unosync/uno/sync"
)

// Log is the event log on PostgreSQL: the system of record for
// production. Every table leads its keys with tenant_id. A tenant's appends
// take its head row FOR UPDATE, so sequence numbers are gap-free and in
// commit order (a bare bigserial would not be: a later number can commit
// first). The rows read model is updated inline, in the append
// transaction. Acks follow the commit (synchronous_commit stays on).
//
// The head lock covers only an append's writes: it reads and merges
// before taking it, and writes only what is unchanged since (see
// [PGLog.Append]). Appends write uno_sites, uno_events and uno_rows only
// under the head lock; so do RebuildProjection's swap (it locks uno_heads
// as a whole) and tenant deletion (it deletes the head row first).
type Log struct {
	pool    *pgxpool.Pool
	waiters *wake.Waiters
	stop    context.CancelFunc
	done    chan struct{}

	inline []Projection // folded in every append
	async  []*projector // one worker each

	encoded *encodings         // entries lately appended or read, encoded
	docs    *rowmodel.DocCache // open documents of doc fields, for rendering rows
}

// pgChannel carries wake-ups between server nodes: each append notifies
// "tenant seq" on commit; every node's listener wakes its waiters. The
// payload is only a tenant and a number; readers then read the log.
const pgChannel = "uno_log"

var (
	_ server.Log     = (*Log)(nil)
	_ server.Watcher = (*Log)(nil)
)

// Open connects to the database at dsn (a pgx DSN; pool limits go in
// it, e.g. pool_max_conns=20). The schema must be at SchemaVersion: run
// MigratePG (uno migrate up) first, as the tables' owner; the server
// should connect as a role that owns nothing and is no superuser, so that
// row-level security applies to it. The log folds the projections into
// their tables, which SetupProjections must have created.
func Open(ctx context.Context, dsn string, projections ...Projection) (*Log, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres log: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres log: %w", err)
	}
	v, err := schemaVersion(ctx, pool)
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres log: %w", err)
	}
	if v != SchemaVersion {
		pool.Close()
		return nil, fmt.Errorf("%w: postgres schema is at version %d, this uno needs %d: run uno migrate up", ErrSchemaVersion, v, SchemaVersion)
	}
	lctx, stop := context.WithCancel(context.Background())
	l := &Log{pool: pool, waiters: wake.New(), stop: stop, done: make(chan struct{}), encoded: newEncodings(encodedBytes),
		docs: rowmodel.NewDocCache(0)}
	seen := map[string]bool{"rows": true}
	for _, p := range projections {
		if err := p.validate(); err != nil {
			pool.Close()
			return nil, err
		}
		if seen[p.Name] {
			pool.Close()
			return nil, fmt.Errorf("%w: two projections named %s", ErrProjection, p.Name)
		}
		seen[p.Name] = true
		for _, t := range p.Tables {
			var ok bool
			if err := pool.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, t.Name).Scan(&ok); err != nil || !ok {
				pool.Close()
				return nil, fmt.Errorf("%w %s: table %s missing (%v): run uno projection setup", ErrProjection, p.Name, t.Name, err)
			}
		}
		if p.Async {
			l.async = append(l.async, newProjector(l, p))
		} else {
			l.inline = append(l.inline, p)
		}
	}
	go func() {
		defer close(l.done)
		l.listen(lctx)
	}()
	for _, pr := range l.async {
		go pr.run(lctx)
	}
	return l, nil
}

// advanced wakes waiters and async projections: tenant's log reached head.
func (l *Log) advanced(tenant string, head uint64) {
	l.waiters.Advanced(tenant, head)
	for _, pr := range l.async {
		pr.kick(tenant)
	}
}

// listen holds one connection on LISTEN and turns notifications from any
// node into wake-ups, reconnecting after errors until the log closes.
func (l *Log) listen(ctx context.Context) {
	for ctx.Err() == nil {
		_ = func() error { // an error only means: reconnect
			conn, err := l.pool.Acquire(ctx)
			if err != nil {
				return err
			}
			defer conn.Release()
			if _, err := conn.Exec(ctx, "LISTEN "+pgChannel); err != nil {
				return err
			}
			for {
				n, err := conn.Conn().WaitForNotification(ctx)
				if err != nil {
					conn.Conn().Close(context.Background()) // never hand a LISTENing connection back
					return err
				}
				var tenant string
				var seq uint64
				if i := strings.LastIndexByte(n.Payload, ' '); i > 0 {
					tenant = n.Payload[:i]
					seq, _ = strconv.ParseUint(n.Payload[i+1:], 10, 64)
					l.advanced(tenant, seq)
				}
			}
		}()
		if ctx.Err() != nil {
			return
		}
		// Missed notifications while reconnecting: wake every waiter, so
		// each reads the log and waits again if nothing is new.
		l.waiters.WakeAll()
		select {
		case <-time.After(100 * time.Millisecond):
		case <-ctx.Done():
		}
	}
}

// inTenant runs fn in a transaction scoped to tenant: the row-level
// security policies see it through set_config(..., true), which ends with
// the transaction, so a pooled connection never carries it to another.
func (l *Log) inTenant(ctx context.Context, tenant string, fn func(pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, l.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT set_config('uno.tenant', $1, true)`, tenant); err != nil {
			return err
		}
		return fn(tx)
	})
}

// PoolStat reports the connection pool's statistics (connections held,
// acquired, waited for): what an operator watches, and how tests count
// the queries idle sessions make.
func (l *Log) PoolStat() *pgxpool.Stat { return l.pool.Stat() }

// Close implements Log.
func (l *Log) Close() error {
	l.waiters.Close()
	l.stop()
	<-l.done
	l.pool.Close()
	return nil
}

// Append implements Log.
//
// An append first reads, without locks, what it needs: the high-water
// marks of the batch's sites and the touched rows with their seq (the
// entry that last changed each row, so a version), less the rows the
// batch creates (see appendView.queueReads). From these it decides which
// transactions are new, merges the rows and encodes everything. Then, in
// one round trip, it takes the tenant's head lock and writes: the entries
// numbered from the head, the rows and the marks, each conditional on
// being as read (an update matches the seq read, an insert meets no row);
// the commit follows. If another append changed any of it in between, the
// append rolls back and runs again with the head lock taken first. So the
// lock covers only the writes, not the reads or the work in Go.
func (l *Log) Append(ctx context.Context, tenant string, txs []crdt.Tx) ([]uint64, error) {
	if err := rowmodel.CheckAppend(tenant, txs); err != nil {
		return nil, err
	}
	if err := server.CheckRun(ctx); err != nil {
		return nil, err
	}
	if l.closed() {
		return nil, server.ErrLogClosed
	}
	encoded := make([][]byte, len(txs))
	for i := range txs {
		encoded[i] = crdt.EncodeTx(&txs[i])
	}
	seqs, head, err := l.appendRead(ctx, tenant, txs, encoded)
	if errors.Is(err, errStale) {
		seqs, head, err = l.appendLocked(ctx, tenant, txs, encoded)
	}
	if err != nil {
		var se *usync.Error
		if errors.As(err, &se) {
			return nil, se
		}
		return nil, fmt.Errorf("append: %w", err)
	}
	if head > 0 {
		for i, seq := range seqs {
			if seq != 0 {
				l.encoded.put(tenant, seq, &txs[i], encoded[i])
			}
		}
		l.advanced(tenant, head)
	}
	return seqs, nil
}

// errStale reports that what an append read before taking the head lock
// changed before it took it: the append runs again under the lock.
var errStale = errors.New("server: append read stale state")

// pgUniqueViolation is Postgres's SQLSTATE unique_violation.
const pgUniqueViolation = "23505"

// appendRead appends with reads before the head lock (see Append). It
// returns the entries' seqs and the new head (0 if nothing was new), or
// errStale.
func (l *Log) appendRead(ctx context.Context, tenant string, txs []crdt.Tx, encoded [][]byte) ([]uint64, uint64, error) {
	// One round trip in an implicit transaction, which the tenant
	// setting lasts for. It ends before the head lock is taken, so an
	// append never holds a read-model table while waiting for uno_heads
	// (RebuildProjection locks them the other way round).
	v := newAppendView()
	b := &pgx.Batch{}
	b.Queue(`SELECT set_config('uno.tenant', $1, true)`, tenant)
	v.queueReads(b, tenant, txs, true)
	if err := l.pool.SendBatch(ctx, b).Close(); err != nil {
		return nil, 0, err
	}
	p, err := planAppend(tenant, txs, encoded, v, l.docs)
	if err != nil {
		if se := (*usync.Error)(nil); errors.As(err, &se) && se.Code == usync.CodeGap {
			return nil, 0, errStale // the missing entries may have been appended since
		}
		if re := (*rowmodel.RefusedError)(nil); errors.As(err, &re) {
			// Rows guessed new may exist: refuse only on what the
			// head lock shows.
			return nil, 0, errStale
		}
		return nil, 0, err
	}
	if p.n == 0 {
		// Every transaction is at or below its site's mark, which is
		// committed with the entries: all are in the log already.
		return make([]uint64, len(txs)), 0, nil
	}
	var head uint64
	b = &pgx.Batch{}
	b.BeginTx(pgx.TxOptions{})
	queueHeadLock(b, tenant, &head)
	queueRun(ctx, b, tenant)
	p.queueWrites(b, tenant, logtrace.Of(ctx))
	br := l.pool.SendBatch(ctx, b)
	tx := br.Tx()
	defer tx.Rollback(context.WithoutCancel(ctx))
	if err := br.Close(); err != nil {
		if pe := (*pgconn.PgError)(nil); errors.As(err, &pe) && pe.Code == pgUniqueViolation {
			return nil, 0, errStale // a row or mark inserted since the read
		}
		return nil, 0, err
	}
	return l.appendCommit(ctx, tx, tenant, txs, p, head)
}

// appendLocked appends with the head lock taken before the reads, so
// nothing it reads can change before it writes.
func (l *Log) appendLocked(ctx context.Context, tenant string, txs []crdt.Tx, encoded [][]byte) ([]uint64, uint64, error) {
	var head uint64
	v := newAppendView()
	b := &pgx.Batch{}
	b.BeginTx(pgx.TxOptions{})
	queueHeadLock(b, tenant, &head)
	v.queueReads(b, tenant, txs, false)
	br := l.pool.SendBatch(ctx, b)
	tx := br.Tx()
	defer tx.Rollback(context.WithoutCancel(ctx))
	if err := br.Close(); err != nil {
		return nil, 0, err
	}
	p, err := planAppend(tenant, txs, encoded, v, l.docs)
	if err != nil {
		return nil, 0, err
	}
	if p.n == 0 {
		return make([]uint64, len(txs)), 0, nil
	}
	b = &pgx.Batch{}
	queueRun(ctx, b, tenant)
	p.queueWrites(b, tenant, logtrace.Of(ctx))
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		if errors.Is(err, errStale) {
			// Only a write that bypasses the log (by hand, as the
			// tables' owner) can do this.
			return nil, 0, errors.New("rows or marks changed under the head lock")
		}
		return nil, 0, err
	}
	return l.appendCommit(ctx, tx, tenant, txs, p, head)
}

// queueHeadLock queues the tenant setting and the statements that take the
// tenant's head lock and read the head into head. The lock orders the
// tenant's appends: numbers are handed out and committed one transaction
// at a time.
func queueHeadLock(b *pgx.Batch, tenant string, head *uint64) {
	b.Queue(`SELECT set_config('uno.tenant', $1, true)`, tenant)
	b.Queue(`INSERT INTO uno_heads (tenant_id, seq) VALUES ($1, 0) ON CONFLICT DO NOTHING`, tenant)
	b.Queue(`SELECT seq FROM uno_heads WHERE tenant_id = $1 FOR UPDATE`, tenant).QueryRow(func(r pgx.Row) error {
		return r.Scan(head)
	})
}

// appendCommit folds the inline projections and commits tx, whose writes
// numbered the new entries from head.
func (l *Log) appendCommit(ctx context.Context, tx pgx.Tx, tenant string, txs []crdt.Tx, p *appendPlan, head uint64) ([]uint64, uint64, error) {
	seqs := make([]uint64, len(txs))
	for i, r := range p.ranks {
		if r > 0 {
			seqs[i] = head + uint64(r)
		}
	}
	if len(l.inline) > 0 {
		chs := make([]usync.Change, 0, p.n)
		for i := range txs {
			if seqs[i] != 0 {
				chs = append(chs, usync.Change{Seq: seqs[i], Tx: txs[i]})
			}
		}
		for _, pr := range l.inline {
			pctx, span := logtrace.StartProjection(ctx, tracerName, pr.Name, tenant, len(chs))
			err := pr.Fold(pctx, tx, tenant, chs)
			logtrace.End(span, err)
			if err != nil {
				return nil, 0, fmt.Errorf("projection %s: %w", pr.Name, err)
			}
		}
	}
	server.Numbered(ctx, seqs)
	if err := tx.Commit(ctx); err != nil {
		return nil, 0, err
	}
	return seqs, head + uint64(p.n), nil
}

// appendView is what an append reads: the marks of the batch's sites and
// the rows its transactions touch, as stored.
type appendView struct {
	marks map[crdt.SiteID]storedMark
	rows  map[crdt.RowKey]*storedRow
}

type storedMark struct {
	seq    uint64
	stored bool // false: the site has no mark yet
}

type storedRow struct {
	row    *crdt.Row
	seq    int64 // the entry that last changed it
	stored bool  // false: never written (row is empty)
}

func newAppendView() *appendView {
	return &appendView{marks: map[crdt.SiteID]storedMark{}, rows: map[crdt.RowKey]*storedRow{}}
}

// queueReads queues the reads of the marks and rows txs need, in two
// queries (unnest), filling v when the batch's results are read. Rows
// never written are there, empty. With guessNew, a row whose first op in
// txs is its creation (a revive to causal length 1, what a writer that
// has never seen the row sends) is not read but taken as never written:
// if it was, inserting it fails and the append runs again under the lock.
func (v *appendView) queueReads(b *pgx.Batch, tenant string, txs []crdt.Tx, guessNew bool) {
	var sites [][]byte
	var colls, ids []string
	for i := range txs {
		t := &txs[i]
		if _, ok := v.marks[t.Site]; !ok {
			v.marks[t.Site] = storedMark{}
			sites = append(sites, t.Site[:])
		}
		for j := range t.Ops {
			op := &t.Ops[j]
			k := crdt.RowKey{Collection: op.Collection, Row: op.Row}
			if _, ok := v.rows[k]; !ok {
				v.rows[k] = &storedRow{row: &crdt.Row{}}
				if !guessNew || op.Type != crdt.OpRevive || op.CL != 1 {
					colls, ids = append(colls, k.Collection), append(ids, k.Row)
				}
			}
		}
	}
	if len(sites) > 0 {
		b.Queue(`SELECT site, seq FROM uno_sites WHERE tenant_id = $1 AND site = ANY($2::bytea[])`, tenant, sites).Query(func(rows pgx.Rows) error {
			for rows.Next() {
				var site []byte
				var m storedMark
				if err := rows.Scan(&site, &m.seq); err != nil {
					return err
				}
				m.stored = true
				var id crdt.SiteID
				copy(id[:], site)
				v.marks[id] = m
			}
			return rows.Err()
		})
	}
	if len(colls) > 0 {
		b.Queue(`SELECT r.coll, r.id, r.seq, r.state FROM uno_rows r
			JOIN unnest($2::text[], $3::text[]) AS k(coll, id) ON r.coll = k.coll AND r.id = k.id
			WHERE r.tenant_id = $1`, tenant, colls, ids).Query(func(rows pgx.Rows) error {
			for rows.Next() {
				var k crdt.RowKey
				var seq int64
				var state []byte
				if err := rows.Scan(&k.Collection, &k.Row, &seq, &state); err != nil {
					return err
				}
				r, err := crdt.DecodeRow(state)
				if err != nil {
					return fmt.Errorf("rows projection: row %s/%s: %w", k.Collection, k.Row, err)
				}
				*v.rows[k] = storedRow{row: r, seq: seq, stored: true}
			}
			return rows.Err()
		})
	}
}

// appendPlan is what an append writes, decided from an appendView. Seqs
// are ranks: 1 for the first new entry, and so on; the writes add the head
// they find under the lock.
type appendPlan struct {
	ranks []int64 // per transaction; 0 for one already in the log
	n     int64   // new entries

	evRanks, evSiteSeqs []int64
	evSites, evTxs      [][]byte

	newSites           [][]byte // sites without a mark
	newSiteSeqs        []int64
	movedSites         [][]byte // sites whose mark moves from movedFrom
	movedFrom, movedTo []int64

	newRows, changedRows rowWrites
}

// rowWrites are rows to write: their new states and documents, the rank of
// the last entry that changed each, and (for stored rows) the seq read.
type rowWrites struct {
	colls, ids  []string
	prev, ranks []int64
	states      [][]byte
	docs        [][]byte // JSON text; nil (NULL) for a deleted row
}

func (w *rowWrites) add(k crdt.RowKey, r *storedRow, rank int64, state, doc []byte) {
	w.colls, w.ids = append(w.colls, k.Collection), append(w.ids, k.Row)
	w.prev, w.ranks = append(w.prev, r.seq), append(w.ranks, rank)
	w.states = append(w.states, state)
	w.docs = append(w.docs, doc)
}

// planAppend decides which transactions are new (above their site's mark,
// in order: a transaction further on is a gap) and merges them into the
// rows of v, which it changes.
func planAppend(tenant string, txs []crdt.Tx, encoded [][]byte, v *appendView, docs *rowmodel.DocCache) (*appendPlan, error) {
	p := &appendPlan{ranks: make([]int64, len(txs))}
	marks := make(map[crdt.SiteID]uint64, len(v.marks))
	var sites []crdt.SiteID // in order of first append
	// The fold numbers rows by rank: the queued writes add the head.
	fold := rowmodel.Fold{Rows: make(map[crdt.RowKey]*crdt.Row, len(v.rows)), Docs: docs, Tenant: tenant}
	for k, r := range v.rows {
		fold.Rows[k] = r.row
	}
	for i := range txs {
		t := &txs[i]
		hw, ok := marks[t.Site]
		if !ok {
			hw = v.marks[t.Site].seq
		}
		switch {
		case t.Seq <= hw:
			continue
		case t.Seq > hw+1:
			return nil, usync.Errorf(usync.CodeGap, "tx %s/%d after %d", t.Site, t.Seq, hw)
		}
		if !ok {
			sites = append(sites, t.Site)
		}
		marks[t.Site] = t.Seq
		p.n++
		p.ranks[i] = p.n
		p.evRanks = append(p.evRanks, p.n)
		p.evSites = append(p.evSites, t.Site[:])
		p.evSiteSeqs = append(p.evSiteSeqs, int64(t.Seq))
		p.evTxs = append(p.evTxs, encoded[i])
		if err := fold.Apply(t, uint64(p.n)); err != nil {
			return nil, err
		}
	}
	states, err := fold.States()
	if err != nil {
		return nil, err
	}
	for _, s := range sites {
		if m := v.marks[s]; m.stored {
			p.movedSites = append(p.movedSites, s[:])
			p.movedFrom, p.movedTo = append(p.movedFrom, int64(m.seq)), append(p.movedTo, int64(marks[s]))
		} else {
			p.newSites = append(p.newSites, s[:])
			p.newSiteSeqs = append(p.newSiteSeqs, int64(marks[s]))
		}
	}
	for i, k := range fold.Changed() {
		w := &p.newRows
		if v.rows[k].stored {
			w = &p.changedRows
		}
		w.add(k, v.rows[k], int64(fold.Seq(k)), states[i], docs.Doc(tenant, k, v.rows[k].row))
	}
	return p, nil
}

// queueWrites queues p's writes, after the head lock. The seqs are the
// head under the lock plus the ranks. An update that misses a row or mark
// (changed since read) fails the batch with errStale; an insert that meets
// one fails it with a unique violation.
//
// trace is the traceparent kept with the entries (nil: NULL).
func (p *appendPlan) queueWrites(b *pgx.Batch, tenant string, trace any) {
	expect := func(n int) func(pgconn.CommandTag) error {
		return func(ct pgconn.CommandTag) error {
			if ct.RowsAffected() != int64(n) {
				return errStale
			}
			return nil
		}
	}
	const head = `(SELECT seq FROM uno_heads WHERE tenant_id = $1)`
	if len(p.movedSites) > 0 {
		b.Queue(`UPDATE uno_sites s SET seq = u.seq
			FROM unnest($2::bytea[], $3::bigint[], $4::bigint[]) AS u(site, prev, seq)
			WHERE s.tenant_id = $1 AND s.site = u.site AND s.seq = u.prev`,
			tenant, p.movedSites, p.movedFrom, p.movedTo).Exec(expect(len(p.movedSites)))
	}
	if len(p.newSites) > 0 {
		b.Queue(`INSERT INTO uno_sites (tenant_id, site, seq) SELECT $1, * FROM unnest($2::bytea[], $3::bigint[])`,
			tenant, p.newSites, p.newSiteSeqs)
	}
	// The entries go in with one unnest insert (COPY is not allowed
	// under row-level security).
	b.Queue(`INSERT INTO uno_events (tenant_id, seq, site, site_seq, tx, trace)
		SELECT $1, `+head+` + u.r, u.site, u.site_seq, u.tx, $6::text
		FROM unnest($2::bigint[], $3::bytea[], $4::bigint[], $5::bytea[]) AS u(r, site, site_seq, tx)`,
		tenant, p.evRanks, p.evSites, p.evSiteSeqs, p.evTxs, trace)
	if w := &p.newRows; len(w.ids) > 0 {
		b.Queue(`INSERT INTO uno_rows (tenant_id, coll, id, seq, state, doc)
			SELECT $1, u.c, u.i, `+head+` + u.r, u.st, u.d::jsonb
			FROM unnest($2::text[], $3::text[], $4::bigint[], $5::bytea[], $6::text[]) AS u(c, i, r, st, d)`,
			tenant, w.colls, w.ids, w.ranks, w.states, w.docs)
	}
	if w := &p.changedRows; len(w.ids) > 0 {
		b.Queue(`UPDATE uno_rows r SET seq = `+head+` + u.r, state = u.st, doc = u.d::jsonb
			FROM unnest($2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::bytea[], $7::text[]) AS u(c, i, prev, r, st, d)
			WHERE r.tenant_id = $1 AND r.coll = u.c AND r.id = u.i AND r.seq = u.prev`,
			tenant, w.colls, w.ids, w.prev, w.ranks, w.states, w.docs).Exec(expect(len(w.ids)))
	}
	b.Queue(`UPDATE uno_heads SET seq = seq + $2 WHERE tenant_id = $1`, tenant, p.n)
	b.Queue(`SELECT pg_notify($2, $1 || ' ' || `+head+`)`, tenant, pgChannel) // sent on commit
}

func (l *Log) closed() bool {
	return l.waiters.Closed()
}

// HighWater implements Log.
func (l *Log) HighWater(ctx context.Context, tenant string, site crdt.SiteID) (uint64, error) {
	if l.closed() {
		return 0, server.ErrLogClosed
	}
	var seq uint64
	err := l.inTenant(ctx, tenant, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `SELECT seq FROM uno_sites WHERE tenant_id = $1 AND site = $2`, tenant, site[:]).Scan(&seq)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("read high-water: %w", err)
	}
	return seq, nil
}

// Head implements Log.
func (l *Log) Head(ctx context.Context, tenant string) (uint64, error) {
	if l.closed() {
		return 0, server.ErrLogClosed
	}
	var seq uint64
	err := l.inTenant(ctx, tenant, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `SELECT seq FROM uno_heads WHERE tenant_id = $1`, tenant).Scan(&seq)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("read head: %w", err)
	}
	return seq, nil
}

// Read implements Log.
func (l *Log) Read(ctx context.Context, tenant string, after uint64, limit, maxBytes int) ([]usync.Change, error) {
	if l.closed() {
		return nil, server.ErrLogClosed
	}
	if limit <= 0 {
		limit = 1000
	}
	var out []usync.Change
	err := l.inTenant(ctx, tenant, func(tx pgx.Tx) error {
		var err error
		// Nothing below the compaction floor: a reader behind it sees a
		// gap. (Projections read every entry, with readEvents.)
		out, err = queryEvents(ctx, tx, `SELECT seq, tx FROM uno_events WHERE tenant_id = $1
			AND seq > greatest($2, coalesce((SELECT compact_floor FROM uno_heads WHERE tenant_id = $1), 1) - 1)
			ORDER BY seq LIMIT $3`, tenant, after, limit, maxBytes, func(seq uint64, t *crdt.Tx, enc []byte) {
			l.encoded.put(tenant, seq, t, enc)
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read log: %w", err)
	}
	return out, nil
}

// Wait implements Log. Wake-ups come from appends through this process;
// other nodes' appends will arrive by LISTEN/NOTIFY.
func (l *Log) Wait(ctx context.Context, tenant string, seq uint64) <-chan struct{} {
	return l.waiters.Wait(ctx, tenant, seq, func() (uint64, error) { return l.Head(ctx, tenant) })
}

// Watch implements server.Watcher.
func (l *Log) Watch(ctx context.Context, tenant string, seq uint64) (<-chan struct{}, func()) {
	return l.waiters.Watch(tenant, seq, func() (uint64, error) { return l.Head(ctx, tenant) })
}

// RowsHash returns the canonical hash of a tenant's rows read model.
func (l *Log) RowsHash(ctx context.Context, tenant string) ([32]byte, error) {
	var sum [32]byte
	err := l.inTenant(ctx, tenant, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT coll, id, state FROM uno_rows WHERE tenant_id = $1 ORDER BY coll COLLATE "C", id COLLATE "C"`, tenant)
		if err != nil {
			return err
		}
		defer rows.Close()
		sum, err = rowmodel.Hash(rows)
		return err
	})
	if err != nil {
		return [32]byte{}, fmt.Errorf("hash rows: %w", err)
	}
	return sum, nil
}

// SnapshotRows implements server.Snapshotter.
func (l *Log) SnapshotRows(ctx context.Context, tenant string, after crdt.RowKey, limit, maxBytes int) ([]usync.SnapshotRow, bool, error) {
	var out []usync.SnapshotRow
	var more bool
	err := l.inTenant(ctx, tenant, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT coll, id, state FROM uno_rows
			WHERE tenant_id = $1 AND (coll COLLATE "C", id COLLATE "C") > ($2 COLLATE "C", $3 COLLATE "C")
			ORDER BY coll COLLATE "C", id COLLATE "C" LIMIT $4`, tenant, after.Collection, after.Row, limit+1)
		if err != nil {
			return err
		}
		defer rows.Close()
		out, more, err = rowmodel.CollectSnapshot(rows, limit, maxBytes)
		return err
	})
	if err != nil {
		return nil, false, fmt.Errorf("snapshot rows: %w", err)
	}
	return out, more, nil
}

// SnapshotSize implements Snapshotter.
func (l *Log) SnapshotSize(ctx context.Context, tenant string) (uint64, uint64, error) {
	var n, b int64
	err := l.inTenant(ctx, tenant, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `SELECT count(*), coalesce(sum(length(state)), 0) FROM uno_rows WHERE tenant_id = $1`, tenant).Scan(&n, &b)
	})
	if err != nil {
		return 0, 0, fmt.Errorf("snapshot size: %w", err)
	}
	return uint64(n), uint64(b), nil
}

// SnapshotSites implements Snapshotter.
func (l *Log) SnapshotSites(ctx context.Context, tenant string) ([]usync.SiteMark, error) {
	var out []usync.SiteMark
	err := l.inTenant(ctx, tenant, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT site, seq FROM uno_sites WHERE tenant_id = $1 ORDER BY site`, tenant)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var site []byte
			var m usync.SiteMark
			if err := rows.Scan(&site, &m.Seq); err != nil {
				return err
			}
			copy(m.Site[:], site)
			out = append(out, m)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("snapshot sites: %w", err)
	}
	return out, nil
}

// RowStates returns the current states of the named rows; a row never
// written has no State.
func (l *Log) RowStates(ctx context.Context, tenant string, keys []crdt.RowKey) ([]usync.SnapshotRow, error) {
	// One query for all the keys (a session's filtered deliveries and the
	// rules read many rows at a time).
	colls, ids := make([]string, len(keys)), make([]string, len(keys))
	for i, k := range keys {
		colls[i], ids[i] = k.Collection, k.Row
	}
	states := make(map[crdt.RowKey][]byte, len(keys))
	err := l.inTenant(ctx, tenant, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT r.coll, r.id, r.state FROM uno_rows r
			JOIN unnest($2::text[], $3::text[]) AS k(coll, id) ON r.coll = k.coll AND r.id = k.id
			WHERE r.tenant_id = $1`, tenant, colls, ids)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var k crdt.RowKey
			var state []byte
			if err := rows.Scan(&k.Collection, &k.Row, &state); err != nil {
				return err
			}
			states[k] = state
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("row states: %w", err)
	}
	out := make([]usync.SnapshotRow, len(keys))
	for i, k := range keys {
		out[i] = usync.SnapshotRow{Collection: k.Collection, Row: k.Row, State: states[k]}
	}
	return out, nil
}

// RowsProjection is the built-in rows read model (table uno_rows) as a
// Projection, for RebuildProjection: the log folds it inline itself.
func RowsProjection() Projection {
	return Projection{
		Name: "rows",
		Tables: []ProjectionTable{{Name: "uno_rows", Columns: `tenant_id text NOT NULL, coll text COLLATE "C" NOT NULL, id text COLLATE "C" NOT NULL,
			seq bigint NOT NULL, state bytea NOT NULL, doc jsonb, PRIMARY KEY (tenant_id, coll, id)`}},
		Fold:      foldRows,
		carryDocs: true,
	}
}

// foldRows folds entries into the rows read model, as a rebuild does.
// Rows over the size limit are kept: the log refused none when it
// appended them, and a rebuild must reproduce the read model.
func foldRows(ctx context.Context, tx pgx.Tx, tenant string, chs []usync.Change) error {
	txs := make([]crdt.Tx, len(chs))
	for i := range chs {
		txs[i] = chs[i].Tx
	}
	rows, err := loadPGRows(ctx, tx, tenant, txs)
	if err != nil {
		return err
	}
	fold := rowmodel.Fold{Rows: rows}
	for i := range chs {
		if err := fold.Apply(&chs[i].Tx, chs[i].Seq); err != nil {
			return err
		}
	}
	order := fold.Changed()
	if len(order) == 0 {
		return nil
	}
	colls, ids := make([]string, len(order)), make([]string, len(order))
	seqs, states := make([]int64, len(order)), make([][]byte, len(order))
	docs := make([][]byte, len(order)) // JSON text; nil (NULL) for a deleted row
	for i, k := range order {
		colls[i], ids[i], seqs[i] = k.Collection, k.Row, int64(fold.Seq(k))
		states[i], docs[i] = crdt.EncodeRow(rows[k]), rowmodel.Doc(rows[k])
	}
	batch := &pgx.Batch{}
	// A row's version never goes back: a row a rebuild carried over
	// (carryDocs) may have been changed last by an entry compaction
	// emptied, which the replay does not see change it.
	batch.Queue(`INSERT INTO uno_rows AS r (tenant_id, coll, id, seq, state, doc)
		SELECT $1, c, i, s, st, d::jsonb FROM unnest($2::text[], $3::text[], $4::bigint[], $5::bytea[], $6::text[]) AS u(c, i, s, st, d)
		ON CONFLICT (tenant_id, coll, id) DO UPDATE SET seq = greatest(r.seq, excluded.seq), state = excluded.state, doc = excluded.doc`,
		tenant, colls, ids, seqs, states, docs)
	return tx.SendBatch(ctx, batch).Close()
}

// loadPGRows reads, in one query, the current states of every row the
// transactions touch (empty rows for those never written).
func loadPGRows(ctx context.Context, tx pgx.Tx, tenant string, txs []crdt.Tx) (map[crdt.RowKey]*crdt.Row, error) {
	keys := rowmodel.Keys(txs)
	rows := make(map[crdt.RowKey]*crdt.Row, len(keys))
	colls, ids := make([]string, len(keys)), make([]string, len(keys))
	for i, k := range keys {
		rows[k] = &crdt.Row{}
		colls[i], ids[i] = k.Collection, k.Row
	}
	if len(keys) == 0 {
		return rows, nil
	}
	res, err := tx.Query(ctx, `SELECT r.coll, r.id, r.state FROM uno_rows r
		JOIN unnest($2::text[], $3::text[]) AS k(coll, id) ON r.coll = k.coll AND r.id = k.id
		WHERE r.tenant_id = $1`, tenant, colls, ids)
	if err != nil {
		return nil, err
	}
	defer res.Close()
	for res.Next() {
		var k crdt.RowKey
		var state []byte
		if err := res.Scan(&k.Collection, &k.Row, &state); err != nil {
			return nil, err
		}
		r, err := crdt.DecodeRow(state)
		if err != nil {
			return nil, fmt.Errorf("rows read model: row %s/%s: %w", k.Collection, k.Row, err)
		}
		rows[k] = r
	}
	return rows, res.Err()
}

// QueryRows implements server.RowQuerier over the rows read model (the
// doc column): equality filters on fields (jsonb equality), ordered by a
// field or by ID. Ordered by a field, rows follow the query order both
// logs share (rowmodel.OrderKey) rather than jsonb's, whose strings
// follow the database's collation: by the value's rank (a missing field
// as null, then strings, numbers, false, true, arrays, objects), its
// number (numeric, exact), its string in byte order, then ID.
func (l *Log) QueryRows(ctx context.Context, tenant string, q server.RowQuery) ([]server.QueryRow, error) {
	var b strings.Builder
	args := []any{tenant, q.Collection}
	ord := `'null'::jsonb`
	if q.Order != "" {
		args = append(args, q.Order)
		ord = `coalesce(doc->$3, 'null'::jsonb)`
	}
	// The order's parts, as rowmodel.OrderParts gives them for a cursor.
	const (
		rank = `CASE jsonb_typeof(doc->$3) WHEN 'string' THEN 1 WHEN 'number' THEN 2
			WHEN 'boolean' THEN CASE WHEN doc->$3 = 'true'::jsonb THEN 4 ELSE 3 END
			WHEN 'array' THEN 5 WHEN 'object' THEN 6 ELSE 0 END`
		num = `CASE WHEN jsonb_typeof(doc->$3) = 'number' THEN (doc->$3)::numeric ELSE 0 END`
		str = `(CASE WHEN jsonb_typeof(doc->$3) = 'string' THEN doc->>$3 ELSE '' END) COLLATE "C"`
	)
	fmt.Fprintf(&b, `SELECT id, doc::text, (%s)::text FROM uno_rows WHERE tenant_id = $1 AND coll = $2 AND doc IS NOT NULL`, ord)
	for _, w := range q.Where {
		fmt.Fprintf(&b, ` AND doc->$%d = $%d::jsonb`, len(args)+1, len(args)+2)
		args = append(args, w.Field, string(w.Value))
	}
	cmp, dir := ">", ""
	if q.Desc {
		cmp, dir = "<", " DESC"
	}
	if q.After != nil {
		if q.Order == "" {
			fmt.Fprintf(&b, ` AND id COLLATE "C" %s $%d COLLATE "C"`, cmp, len(args)+1)
			args = append(args, q.After.ID)
		} else {
			r, n, s, err := rowmodel.OrderParts(q.After.Value)
			if err != nil {
				return nil, usync.Errorf(usync.CodeBadMessage, "cursor value: %v", err)
			}
			k := len(args)
			fmt.Fprintf(&b, ` AND (%s, %s, %s, id COLLATE "C") %s ($%d::int, $%d::numeric, $%d::text COLLATE "C", $%d COLLATE "C")`,
				rank, num, str, cmp, k+1, k+2, k+3, k+4)
			args = append(args, r, n, s, q.After.ID)
		}
	}
	if q.Order != "" {
		fmt.Fprintf(&b, ` ORDER BY %[2]s%[1]s, %[3]s%[1]s, %[4]s%[1]s, id COLLATE "C"%[1]s`, dir, rank, num, str)
	} else {
		fmt.Fprintf(&b, ` ORDER BY id COLLATE "C"%s`, dir)
	}
	fmt.Fprintf(&b, ` LIMIT %d`, q.Limit)
	var out []server.QueryRow
	err := l.inTenant(ctx, tenant, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, b.String(), args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var r server.QueryRow
			var doc, order string
			if err := rows.Scan(&r.ID, &doc, &order); err != nil {
				return err
			}
			r.Doc, r.Order = json.RawMessage(doc), json.RawMessage(order)
			out = append(out, r)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("query rows: %w", err)
	}
	return out, nil
}
