package bench

import (
	"os"
	"testing"

	"github.com/unosync/uno/internal/pgtest"
)

// Run with: go test ./bench -run '^$' -bench . -benchtime 2s
// or, for the table with ratios and targets: go run ./cmd/uno bench

func BenchmarkWriteTx1000(b *testing.B)  { WriteTx1000(b) }
func BenchmarkPlainTx1000(b *testing.B)  { PlainTx1000(b) }
func BenchmarkWriteSingle(b *testing.B)  { WriteSingle(b) }
func BenchmarkPlainSingle(b *testing.B)  { PlainSingle(b) }
func BenchmarkReadByKey(b *testing.B)    { ReadByKey(b) }
func BenchmarkQuery100(b *testing.B)     { Query100(b) }
func BenchmarkWatchLatency(b *testing.B) { WatchLatency(b) }

func BenchmarkSyncUpdates(b *testing.B)   { SyncUpdates(b) }
func BenchmarkRoom(b *testing.B)          { Room(b) }
func BenchmarkPacedLatency(b *testing.B)  { PacedLatency(b) }
func BenchmarkBootstrap(b *testing.B)     { Bootstrap(b) }
func BenchmarkBootstrapPG(b *testing.B)   { BootstrapPG(b) }
func BenchmarkPGIngest(b *testing.B)      { PGIngest(b) }
func BenchmarkPGCopyCeiling(b *testing.B) { PGCopyCeiling(b) }
func BenchmarkQueryPage(b *testing.B)     { QueryPage(b) }

func BenchmarkPGIngestTenants(b *testing.B) { PGIngestTenants(b) }

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
