// Package tenancy decides who a request acts as and what its tenant may
// do: identities from tokens, the tenant registry's entries and limits,
// and per-tenant rate limits. The tenant always comes from a verified
// token, never from a payload.
//
// # Identity
//
// An [Authenticator] turns a token into an [Identity]: a tenant, a user
// and an expiry. [DevAuth] is the development mode (one printed token);
// [JWTAuth] checks JWTs with a [Verifier] (github.com/golang-jwt/jwt/v5)
// with exactly one configured algorithm — EdDSA or ES256 for production,
// HS256 for development — so "alg: none" and key-confusion tokens are
// refused. The expiry claim is required; audience and issuer are checked
// when configured; the leeway that absorbs clock skew is part of the
// identity's expiry, so every path (sync, queries, live streams) ends a
// token's use at the same moment. Oversized tokens are refused before
// parsing.
//
// # Registry and limits
//
// A [Registry] holds each [Tenant]'s status and limits (its
// implementations live with the event logs, package server/sqlitelog and
// server/pglog); [Limiter] enforces transactions per second with
// golang.org/x/time/rate and evicts idle tenants' buckets.
//
// The package does no IO of its own: keys come in through Config.
package tenancy
