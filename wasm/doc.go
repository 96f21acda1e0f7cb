// Package wasm is the home of uno's browser build (GOOS=js GOARCH=wasm):
// bridge/ is the syscall/js layer over the client, cmd/uno-wasm the entry
// point, js/ the ES module uno.js with its TypeScript types and the Web
// Worker script uno-worker.js, and build.sh builds uno.wasm and copies Go's
// loader and the modules beside it, with SQLite's official WebAssembly
// build (@sqlite.org/sqlite-wasm) in sqlite3/ and the files of
// @automerge/automerge in automerge/.
//
// # SQLite
//
// The store's SQLite is not compiled into uno.wasm: Go's WebAssembly runs
// C translated to Go several times slower than the browser runs C
// compiled to WebAssembly. js/uno-sqlite.mjs is the engine package
// store/sqlitejs drives (statements, rows passed as bytes) and the VFS
// that keeps files in IndexedDB; uno.js loads it with sqlite3/ beside
// uno.wasm (useSQLite, installing globalThis.__unoLoadSQLite). Leaving
// SQLite out halved uno.wasm (21.6 → 10.6 MB; the core download went
// from 5.6 to 3.4 MB gzipped, SQLite included).
//
// # The worker
//
// uno.js's open runs the client in a dedicated module Worker
// (uno-worker.js: one per page, holding every database the page opens), so
// the page's thread stays free while the client computes. Every call is a
// request with an ID, answered by the worker; watches and status listeners
// are numbered by the page and their updates pushed by the worker. Arguments
// are JSON text made on the page, as on the page's thread. Functions cannot
// cross to the worker: a token function and editDoc's edits function are
// asked for by the worker (a round trip each; the edits function's
// transaction waits for the answer, holding the write lock). A page
// without workers, or open({worker: false}), runs the client on its own
// thread. The protocol is written down in uno.js.
//
// # Doc fields
//
// The client reads and edits doc fields (Automerge documents) with
// @automerge/automerge, which is as large as a quarter of uno.wasm, so a
// page downloads it only when it first uses a doc field: uno.js installs
// globalThis.__unoLoadAutomerge (useAutomerge) where the client runs (in
// the worker, resolving automerge/ beside uno.js), and the crdt package's
// browser binding calls it, once, from a goroutine. build.sh prints the
// core download and the Automerge addition separately.
//
// # Testing
//
// package.json pins the JavaScript packages the browser build and its
// tests use (install them with npm ci --prefix wasm). test/ runs Go tests
// built for GOOS=js under Node: test/go_js_wasm_exec wraps Go's own
// runner and preloads test/node-setup.cjs, which installs fake-indexeddb
// as the global indexedDB and the Automerge and SQLite loaders. The bridge's tests
// run there too, driving globalThis.__uno as uno.js does.
// test/automerge-interop.mjs is the JavaScript end of crdt's interop test
// with automerge-go.
package wasm
