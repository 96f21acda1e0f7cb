//go:build !js

package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"

	"modernc.org/sqlite" // registers the "sqlite" driver
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/unosync/uno/internal/walfill"
)

// prefillWAL extends the store's write-ahead log to WALPrefill bytes
// (package walfill). It pays at every synchronous level: a commit's fsync
// has no growth to journal, and at NORMAL, where commits do not sync,
// writing into allocated blocks still spares the kernel's allocation on
// every commit (the editing trace at NORMAL: 124k → 198k edits/s).
func prefillWAL(ctx context.Context, db *sql.DB, path string) error {
	return walfill.Prefill(ctx, db, path, WALPrefill)
}

// walJournal: the journal is a WAL, so synchronous=NORMAL commits without syncing.
const walJournal = true

// openDB opens the SQLite database at path with modernc.org/sqlite (pure
// Go, no cgo). Everything driver-specific lives in this file; the browser
// build has its own.
//
// Each connection gets WAL journaling, the configured synchronous level, a
// busy timeout, and BEGIN IMMEDIATE for transactions so a writer never has
// to upgrade a read lock (which could fail with SQLITE_BUSY mid-transaction).
//
// On Unix the file is opened through SQLite's "unix-excl" VFS: the first
// connection takes an exclusive lock on the file for the process, and the
// connections share the WAL index in the process's memory rather than in
// a -shm file. Every transaction then takes its locks in memory, where
// the default VFS makes four to six fcntl system calls per transaction
// (about 10 per delivered change in the 49-receiver paced benchmark, 9%
// of its CPU). The price is that no other process can open the file
// while the store is open: it gets SQLITE_BUSY after the busy timeout,
// which OpenSQLite reports as ErrInUse. The kernel drops the lock when
// the process ends, however it ends.
func openDB(path string, o *Options) (*sql.DB, error) {
	q := url.Values{}
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", fmt.Sprintf("synchronous(%s)", o.Synchronous))
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", o.BusyTimeout.Milliseconds()))
	q.Add("_pragma", "foreign_keys(OFF)")
	q.Set("_txlock", "immediate")
	if nativeVFS != "" {
		q.Set("vfs", nativeVFS)
	}
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(o.MaxConns)
	db.SetMaxIdleConns(o.MaxConns)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	return db, nil
}

// inUse reports whether err is SQLite's "database is locked" (SQLITE_BUSY):
// at open, another process holds the file (see openDB).
func inUse(err error) bool {
	var e *sqlite.Error
	return errors.As(err, &e) && e.Code()&0xff == sqlite3.SQLITE_BUSY
}
