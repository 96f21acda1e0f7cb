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

// An async projection folds, when its log opens, the entries appended
// while it did not run — as the server's role, which may not list the
// registry (row-level security on uno_tenants), without a new append to
// wake it.
func TestPGProjector_FoldsWhatArrivedWhileDown(t *testing.T) {
	ctx := context.Background()
	admin := pgtest.NewDatabase(t)
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
	p := pglog.Projection{Name: "p", Async: true,
		Tables: []pglog.ProjectionTable{{Name: "p_seen", Columns: "tenant_id text NOT NULL, seq bigint NOT NULL, PRIMARY KEY (tenant_id, seq)"}},
		Fold: func(ctx context.Context, tx pgx.Tx, tenant string, chs []usync.Change) error {
			for _, ch := range chs {
				if _, err := tx.Exec(ctx, `INSERT INTO p_seen VALUES ($1, $2)`, tenant, int64(ch.Seq)); err != nil {
					return err
				}
			}
			return nil
		}}
	if err := pglog.SetupProjections(ctx, admin, p); err != nil {
		t.Fatal(err)
	}
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
