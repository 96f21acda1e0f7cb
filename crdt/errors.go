package crdt

import "errors"

// Errors returned by this package. ErrClockDrift is declared with
// [DriftError] in clock.go.
var (
	// ErrMalformedOp reports an op that no correct writer produces: a
	// bad causal length, a missing field or an op type that does not fit
	// the field kind. Applying it changes nothing.
	ErrMalformedOp = errors.New("crdt: malformed op")
	// ErrDecode reports bytes that are not a valid encoding.
	ErrDecode = errors.New("crdt: decode")
)
