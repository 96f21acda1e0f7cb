// Package wasm is the home of uno's browser build (GOOS=js GOARCH=wasm):
// bridge/ is the syscall/js layer over the client, cmd/uno-wasm the entry
// point, js/ the ES module uno.js with its TypeScript types, and build.sh
// builds uno.wasm and copies Go's loader and the module beside it, with
// the files of @automerge/automerge in automerge/.
//
// # Doc fields
//
// The client reads and edits doc fields (Automerge documents) with
// @automerge/automerge, which is as large as a quarter of uno.wasm, so a
// page downloads it only when it first uses a doc field: uno.js installs
// globalThis.__unoLoadAutomerge (useAutomerge), and the crdt package's
// browser binding calls it, once, from a goroutine. build.sh prints the
// core download and the Automerge addition separately.
//
// # Testing
//
// package.json pins the JavaScript packages the browser build and its
// tests use (install them with npm ci --prefix wasm). test/ runs Go tests
// built for GOOS=js under Node: test/go_js_wasm_exec wraps Go's own
// runner and preloads test/node-setup.cjs, which installs fake-indexeddb
// as the global indexedDB and the Automerge loader. The bridge's tests
// run there too, driving globalThis.__uno as uno.js does.
// test/automerge-interop.mjs is the JavaScript end of crdt's interop test
// with automerge-go.
package wasm
