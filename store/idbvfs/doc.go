// Package idbvfs is a SQLite VFS for github.com/ncruces/go-sqlite3 that
// keeps database files in the browser's IndexedDB. It is how the store
// persists in a browser (GOOS=js); other platforms use files.
//
// # How it works
//
// A database file lives in memory while it is open: reads are served from
// memory and writes change memory, marking the chunks they touch dirty.
// The file is cut into chunks of [ChunkSize] bytes, each one IndexedDB
// record (small records stay inline; large ones become slow blob files).
// SQLite's Sync writes every dirty chunk and the file's size in ONE
// IndexedDB readwrite transaction opened with durability "strict", and
// returns only after that transaction's complete event; if it aborts or
// fails, Sync returns an I/O error and the chunks stay dirty. Open loads
// the file's chunks from IndexedDB. So IndexedDB holds the file as of
// some Sync, all of it, and never part of one: SQLite's commit is the
// IndexedDB transaction.
//
// All files of a [VFS] share one IndexedDB database (named in [New]) with
// two object stores: "files" (name → size and chunk size) and "chunks"
// ([name, chunk index] → bytes).
//
// # Journals
//
// Open connections with PRAGMA journal_mode=MEMORY: the rollback journal
// then stays in SQLite's memory, which is enough because IndexedDB sees
// nothing between two Syncs. The VFS refuses to open rollback journals,
// super-journals and WAL files (WAL needs shared memory, which this VFS
// does not offer); temporary files (statement journals, temporary
// databases) stay in memory.
//
// # Blocking
//
// SQLite calls the VFS on the goroutine that runs the SQL, and the VFS
// blocks that goroutine until IndexedDB answers. That is allowed only
// because the goroutine is not the JavaScript event loop: never run SQL
// (or call [New]) inside a js.FuncOf callback, where waiting for an
// IndexedDB event deadlocks the program ("all goroutines are asleep").
// Start a goroutine and hand its result back, for example by resolving a
// Promise.
//
// # Concurrency
//
// Connections of one process that open the same name share its memory
// and lock it as SQLite expects (shared, reserved, pending, exclusive
// locks, answering BUSY). Nothing locks across processes or browser tabs:
// two tabs writing one database lose writes, so a database must have a
// single owner (for example, a Web Lock held while it is open).
//
// # Testing
//
// The tests run under Node with fake-indexeddb (see wasm/test).
package idbvfs
