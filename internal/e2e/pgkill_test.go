package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/unosync/uno/client"
	"github.com/unosync/uno/internal/pgtest"
	"github.com/unosync/uno/server"
	"github.com/unosync/uno/server/pglog"
)

// Kill Postgres (pg_ctl -m immediate) in the middle of pushes and restart
// it: no acknowledged write is lost, none is applied twice, and the server
// and its clients recover by themselves.
func TestKillPostgres(t *testing.T) {
	const cycles = 5
	ctx := context.Background()
	pg := pgtest.NewCluster(t)
	if err := pglog.Migrate(ctx, pg.Admin, pglog.SchemaVersion); err != nil {
		t.Fatal(err)
	}
	l, err := pglog.Open(ctx, pg.Admin)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	e := startServerWith(t, server.Config{Log: l})
	ws, stop := startWriters(t, 2, client.Config{Server: e.url, Token: e.auth.Token,
		BackoffMin: 10 * time.Millisecond, BackoffMax: 200 * time.Millisecond,
	}, 2*time.Millisecond, func(c *client.Client, i, k int) (int, error) {
		if err := c.Collection("items").Put(ctx, fmt.Sprintf("c%d-%d", i, k), map[string]any{"n": k}); err != nil {
			return 0, err
		}
		return 1, nil
	})
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 3))
	for cycle := range cycles {
		time.Sleep(time.Duration(100+rng.IntN(200)) * time.Millisecond)
		acked := make([]uint64, len(ws))
		for i, w := range ws {
			acked[i] = w.acked(t)
		}
		pg.Kill()
		time.Sleep(time.Duration(rng.IntN(100)) * time.Millisecond) // clients retry against a dead database
		pg.Start()
		for i, w := range ws {
			var hw uint64
			waitFor(t, func() bool { // the pool reconnects by itself
				var err error
				hw, err = l.HighWater(ctx, "dev", w.c.Site())
				return err == nil
			})
			if hw < acked[i] {
				t.Fatalf("cycle %d: client %d had seq %d acknowledged, Postgres holds %d", cycle, i, acked[i], hw)
			}
		}
	}
	stop()
	for i, w := range ws {
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		if err := w.c.Sync(sctx); err != nil {
			t.Fatalf("client %d did not recover: %v", i, err)
		}
		cancel()
	}
	seen, total := siteSeqs(t, l, "dev")
	for i, w := range ws {
		if got := seen[w.c.Site().String()]; got != uint64(w.written.Load()) {
			t.Errorf("client %d wrote %d, Postgres holds %d", i, w.written.Load(), got)
		}
	}
	want, _ := l.RowsHash(ctx, "dev")
	for _, w := range ws {
		waitFor(t, func() bool { h, _ := w.c.Hash(ctx); return h == want })
	}
	t.Logf("%d Postgres kills, %d transactions", cycles, total)
}
