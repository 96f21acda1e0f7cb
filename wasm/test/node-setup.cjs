// Preloaded by Node (NODE_OPTIONS=--require) for Go programs built with
// GOOS=js GOARCH=wasm, such as test binaries run by go_js_wasm_exec
// beside this file: it gives them the browser's IndexedDB globals
// (indexedDB, IDBKeyRange, ...) from fake-indexeddb, an in-memory
// IndexedDB, and the loaders uno.js installs in a browser: of
// @automerge/automerge (globalThis.__unoLoadAutomerge, called the first
// time a doc field is used) and of SQLite (globalThis.__unoLoadSQLite,
// package store/sqlitejs's engine: @sqlite.org/sqlite-wasm with
// ../js/uno-sqlite.mjs). Install them first with `npm ci --prefix wasm`.
require("fake-indexeddb/auto");
const { pathToFileURL } = require("node:url");
const path = require("node:path");
globalThis.__unoLoadAutomerge = () => import("@automerge/automerge");
let sqlite = null;
globalThis.__unoLoadSQLite = () => {
  sqlite ??= (async () => {
    const { default: init } = await import("@sqlite.org/sqlite-wasm");
    const { createEngine } = await import(pathToFileURL(path.join(__dirname, "../js/uno-sqlite.mjs")).href);
    return createEngine(await init({ print: () => {}, printErr: (...a) => console.error(...a) }));
  })();
  return sqlite;
};
