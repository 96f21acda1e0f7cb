package store_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"pgregory.net/rapid"

	"github.com/unosync/uno/conflict"
	"github.com/unosync/uno/crdt"
	"github.com/unosync/uno/store"
	"github.com/unosync/uno/store/storetest"
)

func openSQLite(t *testing.T, opts store.Options) store.Store {
	t.Helper()
	s, err := store.OpenSQLite(t.Context(), filepath.Join(t.TempDir(), "uno.db"), opts)
	if err != nil {
		t.Fatalf("OpenSQLite: %v", err)
	}
	t.Cleanup(func() { closeStore(t, s) })
	return s
}

func openMemory(t *testing.T, opts store.Options) store.Store {
	t.Helper()
	s, err := store.NewMemory(opts)
	if err != nil {
		t.Fatalf("NewMemory: %v", err)
	}
	t.Cleanup(func() { closeStore(t, s) })
	return s
}

// closeStore closes s; the suite may have closed it already.
func closeStore(t *testing.T, s store.Store) {
	if err := s.Close(); err != nil && !errors.Is(err, store.ErrClosed) {
		t.Errorf("Close: %v", err)
	}
}

func TestSQLite(t *testing.T) { storetest.Run(t, openSQLite) }

// A store of too few connections to hold any runs its write transactions
// as *sql.Tx on the pool (as in the browser, where the pool has one).
func TestSQLite_PooledTransactions(t *testing.T) {
	for _, conns := range []int{1, 2} {
		t.Run(fmt.Sprintf("MaxConns=%d", conns), func(t *testing.T) {
			storetest.Run(t, func(t *testing.T, opts store.Options) store.Store {
				opts.MaxConns = conns
				return openSQLite(t, opts)
			})
		})
	}
}

func TestMemory(t *testing.T) { storetest.Run(t, openMemory) }

// clock is a fake wall clock that advances a millisecond per reading.
type clock struct{ now time.Time }

func (c *clock) Now() time.Time {
	c.now = c.now.Add(time.Millisecond)
	return c.now
}

var epoch = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

func mustWrite(t rapid.TB, s store.Store, fn func(b *crdt.Builder) error) *store.Commit {
	t.Helper()
	c, err := s.Write(context.Background(), fn)
	if err != nil {
		t.Fatalf("Write: %v", err)
	}
	return c
}

func setJSON(coll, row string, kv ...string) func(b *crdt.Builder) error {
	return func(b *crdt.Builder) error {
		for i := 0; i+1 < len(kv); i += 2 {
			if err := b.Set(crdt.RowKey{Collection: coll, Row: row}, kv[i], crdt.KindRegister, []byte(kv[i+1])); err != nil {
				return err
			}
		}
		return nil
	}
}

func TestSQLite_Reopen(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "uno.db")
	open := func(now time.Time) *store.SQLite {
		t.Helper()
		s, err := store.OpenSQLite(ctx, path, store.Options{Now: (&clock{now: now}).Now})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := open(epoch.Add(time.Hour))
	for i := range 3 {
		mustWrite(t, s, setJSON("todos", fmt.Sprint("r", i), "title", fmt.Sprintf(`"t%d"`, i)))
	}
	// Deleted rows, a remote transaction and its conflict are kept too.
	mustWrite(t, s, func(b *crdt.Builder) error {
		_, err := b.Delete(crdt.RowKey{Collection: "todos", Row: "r1"})
		return err
	})
	mustWrite(t, s, setJSON("todos", "r1", "title", `"revived"`))
	mustWrite(t, s, func(b *crdt.Builder) error {
		_, err := b.Delete(crdt.RowKey{Collection: "todos", Row: "r2"})
		return err
	})
	last := mustWrite(t, s, setJSON("notes", "n", "body", `"x"`)).Tx
	remote, err := store.NewMemory(store.Options{Now: (&clock{now: epoch.Add(2 * time.Hour)}).Now})
	if err != nil {
		t.Fatal(err)
	}
	rtx := mustWrite(t, remote, setJSON("todos", "r0", "title", `"remote"`)).Tx
	if _, err := s.Apply(ctx, []*crdt.Tx{rtx}); err != nil {
		t.Fatal(err)
	}
	site := s.Site()
	hash, _ := s.Hash(ctx)
	box, _ := s.Outbox(ctx, 0, 0)
	confs, _ := s.Conflicts(ctx, 0, 0)
	if len(confs) != 1 {
		t.Fatalf("conflicts before reopen = %v, want 1", confs)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// The wall clock now reads earlier than every stored timestamp.
	s = open(epoch)
	if s.Site() != site {
		t.Errorf("site after reopen = %s, want %s", s.Site(), site)
	}
	if h, _ := s.Hash(ctx); h != hash {
		t.Error("hash changed across reopen")
	}
	box2, _ := s.Outbox(ctx, 0, 0)
	if len(box2) != len(box) || !bytes.Equal(crdt.EncodeTx(box2[len(box2)-1]), crdt.EncodeTx(last)) {
		t.Errorf("outbox after reopen = %v, want %v", box2, box)
	}
	confs2, _ := s.Conflicts(ctx, 0, 0)
	if len(confs2) != 1 || confs2[0].ID != confs[0].ID {
		t.Errorf("conflicts after reopen = %v, want %v", confs2, confs)
	}
	// The high-water mark of the remote site survived.
	if c, err := s.Apply(ctx, []*crdt.Tx{rtx}); err != nil || len(c.Changed) != 0 {
		t.Errorf("re-Apply after reopen = %+v, %v; want nothing changed", c, err)
	}
	// The clock continues after everything it issued or observed, with the
	// wall clock behind; the sequence continues.
	check := func(phase string, next *crdt.Tx, after ...*crdt.Tx) {
		t.Helper()
		if next.Seq != last.Seq+1 {
			t.Errorf("%s: seq = %d, want %d", phase, next.Seq, last.Seq+1)
		}
		if next.Site != site {
			t.Errorf("%s: site = %s, want %s", phase, next.Site, site)
		}
		for _, tx := range after {
			if next.Time <= tx.Time {
				t.Errorf("%s: timestamp %s, want after %s", phase, next.Time, tx.Time)
			}
		}
	}
	next := mustWrite(t, s, setJSON("todos", "r9", "title", `"after"`)).Tx
	check("after reopen", next, last, rtx)
	last = next

	// With every local transaction acknowledged, the outbox is empty: the
	// seq and the clock must survive a reopen all the same.
	if err := s.Ack(ctx, last.Seq); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = open(epoch)
	next = mustWrite(t, s, setJSON("todos", "r9", "title", `"acked"`)).Tx
	check("after acking everything", next, last, rtx)
	last = next

	// Acknowledged in part, then remote changes from further ahead.
	mustWrite(t, s, setJSON("todos", "r8", "title", `"x"`))
	last = mustWrite(t, s, setJSON("todos", "r8", "title", `"y"`)).Tx
	if err := s.Ack(ctx, last.Seq-1); err != nil {
		t.Fatal(err)
	}
	rtx2 := mustWrite(t, remote, setJSON("todos", "r7", "title", `"z"`)).Tx
	if _, err := s.Apply(ctx, []*crdt.Tx{rtx2}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = open(epoch)
	defer s.Close()
	next = mustWrite(t, s, setJSON("todos", "r9", "title", `"partly acked"`)).Tx
	check("after a partial ack and a remote tx", next, last, rtx2)
	if n, _ := s.Pending(ctx); n != 2 {
		t.Errorf("Pending after reopen = %d, want 2", n)
	}
}

// TestSQLite_OneConnection: a store with a single connection (as in the
// browser) writes and reads without waiting on itself, with readers
// running beside the writer.
func TestSQLite_OneConnection(t *testing.T) {
	ctx := t.Context()
	s, err := store.OpenSQLite(ctx, filepath.Join(t.TempDir(), "uno.db"), store.Options{MaxConns: 1, Synchronous: "NORMAL"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	done := make(chan error, 1)
	go func() {
		for i := range 20 {
			if _, err := s.Write(ctx, setJSON("todos", fmt.Sprint("r", i%3), fmt.Sprint("f", i), `1`)); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	for range 20 {
		if _, err := s.Row(ctx, "todos", "r0"); err != nil {
			t.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n, err := s.Pending(ctx); err != nil || n != 20 {
		t.Errorf("Pending = %d, %v; want 20", n, err)
	}
}

// docWrite writes text into a doc field through the Automerge binding.
func docWrite(b *crdt.Builder, k crdt.RowKey, field, text string) error {
	d, err := crdt.OpenDocument(&crdt.DocState{}, b.Tx().Site)
	if err != nil {
		return err
	}
	if err := d.Splice(crdt.Path{"text"}, 0, 0, text); err != nil {
		return err
	}
	ch, err := d.Commit(b.Tx().Time)
	if err != nil {
		return err
	}
	return b.Change(k, field, ch)
}

func TestSQLite_Tables(t *testing.T) {
	ctx := t.Context()
	s, err := store.OpenSQLite(ctx, filepath.Join(t.TempDir(), "uno.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	k := func(id string) crdt.RowKey { return crdt.RowKey{Collection: "todos", Row: id} }
	mustWrite(t, s, func(b *crdt.Builder) error {
		return errors.Join(
			b.Set(k("a"), "title", crdt.KindRegister, []byte(`"buy milk"`)),
			b.Increment(k("a"), "n", 3),
			b.Add(k("a"), "tags", []byte(`"home"`)),
			b.Add(k("a"), "tags", []byte(`"food"`)),
			b.Set(k("a"), "done", crdt.KindRegister, []byte(`true`)),
			b.Set(k("a"), "score", crdt.KindRegister, []byte(`2.5`)),
			b.Set(k("a"), "meta", crdt.KindRegister, []byte(`{"a": [1, 2]}`)),
			docWrite(b, k("a"), "body", "hi"),
			b.Set(k("b"), "title", crdt.KindRegister, []byte(`"walk"`)),
			b.Set(k("b"), "done", crdt.KindRegister, []byte(`null`)),
			b.Set(k("gone"), "title", crdt.KindRegister, []byte(`"x"`)),
		)
	})
	mustWrite(t, s, func(b *crdt.Builder) error { _, err := b.Delete(k("gone")); return err })

	type row struct {
		ID, Title               string
		N                       any
		Tags, Done, Score, Meta any
		Body                    any
		Types                   string
	}
	rows, err := s.DB().QueryContext(ctx, `SELECT id, title, n, tags, done, score, meta, body,
		typeof(title) || ' ' || typeof(n) || ' ' || typeof(tags) || ' ' || typeof(done) || ' ' || typeof(score) || ' ' || typeof(meta) || ' ' || typeof(body)
		FROM todos ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.ID, &r.Title, &r.N, &r.Tags, &r.Done, &r.Score, &r.Meta, &r.Body, &r.Types); err != nil {
			t.Fatal(err)
		}
		got = append(got, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	want := []row{
		{ID: "a", Title: "buy milk", N: int64(3), Tags: `["food","home"]`, Done: int64(1), Score: 2.5, Meta: `{"a":[1,2]}`, Body: `{"text":"hi"}`,
			Types: "text integer text integer real text text"},
		{ID: "b", Title: "walk", Types: "text null null null null null null"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("SELECT FROM todos (-want +got):\n%s", diff)
	}
	// The set column is JSON that SQLite's JSON functions read.
	var member string
	if err := s.DB().QueryRowContext(ctx, `SELECT value FROM todos, json_each(todos.tags) WHERE todos.id = 'a' ORDER BY value LIMIT 1`).Scan(&member); err != nil || member != "food" {
		t.Errorf("json_each(tags) = %q, %v; want food", member, err)
	}
	// The documented query from the package doc works as written.
	var title string
	var n int64
	var tags string
	if err := s.DB().QueryRowContext(ctx, `SELECT title, n, tags FROM todos WHERE id = 'a'`).Scan(&title, &n, &tags); err != nil {
		t.Fatal(err)
	}
	if title != "buy milk" || n != 3 || !json.Valid([]byte(tags)) {
		t.Errorf("SELECT title, n, tags = %q, %d, %q", title, n, tags)
	}
}

func TestSQLite_Schema(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "uno.db")
	schema := &store.Schema{Version: 1, Collections: []store.Collection{
		{
			Name: "todos",
			Fields: []store.Field{
				{Name: "title"},
				{Name: "n", Kind: crdt.KindCounter},
				{Name: "tags", Kind: crdt.KindSet},
				{Name: "done"},
			},
			Indexes: []store.Index{
				{Fields: []string{"title"}},
				{Name: "todos_by_done", Fields: []string{"done", "id"}},
			},
		},
		{Name: "empty"},
	}}
	s, err := store.OpenSQLite(ctx, path, store.Options{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	strs := func(q string, args ...any) []string {
		t.Helper()
		rows, err := s.DB().QueryContext(ctx, q, args...)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var v string
			if err := rows.Scan(&v); err != nil {
				t.Fatal(err)
			}
			out = append(out, v)
		}
		return out
	}
	check := func(what string, want, got []string) {
		t.Helper()
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", what, diff)
		}
	}
	tables := `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '\_uno\_%' ESCAPE '\' AND name NOT LIKE 'sqlite\_%' ESCAPE '\' ORDER BY name`
	check("app tables", []string{"empty", "todos"}, strs(tables))
	// uno's own columns, if any, start with _uno.
	columns := `SELECT name FROM pragma_table_info(?) WHERE name NOT LIKE '\_uno%' ESCAPE '\' ORDER BY cid`
	check("columns of todos", []string{"id", "title", "n", "tags", "done"}, strs(columns, "todos"))
	check("columns of empty", []string{"id"}, strs(columns, "empty"))
	check("indexes of todos", []string{"todos_by_done", "todos_title"},
		strs(`SELECT name FROM pragma_index_list('todos') WHERE origin = 'c' ORDER BY name`))
	check("columns of todos_title", []string{"title"}, strs(`SELECT name FROM pragma_index_info('todos_title') ORDER BY seqno`))
	check("columns of todos_by_done", []string{"done", "id"}, strs(`SELECT name FROM pragma_index_info('todos_by_done') ORDER BY seqno`))
	// The planner can use the declared index for a query on the field.
	var plan strings.Builder
	rows, err := s.DB().QueryContext(ctx, `EXPLAIN QUERY PLAN SELECT id FROM todos WHERE title = 'x'`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan.WriteString(detail + "\n")
	}
	rows.Close()
	if !strings.Contains(plan.String(), "todos_title") {
		t.Errorf("query plan for title = ? does not use todos_title:\n%s", plan.String())
	}
	// Declared collections are queryable before any write.
	docs, err := s.Query(ctx, store.Query{Collection: "todos", Where: []store.Cond{{Field: "title", Op: store.Eq, Value: "x"}}})
	if err != nil || len(docs) != 0 {
		t.Errorf("Query on an empty declared collection = %v, %v", docs, err)
	}
	// Writes fill the declared columns.
	mustWrite(t, s, setJSON("todos", "a", "title", `"x"`, "done", "false"))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// Reopening with the same schema is a no-op; a grown schema adds
	// columns and indexes.
	schema.Collections[0].Fields = append(schema.Collections[0].Fields, store.Field{Name: "due"})
	schema.Collections[0].Indexes = append(schema.Collections[0].Indexes, store.Index{Fields: []string{"due"}})
	s, err = store.OpenSQLite(ctx, path, store.Options{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	check("columns of todos after growing", []string{"id", "title", "n", "tags", "done", "due"}, strs(columns, "todos"))
	check("indexes of todos after growing", []string{"todos_by_done", "todos_due", "todos_title"},
		strs(`SELECT name FROM pragma_index_list('todos') WHERE origin = 'c' ORDER BY name`))
	check("rows kept", []string{"a"}, strs(`SELECT id FROM todos WHERE title = 'x' AND done = 0`))
}

func TestSQLite_Pragmas(t *testing.T) {
	cases := []struct {
		sync string
		want int
	}{{"", 2}, {"FULL", 2}, {"full", 2}, {"NORMAL", 1}, {"EXTRA", 3}}
	for _, tc := range cases {
		t.Run("synchronous="+tc.sync, func(t *testing.T) {
			ctx := t.Context()
			s, err := store.OpenSQLite(ctx, filepath.Join(t.TempDir(), "uno.db"), store.Options{Synchronous: tc.sync, MaxConns: 3})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			// Hold every connection of the pool at once, so each one is
			// checked (the browser's pool has one).
			conns := make([]*sql.Conn, s.DB().Stats().MaxOpenConnections)
			if len(conns) != platform.conns {
				t.Errorf("pool of %d connections, want %d", len(conns), platform.conns)
			}
			for i := range conns {
				conn, err := s.DB().Conn(ctx)
				if err != nil {
					t.Fatal(err)
				}
				conns[i] = conn
				var sync int
				var mode, locking string
				if err := conn.QueryRowContext(ctx, `PRAGMA synchronous`).Scan(&sync); err != nil {
					t.Fatal(err)
				}
				if err := conn.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil {
					t.Fatal(err)
				}
				if err := conn.QueryRowContext(ctx, `PRAGMA locking_mode`).Scan(&locking); err != nil {
					t.Fatal(err)
				}
				if sync != tc.want || mode != platform.journalMode || locking != platform.lockingMode {
					t.Errorf("connection %d: synchronous = %d, journal_mode = %s, locking_mode = %s; want %d, %s, %s",
						i, sync, mode, locking, tc.want, platform.journalMode, platform.lockingMode)
				}
			}
			for _, c := range conns {
				c.Close()
			}
		})
	}
}

func TestOpen_InvalidOptions(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name string
		path string
		opts store.Options
		want error // nil: any error
	}{
		{"bogus synchronous", "a.db", store.Options{Synchronous: "BOGUS"}, nil},
		{"synchronous OFF", "a.db", store.Options{Synchronous: "OFF"}, nil},
		{"path with ?", "a.db?mode=memory", store.Options{}, nil},
		{"path with #", "a#b.db", store.Options{}, nil},
		{"invalid schema", "a.db", store.Options{Schema: &store.Schema{Collections: []store.Collection{{Name: "Todos"}}}}, store.ErrInvalidSchema},
		{"duplicate collection", "a.db", store.Options{Schema: &store.Schema{Collections: []store.Collection{{Name: "t"}, {Name: "t"}}}}, store.ErrInvalidSchema},
		{"index on unknown field", "a.db", store.Options{Schema: &store.Schema{Collections: []store.Collection{{Name: "t", Indexes: []store.Index{{Fields: []string{"x"}}}}}}}, store.ErrInvalidSchema},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := store.OpenSQLite(t.Context(), filepath.Join(dir, tc.path), tc.opts)
			if err == nil {
				s.Close()
				t.Fatal("OpenSQLite succeeded")
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("OpenSQLite = %v, want %v", err, tc.want)
			}
			if strings.ContainsAny(tc.path, "?#") {
				return // a path option; NewMemory has no path
			}
			if _, err := store.NewMemory(tc.opts); err == nil {
				t.Error("NewMemory succeeded")
			} else if tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("NewMemory = %v, want %v", err, tc.want)
			}
		})
	}
	if _, err := store.OpenSQLite(t.Context(), "", store.Options{}); err == nil {
		t.Error("OpenSQLite with an empty path succeeded")
	}
}

// TestQuery_SQLiteMatchesMemory is the differential property behind the
// memory store: for random rows and random queries, SQLite and Memory
// return the same rows, with the same states, in the same order.
func TestQuery_SQLiteMatchesMemory(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		site := crdt.SiteID{7}
		open := func() []store.Store {
			opts := func() store.Options {
				return store.Options{Synchronous: "NORMAL", Now: (&clock{now: epoch}).Now, Rand: bytes.NewReader(site[:])}
			}
			sq, err := store.OpenSQLite(t.Context(), filepath.Join(t.TempDir(), "uno.db"), opts())
			if err != nil {
				rt.Fatal(err)
			}
			mem, err := store.NewMemory(opts())
			if err != nil {
				rt.Fatal(err)
			}
			return []store.Store{sq, mem}
		}
		stores := open()
		defer stores[0].Close()
		ids := []string{"a", "b", "c", "d", "e", "f"}
		values := []string{"null", "true", "false", "0", "1", "-1", "3", "0.5", "1.0", "-2.5",
			`""`, `"a"`, `"ab"`, `"b"`, `"B"`, `"é"`, "[1]", `["a"]`, `{"k":1}`, "[]"}
		members := []string{`"a"`, `"b"`, "1", "true"}
		for i := range rapid.IntRange(1, 12).Draw(rt, "writes") {
			type op struct {
				kind  int
				id    string
				field string
				value string
				delta int64
			}
			var ops []op
			for j := range rapid.IntRange(1, 4).Draw(rt, fmt.Sprint("w", i)) {
				l := fmt.Sprint("w", i, ".", j)
				ops = append(ops, op{
					kind:  rapid.IntRange(0, 5).Draw(rt, l+"kind"),
					id:    rapid.SampledFrom(ids).Draw(rt, l+"id"),
					field: rapid.SampledFrom([]string{"p", "q"}).Draw(rt, l+"field"),
					value: rapid.SampledFrom(values).Draw(rt, l+"value"),
					delta: rapid.Int64Range(-3, 3).Draw(rt, l+"delta"),
				})
			}
			fn := func(b *crdt.Builder) error {
				for _, o := range ops {
					k := crdt.RowKey{Collection: "items", Row: o.id}
					var err error
					switch o.kind {
					case 0, 1:
						err = b.Set(k, o.field, crdt.KindRegister, []byte(o.value))
					case 2:
						err = b.Increment(k, "n", o.delta)
					case 3:
						err = b.Add(k, "t", []byte(members[int(o.delta+3)%len(members)]))
					case 4:
						err = b.Remove(k, "t", []byte(members[int(o.delta+3)%len(members)]))
					case 5:
						_, err = b.Delete(k)
					}
					if err != nil {
						return err
					}
				}
				return nil
			}
			for _, s := range stores {
				mustWrite(rt, s, fn)
			}
		}
		h0, _ := stores[0].Hash(t.Context())
		if h1, _ := stores[1].Hash(t.Context()); h0 != h1 {
			rt.Fatal("same writes with the same site and clock gave different hashes")
		}
		fields := []string{"p", "q", "n", "t", "id", "never"}
		qvals := []any{nil, 0, 1, -1, 3, 0.5, -2.5, 1.0, "", "a", "ab", "b", "B", "é", true, false, []any{1}, `["a"]`, "[]"}
		ops := []store.Op{store.Eq, store.Ne, store.Lt, store.Le, store.Gt, store.Ge}
		for i := range rapid.IntRange(1, 15).Draw(rt, "queries") {
			l := fmt.Sprint("q", i)
			q := store.Query{
				Collection: rapid.SampledFrom([]string{"items", "items", "items", "other"}).Draw(rt, l+"coll"),
				OrderBy:    rapid.SampledFrom(append([]string{""}, fields...)).Draw(rt, l+"order"),
				Desc:       rapid.Bool().Draw(rt, l+"desc"),
				Limit:      rapid.IntRange(0, 7).Draw(rt, l+"limit"),
			}
			for j := range rapid.IntRange(0, 3).Draw(rt, l+"conds") {
				c := store.Cond{
					Field: rapid.SampledFrom(fields).Draw(rt, fmt.Sprint(l, ".", j, "field")),
					Op:    rapid.SampledFrom(ops).Draw(rt, fmt.Sprint(l, ".", j, "op")),
					Value: rapid.SampledFrom(qvals).Draw(rt, fmt.Sprint(l, ".", j, "value")),
				}
				q.Where = append(q.Where, c)
			}
			var results [2][]string
			var errs [2]error
			for n, s := range stores {
				docs, err := s.Query(t.Context(), q)
				errs[n] = err
				for _, d := range docs {
					results[n] = append(results[n], d.ID+" "+string(crdt.EncodeRow(d.Row)))
				}
			}
			if (errs[0] == nil) != (errs[1] == nil) || (errs[0] != nil && !errors.Is(errs[0], store.ErrInvalidQuery)) {
				rt.Fatalf("Query(%+v): SQLite error %v, Memory error %v", q, errs[0], errs[1])
			}
			if !slices.Equal(results[0], results[1]) {
				rt.Fatalf("Query(%+v):\nSQLite %q\nMemory %q", q, ids0(results[0]), ids0(results[1]))
			}
		}
	})
}

// ids0 strips the row states from "id state" results, for messages.
func ids0(rs []string) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i], _, _ = strings.Cut(r, " ")
	}
	return out
}

func TestSchema_Declared(t *testing.T) {
	if got := (*store.Schema)(nil).Declared(); got != nil {
		t.Errorf("nil schema declares %+v, want nil", got)
	}
	s := &store.Schema{Version: 4, Collections: []store.Collection{
		{
			Name: "todos",
			Fields: []store.Field{
				{Name: "title"},
				{Name: "body", Kind: crdt.KindRegister, Policy: conflict.MultiValue()},
				{Name: "n", Kind: crdt.KindCounter},
				{Name: "tags", Kind: crdt.KindSet},
			},
			Indexes: []store.Index{{Fields: []string{"title"}}},
		},
		{Name: "empty"},
	}}
	want := &crdt.Schema{Version: 4, Collections: []crdt.SchemaCollection{
		{Name: "todos", Fields: []crdt.SchemaField{
			{Name: "title", Kind: crdt.KindRegister},
			{Name: "body", Kind: crdt.KindRegister},
			{Name: "n", Kind: crdt.KindCounter},
			{Name: "tags", Kind: crdt.KindSet},
		}},
		{Name: "empty", Fields: []crdt.SchemaField{}},
	}}
	got := s.Declared()
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Declared (-want +got):\n%s", diff)
	}
	if err := got.Validate(); err != nil {
		t.Errorf("Declared().Validate() = %v", err)
	}
}

// store.ErrInvalidName is crdt's, so a name refused by either matches both.
func TestErrInvalidName(t *testing.T) {
	err := store.ValidName("Bad Name", false)
	if !errors.Is(err, store.ErrInvalidName) || !errors.Is(err, crdt.ErrInvalidName) {
		t.Errorf("ValidName(\"Bad Name\") = %v, want store.ErrInvalidName and crdt.ErrInvalidName", err)
	}
	if store.MaxIDBytes != crdt.MaxIDBytes {
		t.Errorf("store.MaxIDBytes = %d, crdt.MaxIDBytes = %d", store.MaxIDBytes, crdt.MaxIDBytes)
	}
}

// A doc field's column holds its JSON up to DocColumnMaxBytes of state,
// and NULL beyond, while the row still shows the document.
func TestSQLite_DocColumnBound(t *testing.T) {
	ctx := t.Context()
	s, err := store.OpenSQLite(ctx, filepath.Join(t.TempDir(), "uno.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	k := func(id string) crdt.RowKey { return crdt.RowKey{Collection: "notes", Row: id} }
	mustWrite(t, s, func(b *crdt.Builder) error {
		return errors.Join(docWrite(b, k("small"), "body", "hi"),
			docWrite(b, k("large"), "body", strings.Repeat("abcdefghij", store.DocColumnMaxBytes/4)))
	})
	for id, wantNull := range map[string]bool{"small": false, "large": true} {
		var col sql.NullString
		if err := s.DB().QueryRowContext(ctx, `SELECT body FROM notes WHERE id = ?`, id).Scan(&col); err != nil {
			t.Fatal(err)
		}
		if col.Valid == wantNull {
			t.Errorf("%s: column %.40q (valid %v), want NULL %v", id, col.String, col.Valid, wantNull)
		}
		r, err := s.Row(ctx, "notes", id)
		if err != nil {
			t.Fatal(err)
		}
		if v := store.Resolve(nil, "notes", r)["body"]; !strings.HasPrefix(string(v.JSON), `{"text":"`) {
			t.Errorf("%s: the row shows body %.40s, want the document", id, v.JSON)
		}
	}
}

// A query's Known skips decoding the rows the caller holds as of their
// stored state, and only those: a row written since comes back decoded,
// with the state it was decoded from.
func TestSQLite_QueryKnown(t *testing.T) {
	ctx := t.Context()
	s := openSQLite(t, store.Options{})
	for _, id := range []string{"a", "b", "c"} {
		mustWrite(t, s, setJSON("items", id, "v", `1`))
	}
	all, err := s.Query(ctx, store.Query{Collection: "items"})
	if err != nil {
		t.Fatal(err)
	}
	held := map[string][]byte{}
	for _, d := range all {
		if d.Row == nil || d.State == nil {
			t.Fatalf("row %s without Known: Row %v, State %x", d.ID, d.Row, d.State)
		}
		if r, err := crdt.DecodeRow(d.State); err != nil || !cmp.Equal(r, d.Row) {
			t.Fatalf("row %s: State decodes to %v (%v), want %v", d.ID, r, err, d.Row)
		}
		held[d.ID] = d.State
	}
	mustWrite(t, s, setJSON("items", "b", "v", `2`))
	var asked []string
	got, err := s.Query(ctx, store.Query{Collection: "items", Known: func(id string, state []byte) bool {
		asked = append(asked, id)
		return bytes.Equal(held[id], state)
	}})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"a", "b", "c"}, asked); diff != "" {
		t.Errorf("Known asked about (-want +got):\n%s", diff)
	}
	for _, d := range got {
		switch {
		case d.ID == "b" && (d.Row == nil || bytes.Equal(d.State, held["b"])):
			t.Errorf("row b, written since: Row %v, State unchanged %v", d.Row, bytes.Equal(d.State, held["b"]))
		case d.ID == "b":
			if v, _ := d.Row.Field("v"); v == nil || string(winner(v.Register)) != "2" {
				t.Errorf("row b: field v %v, want 2", v)
			}
		case d.Row != nil:
			t.Errorf("row %s, known, came back decoded", d.ID)
		}
	}
}

// winner returns a register's winning value.
func winner(r crdt.Register) []byte {
	e, _ := r.Winner()
	return e.Value
}
