// Package wasm will hold the GOOS=js entry point that runs the uno client
// in browsers, and its JavaScript module. It is not implemented yet.
//
// package.json pins the JavaScript packages the browser build and its
// tests use (install them with npm ci --prefix wasm). test/ runs Go tests
// built for GOOS=js under Node: test/go_js_wasm_exec wraps Go's own
// runner and preloads test/node-setup.cjs, which installs fake-indexeddb
// as the global indexedDB.
package wasm
