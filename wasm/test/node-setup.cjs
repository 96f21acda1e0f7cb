// Preloaded by Node (NODE_OPTIONS=--require) for Go programs built with
// GOOS=js GOARCH=wasm, such as test binaries run by go_js_wasm_exec
// beside this file: it gives them the browser's IndexedDB globals
// (indexedDB, IDBKeyRange, ...) from fake-indexeddb, an in-memory
// IndexedDB, and the loader of @automerge/automerge that uno.js installs
// in a browser (globalThis.__unoLoadAutomerge, called the first time a doc
// field is used). Install them first with `npm ci --prefix wasm`.
require("fake-indexeddb/auto");
globalThis.__unoLoadAutomerge = () => import("@automerge/automerge");
