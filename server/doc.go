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
// model — the merged state of every row — inline, in the append
// transaction; new clients bootstrap from it in resumable chunks.
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
// every log call, never taken from a payload or a context.
package server
