// Package pglog is uno's event log on PostgreSQL (github.com/jackc/pgx/v5):
// the system of record in production, shared by any number of `uno serve`
// processes. It passes the same conformance suite (server/logtest) as the
// embedded SQLite log.
//
// # Tenancy
//
// Every table leads its keys with tenant_id and is under forced
// row-level security; the server connects as a role that owns nothing
// and is no superuser, and sets the tenant per transaction with
// set_config(..., true). [Migrate] (uno migrate up) runs the versioned
// migrations as the tables' owner.
//
// # Appends and wake-ups
//
// A tenant's appends take its head row FOR UPDATE, so sequence numbers
// are gap-free and in commit order; reads and merging happen before the
// lock, conditional writes under it. The rows read model is folded in
// the append transaction. Each commit sends NOTIFY uno_log "tenant seq";
// every node's listener wakes its readers, which then read the log (a
// notification is never trusted beyond a wake-up).
//
// # Memory
//
// The encodings of the entries a node appends or reads lately are kept
// (16 MiB at most), so a fan-out to many connections encodes each entry
// once ([Log.Encoded]).
//
// # Projections, registry, retention
//
// Applications add read models as [Projection]s, inline or async with a
// checkpoint, rebuilt with [RebuildProjection]. [Registry] is the tenant
// registry (table uno_tenants) with its administration; [Log.Retain]
// forgets entries older than a tenant's retention once every async
// projection has folded them; [Log.Compact] drops the doc changes of old
// entries and moves the tenant's compaction floor (columns of
// uno_heads), below which [Log.Read] serves nothing. [Log.SaveRun] and
// [Log.Runs] keep each site's runs (server.SiteRunner, table
// uno_site_runs): which epoch of the replica's store wrote its
// transactions from which sequence number on.
package pglog
