package store

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/unosync/uno/conflict"
	"github.com/unosync/uno/crdt"
)

// Row implements Store.
func (s *SQLite) Row(ctx context.Context, collection, id string) (*crdt.Row, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	if err := ValidName(collection, false); err != nil {
		return nil, err
	}
	s.colMu.RLock()
	table := s.cols[collection] != nil
	s.colMu.RUnlock()
	st, err := s.stmt(ctx, rowSQL(collection, table))
	if err != nil {
		return nil, err
	}
	k := crdt.RowKey{Collection: collection, Row: id}
	r, _, err := scanRow(st.QueryRowContext(ctx, collection, id), k)
	if err != nil || r == nil || s.cached(k, r) {
		return r, err
	}
	// A document's chunks are not cached: read the row again with them,
	// in one snapshot.
	err = s.read(ctx, func(tx *sql.Tx) error {
		r, _, err = scanRow(tx.QueryRowContext(ctx, rowSQL(collection, table), collection, id), k)
		if err != nil || r == nil {
			return err
		}
		return s.attach(ctx, tx, k, r, nil)
	})
	return r, err
}

// read runs fn in a read transaction: one snapshot of the database. (A
// read-only transaction begins DEFERRED: it takes no write lock.)
func (s *SQLite) read(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback()
	return fn(tx)
}

// Query implements Store. It runs one SQL statement on the materialised
// table, joined with the row states.
func (s *SQLite) Query(ctx context.Context, q Query) ([]Doc, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	conds, err := q.compile()
	if err != nil {
		return nil, err
	}
	s.colMu.RLock()
	known := map[string]bool{}
	for c := range s.cols[q.Collection] {
		known[c] = true
	}
	s.colMu.RUnlock()
	if len(known) == 0 {
		return nil, nil // the collection was never written
	}
	column := func(f string) string {
		if f == "id" {
			return "t.id"
		}
		if !known[f] {
			return "NULL" // a field never written is missing on every row
		}
		return "t." + quote(f)
	}
	var b strings.Builder
	fmt.Fprintf(&b, `SELECT t.id, t.%s FROM %s AS t`, stateColumn, quote(q.Collection))
	var args []any
	for i, c := range conds {
		if i == 0 {
			b.WriteString(" WHERE ")
		} else {
			b.WriteString(" AND ")
		}
		col := column(c.field)
		if _, text := c.value.(string); c.field == "id" && !text && c.value != nil {
			// Unary + drops the TEXT affinity of the id column, so a
			// number compares as a number (below every ID), not as text.
			col = "+t.id"
		}
		b.WriteString(c.sql(col))
		if c.value != nil {
			args = append(args, c.value)
		}
	}
	dir := " ASC"
	if q.Desc {
		dir = " DESC"
	}
	b.WriteString(" ORDER BY ")
	if q.OrderBy != "" && q.OrderBy != "id" {
		b.WriteString(column(q.OrderBy) + dir + ", ")
		dir = " ASC"
	}
	b.WriteString("t.id" + dir)
	if q.Limit > 0 {
		b.WriteString(" LIMIT ?")
		args = append(args, q.Limit)
	}
	var first querier = s.db
	st, err := s.queryStmt(ctx, b.String())
	if err != nil {
		return nil, err
	} else if st != nil {
		first = preparedQuery{st}
	}
	out, done, err := s.queryHeld(ctx, q, b.String(), args, st != nil)
	if !done && err == nil {
		out, err = s.queryRows(ctx, first, q, b.String(), args)
	}
	if err != nil {
		return nil, err
	}
	for i := range out {
		if out[i].Row != nil && !s.cached(crdt.RowKey{Collection: q.Collection, Row: out[i].ID}, out[i].Row) {
			// A document's chunks are not cached: query again with them,
			// in one snapshot.
			err := s.read(ctx, func(tx *sql.Tx) error {
				if out, err = s.queryRows(ctx, tx, q, b.String(), args); err != nil {
					return err
				}
				for _, d := range out {
					if d.Row == nil {
						continue // known to the caller
					}
					if err := s.attach(ctx, tx, crdt.RowKey{Collection: q.Collection, Row: d.ID}, d.Row, nil); err != nil {
						return err
					}
				}
				return nil
			})
			return out, err
		}
	}
	return out, nil
}

// queryHeld runs a query on the held connection that wrote last, when no
// write is running: that connection's page cache holds what the write
// left, where any commit of another connection drops a pooled reader's
// cache, so that the query reads its pages again (in the 49-receiver
// paced benchmark, a Watch's refresh after each applied change cost 71 µs
// of CPU on the pool, 22 µs here). A write that comes meanwhile waits for the
// query, so a query that returned more than heldQueryRows rows goes to
// the pool from then on. done reports whether it ran. Only prepared
// queries run here, which bounds the statements the connection keeps.
func (s *SQLite) queryHeld(ctx context.Context, q Query, query string, args []any, prepared bool) (out []Doc, done bool, err error) {
	if !prepared || !s.mu.TryLock() {
		return nil, false, nil
	}
	defer s.mu.Unlock()
	h := s.last
	if h == nil || s.bigQueries[query] {
		return nil, false, nil
	}
	st, err := h.stmt(ctx, query)
	if err != nil {
		return nil, false, err
	}
	out, err = s.queryRows(ctx, preparedQuery{st}, q, query, args)
	if len(out) > heldQueryRows {
		s.bigQueries[query] = true
	}
	if s.testQueryHeld != nil {
		s.testQueryHeld(query)
	}
	return out, true, err
}

// heldQueryRows is the most rows a query may return and still run on the
// held connection next time (see queryHeld): a few hundred small rows
// read in well under a millisecond.
const heldQueryRows = 256

// maxQueryStmts bounds the query statements a store keeps prepared (each
// costs some KiB per connection that ran it): an app's queries take a
// few shapes (a Watch runs the same one after every change), but
// conditions such as "in" lists make the text vary.
const maxQueryStmts = 64

// queryStmt returns query prepared (once per store, as by stmt), or nil
// when maxQueryStmts are already and query is not one of them: the caller
// then runs it unprepared. Preparing is a third of a small Watch
// refresh's time.
func (s *SQLite) queryStmt(ctx context.Context, query string) (*sql.Stmt, error) {
	s.stmtMu.Lock()
	st, ok := s.stmts[query]
	full := len(s.queries) >= maxQueryStmts
	s.stmtMu.Unlock()
	if ok {
		return st, nil
	}
	if full {
		return nil, nil
	}
	st, err := s.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	s.stmtMu.Lock()
	s.queries[query] = true // two racing may pass the bound by one each
	s.stmtMu.Unlock()
	return st, nil
}

// preparedQuery runs its statement for a querier, ignoring the text.
type preparedQuery struct{ st *sql.Stmt }

func (p preparedQuery) QueryContext(ctx context.Context, _ string, args ...any) (*sql.Rows, error) {
	return p.st.QueryContext(ctx, args...)
}

// queryRows runs q's query of ids and row states, and decodes the states
// of the rows q.Known does not know.
func (s *SQLite) queryRows(ctx context.Context, db querier, q Query, query string, args []any) ([]Doc, error) {
	coll := q.Collection
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("query %s: %w", coll, err)
	}
	defer rows.Close()
	var out []Doc
	for rows.Next() {
		var id string
		var raw sql.RawBytes // copied only for a row Known does not know
		if err := rows.Scan(&id, &raw); err != nil {
			return nil, fmt.Errorf("query %s: %w", coll, err)
		}
		if q.Known != nil && q.Known(id, raw) {
			out = append(out, Doc{ID: id})
			continue
		}
		state := bytes.Clone(raw)
		r, err := crdt.DecodeRow(state)
		if err != nil {
			return nil, fmt.Errorf("%w: row %s/%s: %w", ErrCorrupt, coll, id, err)
		}
		out = append(out, Doc{ID: id, Row: r, State: state})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("query %s: %w", coll, err)
	}
	return out, nil
}

// Pending implements Store. It reads a count kept in memory (counted on
// open, kept by Write and Ack): it never queries.
func (s *SQLite) Pending(ctx context.Context) (int, error) {
	if err := s.check(); err != nil {
		return 0, err
	}
	return int(s.pending.Load()), nil
}

// Outbox implements Store.
func (s *SQLite) Outbox(ctx context.Context, after uint64, limit int) ([]*crdt.Tx, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	if limit <= 0 {
		limit = -1 // no limit
	}
	if out, done, err := s.outboxHeld(ctx, after, limit); done {
		return out, err
	}
	st, err := s.stmt(ctx, outboxSQL)
	if err != nil {
		return nil, fmt.Errorf("read outbox: %w", err)
	}
	return readOutbox(st.QueryContext(ctx, int64(after), limit))
}

const outboxSQL = `SELECT seq, tx FROM _uno_outbox WHERE seq > ? ORDER BY seq LIMIT ?`

// outboxHeld reads the outbox on the held connection that wrote last, as
// queryHeld runs a query, when no write is running and at most
// heldOutboxTxs entries follow after: the push that follows a local write
// reads what that write just committed. done reports whether it ran.
func (s *SQLite) outboxHeld(ctx context.Context, after uint64, limit int) (out []*crdt.Tx, done bool, err error) {
	if !s.mu.TryLock() {
		return nil, false, nil
	}
	defer s.mu.Unlock()
	if s.last == nil || s.seq > after+heldOutboxTxs {
		return nil, false, nil
	}
	st, err := s.last.stmt(ctx, outboxSQL)
	if err != nil {
		return nil, false, fmt.Errorf("read outbox: %w", err)
	}
	out, err = readOutbox(st.QueryContext(ctx, int64(after), limit))
	if s.testQueryHeld != nil {
		s.testQueryHeld(outboxSQL)
	}
	return out, true, err
}

// heldOutboxTxs is the most outbox entries outboxHeld reads while writes
// wait: a push's worth in the steady state, not an offline backlog.
const heldOutboxTxs = 16

// readOutbox decodes the outbox entries of an outboxSQL query.
func readOutbox(rows *sql.Rows, err error) ([]*crdt.Tx, error) {
	if err != nil {
		return nil, fmt.Errorf("read outbox: %w", err)
	}
	defer rows.Close()
	var out []*crdt.Tx
	for rows.Next() {
		var seq int64
		var b []byte
		if err := rows.Scan(&seq, &b); err != nil {
			return nil, fmt.Errorf("read outbox: %w", err)
		}
		tx, err := crdt.DecodeTx(b)
		if err != nil {
			return nil, fmt.Errorf("%w: outbox entry %d: %w", ErrCorrupt, seq, err)
		}
		if tx.Seq != uint64(seq) {
			return nil, fmt.Errorf("%w: outbox entry %d holds tx %d", ErrCorrupt, seq, tx.Seq)
		}
		out = append(out, tx)
	}
	return out, rows.Err()
}

// Ack implements Store.
func (s *SQLite) Ack(ctx context.Context, seq uint64) error {
	if err := s.check(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// An acknowledgement is recoverable from the server: it commits
	// without syncing (see relaxedConn).
	w, err := s.begin(ctx, true)
	if err != nil {
		return fmt.Errorf("ack outbox: %w", err)
	}
	defer w.end()
	lost := seq > s.seq
	if lost {
		// The server holds writes of ours we lost: go past them, and
		// bootstrap again to get them back (ErrLostWrites).
		if _, err := w.exec("", `UPDATE _uno_replica SET seq = ?, clock = max(clock, ?) WHERE id = 1`,
			int64(seq), int64(s.clock.Last())); err != nil {
			return fmt.Errorf("ack outbox: %w", err)
		}
		if _, err := w.exec("", `UPDATE _uno_sites SET seq = 0 WHERE site = `+cursorSite); err != nil {
			return fmt.Errorf("ack outbox: %w", err)
		}
	}
	dropped, err := w.ackOutbox(seq)
	if err != nil {
		return err
	}
	if err := w.commit(); err != nil {
		return fmt.Errorf("ack outbox: %w", err)
	}
	s.pending.Add(-dropped)
	s.runs.acked(seq)
	if lost {
		was := s.seq
		s.seq = seq
		return fmt.Errorf("%w: its writes %d to %d", ErrLostWrites, was+1, seq)
	}
	return nil
}

// ackOutbox drops the outbox entries up to seq and returns how many.
func (w *writeTx) ackOutbox(seq uint64) (int64, error) {
	// Local writes do not touch _uno_replica (one page less per commit):
	// the last seq and clock are recovered from the outbox on open. Before
	// dropping outbox entries, save them here.
	if _, err := w.exec("", `UPDATE _uno_replica SET seq = max(seq, ?), clock = max(clock, ?) WHERE id = 1`,
		int64(w.s.seq), int64(w.s.clock.Last())); err != nil {
		return 0, fmt.Errorf("ack outbox: %w", err)
	}
	res, err := w.exec("", `DELETE FROM _uno_outbox WHERE seq <= ?`, int64(seq))
	if err != nil {
		return 0, fmt.Errorf("ack outbox: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("ack outbox: %w", err)
	}
	return n, nil
}

// Conflicts implements Store.
func (s *SQLite) Conflicts(ctx context.Context, after uint64, limit int) ([]ConflictEntry, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	if limit <= 0 {
		limit = -1 // no limit
	}
	rows, err := s.db.QueryContext(ctx, `SELECT id, coll, row, field, mode, winner, winner_site, winner_time, loser, loser_site, loser_time
		FROM _uno_conflicts WHERE id > ? ORDER BY id LIMIT ?`, int64(after), limit)
	if err != nil {
		return nil, fmt.Errorf("read conflicts: %w", err)
	}
	defer rows.Close()
	var out []ConflictEntry
	for rows.Next() {
		var e ConflictEntry
		var mode int
		var wsite, lsite []byte
		var wtime, ltime int64
		if err := rows.Scan(&e.ID, &e.Collection, &e.Row, &e.Field, &mode, &e.Winner.Data, &wsite, &wtime, &e.Loser.Data, &lsite, &ltime); err != nil {
			return nil, fmt.Errorf("read conflicts: %w", err)
		}
		e.Mode = conflict.Mode(mode)
		copy(e.Winner.Dot.Site[:], wsite)
		copy(e.Loser.Dot.Site[:], lsite)
		e.Winner.Dot.Time, e.Loser.Dot.Time = crdt.Timestamp(wtime), crdt.Timestamp(ltime)
		out = append(out, e)
	}
	return out, rows.Err()
}

// Hash implements Store.
func (s *SQLite) Hash(ctx context.Context) ([32]byte, error) {
	if err := s.check(); err != nil {
		return [32]byte{}, err
	}
	s.colMu.RLock()
	var parts []string
	for coll := range s.cols {
		parts = append(parts, fmt.Sprintf(`SELECT '%s', id, %s FROM %s`, coll, stateColumn, quote(coll)))
	}
	s.colMu.RUnlock()
	parts = append(parts, `SELECT coll, id, state FROM _uno_deleted`)
	rows, err := s.db.QueryContext(ctx, `SELECT * FROM (`+strings.Join(parts, " UNION ALL ")+`) ORDER BY 1, 2`)
	if err != nil {
		return [32]byte{}, fmt.Errorf("hash: %w", err)
	}
	defer rows.Close()
	h := crdt.NewHasher()
	for rows.Next() {
		var k crdt.RowKey
		var state []byte
		if err := rows.Scan(&k.Collection, &k.Row, &state); err != nil {
			return [32]byte{}, fmt.Errorf("hash: %w", err)
		}
		r, err := crdt.DecodeRow(state)
		if err != nil {
			return [32]byte{}, fmt.Errorf("%w: row %s/%s: %w", ErrCorrupt, k.Collection, k.Row, err)
		}
		h.Add(k, r)
	}
	if err := rows.Err(); err != nil {
		return [32]byte{}, fmt.Errorf("hash: %w", err)
	}
	return h.Sum(), nil
}
