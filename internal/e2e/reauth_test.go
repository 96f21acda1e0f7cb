package e2e

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
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

// jwtEnv is a server that verifies EdDSA JWTs, and a way to sign them.
type jwtEnv struct {
	*env
	t    *testing.T
	priv ed25519.PrivateKey
}

func startJWTServer(t *testing.T) *jwtEnv {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	v, err := tenancy.NewVerifier(tenancy.Config{Algorithm: "EdDSA", Key: pub, Audience: "uno", Leeway: testLeeway})
	if err != nil {
		t.Fatal(err)
	}
	return &jwtEnv{env: startServerWith(t, server.Config{Auth: &tenancy.JWTAuth{Verifier: v}}), t: t, priv: priv}
}

// token signs a token of tenant that expires after ttl (JWT expiries
// are whole seconds: it lasts ttl-1s to ttl).
func (e *jwtEnv) token(tenant string, ttl time.Duration) string {
	e.t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodEdDSA, jwt.MapClaims{
		"tenant": tenant, "sub": "u", "aud": "uno", "exp": time.Now().Add(ttl).Unix(),
	}).SignedString(e.priv)
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

// expiry is when the server stops accepting token: its exp plus the
// verifier's leeway (testLeeway), on every path alike, in Unix
// milliseconds.
func expiry(t *testing.T, token string) int64 {
	t.Helper()
	c := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(token, c); err != nil {
		t.Fatal(err)
	}
	exp, err := c.GetExpirationTime()
	if err != nil {
		t.Fatal(err)
	}
	return exp.Add(testLeeway).UnixMilli()
}

// testLeeway is the JWT verifiers' leeway in these tests.
const testLeeway = time.Millisecond

// metric reads one counter or gauge from the server's /metrics.
func (e *env) metric(t *testing.T, name string) float64 {
	t.Helper()
	resp, err := http.Get(e.http + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)$`).FindSubmatch(body)
	if m == nil {
		t.Fatalf("/metrics has no %s", name)
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// openRaw opens a raw session of site with token and returns its Welcome.
func openRaw(t *testing.T, ctx context.Context, url string, site crdt.SiteID, token string, credits uint32) (*rawPeer, *usync.Welcome) {
	t.Helper()
	codec, err := usync.NewCodec(usync.CodecConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(codec.Close)
	ws, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.CloseNow() })
	ws.SetReadLimit(int64(codec.Limits().MaxFrameBytes))
	p := &rawPeer{ws: ws, codec: codec}
	p.send(t, ctx, &usync.Hello{Versions: usync.Versions, Site: site, Token: token, Credits: credits})
	w, ok := p.recv(t, ctx).(*usync.Welcome)
	if !ok {
		t.Fatal("no Welcome")
	}
	return p, w
}

// closedWith checks that the session ends with an Error of code, then a
// close frame with its code, and nothing else before them.
func closedWith(t *testing.T, ctx context.Context, p *rawPeer, code usync.Code) {
	t.Helper()
	m := p.recv(t, ctx)
	if em, ok := m.(*usync.ErrorMessage); !ok || em.Code != code {
		t.Fatalf("got %T %+v, want an Error with %v", m, m, code)
	}
	if _, _, err := p.ws.Read(ctx); websocket.CloseStatus(err) != server.CloseCode(code) {
		t.Fatalf("closed with %v (%v), want %v", websocket.CloseStatus(err), err, server.CloseCode(code))
	}
}

// A token renewed with Auth moves the session's expiry: the session
// outlives its first token, and Welcome and AuthOK say when each expires.
func TestReauth_RenewsExpiry(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	e := startJWTServer(t)
	site := crdt.SiteID{0xa0, 1}
	first := e.token("acme", 2*time.Second)
	p, w := openRaw(t, ctx, e.url, site, first, 4)
	if w.Expires != expiry(t, first) {
		t.Fatalf("Welcome.Expires = %d, want the token's expiry %d", w.Expires, expiry(t, first))
	}
	fresh := e.token("acme", time.Hour)
	p.send(t, ctx, &usync.Auth{Token: fresh})
	if ok := nextOf[*usync.AuthOK](t, ctx, p); ok.Expires != expiry(t, fresh) {
		t.Fatalf("AuthOK.Expires = %d, want the new token's expiry %d", ok.Expires, expiry(t, fresh))
	}
	// Past the first token's expiry, the session still takes writes.
	for time.Now().UnixMilli() < expiry(t, first)+200 {
		p.send(t, ctx, &usync.Ping{Nonce: 1})
		nextOf[*usync.Pong](t, ctx, p)
		time.Sleep(100 * time.Millisecond)
	}
	p.send(t, ctx, &usync.Push{Txs: []crdt.Tx{tx(site, 1)}})
	if a := nextOf[*usync.Ack](t, ctx, p); a.HighWater != 1 {
		t.Fatalf("Ack %+v after the first token expired", a)
	}
	if n := e.metric(t, "uno_reauthentications_total"); n != 1 {
		t.Errorf("uno_reauthentications_total = %v, want 1", n)
	}
}

// An Auth whose token does not verify closes the session with
// CodeUnauthorized (CodeTokenExpired for an expired one), and nothing
// pushed after it is appended.
func TestReauth_InvalidToken(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	e := startJWTServer(t)
	good := e.token("acme", time.Hour)
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	forged, err := jwt.NewWithClaims(jwt.SigningMethodEdDSA, jwt.MapClaims{
		"tenant": "acme", "sub": "u", "aud": "uno", "exp": time.Now().Add(time.Hour).Unix(),
	}).SignedString(other)
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range []struct {
		name, token string
		code        usync.Code
	}{
		{"garbage", "not a token", usync.CodeUnauthorized},
		{"empty", "", usync.CodeUnauthorized},
		{"forged", forged, usync.CodeUnauthorized},
		{"tampered", good[:len(good)-4] + "AAAA", usync.CodeUnauthorized},
		{"expired", e.token("acme", -time.Minute), usync.CodeTokenExpired},
	} {
		t.Run(c.name, func(t *testing.T) {
			site := crdt.SiteID{0xb0, byte(i)}
			p, _ := openRaw(t, ctx, e.url, site, good, 4)
			p.send(t, ctx, &usync.Auth{Token: c.token})
			// A push after it (the write may find the socket closed) is not appended.
			p.ws.Write(ctx, websocket.MessageBinary, mustFrame(t, p, &usync.Push{Txs: []crdt.Tx{tx(site, 1)}}))
			closedWith(t, ctx, p, c.code)
			if hw, err := e.log.HighWater(ctx, "acme", site); err != nil || hw != 0 {
				t.Fatalf("high-water of the site after the refused Auth: %d, %v; want 0", hw, err)
			}
		})
	}
}

func mustFrame(t *testing.T, p *rawPeer, m usync.Message) []byte {
	t.Helper()
	b, err := p.codec.Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// An Auth with a valid token of another tenant closes the session with
// CodeForbidden: the session never sees that tenant's data, and nothing
// pushed after it lands in either tenant's log.
func TestReauth_OtherTenant(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	e := startJWTServer(t)

	// globex has data; acme has none.
	g, _ := openRaw(t, ctx, e.url, crdt.SiteID{0xc0, 1}, e.token("globex", time.Hour), 4)
	g.send(t, ctx, &usync.Push{Txs: []crdt.Tx{tx(crdt.SiteID{0xc0, 1}, 1)}})
	nextOf[*usync.Ack](t, ctx, g)

	site := crdt.SiteID{0xc0, 2}
	p, w := openRaw(t, ctx, e.url, site, e.token("acme", time.Hour), 4)
	if w.Head != 0 {
		t.Fatalf("acme's head is %d, want 0", w.Head)
	}
	p.send(t, ctx, &usync.Auth{Token: e.token("globex", time.Hour)})
	// A push after it (the write may find the socket closed) is not appended.
	p.ws.Write(ctx, websocket.MessageBinary, mustFrame(t, p, &usync.Push{Txs: []crdt.Tx{tx(site, 1)}}))
	// The Error comes first: no Changes of globex before it.
	closedWith(t, ctx, p, usync.CodeForbidden)

	for tenant, want := range map[string]uint64{"acme": 0, "globex": 1} {
		if head, err := e.log.Head(ctx, tenant); err != nil || head != want {
			t.Errorf("%s's head after the refused Auth: %d, %v; want %d", tenant, head, err, want)
		}
	}
	if n := e.metric(t, "uno_reauthentications_total"); n != 0 {
		t.Errorf("uno_reauthentications_total = %v, want 0", n)
	}
}

// A client whose tokens last two seconds, with a TokenSource, renews them
// on its connection: it keeps one connection across several expiries and
// its writes keep syncing, also with its clock an hour off the server's
// (the renewal is timed on the server's clock, from Welcome).
func TestReauth_ClientKeepsItsConnection(t *testing.T) {
	for name, offset := range map[string]time.Duration{"clock in step": 0, "clock an hour ahead": time.Hour} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			e := startJWTServer(t)
			var issued atomic.Int32
			c, err := client.Open(ctx, client.Config{Path: filepath.Join(t.TempDir(), "c.db"), Server: e.url,
				TokenSource: func(context.Context) (string, error) { issued.Add(1); return e.token("acme", 2*time.Second), nil },
				BackoffMin:  10 * time.Millisecond, BackoffMax: 100 * time.Millisecond,
				Now: func() time.Time { return time.Now().Add(offset) }})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			// Tokens last 1 to 2 s (whole-second expiries): write for 4.5 s,
			// past the expiry of at least the first two.
			tick := time.NewTicker(300 * time.Millisecond)
			defer tick.Stop()
			writes := 0
			for begin := time.Now(); time.Since(begin) < 4500*time.Millisecond; <-tick.C {
				writes++
				if err := c.Collection("todos").Put(ctx, strconv.Itoa(writes), map[string]any{"n": writes}); err != nil {
					t.Fatal(err)
				}
				if err := c.Sync(ctx); err != nil {
					t.Fatalf("write %d: Sync: %v", writes, err)
				}
			}
			if head, err := e.log.Head(ctx, "acme"); err != nil || head != uint64(writes) {
				t.Fatalf("server head %d (%v) after %d synced writes", head, err, writes)
			}
			if n := e.metric(t, "uno_connections_total"); n != 1 {
				t.Errorf("%v connections, want 1", n)
			}
			renewed := e.metric(t, "uno_reauthentications_total")
			if renewed < 3 || issued.Load() < 4 {
				t.Errorf("%v tokens renewed in band, %d issued; want at least 3 and 4", renewed, issued.Load())
			}
			if st := c.Status(); st.Err != nil {
				t.Errorf("status error %v", st.Err)
			}
			t.Logf("%d writes, %d tokens, %v renewed in band", writes, issued.Load(), renewed)
		})
	}
}

// Client.Reauthenticate renews the token now; one of another tenant
// fails with ErrForbidden and ends the connection, and the client never
// receives that tenant's rows.
func TestReauth_ClientReauthenticate(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	e := startJWTServer(t)

	globex, err := client.Open(ctx, client.Config{Path: filepath.Join(t.TempDir(), "g.db"), Server: e.url,
		Token: e.token("globex", time.Hour), ManualSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer globex.Close()
	if err := globex.Collection("todos").Put(ctx, "secret", map[string]any{"v": 1}); err != nil {
		t.Fatal(err)
	}
	if err := globex.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if err := globex.Reauthenticate(ctx); !errors.Is(err, client.ErrNoTokenSource) {
		t.Fatalf("Reauthenticate without a TokenSource: %v, want ErrNoTokenSource", err)
	}

	var next atomic.Value // the tenant of the next token, once
	c, err := client.Open(ctx, client.Config{Path: filepath.Join(t.TempDir(), "c.db"), Server: e.url,
		TokenSource: func(context.Context) (string, error) {
			tenant := "acme"
			if v := next.Swap(""); v != nil && v != "" {
				tenant = v.(string)
			}
			return e.token(tenant, time.Hour), nil
		},
		BackoffMin: 10 * time.Millisecond, BackoffMax: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Collection("todos").Put(ctx, "a", map[string]any{"v": 1}); err != nil {
		t.Fatal(err)
	}
	if err := c.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Reauthenticate(ctx); err != nil {
		t.Fatalf("Reauthenticate: %v", err)
	}
	if n := e.metric(t, "uno_reauthentications_total"); n != 1 {
		t.Errorf("uno_reauthentications_total = %v, want 1", n)
	}

	next.Store("globex")
	if err := c.Reauthenticate(ctx); !errors.Is(err, usync.ErrForbidden) {
		t.Fatalf("Reauthenticate with a token of another tenant: %v, want ErrForbidden", err)
	}
	// The client reconnects (after its longest backoff, as for any error
	// a retry cannot fix; with acme's token again) and syncs on.
	// (Reauthenticate returns as the refusal arrives, before the status
	// shows the connection gone: wait for the new connection itself.)
	waitFor(t, func() bool {
		return e.metric(t, "uno_connections_total") == 3 && c.Status().State >= client.StateSyncing
	})
	if err := c.Collection("todos").Put(ctx, "b", map[string]any{"v": 2}); err != nil {
		t.Fatal(err)
	}
	if err := c.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if n := e.metric(t, "uno_connections_total"); n != 3 { // globex's, then c's two
		t.Errorf("uno_connections_total = %v, want 3", n)
	}
	docs, err := c.Collection("todos").Find(ctx, client.Query{})
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) != 2 {
		t.Fatalf("the client holds %d rows, want its own 2 (and none of globex's)", len(docs))
	}
	if head, _ := e.log.Head(ctx, "globex"); head != 1 {
		t.Errorf("globex's head %d, want 1", head)
	}
}
