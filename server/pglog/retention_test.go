package pglog_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/unosync/uno/crdt"
	"github.com/unosync/uno/internal/pgtest"
	"github.com/unosync/uno/server/pglog"
	usync "github.com/unosync/uno/sync"
)

// Retention never deletes entries an async projection has not folded: a
// projection that fails keeps them all; once it folds, they go.
func TestPGRetain_WaitsForAsyncProjections(t *testing.T) {
	ctx := context.Background()
	admin := pgtest.NewDatabase(t)
	if err := pglog.Migrate(ctx, admin, pglog.SchemaVersion); err != nil {
		t.Fatal(err)
	}
	var broken atomic.Bool
	broken.Store(true)
	p := pglog.Projection{Name: "p", Async: true,
		Tables: []pglog.ProjectionTable{{Name: "p_seen", Columns: "tenant_id text NOT NULL, seq bigint NOT NULL, PRIMARY KEY (tenant_id, seq)"}},
		Fold: func(ctx context.Context, tx pgx.Tx, tenant string, chs []usync.Change) error {
			if broken.Load() {
				return errors.New("not yet")
			}
			for _, ch := range chs {
				if _, err := tx.Exec(ctx, `INSERT INTO p_seen VALUES ($1, $2)`, tenant, int64(ch.Seq)); err != nil {
					return err
				}
			}
			return nil
		}}
	app := pgtest.NewAppRole(t, admin)
	if err := pglog.SetupProjections(ctx, admin, p); err != nil {
		t.Fatal(err)
	}
	l, err := pglog.Open(ctx, app, p)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for seq := uint64(1); seq <= 5; seq++ {
		tx := crdt.Tx{Site: crdt.SiteID{1}, Seq: seq, Time: crdt.Timestamp(seq), Ops: []crdt.Op{{Type: crdt.OpSet, Kind: crdt.KindRegister, Collection: "c", Row: "r", Field: "f", CL: 1, Value: []byte(`1`)}}}
		if _, err := l.Append(ctx, "t1", []crdt.Tx{tx}); err != nil {
			t.Fatal(err)
		}
	}
	future := time.Now().Add(time.Hour)
	if n, err := l.Retain(ctx, "t1", future); err != nil || n != 0 {
		t.Fatalf("retained %d (%v) while the projection had folded nothing", n, err)
	}
	broken.Store(false)
	l.Append(ctx, "t1", nil) // a kick
	deadline := time.Now().Add(20 * time.Second)
	for {
		cp, _ := l.Checkpoint(ctx, "t1", "p")
		if cp == 5 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("checkpoint %d", cp)
		}
		time.Sleep(50 * time.Millisecond) // the worker backs off after failures
	}
	if n, err := l.Retain(ctx, "t1", future); err != nil || n != 5 {
		t.Fatalf("retained %d (%v) after the fold, want 5", n, err)
	}
	if start, _ := l.LogStart(ctx, "t1"); start != 6 {
		t.Fatalf("log start %d, want 6", start)
	}
}
