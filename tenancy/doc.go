// Package tenancy verifies the tokens that name a session's tenant and
// user. The tenant always comes from a verified token, never from a
// payload.
//
// # Tokens
//
// [Verifier] checks JWTs (github.com/golang-jwt/jwt/v5) with exactly one
// configured algorithm — EdDSA or ES256 for production, HS256 for
// development — so "alg: none" and key-confusion tokens are refused. The
// expiry claim is required; audience and issuer are checked when
// configured; a small leeway absorbs clock skew. Oversized tokens are
// refused before parsing.
//
// The package is pure: keys come in through Config.
package tenancy
