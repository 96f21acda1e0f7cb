package store_test

import (
	"path/filepath"
	"strconv"
	"testing"

	"github.com/unosync/uno/crdt"
	"github.com/unosync/uno/store"
)

// BenchmarkSQLite_Write1000Rows writes transactions of 1,000 new rows of 4
// fields through the store, natively or in the browser build (GOOS=js,
// under Node: see wasm/test), the browser's local-writes workload without
// the page and the worker. BenchmarkPlain1000Rows is its floor.
func BenchmarkSQLite_Write1000Rows(b *testing.B) {
	s, err := store.OpenSQLite(b.Context(), filepath.Join(b.TempDir(), "bench.db"), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	b.ResetTimer()
	for n := range b.N {
		_, err := s.Write(b.Context(), func(bd *crdt.Builder) error {
			for i := range 1000 {
				k := crdt.RowKey{Collection: "bench", Row: "r" + strconv.Itoa(n) + "-" + strconv.Itoa(i)}
				for _, f := range []string{"title", "done", "rank", "note"} {
					if err := bd.Set(k, f, crdt.KindRegister, []byte(`"v`+strconv.Itoa(i)+`"`)); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*1000)/b.Elapsed().Seconds(), "rows/s")
}
