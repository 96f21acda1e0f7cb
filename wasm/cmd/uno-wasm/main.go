//go:build js

// Command uno-wasm is the uno client for browsers: built with GOOS=js
// GOARCH=wasm, it installs the bridge (globalThis.__uno) that the ES module
// wasm/js/uno.js drives, and keeps running.
package main

import (
	"runtime/debug"

	"github.com/unosync/uno/wasm/bridge"
)

// The garbage collector runs on the page's (or worker's) only thread, so
// each collection stalls the client. It collects when the heap has grown
// by gcPercent since the last collection, not the default 100, and more
// often again near memLimit: 1,000-row transactions ran ~20% faster at
// 400 (GOOS=js store benchmark under Node, BenchmarkSQLite_Write1000Rows)
// for a heap of a few tens of MB.
const (
	gcPercent = 400
	memLimit  = 256 << 20
)

func main() {
	debug.SetGCPercent(gcPercent)
	debug.SetMemoryLimit(memLimit)
	bridge.Register()
	select {}
}
