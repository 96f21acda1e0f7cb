package main

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/signal"

	"github.com/jackc/pgx/v5"
	"github.com/unosync/uno/cli"
	"github.com/unosync/uno/crdt"
	"github.com/unosync/uno/server/pglog"
	"github.com/unosync/uno/server/sqlitelog"
	usync "github.com/unosync/uno/sync"
)

// Projection returns the collection_stats projection on the Postgres log.
func Projection(async bool) pglog.Projection {
	return pglog.Projection{
		Name:  "collection_stats",
		Async: async,
		Tables: []pglog.ProjectionTable{{Name: "collection_stats", Columns: `
			tenant_id text   NOT NULL,
			coll      text   NOT NULL,
			txs       bigint NOT NULL,
			ops       bigint NOT NULL,
			deletes   bigint NOT NULL,
			last_seq  bigint NOT NULL,
			PRIMARY KEY (tenant_id, coll)`}},
		Fold: fold,
	}
}

// SQLiteProjection returns the collection_stats projection on the
// embedded SQLite log: the same counts, folded with database/sql.
func SQLiteProjection(async bool) sqlitelog.Projection {
	return sqlitelog.Projection{
		Name:  "collection_stats",
		Async: async,
		Tables: []sqlitelog.Table{{Name: "collection_stats", Columns: `
			tenant   TEXT    NOT NULL,
			coll     TEXT    NOT NULL,
			txs      INTEGER NOT NULL,
			ops      INTEGER NOT NULL,
			deletes  INTEGER NOT NULL,
			last_seq INTEGER NOT NULL,
			PRIMARY KEY (tenant, coll)`}},
		Fold: foldSQLite,
	}
}

type counts struct{ txs, ops, deletes, last int64 }

// tally counts a batch per collection, collections in the order first
// seen.
func tally(chs []usync.Change) ([]string, map[string]*counts) {
	by := map[string]*counts{}
	var colls []string
	for _, ch := range chs {
		seen := map[string]bool{}
		for _, op := range ch.Tx.Ops {
			c := by[op.Collection]
			if c == nil {
				c = &counts{}
				by[op.Collection] = c
				colls = append(colls, op.Collection)
			}
			c.ops++
			if op.Type == crdt.OpDelete {
				c.deletes++
			}
			if !seen[op.Collection] {
				seen[op.Collection] = true
				c.txs++
			}
			c.last = int64(ch.Seq)
		}
	}
	return colls, by
}

// fold adds a batch's counts per collection with one upsert.
func fold(ctx context.Context, tx pgx.Tx, tenant string, chs []usync.Change) error {
	colls, by := tally(chs)
	if len(colls) == 0 {
		return nil
	}
	txs, ops, dels, last := make([]int64, len(colls)), make([]int64, len(colls)), make([]int64, len(colls)), make([]int64, len(colls))
	for i, name := range colls {
		c := by[name]
		txs[i], ops[i], dels[i], last[i] = c.txs, c.ops, c.deletes, c.last
	}
	_, err := tx.Exec(ctx, `INSERT INTO collection_stats (tenant_id, coll, txs, ops, deletes, last_seq)
		SELECT $1, * FROM unnest($2::text[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[])
		ON CONFLICT (tenant_id, coll) DO UPDATE SET
			txs = collection_stats.txs + excluded.txs,
			ops = collection_stats.ops + excluded.ops,
			deletes = collection_stats.deletes + excluded.deletes,
			last_seq = greatest(collection_stats.last_seq, excluded.last_seq)`,
		tenant, colls, txs, ops, dels, last)
	return err
}

// foldSQLite adds a batch's counts with an upsert per collection.
func foldSQLite(ctx context.Context, tx *sql.Tx, tenant string, chs []usync.Change) error {
	colls, by := tally(chs)
	for _, name := range colls {
		c := by[name]
		_, err := tx.ExecContext(ctx, `INSERT INTO collection_stats (tenant, coll, txs, ops, deletes, last_seq)
			VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (tenant, coll) DO UPDATE SET
				txs = txs + excluded.txs,
				ops = ops + excluded.ops,
				deletes = deletes + excluded.deletes,
				last_seq = max(last_seq, excluded.last_seq)`,
			tenant, name, c.txs, c.ops, c.deletes, c.last)
		if err != nil {
			return err
		}
	}
	return nil
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	async := os.Getenv("UNO_STATS_ASYNC") == "1"
	o := cli.Options{
		Projections:       []pglog.Projection{Projection(async)},
		SQLiteProjections: []sqlitelog.Projection{SQLiteProjection(async)},
	}
	if err := cli.Run(ctx, os.Args[1:], o); err != nil {
		fmt.Fprintln(os.Stderr, "stats:", err)
		os.Exit(1)
	}
}
