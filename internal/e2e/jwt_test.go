package e2e

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"
	"github.com/unosync/uno/client"
	"github.com/unosync/uno/crdt"
	"github.com/unosync/uno/server"
	usync "github.com/unosync/uno/sync"
	"github.com/unosync/uno/tenancy"
)

// With JWTs: a token that expires on a live connection closes it with
// CodeTokenExpired and nothing is appended after; a client with a token
// source gets fresh tokens by itself; a token for another tenant never
// sees this one's data.
func TestSync_JWT(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	v, err := tenancy.NewVerifier(tenancy.Config{Algorithm: "EdDSA", Key: pub, Audience: "uno", Leeway: testLeeway})
	if err != nil {
		t.Fatal(err)
	}
	token := func(tenant string, ttl time.Duration) string {
		s, err := jwt.NewWithClaims(jwt.SigningMethodEdDSA, jwt.MapClaims{
			"tenant": tenant, "sub": "u", "aud": "uno", "exp": time.Now().Add(ttl).Unix(),
		}).SignedString(priv)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	e := startServerWith(t, server.Config{Auth: &tenancy.JWTAuth{Verifier: v}})
	l, url := e.log, e.url

	// A raw session whose token expires within two seconds.
	codec, _ := usync.NewCodec(usync.CodecConfig{})
	ws, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	p := &rawPeer{ws: ws, codec: codec}
	site := crdt.SiteID{5, 5}
	p.send(t, ctx, &usync.Hello{Versions: usync.Versions, Site: site, Token: token("acme", 2*time.Second), Credits: 4})
	if _, ok := p.recv(t, ctx).(*usync.Welcome); !ok {
		t.Fatal("no Welcome")
	}
	p.send(t, ctx, &usync.Push{Txs: []crdt.Tx{tx(site, 1)}})
	if a := nextOf[*usync.Ack](t, ctx, p); a.HighWater != 1 {
		t.Fatalf("Ack %+v", a)
	}
	if em := nextOf[*usync.ErrorMessage](t, ctx, p); em.Code != usync.CodeTokenExpired {
		t.Fatalf("at expiry: %+v, want CodeTokenExpired", em)
	}
	if _, _, err := ws.Read(ctx); websocket.CloseStatus(err) != server.CloseCode(usync.CodeTokenExpired) {
		t.Fatalf("closed with %v, want %v", websocket.CloseStatus(err), server.CloseCode(usync.CodeTokenExpired))
	}
	if head, _ := l.Head(ctx, "acme"); head != 1 {
		t.Fatalf("head %d after expiry, want 1", head)
	}

	// Expired, forged and foreign tokens are refused with their codes.
	for name, c := range map[string]struct {
		tok  string
		code usync.Code
	}{
		"expired": {token("acme", -time.Minute), usync.CodeTokenExpired},
		"forged":  {token("acme", time.Hour)[:40] + "x.y.z", usync.CodeUnauthorized},
		"none":    {"eyJhbGciOiJub25lIn0.eyJ0ZW5hbnQiOiJhY21lIn0.", usync.CodeUnauthorized},
	} {
		c2, err := client.Open(ctx, client.Config{Path: filepath.Join(t.TempDir(), name+".db"), Server: url, Token: c.tok, ManualSync: true})
		if err != nil {
			t.Fatal(err)
		}
		if err := c2.Sync(ctx); usync.CodeOf(err) != c.code {
			t.Errorf("%s token: %v, want code %v", name, err, c.code)
		}
		c2.Close()
	}

	// A client with a token source: short tokens, renewed before they
	// expire (see reauth_test.go).
	var issued atomic.Int32
	c, err := client.Open(ctx, client.Config{Path: filepath.Join(t.TempDir(), "c.db"), Server: url,
		TokenSource: func(context.Context) (string, error) { issued.Add(1); return token("acme", 2*time.Second), nil },
		BackoffMin:  10 * time.Millisecond, BackoffMax: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Collection("todos").Put(ctx, "a", map[string]any{"v": 1}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return issued.Load() >= 2 }) // the first token expired; it got another
	if err := c.Collection("todos").Put(ctx, "b", map[string]any{"v": 2}); err != nil {
		t.Fatal(err)
	}
	if err := c.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	// Another tenant sees none of it.
	other, err := client.Open(ctx, client.Config{Path: filepath.Join(t.TempDir(), "o.db"), Server: url, Token: token("globex", time.Hour), ManualSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := other.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if docs, _ := other.Collection("todos").Find(ctx, client.Query{}); len(docs) != 0 {
		t.Fatalf("another tenant received %d rows", len(docs))
	}
}

// A 1 MB token is refused quickly, with its code, and opens nothing.
func TestSync_HugeToken(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	v, _ := tenancy.NewVerifier(tenancy.Config{Algorithm: "EdDSA", Key: pub})
	e := startServerWith(t, server.Config{Auth: &tenancy.JWTAuth{Verifier: v}})
	codec, _ := usync.NewCodec(usync.CodecConfig{})
	ws, _, err := websocket.Dial(ctx, e.url, nil)
	if err != nil {
		t.Fatal(err)
	}
	p := &rawPeer{ws: ws, codec: codec}
	start := time.Now()
	p.send(t, ctx, &usync.Hello{Versions: usync.Versions, Site: crdt.SiteID{1}, Token: strings.Repeat("A", 1<<20)})
	if em, ok := p.recv(t, ctx).(*usync.ErrorMessage); !ok || em.Code != usync.CodeUnauthorized {
		t.Fatalf("1 MB token: %+v, want CodeUnauthorized", em)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("refusing a 1 MB token took %s", d)
	}
}
