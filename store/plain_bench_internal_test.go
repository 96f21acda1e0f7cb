package store

import (
	"path/filepath"
	"strconv"
	"testing"
)

// BenchmarkPlain1000Rows is BenchmarkSQLite_Write1000Rows's floor: plain
// inserts of rows of the same shape (4 values and a state blob), 1,000 per
// transaction, through the build's own driver and settings (openDB):
// modernc natively, package sqlitejs on IndexedDB in the browser build.
func BenchmarkPlain1000Rows(b *testing.B) {
	o, err := Options{}.withDefaults()
	if err != nil {
		b.Fatal(err)
	}
	db, err := openDB(filepath.Join(b.TempDir(), "plain.db"), &o)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE TABLE bench (id TEXT PRIMARY KEY, title, done, rank, note, _uno BLOB)`); err != nil {
		b.Fatal(err)
	}
	ins, err := db.Prepare(`INSERT INTO bench VALUES (?, ?, ?, ?, ?, ?)`)
	if err != nil {
		b.Fatal(err)
	}
	state := make([]byte, 120)
	b.ResetTimer()
	for n := range b.N {
		tx, err := db.Begin()
		if err != nil {
			b.Fatal(err)
		}
		st := tx.Stmt(ins)
		for i := range 1000 {
			if _, err := st.Exec("r"+strconv.Itoa(n)+"-"+strconv.Itoa(i), "v", "v", "v", "v", state); err != nil {
				b.Fatal(err)
			}
		}
		if err := tx.Commit(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*1000)/b.Elapsed().Seconds(), "rows/s")
}
