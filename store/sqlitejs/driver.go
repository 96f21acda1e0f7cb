//go:build js

package sqlitejs

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"sync"
	"syscall/js"
	"time"

	"github.com/unosync/uno/internal/jspromise"
)

// Errors of the driver, in the chain of the errors it returns.
var (
	// ErrNoEngine reports that the JavaScript side could not be loaded.
	ErrNoEngine = errors.New("sqlitejs: SQLite engine not available")
	// ErrNotSaved reports a commit SQLite made that IndexedDB did not
	// keep: nothing of it is stored, and the connection is discarded.
	ErrNotSaved = errors.New("sqlitejs: commit not saved to IndexedDB")
)

// Error is an error SQLite reported: its extended result code and message.
type Error struct {
	Code int
	Msg  string
}

func (e *Error) Error() string { return fmt.Sprintf("sqlite: %s (%d)", e.Msg, e.Code) }

// Tags of the argument and row encoding (uno-sqlite.mjs).
const (
	tNull  = 0
	tInt32 = 1
	tInt64 = 2
	tFloat = 3
	tText  = 4
	tBlob  = 5

	endMore  = 0xfd
	endDone  = 0xfe
	endError = 0xff
)

// engine is the JavaScript Engine with its hot methods bound once, so a
// call does not look its name up.
type engine struct {
	v                                    js.Value
	run, query, fetch, reset, lastRowid  js.Value
	exec, prepare, params, columns, fin  js.Value
	flush, open, close, growArgs, remove js.Value
	args                                 js.Value // Uint8Array, refreshed when grown
	argsLen                              int
	out                                  js.Value
	outLen                               int
	buf                                  []byte // encoding scratch
}

var loadEngine = sync.OnceValues(func() (*engine, error) {
	fn := js.Global().Get("__unoLoadSQLite")
	if fn.Type() != js.TypeFunction {
		return nil, fmt.Errorf("%w: globalThis.__unoLoadSQLite is not set (load uno.js, or wasm/test/node-setup.cjs under Node)", ErrNoEngine)
	}
	v, err := jspromise.Await(fn.Invoke())
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNoEngine, err)
	}
	bind := func(name string) js.Value { return v.Get(name).Call("bind", v) }
	e := &engine{v: v,
		run: bind("run"), query: bind("query"), fetch: bind("fetch"), reset: bind("reset"), lastRowid: bind("lastRowid"),
		exec: bind("exec"), prepare: bind("prepare"), params: bind("params"), columns: bind("columns"), fin: bind("finalize"),
		flush: bind("flush"), open: bind("open"), close: bind("close"), growArgs: bind("growArgs"), remove: bind("remove"),
	}
	e.refresh()
	return e, nil
})

func (e *engine) refresh() {
	e.args = e.v.Get("args")
	e.argsLen = e.args.Length()
	e.out = e.v.Get("out")
	e.outLen = e.out.Length()
}

// lastError is SQLite's message for the failure that returned code.
func (e *engine) lastError(code int) error {
	return &Error{Code: -code, Msg: e.v.Get("lastError").String()}
}

// Open returns a database of file name in IndexedDB, creating it if
// needed; every new connection first runs init (pragmas, for example).
func Open(name string, init ...string) *sql.DB {
	return sql.OpenDB(&connector{name: name, init: init})
}

// Remove deletes file name from IndexedDB; it must not be open. It
// reports whether there was one.
func Remove(name string) (bool, error) {
	e, err := loadEngine()
	if err != nil {
		return false, err
	}
	v, err := jspromise.Await(e.remove.Invoke(name))
	if err != nil {
		return false, fmt.Errorf("sqlitejs: remove %s: %w", name, err)
	}
	return v.Bool(), nil
}

type connector struct {
	name string
	init []string
}

func (c *connector) Driver() driver.Driver { return drv{} }

func (c *connector) Connect(ctx context.Context) (driver.Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	e, err := loadEngine()
	if err != nil {
		return nil, err
	}
	v, err := jspromise.Await(e.open.Invoke(c.name))
	if err != nil {
		return nil, fmt.Errorf("sqlitejs: open %s: %w", c.name, err)
	}
	if db := v.Int(); db < 0 {
		return nil, fmt.Errorf("sqlitejs: open %s: %w", c.name, e.lastError(db))
	}
	cn := &conn{e: e, db: v.Int(), name: c.name}
	for _, q := range c.init {
		if _, err := cn.ExecContext(ctx, q, nil); err != nil {
			cn.Close()
			return nil, fmt.Errorf("sqlitejs: open %s: %s: %w", c.name, q, err)
		}
	}
	return cn, nil
}

type drv struct{}

func (drv) Open(name string) (driver.Conn, error) {
	return (&connector{name: name}).Connect(context.Background())
}

// conn is one SQLite connection. database/sql uses it from one goroutine
// at a time; the engine's buffers are shared, but a sequence of calls
// that does not block cannot be interleaved (WebAssembly has one thread,
// and a goroutine yields only when it blocks).
type conn struct {
	e                                  *engine
	db                                 int
	name                               string
	bad                                bool   // a flush failed: discard the connection
	execs                              uint64 // statements run, for LastInsertId
	begin, beginRead, commit, rollback *stmt
}

var (
	_ driver.ConnBeginTx        = (*conn)(nil)
	_ driver.ExecerContext      = (*conn)(nil)
	_ driver.QueryerContext     = (*conn)(nil)
	_ driver.ConnPrepareContext = (*conn)(nil)
	_ driver.Validator          = (*conn)(nil)
	_ driver.SessionResetter    = (*conn)(nil)
)

func (c *conn) IsValid() bool { return !c.bad }

func (c *conn) ResetSession(context.Context) error {
	if c.bad {
		return driver.ErrBadConn
	}
	return nil
}

func (c *conn) Prepare(query string) (driver.Stmt, error) {
	return c.PrepareContext(context.Background(), query)
}

func (c *conn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	if c.bad {
		return nil, driver.ErrBadConn
	}
	s, tail, err := c.prep(query)
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(query[tail:]) != "" {
		s.Close()
		return nil, fmt.Errorf("sqlitejs: prepare: more than one statement in %q", query)
	}
	return s, nil
}

// prep compiles the first statement of query; tail is the offset of the
// rest.
func (c *conn) prep(query string) (*stmt, int, error) {
	p := c.e.prepare.Invoke(c.db, query).Int()
	if p < 0 {
		return nil, 0, c.e.lastError(p)
	}
	tail := c.e.v.Get("tail").Int()
	if p == 0 {
		return nil, tail, fmt.Errorf("sqlitejs: prepare: no statement in %q", query)
	}
	return &stmt{c: c, p: p, params: c.e.params.Invoke(p).Int()}, tail, nil
}

func (c *conn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if c.bad {
		return nil, driver.ErrBadConn
	}
	if len(args) == 0 {
		return c.ran(c.e.exec.Invoke(c.db, query).Int())
	}
	s, err := c.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	return s.(*stmt).ExecContext(ctx, args)
}

func (c *conn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	s, err := c.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	r, err := s.(*stmt).QueryContext(ctx, args)
	if err != nil {
		s.Close()
		return nil, err
	}
	r.(*rows).owned = true
	return r, nil
}

// ran is the result of exec or run: changes×2, plus 1 if a flush is
// pending (done here), or a negative code.
func (c *conn) ran(r int) (driver.Result, error) {
	if r < 0 {
		return nil, c.e.lastError(r)
	}
	c.execs++
	if err := c.flushIf(r&1 == 1); err != nil {
		return nil, err
	}
	return &result{c: c, execs: c.execs, changes: int64(r >> 1)}, nil
}

// flushIf writes what SQLite synced to IndexedDB when pending; if that
// fails the connection is bad.
func (c *conn) flushIf(pending bool) error {
	if !pending {
		return nil
	}
	if _, err := jspromise.Await(c.e.flush.Invoke()); err != nil {
		c.bad = true
		return fmt.Errorf("%w: %s: %w", ErrNotSaved, c.name, err)
	}
	return nil
}

func (c *conn) Begin() (driver.Tx, error) {
	return c.BeginTx(context.Background(), driver.TxOptions{})
}

// BeginTx begins an IMMEDIATE transaction (a read-only one, DEFERRED).
func (c *conn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if c.bad {
		return nil, driver.ErrBadConn
	}
	q, s := "BEGIN IMMEDIATE", &c.begin
	if opts.ReadOnly {
		q, s = "BEGIN", &c.beginRead
	}
	if err := c.cached(s, q); err != nil {
		return nil, err
	}
	if _, err := (*s).exec(nil); err != nil {
		return nil, err
	}
	return tx{c}, nil
}

// cached prepares *s once.
func (c *conn) cached(s **stmt, query string) error {
	if *s != nil {
		return nil
	}
	p, _, err := c.prep(query)
	if err != nil {
		return err
	}
	*s = p
	return nil
}

func (c *conn) Close() error {
	for _, s := range []*stmt{c.begin, c.beginRead, c.commit, c.rollback} {
		if s != nil {
			s.Close()
		}
	}
	if r := c.e.close.Invoke(c.db).Int(); r < 0 {
		return c.e.lastError(r)
	}
	return nil
}

type tx struct{ c *conn }

func (t tx) Commit() error {
	if err := t.c.cached(&t.c.commit, "COMMIT"); err != nil {
		return err
	}
	_, err := t.c.commit.exec(nil)
	return err
}

func (t tx) Rollback() error {
	if err := t.c.cached(&t.c.rollback, "ROLLBACK"); err != nil {
		return err
	}
	_, err := t.c.rollback.exec(nil)
	return err
}

type result struct {
	c       *conn
	execs   uint64
	changes int64
}

func (r *result) LastInsertId() (int64, error) {
	if r.c.execs != r.execs {
		return 0, errors.New("sqlitejs: LastInsertId after another statement ran")
	}
	return int64(r.c.e.lastRowid.Invoke(r.c.db).Float()), nil
}

func (r *result) RowsAffected() (int64, error) { return r.changes, nil }

type stmt struct {
	c        *conn
	p        int
	params   int
	cols     []string // column names, as of the statement's prepared'th re-preparation
	prepared int
}

var (
	_ driver.StmtExecContext  = (*stmt)(nil)
	_ driver.StmtQueryContext = (*stmt)(nil)
)

func (s *stmt) Close() error {
	if s.p != 0 {
		s.c.e.fin.Invoke(s.p)
		s.p = 0
	}
	return nil
}

func (s *stmt) NumInput() int { return s.params }

func (s *stmt) Exec(args []driver.Value) (driver.Result, error) {
	return s.exec(named(args))
}

func (s *stmt) Query(args []driver.Value) (driver.Rows, error) {
	return s.QueryContext(context.Background(), named(args))
}

func named(args []driver.Value) []driver.NamedValue {
	nv := make([]driver.NamedValue, len(args))
	for i, a := range args {
		nv[i] = driver.NamedValue{Ordinal: i + 1, Value: a}
	}
	return nv
}

func (s *stmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return s.exec(args)
}

func (s *stmt) exec(args []driver.NamedValue) (driver.Result, error) {
	n, err := s.args(args)
	if err != nil {
		return nil, err
	}
	return s.c.ran(s.c.e.run.Invoke(s.p, n).Int())
}

// args puts args in the engine's argument buffer for s, returning its
// length; a bad connection takes none.
func (s *stmt) args(args []driver.NamedValue) (int, error) {
	if s.c.bad {
		return 0, driver.ErrBadConn
	}
	return s.c.e.encode(args)
}

func (s *stmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c := s.c
	n, err := s.args(args)
	if err != nil {
		return nil, err
	}
	r := &rows{s: s}
	if err := r.read(c.e.query.Invoke(s.p, n).Int()); err != nil {
		return nil, err
	}
	c.execs++
	prepared := int(int32(binary.LittleEndian.Uint32(r.buf)))
	r.off = 4
	if s.cols == nil || prepared != s.prepared {
		names := strings.Split(c.e.columns.Invoke(s.p).String(), "\x00")
		s.cols, s.prepared = names[:len(names)-1], prepared
	}
	r.cols = s.cols
	return r, nil
}

// encode writes args into the engine's argument buffer, returning its
// length.
func (e *engine) encode(args []driver.NamedValue) (int, error) {
	b := e.buf[:0]
	for _, a := range args {
		if a.Name != "" {
			return 0, fmt.Errorf("sqlitejs: named parameter %s: use ? placeholders", a.Name)
		}
		switch v := a.Value.(type) {
		case nil:
			b = append(b, tNull)
		case int64:
			if v >= math.MinInt32 && v <= math.MaxInt32 {
				b = binary.LittleEndian.AppendUint32(append(b, tInt32), uint32(int32(v)))
			} else {
				b = binary.LittleEndian.AppendUint64(append(b, tInt64), uint64(v))
			}
		case float64:
			b = binary.LittleEndian.AppendUint64(append(b, tFloat), math.Float64bits(v))
		case bool:
			var i uint32
			if v {
				i = 1
			}
			b = binary.LittleEndian.AppendUint32(append(b, tInt32), i)
		case string:
			b = append(binary.LittleEndian.AppendUint32(append(b, tText), uint32(len(v))), v...)
		case []byte:
			b = append(binary.LittleEndian.AppendUint32(append(b, tBlob), uint32(len(v))), v...)
		case time.Time:
			t := v.Format("2006-01-02 15:04:05.999999999-07:00")
			b = append(binary.LittleEndian.AppendUint32(append(b, tText), uint32(len(t))), t...)
		default:
			return 0, fmt.Errorf("sqlitejs: unsupported argument type %T", a.Value)
		}
	}
	e.buf = b
	if len(b) > e.argsLen {
		e.growArgs.Invoke(len(b))
		e.refresh()
	}
	if len(b) > 0 {
		js.CopyBytesToJS(e.args, b)
	}
	return len(b), nil
}

type rows struct {
	s     *stmt
	owned bool // the statement was prepared for these rows: finalize it
	cols  []string
	buf   []byte
	off   int
	done  bool
}

func (r *rows) Columns() []string { return r.cols }

func (r *rows) Close() error {
	var err error
	if !r.done {
		r.done = true
		err = r.s.c.flushIf(r.s.c.e.reset.Invoke(r.s.p).Int() == 1)
	}
	if r.owned {
		r.s.Close()
	}
	return err
}

func (r *rows) Next(dest []driver.Value) error {
	if r.off >= len(r.buf) {
		if r.done {
			return io.EOF
		}
		if err := r.more(); err != nil {
			return err
		}
	}
	switch r.buf[r.off] {
	case endMore:
		if err := r.more(); err != nil {
			return err
		}
		return r.Next(dest)
	case endDone:
		r.done = true
		pending := r.buf[r.off+1] == 1
		r.off = len(r.buf)
		if err := r.s.c.flushIf(pending); err != nil {
			return err
		}
		return io.EOF
	case endError:
		r.done = true
		code := int(int32(binary.LittleEndian.Uint32(r.buf[r.off+1:])))
		r.off = len(r.buf)
		return r.s.c.e.lastError(code)
	}
	b := r.buf
	for i := range dest {
		o := r.off
		switch b[o] {
		case tNull:
			dest[i] = nil
			r.off++
		case tInt32:
			dest[i] = int64(int32(binary.LittleEndian.Uint32(b[o+1:])))
			r.off += 5
		case tInt64:
			dest[i] = int64(binary.LittleEndian.Uint64(b[o+1:]))
			r.off += 9
		case tFloat:
			dest[i] = math.Float64frombits(binary.LittleEndian.Uint64(b[o+1:]))
			r.off += 9
		case tText, tBlob:
			n := int(binary.LittleEndian.Uint32(b[o+1:]))
			v := b[o+5 : o+5+n]
			if b[o] == tText {
				dest[i] = string(v)
			} else {
				dest[i] = append([]byte{}, v...)
			}
			r.off += 5 + n
		default:
			return fmt.Errorf("sqlitejs: bad row encoding (tag %d)", b[o])
		}
	}
	return nil
}

// more fetches the next rows from the engine.
func (r *rows) more() error {
	return r.read(r.s.c.e.fetch.Invoke(r.s.p).Int())
}

// read copies the n bytes query or fetch wrote (a negative n is their
// error code).
func (r *rows) read(n int) error {
	e := r.s.c.e
	if n < 0 {
		return e.lastError(n)
	}
	if n > e.outLen {
		e.refresh()
	}
	if cap(r.buf) < n {
		r.buf = make([]byte, n)
	}
	r.buf = r.buf[:n]
	js.CopyBytesToGo(r.buf, e.out)
	r.off = 0
	return nil
}
