// Package jobs runs uno's background work as jobs in a queue kept in the
// log's own database, with River (github.com/riverqueue/river): its
// riverpgxv5 driver on the Postgres log, its riversqlite driver (through
// database/sql and modernc.org/sqlite) on the embedded SQLite log.
// River's tables come from River's migrator (rivermigrate), with the
// package's own table, jobs_floors, in that database: [Open] creates
// what is missing (uno serve on the embedded log needs no setup), and on
// Postgres pglog.Migrate (uno migrate up, as the tables' owner) does. The
// serving role then needs SELECT, INSERT, UPDATE, DELETE on the tables
// and USAGE on the sequences (river_job's IDs). A projection rebuild
// replaces tables, so on Postgres it needs a node connected as their
// owner; a node without the right fails the job, and it is retried.
//
// # Jobs
//
// Five kinds, whose arguments carry IDs and names only, never row data:
//
//   - [CompactArgs] (uno_compact): compact one tenant's log.
//   - [RetainArgs] (uno_retain): apply one tenant's retention, or every
//     tenant's.
//   - [RebuildArgs] (uno_rebuild): rebuild a projection by name.
//   - [ExportArgs] (uno_export): write a tenant's log as JSON lines to a
//     file, whole or not at all.
//   - [DeleteArgs] (uno_delete): delete a tenant and its data.
//
// What each does on a node is [Work], wired by the caller (uno serve
// wires the server and its log). Deletions and rebuilds run first
// (priority 1), then exports (2), compaction (3) and retention (4). A
// job that fails is retried with River's backoff (about attempt⁴
// seconds) up to [Config.MaxAttempts] times, then discarded; one whose
// arguments cannot work (an unknown projection) or that this node has no
// Work for is cancelled at once. [Jobs.Retry] runs a finished job again,
// [Jobs.Cancel] stops one.
//
// The same work — the same kind with the same tenant, projection or
// export path — is never waiting or running twice: [Jobs.Enqueue] of a
// duplicate returns the job already there (River's unique jobs over the
// states available, scheduled, pending, running and retryable; a
// finished job does not block a new one). River locks each job for one
// node, so it runs once even when every node enqueues it.
//
// [Jobs.List], [Jobs.Counts], [Jobs.Get] and the enqueue, retry and
// cancel calls are the API a dashboard uses; uno jobs is the command.
//
// # Scheduling
//
// Every [Config.CompactInterval] (uno serve --compact-interval, default
// 1h) each node enqueues a compaction job for each tenant written through
// it or with a live session on it ([Work.Pending]): the tickers of a
// single server became jobs any node may run. Retention is a River
// periodic job every [Config.RetentionInterval] (default 1h), enqueued by
// River's elected leader only, so once for the whole cluster.
//
// # Multi-node
//
// Any node with workers runs any job, so compaction may run on a node
// that does not hold the tenant's sessions. Its floor therefore comes
// from state every node shares: every [Config.HeartbeatInterval] (10s)
// each node replaces its rows of jobs_floors with the lowest position
// of each tenant's live sessions on it ([Work.Floors]), stamped with the
// time. A compaction job compacts below the lowest floor among the rows
// stamped in the last three intervals, then below the live sessions of
// the node running it ([Work.Compact] caps it again). A node that stopped
// heartbeating (crashed, partitioned) stops counting after three
// intervals: its clients reconnect elsewhere, and one whose cursor fell
// below the compacted entries bootstraps from a snapshot, as a client
// that comes back after any compaction does. A session that starts
// after its node's last heartbeat, below a floor compacted meanwhile, is
// told to reconnect (CodeResync) and bootstraps: what a single server
// already did for a session starting during a compaction. The nodes'
// clocks are compared through the stamps: keep them within an interval
// of each other (NTP does far better).
//
// # Testing
//
// The tests run on a real log.db with real River clients; the two-node
// tests (internal/e2e, jobs_test.go) run two uno serve processes on one
// Postgres database.
package jobs
