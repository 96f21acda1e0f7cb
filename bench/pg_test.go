package bench

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/unosync/uno/crdt"
	"github.com/unosync/uno/internal/pgtest"
	"github.com/unosync/uno/server"
	"github.com/unosync/uno/server/pglog"
)

// pgTxs returns n transactions of one site, each creating one row with
// FieldsPerRow register fields.
func pgTxs(site crdt.SiteID, from, n int) []crdt.Tx {
	out := make([]crdt.Tx, n)
	for i := range out {
		seq := uint64(from + i + 1)
		id := fmt.Sprintf("%x-%d", site[:2], seq)
		ops := []crdt.Op{{Type: crdt.OpRevive, Collection: "tasks", Row: id, CL: 1}}
		for f, name := range []string{"title", "done", "priority", "note"} {
			ops = append(ops, crdt.Op{Type: crdt.OpSet, Kind: crdt.KindRegister, Collection: "tasks", Row: id, Field: name, CL: 1,
				Value: fmt.Appendf(nil, `"value %d of %s"`, f, id)})
		}
		out[i] = crdt.Tx{Site: site, Seq: seq, Time: crdt.MakeTimestamp(time.Now().UnixMilli(), 0), Ops: ops}
	}
	return out
}

// BenchmarkPGIngest appends to the Postgres log (durable commits, the rows
// projection inline) from 4 concurrent appenders, batches of 500
// transactions of one 4-field row each, all to one tenant. It reports
// field ops/s.
func BenchmarkPGIngest(b *testing.B) { pgIngest(b, func(int) string { return "bench" }) }

// BenchmarkPGIngestTenants is BenchmarkPGIngest with each appender on a tenant of its own,
// so appends never wait for each other's head lock: it shows what the
// one-tenant figure loses to that lock.
func BenchmarkPGIngestTenants(b *testing.B) {
	pgIngest(b, func(a int) string { return fmt.Sprint("bench", a) })
}

func pgIngest(b *testing.B, tenant func(appender int) string) {
	const appenders, batch, batches = 4, 500, 10
	ctx := context.Background()
	dsn := pgtest.NewDatabase(b)
	if err := pglog.Migrate(ctx, dsn, pglog.SchemaVersion); err != nil {
		b.Fatal(err)
	}
	l, err := pglog.Open(ctx, dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	var elapsed time.Duration
	for n := range b.N {
		work := make([][][]crdt.Tx, appenders)
		for a := range work {
			site := crdt.SiteID{byte(n), byte(a), 1}
			for k := range batches {
				work[a] = append(work[a], pgTxs(site, k*batch, batch))
			}
		}
		start := time.Now()
		var wg sync.WaitGroup
		for a := range appenders {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for _, txs := range work[a] {
					if _, err := l.Append(ctx, tenant(a), txs); err != nil {
						b.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		elapsed += time.Since(start)
	}
	b.ReportMetric(float64(b.N*appenders*batch*batches*FieldsPerRow)/elapsed.Seconds(), "fieldops/s")
}

// BenchmarkPGCopyCeiling is BenchmarkPGIngest's ceiling: the same transactions' bytes copied
// with CopyFrom into a plain table (one row per transaction), from 4
// concurrent connections.
func BenchmarkPGCopyCeiling(b *testing.B) {
	const appenders, batch, batches = 4, 500, 10
	ctx := context.Background()
	dsn := pgtest.NewDatabase(b)
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `CREATE TABLE plain (tenant_id text, seq bigint, site bytea, site_seq bigint, tx bytea, PRIMARY KEY (tenant_id, seq))`); err != nil {
		b.Fatal(err)
	}
	conn.Close(ctx)
	var elapsed time.Duration
	var next int64
	var mu sync.Mutex
	for n := range b.N {
		work := make([][][]any, appenders)
		for a := range work {
			site := crdt.SiteID{byte(n), byte(a), 2}
			for k := range batches {
				for _, tx := range pgTxs(site, k*batch, batch) {
					mu.Lock()
					next++
					seq := next
					mu.Unlock()
					work[a] = append(work[a], []any{"bench", seq, tx.Site[:], int64(tx.Seq), crdt.EncodeTx(&tx)})
				}
			}
		}
		start := time.Now()
		var wg sync.WaitGroup
		for a := range appenders {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, err := pgx.Connect(ctx, dsn)
				if err != nil {
					b.Error(err)
					return
				}
				defer c.Close(ctx)
				for k := range batches {
					rows := work[a][k*batch : (k+1)*batch]
					if _, err := c.CopyFrom(ctx, pgx.Identifier{"plain"}, []string{"tenant_id", "seq", "site", "site_seq", "tx"}, pgx.CopyFromRows(rows)); err != nil {
						b.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		elapsed += time.Since(start)
	}
	b.ReportMetric(float64(b.N*appenders*batch*batches*FieldsPerRow)/elapsed.Seconds(), "fieldops/s")
}

// BenchmarkBootstrapPG is Bootstrap from `uno serve --postgres` on a
// throwaway database: the snapshot is read from the Postgres rows read
// model.
func BenchmarkBootstrapPG(b *testing.B) {
	dsn := pgtest.NewDatabase(b)
	if err := pglog.Migrate(context.Background(), dsn, pglog.SchemaVersion); err != nil {
		b.Fatal(err)
	}
	bootstrap(testB{b}, startServerProcess(testB{b}, "--postgres", pgtest.NewAppRole(b, dsn)), bootstrapRows())
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
