//go:build js

package store

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"sync"

	"github.com/ncruces/go-sqlite3/driver"
	"github.com/ncruces/go-sqlite3/vfs"

	"github.com/unosync/uno/store/idbvfs"
)

// In the browser every store's file lives in one IndexedDB database,
// through one VFS registered with SQLite under vfsName.
const (
	vfsName = "uno-idb"
	idbName = "uno"
)

// registerVFS opens the IndexedDB database and registers the VFS, once:
// SQLite's VFS registry is process-wide, so this is too.
var registerVFS = sync.OnceValue(func() error {
	v, err := idbvfs.New(idbName)
	if err != nil {
		return err
	}
	vfs.Register(vfsName, v)
	return nil
})

// walJournal: the journal is not a WAL (see openDB): every commit syncs.
const walJournal = false

// openDB opens the SQLite database named path with
// github.com/ncruces/go-sqlite3 on the IndexedDB VFS (package idbvfs).
// Everything driver-specific lives in this file; the native build has its
// own.
//
// The VFS makes each SQLite sync one atomic IndexedDB transaction, so the
// rollback journal stays in memory (journal_mode=MEMORY; WAL needs shared
// memory the browser lacks). The synchronous level still matters: OFF
// would never sync, and so never write to IndexedDB. One connection holds
// the database in EXCLUSIVE locking mode, which spares the lock and
// cache-validation round of each transaction; o.MaxConns becomes 1.
// Transactions BEGIN IMMEDIATE, like natively.
//
// openDB blocks on IndexedDB: never call it (or any store method) from a
// js.FuncOf callback.
func openDB(path string, o *Options) (*sql.DB, error) {
	if err := registerVFS(); err != nil {
		return nil, err
	}
	o.MaxConns = 1
	q := url.Values{}
	q.Set("vfs", vfsName)
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", o.BusyTimeout.Milliseconds()))
	q.Add("_pragma", "locking_mode(EXCLUSIVE)")
	q.Add("_pragma", "journal_mode(MEMORY)")
	q.Add("_pragma", fmt.Sprintf("synchronous(%s)", o.Synchronous))
	q.Add("_pragma", "temp_store(MEMORY)")
	q.Add("_pragma", "foreign_keys(OFF)")
	q.Set("_txlock", "immediate")
	db, err := driver.Open("file:" + path + "?" + q.Encode())
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	return db, nil
}

// prefillWAL does nothing: the browser's journal is not a WAL.
func prefillWAL(context.Context, *sql.DB, string) error { return nil }
