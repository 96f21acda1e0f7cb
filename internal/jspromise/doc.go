// Package jspromise waits for JavaScript Promises from Go in the browser
// build (GOOS=js): Await blocks the calling goroutine, not the event loop,
// until a Promise settles. It must not be called from a js.FuncOf
// callback, where waiting deadlocks the program.
package jspromise
