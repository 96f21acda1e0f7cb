package tenancy

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Errors returned by Verify. Both wrap the jwt library's reason.
var (
	// ErrExpired reports a token past its expiry.
	ErrExpired = errors.New("tenancy: token expired")
	// ErrInvalid reports a token that is malformed, badly signed, for
	// another audience or issuer, or lacks a claim uno needs.
	ErrInvalid = errors.New("tenancy: invalid token")
)

// MaxTokenBytes is the longest token Verify parses.
const MaxTokenBytes = 8 << 10

// Config configures a Verifier.
type Config struct {
	// Algorithm is the one signing algorithm accepted: "EdDSA", "ES256"
	// or "HS256".
	Algorithm string
	// Key verifies signatures: an ed25519.PublicKey (EdDSA), an
	// *ecdsa.PublicKey (ES256) or the shared secret []byte (HS256, at
	// least 32 bytes).
	Key any
	// Audience and Issuer, when set, must match the token's aud and iss.
	Audience, Issuer string
	// Leeway absorbs clock skew in exp and nbf. Default 30s.
	Leeway time.Duration
	// TenantClaim and UserClaim name the claims holding the tenant and the
	// user. Defaults "tenant" and "sub".
	TenantClaim, UserClaim string
	// Now returns the time; default time.Now.
	Now func() time.Time
}

// Claims are what a verified token says.
type Claims struct {
	Tenant  string
	User    string
	Expires time.Time
}

// Verifier verifies tokens. It is safe for concurrent use.
type Verifier struct {
	cfg    Config
	parser *jwt.Parser
}

// NewVerifier checks cfg and returns a Verifier.
func NewVerifier(cfg Config) (*Verifier, error) {
	switch cfg.Algorithm {
	case "EdDSA":
		if _, ok := cfg.Key.(ed25519.PublicKey); !ok {
			return nil, fmt.Errorf("tenancy: EdDSA needs an ed25519.PublicKey, got %T", cfg.Key)
		}
	case "ES256":
		if k, ok := cfg.Key.(*ecdsa.PublicKey); !ok || k == nil {
			return nil, fmt.Errorf("tenancy: ES256 needs an *ecdsa.PublicKey, got %T", cfg.Key)
		}
	case "HS256":
		if k, ok := cfg.Key.([]byte); !ok || len(k) < 32 {
			return nil, errors.New("tenancy: HS256 needs a secret of at least 32 bytes")
		}
	default:
		return nil, fmt.Errorf("tenancy: algorithm %q: want EdDSA, ES256 or HS256", cfg.Algorithm)
	}
	if cfg.Leeway <= 0 {
		cfg.Leeway = 30 * time.Second
	}
	if cfg.TenantClaim == "" {
		cfg.TenantClaim = "tenant"
	}
	if cfg.UserClaim == "" {
		cfg.UserClaim = "sub"
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods([]string{cfg.Algorithm}),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(cfg.Leeway),
		jwt.WithTimeFunc(cfg.Now),
	}
	if cfg.Audience != "" {
		opts = append(opts, jwt.WithAudience(cfg.Audience))
	}
	if cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(cfg.Issuer))
	}
	return &Verifier{cfg: cfg, parser: jwt.NewParser(opts...)}, nil
}

// Verify checks a token and returns its claims. It returns an error
// wrapping ErrExpired or ErrInvalid.
func (v *Verifier) Verify(token string) (Claims, error) {
	if len(token) > MaxTokenBytes {
		return Claims{}, fmt.Errorf("%w: %d bytes, max %d", ErrInvalid, len(token), MaxTokenBytes)
	}
	var mc jwt.MapClaims
	_, err := v.parser.ParseWithClaims(token, &mc, func(*jwt.Token) (any, error) { return v.cfg.Key, nil })
	if errors.Is(err, jwt.ErrTokenExpired) {
		return Claims{}, fmt.Errorf("%w: %w", ErrExpired, err)
	}
	if err != nil {
		return Claims{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	tenant, _ := mc[v.cfg.TenantClaim].(string)
	if err := ValidTenant(tenant); err != nil {
		return Claims{}, fmt.Errorf("%w: %q claim: %w", ErrInvalid, v.cfg.TenantClaim, err)
	}
	user, _ := mc[v.cfg.UserClaim].(string)
	exp, err := mc.GetExpirationTime()
	if err != nil || exp == nil {
		return Claims{}, fmt.Errorf("%w: no expiry", ErrInvalid)
	}
	return Claims{Tenant: tenant, User: user, Expires: exp.Time}, nil
}
