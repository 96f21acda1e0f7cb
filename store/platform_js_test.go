//go:build js

package store_test

// platform is how the browser driver sets SQLite up (see driver_js.go).
var platform = struct {
	conns                    int // with Options.MaxConns = 3
	journalMode, lockingMode string
}{1, "memory", "exclusive"}
