package e2e

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/unosync/uno/client"
	"github.com/unosync/uno/server"
	"github.com/unosync/uno/server/admin"
	"github.com/unosync/uno/server/sqlitelog"
	usync "github.com/unosync/uno/sync"
	"github.com/unosync/uno/tenancy"
)

const adminToken = "an-admin-token-of-at-least-32-bytes!"

// adminEnv is a server with a registry and the dashboard mounted at
// /admin/, as uno serve mounts it, on a real socket.
type adminEnv struct {
	url, http string
	reg       *sqlitelog.Registry
	srv       *server.Server
}

func startAdmin(t *testing.T, tenants ...string) *adminEnv {
	t.Helper()
	ctx := context.Background()
	l, err := sqlitelog.Open(ctx, filepath.Join(t.TempDir(), "log.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	reg := l.Registry()
	for _, id := range tenants {
		if err := reg.Create(ctx, tenancy.Tenant{ID: id, MaxRows: 1000}); err != nil {
			t.Fatal(err)
		}
	}
	srv, err := server.New(server.Config{Log: l, Auth: tenantByToken{}, Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	dash, err := admin.New(admin.Config{Server: srv, Token: adminToken, Registry: reg, Interval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/admin/", dash)
	mux.Handle("/", srv)
	hs := httptest.NewServer(mux)
	t.Cleanup(func() { hs.Close(); srv.Close() })
	return &adminEnv{url: "ws" + strings.TrimPrefix(hs.URL, "http") + "/v1/sync", http: hs.URL, reg: reg, srv: srv}
}

// call makes an admin API request with the bearer token (none if token
// is empty) and decodes the JSON answer into dst.
func (e *adminEnv) call(t *testing.T, method, path, token string, dst any) int {
	t.Helper()
	req, _ := http.NewRequest(method, e.http+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if dst != nil {
		if err := json.NewDecoder(resp.Body).Decode(dst); err != nil {
			t.Fatalf("%s %s: %d, body not JSON: %v", method, path, resp.StatusCode, err)
		}
	}
	return resp.StatusCode
}

// The dashboard opens with the admin token only: not without one, not
// with a tenant's token (which the sync endpoint accepts), not with a
// wrong one; pprof sits behind the same credential; the overview shows
// the live session, the tenant's limits and head, and the appends.
func TestAdmin_AccessAndOverview(t *testing.T) {
	ctx := context.Background()
	e := startAdmin(t, "acme")
	for _, tok := range []string{"", "acme", strings.Repeat("x", 40)} {
		var body map[string]string
		if code := e.call(t, "GET", "/admin/api/overview", tok, &body); code != http.StatusUnauthorized || body["code"] != "unauthorized" {
			t.Fatalf("overview with token %q: %d %v, want 401 unauthorized", tok, code, body)
		}
		if code := e.call(t, "GET", "/admin/debug/pprof/cmdline", tok, nil); code != http.StatusUnauthorized {
			t.Fatalf("pprof with token %q: %d, want 401", tok, code)
		}
	}
	if code := e.call(t, "GET", "/admin/debug/pprof/cmdline", adminToken, nil); code != http.StatusOK {
		t.Fatalf("pprof with the admin token: %d", code)
	}
	if _, err := admin.New(admin.Config{Server: e.srv, Token: "short"}); !errors.Is(err, admin.ErrWeakToken) {
		t.Fatalf("a short admin token: %v, want ErrWeakToken", err)
	}

	c, err := client.Open(ctx, client.Config{Path: filepath.Join(t.TempDir(), "a.db"), Server: e.url, Token: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// A second client receives c's writes: deliveries.
	r, err := client.Open(ctx, client.Config{Path: filepath.Join(t.TempDir(), "r.db"), Server: e.url, Token: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	syncCtx(t, r)
	var o admin.Overview
	if code := e.call(t, "GET", "/admin/api/overview", adminToken, &o); code != http.StatusOK { // the first window starts here
		t.Fatalf("overview: %d", code)
	}
	for i := range 5 {
		if err := c.Collection("todos").Put(ctx, fmt.Sprint("t", i), map[string]any{"title": "secret-value-" + fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	syncCtx(t, c)
	syncCtx(t, r)
	// Rates and latencies are per window: each write shows in one of the
	// windows polled. A delivery's latency is measured only when the
	// server noted the entry's append time before sending it, which a
	// fan-out may outrun (a slow machine, -race): a write more each time
	// round, until one is measured.
	var rate, appendLat, deliveryLat bool
	deadline := time.Now().Add(60 * time.Second)
	for extra := 0; ; extra++ {
		if code := e.call(t, "GET", "/admin/api/overview", adminToken, &o); code != http.StatusOK {
			t.Fatalf("overview: %d", code)
		}
		rate = rate || o.Rates["appended"] > 0 && o.Rates["delivered"] > 0
		appendLat = appendLat || o.Latency["append"].Count > 0 && o.Latency["append"].P99 > 0
		deliveryLat = deliveryLat || o.Latency["delivery"].Count > 0 && o.Latency["delivery"].P99 > 0
		if o.Sessions == 2 && len(o.Tenants) == 1 && o.Tenants[0].Head >= 5 && o.Totals["appended"] == float64(o.Tenants[0].Head) &&
			o.Totals["delivered"] == o.Totals["appended"] && rate && appendLat && deliveryLat {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("overview never showed 2 sessions, the appends and their deliveries with their rates and latencies (rate %v, append %v, delivery %v): %+v",
				rate, appendLat, deliveryLat, o)
		}
		if !deliveryLat && extra%5 == 4 {
			if err := c.Collection("todos").Put(ctx, fmt.Sprint("extra", extra), map[string]any{"title": "secret-value-x"}); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	tv := o.Tenants[0]
	if tv.ID != "acme" || tv.MaxRows != 1000 || tv.Rows != tv.Head || tv.Sessions != 2 || tv.Suspended {
		t.Fatalf("tenant view %+v, want as many rows as writes", tv)
	}
	sites := map[string]bool{}
	for _, s := range o.Live {
		if s.Tenant == "acme" {
			sites[s.Site] = true
		}
	}
	if len(o.Live) != 2 || !sites[c.Site().String()] || !sites[r.Site().String()] {
		t.Fatalf("live sessions %+v, want both clients'", o.Live)
	}
	// The query cache's hit ratio: the same query again and again (the
	// cache admits a result asynchronously), until one is a hit.
	waitFor(t, func() bool {
		if code := e.call(t, "GET", "/v1/collections/todos?limit=10", "acme", nil); code != http.StatusOK {
			t.Fatalf("query: %d", code)
		}
		e.call(t, "GET", "/admin/api/overview", adminToken, &o)
		return o.CacheHitRatio > 0
	})
	raw, _ := json.Marshal(o)
	if strings.Contains(string(raw), "secret-value") {
		t.Fatalf("the overview carries row data: %s", raw)
	}
}

// An operator signs in through the login page and gets a session cookie;
// with it, a state-changing request needs the X-Uno-Admin header (a
// forged cross-site form cannot send it). Suspending a tenant ends its
// live sessions with code 1102 and refuses new ones until it is resumed.
func TestAdmin_LoginSuspendResumeCompact(t *testing.T) {
	ctx := context.Background()
	e := startAdmin(t, "acme", "other")
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar}
	resp, err := hc.PostForm(e.http+"/admin/login", url.Values{"token": {"wrong-" + adminToken}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if !strings.Contains(resp.Request.URL.String(), "/admin/login?failed=1") {
		t.Fatalf("a wrong token ended at %s, want the login page again", resp.Request.URL)
	}
	resp, err = hc.PostForm(e.http+"/admin/login", url.Values{"token": {adminToken}})
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(page), "uno admin") || strings.HasSuffix(resp.Request.URL.Path, "/login") {
		t.Fatalf("after signing in: %d at %s", resp.StatusCode, resp.Request.URL)
	}

	c, err := client.Open(ctx, client.Config{Path: filepath.Join(t.TempDir(), "a.db"), Server: e.url, Token: "acme",
		BackoffMin: 20 * time.Millisecond, BackoffMax: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Collection("todos").Put(ctx, "t1", map[string]any{"title": "x"}); err != nil {
		t.Fatal(err)
	}
	syncCtx(t, c)
	waitFor(t, func() bool { return len(e.srv.Sessions()) == 1 })

	post := func(path string, header bool) (int, map[string]any) {
		req, _ := http.NewRequest("POST", e.http+path, nil)
		if header {
			req.Header.Set("X-Uno-Admin", "1")
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]any
		json.NewDecoder(resp.Body).Decode(&body)
		return resp.StatusCode, body
	}
	if code, body := post("/admin/api/tenants/acme/suspend", false); code != http.StatusForbidden || body["code"] != "csrf" {
		t.Fatalf("suspend with the cookie and no X-Uno-Admin: %d %v, want 403 csrf", code, body)
	}
	if tn, _ := e.reg.Tenant(ctx, "acme"); tn.Suspended {
		t.Fatal("the refused request suspended the tenant")
	}
	if code, body := post("/admin/api/tenants/nobody/suspend", true); code != http.StatusNotFound || body["code"] != "unknown_tenant" {
		t.Fatalf("suspend an unknown tenant: %d %v", code, body)
	}
	code, body := post("/admin/api/tenants/acme/suspend", true)
	if code != http.StatusOK || body["sessions_ended"] != float64(1) {
		t.Fatalf("suspend: %d %v", code, body)
	}
	waitFor(t, func() bool {
		return usync.CodeOf(c.Status().Err) == usync.CodeForbidden && len(e.srv.Sessions()) == 0
	})
	// It stays out: its reconnections are refused.
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	err = c.Sync(sctx)
	cancel()
	if usync.CodeOf(err) != usync.CodeForbidden {
		t.Fatalf("Sync of a suspended tenant: %v, want CodeForbidden", err)
	}
	if code, _ := post("/admin/api/tenants/acme/resume", true); code != http.StatusOK {
		t.Fatalf("resume: %d", code)
	}
	if err := c.Collection("todos").Put(ctx, "t2", map[string]any{"title": "y"}); err != nil {
		t.Fatal(err)
	}
	syncCtx(t, c)
	code, body = post("/admin/api/tenants/acme/compact", true)
	if code != http.StatusOK || body["tenant"] != "acme" {
		t.Fatalf("compact: %d %v", code, body)
	}
	if code, body := post("/admin/api/projections/nothing/rebuild", true); code != http.StatusNotImplemented {
		t.Fatalf("rebuild without a rebuilder: %d %v", code, body)
	}
}

// The live view streams overviews as Server-Sent Events, each newer than
// the last.
func TestAdmin_EventsStream(t *testing.T) {
	e := startAdmin(t, "acme")
	req, _ := http.NewRequest("GET", e.http+"/admin/api/events", nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var times []time.Time
	for sc.Scan() && len(times) < 3 {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		var o admin.Overview
		if err := json.Unmarshal([]byte(data), &o); err != nil {
			t.Fatalf("event: %v", err)
		}
		if n := len(times); n > 0 && !o.Time.After(times[n-1]) {
			t.Fatalf("overview at %v after one at %v", o.Time, times[n-1])
		}
		times = append(times, o.Time)
	}
	if len(times) < 3 {
		t.Fatalf("%d events before the stream ended: %v", len(times), sc.Err())
	}
}

// An async projection that falls behind shows its lag by tenant on the
// dashboard, and the lag goes back to 0 when it catches up.
func TestAdmin_ProjectionLag(t *testing.T) {
	ctx := context.Background()
	var failing atomic.Bool
	failing.Store(true)
	proj := sqlitelog.Projection{
		Name: "per_coll", Async: true,
		Tables: []sqlitelog.Table{{Name: "per_coll", Columns: `tenant TEXT NOT NULL, coll TEXT NOT NULL, n INTEGER NOT NULL, PRIMARY KEY (tenant, coll)`}},
		Fold: func(ctx context.Context, tx *sql.Tx, tenant string, chs []usync.Change) error {
			if failing.Load() {
				return errors.New("the fold is down")
			}
			for _, ch := range chs {
				for _, op := range ch.Tx.Ops {
					if _, err := tx.ExecContext(ctx, `INSERT INTO per_coll VALUES (?, ?, 1) ON CONFLICT (tenant, coll) DO UPDATE SET n = n + 1`, tenant, op.Collection); err != nil {
						return err
					}
				}
			}
			return nil
		},
	}
	path := filepath.Join(t.TempDir(), "log.db")
	if err := sqlitelog.SetupProjections(ctx, path, proj); err != nil {
		t.Fatal(err)
	}
	l, err := sqlitelog.Open(ctx, path, &sqlitelog.Options{Projections: []sqlitelog.Projection{proj}})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	srv, err := server.New(server.Config{Log: l, Auth: tenantByToken{}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	rebuilt := 0
	dash, err := admin.New(admin.Config{Server: srv, Token: adminToken, Projections: []admin.Projection{{Name: "per_coll", Async: true}}, Interval: 50 * time.Millisecond,
		Rebuild: func(ctx context.Context, name string) error {
			rebuilt++
			return sqlitelog.RebuildProjection(ctx, path, proj, nil)
		}})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/admin/", dash)
	mux.Handle("/", srv)
	hs := httptest.NewServer(mux)
	defer hs.Close()
	e := &adminEnv{url: "ws" + strings.TrimPrefix(hs.URL, "http") + "/v1/sync", http: hs.URL, srv: srv}

	c, err := client.Open(ctx, client.Config{Path: filepath.Join(t.TempDir(), "a.db"), Server: e.url, Token: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := range 3 {
		if err := c.Collection("todos").Put(ctx, fmt.Sprint("t", i), map[string]any{"n": i}); err != nil {
			t.Fatal(err)
		}
		syncCtx(t, c) // one entry each
	}
	lag := func() (uint64, bool) {
		var o admin.Overview
		if code := e.call(t, "GET", "/admin/api/overview", adminToken, &o); code != http.StatusOK {
			t.Fatalf("overview: %d", code)
		}
		for _, p := range o.Projections {
			if p.Name == "per_coll" {
				n, ok := p.Lag["acme"]
				return n, ok && p.Checkpoints["acme"]+n == 3
			}
		}
		t.Fatalf("no per_coll in %+v", o.Projections)
		return 0, false
	}
	if n, ok := lag(); !ok || n != 3 {
		t.Fatalf("lag while the fold fails: %d (consistent with the head: %v), want 3", n, ok)
	}
	failing.Store(false)
	waitFor(t, func() bool { n, ok := lag(); return ok && n == 0 })

	// The operator rebuilds it: replayed from the log, the same counts
	// (the table is emptied first, as a broken fold might leave it).
	count := func() int {
		var n int
		if err := l.DB().QueryRowContext(ctx, `SELECT coalesce(sum(n), 0) FROM per_coll WHERE tenant = 'acme'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := count()
	if before == 0 {
		t.Fatal("the projection folded nothing")
	}
	if _, err := l.DB().ExecContext(ctx, `DELETE FROM per_coll`); err != nil {
		t.Fatal(err)
	}
	var body map[string]any
	if code := e.call(t, "POST", "/admin/api/projections/nothing/rebuild", adminToken, &body); code != http.StatusNotFound || body["code"] != "unknown_projection" {
		t.Fatalf("rebuild of an unknown projection: %d %v", code, body)
	}
	if code := e.call(t, "POST", "/admin/api/projections/per_coll/rebuild", adminToken, &body); code != http.StatusOK || body["projection"] != "per_coll" || rebuilt != 1 {
		t.Fatalf("rebuild: %d %v (rebuilt %d times)", code, body, rebuilt)
	}
	if n := count(); n != before {
		t.Fatalf("per_coll after the rebuild: %d ops, want %d as before", n, before)
	}
}
