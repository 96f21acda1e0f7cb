package pglog_test

import (
	"context"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/unosync/uno/crdt"
	"github.com/unosync/uno/internal/pgtest"
	"github.com/unosync/uno/server/pglog"
	usync "github.com/unosync/uno/sync"
)

// Migrations go up, all the way down and up again on a real database.
func TestPGMigrate_UpDownUp(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.NewDatabase(t)
	tables := func() int {
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		var n int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename LIKE 'uno\_%' AND tablename <> 'uno_schema'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	for _, step := range []struct {
		to, tables int
	}{{pglog.SchemaVersion, 7}, {0, 0}, {1, 4}, {2, 4}, {3, 5}, {8, 6}, {pglog.SchemaVersion, 7}, {1, 4}, {pglog.SchemaVersion, 7}} {
		if err := pglog.Migrate(ctx, dsn, step.to); err != nil {
			t.Fatalf("migrate to %d: %v", step.to, err)
		}
		have, want, err := pglog.SchemaStatus(ctx, dsn)
		if err != nil || have != step.to || want != pglog.SchemaVersion {
			t.Fatalf("status after migrating to %d: have %d want %d, %v", step.to, have, want, err)
		}
		if n := tables(); n != step.tables {
			t.Fatalf("at version %d: %d uno tables, want %d", step.to, n, step.tables)
		}
	}
	if err := pglog.Migrate(ctx, dsn, 99); err == nil {
		t.Fatal("migrating to an unknown version succeeded")
	}
	// A log refuses a database at another version.
	if err := pglog.Migrate(ctx, dsn, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := pglog.Open(ctx, dsn); err == nil {
		t.Fatal("OpenPGLog accepted a database at an old schema version")
	}
}

// Every tenant table has row-level security, forced, with a policy that
// has both USING and WITH CHECK; the server's role is no superuser, owns
// nothing and cannot bypass RLS.
func TestPG_RLSCatalog(t *testing.T) {
	ctx := context.Background()
	admin := pgtest.NewDatabase(t)
	if err := pglog.Migrate(ctx, admin, pglog.SchemaVersion); err != nil {
		t.Fatal(err)
	}
	app := pgtest.NewAppRole(t, admin)
	// A projection's tables are tenant tables too.
	p := pglog.Projection{Name: "p", Tables: []pglog.ProjectionTable{{Name: "p_counts", Columns: "tenant_id text NOT NULL, n bigint, PRIMARY KEY (tenant_id)"}},
		Fold: func(context.Context, pgx.Tx, string, []usync.Change) error { return nil }}
	if err := pglog.SetupProjections(ctx, admin, p); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	// Every table with a tenant_id column but the registry.
	rows, err := conn.Query(ctx, `SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity,
			(SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid AND p.polqual IS NOT NULL AND p.polwithcheck IS NOT NULL),
			(SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = i.indkey[0] WHERE i.indrelid = c.oid AND i.indisprimary)
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = 'public' AND c.relkind = 'r' AND c.relname <> 'uno_tenants'
			AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'tenant_id')`)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for rows.Next() {
		var name, lead string
		var rls, force bool
		var policies int
		if err := rows.Scan(&name, &rls, &force, &policies, &lead); err != nil {
			t.Fatal(err)
		}
		n++
		if !rls || !force || policies == 0 || lead != "tenant_id" {
			t.Errorf("%s: rls %v, force %v, %d policies with USING and WITH CHECK, key leads with %q", name, rls, force, policies, lead)
		}
	}
	if n != 7 {
		t.Errorf("%d tenant tables checked, want 7", n)
	}
	cfg, _ := pgx.ParseConfig(app)
	var super, bypass bool
	var owned int
	if err := conn.QueryRow(ctx, `SELECT rolsuper, rolbypassrls, (SELECT count(*) FROM pg_class WHERE relowner = r.oid) FROM pg_roles r WHERE rolname = $1`, cfg.User).Scan(&super, &bypass, &owned); err != nil {
		t.Fatal(err)
	}
	if super || bypass || owned != 0 {
		t.Errorf("server role: superuser %v, bypassrls %v, owns %d relations", super, bypass, owned)
	}
}

// Migration 9 grants the server's role on uno_site_runs what it has on
// uno_sites: a role granted its privileges before (as the README says,
// once) saves and reads runs after the upgrade, under row-level security.
func TestPGMigrate_SiteRunsGranted(t *testing.T) {
	ctx := context.Background()
	admin := pgtest.NewDatabase(t)
	if err := pglog.Migrate(ctx, admin, 8); err != nil {
		t.Fatal(err)
	}
	app := pgtest.NewAppRole(t, admin)
	if err := pglog.Migrate(ctx, admin, pglog.SchemaVersion); err != nil {
		t.Fatal(err)
	}
	l, err := pglog.Open(ctx, app)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	run := usync.Run{First: 1, Epoch: 1<<63 | 7}
	if err := l.SaveRun(ctx, "alpha", crdt.SiteID{1}, run); err != nil {
		t.Fatal(err)
	}
	if runs, err := l.Runs(ctx, "alpha", crdt.SiteID{1}, 1, 1, 10); err != nil || len(runs) != 1 || runs[0] != run {
		t.Fatalf("Runs = %v, %v; want [%v]", runs, err, run)
	}
	if runs, err := l.Runs(ctx, "beta", crdt.SiteID{1}, 1, 1, 10); err != nil || len(runs) != 0 {
		t.Fatalf("another tenant's Runs = %v, %v; want none", runs, err)
	}
}

// No row crosses tenants: without a tenant the server's role sees
// nothing; with one, only that tenant's rows; a forged tenant_id in a
// write is refused by WITH CHECK; and many goroutines alternating tenants
// over a small pool never see another tenant's rows (no setting leaks).
func TestPG_TenantIsolation(t *testing.T) {
	ctx := context.Background()
	admin := pgtest.NewDatabase(t)
	if err := pglog.Migrate(ctx, admin, pglog.SchemaVersion); err != nil {
		t.Fatal(err)
	}
	app := pgtest.NewAppRole(t, admin)
	l, err := pglog.Open(ctx, app)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for i, tenant := range []string{"alpha", "beta"} {
		site := crdt.SiteID{byte(i + 1)}
		tx := crdt.Tx{Site: site, Seq: 1, Time: 1, Ops: []crdt.Op{{Type: crdt.OpSet, Kind: crdt.KindRegister, Collection: "c", Row: tenant + "-row", Field: "f", CL: 1, Value: []byte(`1`)}}}
		if _, err := l.Append(ctx, tenant, []crdt.Tx{tx}); err != nil {
			t.Fatal(err)
		}
	}
	pool, err := pgxpool.New(ctx, app+"&pool_max_conns=3")
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	count := func(tenant string) (n int, ids []string) {
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			if tenant != "" {
				if _, err := tx.Exec(ctx, `SELECT set_config('uno.tenant', $1, true)`, tenant); err != nil {
					return err
				}
			}
			rows, err := tx.Query(ctx, `SELECT id FROM uno_rows`)
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
				var id string
				rows.Scan(&id)
				ids = append(ids, id)
			}
			return rows.Err()
		})
		if err != nil {
			t.Error(err)
		}
		return len(ids), ids
	}
	if n, ids := count(""); n != 0 {
		t.Fatalf("with no tenant set the server's role sees %v", ids)
	}
	if n, ids := count("alpha"); n != 1 || ids[0] != "alpha-row" {
		t.Fatalf("alpha sees %v", ids)
	}
	// A forged tenant_id in a write is refused.
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		tx.Exec(ctx, `SELECT set_config('uno.tenant', 'alpha', true)`)
		_, err := tx.Exec(ctx, `INSERT INTO uno_rows (tenant_id, coll, id, seq, state) VALUES ('beta', 'c', 'forged', 1, '\x00')`)
		return err
	})
	if err == nil {
		t.Fatal("a write with another tenant's id passed row-level security")
	}
	// The leak hunt: alternate tenants over 3 pooled connections.
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 25 {
				tenant := []string{"alpha", "beta", ""}[(g+i)%3]
				_, ids := count(tenant)
				for _, id := range ids {
					if tenant == "" || id != tenant+"-row" {
						t.Errorf("tenant %q saw %s", tenant, id)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	// And through the log's own API.
	for _, tenant := range []string{"alpha", "beta", "gamma"} {
		chs, err := l.Read(ctx, tenant, 0, 10, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, ch := range chs {
			if got := ch.Tx.Ops[0].Row; got != tenant+"-row" {
				t.Errorf("tenant %s read %s", tenant, got)
			}
		}
		if tenant == "gamma" && len(chs) != 0 {
			t.Errorf("an unknown tenant read %d entries", len(chs))
		}
	}
}

// Migration 4's Go step fills the JSON documents of rows written before
// it from their merge states; deleted rows get none.
func TestPGMigrate_BackfillsRowDocs(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.NewDatabase(t)
	if err := pglog.Migrate(ctx, dsn, 3); err != nil {
		t.Fatal(err)
	}
	var st crdt.State
	b := crdt.NewBuilder(crdt.SiteID{1}, 1, crdt.MakeTimestamp(1_700_000_000_000, 0), func(k crdt.RowKey) (*crdt.Row, error) { return st.Row(k), nil })
	alive, gone := crdt.RowKey{Collection: "todos", Row: "a"}, crdt.RowKey{Collection: "todos", Row: "b"}
	for _, k := range []crdt.RowKey{alive, gone} {
		if err := b.Set(k, "title", crdt.KindRegister, []byte(`"hi"`)); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Increment(alive, "n", 3); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Delete(gone); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Apply(b.Tx()); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, k := range []crdt.RowKey{alive, gone} {
		if _, err := conn.Exec(ctx, `INSERT INTO uno_rows (tenant_id, coll, id, seq, state) VALUES ('t1', $1, $2, 1, $3)`,
			k.Collection, k.Row, crdt.EncodeRow(st.Row(k))); err != nil {
			t.Fatal(err)
		}
	}
	if err := pglog.Migrate(ctx, dsn, 4); err != nil {
		t.Fatal(err)
	}
	docs := map[string]*string{}
	rows, err := conn.Query(ctx, `SELECT id, doc::text FROM uno_rows ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id string
		var doc *string
		if err := rows.Scan(&id, &doc); err != nil {
			t.Fatal(err)
		}
		docs[id] = doc
	}
	if rows.Err() != nil {
		t.Fatal(rows.Err())
	}
	if d := docs["a"]; d == nil || *d != `{"n": 3, "title": "hi"}` {
		t.Errorf("alive row's doc: %v", d)
	}
	if d, ok := docs["b"]; !ok || d != nil {
		t.Errorf("deleted row's doc: %v (present %v)", d, ok)
	}
	var forced bool
	if err := conn.QueryRow(ctx, `SELECT relforcerowsecurity FROM pg_class WHERE relname = 'uno_rows'`).Scan(&forced); err != nil || !forced {
		t.Errorf("uno_rows FORCE row level security after the step: %v, %v", forced, err)
	}
}
