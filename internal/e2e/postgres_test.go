package e2e

import (
	"context"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/unosync/uno/client"
	"github.com/unosync/uno/internal/pgtest"
	"github.com/unosync/uno/server"
	"github.com/unosync/uno/server/pglog"
	usync "github.com/unosync/uno/sync"
	"github.com/unosync/uno/tenancy"
)

// pgEnv is a migrated throwaway Postgres database with a log opened as an
// application role (under row-level security) and the registry opened as
// the owner.
type pgEnv struct {
	admin string
	app   string // the application role's DSN
	log   *pglog.Log
	reg   *pglog.Registry
}

func newPG(t *testing.T, tenants ...tenancy.Tenant) *pgEnv {
	t.Helper()
	ctx := context.Background()
	admin := pgtest.NewDatabase(t)
	if err := pglog.Migrate(ctx, admin, pglog.SchemaVersion); err != nil {
		t.Fatal(err)
	}
	reg, err := pglog.OpenRegistry(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(reg.Close)
	for _, tn := range tenants {
		if err := reg.Create(ctx, tn); err != nil {
			t.Fatal(err)
		}
	}
	app := pgtest.NewAppRole(t, admin)
	l, err := pglog.Open(ctx, app)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return &pgEnv{admin: admin, app: app, log: l, reg: reg}
}

// The same offline-edits scenario through a server whose log is a real
// Postgres: three clients converge, equal to the Postgres read model, and
// a fourth bootstraps from its snapshot.
func TestSync_Postgres(t *testing.T) {
	ctx := context.Background()
	l := newPG(t).log
	e := startServerWith(t, server.Config{Log: l, BatchRows: 5})
	cs := []*client.Client{e.client(t, "a", true), e.client(t, "b", true), e.client(t, "c", true)}
	for round := range 3 {
		for i, c := range cs {
			todos := c.Collection("todos")
			for n := range 8 {
				id := fmt.Sprintf("t%d", (round+i+n)%5)
				if err := todos.Put(ctx, id, map[string]any{"by": i, "n": n}); err != nil {
					t.Fatal(err)
				}
				if err := todos.Increment(ctx, id, "votes", 1); err != nil {
					t.Fatal(err)
				}
			}
			syncCtx(t, c)
		}
	}
	for _, c := range cs {
		syncCtx(t, c)
	}
	want, err := l.RowsHash(ctx, "dev")
	if err != nil {
		t.Fatal(err)
	}
	d := e.client(t, "d", true) // bootstraps from the Postgres read model
	syncCtx(t, d)
	if st := d.Status(); !st.Bootstrap.Done || st.Bootstrap.Rows != 5 {
		t.Errorf("d's bootstrap %+v, want 5 rows", st.Bootstrap)
	}
	for i, c := range append(cs, d) {
		if h, _ := c.Hash(ctx); h != want {
			t.Errorf("client %d differs from the Postgres read model", i)
		}
	}
}

// Two server nodes on one Postgres: a client on node A sees a write made
// through node B live, woken by LISTEN/NOTIFY (no polling).
func TestSync_TwoNodes(t *testing.T) {
	ctx := context.Background()
	admin := pgtest.NewDatabase(t)
	if err := pglog.Migrate(ctx, admin, pglog.SchemaVersion); err != nil {
		t.Fatal(err)
	}
	app := pgtest.NewAppRole(t, admin)
	auth, _ := tenancy.NewDevAuth("dev")
	node := func() string {
		l, err := pglog.Open(ctx, app)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		srv, err := server.New(server.Config{Log: l, Auth: auth})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { srv.Close() })
		hs := httptest.NewServer(srv)
		t.Cleanup(hs.Close)
		return "ws" + strings.TrimPrefix(hs.URL, "http") + "/v1/sync"
	}
	a := (&env{auth: auth, url: node()}).client(t, "a", false)
	b := (&env{auth: auth, url: node()}).client(t, "b", false)
	w, err := a.Collection("todos").Watch(ctx, client.Query{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	<-w.C
	waitFor(t, func() bool { return b.Status().State == client.StateUpToDate })
	var worst time.Duration
	for i := range 5 {
		start := time.Now()
		if err := b.Collection("todos").Put(ctx, fmt.Sprint("t", i), map[string]any{"n": i}); err != nil {
			t.Fatal(err)
		}
		deadline := time.After(5 * time.Second)
	wait:
		for {
			select {
			case docs := <-w.C:
				if len(docs) == i+1 {
					break wait
				}
			case <-deadline:
				t.Fatalf("write %d through node B never reached the client on node A", i)
			}
		}
		worst = max(worst, time.Since(start))
	}
	t.Logf("node B write → node A client watch: worst of 5 %s", worst)
}

// With a tenant registry: an unregistered or suspended tenant is refused
// with CodeForbidden; a tenant over its rate gets CodeRateLimited.
func TestSync_Registry(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin := pgtest.NewDatabase(t)
	if err := pglog.Migrate(ctx, admin, pglog.SchemaVersion); err != nil {
		t.Fatal(err)
	}
	reg, err := pglog.OpenRegistry(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	if err := reg.Create(ctx, tenancy.Tenant{ID: "slow", OpsPerSec: 5}); err != nil {
		t.Fatal(err)
	}
	if err := reg.Create(ctx, tenancy.Tenant{ID: "paused"}); err != nil {
		t.Fatal(err)
	}
	if err := reg.SetSuspended(ctx, "paused", true); err != nil {
		t.Fatal(err)
	}
	l, err := pglog.Open(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	url := startServerWith(t, server.Config{Log: l, Auth: tenantByToken{}, Registry: reg}).url
	for tenant, want := range map[string]usync.Code{"unknown": usync.CodeForbidden, "paused": usync.CodeForbidden} {
		c, err := client.Open(ctx, client.Config{Path: filepath.Join(t.TempDir(), tenant+".db"), Server: url, Token: tenant, ManualSync: true})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Sync(ctx); usync.CodeOf(err) != want {
			t.Errorf("tenant %s: %v, want %v", tenant, err, want)
		}
		c.Close()
	}
	// 20 transactions in one push, at 5 per second: refused, retryable.
	c, err := client.Open(ctx, client.Config{Path: filepath.Join(t.TempDir(), "slow.db"), Server: url, Token: "slow", ManualSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := range 20 {
		if err := c.Collection("items").Put(ctx, fmt.Sprint("r", i), map[string]any{"n": i}); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Sync(ctx); err != nil {
		t.Fatalf("first push within the burst: %v", err)
	}
	for i := range 20 {
		if err := c.Collection("items").Put(ctx, fmt.Sprint("s", i), map[string]any{"n": i}); err != nil {
			t.Fatal(err)
		}
	}
	err = c.Sync(ctx)
	if code := usync.CodeOf(err); code != usync.CodeRateLimited || !code.Retryable() {
		t.Fatalf("over the rate: %v, want CodeRateLimited", err)
	}
}

// tenantByToken is a test Authenticator: the token is the tenant.
type tenantByToken struct{}

func (tenantByToken) Authenticate(_ context.Context, token string) (tenancy.Identity, error) {
	return tenancy.Identity{Tenant: token}, nil
}
