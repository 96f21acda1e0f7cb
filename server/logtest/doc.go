// Package logtest holds the conformance suites every event log runs.
//
// [Run] checks the server.Log contract: idempotent appends, gap-free
// commit-ordered sequence numbers under concurrent appenders, per-site
// FIFO, reading from a cursor within a byte bound, wake-ups and tenant
// isolation. It then checks each capability the log implements, found by
// type assertion: the rows read model (RowHasher: equal to the merged
// state; RowStater: states of named rows, and Append refusing a row over
// server.MaxRowBytes), Snapshotter (chunks bounded by rows and bytes,
// resumable), RowQuerier (filters, one order both logs share, cursor
// pages; doc fields as JSON), EncodedTail (the encodings are the
// entries'), Watcher (a watch fires as a wait does, and a cancelled
// one does not), SiteRunner (the runs covering a span of a site's seqs;
// a saved run replaces those from its First on; epochs keep all 64 bits;
// sites and tenants apart), Retainer (retention keeps heads and marks; a
// reader behind the cut sees the gap) and Compactor (doc changes dropped below a bound,
// nothing else changed; nothing served below the floor). Append's
// refusal of a doc change that skips one of its site's is checked with
// the rows read model. The cases that make Automerge changes run in
// builds with the Automerge library (crdt.DocEditing).
//
// [RunRegistry] checks a tenancy.Admin registry with the log on the same
// store: creation, limits, suspension, export and deletion of a tenant's
// data (its sites' runs included).
//
// Both logs (server/sqlitelog and server/pglog) implement every
// capability and run both suites.
package logtest
