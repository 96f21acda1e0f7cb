package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/unosync/uno/client"
	"github.com/unosync/uno/server"
	"github.com/unosync/uno/server/pglog"
)

// After a randomized workload of several clients (registers, counters,
// sets, deletes, offline stretches) through a Postgres server, the rows
// read model equals every client's state (canonical hash), and a fresh
// rebuild of it from the log — states and JSON documents — equals it too.
func TestReadModel_EqualsClientsAndRebuild(t *testing.T) {
	ctx := context.Background()
	pg := newPG(t)
	admin, l := pg.admin, pg.log
	e := startServerWith(t, server.Config{Log: l, BatchRows: 7})
	rng := rand.New(rand.NewPCG(7, 11))
	cs := []*client.Client{e.client(t, "a", true), e.client(t, "b", true), e.client(t, "c", true)}
	for round := range 6 {
		for i, c := range cs {
			col := c.Collection([]string{"todos", "notes"}[rng.IntN(2)])
			for range 10 {
				id := fmt.Sprint("r", rng.IntN(12))
				var err error
				switch rng.IntN(6) {
				case 0:
					err = col.Delete(ctx, id)
					if err == client.ErrNotFound {
						err = nil
					}
				case 1:
					err = col.Increment(ctx, id, "votes", int64(rng.IntN(5)-2))
				case 2:
					err = col.Add(ctx, id, "tags", fmt.Sprint("t", rng.IntN(4)))
				case 3:
					err = col.Remove(ctx, id, "tags", fmt.Sprint("t", rng.IntN(4)))
				default:
					err = col.Put(ctx, id, map[string]any{"by": i, "round": round, "title": fmt.Sprint("v", rng.IntN(100))})
				}
				if err != nil {
					t.Fatalf("client %d: %v", i, err)
				}
			}
			if rng.IntN(3) > 0 { // sometimes stay offline for a round
				syncCtx(t, c)
			}
		}
	}
	for range 2 {
		for _, c := range cs {
			syncCtx(t, c)
		}
	}
	want, err := l.RowsHash(ctx, "dev")
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range cs {
		if h, _ := c.Hash(ctx); h != want {
			t.Fatalf("client %d differs from the read model", i)
		}
	}
	before := dumpRows(t, admin)
	if err := pglog.RebuildProjection(ctx, admin, pglog.RowsProjection(), nil); err != nil {
		t.Fatal(err)
	}
	if after := dumpRows(t, admin); after != before {
		t.Fatalf("the rebuilt read model differs:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if h, _ := l.RowsHash(ctx, "dev"); h != want {
		t.Fatal("the rebuilt read model's hash differs")
	}
}

// dumpRows returns the Postgres rows read model at dsn (an owner's), a
// line per row: key, version, state and JSON document.
func dumpRows(t *testing.T, dsn string) string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var s string
	if err := conn.QueryRow(ctx, `SELECT coalesce(string_agg(coll || '/' || id || ' ' || seq || ' ' || encode(state, 'hex') || ' ' || coalesce(doc::text, 'deleted'), E'\n' ORDER BY coll, id), '') FROM uno_rows`).Scan(&s); err != nil {
		t.Fatal(err)
	}
	return s
}
