package bench

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/unosync/uno/crdt"
	"github.com/unosync/uno/server/pglog"
)

// The Postgres log's ingest and its ceiling: IngestAppenders appenders
// at once, each IngestBatches batches of IngestBatch transactions, one
// new row of FieldsPerRow register fields per transaction.
const (
	IngestAppenders = 4
	IngestBatch     = 500
	IngestBatches   = 10
)

// pgTxs returns n transactions of one site from seq from+1 on, each
// creating one row with FieldsPerRow register fields.
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

// PGIngest returns the Postgres log's ingest workload: IngestAppenders
// concurrent appenders append batches of transactions (durable commits,
// the rows read model written in the same transaction) to the log opened
// on the empty database db returns (an admin DSN and a DSN of a role
// that is neither owner nor superuser: uno serve's, so row-level security
// applies), to tenant(appender). It reports field ops/s.
func PGIngest(db func(B) (admin string, app func(admin string) string), tenant func(appender int) string) func(B) {
	return func(b B) {
		ctx := context.Background()
		admin, app := db(b)
		if err := pglog.Migrate(ctx, admin, pglog.SchemaVersion); err != nil {
			b.Fatal(err)
		}
		l, err := pglog.Open(ctx, app(admin))
		if err != nil {
			b.Fatal(err)
		}
		defer l.Close()
		var elapsed time.Duration
		for n := range b.N() {
			work := make([][][]crdt.Tx, IngestAppenders)
			for a := range work {
				site := crdt.SiteID{byte(n), byte(a), byte(n >> 8), 1}
				for k := range IngestBatches {
					work[a] = append(work[a], pgTxs(site, k*IngestBatch, IngestBatch))
				}
			}
			elapsed += atOnce(IngestAppenders, func(a int) {
				for _, txs := range work[a] {
					if _, err := l.Append(ctx, tenant(a), txs); err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		b.ReportMetric(float64(b.N()*IngestAppenders*IngestBatch*IngestBatches*FieldsPerRow)/elapsed.Seconds(), "fieldops/s")
	}
}

// PGCopy returns PGIngest's ceiling: the same transactions' bytes copied
// with COPY into a plain table (one row per transaction, keyed as the
// log's) on the empty database at the admin DSN db returns, from
// IngestAppenders connections at once. It reports field ops/s.
func PGCopy(db func(B) string) func(B) {
	return func(b B) {
		ctx := context.Background()
		dsn := db(b)
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			b.Fatal(err)
		}
		_, err = conn.Exec(ctx, `CREATE TABLE plain (tenant_id text, seq bigint, site bytea, site_seq bigint, tx bytea, PRIMARY KEY (tenant_id, seq))`)
		conn.Close(ctx)
		if err != nil {
			b.Fatal(err)
		}
		var elapsed time.Duration
		var next int64
		for n := range b.N() {
			work := make([][][]any, IngestAppenders)
			for a := range work {
				site := crdt.SiteID{byte(n), byte(a), byte(n >> 8), 2}
				for k := range IngestBatches {
					for _, tx := range pgTxs(site, k*IngestBatch, IngestBatch) {
						next++
						work[a] = append(work[a], []any{"bench", next, tx.Site[:], int64(tx.Seq), crdt.EncodeTx(&tx)})
					}
				}
			}
			elapsed += atOnce(IngestAppenders, func(a int) {
				c, err := pgx.Connect(ctx, dsn)
				if err != nil {
					b.Error(err)
					return
				}
				defer c.Close(ctx)
				for k := range IngestBatches {
					rows := work[a][k*IngestBatch : (k+1)*IngestBatch]
					if _, err := c.CopyFrom(ctx, pgx.Identifier{"plain"}, []string{"tenant_id", "seq", "site", "site_seq", "tx"}, pgx.CopyFromRows(rows)); err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		b.ReportMetric(float64(b.N()*IngestAppenders*IngestBatch*IngestBatches*FieldsPerRow)/elapsed.Seconds(), "fieldops/s")
	}
}

// atOnce runs f(0), ..., f(n-1) in goroutines of their own, all at once,
// and returns how long they took together.
func atOnce(n int, f func(i int)) time.Duration {
	start := time.Now()
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { f(i) })
	}
	wg.Wait()
	return time.Since(start)
}
