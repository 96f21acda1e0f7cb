package bench

import (
	"context"
	"database/sql"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/unosync/uno/crdt"
	"github.com/unosync/uno/store"
)

// ApplyPerCommit is the batch size of ApplyBatch: how many remote
// transactions a replica applies in one commit when they arrive together.
const ApplyPerCommit = 100

// ApplyOne applies remote one-field transactions to a replica's store one
// at a time, each in its own commit with the cursor, as a client does
// with changes that arrive one by one: the apply path a receiver runs for
// every update (store.SQLite.ApplyAt, which the client's sync loop calls).
// It reports the process's CPU time per transaction beside tx/s.
func ApplyOne(b B) { applyRemote(b, 1) }

// ApplyBatch is ApplyOne with ApplyPerCommit transactions per commit.
func ApplyBatch(b B) { applyRemote(b, ApplyPerCommit) }

func applyRemote(b B, per int) {
	ctx := context.Background()
	src, err := store.OpenSQLite(ctx, filepath.Join(b.TempDir(), "src.db"), store.Options{Synchronous: "NORMAL"})
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	n := max(b.N(), per)
	txs := make([]*crdt.Tx, n)
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
	cpu := processCPU(b)
	for i := 0; i < n; i += per {
		j := min(n, i+per)
		if _, err := dst.ApplyAt(ctx, txs[i:j], uint64(j)); err != nil {
			b.Fatal(err)
		}
	}
	cpu = processCPU(b) - cpu
	b.StopTimer()
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(n), "cpu-ns/tx")
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "tx/s")
}

// PlainApply is ApplyOne's floor: a SQLite transaction of two statements
// (an upsert of one row, an update of a cursor) through the same driver
// at synchronous=NORMAL, as a replica's applies commit.
func PlainApply(b B) {
	db := openPlain(b, "NORMAL")
	ins, upd := plainApplyStmts(b, db)
	b.ResetTimer()
	cpu := processCPU(b)
	for i := range b.N() {
		if err := plainApply(db, ins, upd, i); err != nil {
			b.Fatal(err)
		}
	}
	cpu = processCPU(b) - cpu
	b.StopTimer()
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N()), "cpu-ns/tx")
	b.ReportMetric(float64(b.N())/b.Elapsed().Seconds(), "tx/s")
}

// plainApplyStmts creates PlainApply's cursor table in db and prepares
// its statements: the row's upsert and the cursor's update.
func plainApplyStmts(b B, db *sql.DB) (ins, upd *sql.Stmt) {
	b.Helper()
	ins, err := db.Prepare(`INSERT INTO tasks (id, title) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET title = excluded.title`)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TABLE cursor (id INTEGER PRIMARY KEY, seq INTEGER NOT NULL); INSERT INTO cursor VALUES (1, 0)`); err != nil {
		b.Fatal(err)
	}
	if upd, err = db.Prepare(`UPDATE cursor SET seq = ? WHERE id = 1`); err != nil {
		b.Fatal(err)
	}
	return ins, upd
}

func plainApply(db *sql.DB, ins, upd *sql.Stmt, i int) error {
	tx, err := db.Begin()
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.Stmt(ins).Exec(strconv.Itoa(i%100), "task number "+strconv.Itoa(i)); err != nil {
		return err
	}
	if _, err := tx.Stmt(upd).Exec(i + 1); err != nil {
		return err
	}
	return tx.Commit()
}

// processCPU returns the user and system CPU time this process has used.
func processCPU(b B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
