// Package wasm is the home of uno's browser build (GOOS=js GOARCH=wasm):
// bridge/ is the syscall/js layer over the client, cmd/uno-wasm the entry
// point, js/ the ES module uno.js with its TypeScript types, and build.sh
// builds uno.wasm and copies Go's loader and the module beside it.
//
// package.json pins the JavaScript packages the browser build and its
// tests use (install them with npm ci --prefix wasm). test/ runs Go tests
// built for GOOS=js under Node: test/go_js_wasm_exec wraps Go's own
// runner and preloads test/node-setup.cjs, which installs fake-indexeddb
// as the global indexedDB.
package wasm
