//go:build unix && !js

package store

// nativeVFS is the SQLite VFS a native store opens its file through (see
// openDB): "unix-excl", which takes the file's locks once for the process.
const nativeVFS = "unix-excl"
