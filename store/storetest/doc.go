// Package storetest is the conformance suite for implementations of
// [store.Store], in the spirit of testing/fstest.TestFS: one test body that
// every store runs. A new store is done when [Run] passes against it.
//
// # Usage
//
// Call [Run] from a test of the implementation with a function that opens
// a fresh, empty store with the given options and registers its cleanup:
//
//	func TestMyStore(t *testing.T) {
//		storetest.Run(t, func(t *testing.T, opts store.Options) store.Store {
//			s, err := mystore.Open(t.TempDir(), opts)
//			if err != nil {
//				t.Fatal(err)
//			}
//			t.Cleanup(func() { s.Close() })
//			return s
//		})
//	}
//
// The suite closes some stores itself, so the cleanup must tolerate a
// second Close (returning nil or an error matching [store.ErrClosed]).
//
// # Options
//
// The open function must honour these fields of [store.Options]: Now (the
// suite drives every store with a fake wall clock), Rand (the suite picks
// site IDs: a new store's site is the first 16 bytes read from Rand),
// MaxDrift and Schema. The suite sets Synchronous to "NORMAL" for its
// randomised tests to keep them fast; other fields keep their defaults.
//
// # What it checks
//
// One subtest per part of the contract of [store.Store]:
//
//   - Write: gap-free sequence numbers from 1 stamped with the store's site
//     and increasing timestamps; a failing or empty function writes nothing
//     and uses no sequence number; the changed keys; the new row states;
//     Schema returns the schema the store was opened with.
//   - Outbox: every local transaction, in order and encoded identically;
//     Pending, paging with after and limit, Ack.
//   - Apply: replicas that exchanged their outboxes have equal hashes;
//     duplicates, transactions at or below a site's high-water mark and
//     echoes of the store's own transactions are skipped; a batch with a
//     gap in a site's sequence numbers, a malformed transaction, a
//     transaction stamped too far in the future or an invalid collection or
//     field name fails whole and changes nothing; the clock moves past
//     applied timestamps.
//   - Conflicts: concurrent register writes are recorded on both sides with
//     both values and the writers' dots, the greater dot winning under
//     last-writer-wins; multi-value fields keep siblings until a write that
//     saw them all.
//   - Row life: a delete hides the row and beats a concurrent update of the
//     same life, in either delivery order; a later write revives the row.
//   - Validation: both Write and Apply run crdt.ValidateTx: a value that
//     is not one JSON value, too deep or too large, or a set member that is
//     not a scalar, is refused with crdt.ErrInvalidValue and changes
//     nothing; a local write outside the declared schema fails with
//     crdt.ErrUndeclared (another replica's applies); a local write that
//     would make a row's state exceed crdt's MaxRowBytes fails with
//     crdt.ErrRowTooLarge.
//   - Query: every operator on strings, integers, floats, booleans, JSON
//     null, missing fields and the row ID; ordering with NULLs and ties;
//     limits; invalid queries. A property test checks random queries over
//     random rows against a reference evaluation of the documented
//     semantics (see [store.Op] and [store.Query]).
//   - Convergence: three replicas writing at random and exchanging their
//     transactions in random batches, with duplicates and echoes, end with
//     equal hashes, equal to a [crdt.State] that applied every transaction.
//   - Concurrency: parallel writers and readers; sequence numbers stay gap-free.
//   - Closed: every method of a closed store fails with [store.ErrClosed].
//
// # Running time
//
// The property tests use pgregory.net/rapid with its default number of
// checks (100; a fifth with -short). The whole suite takes a few seconds
// per implementation (about 20 s for the SQLite store built for GOOS=js
// under Node); run it with -rapid.checks=N for a deeper search.
package storetest
