// Package sqlitelog is uno's embedded event log: one SQLite file
// (modernc.org/sqlite, WAL, synchronous=FULL) holding every tenant's log,
// its per-site high-water marks, the rows read model and the tenant
// registry. It is what `uno serve` runs with no setup, and it passes the
// same conformance suites (server/logtest) as the Postgres log, every
// capability and the registry included.
//
// # Appends
//
// Appends are serialised (SQLite has one writer), which is what makes
// sequence numbers gap-free and commit-ordered, and committed in groups:
// one committer takes every append waiting, runs each under its own
// savepoint and commits them with one fsync. The rows read model is
// folded in the same transaction, so it is always exactly the log's
// state. A transaction that would make a row larger than
// server.MaxRowBytes fails its append with a *server.RowTooLargeError.
//
// # Memory
//
// The newest entries of the tenants appended to most recently stay in
// memory, decoded and encoded, so tailing readers and the fan-out do not
// query and encode them again; [Options] bound them by bytes and tenants.
//
// # Retention and tenants
//
// [Log.Retain] forgets a tenant's entries older than a time (the heads,
// marks and rows stay), as the Postgres log does. [Log.Registry] (or
// [OpenRegistry], for the uno tenant command) is the tenant registry in
// the same file, with the administration pglog.Registry offers.
//
// # Schema
//
// The schema is versioned (SQLite's user_version) with up and down steps;
// [Open] moves an older file up and refuses a newer one
// (ErrSchemaVersion).
package sqlitelog
