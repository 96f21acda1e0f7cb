// Package sqlitejs is a database/sql driver for the browser build
// (GOOS=js): SQLite runs as the official WebAssembly build
// (@sqlite.org/sqlite-wasm) in the JavaScript engine itself, beside
// uno.wasm, and keeps its files in IndexedDB through the "uno-idb" VFS of
// wasm/js/uno-sqlite.mjs. The store opens it in its browser build
// (store/driver_js.go); native builds use modernc.org/sqlite.
//
// # Why not SQLite compiled into uno.wasm
//
// SQLite translated to Go and compiled with the rest of uno.wasm runs
// inside Go's WebAssembly, which is several times slower than the same C
// compiled for the browser's engine: 1,000-row transactions measured
// 8,700 rows/s plain through it under Node, against 125,000 rows/s with
// the official build. Calls from Go into JavaScript cost a few hundred
// nanoseconds each, so the driver makes few: a statement's arguments go
// over as one byte buffer (run or query), and rows come back many at a
// time as another (fetch), both in the tagged encoding of uno-sqlite.mjs.
//
// # Durability
//
// The VFS holds an open file in memory. When SQLite syncs (a COMMIT), the
// statement returns with a flush pending; the driver then writes the
// dirty chunks to IndexedDB in one strict readwrite transaction and
// returns from the commit only once it is complete. If that transaction
// fails, the commit returns an error wrapping [ErrNotSaved] and the
// connection is discarded, so the next one reads IndexedDB again: as of
// the last commit that returned nil.
//
// # Loading
//
// The engine is loaded once per program by calling the JavaScript
// function globalThis.__unoLoadSQLite, which returns a Promise of the
// Engine (uno.js installs it; wasm/test/node-setup.cjs does under Node).
// Calls block the calling goroutine until IndexedDB answers: never make
// them from a js.FuncOf callback, where waiting deadlocks the program.
package sqlitejs
