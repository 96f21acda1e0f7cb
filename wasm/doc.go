// Package wasm will hold the GOOS=js entry point that runs the uno client
// in browsers, and its JavaScript module. It is not implemented yet.
package wasm
