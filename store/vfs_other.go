//go:build !unix && !js

package store

// nativeVFS is the SQLite VFS a native store opens its file through (see
// openDB): the platform's default, as "unix-excl" is a Unix VFS.
const nativeVFS = ""
