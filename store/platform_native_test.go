//go:build !js

package store_test

import "database/sql"

// platform is how the native driver sets SQLite up (see driver_native.go).
var platform = struct {
	conns                    int // with Options.MaxConns = 3
	journalMode, lockingMode string
}{3, "wal", "normal"}

// openRaw opens the SQLite file at path with the store's driver, for a
// test to read what the store wrote.
func openRaw(path string) (*sql.DB, error) { return sql.Open("sqlite", path) }
