package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/jackc/pgx/v5"
	"github.com/unosync/uno/crdt"
	"github.com/unosync/uno/server"
	usync "github.com/unosync/uno/sync"
)

// Finding 5: a wake-up that brings nothing new does not make idle
// sessions spin. A forged NOTIFY with a head far above the real one, and
// the loss of the LISTEN connection, each make a session read the log
// once, then wait again (they used to run thousands of Postgres
// transactions a second).
func TestWakeUps_NothingNewDoesNotSpin(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	pg := newPG(t)
	e := startServerWith(t, server.Config{Log: pg.log, Auth: tenantByToken{}})
	const sessions = 5
	for range sessions {
		dialRaw(t, ctx, e.url, "acme", 64, 0)
	}
	admin, err := pgx.Connect(ctx, pg.admin)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())

	// acquired counts the log's pool acquisitions (one per query or
	// transaction) over a second after poke.
	acquired := func(poke func()) int64 {
		t.Helper()
		before := pg.log.PoolStat().AcquireCount()
		poke()
		time.Sleep(time.Second) // a window to count in, not a wait for an event
		return pg.log.PoolStat().AcquireCount() - before
	}
	idle := acquired(func() {})
	forged := acquired(func() {
		if _, err := admin.Exec(ctx, `SELECT pg_notify('uno_log', 'acme 999999')`); err != nil {
			t.Fatal(err)
		}
	})
	dropped := acquired(func() {
		if _, err := admin.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'LISTEN%' AND pid <> pg_backend_pid()`); err != nil {
			t.Fatal(err)
		}
	})
	t.Logf("pool acquisitions in 1 s: idle %d, after a forged notification %d, after the listener dropped %d", idle, forged, dropped)
	// A few reads per session per wake-up, never a loop.
	const bound = 20 * sessions
	if forged > bound || dropped > bound {
		t.Fatalf("idle sessions spun: %d and %d acquisitions in a second (bound %d)", forged, dropped, bound)
	}
}

// Finding 10: when Postgres refuses the server, /readyz says so without
// naming the database, its role or its host, and clients get a coded
// error without them either.
func TestPostgresDown_RevealsNothing(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	pg := newPG(t)
	e := startServerWith(t, server.Config{Log: pg.log, Auth: tenantByToken{}})
	app, err := pgx.ParseConfig(pg.app)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := pgx.Connect(ctx, pg.admin)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	role := pgx.Identifier{app.User}.Sanitize()
	if _, err := admin.Exec(ctx, `ALTER ROLE `+role+` NOLOGIN`); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Exec(context.Background(), `ALTER ROLE `+role+` LOGIN`) })
	if _, err := admin.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1`, app.User); err != nil {
		t.Fatal(err)
	}
	secrets := []string{app.User, app.Database, app.Host, fmt.Sprint(app.Port)}
	revealed := func(where, s string) {
		t.Helper()
		for _, x := range secrets {
			if strings.Contains(s, x) {
				t.Fatalf("%s reveals %q: %s", where, x, s)
			}
		}
	}
	var code int
	var body string
	waitFor(t, func() bool { // pooled connections die as they are used
		code, body = httpGet(t, e.http+"/readyz", "")
		return code == http.StatusServiceUnavailable
	})
	revealed("/readyz", body)
	// A client's session gets a coded error, without the details.
	ws, _, err := websocket.Dial(ctx, e.url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	codec, _ := usync.NewCodec(usync.CodecConfig{})
	p := &rawPeer{ws: ws, codec: codec}
	p.send(t, ctx, &usync.Hello{Versions: usync.Versions, Site: crdt.SiteID{0xd0}, Token: "acme", Credits: 4})
	em, ok := p.recv(t, ctx).(*usync.ErrorMessage)
	if !ok || em.Code != usync.CodeUnavailable {
		t.Fatalf("got %+v, want an Error with CodeUnavailable", em)
	}
	revealed("the session's Error", em.Message)
	code, body = httpGet(t, e.http+"/v1/collections/todos", "acme")
	if code != http.StatusServiceUnavailable {
		t.Fatalf("query API: %d %s", code, body)
	}
	revealed("the query API", body)
}
