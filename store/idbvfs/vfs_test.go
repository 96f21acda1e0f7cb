//go:build js

package idbvfs

import (
	"bytes"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/url"
	"strings"
	"sync/atomic"
	"syscall/js"
	"testing"

	"github.com/ncruces/go-sqlite3"
	"github.com/ncruces/go-sqlite3/driver"
	"github.com/ncruces/go-sqlite3/vfs"
)

// newVFS opens a VFS on the IndexedDB database idbName (t.Name() if
// empty) and registers it under a fresh name, which it returns.
func newVFS(t testing.TB, idbName string) (*VFS, string) {
	t.Helper()
	if idbName == "" {
		idbName = t.Name()
	}
	v, err := New(idbName)
	if err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("idbvfs-test-%d", vfsSeq.Add(1))
	vfs.Register(name, v)
	t.Cleanup(func() {
		vfs.Unregister(name)
		if err := v.Close(); err != nil {
			t.Error(err)
		}
	})
	return v, name
}

var vfsSeq atomic.Int64

// openDB opens file on the VFS registered as vfsName, set up like the
// store's browser driver (or in NORMAL locking mode).
func openDB(t testing.TB, vfsName, file string, exclusive bool) *sql.DB {
	t.Helper()
	q := url.Values{}
	q.Set("vfs", vfsName)
	q.Add("_pragma", "busy_timeout(100)")
	if exclusive {
		q.Add("_pragma", "locking_mode(EXCLUSIVE)")
	}
	q.Add("_pragma", "journal_mode(MEMORY)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Set("_txlock", "immediate")
	db, err := driver.Open("file:" + file + "?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	return db
}

func exec(t testing.TB, db *sql.DB, query string, args ...any) {
	t.Helper()
	if _, err := db.Exec(query, args...); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
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

// TestVFS_Reopen: what was committed survives closing the database, and a
// second VFS on the same IndexedDB database (sharing no memory with the
// first) reads it back.
func TestVFS_Reopen(t *testing.T) {
	v1, name1 := newVFS(t, "")
	db := openDB(t, name1, "/app/uno.db", true)
	exec(t, db, `CREATE TABLE t (id INTEGER PRIMARY KEY, b BLOB)`)
	for i := range 50 {
		exec(t, db, `INSERT INTO t (b) VALUES (randomblob(?))`, 100*i)
	}
	var sum1 []byte
	if err := db.QueryRow(`SELECT sha3_agg(b ORDER BY id) FROM t`).Scan(&sum1); err != nil {
		// sha3 may not be compiled in: hash in Go.
		sum1 = tableHash(t, db)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if len(v1.files) != 0 {
		t.Fatalf("closed files still in memory: %d", len(v1.files))
	}
	if ok, err := v1.Access("/app/uno.db", vfs.ACCESS_EXISTS); err != nil || !ok {
		t.Fatalf("Access after close = %v, %v; want true", ok, err)
	}

	_, name2 := newVFS(t, t.Name())
	db2 := openDB(t, name2, "/app/uno.db", true)
	integrity(t, db2)
	if n := count(t, db2, `SELECT count(*) FROM t`); n != 50 {
		t.Fatalf("rows after reopen = %d, want 50", n)
	}
	var sum2 []byte
	if err := db2.QueryRow(`SELECT sha3_agg(b ORDER BY id) FROM t`).Scan(&sum2); err != nil {
		sum2 = tableHash(t, db2)
	}
	if !bytes.Equal(sum1, sum2) {
		t.Fatal("contents differ after reopen")
	}
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

// TestVFS_OneTransactionPerSync: a commit that changes many pages is one
// IndexedDB transaction, and no record exceeds ChunkSize.
func TestVFS_OneTransactionPerSync(t *testing.T) {
	v, name := newVFS(t, "")
	db := openDB(t, name, "big.db", true)
	exec(t, db, `CREATE TABLE t (id INTEGER PRIMARY KEY, b BLOB)`)
	before := v.commits
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	for range 200 {
		if _, err := tx.Exec(`INSERT INTO t (b) VALUES (randomblob(1000))`); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if got := v.commits - before; got != 1 {
		t.Errorf("IndexedDB transactions for one commit = %d, want 1", got)
	}
	var size int64
	if err := db.QueryRow(`SELECT page_count * page_size FROM pragma_page_count, pragma_page_size`).Scan(&size); err != nil {
		t.Fatal(err)
	}
	if size < 200_000 {
		t.Fatalf("database of %d bytes: want more than 200 KB", size)
	}
	lens := storedChunks(t, v, "big.db")
	if want := int(chunkCount(size)); len(lens) != want {
		t.Errorf("stored chunks = %d, want %d", len(lens), want)
	}
	for i, n := range lens {
		if n > ChunkSize {
			t.Errorf("chunk %d has %d bytes, over %d", i, n, ChunkSize)
		}
	}
}

// storedChunks reads the lengths of file name's chunk records from
// IndexedDB, in key order.
func storedChunks(t testing.TB, v *VFS, name string) []int {
	t.Helper()
	tx, err := transaction(v.idb, false)
	if err != nil {
		t.Fatal(err)
	}
	rng, err := chunkRange(name)
	if err != nil {
		t.Fatal(err)
	}
	req := tx.Call("objectStore", chunksStore).Call("getAll", rng)
	if err := await(tx, "complete", "abort"); err != nil {
		t.Fatal(err)
	}
	res := req.Get("result")
	lens := make([]int, res.Length())
	for i := range lens {
		lens[i] = res.Index(i).Get("byteLength").Int()
	}
	return lens
}

// TestVFS_SyncFailure is the negative control: when the IndexedDB
// transaction aborts, Sync fails, the commit fails, and IndexedDB keeps
// the previous commit whole.
func TestVFS_SyncFailure(t *testing.T) {
	v, name := newVFS(t, "")
	db := openDB(t, name, "fail.db", true)
	exec(t, db, `CREATE TABLE t (id INTEGER PRIMARY KEY, b BLOB)`)
	exec(t, db, `INSERT INTO t (b) VALUES (randomblob(5000))`)

	var aborted int
	v.beforeCommit = func(tx js.Value) {
		aborted++
		tx.Call("abort")
	}
	_, err := db.Exec(`INSERT INTO t (b) VALUES (randomblob(50000))`)
	v.beforeCommit = nil
	if err == nil {
		t.Fatal("commit succeeded though its IndexedDB transaction aborted")
	}
	if aborted == 0 {
		t.Fatal("no IndexedDB transaction was attempted")
	}
	if !errors.Is(err, sqlite3.IOERR) {
		t.Errorf("commit error = %v, want an I/O error", err)
	}
	// The connection goes on: the failed commit rolled back.
	if n := count(t, db, `SELECT count(*) FROM t`); n != 1 {
		t.Fatalf("rows after the failed commit = %d, want 1", n)
	}
	exec(t, db, `INSERT INTO t (b) VALUES (randomblob(7000))`)

	_, name2 := newVFS(t, t.Name())
	db2 := openDB(t, name2, "fail.db", true)
	integrity(t, db2)
	if n := count(t, db2, `SELECT count(*) FROM t`); n != 2 {
		t.Fatalf("rows read back = %d, want 2", n)
	}
	if n := count(t, db2, `SELECT count(*) FROM t WHERE length(b) = 50000`); n != 0 {
		t.Fatal("the aborted commit's row reached IndexedDB")
	}
}

// TestFile_Sync drives a file directly: an aborted Sync reports
// ErrAborted and keeps the changes dirty; the next Sync writes them.
func TestFile_Sync(t *testing.T) {
	v, _ := newVFS(t, "")
	f, _, err := v.Open("f", vfs.OPEN_MAIN_DB|vfs.OPEN_CREATE|vfs.OPEN_READWRITE)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	page := bytes.Repeat([]byte{7}, 4096)
	if _, err := f.WriteAt(page, 3*ChunkSize); err != nil {
		t.Fatal(err)
	}
	v.beforeCommit = func(tx js.Value) { tx.Call("abort") }
	if err := f.Sync(vfs.SYNC_FULL); !errors.Is(err, ErrAborted) {
		t.Fatalf("Sync with an aborted transaction = %v, want ErrAborted", err)
	}
	v.beforeCommit = nil
	if err := f.Sync(vfs.SYNC_FULL); err != nil {
		t.Fatal(err)
	}
	v2, _ := newVFS(t, t.Name())
	g, _, err := v2.Open("f", vfs.OPEN_MAIN_DB|vfs.OPEN_READWRITE)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	size := int64(3*ChunkSize + len(page))
	if got, _ := g.Size(); got != size {
		t.Fatalf("size = %d, want %d", got, size)
	}
	got := make([]byte, size)
	if _, err := g.ReadAt(got, 0); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, append(make([]byte, 3*ChunkSize), page...)) {
		t.Error("contents differ")
	}
	// Reading past the end: the bytes there, then io.EOF.
	if n, err := g.ReadAt(make([]byte, 2*len(page)), 3*ChunkSize); n != len(page) || err != io.EOF {
		t.Errorf("ReadAt across the end = %d, %v; want %d, EOF", n, err, len(page))
	}
}

// TestFile_Truncate: chunks cut by a truncation do not come back when the
// file grows again, in memory or from IndexedDB.
func TestFile_Truncate(t *testing.T) {
	v, _ := newVFS(t, "")
	f, _, err := v.Open("f", vfs.OPEN_MAIN_DB|vfs.OPEN_CREATE|vfs.OPEN_READWRITE)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(bytes.Repeat([]byte{1}, 4*ChunkSize), 0); err != nil {
		t.Fatal(err)
	}
	sync := func() {
		t.Helper()
		if err := f.Sync(vfs.SYNC_NORMAL); err != nil {
			t.Fatal(err)
		}
	}
	sync()
	half := int64(ChunkSize + ChunkSize/2)
	if err := f.Truncate(half); err != nil {
		t.Fatal(err)
	}
	sync()
	if n := len(storedChunks(t, v, "f")); n != 2 {
		t.Errorf("stored chunks after truncation = %d, want 2", n)
	}
	if err := f.Truncate(4 * ChunkSize); err != nil {
		t.Fatal(err)
	}
	sync()
	want := append(bytes.Repeat([]byte{1}, int(half)), make([]byte, 4*ChunkSize-half)...)
	check := func(f vfs.File) {
		t.Helper()
		got := make([]byte, 4*ChunkSize)
		if _, err := f.ReadAt(got, 0); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Error("truncated bytes came back")
		}
	}
	check(f)
	f.Close()
	v2, _ := newVFS(t, t.Name())
	g, _, err := v2.Open("f", vfs.OPEN_MAIN_DB|vfs.OPEN_READWRITE)
	if err != nil {
		t.Fatal(err)
	}
	check(g)
	if err := v2.Delete("f", false); err == nil {
		t.Error("Delete of an open file succeeded")
	}
	g.Close()
	if err := v2.Delete("f", false); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if err := v2.Delete("f", false); !errors.Is(err, sqlite3.IOERR_DELETE_NOENT) {
		t.Errorf("second Delete = %v, want IOERR_DELETE_NOENT", err)
	}
	if ok, err := v2.Access("f", vfs.ACCESS_EXISTS); ok || err != nil {
		t.Errorf("Access after Delete = %v, %v; want false", ok, err)
	}
	if _, _, err := v2.Open("f", vfs.OPEN_MAIN_DB|vfs.OPEN_READWRITE); err == nil {
		t.Error("Open without OPEN_CREATE of a deleted file succeeded")
	}
	if n := len(storedChunks(t, v2, "f")); n != 0 {
		t.Errorf("chunks left after Delete: %d", n)
	}
}

// TestVFS_Journals: rollback journals and WAL files are refused; temporary
// files stay in memory.
func TestVFS_Journals(t *testing.T) {
	v, name := newVFS(t, "")
	for _, fl := range []vfs.OpenFlag{vfs.OPEN_MAIN_JOURNAL, vfs.OPEN_WAL, vfs.OPEN_SUPER_JOURNAL} {
		if _, _, err := v.Open("x-journal", fl|vfs.OPEN_CREATE|vfs.OPEN_READWRITE); !errors.Is(err, ErrUnsupported) {
			t.Errorf("Open(%#x) = %v, want ErrUnsupported", fl, err)
		}
	}
	// WAL cannot be turned on; a big sort spills to a temporary file.
	db := openDB(t, name, "j.db", true)
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
	exec(t, db, `INSERT INTO t SELECT randomblob(500) FROM generate_series(1, 2000)`)
	if n := count(t, db, `SELECT count(*) FROM (SELECT b FROM t ORDER BY b)`); n != 2000 {
		t.Fatalf("sorted %d rows", n)
	}
	integrity(t, db)
}

// TestVFS_TwoConnections: connections of one VFS share the file and lock
// it; in EXCLUSIVE locking mode the first one keeps others out.
func TestVFS_TwoConnections(t *testing.T) {
	_, name := newVFS(t, "")
	a := openDB(t, name, "two.db", false)
	b := openDB(t, name, "two.db", false)
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
	if _, err := b.Exec(`INSERT INTO t VALUES (4)`); !errors.Is(err, sqlite3.BUSY) {
		t.Errorf("write during another's transaction = %v, want BUSY", err)
	}
	if n := count(t, b, `SELECT sum(x) FROM t`); n != 3 {
		t.Errorf("read during another's transaction: sum = %d, want 3", n)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}

	c := openDB(t, name, "excl.db", true)
	exec(t, c, `CREATE TABLE t (x)`)
	d := openDB(t, name, "excl.db", false)
	if _, err := d.Exec(`SELECT * FROM t`); !errors.Is(err, sqlite3.BUSY) {
		t.Errorf("read of a database held in EXCLUSIVE mode = %v, want BUSY", err)
	}
}

// TestVFS_ManyTransactions: a random mix of inserts, updates, deletes and
// VACUUMs (which shrink the file), some rolled back, leaves a database
// that passes integrity_check and holds exactly the committed rows, in
// memory and read back from IndexedDB.
func TestVFS_ManyTransactions(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	_, name := newVFS(t, "")
	db := openDB(t, name, "many.db", true)
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
		// Later operations overwrote earlier ones on the same id in changes.
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
	_, name2 := newVFS(t, t.Name())
	db.Close()
	check(openDB(t, name2, "many.db", true))
}

// BenchmarkCommit measures single-row commits in each locking mode (under
// Node with fake-indexeddb, which says little about a browser).
func BenchmarkCommit(b *testing.B) {
	for _, exclusive := range []bool{false, true} {
		b.Run(fmt.Sprintf("exclusive=%v", exclusive), func(b *testing.B) {
			_, name := newVFS(b, strings.ReplaceAll(b.Name(), "/", "-"))
			db := openDB(b, name, "bench.db", exclusive)
			exec(b, db, `CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, b BLOB)`)
			for b.Loop() {
				exec(b, db, `INSERT INTO t (b) VALUES (randomblob(100))`)
			}
		})
	}
}
