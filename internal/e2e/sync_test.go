package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/unosync/uno/client"
	"github.com/unosync/uno/crdt"
	"github.com/unosync/uno/server"
	"github.com/unosync/uno/server/sqlitelog"
	usync "github.com/unosync/uno/sync"
	"github.com/unosync/uno/tenancy"
)

// testLog is what the tests read of a server's log.
type testLog interface {
	server.Log
	RowsHash(ctx context.Context, tenant string) ([32]byte, error)
}

// env is a running server and how to reach it.
type env struct {
	log    testLog
	server *server.Server
	auth   *tenancy.DevAuth // the development token, unless cfg.Auth was given
	url    string           // the sync endpoint, ws://
	http   string           // the server's base URL, http://
	addr   string           // host:port
}

// startServer starts a server on the embedded log with a development token.
func startServer(t *testing.T) *env { return startServerWith(t, server.Config{}) }

// startServerWith starts a server on a loopback socket with cfg: an
// embedded SQLite log unless cfg.Log is set, a development token unless
// cfg.Auth is. Everything is closed when the test ends.
func startServerWith(t *testing.T, cfg server.Config) *env {
	t.Helper()
	if cfg.Log == nil {
		l, err := sqlitelog.Open(context.Background(), filepath.Join(t.TempDir(), "server.db"), nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		cfg.Log = l
	}
	e := &env{log: cfg.Log.(testLog)}
	if cfg.Auth == nil {
		auth, err := tenancy.NewDevAuth("dev")
		if err != nil {
			t.Fatal(err)
		}
		cfg.Auth, e.auth = auth, auth
	}
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.server = srv
	hs := httptest.NewServer(srv)
	t.Cleanup(func() { hs.Close(); srv.Close() })
	e.http, e.addr = hs.URL, strings.TrimPrefix(hs.URL, "http://")
	e.url = "ws://" + e.addr + "/v1/sync"
	return e
}

// client opens a client of the server. Manual clients sync only when
// told to (they are offline in between); the others sync in the
// background.
func (e *env) client(t *testing.T, name string, manual bool) *client.Client {
	t.Helper()
	c, err := client.Open(context.Background(), client.Config{
		Path:       filepath.Join(t.TempDir(), name+".db"),
		Server:     e.url,
		Token:      e.auth.Token,
		ManualSync: manual,
		BackoffMin: 20 * time.Millisecond,
		BackoffMax: time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func syncCtx(t *testing.T, c *client.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.Sync(ctx); err != nil {
		t.Fatalf("Sync: %v", err)
	}
}

// Three clients edit the same rows offline (registers, counters, sets,
// deletes), sync in random order, and end with equal hashes, equal to the
// server's rows read model.
func TestSync_OfflineEditsConverge(t *testing.T) {
	ctx := context.Background()
	e := startServer(t)
	cs := []*client.Client{e.client(t, "a", true), e.client(t, "b", true), e.client(t, "c", true)}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	for round := range 3 {
		for i, c := range cs {
			todos := c.Collection("todos")
			for n := range 10 {
				id := fmt.Sprintf("t%d", rng.IntN(6))
				var err error
				switch rng.IntN(5) {
				case 0:
					err = todos.Put(ctx, id, map[string]any{"title": fmt.Sprintf("%d-%d-%d", round, i, n)})
				case 1:
					err = todos.Increment(ctx, id, "votes", int64(rng.IntN(5)-2))
				case 2:
					err = todos.Add(ctx, id, "tags", fmt.Sprint("tag", rng.IntN(3)))
				case 3:
					err = todos.Remove(ctx, id, "tags", fmt.Sprint("tag", rng.IntN(3)))
				case 4:
					err = todos.Delete(ctx, id)
				}
				if err != nil && !errors.Is(err, client.ErrKindMismatch) {
					t.Fatal(err)
				}
			}
		}
		for _, i := range rng.Perm(len(cs)) {
			syncCtx(t, cs[i])
		}
	}
	// A last pass so that everyone has everything.
	for _, c := range cs {
		syncCtx(t, c)
	}
	want, err := e.log.RowsHash(ctx, "dev")
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range cs {
		h, err := c.Hash(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if h != want {
			t.Errorf("client %d's hash differs from the server's read model", i)
		}
		if n, _ := c.Pending(ctx); n != 0 {
			t.Errorf("client %d still has %d pending transactions", i, n)
		}
	}
}

// Syncing twice, or with nothing to do, changes nothing and duplicates
// nothing in the log.
func TestSync_Idempotent(t *testing.T) {
	ctx := context.Background()
	e := startServer(t)
	a := e.client(t, "a", true)
	if err := a.Collection("todos").Increment(ctx, "x", "n", 5); err != nil {
		t.Fatal(err)
	}
	syncCtx(t, a)
	syncCtx(t, a)
	head, _ := e.log.Head(ctx, "dev")
	if head != 1 {
		t.Fatalf("log head %d after syncing one transaction twice, want 1", head)
	}
	b := e.client(t, "b", true)
	syncCtx(t, b)
	syncCtx(t, b)
	d, err := b.Collection("todos").Get(ctx, "x")
	if err != nil || string(d.Fields["n"]) != "5" {
		t.Fatalf("b sees %v, %v; want n=5", d.Fields, err)
	}
}

func TestSync_BadToken(t *testing.T) {
	ctx := context.Background()
	e := startServer(t)
	c, err := client.Open(ctx, client.Config{Path: filepath.Join(t.TempDir(), "x.db"), Server: e.url, Token: "wrong", ManualSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Collection("todos").Put(ctx, "a", map[string]any{"x": 1}); err != nil {
		t.Fatal(err)
	}
	err = c.Sync(ctx)
	if !errors.Is(err, usync.ErrUnauthorized) {
		t.Fatalf("Sync with a bad token: %v, want ErrUnauthorized", err)
	}
	if head, _ := e.log.Head(ctx, "dev"); head != 0 {
		t.Fatalf("a refused client appended %d entries", head)
	}
	if n, _ := c.Pending(ctx); n != 1 {
		t.Fatalf("a refused sync dropped the outbox (%d pending)", n)
	}
}

// With the background loop, clients converge by themselves: a write on
// one shows up on the others (live tail) with no Sync call, and Status
// reports up-to-date.
func TestSync_BackgroundLiveTail(t *testing.T) {
	ctx := context.Background()
	e := startServer(t)
	a, b := e.client(t, "a", false), e.client(t, "b", false)
	w, err := b.Collection("todos").Watch(ctx, client.Query{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	<-w.C
	if err := a.Collection("todos").Put(ctx, "t1", map[string]any{"title": "from a"}); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(10 * time.Second)
	for {
		select {
		case docs := <-w.C:
			if len(docs) == 1 && string(docs[0].Fields["title"]) == `"from a"` {
				goto seen
			}
		case <-deadline:
			t.Fatal("b's watch never saw a's write")
		}
	}
seen:
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := a.Sync(sctx); err != nil {
		t.Fatal(err)
	}
	if st := a.Status(); st.State != client.StateUpToDate || st.Pending != 0 {
		t.Fatalf("a's status after Sync: %+v", st)
	}
	ha, _ := a.Hash(ctx)
	hb, _ := b.Hash(ctx)
	if ha != hb {
		t.Fatal("a and b differ")
	}
}

// A client started while the server is down works offline, reports
// offline, and syncs by itself once the server is up.
func TestSync_ReconnectsByItself(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	l, err := sqlitelog.Open(ctx, filepath.Join(dir, "server.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	auth, _ := tenancy.NewDevAuth("dev")
	srv, err := server.New(server.Config{Log: l, Auth: auth})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	hs := httptest.NewUnstartedServer(srv)
	url := "ws" + strings.TrimPrefix("http://"+hs.Listener.Addr().String(), "http") + "/v1/sync"
	c, err := client.Open(ctx, client.Config{Path: filepath.Join(dir, "c.db"), Server: url, Token: auth.Token,
		BackoffMin: 20 * time.Millisecond, BackoffMax: 200 * time.Millisecond, DialTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Collection("todos").Put(ctx, "t1", map[string]any{"title": "offline"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { st := c.Status(); return st.State == client.StateOffline && st.Err != nil })
	hs.Start()
	defer hs.Close()
	waitFor(t, func() bool { h, _ := l.Head(ctx, "dev"); return h == 1 })
	waitFor(t, func() bool { return c.Status().State == client.StateUpToDate })
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	// A bound, not a wait: it passes as soon as cond holds, and a busy
	// machine may need many times what a quiet one does.
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 60s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

var _ = crdt.SiteID{}

// The server's health, readiness and metrics endpoints answer, and the
// metrics count what a sync did.
func TestServer_Endpoints(t *testing.T) {
	ctx := context.Background()
	e := startServer(t)
	a := e.client(t, "a", true)
	if err := a.Collection("todos").Put(ctx, "t1", map[string]any{"title": "x"}); err != nil {
		t.Fatal(err)
	}
	syncCtx(t, a)
	base := e.http
	for path, want := range map[string]string{
		"/healthz": "ok",
		"/readyz":  "ready",
		"/metrics": "uno_events_appended_total 1",
	} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), want) {
			t.Errorf("GET %s: %d, body lacks %q:\n%.500s", path, resp.StatusCode, want, body)
		}
	}
}

// A new client bootstraps from a chunked snapshot of the read model (with
// progress), merges it with its own offline edits, then streams changes.
func TestSync_BootstrapFromSnapshot(t *testing.T) {
	ctx := context.Background()
	e := startServerWith(t, server.Config{BatchRows: 7})
	l := e.log

	a := e.client(t, "a", true)
	err := a.Tx(ctx, func(tx *client.Tx) error {
		for i := range 100 {
			if err := tx.Put("items", fmt.Sprintf("i%03d", i), map[string]any{"n": i}); err != nil {
				return err
			}
		}
		return tx.Increment("items", "i000", "hits", 3)
	})
	if err != nil {
		t.Fatal(err)
	}
	syncCtx(t, a)
	// b edits offline first: its edit must survive the snapshot.
	b := e.client(t, "b", true)
	if err := b.Collection("items").Increment(ctx, "i000", "hits", 2); err != nil {
		t.Fatal(err)
	}
	syncCtx(t, b)
	st := b.Status()
	if !st.Bootstrap.Done || st.Bootstrap.Rows != 100 || st.Bootstrap.TotalRows != 100 || st.Bootstrap.Bytes != st.Bootstrap.TotalBytes {
		t.Fatalf("bootstrap progress %+v, want 100 of 100 rows, done", st.Bootstrap)
	}
	d, err := b.Collection("items").Get(ctx, "i000")
	if err != nil || string(d.Fields["hits"]) != "5" {
		t.Fatalf("i000 on b: %v, %v; want hits 5 (3 from the snapshot + 2 offline)", d.Fields, err)
	}
	// Then changes stream: a's next write reaches b.
	if err := a.Collection("items").Put(ctx, "new", map[string]any{"n": -1}); err != nil {
		t.Fatal(err)
	}
	syncCtx(t, a)
	syncCtx(t, b)
	syncCtx(t, a)
	want, _ := l.RowsHash(ctx, "dev")
	for name, c := range map[string]*client.Client{"a": a, "b": b} {
		if h, _ := c.Hash(ctx); h != want {
			t.Errorf("%s differs from the server's read model", name)
		}
	}
}

// A bootstrap cut off midway resumes where it stopped: the server sends
// each row about once, and the client ends equal to the read model.
func TestSync_BootstrapResumes(t *testing.T) {
	ctx := context.Background()
	e := startServerWith(t, server.Config{BatchRows: 7})
	l, auth := e.log, e.auth
	const rows = 3000
	a := e.client(t, "a", true)
	err := a.Tx(ctx, func(tx *client.Tx) error {
		for i := range rows {
			if err := tx.Put("items", fmt.Sprintf("i%05d", i), map[string]any{"n": i}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	syncCtx(t, a)

	proxy := newCutProxy(t, e.addr)
	b, err := client.Open(ctx, client.Config{Path: filepath.Join(t.TempDir(), "b.db"),
		Server: "ws://" + proxy.addr() + "/v1/sync", Token: auth.Token,
		BackoffMin: 10 * time.Millisecond, BackoffMax: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	waitFor(t, func() bool { return b.Status().Bootstrap.Rows >= 300 })
	proxy.cut() // cut it midway; the client reconnects by itself
	t.Logf("cut at %+v", b.Status().Bootstrap)
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := b.Sync(sctx); err != nil {
		t.Fatal(err)
	}
	st := b.Status()
	if !st.Bootstrap.Done || st.Bootstrap.Rows != rows {
		t.Fatalf("bootstrap %+v, want %d rows, done", st.Bootstrap, rows)
	}
	want, _ := l.RowsHash(ctx, "dev")
	if h, _ := b.Hash(ctx); h != want {
		t.Fatal("b differs from the server's read model")
	}
	resp, err := http.Get(e.http + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var sent, resumes float64
	for _, line := range strings.Split(string(body), "\n") {
		fmt.Sscanf(line, "uno_snapshot_rows_total %g", &sent)
		fmt.Sscanf(line, "uno_snapshot_resumes_total %g", &resumes)
	}
	if resumes < 1 {
		t.Fatalf("no bootstrap was resumed (%v rows sent)", sent)
	}
	if sent > rows+4*7*2 { // at most a window of chunks in flight is sent twice
		t.Fatalf("the server sent %v snapshot rows for %d: the bootstrap restarted instead of resuming", sent, rows)
	}
}

// Status events: a background client goes connecting → syncing or
// up-to-date, reports its pending count, and goes offline with the error
// when the server goes away.
func TestSync_StatusEvents(t *testing.T) {
	ctx := context.Background()
	e := startServer(t)
	proxy := newCutProxy(t, e.addr)
	c, err := client.Open(ctx, client.Config{Path: filepath.Join(t.TempDir(), "c.db"),
		Server: "ws://" + proxy.addr() + "/v1/sync", Token: e.auth.Token,
		BackoffMin: 50 * time.Millisecond, BackoffMax: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	events := c.StatusChanges(t.Context())
	seen := map[client.SyncState]bool{}
	deadline := time.After(10 * time.Second)
	for !seen[client.StateUpToDate] {
		select {
		case st := <-events:
			seen[st.State] = true
		case <-deadline:
			t.Fatalf("never up to date; saw %v", seen)
		}
	}
	if !seen[client.StateConnecting] {
		t.Errorf("no connecting event before up-to-date: %v", seen)
	}
	if st := c.Status(); st.LastSync.IsZero() || st.Pending != 0 {
		t.Errorf("up-to-date status %+v: want a last sync time and nothing pending", st)
	}
	proxy.cut()
	for {
		select {
		case st := <-events:
			if st.State == client.StateOffline {
				if st.Err == nil || st.Retry.IsZero() {
					t.Errorf("offline status %+v: want the error and the retry time", st)
				}
				return
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no offline event after the connection was cut")
		}
	}
}

// A client subscribed to some collections receives only those, by
// snapshot and by changes; its own writes elsewhere still go up.
func TestSync_Subscriptions(t *testing.T) {
	ctx := context.Background()
	e := startServer(t)
	a := e.client(t, "a", true)
	put := func(c *client.Client, coll, id, v string) {
		t.Helper()
		if err := c.Collection(coll).Put(ctx, id, map[string]any{"v": v}); err != nil {
			t.Fatal(err)
		}
	}
	put(a, "todos", "t1", "x")
	put(a, "notes", "n1", "x")
	syncCtx(t, a)
	b, err := client.Open(ctx, client.Config{Path: filepath.Join(t.TempDir(), "b.db"), Server: e.url, Token: e.auth.Token,
		ManualSync: true, Subscriptions: []string{"todos"}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	syncCtx(t, b) // bootstrap
	put(a, "todos", "t2", "y")
	put(a, "notes", "n2", "y")
	syncCtx(t, a)
	put(b, "notes", "mine", "z") // b may still write there
	syncCtx(t, b)                // changes
	for _, id := range []string{"t1", "t2"} {
		if _, err := b.Collection("todos").Get(ctx, id); err != nil {
			t.Errorf("b lacks todos/%s: %v", id, err)
		}
	}
	for _, id := range []string{"n1", "n2"} {
		if _, err := b.Collection("notes").Get(ctx, id); !errors.Is(err, client.ErrNotFound) {
			t.Errorf("b received notes/%s, outside its subscription (%v)", id, err)
		}
	}
	syncCtx(t, a)
	if _, err := a.Collection("notes").Get(ctx, "mine"); err != nil {
		t.Errorf("b's write outside its subscription did not reach a: %v", err)
	}
	if _, err := client.Open(ctx, client.Config{Path: filepath.Join(t.TempDir(), "c.db"), Subscriptions: []string{"Bad Name"}}); !errors.Is(err, client.ErrInvalidName) {
		t.Errorf("a bad subscription name: %v", err)
	}
}
