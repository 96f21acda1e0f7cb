// Package crdt holds uno's data model and merge rules: hybrid logical
// clocks, site IDs, operations and transactions, the merge state of rows
// and fields, the canonical state hash, and the validation rules clients
// and servers share.
//
// The package is pure: no IO, no goroutines, no reading of the clock (time
// comes in as a value). It builds for every platform, GOOS=js included;
// only the Automerge bindings are platform files. The browser binding is
// the one exception to purity: it loads @automerge/automerge the first
// time a doc field is used, through globalThis.__unoLoadAutomerge (which
// wasm/js/uno.js installs), and blocks the calling goroutine until the
// module is there.
//
// # Model
//
// A tenant's data is collections of rows of fields. Each field has a
// [Kind] that fixes how concurrent writes merge:
//
//   - register: last writer wins by (timestamp, site). A [Register] keeps a
//     causal context, so a write that did not see the current value is
//     recognised as concurrent ([Effect.Concurrent]); the conflict package
//     turns that into conflict records and multi-value fields.
//   - counter: a PN-counter ([Counter]); each site only grows its own part.
//   - set: an add-wins observed-remove set ([Set]).
//   - doc: an Automerge document ([DocState]) for collaborative text and
//     nested maps and lists. An [OpChange] carries Automerge changes, each
//     authored by the transaction's site (the Automerge actor ID is the
//     site ID); the state is the union of the changes, so applying them is
//     a join like every other op. [Document] reads and edits a state:
//     natively through automerge-go (cgo), in the browser through
//     @automerge/automerge; a build without either still stores, merges
//     and syncs doc fields, and returns [ErrDocUnavailable] for edits.
//     Both bindings write the same bytes and show the same JSON; text
//     positions ([Document.Splice]) count Unicode code points natively and
//     UTF-16 code units in the browser.
//
// A row's life is a causal length ([Row.CL]): odd while alive, even once
// deleted. A delete beats concurrent updates of the same life, writing to a
// deleted row starts a new life explicitly (OpRevive), and an op of an older
// life is ignored.
//
// # Merging
//
// Every op is a delta: applying it is a join with the current state, so it is
// idempotent, commutative and associative. Replicas that saw the same
// transactions, in any order and with any duplicates, hold equal states and
// equal [State.Hash] values. This is what the property tests check.
//
// # Validation
//
// [ValidateTx] holds the rules every replica and the server run on a
// transaction before it is written: names ([ValidName]), row IDs
// ([ValidID]), values per field kind and the [Limits] on their size and
// nesting, and, given a declared [Schema], the collections, fields and
// kinds it allows. [CheckRowSize] bounds a row's merged state, so any row
// fits in one sync message. Clients run the rules as a courtesy; the
// server's run is the one that counts, and what it accepts every replica
// can apply.
//
// # Clocks
//
// [Clock] is a hybrid logical clock (48-bit milliseconds, 16-bit logical
// counter). A replica that observes a remote timestamp moves past it, so a
// write made after observing another always outranks it, whatever the wall
// clocks say. Remote timestamps too far in the future are rejected with
// a [*DriftError].
package crdt
