package walfill_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	_ "modernc.org/sqlite"

	"github.com/unosync/uno/internal/walfill"
)

func open(t *testing.T, path, pragmas string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)"+pragmas)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func insert(t *testing.T, db *sql.DB, from, to, size int) {
	t.Helper()
	for i := from; i < to; i++ {
		if _, err := db.Exec(`INSERT INTO t (id, v) VALUES (?, ?)`, i, strings.Repeat("x", size)); err != nil {
			t.Fatal(err)
		}
	}
}

func walSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path + "-wal")
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// crashImage copies the database and its log as a crash would leave them
// (no checkpoint, no close) and opens the copy.
func crashImage(t *testing.T, path string) *sql.DB {
	t.Helper()
	dir := t.TempDir()
	for _, suffix := range []string{"", "-wal"} {
		b, err := os.ReadFile(path + suffix)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "copy.db"+suffix), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return open(t, filepath.Join(dir, "copy.db"), "")
}

func check(t *testing.T, db *sql.DB, rows int) {
	t.Helper()
	var n int
	var ok string
	if err := db.QueryRow(`SELECT count(*) FROM t`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow(`PRAGMA integrity_check`).Scan(&ok); err != nil {
		t.Fatal(err)
	}
	if n != rows || ok != "ok" {
		t.Errorf("%d rows, integrity %q; want %d, ok", n, ok, rows)
	}
}

// Commits before and after the log is extended, and after SQLite wraps
// around to its start (overwriting the zeros and its own old frames), are
// all there when the database is opened from a crash image.
func TestPrefill_KeepsEveryCommit(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "a.db")
	db := open(t, path, "")
	if _, err := db.Exec(`CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)`); err != nil {
		t.Fatal(err)
	}
	insert(t, db, 0, 10, 100)
	before := walSize(t, path)
	const size = 2 << 20
	if err := walfill.Prefill(ctx, db, path, size); err != nil {
		t.Fatal(err)
	}
	if got := walSize(t, path); got != size {
		t.Fatalf("log of %d bytes after Prefill, want %d (it was %d)", got, size, before)
	}
	check(t, crashImage(t, path), 10)

	insert(t, db, 10, 20, 100)
	if got := walSize(t, path); got != size {
		t.Errorf("log of %d bytes after commits into the zeros, want %d", got, size)
	}
	check(t, crashImage(t, path), 20)

	// Past the automatic checkpoint (1,000 pages): SQLite starts the log
	// over from its beginning.
	insert(t, db, 20, 1520, 3000)
	if got := walSize(t, path); got > 1200*4096 {
		t.Fatalf("log of %d bytes after 1,500 pages: SQLite never started it over", got)
	}
	check(t, crashImage(t, path), 1520)
	check(t, db, 1520)

	// A log already as long is left alone.
	was := walSize(t, path)
	if err := walfill.Prefill(ctx, db, path, 1<<20); err != nil {
		t.Fatal(err)
	}
	if got := walSize(t, path); got != was {
		t.Errorf("log of %d bytes after a Prefill to less, want %d", got, was)
	}
}

// Prefill writes only while it holds the write lock: with another
// connection writing, it waits (here, with no busy timeout, it fails)
// rather than extend the log under that writer.
func TestPrefill_TakesTheWriteLock(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "a.db")
	writer := open(t, path, "")
	if _, err := writer.Exec(`CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)`); err != nil {
		t.Fatal(err)
	}
	conn, err := writer.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `BEGIN IMMEDIATE`); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(ctx, `INSERT INTO t (id, v) VALUES (1, 'x')`); err != nil {
		t.Fatal(err)
	}
	other := open(t, path, "&_pragma=busy_timeout(0)")
	before := walSize(t, path)
	err = walfill.Prefill(ctx, other, path, 1<<20)
	if err == nil || !strings.Contains(err.Error(), "locked") && !strings.Contains(err.Error(), "busy") {
		t.Fatalf("Prefill with another writer: %v, want the database busy", err)
	}
	if got := walSize(t, path); got != before {
		t.Errorf("log of %d bytes, want %d: Prefill wrote under another writer", got, before)
	}
	if _, err := conn.ExecContext(ctx, `COMMIT`); err != nil {
		t.Fatal(err)
	}
	if err := walfill.Prefill(ctx, other, path, 1<<20); err != nil {
		t.Fatal(fmt.Errorf("after the writer committed: %w", err))
	}
	check(t, crashImage(t, path), 1)
}
