// Package server is uno's sync server. This first part holds the event log:
// the per-tenant, append-only log of transactions that is the system of
// record, its contract ([Log]), the embedded implementation on SQLite
// ([SQLiteLog]) with the rows read model it keeps inline, and the
// conformance suite every implementation runs (package logtest). The
// WebSocket endpoint, fan-out and `uno serve` build on it.
//
// # Contract
//
// Appends are idempotent by (tenant, site, seq) and per-site FIFO; each
// appended transaction gets the tenant's next sequence number, gap-free and
// in commit order, so a reader that saw n has seen everything up to n and
// the cursor never goes backwards. Readers wait for new entries with
// [Log.Wait] instead of polling.
//
// # Tenancy
//
// The tenant is an explicit argument of every call, never taken from a
// payload or a context.
package server
