package crdt

import "errors"

// Errors returned by this package. ErrClockDrift is declared with
// [DriftError] in clock.go, ErrKindMismatch with [Builder].
//
// The validation errors (ErrInvalidName, ErrInvalidID, ErrInvalidValue,
// ErrUndeclared, ErrRowTooLarge) come from the rules in validate.go that
// clients and servers both run; wrapped, they say which transaction, op,
// collection, row and field were at fault.
var (
	// ErrMalformedOp reports an op that no correct writer produces: a
	// bad causal length, a missing field or an op type that does not fit
	// the field kind. Applying it changes nothing.
	ErrMalformedOp = errors.New("crdt: malformed op")
	// ErrDecode reports bytes that are not a valid encoding.
	ErrDecode = errors.New("crdt: decode")
	// ErrInvalidName reports a collection or field name that is not
	// [a-z][a-z0-9_]{0,62}, starts with the reserved "sqlite_", or is a
	// field named "id" (the row ID). Rename it.
	ErrInvalidName = errors.New("crdt: invalid name: use [a-z][a-z0-9_]{0,62}")
	// ErrInvalidID reports a row ID that is empty, longer than
	// [MaxIDBytes] or not valid UTF-8.
	ErrInvalidID = errors.New("crdt: invalid row id: use 1 to 256 bytes of UTF-8")
	// ErrInvalidValue reports a value that not every replica can store:
	// a register value that is not exactly one JSON value, a set member
	// that is not a JSON scalar, a value over [Limits.MaxValueBytes] or
	// nested deeper than [Limits.MaxDepth], or a value on an op that
	// takes none.
	ErrInvalidValue = errors.New("crdt: invalid value")
	// ErrUndeclared reports a write to a collection or field the declared
	// [Schema] lacks, or with another kind than declared. Declare it, or
	// write it with the declared kind.
	ErrUndeclared = errors.New("crdt: not as declared in the schema")
	// ErrInvalidSchema reports a [Schema] that cannot be used: a bad
	// name, a duplicate or an unknown kind.
	ErrInvalidSchema = errors.New("crdt: invalid schema")
	// ErrRowTooLarge reports a write after which a row's merged state
	// would exceed [Limits.MaxRowBytes], the largest row a sync message
	// carries. Split the data over more rows.
	ErrRowTooLarge = errors.New("crdt: row too large: split the data over more rows")
)
