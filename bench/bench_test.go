package bench

import (
	"errors"
	"os"
	"testing"

	"github.com/unosync/uno/client"
	"github.com/unosync/uno/internal/pgtest"
)

// Run with: go test ./bench -run '^$' -bench . -benchtime 2s
// or, for the report with ratios, targets and charts: go run ./cmd/uno bench

// testB is a *testing.B as a B.
type testB struct{ *testing.B }

func (b testB) N() int { return b.B.N }

func BenchmarkWriteTx1000(b *testing.B)         { WriteTx1000(testB{b}) }
func BenchmarkWriteTx1000Prefetch(b *testing.B) { WriteTx1000Prefetch(testB{b}) }
func BenchmarkPlainTx1000(b *testing.B)         { PlainTx1000(testB{b}) }
func BenchmarkWriteSingle(b *testing.B)         { WriteSingle(testB{b}) }
func BenchmarkPlainSingle(b *testing.B)         { PlainSingle(testB{b}) }
func BenchmarkPlainShared(b *testing.B) {
	b.Run("2", func(b *testing.B) { PlainShared(2)(testB{b}) })
	b.Run("3", func(b *testing.B) { PlainShared(3)(testB{b}) })
}
func BenchmarkApplyOne(b *testing.B)     { ApplyOne(testB{b}) }
func BenchmarkApplyBatch(b *testing.B)   { ApplyBatch(testB{b}) }
func BenchmarkPlainApply(b *testing.B)   { PlainApply(testB{b}) }
func BenchmarkReadByKey(b *testing.B)    { ReadByKey(testB{b}) }
func BenchmarkQuery100(b *testing.B)     { Query100(testB{b}) }
func BenchmarkWatchLatency(b *testing.B) { WatchLatency(testB{b}) }

func BenchmarkSyncUpdates(b *testing.B)  { SyncUpdates(testB{b}) }
func BenchmarkRoom(b *testing.B)         { Room(testB{b}) }
func BenchmarkPacedLatency(b *testing.B) { PacedLatency(testB{b}) }
func BenchmarkBootstrap(b *testing.B)    { Bootstrap(testB{b}) }

// The Postgres benchmarks (pg_test.go) need internal/pgtest, which only
// tests may link.

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

func BenchmarkDocTraceLocal(b *testing.B)        { needTrace(b); DocTraceLocal(testB{b}) }
func BenchmarkDocTraceLocalRelaxed(b *testing.B) { needTrace(b); DocTraceLocalRelaxed(testB{b}) }
func BenchmarkDocTraceSync(b *testing.B)         { needTrace(b); DocTraceSync(testB{b}) }

// needTrace skips a trace benchmark, saying why, on a machine without the
// trace: it is read from the shared data directory, never downloaded.
func needTrace(b *testing.B) {
	if _, err := LoadTrace(); errors.Is(err, ErrNoTrace) {
		b.Skip(err)
	}
}

func BenchmarkTwoClients(b *testing.B) {
	benchModes(b, func(d client.Durability) func(B) { return ClientUpdates(TwoClients, d) })
}
func BenchmarkFiftyClients(b *testing.B) {
	benchModes(b, func(d client.Durability) func(B) { return ClientUpdates(FiftyClients, d) })
}
func BenchmarkPacedOne(b *testing.B) {
	benchModes(b, func(d client.Durability) func(B) { return PacedWatch(PacedOne, d) })
}
func BenchmarkPacedStages(b *testing.B) { PacedStages(PacedOne)(testB{b}) }
func BenchmarkPacedMany(b *testing.B) {
	benchModes(b, func(d client.Durability) func(B) { return PacedWatch(PacedMany, d) })
}

// benchModes runs a real-client workload in both durability modes.
func benchModes(b *testing.B, w func(client.Durability) func(B)) {
	b.Run("full", func(b *testing.B) { w(client.DurabilityFull)(testB{b}) })
	b.Run("relaxed", func(b *testing.B) { w(client.DurabilityRelaxed)(testB{b}) })
}

func BenchmarkFsyncPaced(b *testing.B)  { PacedFsync(PacedOne)(testB{b}) }
func BenchmarkWSEcho(b *testing.B)      { WSEcho(2000)(testB{b}) }
func BenchmarkWSBroadcast(b *testing.B) { WSBroadcast(49, 2000)(testB{b}) }
func BenchmarkWSRelay(b *testing.B) {
	b.Run("1", func(b *testing.B) { WSRelay(PacedOne)(testB{b}) })
	b.Run("49", func(b *testing.B) { WSRelay(PacedMany)(testB{b}) })
}

func BenchmarkWSRelayReplicas(b *testing.B) {
	b.Run("1", func(b *testing.B) { WSRelayReplicas(PacedOne)(testB{b}) })
	b.Run("49", func(b *testing.B) { WSRelayReplicas(PacedMany)(testB{b}) })
}
