// Package store is uno's local database: the merge state of every row a
// replica has seen, the app's collections materialised as plain tables,
// the outbox of local transactions waiting for a server, the conflict log,
// and the replica's site ID and clock.
//
// # Usage
//
// Most apps use package client, which wraps a store. Open one directly with
// [OpenSQLite] (a SQLite file) or [NewMemory] (tests). Local changes go
// through [Store.Write], which hands a [crdt.Builder] to a function; remote
// transactions through [Store.Apply].
//
// # Tables
//
// Each collection is a real table named after it, with an "id" column and
// one column per field, that the app may read with SQL and index (declare
// indexes in a [Schema]). Values keep their SQLite type: strings are TEXT,
// integers, booleans and counters INTEGER, other numbers REAL, objects,
// arrays and sets JSON TEXT, docs BLOB. Deleted rows are removed from it.
// The merge state of each row (clocks, causal length, counter parts, set
// tags) is beside its values, in the _uno column; a deleted row leaves its
// table and keeps its state in _uno_deleted. uno's own tables start with
// _uno_.
//
// # Durability
//
// The SQLite store runs in WAL mode with synchronous=FULL by default: when
// Write returns, the app's change, its merge metadata and its outbox entry
// are on disk together, in one SQL transaction, or none of them is.
// Internal schema changes are versioned migrations with up and down steps,
// recorded in PRAGMA user_version.
//
// # Concurrency
//
// Stores are safe for concurrent use. Writes are serialised by the store;
// reads run in parallel with them (WAL). A database file must have one
// owning process at a time.
//
// # Portability
//
// The SQL is plain SQLite; everything specific to the driver
// (modernc.org/sqlite natively) sits in one file so that the browser build
// can use another driver under the same code.
//
// # Testing
//
// Package storetest holds the conformance suite every implementation runs.
package store
