package sqlitelog_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	gosync "sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/unosync/uno/crdt"
	"github.com/unosync/uno/server/sqlitelog"
	usync "github.com/unosync/uno/sync"
	"github.com/unosync/uno/tenancy"
)

// counts is the test projection's read model of one tenant: per
// collection, the operations and the newest entry.
type counts map[string][2]int64

// countProjection counts operations per collection into table name. fail,
// if not nil, fails the fold of a batch holding an op of collection
// "bad" while it is set.
func countProjection(name string, async bool, fail *atomic.Bool) sqlitelog.Projection {
	return sqlitelog.Projection{
		Name:  name,
		Async: async,
		Tables: []sqlitelog.Table{{Name: name, Columns: `tenant TEXT NOT NULL, coll TEXT NOT NULL,
			ops INTEGER NOT NULL, last_seq INTEGER NOT NULL, PRIMARY KEY (tenant, coll)`}},
		Fold: func(ctx context.Context, tx *sql.Tx, tenant string, chs []usync.Change) error {
			for _, ch := range chs {
				for _, op := range ch.Tx.Ops {
					if fail != nil && fail.Load() && op.Collection == "bad" {
						return errors.New("bad collection")
					}
					_, err := tx.ExecContext(ctx, `INSERT INTO `+name+` (tenant, coll, ops, last_seq) VALUES (?, ?, 1, ?)
						ON CONFLICT (tenant, coll) DO UPDATE SET ops = ops + 1, last_seq = max(last_seq, excluded.last_seq)`,
						tenant, op.Collection, int64(ch.Seq))
					if err != nil {
						return err
					}
				}
			}
			return nil
		},
	}
}

// recount computes the projection from the tenant's whole log.
func recount(t *testing.T, l *sqlitelog.Log, tenant string) counts {
	t.Helper()
	chs, err := l.Read(context.Background(), tenant, 0, 1_000_000, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := counts{}
	for _, ch := range chs {
		for _, op := range ch.Tx.Ops {
			c := out[op.Collection]
			out[op.Collection] = [2]int64{c[0] + 1, int64(ch.Seq)}
		}
	}
	return out
}

func table(t *testing.T, l *sqlitelog.Log, name, tenant string) counts {
	t.Helper()
	rows, err := l.DB().Query(`SELECT coll, ops, last_seq FROM `+name+` WHERE tenant = ?`, tenant)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := counts{}
	for rows.Next() {
		var coll string
		var c [2]int64
		if err := rows.Scan(&coll, &c[0], &c[1]); err != nil {
			t.Fatal(err)
		}
		out[coll] = c
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// settle waits until projection has folded the tenant's whole log.
func settle(t *testing.T, l *sqlitelog.Log, projection, tenant string) {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(20 * time.Second)
	for {
		head, err1 := l.Head(ctx, tenant)
		cp, err2 := l.Checkpoint(ctx, tenant, projection)
		if err1 != nil || err2 != nil {
			t.Fatal(err1, err2)
		}
		if cp == head {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s of %s: checkpoint %d, head %d", projection, tenant, cp, head)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// check settles the projection and compares its table with a recount.
func check(t *testing.T, l *sqlitelog.Log, p sqlitelog.Projection, tenants ...string) {
	t.Helper()
	for _, tenant := range tenants {
		settle(t, l, p.Name, tenant)
		want, got := recount(t, l, tenant), table(t, l, p.Name, tenant)
		if d := cmp.Diff(want, got); d != "" {
			t.Fatalf("%s of %s differs from a recount of the log (-want +got):\n%s", p.Name, tenant, d)
		}
	}
}

// writer appends random transactions of one site to a tenant's log.
type writer struct {
	l      *sqlitelog.Log
	tenant string
	site   crdt.SiteID
	seq    uint64
	rng    *rand.Rand
}

func (w *writer) tx() crdt.Tx {
	w.seq++
	t := crdt.Tx{Site: w.site, Seq: w.seq, Time: crdt.Timestamp(w.seq)}
	for range 1 + w.rng.IntN(4) {
		t.Ops = append(t.Ops, crdt.Op{Type: crdt.OpSet, Kind: crdt.KindRegister,
			Collection: []string{"todos", "notes", "tags"}[w.rng.IntN(3)], Row: fmt.Sprint("r", w.rng.IntN(20)),
			Field: "f", CL: 1, Value: fmt.Appendf(nil, "%d", w.rng.IntN(100))})
	}
	return t
}

func (w *writer) run(tb testing.TB, n int) {
	tb.Helper()
	for range n {
		if _, err := w.l.Append(context.Background(), w.tenant, []crdt.Tx{w.tx()}); err != nil {
			tb.Fatal(err)
		}
	}
}

// bulk appends n transactions, a hundred per append.
func (w *writer) bulk(tb testing.TB, n int) {
	tb.Helper()
	for n > 0 {
		txs := make([]crdt.Tx, min(n, 100))
		for i := range txs {
			txs[i] = w.tx()
		}
		if _, err := w.l.Append(context.Background(), w.tenant, txs); err != nil {
			tb.Fatal(err)
		}
		n -= len(txs)
	}
}

func openWith(t *testing.T, path string, ps ...sqlitelog.Projection) *sqlitelog.Log {
	t.Helper()
	l, err := sqlitelog.Open(context.Background(), path, &sqlitelog.Options{Projections: ps})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// Inline and async, the projection equals a recount of the log after
// random appends over two tenants, and again after a restart (the
// reopened log folds only what is new: nothing twice).
func TestProjection_EqualsLogAcrossRestart(t *testing.T) {
	for _, async := range []bool{false, true} {
		t.Run(map[bool]string{false: "inline", true: "async"}[async], func(t *testing.T) {
			ctx := context.Background()
			path := filepath.Join(t.TempDir(), "log.db")
			p := countProjection("stats", async, nil)
			if _, err := sqlitelog.Open(ctx, path, &sqlitelog.Options{Projections: []sqlitelog.Projection{p}}); !errors.Is(err, sqlitelog.ErrProjection) {
				t.Fatalf("Open with the projection's table missing: %v, want ErrProjection", err)
			}
			if err := sqlitelog.SetupProjections(ctx, path, p); err != nil {
				t.Fatal(err)
			}
			l := openWith(t, path, p)
			ws := []*writer{
				{l: l, tenant: "alpha", site: crdt.SiteID{1}, rng: rand.New(rand.NewPCG(1, 2))},
				{l: l, tenant: "beta", site: crdt.SiteID{2}, rng: rand.New(rand.NewPCG(3, 4))},
			}
			for _, w := range ws {
				w.run(t, 60)
			}
			check(t, l, p, "alpha", "beta")

			l.Close()
			l = openWith(t, path, p)
			for _, w := range ws {
				w.l = l
				w.run(t, 20)
			}
			check(t, l, p, "alpha", "beta")
		})
	}
}

// A failing inline fold fails its own append only: appends committed in
// the same group keep theirs, and nothing of the failed one is in the log,
// its marks or the projection.
func TestProjection_FailingInlineFoldRefusesThatAppend(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "log.db")
	var fail atomic.Bool
	fail.Store(true)
	p := countProjection("stats", false, &fail)
	if err := sqlitelog.SetupProjections(ctx, path, p); err != nil {
		t.Fatal(err)
	}
	l := openWith(t, path, p)
	const n = 16
	errs := make([]error, n)
	var wg gosync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() { // concurrent: committed in groups, each under its savepoint
			defer wg.Done()
			coll := "todos"
			if i%4 == 0 {
				coll = "bad"
			}
			tx := crdt.Tx{Site: crdt.SiteID{byte(i + 1)}, Seq: 1, Time: 1, Ops: []crdt.Op{{Type: crdt.OpSet, Kind: crdt.KindRegister,
				Collection: coll, Row: "r", Field: "f", CL: 1, Value: []byte(`1`)}}}
			_, errs[i] = l.Append(ctx, "t1", []crdt.Tx{tx})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		mark, merr := l.HighWater(ctx, "t1", crdt.SiteID{byte(i + 1)})
		if merr != nil {
			t.Fatal(merr)
		}
		switch {
		case i%4 == 0 && (err == nil || !strings.Contains(err.Error(), "bad collection") || mark != 0):
			t.Errorf("append %d (failing fold): %v, high-water %d; want the fold's error and nothing appended", i, err, mark)
		case i%4 != 0 && (err != nil || mark != 1):
			t.Errorf("append %d: %v, high-water %d; want it appended", i, err, mark)
		}
	}
	if head, _ := l.Head(ctx, "t1"); head != n-n/4 {
		t.Fatalf("head %d, want %d", head, n-n/4)
	}
	check(t, l, p, "t1")
	// Once the fold is fixed, the same transaction appends.
	fail.Store(false)
	tx := crdt.Tx{Site: crdt.SiteID{1}, Seq: 1, Time: 1, Ops: []crdt.Op{{Type: crdt.OpSet, Kind: crdt.KindRegister,
		Collection: "bad", Row: "r", Field: "f", CL: 1, Value: []byte(`1`)}}}
	if _, err := l.Append(ctx, "t1", []crdt.Tx{tx}); err != nil {
		t.Fatal(err)
	}
	check(t, l, p, "t1")
}

// An async projection folds what was appended while it did not run (a
// log opened without it), from its checkpoint, after a restart.
func TestProjection_AsyncCatchesUpAfterRestart(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "log.db")
	p := countProjection("stats", true, nil)
	if err := sqlitelog.SetupProjections(ctx, path, p); err != nil {
		t.Fatal(err)
	}
	l := openWith(t, path, p)
	w := &writer{l: l, tenant: "t1", site: crdt.SiteID{1}, rng: rand.New(rand.NewPCG(5, 6))}
	w.run(t, 30)
	check(t, l, p, "t1")
	l.Close()

	l = openWith(t, path) // the projection is not folded meanwhile
	w.l = l
	w.bulk(t, 1200) // more than one batch
	(&writer{l: l, tenant: "t2", site: crdt.SiteID{2}, rng: rand.New(rand.NewPCG(7, 8))}).run(t, 10)
	l.Close()

	l = openWith(t, path, p)
	check(t, l, p, "t1", "t2")
}

// A rebuild made while a writer appends, after the table was corrupted,
// equals a recount; after it, appends fold into the new table.
func TestRebuildProjection_WhileAppending(t *testing.T) {
	for _, async := range []bool{false, true} {
		t.Run(map[bool]string{false: "inline", true: "async"}[async], func(t *testing.T) {
			ctx := context.Background()
			path := filepath.Join(t.TempDir(), "log.db")
			p := countProjection("stats", async, nil)
			if err := sqlitelog.SetupProjections(ctx, path, p); err != nil {
				t.Fatal(err)
			}
			l := openWith(t, path, p)
			ws := []*writer{
				{l: l, tenant: "alpha", site: crdt.SiteID{1}, rng: rand.New(rand.NewPCG(1, 2))},
				{l: l, tenant: "beta", site: crdt.SiteID{2}, rng: rand.New(rand.NewPCG(3, 4))},
			}
			for _, w := range ws {
				w.bulk(t, 1500) // more than one batch
			}
			check(t, l, p, "alpha", "beta")
			if _, err := l.DB().Exec(`UPDATE stats SET ops = 0`); err != nil {
				t.Fatal(err)
			}
			var stop atomic.Bool
			var wg gosync.WaitGroup
			var werr atomic.Value
			wg.Add(1)
			go func() {
				defer wg.Done()
				for !stop.Load() {
					if _, err := l.Append(ctx, "alpha", []crdt.Tx{ws[0].tx()}); err != nil {
						werr.Store(err)
						return
					}
				}
			}()
			var progressed atomic.Int64
			err := sqlitelog.RebuildProjection(ctx, path, p, func(string, uint64, uint64) { progressed.Add(1) })
			stop.Store(true)
			wg.Wait()
			if err != nil {
				t.Fatal(err)
			}
			if err, _ := werr.Load().(error); err != nil {
				t.Fatalf("append during the rebuild: %v", err)
			}
			t.Logf("%d transactions appended during the rebuild, %d progress reports", ws[0].seq-1500, progressed.Load())
			check(t, l, p, "alpha", "beta")
			ws[1].run(t, 5)
			check(t, l, p, "beta")
		})
	}
}

// Setting up a projection on a log that holds entries fills its new
// table from the log: it starts equal to it, not empty.
func TestSetupProjections_FillsFromTheLog(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "log.db")
	l := openWith(t, path)
	(&writer{l: l, tenant: "t1", site: crdt.SiteID{1}, rng: rand.New(rand.NewPCG(1, 2))}).run(t, 40)
	l.Close()
	p := countProjection("stats", false, nil)
	if err := sqlitelog.SetupProjections(ctx, path, p); err != nil {
		t.Fatal(err)
	}
	l = openWith(t, path, p)
	check(t, l, p, "t1")
}

// Retention never deletes entries an async projection has not folded: a
// projection that fails keeps them all; once it folds, they go.
func TestRetain_WaitsForAsyncCheckpoint(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "log.db")
	var fail atomic.Bool
	fail.Store(true)
	p := countProjection("stats", true, &fail)
	if err := sqlitelog.SetupProjections(ctx, path, p); err != nil {
		t.Fatal(err)
	}
	l := openWith(t, path, p)
	for seq := uint64(1); seq <= 5; seq++ {
		tx := crdt.Tx{Site: crdt.SiteID{1}, Seq: seq, Time: crdt.Timestamp(seq), Ops: []crdt.Op{{Type: crdt.OpSet, Kind: crdt.KindRegister,
			Collection: "bad", Row: "r", Field: "f", CL: 1, Value: []byte(`1`)}}}
		if _, err := l.Append(ctx, "t1", []crdt.Tx{tx}); err != nil {
			t.Fatal(err)
		}
	}
	future := time.Now().Add(time.Hour)
	if n, err := l.Retain(ctx, "t1", future); err != nil || n != 0 {
		t.Fatalf("retained %d (%v) while the projection had folded nothing", n, err)
	}
	fail.Store(false)
	settle(t, l, "stats", "t1") // the worker retries after a backoff
	if n, err := l.Retain(ctx, "t1", future); err != nil || n != 5 {
		t.Fatalf("retained %d (%v) after the fold, want 5", n, err)
	}
	if start, _ := l.LogStart(ctx, "t1"); start != 6 {
		t.Fatalf("log start %d, want 6", start)
	}
}

// A projection declared wrongly is refused before it touches the file.
func TestProjection_Validation(t *testing.T) {
	good := countProjection("stats", false, nil)
	for name, edit := range map[string]func(p *sqlitelog.Projection){
		"bad name": func(p *sqlitelog.Projection) { p.Name = "Stats!" },
		"rows":     func(p *sqlitelog.Projection) { p.Name = "rows" },
		"no fold":  func(p *sqlitelog.Projection) { p.Fold = nil },
		"log table": func(p *sqlitelog.Projection) {
			p.Tables = []sqlitelog.Table{{Name: "events", Columns: good.Tables[0].Columns}}
		},
		"the log's site_runs": func(p *sqlitelog.Projection) {
			p.Tables = []sqlitelog.Table{{Name: "site_runs", Columns: good.Tables[0].Columns}}
		},
		"uno_ table": func(p *sqlitelog.Projection) {
			p.Tables = []sqlitelog.Table{{Name: "uno_x", Columns: good.Tables[0].Columns}}
		},
		"no tenant first": func(p *sqlitelog.Projection) {
			p.Tables = []sqlitelog.Table{{Name: "x", Columns: "coll TEXT, PRIMARY KEY (coll)"}}
		},
		"key not tenant": func(p *sqlitelog.Projection) {
			p.Tables = []sqlitelog.Table{{Name: "x", Columns: "tenant TEXT NOT NULL, coll TEXT, PRIMARY KEY (coll)"}}
		},
	} {
		p := good
		edit(&p)
		path := filepath.Join(t.TempDir(), "log.db")
		if err := sqlitelog.SetupProjections(context.Background(), path, p); !errors.Is(err, sqlitelog.ErrProjection) {
			t.Errorf("%s: SetupProjections = %v, want ErrProjection", name, err)
		}
		if _, err := sqlitelog.Open(context.Background(), path, &sqlitelog.Options{Projections: []sqlitelog.Projection{p}}); !errors.Is(err, sqlitelog.ErrProjection) {
			t.Errorf("%s: Open = %v, want ErrProjection", name, err)
		}
	}
	if err := sqlitelog.SetupProjections(context.Background(), filepath.Join(t.TempDir(), "log.db"), good, good); !errors.Is(err, sqlitelog.ErrProjection) {
		t.Errorf("two projections of one name: %v", err)
	}
}

// Deleting a tenant deletes its rows in every projection and their
// checkpoints too: a tenant created again with the same ID starts with
// none of them, and the other tenants keep theirs.
func TestProjection_DeleteTenant(t *testing.T) {
	ctx := context.Background()
	inline, async := countProjection("stats", false, nil), countProjection("lazy", true, nil)
	path := filepath.Join(t.TempDir(), "log.db")
	if err := sqlitelog.SetupProjections(ctx, path, inline, async); err != nil {
		t.Fatal(err)
	}
	l := openWith(t, path, inline, async)
	for _, tenant := range []string{"t1", "t2"} {
		if err := l.Registry().Create(ctx, tenancy.Tenant{ID: tenant}); err != nil {
			t.Fatal(err)
		}
		w := &writer{l: l, tenant: tenant, site: crdt.SiteID{1}, rng: rand.New(rand.NewPCG(1, 2))}
		w.run(t, 20)
		check(t, l, inline, tenant)
		check(t, l, async, tenant)
	}
	if err := l.Registry().Delete(ctx, "t1"); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"stats", "lazy"} {
		if got := table(t, l, name, "t1"); len(got) != 0 {
			t.Errorf("%s still holds the deleted tenant's rows: %v", name, got)
		}
		if got := table(t, l, name, "t2"); len(got) == 0 {
			t.Errorf("%s lost the other tenant's rows", name)
		}
	}
	var n int
	if err := l.DB().QueryRow(`SELECT count(*) FROM checkpoints WHERE tenant = 't1'`).Scan(&n); err != nil || n != 0 {
		t.Errorf("the deleted tenant keeps %d checkpoints (%v)", n, err)
	}
	if cp, err := l.Checkpoint(ctx, "t2", "lazy"); err != nil || cp == 0 {
		t.Errorf("the other tenant's checkpoint: %d, %v", cp, err)
	}
}
