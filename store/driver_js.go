//go:build js

package store

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/unosync/uno/store/sqlitejs"
)

// walJournal: the journal is not a WAL (see openDB): every commit syncs.
const walJournal = false

// openDB opens the SQLite database named path with package sqlitejs: the
// official WebAssembly build of SQLite, run by the browser's engine, with
// its files in IndexedDB. Everything driver-specific lives in this file;
// the native build has its own.
//
// A commit returns once it is in IndexedDB (one strict transaction per
// commit), so the rollback journal stays in memory (journal_mode=MEMORY;
// WAL needs shared memory the browser lacks). The synchronous level still
// matters: OFF would never sync, and so never write to IndexedDB. One
// connection holds the database in EXCLUSIVE locking mode, which spares
// the lock and cache-validation round of each transaction; o.MaxConns
// becomes 1. Transactions BEGIN IMMEDIATE, like natively.
//
// openDB's connections block on IndexedDB: never use the database from a
// js.FuncOf callback.
func openDB(path string, o *Options) (*sql.DB, error) {
	o.MaxConns = 1
	db := sqlitejs.Open(path,
		fmt.Sprintf("PRAGMA busy_timeout = %d", o.BusyTimeout.Milliseconds()),
		"PRAGMA locking_mode = EXCLUSIVE",
		"PRAGMA journal_mode = MEMORY",
		fmt.Sprintf("PRAGMA synchronous = %s", o.Synchronous),
		"PRAGMA temp_store = MEMORY",
		"PRAGMA foreign_keys = OFF",
	)
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	return db, nil
}

// prefillWAL does nothing: the browser's journal is not a WAL.
func prefillWAL(context.Context, *sql.DB, string) error { return nil }

// inUse reports false: in the browser one connection holds the database in
// EXCLUSIVE locking mode, and IndexedDB has no file locks to be refused.
func inUse(error) bool { return false }
