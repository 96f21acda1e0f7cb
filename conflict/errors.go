package conflict

import "errors"

// Errors returned by this package.
var (
	// ErrInvalidPolicy reports a policy that cannot work, such as a
	// resolver policy without a resolver.
	ErrInvalidPolicy = errors.New("conflict: invalid policy")
)
