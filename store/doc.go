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
// # Validation
//
// Both run crdt's rules (crdt.ValidateTx), the ones a server runs too,
// before anything is written: names, row IDs and values. A local write
// must also fit the declared [Schema], if any, and leave no row larger
// than crdt.Limits.MaxRowBytes (crdt.ErrRowTooLarge). Remote transactions
// are not checked against the local schema: the server enforces its own,
// and a replica must apply what the server accepted. A refused write or
// batch changes nothing.
//
// # Tables
//
// Each collection is a real table named after it, with an "id" column and
// one column per field, that the app may read with SQL and index (declare
// indexes in a [Schema]). Values keep their SQLite type: strings are TEXT,
// integers, booleans and counters INTEGER, other numbers REAL, objects,
// arrays and sets JSON TEXT, docs their JSON (up to [DocColumnMaxBytes];
// NULL above). Deleted rows are removed from it. The merge state of each
// row (clocks, causal length, counter parts, set tags) is beside its
// values, in the _uno column; a deleted row leaves its table and keeps its
// state in _uno_deleted. A doc field's Automerge chunks are rows of
// _uno_chunks, apart from the state: a change to a document appends one
// row instead of rewriting the document. uno's own tables start with
// _uno_.
//
// # Durability
//
// The SQLite store runs in WAL mode with synchronous=FULL by default: when
// Write returns, the app's change, its merge metadata and its outbox entry
// are on disk together, in one SQL transaction, or none of them is. Writes
// from several goroutines waiting at once share one transaction and one
// fsync (group commit), each keeping its own outcome. The fsync follows
// the commit rather than being part of it: a durable store commits at
// synchronous=NORMAL and then syncs the log itself before Write returns,
// so a sync loop (SQLite.OnCommit) can push the write while its fsync
// runs; a sync that fails stops local writes (ErrNotDurable). What comes from a
// server (Apply, Receive, Ack) commits without an fsync of its own: the
// server holds it and the cursor moves in the same transaction, so a
// power cut can only make the replica fetch it again; the next synced
// commit syncs it too. An Ack above the replica's last write means its
// file lost writes the server holds (ErrLostWrites): the store moves its
// sequence number past them and its cursor back to 0, to bootstrap again.
// Each opening of the store draws an epoch that its outbox entries keep
// (Runs): a database that went back and wrote again under sequence
// numbers the server holds for lost writes learns so from the server's
// record of epochs, and Fork moves those writes to a new site.
// Internal schema changes are versioned migrations with up and down steps,
// recorded in PRAGMA user_version.
//
// In the browser (GOOS=js) the file lives in IndexedDB (package
// sqlitejs, which runs SQLite's official WebAssembly build in the
// browser's engine): each SQLite commit is one IndexedDB transaction with
// durability "strict", complete before Write returns; the rollback journal stays in
// memory (journal_mode=MEMORY), since IndexedDB sees nothing of a commit
// until that transaction.
//
// # Concurrency
//
// Stores are safe for concurrent use. Writes are serialised by the store;
// reads run in parallel with them (WAL). A database file must have one
// owning process at a time. In the browser the store has one connection,
// held in EXCLUSIVE locking mode, so reads wait for a running write; a
// database must have one owning tab (nothing locks across tabs), and no
// method may be called from a js.FuncOf callback, because they block on
// IndexedDB events that only the free event loop delivers.
//
// # Portability
//
// The SQL is plain SQLite; everything specific to the driver sits in one
// file per platform: driver_native.go (modernc.org/sqlite) and
// driver_js.go (package sqlitejs). Neither
// driver is compiled into the other platform's build.
//
// # Testing
//
// Package storetest holds the conformance suite every implementation runs;
// the SQLite store runs it natively and, under Node with an in-memory
// IndexedDB, in its browser build:
//
//	npm ci --prefix wasm
//	GOOS=js GOARCH=wasm go test -exec "$PWD/wasm/test/go_js_wasm_exec" ./store/...
package store
