// Package conflicttest checks custom conflict resolvers in tests.
//
// A [conflict.Resolver] must be deterministic, commutative, associative
// and idempotent, or replicas that received concurrent values in
// different orders would show different results. [CheckResolver] checks
// those laws with property-based tests (pgregory.net/rapid) over values
// written by a few sites at random times; [JSONScalar] is its default
// value generator.
//
// # Testing
//
// Call it from a test of your app:
//
//	func TestMaxResolver(t *testing.T) {
//		conflicttest.CheckResolver(t, maxResolver, nil)
//	}
//
// It is a package of its own, apart from package conflict, so that an
// application linking uno links neither the testing package nor rapid
// (nor gets their command-line flags): import it from _test.go files only.
package conflicttest
