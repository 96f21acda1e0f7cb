package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"strings"
)

// heldConn is a connection the store keeps out of the pool for its write
// transactions, at one synchronous level, with the statements it runs
// prepared on it once, BEGIN IMMEDIATE and COMMIT included. A transaction
// on it skips what database/sql does for each *sql.Tx and each statement
// bound to one (a goroutine watching the context, a connection grab,
// BEGIN and COMMIT parsed again): see BenchmarkApplyOne.
//
// Writes are serialised by the store's mu, which guards a heldConn.
type heldConn struct {
	c     *sql.Conn
	stmts map[string]*sql.Stmt
}

// holdConns reports whether the store runs its write transactions on held
// connections: it needs at least one more for readers, and two to hold at
// different synchronous levels. A store of fewer (the browser's has one)
// runs them as *sql.Tx on the pool.
func (s *SQLite) holdConns() bool { return s.opts.MaxConns > 2 }

// held returns the connection for a write transaction, setting it up the
// first time: the relaxed one (synchronous=NORMAL, see relaxedConn) or
// the one at the store's level.
func (s *SQLite) held(ctx context.Context, relaxed bool) (*heldConn, error) {
	slot := &s.writer
	if relaxed && s.relaxes() {
		slot = &s.relaxed
	}
	if *slot != nil {
		return *slot, nil
	}
	var c *sql.Conn
	var err error
	if slot == &s.relaxed {
		c, err = s.relaxedConn(ctx)
	} else {
		c, err = s.db.Conn(ctx)
	}
	if err != nil {
		return nil, err
	}
	*slot = &heldConn{c: c, stmts: map[string]*sql.Stmt{}}
	return *slot, nil
}

// drop discards a held connection that failed (its state is unknown); the
// next transaction sets up another.
func (s *SQLite) drop(h *heldConn) {
	h.close(true)
	if s.writer == h {
		s.writer = nil
	}
	if s.relaxed == h {
		s.relaxed = nil
	}
	if s.last == h {
		s.last = nil
	}
}

// stmt returns the statement for query prepared on the connection.
func (h *heldConn) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	if st, ok := h.stmts[query]; ok {
		return st, nil
	}
	st, err := h.c.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	h.stmts[query] = st
	return st, nil
}

// run runs a prepared statement of no parameters: BEGIN IMMEDIATE,
// COMMIT, ROLLBACK.
func (h *heldConn) run(ctx context.Context, query string) error {
	st, err := h.stmt(ctx, query)
	if err != nil {
		return err
	}
	if _, err := st.ExecContext(ctx); err != nil {
		return fmt.Errorf("%s: %w", strings.ToLower(query), err)
	}
	return nil
}

// forget closes the statements that mention a table whose columns changed.
func (h *heldConn) forget(table string) {
	for q, st := range h.stmts {
		if strings.Contains(q, quote(table)) {
			st.Close()
			delete(h.stmts, q)
		}
	}
}

// close closes the statements and gives the connection back to the pool,
// or, if bad, makes the pool discard it.
func (h *heldConn) close(bad bool) {
	for _, st := range h.stmts {
		st.Close()
	}
	h.stmts = nil
	if bad {
		h.c.Raw(func(any) error { return driver.ErrBadConn })
	}
	h.c.Close()
}
