// Package sqlitelog is uno's embedded event log: one SQLite file
// (modernc.org/sqlite, WAL, synchronous=FULL) holding every tenant's log,
// its per-site high-water marks and runs, the rows read model and the
// tenant registry, and the application's projections. It is what `uno serve` runs with no setup, and it passes the
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
// server.MaxRowBytes fails its append with a *server.TxRefusedError
// wrapping a *server.RowTooLargeError.
//
// # Memory
//
// The newest entries of the tenants appended to most recently stay in
// memory, decoded and encoded, so tailing readers and the fan-out do not
// query and encode them again; [Options] bound them by bytes and tenants.
//
// # Projections
//
// An application's read models are [Projection]s: a Go fold of log
// entries into tables in the same file (each keyed by tenant first).
// [SetupProjections] creates their tables (and fills new ones from the
// log); [Options].Projections has Open fold them:
//
//   - inline ones in the append transaction, under the savepoint of the
//     append they fold: never behind the log, and a failing fold fails
//     that append only (nothing of it is appended);
//   - async ones on a worker goroutine each, woken by appends, a batch
//     per transaction with the projection's checkpoint (table
//     checkpoints), so restarts fold every entry exactly once;
//     [Log.Checkpoint] says how far one is.
//
// [RebuildProjection] replays the whole log into fresh copies of a
// projection's tables and swaps them in in one write transaction, which
// SQLite's one writer serialises with appends and async batches: it may
// run while a server runs on the file. [Log.Retain] deletes no entry an
// async projection has not folded. The projection API mirrors
// pglog.Projection, with database/sql (*sql.Tx) in place of pgx.
//
// # Retention and tenants
//
// [Log.Retain] forgets a tenant's entries older than a time (the heads,
// marks and rows stay), as the Postgres log does. [Log.Compact] drops
// the doc changes of old entries and moves the tenant's compaction floor
// (columns of heads), below which [Log.Read] serves nothing.
// [Log.Registry] (or [OpenRegistry], for the uno tenant command) is the
// tenant registry in the same file, with the administration
// pglog.Registry offers; deleting a tenant deletes its sites' runs too.
//
// # Sites' runs
//
// [Log.SaveRun] and [Log.Runs] keep each site's runs (server.SiteRunner,
// table site_runs): which epoch of the replica's store wrote its
// transactions from which sequence number on. A run is saved in a write
// transaction of its own, which waits for the appends' writer lock (up
// to the busy timeout) as every write does.
//
// # Schema
//
// The schema is versioned (SQLite's user_version) with up and down steps;
// [Open] moves an older file up and refuses a newer one
// (ErrSchemaVersion).
package sqlitelog
