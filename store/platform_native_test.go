//go:build !js

package store_test

// platform is how the native driver sets SQLite up (see driver_native.go).
var platform = struct {
	conns                    int // with Options.MaxConns = 3
	journalMode, lockingMode string
}{3, "wal", "normal"}
