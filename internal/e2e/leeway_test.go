package e2e

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"net/http"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/unosync/uno/crdt"
	"github.com/unosync/uno/server"
	usync "github.com/unosync/uno/sync"
	"github.com/unosync/uno/tenancy"
)

// Finding 7: one leeway everywhere. A token past its exp but within the
// verifier's leeway is accepted by the query API and keeps a sync
// session open; past exp+leeway the session is closed with
// CodeTokenExpired and the query API refuses it (HTTP used to accept a
// token for 30 s more while the WebSocket closed it at once).
func TestAuth_OneLeewayEverywhere(t *testing.T) {
	const leeway = 5 * time.Second
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	v, err := tenancy.NewVerifier(tenancy.Config{Algorithm: "EdDSA", Key: pub, Audience: "uno", Leeway: leeway})
	if err != nil {
		t.Fatal(err)
	}
	e := startServerWith(t, server.Config{Auth: &tenancy.JWTAuth{Verifier: v}})
	exp := time.Now().Add(time.Second).Truncate(time.Second).Add(time.Second)
	tok, err := jwt.NewWithClaims(jwt.SigningMethodEdDSA, jwt.MapClaims{"tenant": "acme", "sub": "u", "aud": "uno", "exp": exp.Unix()}).SignedString(priv)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	site := crdt.SiteID{0x1e, 0xe}
	p, w := openRaw(t, ctx, e.url, site, tok, 4)
	if w.Expires != exp.Add(leeway).UnixMilli() {
		t.Fatalf("Welcome.Expires = %d, want exp + leeway %d", w.Expires, exp.Add(leeway).UnixMilli())
	}
	// Past exp, within the leeway: both paths accept the token.
	for time.Now().Before(exp.Add(leeway / 3)) {
		time.Sleep(50 * time.Millisecond)
	}
	if code, body := httpGet(t, e.http+"/v1/collections/todos", tok); code != http.StatusOK {
		t.Fatalf("query API within the leeway: %d %s", code, body)
	}
	p.send(t, ctx, &usync.Push{Txs: []crdt.Tx{tx(site, 1)}})
	if a := nextOf[*usync.Ack](t, ctx, p); a.HighWater != 1 {
		t.Fatalf("Ack %+v within the leeway", a)
	}
	// Past exp + leeway: the session is closed, the query API refuses.
	em := nextOf[*usync.ErrorMessage](t, ctx, p) // after the session's own Changes
	if em.Code != usync.CodeTokenExpired {
		t.Fatalf("session ended with %+v, want CodeTokenExpired", em)
	}
	if now := time.Now(); now.Before(exp.Add(leeway)) {
		t.Fatalf("the session was closed %s before exp + leeway", exp.Add(leeway).Sub(now))
	}
	if code, _ := httpGet(t, e.http+"/v1/collections/todos", tok); code != http.StatusUnauthorized {
		t.Fatalf("query API past the leeway: %d", code)
	}
}

// Live streams are capped: past MaxStreams a new one is refused with 503
// and a code; one ending frees its slot.
func TestQueryAPI_LiveStreamsAreCapped(t *testing.T) {
	e := startServerWith(t, server.Config{MaxStreams: 2})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	open := func(ctx context.Context) *http.Response {
		req, _ := http.NewRequestWithContext(ctx, "GET", e.http+"/v1/collections/todos?live=1", nil)
		req.Header.Set("Authorization", "Bearer "+e.auth.Token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	first, stop := context.WithCancel(ctx)
	a := open(first)
	b := open(ctx)
	defer b.Body.Close()
	if a.StatusCode != 200 || b.StatusCode != 200 {
		t.Fatalf("streams within the cap: %d %d", a.StatusCode, b.StatusCode)
	}
	c := open(ctx)
	c.Body.Close()
	if c.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("a stream over the cap: %d, want 503", c.StatusCode)
	}
	stop()
	a.Body.Close()
	waitFor(t, func() bool {
		r := open(ctx)
		defer r.Body.Close()
		return r.StatusCode == 200
	})
}
