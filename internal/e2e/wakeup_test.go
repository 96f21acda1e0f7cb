package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/unosync/uno/server"
)

// Finding 5: a wake-up that brings nothing new does not make idle
// sessions spin. A forged NOTIFY with a head far above the real one, and
// the loss of the LISTEN connection, each make a session read the log
// once, then wait again (they used to run thousands of Postgres
// transactions a second).
func TestWakeUps_NothingNewDoesNotSpin(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	pg := newPG(t)
	e := startServerWith(t, server.Config{Log: pg.log, Auth: tenantByToken{}})
	const sessions = 5
	for range sessions {
		dialRaw(t, ctx, e.url, "acme", 64, 0)
	}
	admin, err := pgx.Connect(ctx, pg.admin)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())

	// acquired counts the log's pool acquisitions (one per query or
	// transaction) over a second after poke.
	acquired := func(poke func()) int64 {
		t.Helper()
		before := pg.log.PoolStat().AcquireCount()
		poke()
		time.Sleep(time.Second) // a window to count in, not a wait for an event
		return pg.log.PoolStat().AcquireCount() - before
	}
	idle := acquired(func() {})
	forged := acquired(func() {
		if _, err := admin.Exec(ctx, `SELECT pg_notify('uno_log', 'acme 999999')`); err != nil {
			t.Fatal(err)
		}
	})
	dropped := acquired(func() {
		if _, err := admin.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'LISTEN%' AND pid <> pg_backend_pid()`); err != nil {
			t.Fatal(err)
		}
	})
	t.Logf("pool acquisitions in 1 s: idle %d, after a forged notification %d, after the listener dropped %d", idle, forged, dropped)
	// A few reads per session per wake-up, never a loop.
	const bound = 20 * sessions
	if forged > bound || dropped > bound {
		t.Fatalf("idle sessions spun: %d and %d acquisitions in a second (bound %d)", forged, dropped, bound)
	}
}
