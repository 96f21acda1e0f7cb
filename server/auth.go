package server

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	usync "github.com/unosync/uno/sync"
	"github.com/unosync/uno/tenancy"
)

// Authenticator verifies a session's token and names its tenant. The
// tenant always comes from the token, never from a payload.
type Authenticator interface {
	Authenticate(ctx context.Context, token string) (tenant string, err error)
}

// DevAuth is the development token mode: one random token, printed when
// the server starts, that grants one tenant. The tenancy work replaces it
// with JWT verification behind the same interface.
type DevAuth struct {
	Token  string
	Tenant string
}

// NewDevAuth returns a DevAuth with a fresh random token for tenant.
func NewDevAuth(tenant string) (*DevAuth, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, fmt.Errorf("make dev token: %w", err)
	}
	return &DevAuth{Token: "dev_" + hex.EncodeToString(b[:]), Tenant: tenant}, nil
}

// Authenticate implements Authenticator.
func (a *DevAuth) Authenticate(_ context.Context, token string) (string, error) {
	if token == "" {
		return "", usync.Errorf(usync.CodeUnauthorized, "no token: pass the token uno serve printed")
	}
	if subtle.ConstantTimeCompare([]byte(token), []byte(a.Token)) != 1 {
		return "", usync.Errorf(usync.CodeUnauthorized, "unknown token")
	}
	return a.Tenant, nil
}

// Identify implements identifying: the development token's user is "dev".
func (a *DevAuth) Identify(ctx context.Context, token string) (Identity, error) {
	tenant, err := a.Authenticate(ctx, token)
	return Identity{Tenant: tenant, User: "dev"}, err
}

// JWTAuth authenticates sessions with JWTs (see package tenancy). Tokens
// expire on live connections too: the session is closed with
// CodeTokenExpired at the token's expiry, and nothing is appended after it,
// unless the client renewed its token in band first (an Auth message with
// a token of the same tenant), which moves the session's expiry to the new
// token's.
type JWTAuth struct {
	Verifier *tenancy.Verifier
}

// Authenticate implements Authenticator.
func (a *JWTAuth) Authenticate(ctx context.Context, token string) (string, error) {
	tenant, _, err := a.AuthenticateUntil(ctx, token)
	return tenant, err
}

// AuthenticateUntil verifies token and returns its tenant and expiry.
func (a *JWTAuth) AuthenticateUntil(_ context.Context, token string) (string, time.Time, error) {
	c, err := a.verify(token)
	if err != nil {
		return "", time.Time{}, err
	}
	return c.Tenant, c.Expires, nil
}

func (a *JWTAuth) verify(token string) (tenancy.Claims, error) {
	c, err := a.Verifier.Verify(token)
	switch {
	case errors.Is(err, tenancy.ErrExpired):
		return c, usync.Errorf(usync.CodeTokenExpired, "%v: get a fresh token", err)
	case err != nil:
		return c, usync.Errorf(usync.CodeUnauthorized, "%v", err)
	}
	return c, nil
}

// expiring is the optional capability of an Authenticator whose
// credentials expire. Welcome and AuthOK tell the client the expiry, so
// that it renews its token in band before then.
type expiring interface {
	AuthenticateUntil(ctx context.Context, token string) (tenant string, until time.Time, err error)
}
