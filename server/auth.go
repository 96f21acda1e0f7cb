package server

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"fmt"

	usync "github.com/unosync/uno/sync"
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
