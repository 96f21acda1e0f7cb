package pglog_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/unosync/uno/crdt"
	"github.com/unosync/uno/internal/pgtest"
	"github.com/unosync/uno/server/pglog"
	usync "github.com/unosync/uno/sync"
	"github.com/unosync/uno/tenancy"
)

// seenProjection sets up a database with tenant t1 and an async
// projection "p" that records each entry's seq in p_seen.
func seenProjection(t *testing.T) (admin string, p pglog.Projection) {
	t.Helper()
	ctx := context.Background()
	admin = pgtest.NewDatabase(t)
	if err := pglog.Migrate(ctx, admin, pglog.SchemaVersion); err != nil {
		t.Fatal(err)
	}
	reg, err := pglog.OpenRegistry(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	if err := reg.Create(ctx, tenancy.Tenant{ID: "t1"}); err != nil {
		t.Fatal(err)
	}
	p = pglog.Projection{Name: "p", Async: true,
		Tables: []pglog.ProjectionTable{{Name: "p_seen", Columns: "tenant_id text NOT NULL, seq bigint NOT NULL, PRIMARY KEY (tenant_id, seq)"}},
		Fold: func(ctx context.Context, tx pgx.Tx, tenant string, chs []usync.Change) error {
			for _, ch := range chs {
				if _, err := tx.Exec(ctx, `INSERT INTO p_seen VALUES ($1, $2) ON CONFLICT DO NOTHING`, tenant, int64(ch.Seq)); err != nil {
					return err
				}
			}
			return nil
		}}
	if err := pglog.SetupProjections(ctx, admin, p); err != nil {
		t.Fatal(err)
	}
	return admin, p
}

// An async projection folds, when its log opens, the entries appended
// while it did not run — as the server's role, which may not list the
// registry (row-level security on uno_tenants), without a new append to
// wake it.
func TestPGProjector_FoldsWhatArrivedWhileDown(t *testing.T) {
	ctx := context.Background()
	admin, p := seenProjection(t)
	app := pgtest.NewAppRole(t, admin)
	without, err := pglog.Open(ctx, app) // a node that does not run the projection
	if err != nil {
		t.Fatal(err)
	}
	for seq := uint64(1); seq <= 3; seq++ {
		tx := crdt.Tx{Site: crdt.SiteID{1}, Seq: seq, Time: crdt.Timestamp(seq), Ops: []crdt.Op{{Type: crdt.OpSet, Kind: crdt.KindRegister, Collection: "c", Row: "r", Field: "f", CL: 1, Value: []byte(`1`)}}}
		if _, err := without.Append(ctx, "t1", []crdt.Tx{tx}); err != nil {
			t.Fatal(err)
		}
	}
	without.Close()
	l, err := pglog.Open(ctx, app, p)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		cp, _ := l.Checkpoint(ctx, "t1", "p")
		if cp == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("checkpoint %d after the log opened, want 3: the worker never visited the tenant", cp)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A rebuild's swap never deadlocks with an async fold in flight: the fold
// holds its checkpoint row and then writes the live table, so the swap
// takes the checkpoints before it drops that table, and waits for the
// fold to end. (It used to drop the table first, then wait for the
// checkpoint row: a fold that wrote the table then was a deadlock, which
// PostgreSQL broke by failing one of them.)
func TestPGRebuild_SwapWaitsForAFoldInFlight(t *testing.T) {
	ctx := context.Background()
	admin, p := seenProjection(t)
	l, err := pglog.Open(ctx, admin) // runs no projector: the test is the fold
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	tx1 := crdt.Tx{Site: crdt.SiteID{1}, Seq: 1, Time: 1, Ops: []crdt.Op{{Type: crdt.OpSet, Kind: crdt.KindRegister, Collection: "c", Row: "r", Field: "f", CL: 1, Value: []byte(`1`)}}}
	if _, err := l.Append(ctx, "t1", []crdt.Tx{tx1}); err != nil {
		t.Fatal(err)
	}

	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var pid int
	if err := conn.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
		t.Fatal(err)
	}
	// A fold's first steps: its checkpoint row, locked.
	fold, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer fold.Rollback(ctx)
	for _, q := range []string{
		`SELECT set_config('uno.tenant', 't1', true)`,
		`INSERT INTO uno_checkpoints (tenant_id, projection, seq) VALUES ('t1', 'p', 0) ON CONFLICT DO NOTHING`,
		`SELECT seq FROM uno_checkpoints WHERE tenant_id = 't1' AND projection = 'p' FOR UPDATE`,
	} {
		if _, err := fold.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}

	// Watched from another connection: a transaction sees
	// pg_stat_activity as it was when the transaction first read it.
	watch, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	defer watch.Close(ctx)
	rebuilt := make(chan error, 1)
	go func() { rebuilt <- pglog.RebuildProjection(ctx, admin, p, nil) }()
	// Wait for the swap to wait on a lock the fold holds.
	deadline := time.Now().Add(60 * time.Second)
	for {
		var waiting int
		if err := watch.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND $1 = ANY (pg_blocking_pids(pid))`, pid).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting > 0 {
			break
		}
		select {
		case err := <-rebuilt:
			t.Fatalf("the rebuild ended (%v) without waiting for the fold in flight", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("the rebuild never waited for the fold in flight")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The rest of the fold: the live table, then the checkpoint.
	if _, err := fold.Exec(ctx, `INSERT INTO p_seen VALUES ('t1', 1) ON CONFLICT DO NOTHING`); err != nil {
		t.Fatalf("the fold, with a rebuild swapping: %v", err)
	}
	if _, err := fold.Exec(ctx, `UPDATE uno_checkpoints SET seq = 1 WHERE tenant_id = 't1' AND projection = 'p'`); err != nil {
		t.Fatalf("the fold, with a rebuild swapping: %v", err)
	}
	if err := fold.Commit(ctx); err != nil {
		t.Fatalf("the fold, with a rebuild swapping: %v", err)
	}
	if err := <-rebuilt; err != nil {
		t.Fatalf("the rebuild, with a fold in flight: %v", err)
	}
	var seen int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM p_seen`).Scan(&seen); err != nil {
		t.Fatal(err)
	}
	if seen != 1 {
		t.Errorf("%d rows in the rebuilt table, want 1", seen)
	}
	if cp, err := l.Checkpoint(ctx, "t1", "p"); err != nil || cp != 1 {
		t.Errorf("checkpoint after the rebuild %d (%v), want 1", cp, err)
	}
}
