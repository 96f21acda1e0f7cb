package store

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"sync"

	"github.com/unosync/uno/crdt"
)

// A doc field's state is an Automerge document kept as chunks (see
// crdt.DocState): a saved document and the changes made since. Typing
// appends a change of a few hundred bytes to a document of hundreds of
// kilobytes, so the chunks are not in the row's state, which every write
// rewrites: each is a row of _uno_chunks, in the order written (its
// rowid), and a write inserts only the chunks it added. The row's state
// (crdt.EncodeRowSplit) keeps each document's clock and heads, which say
// what it holds. Reading a row puts its chunks back (attach), from a cache
// of the documents written or read last, or from the table.
//
// Rows written before the table existed keep their chunks in the state;
// they read as they are, and move to the table when next written.

// chunksTable is the migration that creates the table.
var chunksTable = migration{
	up: []string{
		`CREATE TABLE _uno_chunks (
			coll  TEXT NOT NULL,
			id    TEXT NOT NULL,
			field TEXT NOT NULL,
			chunk BLOB NOT NULL
		)`,
		`CREATE INDEX _uno_chunks_doc ON _uno_chunks (coll, id, field)`,
	},
	downGo: inlineChunks,
	down: []string{
		`DROP TABLE _uno_chunks`,
	},
}

// chunkKey names one doc field.
type chunkKey struct {
	row   crdt.RowKey
	field string
}

// chunksApart reports whether a doc state read from a row's state has its
// chunks in _uno_chunks: it holds changes, and none came with it.
func chunksApart(d *crdt.DocState) bool { return len(d.Chunks) == 0 && len(d.Clock) > 0 }

// querier is a *sql.DB, an *sql.Tx or an *sql.Conn.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

const chunksSQL = `SELECT chunk FROM _uno_chunks WHERE coll = ? AND id = ? AND field = ? ORDER BY rowid`

// loadChunks reads a doc field's chunks from the table.
func loadChunks(ctx context.Context, q querier, k chunkKey) ([][]byte, error) {
	rows, err := q.QueryContext(ctx, chunksSQL, k.row.Collection, k.row.Row, k.field)
	if err != nil {
		return nil, fmt.Errorf("read document %s/%s.%s: %w", k.row.Collection, k.row.Row, k.field, err)
	}
	defer rows.Close()
	var out [][]byte
	for rows.Next() {
		var c []byte
		if err := rows.Scan(&c); err != nil {
			return nil, fmt.Errorf("read document %s/%s.%s: %w", k.row.Collection, k.row.Row, k.field, err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read document %s/%s.%s: %w", k.row.Collection, k.row.Row, k.field, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: document %s/%s.%s holds changes but has no chunks", ErrCorrupt, k.row.Collection, k.row.Row, k.field)
	}
	return out, nil
}

// attach puts the chunks of r's doc fields back, from the cache or through
// q, and calls seen with each field's chunks as they are in the table.
// A miss reads the table, so q must see the same snapshot r was read in.
func (s *SQLite) attach(ctx context.Context, q querier, k crdt.RowKey, r *crdt.Row, seen func(chunkKey, [][]byte)) error {
	for i := range r.Fields {
		f := &r.Fields[i]
		if f.Kind != crdt.KindDoc || !chunksApart(&f.Doc) {
			continue
		}
		ck := chunkKey{k, f.Name}
		chunks, ok := s.chunks.get(ck, f.Doc.Heads)
		if !ok {
			var err error
			if chunks, err = loadChunks(ctx, q, ck); err != nil {
				return err
			}
			s.chunks.put(ck, f.Doc.Heads, chunks)
		}
		f.Doc.Chunks = slices.Clip(chunks)
		if seen != nil {
			seen(ck, chunks)
		}
	}
	return nil
}

// cached puts the chunks of r's doc fields back from the cache alone, and
// reports whether it could (a row read outside a transaction must not
// read the table: a write may have replaced the chunks since).
func (s *SQLite) cached(k crdt.RowKey, r *crdt.Row) bool {
	for i := range r.Fields {
		f := &r.Fields[i]
		if f.Kind != crdt.KindDoc || !chunksApart(&f.Doc) {
			continue
		}
		chunks, ok := s.chunks.get(chunkKey{k, f.Name}, f.Doc.Heads)
		if !ok {
			return false
		}
		f.Doc.Chunks = slices.Clip(chunks)
	}
	return true
}

// putChunks writes the chunks of r's doc fields the table lacks: the ones
// added since they were loaded (w.base), or all of them when the chunks
// were replaced (compaction, a join). It runs after the row's state is
// written.
func (w *writeTx) putChunks(k crdt.RowKey, r *crdt.Row) error {
	base := w.base[k]
	// A field a row delete dropped leaves no chunks.
	for field := range base {
		if f, ok := r.Field(field); !ok || f.Kind != crdt.KindDoc {
			if _, err := w.exec("", `DELETE FROM _uno_chunks WHERE coll = ? AND id = ? AND field = ?`, k.Collection, k.Row, field); err != nil {
				return fmt.Errorf("write document %s/%s.%s: %w", k.Collection, k.Row, field, err)
			}
			delete(base, field)
			w.written[chunkKey{k, field}] = chunkEntry{}
		}
	}
	for i := range r.Fields {
		f := &r.Fields[i]
		if f.Kind != crdt.KindDoc {
			continue
		}
		had, ok := base[f.Name]
		chunks := f.Doc.Chunks
		add := chunks
		if ok && hasPrefix(chunks, had) {
			add = chunks[len(had):]
		} else if _, err := w.exec("", `DELETE FROM _uno_chunks WHERE coll = ? AND id = ? AND field = ?`, k.Collection, k.Row, f.Name); err != nil {
			return fmt.Errorf("write document %s/%s.%s: %w", k.Collection, k.Row, f.Name, err)
		}
		for _, c := range add {
			if _, err := w.exec("", `INSERT INTO _uno_chunks (coll, id, field, chunk) VALUES (?, ?, ?, ?)`, k.Collection, k.Row, f.Name, c); err != nil {
				return fmt.Errorf("write document %s/%s.%s: %w", k.Collection, k.Row, f.Name, err)
			}
		}
		w.setBase(chunkKey{k, f.Name}, slices.Clip(chunks))
		w.written[chunkKey{k, f.Name}] = chunkEntry{heads: slices.Clone(f.Doc.Heads), chunks: slices.Clip(chunks)}
	}
	return nil
}

// setBase records a doc field's chunks as the table holds them.
func (w *writeTx) setBase(ck chunkKey, chunks [][]byte) {
	m := w.base[ck.row]
	if m == nil {
		m = map[string][][]byte{}
		w.base[ck.row] = m
	}
	m[ck.field] = chunks
}

// dropChunks deletes the chunks of a row that never existed.
func (w *writeTx) dropChunks(k crdt.RowKey) error {
	if _, err := w.exec("", `DELETE FROM _uno_chunks WHERE coll = ? AND id = ?`, k.Collection, k.Row); err != nil {
		return fmt.Errorf("delete %s/%s: %w", k.Collection, k.Row, err)
	}
	for field := range w.base[k] {
		w.written[chunkKey{k, field}] = chunkEntry{}
	}
	delete(w.base, k)
	return nil
}

// hasPrefix reports whether chunks begins with prefix. Chunks come from
// the same slices, so the common case compares pointers.
func hasPrefix(chunks, prefix [][]byte) bool {
	if len(chunks) < len(prefix) {
		return false
	}
	for i, p := range prefix {
		c := chunks[i]
		if len(c) != len(p) {
			return false
		}
		if len(c) > 0 && &c[0] == &p[0] {
			continue
		}
		if string(c) != string(p) {
			return false
		}
	}
	return true
}

// The chunk cache's bounds: documents are a few hundred kilobytes to a few
// megabytes of chunks, and an app edits a few at a time.
const (
	chunkCacheBytes = 32 << 20
	chunkCacheDocs  = 256
)

// chunkCache holds the chunks of the doc fields written or read last, so
// a write to a document does not read all its chunks again. An entry is
// good for a state with the same heads (which name the document's
// content, however its chunks represent it). It is bounded by bytes and
// entries, least recently used going first.
type chunkCache struct {
	mu       sync.Mutex
	maxBytes int
	max      int
	bytes    int
	tick     uint64
	entries  map[chunkKey]*chunkEntry
}

type chunkEntry struct {
	heads  []crdt.DocHead
	chunks [][]byte // nil: the field's chunks are gone
	size   int
	used   uint64
}

func newChunkCache(maxBytes, max int) *chunkCache {
	return &chunkCache{maxBytes: maxBytes, max: max, entries: map[chunkKey]*chunkEntry{}}
}

func (c *chunkCache) get(k chunkKey, heads []crdt.DocHead) ([][]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[k]
	if !ok || !sameHeads(e.heads, heads) {
		return nil, false
	}
	c.tick++
	e.used = c.tick
	return e.chunks, true
}

func sameHeads(a, b []crdt.DocHead) bool {
	return slices.EqualFunc(a, b, func(x, y crdt.DocHead) bool { return x.Hash == y.Hash })
}

// put records k's chunks for a state with heads; nil chunks forget k.
func (c *chunkCache) put(k chunkKey, heads []crdt.DocHead, chunks [][]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.entries[k]; ok {
		c.bytes -= old.size
		delete(c.entries, k)
	}
	if chunks == nil {
		return
	}
	size := 0
	for _, ch := range chunks {
		size += len(ch)
	}
	c.tick++
	c.entries[k] = &chunkEntry{heads: slices.Clone(heads), chunks: slices.Clip(chunks), size: size, used: c.tick}
	c.bytes += size
	for len(c.entries) > 1 && (c.bytes > c.maxBytes || len(c.entries) > c.max) {
		var oldest chunkKey
		var at uint64
		for k, e := range c.entries {
			if at == 0 || e.used < at {
				oldest, at = k, e.used
			}
		}
		c.bytes -= c.entries[oldest].size
		delete(c.entries, oldest)
	}
}

// inlineChunks moves every document's chunks back into its row's state:
// the down migration of the table, for an older uno.
func inlineChunks(ctx context.Context, tx *sql.Tx) error {
	names, err := queryStrings(ctx, tx, `SELECT name FROM _uno_collections`)
	if err != nil {
		return err
	}
	type table struct{ read, write, coll string }
	tables := []table{{read: `SELECT coll, id, state FROM _uno_deleted`, write: `UPDATE _uno_deleted SET state = ? WHERE coll = ? AND id = ?`}}
	for _, n := range names {
		tables = append(tables, table{
			read:  fmt.Sprintf(`SELECT ?, id, %s FROM %s`, stateColumn, quote(n)),
			write: fmt.Sprintf(`UPDATE %s SET %s = ?1 WHERE id = ?3`, quote(n), stateColumn),
			coll:  n,
		})
	}
	for _, t := range tables {
		var args []any
		if t.coll != "" {
			args = append(args, t.coll)
		}
		type row struct {
			k     crdt.RowKey
			state []byte
		}
		rows, err := tx.QueryContext(ctx, t.read, args...)
		if err != nil {
			return err
		}
		var all []row
		for rows.Next() {
			var r row
			if err := rows.Scan(&r.k.Collection, &r.k.Row, &r.state); err != nil {
				rows.Close()
				return err
			}
			all = append(all, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, r := range all {
			dec, err := crdt.DecodeRow(r.state)
			if err != nil {
				return fmt.Errorf("%w: row %s/%s: %w", ErrCorrupt, r.k.Collection, r.k.Row, err)
			}
			moved := false
			for i := range dec.Fields {
				f := &dec.Fields[i]
				if f.Kind != crdt.KindDoc || !chunksApart(&f.Doc) {
					continue
				}
				if f.Doc.Chunks, err = loadChunks(ctx, tx, chunkKey{r.k, f.Name}); err != nil {
					return err
				}
				moved = true
			}
			if !moved {
				continue
			}
			if _, err := tx.ExecContext(ctx, t.write, crdt.EncodeRow(dec), r.k.Collection, r.k.Row); err != nil {
				return err
			}
		}
	}
	return nil
}
