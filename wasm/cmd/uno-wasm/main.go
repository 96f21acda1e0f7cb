//go:build js

// Command uno-wasm is the uno client for browsers: built with GOOS=js
// GOARCH=wasm, it installs the bridge (globalThis.__uno) that the ES module
// wasm/js/uno.js drives, and keeps running.
package main

import "github.com/unosync/uno/wasm/bridge"

func main() {
	bridge.Register()
	select {}
}
