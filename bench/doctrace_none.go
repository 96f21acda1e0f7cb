//go:build !(cgo && (linux || darwin) && (amd64 || arm64))

package bench

import "github.com/unosync/uno/crdt"

// DocTraceAutomerge needs automerge-go, which this build lacks.
func DocTraceAutomerge(b B) { b.Fatal(crdt.ErrDocUnavailable) }
