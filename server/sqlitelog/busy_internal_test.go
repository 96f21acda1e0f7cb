package sqlitelog

import (
	"database/sql"
	"errors"
	"path/filepath"
	"testing"
)

// isBusy tells SQLITE_BUSY (a lock held past the busy timeout), which a
// rebuild's swap retries, from other errors.
func TestIsBusy(t *testing.T) {
	path := filepath.Join(t.TempDir(), "busy.db")
	open := func() *sql.DB {
		db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)&_pragma=busy_timeout(0)")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	a, b := open(), open()
	if _, err := a.Exec(`CREATE TABLE t (x)`); err != nil {
		t.Fatal(err)
	}
	tx, err := a.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.Exec(`INSERT INTO t VALUES (1)`); err != nil {
		t.Fatal(err)
	}
	_, err = b.Exec(`INSERT INTO t VALUES (2)`)
	if !isBusy(err) {
		t.Errorf("a write while another holds the lock: %v, want SQLITE_BUSY", err)
	}
	if isBusy(errors.New("other")) || isBusy(nil) {
		t.Error("isBusy of another error")
	}
}
