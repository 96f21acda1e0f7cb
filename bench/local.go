package bench

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/unosync/uno/client"
	"github.com/unosync/uno/internal/walfill"
	"github.com/unosync/uno/store"

	_ "modernc.org/sqlite" // the baseline uses the same driver as the store
)

// FieldsPerRow is the width of the rows the write benchmarks write: a
// 1,000-op transaction writes 250 rows of 4 fields.
const FieldsPerRow = 4

// TxOps is the number of field ops in a large transaction.
const TxOps = 1000

// row returns the fields of benchmark row i: a title, a flag, a number and
// a note, about 80 bytes of JSON.
func row(i int) map[string]any {
	return map[string]any{
		"title":    "task number " + strconv.Itoa(i),
		"done":     i%2 == 0,
		"priority": i % 5,
		"note":     "some words that make the row look like real data",
	}
}

var benchSchema = &store.Schema{Collections: []store.Collection{{
	Name: "tasks",
	Fields: []store.Field{
		{Name: "title"}, {Name: "done"}, {Name: "priority"}, {Name: "note"},
	},
	Indexes: []store.Index{{Fields: []string{"priority", "title"}}},
}}}

func openClient(b B, sync string) *client.Client {
	b.Helper()
	c, err := client.Open(context.Background(), client.Config{
		Path:        filepath.Join(b.TempDir(), "uno.db"),
		Schema:      benchSchema,
		Synchronous: sync,
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return c
}

// openPlain opens the baseline: the same driver and settings, a table
// shaped like the collection and a log table standing in for an outbox.
func openPlain(b B, sync string) *sql.DB {
	b.Helper()
	path := filepath.Join(b.TempDir(), "plain.db")
	dsn := fmt.Sprintf("file:%s?_pragma=journal_mode(WAL)&_pragma=synchronous(%s)&_pragma=busy_timeout(5000)&_txlock=immediate&vfs=unix-excl", path, sync)
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		b.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	b.Cleanup(func() { db.Close() })
	for _, s := range []string{
		`CREATE TABLE tasks (id TEXT PRIMARY KEY NOT NULL, title, done, priority, note)`,
		`CREATE INDEX tasks_priority_title ON tasks (priority, title)`,
		`CREATE TABLE log (seq INTEGER PRIMARY KEY, entry BLOB NOT NULL)`,
	} {
		if _, err := db.Exec(s); err != nil {
			b.Fatal(err)
		}
	}
	// The log preallocated as the store's is (store.WALPrefill), so the
	// floor commits into the same kind of file.
	if err := walfill.Prefill(context.Background(), db, path, store.WALPrefill); err != nil {
		b.Fatal(err)
	}
	return db
}

// prepare returns the baseline's prepared inserts: a row, a log row.
func prepare(b B, db *sql.DB) (ins, logIns *sql.Stmt) {
	b.Helper()
	ins, err := db.Prepare(`INSERT INTO tasks (id, title, done, priority, note) VALUES (?, ?, ?, ?, ?)`)
	if err != nil {
		b.Fatal(err)
	}
	logIns, err = db.Prepare(`INSERT INTO log (seq, entry) VALUES (?, ?)`)
	if err != nil {
		b.Fatal(err)
	}
	return ins, logIns
}

// WriteTx1000 commits transactions of TxOps field ops (TxOps/FieldsPerRow
// new rows) through the client. It reports field ops/s.
func WriteTx1000(b B) { writeTx1000(b, false) }

// WriteTx1000Prefetch is WriteTx1000 with each transaction's rows named
// up front (client.Tx.Prefetch), as the browser's batched writes do.
func WriteTx1000Prefetch(b B) { writeTx1000(b, true) }

func writeTx1000(b B, prefetch bool) {
	c := openClient(b, "FULL")
	ctx := context.Background()
	rows := TxOps / FieldsPerRow
	ids := make([]string, rows)
	b.ResetTimer()
	for n := range b.N() {
		err := c.Tx(ctx, func(tx *client.Tx) error {
			if prefetch {
				for i := range ids {
					ids[i] = strconv.Itoa(n*rows + i)
				}
				if err := tx.Prefetch("tasks", ids...); err != nil {
					return err
				}
			}
			for i := range rows {
				if err := tx.Put("tasks", strconv.Itoa(n*rows+i), row(i)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N()*TxOps)/b.Elapsed().Seconds(), "fieldops/s")
}

// PlainTx1000 is WriteTx1000's baseline: the same rows inserted with plain
// SQL, one log row per row written, TxOps/FieldsPerRow rows per
// transaction.
func PlainTx1000(b B) {
	db := openPlain(b, "FULL")
	ins, logIns := prepare(b, db)
	rows := TxOps / FieldsPerRow
	seq := 0
	b.ResetTimer()
	for n := range b.N() {
		tx, err := db.Begin()
		if err != nil {
			b.Fatal(err)
		}
		ins, logIns := tx.Stmt(ins), tx.Stmt(logIns)
		for i := range rows {
			r := row(i)
			if _, err := ins.Exec(strconv.Itoa(n*rows+i), r["title"], r["done"], r["priority"], r["note"]); err != nil {
				b.Fatal(err)
			}
			seq++
			if _, err := logIns.Exec(seq, []byte(r["title"].(string))); err != nil {
				b.Fatal(err)
			}
		}
		if err := tx.Commit(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N()*TxOps)/b.Elapsed().Seconds(), "fieldops/s")
}

// WriteSingle commits one single-field write per transaction at
// synchronous=FULL.
func WriteSingle(b B) {
	c := openClient(b, "FULL")
	tasks := c.Collection("tasks")
	ctx := context.Background()
	b.ResetTimer()
	for n := range b.N() {
		if err := tasks.Put(ctx, strconv.Itoa(n), map[string]any{"title": "task number " + strconv.Itoa(n)}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N())/b.Elapsed().Seconds(), "tx/s")
}

// PlainSingle is WriteSingle's baseline: one row and one log row per
// transaction at synchronous=FULL.
func PlainSingle(b B) {
	db := openPlain(b, "FULL")
	ins, logIns := prepare(b, db)
	b.ResetTimer()
	for n := range b.N() {
		tx, err := db.Begin()
		if err != nil {
			b.Fatal(err)
		}
		title := "task number " + strconv.Itoa(n)
		if _, err := tx.Stmt(ins).Exec(strconv.Itoa(n), title, nil, nil, nil); err != nil {
			b.Fatal(err)
		}
		if _, err := tx.Stmt(logIns).Exec(n+1, []byte(title)); err != nil {
			b.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N())/b.Elapsed().Seconds(), "tx/s")
}

// PlainShared returns the fsync floor shared: writers sequential writers
// at once, each committing PlainSingle's transaction into a file of its
// own on the one disk, b.N() times. It reports the rate of each writer
// (tx/s/writer) and of all (tx/s). With two, that is the ceiling of the
// 2-client workload at full durability, whose two clients fsync each
// update into files of their own; with three, a third stands for the
// server's log, which fsyncs there too (about once per four updates, so
// less than a writer of its own).
func PlainShared(writers int) func(B) {
	return func(b B) {
		commits := make([]func(n int), writers)
		for i := range commits {
			db := openPlain(b, "FULL")
			ins, logIns := prepare(b, db)
			commits[i] = func(n int) {
				tx, err := db.Begin()
				if err != nil {
					b.Error(err)
					return
				}
				defer tx.Rollback()
				title := "task number " + strconv.Itoa(n)
				if _, err := tx.Stmt(ins).Exec(strconv.Itoa(n), title, nil, nil, nil); err != nil {
					b.Error(err)
					return
				}
				if _, err := tx.Stmt(logIns).Exec(n+1, []byte(title)); err != nil {
					b.Error(err)
					return
				}
				if err := tx.Commit(); err != nil {
					b.Error(err)
				}
			}
		}
		b.ResetTimer()
		var wg sync.WaitGroup
		for _, commit := range commits {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for n := range b.N() {
					commit(n)
				}
			}()
		}
		wg.Wait()
		perWriter := float64(b.N()) / b.Elapsed().Seconds()
		b.ReportMetric(perWriter, "tx/s/writer")
		b.ReportMetric(perWriter*float64(writers), "tx/s")
	}
}

// PacedFsync returns the paced commit ceiling: PlainSingle's durable
// commit (plain SQLite, one row and one log row, sync=FULL) at p.Hz,
// p.Writes times, each commit's latency measured. An idle disk (and a
// virtual machine's idle CPU) answers a paced fsync more slowly than a
// busy one answers back-to-back fsyncs, so this, not the fsync floor's
// rate, is what one durable commit in a paced write's path costs: the
// server's append in every mode, the writer's commit too at full
// durability. It reports p50, p90, p99, p99.9 and max in ms.
func PacedFsync(p Paced) func(B) {
	return func(b B) {
		db := openPlain(b, "FULL")
		ins, logIns := prepare(b, db)
		var lat []time.Duration
		b.ResetTimer()
		for range b.N() {
			tick := time.NewTicker(time.Duration(float64(time.Second) / p.Hz))
			for range p.Writes {
				<-tick.C
				start := time.Now()
				tx, err := db.Begin()
				if err != nil {
					b.Fatal(err)
				}
				id := strconv.Itoa(len(lat))
				if _, err := tx.Stmt(ins).Exec(id, "task number "+id, nil, nil, nil); err != nil {
					b.Fatal(err)
				}
				if _, err := tx.Stmt(logIns).Exec(len(lat)+1, []byte(id)); err != nil {
					b.Fatal(err)
				}
				if err := tx.Commit(); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(start))
			}
			tick.Stop()
		}
		reportPercentiles(b, lat)
	}
}

// seeded returns a client holding rows 0..n-1.
func seeded(b B, n int) *client.Client {
	b.Helper()
	c := openClient(b, "NORMAL")
	ctx := context.Background()
	for start := 0; start < n; start += 1000 {
		err := c.Tx(ctx, func(tx *client.Tx) error {
			for i := start; i < min(n, start+1000); i++ {
				if err := tx.Put("tasks", strconv.Itoa(i), row(i)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	return c
}

// ReadByKey reads random rows of 10,000 by ID.
func ReadByKey(b B) {
	const n = 10_000
	c := seeded(b, n)
	tasks := c.Collection("tasks")
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	b.ResetTimer()
	for range b.N() {
		if _, err := tasks.Get(ctx, strconv.Itoa(rng.IntN(n))); err != nil {
			b.Fatal(err)
		}
	}
}

// Query100 runs a query returning 100 of 10,000 rows through an index.
func Query100(b B) {
	const n = 10_000
	c := seeded(b, n)
	tasks := c.Collection("tasks")
	ctx := context.Background()
	q := client.Query{Where: []client.Cond{client.Where("priority", "=", 3)}, OrderBy: "title", Limit: 100}
	b.ResetTimer()
	for range b.N() {
		docs, err := tasks.Find(ctx, q)
		if err != nil {
			b.Fatal(err)
		}
		if len(docs) != 100 {
			b.Fatalf("query returned %d rows, want 100", len(docs))
		}
	}
}

// WatchLatency measures the time from the start of a write to the
// delivery of the changed result to a live query of 100 rows.
func WatchLatency(b B) {
	c := seeded(b, 1000)
	tasks := c.Collection("tasks")
	ctx := context.Background()
	w, err := tasks.Watch(ctx, client.Query{Where: []client.Cond{client.Where("priority", "=", 1)}, OrderBy: "title", Limit: 100})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	<-w.C // the initial result
	timeout := time.NewTimer(time.Hour)
	b.ResetTimer()
	for n := range b.N() {
		if err := tasks.Patch(ctx, "1", map[string]any{"note": "edit " + strconv.Itoa(n)}); err != nil {
			b.Fatal(err)
		}
		timeout.Reset(10 * time.Second)
		select {
		case <-w.C:
		case <-timeout.C:
			b.Fatal("no watch notification within 10s")
		}
	}
}
