// Package walfill preallocates a SQLite database's write-ahead log, so
// that commits overwrite blocks the file already has instead of growing
// it.
//
// A commit at synchronous=FULL ends in an fsync of the log. When the
// commit grew the file, the fsync must also journal the new size: on this
// project's ext4 test machines a 4 KiB append plus fsync takes about twice
// as long as an overwrite plus fsync (p50 283 µs against 146 µs, p99
// 1.2 ms against 0.5 ms), and preallocating with fallocate does not help
// (the extents are still converted on first write). SQLite grows its log
// until the first automatic checkpoint and then writes it from the start
// again, so a fresh database pays the growth on every commit of its first
// thousand pages. Filling the log with zeros once, at open, makes every
// commit an overwrite.
//
// To keep it so, the log must start over before it outgrows that space:
// the server's log checkpoints it in the background, paced by [Pacer].
package walfill
