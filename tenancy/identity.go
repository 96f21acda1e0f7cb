package tenancy

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// Identity is who a session or request acts as: a tenant, and a user
// within it, until an expiry.
type Identity struct {
	Tenant string
	// User is "" when the credentials name no user.
	User string
	// Expires is when the credentials stop being accepted (zero: never).
	// It already includes any leeway: every path (sync sessions, the
	// query API, its live streams) ends at exactly this time.
	Expires time.Time
}

// Authenticator verifies a token and returns the identity it proves. The
// tenant always comes from the token, never from a payload. Errors wrap
// ErrNoToken, ErrInvalid or ErrExpired.
type Authenticator interface {
	Authenticate(ctx context.Context, token string) (Identity, error)
}

// ErrNoToken reports a request without a token.
var ErrNoToken = errors.New("tenancy: no token")

// MaxTenantBytes is the longest tenant ID.
const MaxTenantBytes = 128

// ErrInvalidTenant reports an empty or over-long tenant ID.
var ErrInvalidTenant = errors.New("tenancy: invalid tenant ID")

// ValidTenant checks a tenant ID: 1 to MaxTenantBytes bytes.
func ValidTenant(id string) error {
	if id == "" || len(id) > MaxTenantBytes {
		return fmt.Errorf("%w: %.40q: want 1 to %d bytes", ErrInvalidTenant, id, MaxTenantBytes)
	}
	return nil
}

// DevAuth is the development token mode: one random token, printed when
// the server starts, that grants one tenant as the user "dev". It never
// expires: use it on a loopback address only.
type DevAuth struct {
	Token  string
	Tenant string
}

// NewDevAuth returns a DevAuth with a fresh random token for tenant.
func NewDevAuth(tenant string) (*DevAuth, error) {
	if err := ValidTenant(tenant); err != nil {
		return nil, err
	}
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, fmt.Errorf("make dev token: %w", err)
	}
	return &DevAuth{Token: "dev_" + hex.EncodeToString(b[:]), Tenant: tenant}, nil
}

// Authenticate implements Authenticator.
func (a *DevAuth) Authenticate(_ context.Context, token string) (Identity, error) {
	if token == "" {
		return Identity{}, fmt.Errorf("%w: pass the token uno serve printed", ErrNoToken)
	}
	if subtle.ConstantTimeCompare([]byte(token), []byte(a.Token)) != 1 {
		return Identity{}, fmt.Errorf("%w: unknown development token", ErrInvalid)
	}
	return Identity{Tenant: a.Tenant, User: "dev"}, nil
}

// JWTAuth authenticates with JWTs checked by a Verifier. The identity
// expires at the token's exp plus the verifier's leeway, the last moment
// Verify accepts it: a live session ends then, as a new request would be
// refused.
type JWTAuth struct {
	Verifier *Verifier
}

// Authenticate implements Authenticator.
func (a *JWTAuth) Authenticate(_ context.Context, token string) (Identity, error) {
	if token == "" {
		return Identity{}, fmt.Errorf("%w: send a JWT as the bearer token", ErrNoToken)
	}
	c, err := a.Verifier.Verify(token)
	if err != nil {
		return Identity{}, err
	}
	return Identity{Tenant: c.Tenant, User: c.User, Expires: c.Expires.Add(a.Verifier.cfg.Leeway)}, nil
}
