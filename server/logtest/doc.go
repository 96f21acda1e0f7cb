// Package logtest holds the conformance suite every server.Log
// implementation runs: idempotent appends, gap-free commit-ordered
// sequence numbers under concurrent appenders, per-site FIFO, reading from
// a cursor, wake-ups and tenant isolation.
package logtest
