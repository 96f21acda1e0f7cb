// Package conflict decides what a field shows when replicas wrote it
// concurrently, and describes those conflicts for the client's feed.
//
// uno always merges: every replica keeps the same merge state (see package
// crdt), so conflicts never block sync. A [Policy] per field only chooses
// how concurrent register values are shown:
//
//   - [LWW] (the default): the write with the greatest (timestamp, site).
//   - [Custom]: a [Resolver] folds the concurrent values. It must be
//     deterministic, commutative, associative and idempotent; check it with
//     [github.com/unosync/uno/conflict/conflicttest.CheckResolver] in a
//     test.
//   - [MultiValue]: all concurrent values are kept as siblings
//     ([Resolution.Siblings]) until the app writes a value that resolves them.
//
// Each time a write meets a concurrent one, [Policy.Records] builds a
// [Record] naming the field, both values and their writers. The package is
// pure: no IO.
package conflict
