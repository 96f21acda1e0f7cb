package server_test

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/unosync/uno/crdt"
	"github.com/unosync/uno/internal/pgtest"
	"github.com/unosync/uno/server"
	"github.com/unosync/uno/server/logtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// openPG migrates a fresh database as its owner and opens the log as an
// application role under row-level security, as production should.
func openPG(t *testing.T) *server.PGLog {
	t.Helper()
	admin := pgtest.NewDatabase(t)
	if err := server.MigratePG(context.Background(), admin, server.PGSchemaVersion); err != nil {
		t.Fatal(err)
	}
	l, err := server.OpenPGLog(context.Background(), pgtest.NewAppRole(t, admin))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// The Postgres log passes the same conformance suite as the SQLite one.
func TestPGLog(t *testing.T) {
	logtest.Run(t, func(t *testing.T) server.Log { return openPG(t) })
}

// The Postgres rows read model is the log's merged state.
func TestPGLog_RowsReadModel(t *testing.T) {
	ctx := context.Background()
	l := openPG(t)
	var replica crdt.State
	for i, s := range []crdt.SiteID{{1}, {2}} {
		var seq uint64
		for n := range 5 {
			seq++
			b := crdt.NewBuilder(s, seq, crdt.MakeTimestamp(int64(1_700_000_000_000+10*n+i), 0), func(k crdt.RowKey) (*crdt.Row, error) { return replica.Row(k), nil })
			k := crdt.RowKey{Collection: "todos", Row: fmt.Sprint("r", n%2)}
			if err := b.Set(k, "title", crdt.KindRegister, []byte(`"v"`)); err != nil {
				t.Fatal(err)
			}
			if err := b.Increment(k, "n", 1); err != nil {
				t.Fatal(err)
			}
			tx := b.Tx()
			if _, err := replica.Apply(tx); err != nil {
				t.Fatal(err)
			}
			if _, err := l.Append(ctx, "t1", []crdt.Tx{*tx}); err != nil {
				t.Fatal(err)
			}
		}
	}
	got, err := l.RowsHash(ctx, "t1")
	if err != nil {
		t.Fatal(err)
	}
	if got != replica.Hash() {
		t.Fatal("rows read model hash differs from the replica's")
	}
	rows, err := l.SnapshotRows(ctx, "t1", crdt.RowKey{}, 1)
	if err != nil || len(rows) != 1 || rows[0].Row != "r0" {
		t.Fatalf("first snapshot row: %+v, %v", rows, err)
	}
	rest, err := l.SnapshotRows(ctx, "t1", crdt.RowKey{Collection: rows[0].Collection, Row: rows[0].Row}, 10)
	if err != nil || len(rest) != 1 || rest[0].Row != "r1" {
		t.Fatalf("next snapshot rows: %+v, %v", rest, err)
	}
	page, err := l.RowsPage(ctx, "t1", "todos", "r0", 10)
	if err != nil || len(page) != 1 || page[0].Row != "r1" {
		t.Fatalf("RowsPage after r0: %+v, %v", page, err)
	}
	if other, err := l.RowsPage(ctx, "t2", "todos", "", 10); err != nil || len(other) != 0 {
		t.Fatalf("another tenant's page: %+v, %v", other, err)
	}
}
