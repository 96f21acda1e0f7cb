//go:build !linux

package store

import "os"

// datasync flushes f to disk: fsync(2) where there is no fdatasync.
func datasync(f *os.File) error { return f.Sync() }
