package main

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/unosync/uno/cli"
	"github.com/unosync/uno/crdt"
	"github.com/unosync/uno/internal/pgtest"
	"github.com/unosync/uno/server/pglog"
	"github.com/unosync/uno/server/sqlitelog"
	usync "github.com/unosync/uno/sync"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// statsLog is what the test uses of either log.
type statsLog interface {
	Append(ctx context.Context, tenant string, txs []crdt.Tx) ([]uint64, error)
	Read(ctx context.Context, tenant string, after uint64, limit, maxBytes int) ([]usync.Change, error)
	Head(ctx context.Context, tenant string) (uint64, error)
	Checkpoint(ctx context.Context, tenant, projection string) (uint64, error)
	RowsHash(ctx context.Context, tenant string) ([32]byte, error)
	Close() error
}

// workload appends random transactions (sets, counters and row deletes
// over three collections) of one site to a tenant's log.
type workload struct {
	t       *testing.T
	l       statsLog
	tenant  string
	site    crdt.SiteID
	seq     uint64
	replica crdt.State
	rng     *rand.Rand
}

func (w *workload) run(n int) {
	w.t.Helper()
	for range n {
		w.seq++
		b := crdt.NewBuilder(w.site, w.seq, crdt.MakeTimestamp(1_700_000_000_000+int64(w.seq), 0), func(k crdt.RowKey) (*crdt.Row, error) { return w.replica.Row(k), nil })
		for range 1 + w.rng.IntN(4) {
			k := crdt.RowKey{Collection: []string{"todos", "notes", "tags"}[w.rng.IntN(3)], Row: fmt.Sprint("r", w.rng.IntN(20))}
			var err error
			switch w.rng.IntN(4) {
			case 0:
				err = b.Increment(k, "n", 1)
			case 1:
				_, err = b.Delete(k)
			default:
				err = b.Set(k, "title", crdt.KindRegister, []byte(fmt.Sprintf(`"v%d"`, w.rng.IntN(100))))
			}
			if err != nil {
				w.t.Fatal(err)
			}
		}
		if _, err := w.replica.Apply(b.Tx()); err != nil {
			w.t.Fatal(err)
		}
		if _, err := w.l.Append(context.Background(), w.tenant, []crdt.Tx{*b.Tx()}); err != nil {
			w.t.Fatal(err)
		}
	}
}

// expected recomputes the projection from the tenant's whole log.
func expected(t *testing.T, l statsLog, tenant string) map[string]counts {
	chs, err := l.Read(context.Background(), tenant, 0, 1_000_000, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]counts{}
	for _, ch := range chs {
		seen := map[string]bool{}
		for _, op := range ch.Tx.Ops {
			c := out[op.Collection]
			c.ops++
			if op.Type == crdt.OpDelete {
				c.deletes++
			}
			if !seen[op.Collection] {
				seen[op.Collection] = true
				c.txs++
			}
			c.last = int64(ch.Seq)
			out[op.Collection] = c
		}
	}
	return out
}

// table reads collection_stats of a tenant from Postgres (as the owner,
// a superuser).
func table(t *testing.T, admin, tenant string) map[string]counts {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT coll, txs, ops, deletes, last_seq FROM collection_stats WHERE tenant_id = $1`, tenant)
	if err != nil {
		t.Fatal(err)
	}
	return scanCounts(t, rows)
}

// sqliteTable reads collection_stats of a tenant from a SQLite log file.
func sqliteTable(t *testing.T, path, tenant string) map[string]counts {
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT coll, txs, ops, deletes, last_seq FROM collection_stats WHERE tenant = ?`, tenant)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	return scanCounts(t, rows)
}

func scanCounts(t *testing.T, rows interface {
	Next() bool
	Scan(...any) error
	Err() error
}) map[string]counts {
	out := map[string]counts{}
	for rows.Next() {
		var name string
		var c counts
		if err := rows.Scan(&name, &c.txs, &c.ops, &c.deletes, &c.last); err != nil {
			t.Fatal(err)
		}
		out[name] = c
	}
	if rows.Err() != nil {
		t.Fatal(rows.Err())
	}
	return out
}

// settle waits until the async projection has folded the tenant's log.
func settle(t *testing.T, l statsLog, tenant string) {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(20 * time.Second)
	for {
		head, err1 := l.Head(ctx, tenant)
		cp, err2 := l.Checkpoint(ctx, tenant, "collection_stats")
		if err1 != nil || err2 != nil {
			t.Fatal(err1, err2)
		}
		if cp == head {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("tenant %s: checkpoint %d, head %d", tenant, cp, head)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func check(t *testing.T, l statsLog, table func(tenant string) map[string]counts, tenants ...string) {
	t.Helper()
	for _, tenant := range tenants {
		want, got := expected(t, l, tenant), table(tenant)
		if fmt.Sprint(want) != fmt.Sprint(got) {
			t.Fatalf("tenant %s:\n table %v\n  want %v", tenant, got, want)
		}
	}
}

// backend is one log the test runs the projection on.
type backend struct {
	flags   []string // the uno projection flags naming the log
	open    func() (statsLog, error)
	table   func(tenant string) map[string]counts
	corrupt func(t *testing.T)
	rows    bool // the rows read model can be rebuilt too
}

func postgresBackend(t *testing.T, async bool) backend {
	ctx := context.Background()
	admin := pgtest.NewDatabase(t)
	if err := pglog.Migrate(ctx, admin, pglog.SchemaVersion); err != nil {
		t.Fatal(err)
	}
	app := pgtest.NewAppRole(t, admin) // before the projection's table: setup copies the grants
	return backend{
		flags: []string{"--postgres", admin},
		open:  func() (statsLog, error) { return pglog.Open(ctx, app, Projection(async)) },
		table: func(tenant string) map[string]counts { return table(t, admin, tenant) },
		corrupt: func(t *testing.T) {
			conn, err := pgx.Connect(ctx, admin)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(ctx)
			if _, err := conn.Exec(ctx, `UPDATE collection_stats SET ops = 0, txs = 0`); err != nil {
				t.Fatal(err)
			}
		},
		rows: true,
	}
}

func sqliteBackend(t *testing.T, async bool) backend {
	dir := t.TempDir()
	path := filepath.Join(dir, "log.db")
	return backend{
		flags: []string{"--data", dir},
		open: func() (statsLog, error) {
			return sqlitelog.Open(context.Background(), path, &sqlitelog.Options{Projections: []sqlitelog.Projection{SQLiteProjection(async)}})
		},
		table: func(tenant string) map[string]counts { return sqliteTable(t, path, tenant) },
		corrupt: func(t *testing.T) {
			db, err := sql.Open("sqlite", path)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if _, err := db.Exec(`UPDATE collection_stats SET ops = 0, txs = 0`); err != nil {
				t.Fatal(err)
			}
		},
	}
}

// The projection, on either log, inline and async, equals the log's
// counts after a random workload over two tenants, stays exact across a
// restart (nothing folded twice), and after a rebuild — made while
// appends continue, through the uno projection rebuild command — equals
// them again though its table had been corrupted. On Postgres the rows
// read model rebuilt the same way hashes as before, as each replica does.
func TestCollectionStats(t *testing.T) {
	for _, logName := range []string{"sqlite", "postgres"} {
		for _, async := range []bool{false, true} {
			t.Run(logName+"/"+map[bool]string{false: "inline", true: "async"}[async], func(t *testing.T) {
				be := sqliteBackend
				if logName == "postgres" {
					be = postgresBackend
				}
				testCollectionStats(t, be(t, async), async)
			})
		}
	}
}

func testCollectionStats(t *testing.T, b backend, async bool) {
	ctx := context.Background()
	opts := cli.Options{
		Projections:       []pglog.Projection{Projection(async)},
		SQLiteProjections: []sqlitelog.Projection{SQLiteProjection(async)},
	}
	if l, err := b.open(); err == nil {
		l.Close()
		t.Fatal("the log opened with the projection's table missing")
	}
	if err := cli.Run(ctx, append([]string{"projection", "setup"}, b.flags...), opts); err != nil {
		t.Fatal(err)
	}
	l, err := b.open()
	if err != nil {
		t.Fatal(err)
	}
	ws := []*workload{
		{t: t, l: l, tenant: "alpha", site: crdt.SiteID{1}, rng: rand.New(rand.NewPCG(1, 2))},
		{t: t, l: l, tenant: "beta", site: crdt.SiteID{2}, rng: rand.New(rand.NewPCG(3, 4))},
	}
	for _, w := range ws {
		w.run(60)
	}
	if async {
		settle(t, l, "alpha")
		settle(t, l, "beta")
	}
	check(t, l, b.table, "alpha", "beta")

	// Restart: the reopened log folds only what is new.
	l.Close()
	if l, err = b.open(); err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for _, w := range ws {
		w.l = l
		w.run(20)
	}
	if async {
		settle(t, l, "alpha")
		settle(t, l, "beta")
	}
	check(t, l, b.table, "alpha", "beta")

	// Corrupt the table, then rebuild while a writer keeps appending:
	// the swap folds what arrived meanwhile.
	b.corrupt(t)
	hashBefore, err := l.RowsHash(ctx, "alpha")
	if err != nil {
		t.Fatal(err)
	}
	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !stop.Load() {
			ws[0].run(1)
		}
	}()
	names := []string{"collection_stats"}
	if b.rows {
		names = append(names, "rows")
	}
	for _, name := range names {
		if err := cli.Run(ctx, append([]string{"projection", "rebuild", name}, b.flags...), opts); err != nil {
			stop.Store(true)
			wg.Wait()
			t.Fatalf("rebuild %s: %v", name, err)
		}
	}
	stop.Store(true)
	wg.Wait()
	t.Logf("%d transactions appended during the rebuilds", ws[0].seq-80)
	if async {
		settle(t, l, "alpha")
	}
	check(t, l, b.table, "alpha", "beta")
	hash, err := l.RowsHash(ctx, "alpha")
	if err != nil {
		t.Fatal(err)
	}
	if hash != ws[0].replica.Hash() {
		t.Fatal("rows read model differs from the replica after the rebuild")
	}
	if ws[0].seq == 80 && hash != hashBefore {
		t.Fatal("no concurrent writes, yet the rows hash changed")
	}
	// After the swap, appends and folds go to the new tables.
	ws[1].run(5)
	if async {
		settle(t, l, "beta")
	}
	check(t, l, b.table, "beta")
	if h, _ := l.RowsHash(ctx, "beta"); h != ws[1].replica.Hash() {
		t.Fatal("rows read model of beta differs after the swap")
	}
}

// A projection declared wrongly is refused before it touches the database.
func TestProjectionValidation(t *testing.T) {
	good := Projection(false)
	for name, edit := range map[string]func(p *pglog.Projection){
		"bad name": func(p *pglog.Projection) { p.Name = "Stats!" },
		"no fold":  func(p *pglog.Projection) { p.Fold = nil },
		"no tenant first": func(p *pglog.Projection) {
			p.Tables = []pglog.ProjectionTable{{Name: "x", Columns: "coll text, PRIMARY KEY (coll)"}}
		},
		"key not tenant": func(p *pglog.Projection) {
			p.Tables = []pglog.ProjectionTable{{Name: "x", Columns: "tenant_id text NOT NULL, coll text, PRIMARY KEY (coll)"}}
		},
		"uno_ table": func(p *pglog.Projection) {
			p.Tables = []pglog.ProjectionTable{{Name: "uno_x", Columns: good.Tables[0].Columns}}
		},
	} {
		p := good
		edit(&p)
		if err := pglog.SetupProjections(context.Background(), "postgres://127.0.0.1:1/x", p); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// The SQLite projection is checked the same way.
	lite := SQLiteProjection(false)
	lite.Tables = []sqlitelog.Table{{Name: "x", Columns: "tenant TEXT NOT NULL, coll TEXT, PRIMARY KEY (coll)"}}
	if err := sqlitelog.SetupProjections(context.Background(), filepath.Join(t.TempDir(), "log.db"), lite); err == nil {
		t.Error("SQLite, key not tenant: accepted")
	}
}
