package tenancy_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/unosync/uno/tenancy"
)

var now = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func sign(t *testing.T, method jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func claims(edit func(jwt.MapClaims)) jwt.MapClaims {
	c := jwt.MapClaims{"tenant": "acme", "sub": "ann", "aud": "uno", "iss": "auth.example", "exp": now.Add(time.Hour).Unix()}
	if edit != nil {
		edit(c)
	}
	return c
}

func TestVerifier(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	v, err := tenancy.NewVerifier(tenancy.Config{Algorithm: "EdDSA", Key: pub, Audience: "uno", Issuer: "auth.example", Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	good := sign(t, jwt.SigningMethodEdDSA, priv, claims(nil))
	c, err := v.Verify(good)
	if err != nil || c.Tenant != "acme" || c.User != "ann" || !c.Expires.Equal(now.Add(time.Hour)) {
		t.Fatalf("Verify(good) = %+v, %v", c, err)
	}
	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, claims(nil)).SignedString(jwt.UnsafeAllowNoneSignatureType)
	confused := sign(t, jwt.SigningMethodHS256, []byte(pub), claims(nil)) // HS256 keyed with the public key
	tests := []struct {
		name  string
		token string
		want  error
	}{
		{"expired", sign(t, jwt.SigningMethodEdDSA, priv, claims(func(c jwt.MapClaims) { c["exp"] = now.Add(-time.Minute).Unix() })), tenancy.ErrExpired},
		{"no expiry", sign(t, jwt.SigningMethodEdDSA, priv, claims(func(c jwt.MapClaims) { delete(c, "exp") })), tenancy.ErrInvalid},
		{"wrong audience", sign(t, jwt.SigningMethodEdDSA, priv, claims(func(c jwt.MapClaims) { c["aud"] = "other" })), tenancy.ErrInvalid},
		{"wrong issuer", sign(t, jwt.SigningMethodEdDSA, priv, claims(func(c jwt.MapClaims) { c["iss"] = "evil" })), tenancy.ErrInvalid},
		{"no tenant", sign(t, jwt.SigningMethodEdDSA, priv, claims(func(c jwt.MapClaims) { delete(c, "tenant") })), tenancy.ErrInvalid},
		{"alg none", none, tenancy.ErrInvalid},
		{"key confusion", confused, tenancy.ErrInvalid},
		{"tampered", good[:len(good)-4] + "AAAA", tenancy.ErrInvalid},
		{"another key", func() string {
			_, k, _ := ed25519.GenerateKey(rand.Reader)
			return sign(t, jwt.SigningMethodEdDSA, k, claims(nil))
		}(), tenancy.ErrInvalid},
		{"garbage", "not.a.token", tenancy.ErrInvalid},
		{"a 1 MB token", strings.Repeat("A", 1<<20), tenancy.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			if _, err := v.Verify(tt.token); !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
			if time.Since(start) > time.Second {
				t.Fatalf("Verify took %s", time.Since(start))
			}
		})
	}
	// Expired by less than the leeway is still accepted.
	late := sign(t, jwt.SigningMethodEdDSA, priv, claims(func(c jwt.MapClaims) { c["exp"] = now.Add(-10 * time.Second).Unix() }))
	if _, err := v.Verify(late); err != nil {
		t.Fatalf("a token 10s past expiry, within the 30s leeway: %v", err)
	}
}

func TestVerifier_OtherAlgorithms(t *testing.T) {
	ek, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	es, err := tenancy.NewVerifier(tenancy.Config{Algorithm: "ES256", Key: &ek.PublicKey, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	if c, err := es.Verify(sign(t, jwt.SigningMethodES256, ek, claims(nil))); err != nil || c.Tenant != "acme" {
		t.Fatalf("ES256: %+v, %v", c, err)
	}
	secret := []byte("0123456789abcdef0123456789abcdef")
	hs, err := tenancy.NewVerifier(tenancy.Config{Algorithm: "HS256", Key: secret, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	if c, err := hs.Verify(sign(t, jwt.SigningMethodHS256, secret, claims(nil))); err != nil || c.Tenant != "acme" {
		t.Fatalf("HS256: %+v, %v", c, err)
	}
	// An ES256 verifier refuses an HS256 token, whatever its key.
	if _, err := es.Verify(sign(t, jwt.SigningMethodHS256, secret, claims(nil))); !errors.Is(err, tenancy.ErrInvalid) {
		t.Fatalf("ES256 verifier took an HS256 token: %v", err)
	}
	for _, bad := range []tenancy.Config{
		{Algorithm: "RS256"},
		{Algorithm: "EdDSA", Key: []byte("x")},
		{Algorithm: "ES256"},
		{Algorithm: "HS256", Key: []byte("short")},
	} {
		if _, err := tenancy.NewVerifier(bad); err == nil {
			t.Errorf("NewVerifier(%s, %T) succeeded", bad.Algorithm, bad.Key)
		}
	}
}
