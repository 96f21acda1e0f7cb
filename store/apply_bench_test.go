package store_test

import (
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/unosync/uno/crdt"
	"github.com/unosync/uno/store"
)

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
