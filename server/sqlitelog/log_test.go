package sqlitelog_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	gosync "sync"
	"syscall"
	"testing"
	"time"

	"github.com/unosync/uno/crdt"
	"github.com/unosync/uno/server"
	"github.com/unosync/uno/server/logtest"
	"github.com/unosync/uno/server/sqlitelog"
	usync "github.com/unosync/uno/sync"
	"github.com/unosync/uno/tenancy"
)

func openLog(t *testing.T) *sqlitelog.Log {
	t.Helper()
	l, err := sqlitelog.Open(context.Background(), filepath.Join(t.TempDir(), "log.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func TestSQLiteLog(t *testing.T) {
	logtest.Run(t, func(t *testing.T) server.Log { return openLog(t) })
}

func TestSQLiteRegistry(t *testing.T) {
	logtest.RunRegistry(t, func(t *testing.T) (tenancy.Admin, server.Log) {
		l, err := sqlitelog.Open(context.Background(), filepath.Join(t.TempDir(), "log.db"), nil)
		if err != nil {
			t.Fatal(err)
		}
		return l.Registry(), l
	})
}

// A registry opened apart from the log (uno tenant) works on the same
// file.
func TestSQLiteRegistry_OpenedApart(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "log.db")
	reg, err := sqlitelog.OpenRegistry(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.Create(ctx, tenancy.Tenant{ID: "acme", RetentionDays: 3}); err != nil {
		t.Fatal(err)
	}
	reg.Close()
	l, err := sqlitelog.Open(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if tn, err := l.Registry().Tenant(ctx, "acme"); err != nil || tn.RetentionDays != 3 {
		t.Fatalf("Tenant(acme) through the log = %+v, %v", tn, err)
	}
}

// With no room for entries in memory, every read goes to the database.
func TestSQLiteLog_NoEntriesInMemory(t *testing.T) {
	logtest.Run(t, func(t *testing.T) server.Log {
		l, err := sqlitelog.Open(context.Background(), filepath.Join(t.TempDir(), "log.db"), &sqlitelog.Options{CacheBytes: 1, CacheTenants: 1})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		return l
	})
}

// Entries appended before schema version 3 recorded no time: they count
// as appended at the migration, so retention keeps them until they are
// older than its cut.
func TestSQLiteLog_UpgradeDatesOldEntries(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "old.db")
	l, err := sqlitelog.Open(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	tx := crdt.Tx{Site: crdt.SiteID{1}, Seq: 1, Time: 1, Ops: []crdt.Op{
		{Type: crdt.OpSet, Kind: crdt.KindRegister, Collection: "c", Row: "r", Field: "f", CL: 1, Value: []byte(`1`)}}}
	if _, err := l.Append(ctx, "t1", []crdt.Tx{tx}); err != nil {
		t.Fatal(err)
	}
	// What a log of version 3 holds of entries from before it.
	migrated := time.Now()
	l = reopenAfter(t, l, path, `UPDATE events SET appended_at = 0`, `DROP TABLE site_runs`, `ALTER TABLE events DROP COLUMN trace`, `DROP TABLE checkpoints`,
		`ALTER TABLE heads DROP COLUMN compacted`, `ALTER TABLE heads DROP COLUMN compact_floor`, `PRAGMA user_version = 3`)
	var at int64
	if err := l.DB().QueryRow(`SELECT appended_at FROM events`).Scan(&at); err != nil {
		t.Fatal(err)
	}
	if d := time.UnixMilli(at).Sub(migrated); d < -time.Minute || d > time.Minute {
		t.Fatalf("an old entry is dated %v, the migration ran at %v", time.UnixMilli(at), migrated)
	}
	if n, err := l.Retain(ctx, "t1", migrated.Add(-time.Minute)); err != nil || n != 0 {
		t.Fatalf("Retain before the migration = %d, %v; want 0", n, err)
	}
	if n, err := l.Retain(ctx, "t1", migrated.Add(time.Minute)); err != nil || n != 1 {
		t.Fatalf("Retain after the migration = %d, %v; want 1", n, err)
	}
}

// reopenAfter runs qs on l's database (making it what an older version
// wrote), closes l and opens the file again, as an upgrade does; the
// test closes the log it returns.
func reopenAfter(t *testing.T, l *sqlitelog.Log, path string, qs ...string) *sqlitelog.Log {
	t.Helper()
	for _, q := range qs {
		if _, err := l.DB().Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	l, err := sqlitelog.Open(context.Background(), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// A log has no unique index by site: appends check their sites' marks
// (AppendIsIdempotent in logtest), and a log from before drops it.
func TestSQLiteLog_NoSiteIndex(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "log.db")
	indexes := func(l *sqlitelog.Log) int {
		t.Helper()
		var n int
		if err := l.DB().QueryRow(`SELECT count(*) FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'events'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	l, err := sqlitelog.Open(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n := indexes(l); n != 0 { // the table is its primary key's B-tree
		t.Fatalf("a new log's events have %d indexes; want none", n)
	}
	// What a log of version 7, before the index went, holds.
	l = reopenAfter(t, l, path, `DROP TABLE site_runs`, `CREATE UNIQUE INDEX events_site ON events (tenant, site, site_seq)`,
		`PRAGMA user_version = 7`)
	if n := indexes(l); n != 0 {
		t.Fatalf("an upgraded log's events have %d indexes; want none", n)
	}
}

// Retention deletes in bounded batches and gets every entry.
func TestSQLiteLog_RetainInBatches(t *testing.T) {
	ctx := context.Background()
	l := openLog(t)
	const n = 25_000
	var txs []crdt.Tx
	for seq := uint64(1); seq <= n; seq++ {
		txs = append(txs, crdt.Tx{Site: crdt.SiteID{1}, Seq: seq, Time: crdt.Timestamp(seq), Ops: []crdt.Op{
			{Type: crdt.OpSet, Kind: crdt.KindRegister, Collection: "c", Row: "r", Field: "f", CL: 1, Value: []byte(`1`)}}})
	}
	if _, err := l.Append(ctx, "t1", txs); err != nil {
		t.Fatal(err)
	}
	if got, err := l.Retain(ctx, "t1", time.Now().Add(time.Hour)); err != nil || got != n {
		t.Fatalf("Retain = %d, %v; want %d", got, err, n)
	}
	if start, err := l.LogStart(ctx, "t1"); err != nil || start != n+1 {
		t.Fatalf("LogStart = %d, %v; want %d", start, err, n+1)
	}
}

// SaveRun takes SQLite's one writer as appends do: saved while group
// commits run, it waits for them (busy timeout) rather than fail with
// "database is locked".
func TestSQLiteLog_SaveRunWhileAppending(t *testing.T) {
	ctx := context.Background()
	l := openLog(t)
	const appenders, savers, n = 8, 2, 100
	var wg gosync.WaitGroup
	for w := range appenders + savers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			site := crdt.SiteID{byte(w + 1)}
			for seq := uint64(1); seq <= n; seq++ {
				if w >= appenders {
					if err := l.SaveRun(ctx, "t1", site, usync.Run{First: seq, Epoch: seq}); err != nil {
						t.Errorf("SaveRun %d: %v", seq, err)
						return
					}
					continue
				}
				tx := crdt.Tx{Site: site, Seq: seq, Time: crdt.Timestamp(seq), Ops: []crdt.Op{
					{Type: crdt.OpSet, Kind: crdt.KindRegister, Collection: "c", Row: fmt.Sprint(w), Field: "f", CL: 1, Value: []byte(`1`)}}}
				if _, err := l.Append(ctx, "t1", []crdt.Tx{tx}); err != nil {
					t.Errorf("Append %d: %v", seq, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	for w := appenders; w < appenders+savers; w++ {
		if runs, err := l.Runs(ctx, "t1", crdt.SiteID{byte(w + 1)}, 1, n, 0); err != nil || len(runs) != n {
			t.Fatalf("site %d: %d runs, %v; want %d", w+1, len(runs), err, n)
		}
	}
	if h, err := l.Head(ctx, "t1"); err != nil || h != appenders*n {
		t.Fatalf("head %d, %v; want %d", h, err, appenders*n)
	}
}

// A log file written before rows kept JSON documents gets them when it is
// opened.
func TestSQLiteLog_UpgradesRowDocs(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "old.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	var st crdt.State
	b := crdt.NewBuilder(crdt.SiteID{1}, 1, crdt.MakeTimestamp(1_700_000_000_000, 0), func(k crdt.RowKey) (*crdt.Row, error) { return st.Row(k), nil })
	k := crdt.RowKey{Collection: "todos", Row: "a"}
	if err := b.Set(k, "title", crdt.KindRegister, []byte(`"hi"`)); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Apply(b.Tx()); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{
		`CREATE TABLE rows (tenant TEXT NOT NULL, coll TEXT NOT NULL, id TEXT NOT NULL, seq INTEGER NOT NULL, state BLOB NOT NULL, PRIMARY KEY (tenant, coll, id)) WITHOUT ROWID`,
	} {
		if _, err := db.Exec(s); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Exec(`INSERT INTO rows VALUES ('t1', 'todos', 'a', 1, ?)`, crdt.EncodeRow(st.Row(k))); err != nil {
		t.Fatal(err)
	}
	db.Close()
	l, err := sqlitelog.Open(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	rows, err := l.QueryRows(ctx, "t1", server.RowQuery{Collection: "todos", Where: []server.FieldValue{{Field: "title", Value: []byte(`"hi"`)}}, Limit: 10})
	if err != nil || len(rows) != 1 || string(rows[0].Doc) != `{"title":"hi"}` {
		t.Fatalf("after the upgrade: %+v, %v", rows, err)
	}
}

// The newest entries are kept encoded: a fan-out encodes them once.
func TestSQLiteLog_HoldsNewestEncoded(t *testing.T) {
	ctx := context.Background()
	l := openLog(t)
	for seq := uint64(1); seq <= 3; seq++ {
		tx := crdt.Tx{Site: crdt.SiteID{1}, Seq: seq, Time: crdt.Timestamp(seq), Ops: []crdt.Op{
			{Type: crdt.OpSet, Kind: crdt.KindRegister, Collection: "c", Row: "r", Field: "f", CL: 1, Value: []byte(`1`)}}}
		if _, err := l.Append(ctx, "t1", []crdt.Tx{tx}); err != nil {
			t.Fatal(err)
		}
		chs, err := l.Read(ctx, "t1", seq-1, 10, 0)
		if err != nil || len(chs) != 1 {
			t.Fatalf("Read = %v, %v", chs, err)
		}
		if encs, ok := l.Encoded("t1", chs); !ok || string(encs[0]) != string(crdt.EncodeTx(&tx)) {
			t.Fatalf("entry %d: not held encoded (%v)", seq, ok)
		}
	}
	// A batch with entries left out (an author's own, for its connection)
	// is served too.
	all, err := l.Read(ctx, "t1", 0, 10, 0)
	if err != nil || len(all) != 3 {
		t.Fatalf("Read = %v, %v", all, err)
	}
	gap := []usync.Change{all[0], all[2]}
	if encs, ok := l.Encoded("t1", gap); !ok || len(encs) != 2 || string(encs[1]) != string(crdt.EncodeTx(&all[2].Tx)) {
		t.Fatalf("entries 1 and 3: not served encoded (%v)", ok)
	}
}

func BenchmarkSQLiteLog_AppendDocChange100KB(b *testing.B) {
	l, err := sqlitelog.Open(context.Background(), filepath.Join(b.TempDir(), "log.db"), nil)
	if err != nil {
		b.Fatal(err)
	}
	logtest.BenchmarkAppendDocChange(b, l, 100<<10)
}

// BenchmarkSQLiteLog_AppendOne is what a room's writer costs the log: one
// one-field transaction per Append, each its own group commit, in
// process CPU per append (the fsync wait is not CPU):
//
//	go test ./server/sqlitelog -run '^$' -bench AppendOne -benchtime 2000x -count 5
func BenchmarkSQLiteLog_AppendOne(b *testing.B) {
	ctx := context.Background()
	l, err := sqlitelog.Open(ctx, filepath.Join(b.TempDir(), "log.db"), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	site := crdt.SiteID{7}
	start := processCPU()
	seq := uint64(0)
	for b.Loop() {
		seq++
		tx := crdt.Tx{Site: site, Seq: seq, Time: crdt.Timestamp(seq), Ops: []crdt.Op{
			{Type: crdt.OpSet, Kind: crdt.KindRegister, Collection: "room", Row: "r", Field: "v", CL: 1, Value: []byte(`1700000000000000000`)}}}
		if _, err := l.Append(ctx, "t1", []crdt.Tx{tx}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64((processCPU()-start).Microseconds())/float64(b.N), "µs-cpu/append")
}

// BenchmarkSQLiteLog_AppendConcurrent is a room's writers: 50 callers
// each appending one one-field transaction at a time; concurrent appends
// share group commits.
func BenchmarkSQLiteLog_AppendConcurrent(b *testing.B) {
	ctx := context.Background()
	l, err := sqlitelog.Open(ctx, filepath.Join(b.TempDir(), "log.db"), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	const writers, writes = 50, 40
	start := processCPU()
	for n := range b.N {
		var wg gosync.WaitGroup
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				site := crdt.SiteID{byte(w), byte(n), 1}
				for seq := uint64(1); seq <= writes; seq++ {
					tx := crdt.Tx{Site: site, Seq: seq, Time: crdt.Timestamp(seq), Ops: []crdt.Op{
						{Type: crdt.OpSet, Kind: crdt.KindRegister, Collection: "room", Row: fmt.Sprint(w), Field: "v", CL: 1, Value: []byte(`1700000000000000000`)}}}
					if _, err := l.Append(ctx, "t1", []crdt.Tx{tx}); err != nil {
						b.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
	}
	b.ReportMetric(float64((processCPU()-start).Microseconds())/float64(b.N*writers*writes), "µs-cpu/append")
	b.ReportMetric(float64(b.N*writers*writes)/b.Elapsed().Seconds(), "appends/s")
}

// processCPU is the process's user and system CPU time so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
