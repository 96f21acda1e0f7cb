// Package client is the uno library an app embeds: a local replica whose
// every read and write works with no network, and whose concurrent edits
// from many devices merge so that every replica ends identical.
//
// # Usage
//
//	c, err := client.Open(ctx, client.Config{Path: "app.db"})
//	...
//	defer c.Close()
//	todos := c.Collection("todos")
//	err = todos.Put(ctx, "t1", map[string]any{"title": "Buy milk", "done": false})
//	err = todos.Increment(ctx, "t1", "views", 1)
//	doc, err := todos.Get(ctx, "t1")
//
// Data is collections of rows of fields. A field is a register (any JSON
// value, last writer wins), a counter ([Collection.Increment]), a set of
// scalars ([Collection.Add], [Collection.Remove]) or a doc: an Automerge
// document of collaborative text, nested maps and lists, and counters.
// Declare them in Config.Schema to have the client enforce names and
// kinds, choose conflict policies per field and create indexes; without a
// schema any valid name may be written.
//
// # Collaborative documents
//
// A doc field is edited, never written whole: [Tx.Doc] (or
// [Collection.EditDoc]) opens it in a transaction, whose edits —
// [DocEdit.Splice] of text, [DocEdit.Put], [DocEdit.Insert] and
// [DocEdit.Delete] at a [Path] of map keys and list indexes,
// [DocEdit.Increment] of a counter inside — become one Automerge change
// that commits atomically with the transaction's other writes. Concurrent
// edits merge as Automerge merges them: text character by character (two
// words typed at one place at once stay whole), map keys by key, counters
// by sum. [Collection.Text] and [Collection.ReadDoc] read it;
// [Collection.WatchDoc] follows it, with the paths each change touched.
// Rows show a doc as its JSON (text as strings), and so does the field's
// SQL column for documents up to 64 KiB (store.DocColumnMaxBytes).
// Natively this needs cgo (automerge-go); in the browser the client loads
// @automerge/automerge the first time a doc field is used. A build without
// either stores and syncs doc fields but returns [ErrDocUnavailable] for
// reading and editing them.
//
// Several changes commit atomically with [Client.Tx]; one that writes
// many rows it can name up front reads them in one query with
// [Tx.Prefetch] (the browser's batched writes do). [Collection.Find]
// queries with filters, order and limit; [Collection.Watch] is the same
// query kept live, woken by each commit that touches its collection, and
// refreshed by decoding only the rows whose state changed; a watch of a
// whole collection (no filter or limit, in ID order) takes the changed
// rows from the commit itself and reads nothing.
// Collections are also plain SQLite tables: read them with [Client.DB].
//
// # Conflicts
//
// When two replicas write one field concurrently, both keep the same
// winner (see package conflict for the policies) and the conflict feed,
// [Client.Conflicts], records both values and who wrote them.
//
// # Sync
//
// With Config.Server set, the client syncs in the background over a
// WebSocket: it pushes local transactions, receives everyone else's, and
// reconnects when the connection ends ([Client.Status] says where it is,
// [Client.StatusChanges] each time it changes, until its context ends;
// [Client.Sync] waits until it is up to date).
//
// Reconnection backs off exponentially with full jitter: after n failed
// attempts in a row the client waits a random time up to
// min(Config.BackoffMax, Config.BackoffMin·2^(n-1)), so a client retries
// soon after a short outage and clients cut off together come back spread
// out; an error no retry can fix waits a random time up to BackoffMax.
// [Client.Sync] cuts the wait short and connects at once, so an app that
// knows the network is back (or a user who pressed "sync") need not wait.
// A local write cuts it short too, but not twice in a row, so a loop of
// writes against a server that is down makes at most twice the attempts
// the backoff allows.
//
// The token comes from Config.Token or, better, Config.TokenSource: the
// server says when each token expires, and the client gets a fresh one
// from the TokenSource and renews it on the live connection before then,
// so short tokens cost no reconnection. [Client.Reauthenticate] renews it
// at once.
//
// Config.Subscriptions and Config.Where narrow what the client receives
// to some collections and, within them, to rows whose fields equal given
// values (the server may narrow it further by its rules). The replica
// records what it holds; when the configuration changes between runs the
// server sends just the rows the new subscriptions add. A transaction the
// server refuses (a rule, a quota, a write hook) is rolled back locally
// and listed by [Client.Rejections] with its code.
//
// The server never sends a client its own transactions back: the
// server's Ack (after its commit) drops them from the outbox, and the
// replica applied them when they were written. A replica is one database
// file with its own site ID. If the file loses writes the server holds —
// a power cut under DurabilityRelaxed, a file restored from an older
// copy — the server's welcome says so (it holds later writes of the site
// than the file has): the replica moves its sequence number past them, so
// its new writes never reuse one, and bootstraps again, which brings them
// back (a warning in the log says so). Two clients opened on copies of
// one file share a site and keep doing that to each other: give each
// replica its own file.
//
// # Durability
//
// Config.Durability chooses what a committed local write survives. By
// default (DurabilityFull) every local write is fsync'd before Tx
// returns. Changes received from the server and its acknowledgements
// are stored without an fsync of their own: the server holds them and
// the sync cursor moves in the same transaction, so a power cut can only
// make the client fetch them again. DurabilityRelaxed syncs nothing: a
// write survives the app crashing, not a power cut (which may lose the
// last writes; those the server acknowledged come back as above).
//
// # Errors
//
// Bad input returns an error matching one of the Err variables
// (ErrInvalidName, ErrInvalidID, ErrInvalidValue, ErrTooLarge,
// ErrRowTooLarge, ErrUnknownCollection, ErrUnknownField, ErrKindMismatch,
// ErrNotFound, ErrClosed) and writes nothing. The name, ID, value and row
// size errors are crdt's: the rules are the ones the server runs again
// before it accepts a transaction (crdt.ValidateTx).
//
// # Durability
//
// When a write returns, it is committed to the SQLite file together with
// its merge metadata and its outbox entry ([Client.Pending] counts the
// entries no server has acknowledged yet).
//
// # Tracing
//
// With Config.TracerProvider (nil: the otel global, read when the client
// is opened; a no-op unless an SDK is installed) the client records
// OpenTelemetry spans: uno.client.tx for each local write transaction
// (Put, Patch, Delete, Increment, Add, Remove, doc edits and Tx; a child
// of the span in the write's context, if any), uno.client.push for the
// Push that carries it, which continues the write's trace and sends it to
// the server (on protocol version 2; a version 1 server never sees it),
// and uno.client.apply for applying changes whose entries carry another
// writer's trace. The server's spans continue the same trace; the span
// names and attributes are listed in the server package's documentation.
// Spans carry collection names, sequence numbers and counts, never field
// values. The traces of writes not yet pushed are kept in memory (at most
// 4,096): a write pushed after a restart starts a new trace.
//
// # Concurrency
//
// A Client is safe for concurrent use by many goroutines. One process at a
// time may own the database file.
package client
