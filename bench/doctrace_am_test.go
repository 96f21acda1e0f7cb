//go:build cgo && (linux || darwin) && (amd64 || arm64)

package bench

import "testing"

func BenchmarkDocTraceAutomerge(b *testing.B) { needTrace(b); DocTraceAutomerge(testB{b}) }
