// Package server is uno's sync server: an http.Handler ([Server]) serving
// the WebSocket sync endpoint /v1/sync, /healthz, /readyz and Prometheus
// /metrics, over a per-tenant event log.
//
// # Event log
//
// [Log] is the contract: appends are idempotent by (tenant, site, seq)
// and per-site FIFO; each appended transaction gets the tenant's next
// sequence number, gap-free and in commit order, so a reader that saw n
// has seen everything up to n. Readers wait for new entries with
// [Log.Wait] instead of polling. Two implementations pass the conformance
// suite in package logtest: [SQLiteLog], the embedded default (group
// commit, newest entries kept in memory), and [PGLog] on Postgres (tenant
// head-row lock, forced row-level security, LISTEN/NOTIFY wake-ups between
// nodes, versioned migrations with [MigratePG]). Both keep the rows read
// model — the merged state of every row, and its values as a JSON
// document (jsonb on Postgres) — inline, in the append transaction; new
// clients bootstrap from it in resumable chunks.
//
// # Read side
//
// The query API, GET /v1/collections/{name}, serves the rows read model:
// equality filters on fields, order by the ID or a field (either way),
// cursor pages, a live version as Server-Sent Events, hot results in a
// ristretto cache keyed by the tenant's head (the rows model's
// checkpoint). Applications add their own read models on Postgres as
// [Projection]s: tables under the same row-level security and a fold over
// the log, inline in the append or async with a checkpoint committed with
// its changes; [RebuildProjection] replays the log into fresh copies and
// swaps them in (uno projection rebuild). [PGLog.Retain] forgets entries
// older than a tenant's retention once async projections folded them.
//
// # Sessions
//
// Each connection runs a sync.ServerSession: the server acknowledges a
// push only after its commit, sends log entries only against the client's
// credits (it never buffers for a slow client, and tells one that stays
// out of credit while behind to resume from its cursor), refuses
// transactions stamped too far ahead, and applies the optional write rule
// ([Config.Validate]). Tokens are verified by an [Authenticator]:
// [DevAuth] for development, [JWTAuth] in production, whose expiry closes
// live sessions. A client renews its token without reconnecting by sending
// Auth: the server verifies the new token, re-admits its tenant, and
// answers AuthOK with the new expiry; a token it refuses, or one of another
// tenant than the session's (CodeForbidden), closes the session. Metrics
// count accepted connections (uno_connections_total) and tokens renewed in
// band (uno_reauthentications_total).
//
// # Tenancy
//
// The tenant always comes from the token and is an explicit argument of
// every log call, never taken from a payload or a context. Tokens may also
// name a user ([Identity]): per-collection [Rule]s use it (read-only
// collections, rows only their owner writes, rows only their owner
// reads). A session receives what its scope admits: the collections it
// subscribes to (all by default), with field filters; filtered rows travel
// as whole states, so a row that comes into a filter arrives complete, and
// a client that changes its subscriptions is sent just the rows they add.
// With a [Registry], tenants have rate limits, row and byte quotas
// (CodeQuotaExceeded) and a retention.
package server
