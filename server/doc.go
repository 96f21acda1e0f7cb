// Package server is uno's sync server: an http.Handler ([Server]) serving
// the WebSocket sync endpoint /v1/sync, the query API
// /v1/collections/{name}, /healthz, /readyz and Prometheus /metrics, over
// a per-tenant event log.
//
// # Trust boundary
//
// The server trusts no client. Every pushed transaction passes the same
// validation rules the client ran (package crdt: names, row IDs, values,
// field kinds, a declared schema) before it is appended; one that fails
// is refused with a coded Reject and nothing of it is appended, so no
// other replica is affected. Every path that returns rows (sync,
// snapshots, Reject, the query API and its live streams) filters them
// through the same read rules for the same identity ([Rule], scope).
// Every buffer, cache, batch and wait is bounded by bytes or time: batches
// by BatchRows and BatchBytes, rows by [MaxRowBytes], frames being
// appended by MaxPushBytes, connections before Hello by HelloTimeout,
// live streams by MaxStreams and their token's expiry, tenants' usage and
// rate buckets by count (they evict). A wake-up that brings nothing makes
// a session read once and wait again, never spin. Errors a client sees
// are codes; a database's details stay in the operator's log.
//
// # Event log
//
// [Log] is the contract: appends are idempotent by (tenant, site, seq)
// and per-site FIFO; each appended transaction gets the tenant's next
// sequence number, gap-free and in commit order, so a reader that saw n
// has seen everything up to n. Readers wait for new entries with
// [Log.Wait] instead of polling. What a log can do beyond that it says by
// implementing capability interfaces: [Snapshotter], [RowStater],
// [RowHasher], [RowQuerier], [EncodedTail], [Retainer], [Compactor],
// [SiteRunner]. Two
// implementations pass the conformance suite in package logtest: package
// sqlitelog, the embedded default, and package pglog on Postgres. Both
// keep the rows read model (the merged state of every row, and its values
// as a JSON document) inline, in the append transaction; new clients
// bootstrap from it in resumable chunks. A doc field reads there as its
// Automerge document's JSON (rendered through a bounded cache of open
// documents, so a small change to a large document stays cheap); a
// transaction the merged state refuses (a row too large, a doc change
// that skips one of its site's) is refused with a code, alone
// ([TxRefusedError]).
//
// A log that is a [SiteRunner] also records, per site, which opening of
// the replica's store (its epoch, from each Push of protocol version 3)
// wrote its transactions: one row per opening that pushes, saved in the
// transaction of its first append ([WithRun]). A session's Check reads them (at most 1,024 runs) so
// that a replica whose database went back and wrote again finds the
// writes that reuse sequence numbers the log holds for others, and moves
// them to a new site rather than lose them (package sync, Check).
//
// # Compaction
//
// The rows read model holds every doc field merged, so the log need not
// keep each doc change forever: [Server.Compact] rewrites a tenant's
// entries without their doc changes up to the lowest cursor among its
// live sessions, and moves the tenant's compaction floor; a replica that
// comes back below it bootstraps, as one behind a retention cut does.
// The server runs [Server.ApplyCompaction] every
// [Config.CompactInterval] for the tenants written to through it; uno
// compact runs it by hand.
//
// # Read side
//
// The query API, GET /v1/collections/{name}, serves the rows read model:
// equality filters on fields, order by the ID or a field (either way),
// cursor pages, a live version as Server-Sent Events, hot results in a
// ristretto cache keyed by the tenant's head.
//
// # Sessions
//
// Each connection runs a sync.ServerSession: the server acknowledges a
// push only after its commit, sends log entries only against the client's
// credits (it never buffers for a slow client, and tells one that stays
// out of credit while behind to resume from its cursor), in batches of
// whatever piled up, bounded by BatchRows and BatchBytes, never the
// entries of the connection's own site (the Ack covered them; the
// batch's range still does, so the cursor moves past them), refuses
// transactions stamped too far ahead, and applies the optional write rule
// ([Config.Validate]). Tokens are verified by a tenancy.Authenticator
// (tenancy.DevAuth for development, tenancy.JWTAuth in production): it
// returns the identity (tenant, user, expiry) every path uses, and a live
// session or stream ends at its expiry unless the client renews its token
// in band (Auth).
//
// # Operations
//
// [Server.Shutdown] drains: new sessions are refused, live streams end,
// appends in flight commit and are acknowledged, then each session closes
// with CodeShuttingDown (its client reconnects, to another node or later).
// Config.Logger receives structured records of sessions (start, end with
// the close code), refusals and internal errors; /metrics has counters
// and latency histograms (append, push to ack, delivery).
// [Server.Sessions], [Server.EndSessions], [Server.Heads] and
// [Server.Gatherer] serve operator tools: package admin builds the
// dashboard uno serve mounts at /admin/ on them.
//
// # Tracing
//
// With Config.TracerProvider (nil: the otel global, read by New) the
// server records OpenTelemetry spans of each push, continuing the trace
// of the client that wrote: a client on protocol version 2 sends the W3C
// traceparent of its write in sync.Push.Trace. A malformed or oversized
// one (over 128 bytes) is ignored: the push is handled as always, its
// span is a new root, and uno_trace_context_malformed_total counts it.
// The fan-out of an entry carries, in sync.Change.Trace, the context of
// its fan-out span, so the receiving client's apply joins the same trace.
// The server remembers the trace of its recent appends in memory (the
// newest 256 entries of each of the tenants appended to most recently),
// so an entry appended through another node, or long ago, is delivered
// without one. A log notes an append's entries through [Numbered] as it
// numbers them, before its commit, so a session that reads an entry
// before the append returns still sends it traced (and measured in
// uno_delivery_seconds). A provider that does not record (the default) makes the
// push path allocate nothing more.
//
// Spans (kind) and their attributes; no span ever carries a field value:
//
//	uno.client.tx            client: a local write transaction; uno.site, uno.site_seq, uno.ops, uno.collections
//	uno.client.push (client) client: a Push carrying it (links the other traced writes it carries); uno.txs, uno.site_seq
//	uno.server.push (server) the push's handling: rules, quotas, append, rejections; uno.tenant, uno.site, uno.txs
//	uno.log.append           the log append, with the rows read model; uno.tenant, uno.collections, uno.seqs
//	uno.projection.inline    an inline projection's fold, in the append (sqlitelog, pglog); uno.projection, uno.tenant, uno.entries
//	uno.projection.async     an async projection's fold of a batch (sqlitelog, pglog): a new root, linked to the
//	                         uno.log.append span of each entry it folds; uno.projection, uno.tenant, uno.from, uno.to
//	uno.server.fanout (producer) an entry sent to another session; uno.tenant, uno.seq, uno.site (the receiver's)
//	uno.client.apply (consumer) client: applying a Changes (links the other traced entries it carries); uno.from, uno.to, uno.entries
//
// The chain is uno.client.tx → uno.client.push → uno.server.push →
// uno.log.append → uno.projection.inline and → uno.server.fanout →
// uno.client.apply. Failed spans have an error status with the coded
// reason, never a value. Both logs keep the traceparent of each traced
// entry's append span with the entry (a nullable column), which is how
// an async projection's fold, later and in another transaction, links to
// it; their async spans go to the otel global provider (sqlitelog:
// Options.TracerProvider, if set). `uno serve` exports spans over OTLP/HTTP when
// the standard OTEL_* environment variables ask for it (see the cli
// package).
//
// # Tenancy
//
// The tenant always comes from the token and is an explicit argument of
// every log call, never taken from a payload or a context. With a
// tenancy.Registry (both logs have one), tenants have rate limits, row
// and byte quotas (CodeQuotaExceeded; the incoming transaction counts) and
// a retention.
package server
