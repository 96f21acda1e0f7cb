package store_test

import (
	"database/sql"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/unosync/uno/crdt"
	"github.com/unosync/uno/store"
)

// BenchmarkSQLite_ApplyOne applies remote one-field transactions one at a
// time, each in its own commit with the cursor, as a client applies
// changes that arrive one by one: the apply path's cost per transaction.
func BenchmarkSQLite_ApplyOne(b *testing.B) {
	ctx := b.Context()
	src, err := store.OpenSQLite(ctx, filepath.Join(b.TempDir(), "src.db"), store.Options{Synchronous: "NORMAL"})
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	txs := make([]*crdt.Tx, b.N)
	for i := range txs {
		c, err := src.Write(ctx, func(bd *crdt.Builder) error {
			return bd.Set(crdt.RowKey{Collection: "tasks", Row: strconv.Itoa(i % 100)}, "title", crdt.KindRegister, []byte(`"task number `+strconv.Itoa(i)+`"`))
		})
		if err != nil {
			b.Fatal(err)
		}
		txs[i] = c.Tx
	}
	dst, err := store.OpenSQLite(ctx, filepath.Join(b.TempDir(), "dst.db"), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer dst.Close()
	b.ResetTimer()
	for i, tx := range txs {
		if _, err := dst.ApplyAt(ctx, []*crdt.Tx{tx}, uint64(i+1)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSQLite_WriteConcurrent commits one-field local writes from 4
// goroutines at synchronous=FULL: writes waiting together share one
// commit and one fsync (group commit).
func BenchmarkSQLite_WriteConcurrent(b *testing.B) {
	ctx := b.Context()
	s, err := store.OpenSQLite(ctx, filepath.Join(b.TempDir(), "uno.db"), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	b.SetParallelism(2) // 2 × GOMAXPROCS goroutines
	var n atomic.Int64
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			if _, err := s.Write(ctx, func(bd *crdt.Builder) error {
				return bd.Set(crdt.RowKey{Collection: "tasks", Row: strconv.FormatInt(i, 10)}, "title", crdt.KindRegister, []byte(`"task"`))
			}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tx/s")
}

// BenchmarkPlainRelaxedTx is ApplyOne's floor: a SQLite transaction of
// two statements (an upsert of one row and an update of another) through
// the same driver, in WAL mode with synchronous=NORMAL, as a replica's
// relaxed commits are.
func BenchmarkPlainRelaxedTx(b *testing.B) {
	db, err := sql.Open("sqlite", "file:"+filepath.Join(b.TempDir(), "plain.db")+"?_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_txlock=immediate")
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	for _, q := range []string{`CREATE TABLE t (id TEXT PRIMARY KEY, v BLOB)`, `CREATE TABLE r (id INTEGER PRIMARY KEY, c INTEGER)`, `INSERT INTO r VALUES (1, 0)`} {
		if _, err := db.Exec(q); err != nil {
			b.Fatal(err)
		}
	}
	ins, err := db.Prepare(`INSERT INTO t (id, v) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET v = excluded.v`)
	if err != nil {
		b.Fatal(err)
	}
	upd, err := db.Prepare(`UPDATE r SET c = ? WHERE id = 1`)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := range b.N {
		tx, err := db.Begin()
		if err != nil {
			b.Fatal(err)
		}
		if _, err := tx.Stmt(ins).Exec(strconv.Itoa(i%100), []byte(`"task number `+strconv.Itoa(i)+`"`)); err != nil {
			b.Fatal(err)
		}
		if _, err := tx.Stmt(upd).Exec(i); err != nil {
			b.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			b.Fatal(err)
		}
	}
}
