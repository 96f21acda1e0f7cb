//go:build js

package sqlitejs

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"database/sql"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"syscall/js"
	"testing"

	"github.com/unosync/uno/internal/jspromise"
)

// The tests run under Node with fake-indexeddb (wasm/test/go_js_wasm_exec):
//
//	GOOS=js GOARCH=wasm go test -exec "$PWD/wasm/test/go_js_wasm_exec" ./store/sqlitejs

// openTest opens file set up like the store's browser database (or in
// NORMAL locking mode).
func openTest(t testing.TB, file string, exclusive bool) *sql.DB {
	t.Helper()
	init := []string{"PRAGMA busy_timeout = 100", "PRAGMA journal_mode = MEMORY", "PRAGMA synchronous = FULL"}
	if exclusive {
		init = append(init, "PRAGMA locking_mode = EXCLUSIVE")
	}
	db := Open(file, init...)
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	return db
}

func testEngine(t testing.TB) *engine {
	t.Helper()
	e, err := loadEngine()
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// series(a, b) is a table of the integers a to b, in column value.
func series(a, b int) string {
	return fmt.Sprintf("(WITH RECURSIVE s(value) AS (SELECT %d UNION ALL SELECT value + 1 FROM s WHERE value < %d) SELECT value FROM s)", a, b)
}

func exec(t testing.TB, db *sql.DB, query string, args ...any) sql.Result {
	t.Helper()
	res, err := db.Exec(query, args...)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return res
}

func integrity(t testing.TB, db *sql.DB) {
	t.Helper()
	var s string
	if err := db.QueryRow(`PRAGMA integrity_check`).Scan(&s); err != nil {
		t.Fatal(err)
	}
	if s != "ok" {
		t.Fatalf("integrity_check: %s", s)
	}
}

func count(t testing.TB, db *sql.DB, query string) int {
	t.Helper()
	var n int
	if err := db.QueryRow(query).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

func tableHash(t testing.TB, db *sql.DB) []byte {
	t.Helper()
	rows, err := db.Query(`SELECT id, b FROM t ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	h := sha256.New()
	for rows.Next() {
		var id int64
		var b []byte
		if err := rows.Scan(&id, &b); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(h, "%d:%d:", id, len(b))
		h.Write(b)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return h.Sum(nil)
}

// inMemory reports whether the engine holds file name in memory (open).
func inMemory(t testing.TB, name string) bool {
	return testEngine(t).v.Get("files").Call("has", name).Bool()
}

// storedChunks reads the lengths of file name's chunk records from
// IndexedDB, in key order.
var storedChunksJS = js.Global().Get("Function").New("idb", "name", `
	return new Promise((resolve, reject) => {
		const r = idb.transaction(['chunks'], 'readonly').objectStore('chunks')
			.getAll(IDBKeyRange.bound([name, 0], [name, Infinity]));
		r.onsuccess = () => resolve(r.result.map((c) => c.byteLength));
		r.onerror = () => reject(r.error);
	});`)

func storedChunks(t testing.TB, name string) []int {
	t.Helper()
	v, err := jspromise.Await(storedChunksJS.Invoke(testEngine(t).v.Get("idb"), name))
	if err != nil {
		t.Fatal(err)
	}
	lens := make([]int, v.Length())
	for i := range lens {
		lens[i] = v.Index(i).Int()
	}
	return lens
}

func commits(t testing.TB) int { return testEngine(t).v.Get("commits").Int() }

// TestReopen: what was committed survives closing the database, which
// drops it from memory, and is read back from IndexedDB.
func TestReopen(t *testing.T) {
	db := openTest(t, "/app/uno.db", true)
	exec(t, db, `CREATE TABLE t (id INTEGER PRIMARY KEY, b BLOB)`)
	for i := range 50 {
		exec(t, db, `INSERT INTO t (b) VALUES (randomblob(?))`, 100*i)
	}
	sum1 := tableHash(t, db)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if inMemory(t, "/app/uno.db") {
		t.Fatal("a closed file is still in memory")
	}
	db2 := openTest(t, "/app/uno.db", true)
	integrity(t, db2)
	if n := count(t, db2, `SELECT count(*) FROM t`); n != 50 {
		t.Fatalf("rows after reopen = %d, want 50", n)
	}
	if !bytes.Equal(sum1, tableHash(t, db2)) {
		t.Fatal("contents differ after reopen")
	}
}

// TestOneTransactionPerCommit: a commit that changes many pages is one
// IndexedDB transaction, of chunks no larger than CHUNK.
func TestOneTransactionPerCommit(t *testing.T) {
	db := openTest(t, "big.db", true)
	exec(t, db, `CREATE TABLE t (id INTEGER PRIMARY KEY, b BLOB)`)
	before := commits(t)
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	for range 200 {
		if _, err := tx.Exec(`INSERT INTO t (b) VALUES (randomblob(1000))`); err != nil {
			t.Fatal(err)
		}
	}
	if got := commits(t) - before; got != 0 {
		t.Errorf("IndexedDB transactions before the commit = %d, want 0", got)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if got := commits(t) - before; got != 1 {
		t.Errorf("IndexedDB transactions for one commit = %d, want 1", got)
	}
	size := count(t, db, `SELECT page_count * page_size FROM pragma_page_count, pragma_page_size`)
	if size < 200_000 {
		t.Fatalf("database of %d bytes: want more than 200 KB", size)
	}
	const chunk = 16 << 10
	lens := storedChunks(t, "big.db")
	if want := (size + chunk - 1) / chunk; len(lens) != want {
		t.Errorf("stored chunks = %d, want %d", len(lens), want)
	}
	for i, n := range lens {
		if n > chunk {
			t.Errorf("chunk %d has %d bytes, over %d", i, n, chunk)
		}
	}
}

// TestCommitNotSaved is the negative control: when the IndexedDB
// transaction aborts, the commit fails with ErrNotSaved, the connection
// is discarded, and IndexedDB keeps the previous commit whole, which the
// next connection reads.
func TestCommitNotSaved(t *testing.T) {
	db := openTest(t, "fail.db", true)
	exec(t, db, `CREATE TABLE t (id INTEGER PRIMARY KEY, b BLOB)`)
	exec(t, db, `INSERT INTO t (b) VALUES (randomblob(5000))`)

	e := testEngine(t)
	aborted := 0
	abort := js.FuncOf(func(_ js.Value, a []js.Value) any {
		aborted++
		a[0].Call("abort")
		return nil
	})
	defer abort.Release()
	e.v.Set("beforeCommit", abort)
	_, err := db.Exec(`INSERT INTO t (b) VALUES (randomblob(50000))`)
	tx, _ := db.Begin()
	_, err2 := tx.Exec(`INSERT INTO t (b) VALUES (randomblob(60000))`)
	err3 := tx.Commit()
	e.v.Set("beforeCommit", js.Null())
	if aborted != 2 {
		t.Fatalf("IndexedDB transactions attempted = %d, want 2", aborted)
	}
	for _, err := range []error{err, err3} {
		if !errors.Is(err, ErrNotSaved) {
			t.Errorf("commit error = %v, want ErrNotSaved", err)
		}
	}
	if err2 != nil {
		t.Fatal(err2)
	}
	if n := count(t, db, `SELECT count(*) FROM t`); n != 1 {
		t.Fatalf("rows after the failed commits = %d, want 1", n)
	}
	exec(t, db, `INSERT INTO t (b) VALUES (randomblob(7000))`)
	db.Close()
	db2 := openTest(t, "fail.db", true)
	integrity(t, db2)
	if n := count(t, db2, `SELECT count(*) FROM t`); n != 2 {
		t.Fatalf("rows read back = %d, want 2", n)
	}
	if n := count(t, db2, `SELECT count(*) FROM t WHERE length(b) >= 50000`); n != 0 {
		t.Fatal("an aborted commit's row reached IndexedDB")
	}
}

// TestJournals: WAL cannot be turned on, the journal stays in memory, and
// a big sort spills to a temporary file that stays in memory.
func TestJournals(t *testing.T) {
	db := openTest(t, "j.db", true)
	var mode string
	if err := db.QueryRow(`PRAGMA journal_mode = WAL`).Scan(&mode); err == nil {
		t.Errorf("PRAGMA journal_mode = WAL succeeded: %s", mode)
	}
	if err := db.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "memory" {
		t.Errorf("journal_mode = %q, %v; want memory", mode, err)
	}
	exec(t, db, `PRAGMA temp_store = FILE`)
	exec(t, db, `PRAGMA cache_size = 10`)
	exec(t, db, `CREATE TABLE t (b BLOB)`)
	exec(t, db, `INSERT INTO t SELECT randomblob(500) FROM `+series(1, 2000))
	if n := count(t, db, `SELECT count(*) FROM (SELECT b FROM t ORDER BY b)`); n != 2000 {
		t.Fatalf("sorted %d rows", n)
	}
	integrity(t, db)
}

// TestTwoConnections: connections to one file share it and lock it; in
// EXCLUSIVE locking mode the first one keeps others out.
func TestTwoConnections(t *testing.T) {
	a := openTest(t, "two.db", false)
	b := openTest(t, "two.db", false)
	exec(t, a, `CREATE TABLE t (x)`)
	exec(t, a, `INSERT INTO t VALUES (1)`)
	exec(t, b, `INSERT INTO t VALUES (2)`)
	if n := count(t, a, `SELECT sum(x) FROM t`); n != 3 {
		t.Fatalf("sum = %d, want 3", n)
	}
	tx, err := a.Begin() // IMMEDIATE: holds RESERVED
	if err != nil {
		t.Fatal(err)
	}
	var se *Error
	if _, err := b.Exec(`INSERT INTO t VALUES (4)`); !errors.As(err, &se) || se.Code&0xff != 5 {
		t.Errorf("write during another's transaction = %v, want BUSY", err)
	}
	if n := count(t, b, `SELECT sum(x) FROM t`); n != 3 {
		t.Errorf("read during another's transaction: sum = %d, want 3", n)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}

	c := openTest(t, "excl.db", true)
	exec(t, c, `CREATE TABLE t (x)`)
	d := openTest(t, "excl.db", false)
	if _, err := d.Exec(`SELECT * FROM t`); !errors.As(err, &se) || se.Code&0xff != 5 {
		t.Errorf("read of a database held in EXCLUSIVE mode = %v, want BUSY", err)
	}
}

// TestValues: every type the store binds comes back as it went in,
// including the encoding's edges (int32 and int64 bounds, empty text and
// blobs against NULL, multi-byte text, a value larger than the buffers).
func TestValues(t *testing.T) {
	db := openTest(t, "values.db", true)
	exec(t, db, `CREATE TABLE v (id INTEGER PRIMARY KEY, x)`)
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<17) // 2 MiB
	in := []any{
		nil, int64(0), int64(math.MaxInt32), int64(math.MinInt32), int64(math.MaxInt32) + 1,
		int64(math.MinInt64), int64(math.MaxInt64), 1.5, math.Inf(-1), "", "héllo, 世界",
		[]byte{}, []byte{0, 1, 2}, string(big), big, true,
	}
	for i, v := range in {
		exec(t, db, `INSERT INTO v VALUES (?, ?)`, i, v)
	}
	rows, err := db.Query(`SELECT x, typeof(x) FROM v ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for i := 0; rows.Next(); i++ {
		var got any
		var typ string
		if err := rows.Scan(&got, &typ); err != nil {
			t.Fatal(err)
		}
		want := in[i]
		if want == true {
			want = int64(1)
		}
		if _, ok := want.(string); ok && typ != "text" {
			t.Errorf("value %d: %s, want text", i, typ)
		}
		if _, ok := want.([]byte); ok && typ != "blob" {
			t.Errorf("value %d: %s, want blob", i, typ)
		}
		if g, w := fmt.Sprintf("%T %v", got, got), fmt.Sprintf("%T %v", want, want); g != w {
			t.Errorf("value %d = %.60s (%s), want %.60s", i, g, typ, w)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`SELECT 1; SELECT 2`, 1); err == nil || !strings.Contains(err.Error(), "more than one statement") {
		t.Errorf("two statements with arguments = %v", err)
	}
	exec(t, db, `CREATE TABLE a (x); CREATE TABLE b (x); INSERT INTO b VALUES (7)`)
	if n := count(t, db, `SELECT x FROM b`); n != 7 {
		t.Errorf("multi-statement exec: %d", n)
	}
	res := exec(t, db, `INSERT INTO a VALUES (1), (2), (3)`)
	if n, _ := res.RowsAffected(); n != 3 {
		t.Errorf("RowsAffected = %d, want 3", n)
	}
	res = exec(t, db, `INSERT INTO v (x) VALUES (?)`, "last")
	if id, err := res.LastInsertId(); err != nil || id != int64(len(in)) {
		t.Errorf("LastInsertId = %d, %v; want %d", id, err, len(in))
	}
	if _, err := db.Exec(`INSERT INTO nope VALUES (?)`, 1); err == nil || !strings.Contains(err.Error(), "no such table: nope") {
		t.Errorf("error = %v, want SQLite's message", err)
	}
}

// TestManyRows reads more rows than one fetch carries, and stops early.
func TestManyRows(t *testing.T) {
	db := openTest(t, "rows.db", true)
	exec(t, db, `CREATE TABLE t (id INTEGER PRIMARY KEY, s TEXT)`)
	exec(t, db, `INSERT INTO t SELECT value, printf('%0100d', value) FROM `+series(1, 5000))
	rows, err := db.Query(`SELECT id, s FROM t ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for rows.Next() {
		var id int
		var s string
		if err := rows.Scan(&id, &s); err != nil {
			t.Fatal(err)
		}
		if n++; id != n || s != fmt.Sprintf("%0100d", n) {
			t.Fatalf("row %d: %d %q", n, id, s)
		}
	}
	if err := rows.Err(); err != nil || n != 5000 {
		t.Fatalf("rows = %d, %v; want 5000", n, err)
	}
	rows, err = db.Query(`SELECT id FROM t`)
	if err != nil {
		t.Fatal(err)
	}
	rows.Next()
	if err := rows.Close(); err != nil {
		t.Fatal(err)
	}
	exec(t, db, `DELETE FROM t`) // the statement was reset: no lock held
}

// TestManyTransactions: a random mix of inserts, updates, deletes and
// VACUUMs (which shrink the file), some rolled back, leaves a database
// that passes integrity_check and holds exactly the committed rows, in
// memory and read back from IndexedDB.
func TestManyTransactions(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	db := openTest(t, "many.db", true)
	exec(t, db, `CREATE TABLE t (id INTEGER PRIMARY KEY, b BLOB)`)
	model := map[int64]int{} // id → blob length
	next := int64(1)
	for i := range 300 {
		tx, err := db.Begin()
		if err != nil {
			t.Fatal(err)
		}
		changes := map[int64]int{} // id → new length, or -1 if deleted
		for range 1 + rng.IntN(8) {
			switch k := rng.IntN(10); {
			case k < 5 || len(model) == 0:
				n := rng.IntN(20000)
				if _, err := tx.Exec(`INSERT INTO t (id, b) VALUES (?, randomblob(?))`, next, n); err != nil {
					t.Fatal(err)
				}
				changes[next] = n
				next++
			case k < 8:
				id := int64(1 + rng.IntN(int(next-1)))
				n := rng.IntN(3000)
				res, err := tx.Exec(`UPDATE t SET b = randomblob(?) WHERE id = ?`, n, id)
				if err != nil {
					t.Fatal(err)
				}
				if m, _ := res.RowsAffected(); m == 1 {
					changes[id] = n
				}
			default:
				id := int64(1 + rng.IntN(int(next-1)))
				if _, err := tx.Exec(`DELETE FROM t WHERE id >= ? AND id < ?`, id, id+5); err != nil {
					t.Fatal(err)
				}
				for j := id; j < id+5; j++ {
					changes[j] = -1
				}
			}
		}
		if rng.IntN(10) == 0 {
			if err := tx.Rollback(); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		for id, n := range changes {
			if n < 0 {
				delete(model, id)
			} else {
				model[id] = n
			}
		}
		if i%60 == 59 {
			exec(t, db, `VACUUM`)
		}
	}
	check := func(db *sql.DB) {
		t.Helper()
		integrity(t, db)
		rows, err := db.Query(`SELECT id, length(b) FROM t`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		got := map[int64]int{}
		for rows.Next() {
			var id int64
			var n int
			if err := rows.Scan(&id, &n); err != nil {
				t.Fatal(err)
			}
			got[id] = n
		}
		if len(got) != len(model) {
			t.Fatalf("%d rows, want %d", len(got), len(model))
		}
		for id, n := range model {
			if got[id] != n {
				t.Fatalf("row %d: %d bytes, want %d", id, got[id], n)
			}
		}
	}
	check(db)
	db.Close()
	if inMemory(t, "many.db") {
		t.Fatal("a closed file is still in memory")
	}
	check(openTest(t, "many.db", true))
}

// TestRemove deletes a closed file from IndexedDB, and refuses an open one.
func TestRemove(t *testing.T) {
	db := openTest(t, "gone.db", true)
	exec(t, db, `CREATE TABLE t (x)`)
	if _, err := Remove("gone.db"); err == nil {
		t.Error("Remove of an open file succeeded")
	}
	db.Close()
	if ok, err := Remove("gone.db"); !ok || err != nil {
		t.Fatalf("Remove = %v, %v", ok, err)
	}
	if n := len(storedChunks(t, "gone.db")); n != 0 {
		t.Errorf("chunks left after Remove: %d", n)
	}
	if ok, err := Remove("gone.db"); ok || err != nil {
		t.Errorf("second Remove = %v, %v; want false", ok, err)
	}
}

// BenchmarkInsert1000 is 1,000-row transactions of four columns (under
// Node with fake-indexeddb, which says little about a browser's IndexedDB).
func BenchmarkInsert1000(b *testing.B) {
	db := openTest(b, "bench.db", true)
	exec(b, db, `CREATE TABLE IF NOT EXISTS t (id TEXT PRIMARY KEY, title TEXT, done INT, rank INT)`)
	n := 0
	for b.Loop() {
		tx, err := db.Begin()
		if err != nil {
			b.Fatal(err)
		}
		for i := range 1000 {
			n++
			if _, err := tx.Exec(`INSERT INTO t VALUES (?, ?, ?, ?)`, fmt.Sprint("r", n), "row", false, i); err != nil {
				b.Fatal(err)
			}
		}
		if err := tx.Commit(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "rows/s")
}

// TestColumnsAfterSchemaChange: a prepared statement's column names are
// cached until SQLite prepares it again after a schema change.
func TestColumnsAfterSchemaChange(t *testing.T) {
	db := openTest(t, "cols.db", true)
	exec(t, db, `CREATE TABLE t (a, b)`)
	exec(t, db, `INSERT INTO t VALUES (1, 2)`)
	st, err := db.Prepare(`SELECT * FROM t`)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cols := func() string {
		t.Helper()
		rows, err := st.Query()
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		c, err := rows.Columns()
		if err != nil {
			t.Fatal(err)
		}
		return strings.Join(c, ",")
	}
	if got := cols(); got != "a,b" {
		t.Fatalf("columns = %s, want a,b", got)
	}
	exec(t, db, `ALTER TABLE t ADD COLUMN c`)
	if got := cols(); got != "a,b,c" {
		t.Fatalf("columns after ALTER TABLE = %s, want a,b,c", got)
	}
}

// idbvfsV1 is a database as package idbvfs (the Go VFS of the browser
// build before this package) stored it in IndexedDB: table t of rows 1 to
// 30, row i holding "row i-1" and 600×(i-1) zero bytes, in 31 chunks.
//
//go:embed testdata/idbvfs-v1.json.gz
var idbvfsV1 []byte

var putRecordsJS = js.Global().Get("Function").New("idb", "name", "meta", "chunks", `
	return new Promise((resolve, reject) => {
		const tx = idb.transaction(['files', 'chunks'], 'readwrite');
		tx.objectStore('files').put(meta, name);
		for (const [i, bytes] of chunks) tx.objectStore('chunks').put(bytes, [name, i]);
		tx.oncomplete = () => resolve();
		tx.onabort = () => reject(tx.error);
	});`)

// TestReadsIdbvfsFiles: databases the browser build stored before this
// package (same object stores, same chunks) open and read whole.
func TestReadsIdbvfsFiles(t *testing.T) {
	zr, err := gzip.NewReader(bytes.NewReader(idbvfsV1))
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Name        string
		Size, Chunk int
		Chunks      []struct {
			Index int
			Bytes []byte
		}
	}
	if err := json.NewDecoder(zr).Decode(&f); err != nil {
		t.Fatal(err)
	}
	chunks := make([]any, len(f.Chunks))
	for i, c := range f.Chunks {
		a := js.Global().Get("Uint8Array").New(len(c.Bytes))
		js.CopyBytesToJS(a, c.Bytes)
		chunks[i] = []any{c.Index, a}
	}
	meta := map[string]any{"size": f.Size, "chunk": f.Chunk}
	if _, err := jspromise.Await(putRecordsJS.Invoke(testEngine(t).v.Get("idb"), f.Name, meta, chunks)); err != nil {
		t.Fatal(err)
	}
	db := openTest(t, f.Name, true)
	integrity(t, db)
	rows, err := db.Query(`SELECT id, s, length(b) FROM t ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var id, size int
		var s string
		if err := rows.Scan(&id, &s, &size); err != nil {
			t.Fatal(err)
		}
		n++
		if id != n || s != fmt.Sprintf("row %d", n-1) || size != 600*(n-1) {
			t.Fatalf("row %d = %d %q %d", n, id, s, size)
		}
	}
	if err := rows.Err(); err != nil || n != 30 {
		t.Fatalf("%d rows, %v; want 30", n, err)
	}
	// It takes writes, and keeps them.
	exec(t, db, `INSERT INTO t (s) VALUES ('new')`)
	db.Close()
	if n := count(t, openTest(t, f.Name, true), `SELECT count(*) FROM t`); n != 31 {
		t.Fatalf("rows after a write and reopening = %d, want 31", n)
	}
}
