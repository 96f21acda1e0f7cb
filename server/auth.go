package server

import (
	"context"
	"errors"
	"log/slog"
	"strings"

	usync "github.com/unosync/uno/sync"
	"github.com/unosync/uno/tenancy"
)

// authenticate verifies a token with the configured Authenticator and
// turns its refusal into the protocol's code: the one place that decides
// who a sync session, a query or a live stream acts as. An identity whose
// expiry has passed is refused as expired, whatever the Authenticator
// says. A refusal is logged at Warn with the remote address it came from,
// never with the token.
func (s *Server) authenticate(ctx context.Context, token, remote string) (tenancy.Identity, error) {
	id, err := s.identify(ctx, token)
	if err != nil {
		se := asSyncError(err)
		reason := se.Message
		if token != "" { // an Authenticator may quote what it refused
			reason = strings.ReplaceAll(reason, token, "<token>")
		}
		s.refusedAuth(ctx, remote, se.Code, reason)
		return tenancy.Identity{}, se
	}
	return id, nil
}

// refusedAuth logs a refused authentication. reason must not hold the
// token.
func (s *Server) refusedAuth(ctx context.Context, remote string, code usync.Code, reason string) {
	s.cfg.Logger.LogAttrs(ctx, slog.LevelWarn, "authentication refused",
		slog.Int("code", int(code)), slog.String("remote", remote), slog.String("reason", reason))
}

// identify is authenticate without the log.
func (s *Server) identify(ctx context.Context, token string) (tenancy.Identity, error) {
	id, err := s.cfg.Auth.Authenticate(ctx, token)
	switch {
	case errors.Is(err, tenancy.ErrExpired):
		return tenancy.Identity{}, usync.Errorf(usync.CodeTokenExpired, "%v: get a fresh token", err)
	case err != nil:
		if se := (*usync.Error)(nil); errors.As(err, &se) {
			return tenancy.Identity{}, se
		}
		return tenancy.Identity{}, usync.Errorf(usync.CodeUnauthorized, "%v", err)
	case tenancy.ValidTenant(id.Tenant) != nil:
		return tenancy.Identity{}, usync.Errorf(usync.CodeUnauthorized, "the token names no valid tenant")
	case !id.Expires.IsZero() && !s.cfg.Now().Before(id.Expires):
		return tenancy.Identity{}, usync.Errorf(usync.CodeTokenExpired, "the token expired: get a fresh one")
	}
	return id, nil
}

// admit checks the registry for a tenant and returns its entry.
func (s *Server) admit(ctx context.Context, tenant string) (tenancy.Tenant, error) {
	if s.cfg.Registry == nil {
		return tenancy.Tenant{ID: tenant}, nil
	}
	t, err := s.cfg.Registry.Tenant(ctx, tenant)
	switch {
	case errors.Is(err, tenancy.ErrUnknownTenant):
		return tenancy.Tenant{}, usync.Errorf(usync.CodeForbidden, "tenant %q is not registered", tenant)
	case err != nil:
		s.cfg.Logger.Error("tenant registry", "tenant", tenant, "err", err)
		return tenancy.Tenant{}, usync.Errorf(usync.CodeUnavailable, "tenant registry unavailable: retry later")
	case t.Suspended:
		return tenancy.Tenant{}, usync.Errorf(usync.CodeForbidden, "tenant %q is suspended", tenant)
	}
	return t, nil
}
