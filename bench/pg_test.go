package bench

import (
	"context"
	"fmt"
	"testing"

	"github.com/unosync/uno/internal/pgtest"
	"github.com/unosync/uno/server"
	"github.com/unosync/uno/server/pglog"
)

// BenchmarkPGIngest appends to the Postgres log (durable commits, the rows
// projection inline) from 4 concurrent appenders, batches of 500
// transactions of one 4-field row each, all to one tenant (PGIngest). It
// reports field ops/s.
func BenchmarkPGIngest(b *testing.B) {
	PGIngest(pgDatabase(b), func(int) string { return "bench" })(testB{b})
}

// BenchmarkPGIngestTenants is BenchmarkPGIngest with each appender on a tenant of its own,
// so appends never wait for each other's head lock: it shows what the
// one-tenant figure loses to that lock.
func BenchmarkPGIngestTenants(b *testing.B) {
	PGIngest(pgDatabase(b), func(a int) string { return fmt.Sprint("bench", a) })(testB{b})
}

// BenchmarkPGCopyCeiling is BenchmarkPGIngest's ceiling: the same transactions' bytes copied
// with CopyFrom into a plain table (one row per transaction), from 4
// concurrent connections (PGCopy).
func BenchmarkPGCopyCeiling(b *testing.B) {
	PGCopy(func(B) string { return pgtest.NewDatabase(b) })(testB{b})
}

// pgDatabase gives PGIngest a throwaway database and its app role.
func pgDatabase(b *testing.B) func(B) (string, func(string) string) {
	return func(B) (string, func(string) string) {
		return pgtest.NewDatabase(b), func(admin string) string { return pgtest.NewAppRole(b, admin) }
	}
}

// BenchmarkBootstrapPG is Bootstrap from `uno serve --postgres` on a
// throwaway database: the snapshot is read from the Postgres rows read
// model.
func BenchmarkBootstrapPG(b *testing.B) {
	dsn := pgtest.NewDatabase(b)
	if err := pglog.Migrate(context.Background(), dsn, pglog.SchemaVersion); err != nil {
		b.Fatal(err)
	}
	bootstrap(testB{b}, startServerProcess(testB{b}, "--postgres", pgtest.NewAppRole(b, dsn)), bootstrapRows(100_000))
}

// BenchmarkQueryPage runs the query API benchmarks (see queryPage) over
// each log, Postgres on a throwaway database.
func BenchmarkQueryPage(b *testing.B) {
	logs := map[string]func(B) server.Log{
		"sqlite": sqliteLog,
		"postgres": func(tb B) server.Log {
			return pgLog(tb, pgtest.NewDatabase(b), func(admin string) string { return pgtest.NewAppRole(b, admin) })
		},
	}
	for _, backend := range []string{"sqlite", "postgres"} {
		b.Run(backend, func(b *testing.B) {
			e := startQuery(testB{b}, logs[backend](testB{b}))
			b.Run("cached", func(b *testing.B) { e.cached(testB{b}) })
			b.Run("uncached", func(b *testing.B) { e.uncached(testB{b}) })
		})
	}
}
