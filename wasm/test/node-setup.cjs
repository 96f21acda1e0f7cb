// Preloaded by Node (NODE_OPTIONS=--require) for Go programs built with
// GOOS=js GOARCH=wasm, such as test binaries run by go_js_wasm_exec
// beside this file: it gives them the browser's IndexedDB globals
// (indexedDB, IDBKeyRange, ...) from fake-indexeddb, an in-memory
// IndexedDB. Install it first with `npm ci --prefix wasm`.
require("fake-indexeddb/auto");
