// Package bridge is the thin syscall/js layer between JavaScript and the
// uno client: it installs globalThis.__uno, whose functions open clients
// and call their methods with JSON arguments, returning Promises (SQL never
// runs in a js.FuncOf callback: each call runs on its own goroutine). The
// ES module in wasm/js wraps it in the documented JavaScript API. It
// builds only for GOOS=js.
package bridge
