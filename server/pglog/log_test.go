package pglog_test

import (
	"context"
	"os"
	"testing"

	"github.com/unosync/uno/crdt"
	"github.com/unosync/uno/internal/pgtest"
	"github.com/unosync/uno/server"
	"github.com/unosync/uno/server/logtest"
	"github.com/unosync/uno/server/pglog"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// openPG migrates a fresh database as its owner and opens the log as an
// application role under row-level security, as production should.
func openPG(t testing.TB) *pglog.Log {
	t.Helper()
	admin := pgtest.NewDatabase(t)
	if err := pglog.Migrate(context.Background(), admin, pglog.SchemaVersion); err != nil {
		t.Fatal(err)
	}
	l, err := pglog.Open(context.Background(), pgtest.NewAppRole(t, admin))
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

// The Postgres read model pages rows in byte order, per tenant.
func TestPGLog_RowPages(t *testing.T) {
	ctx := context.Background()
	l := openPG(t)
	for i, id := range []string{"r1", "r0"} {
		tx := crdt.Tx{Site: crdt.SiteID{7}, Seq: uint64(i + 1), Time: crdt.Timestamp(i + 1), Ops: []crdt.Op{
			{Type: crdt.OpSet, Kind: crdt.KindRegister, Collection: "todos", Row: id, Field: "f", CL: 1, Value: []byte(`1`)}}}
		if _, err := l.Append(ctx, "t1", []crdt.Tx{tx}); err != nil {
			t.Fatal(err)
		}
	}
	rows, more, err := l.SnapshotRows(ctx, "t1", crdt.RowKey{}, 1, 0)
	if err != nil || len(rows) != 1 || rows[0].Row != "r0" || !more {
		t.Fatalf("first snapshot row: %+v, %v", rows, err)
	}
	rest, more, err := l.SnapshotRows(ctx, "t1", crdt.RowKey{Collection: rows[0].Collection, Row: rows[0].Row}, 10, 0)
	if err != nil || len(rest) != 1 || rest[0].Row != "r1" || more {
		t.Fatalf("next snapshot rows: %+v, %v", rest, err)
	}
	page, err := l.QueryRows(ctx, "t1", server.RowQuery{Collection: "todos", After: &server.QueryCursor{ID: "r0"}, Limit: 10})
	if err != nil || len(page) != 1 || page[0].ID != "r1" {
		t.Fatalf("QueryRows after r0: %+v, %v", page, err)
	}
	if other, err := l.QueryRows(ctx, "t2", server.RowQuery{Collection: "todos", Limit: 10}); err != nil || len(other) != 0 {
		t.Fatalf("another tenant's page: %+v, %v", other, err)
	}
}

// RowStates returns the states of the keys asked for, in their order, with
// no state for rows never written and nothing of another tenant.
func TestPGLog_RowStates(t *testing.T) {
	ctx := context.Background()
	l := openPG(t)
	for i, tenant := range []string{"t1", "t2"} {
		tx := crdt.Tx{Site: crdt.SiteID{byte(i + 1)}, Seq: 1, Time: 1, Ops: []crdt.Op{
			{Type: crdt.OpSet, Kind: crdt.KindRegister, Collection: "c", Row: "a", Field: "f", CL: 1, Value: []byte(`1`)},
			{Type: crdt.OpSet, Kind: crdt.KindRegister, Collection: "c", Row: "only-" + tenant, Field: "f", CL: 1, Value: []byte(`2`)}}}
		if _, err := l.Append(ctx, tenant, []crdt.Tx{tx}); err != nil {
			t.Fatal(err)
		}
	}
	keys := []crdt.RowKey{{Collection: "c", Row: "only-t2"}, {Collection: "c", Row: "a"}, {Collection: "d", Row: "a"}, {Collection: "c", Row: "only-t1"}}
	rs, err := l.RowStates(ctx, "t1", keys)
	if err != nil || len(rs) != 4 {
		t.Fatalf("RowStates: %v, %v", rs, err)
	}
	for i, want := range []bool{false, true, false, true} {
		if rs[i].Collection != keys[i].Collection || rs[i].Row != keys[i].Row || (rs[i].State != nil) != want {
			t.Errorf("key %d %v: got %s/%s with state %v", i, keys[i], rs[i].Collection, rs[i].Row, rs[i].State != nil)
		}
	}
}

// The entries a node appends or reads are kept encoded: a fan-out
// encodes them once.
func TestPGLog_HoldsNewestEncoded(t *testing.T) {
	ctx := context.Background()
	l := openPG(t)
	for seq := uint64(1); seq <= 3; seq++ {
		tx := crdt.Tx{Site: crdt.SiteID{1}, Seq: seq, Time: crdt.Timestamp(seq), Ops: []crdt.Op{
			{Type: crdt.OpSet, Kind: crdt.KindRegister, Collection: "c", Row: "r", Field: "f", CL: 1, Value: []byte(`1`)}}}
		if _, err := l.Append(ctx, "t1", []crdt.Tx{tx}); err != nil {
			t.Fatal(err)
		}
		chs, err := l.Read(ctx, "t1", seq-1, 10, 0)
		if err != nil || len(chs) != 1 {
			t.Fatalf("Read = %v, %v", chs, err)
		}
		if encs, ok := l.Encoded("t1", chs); !ok || string(encs[0]) != string(crdt.EncodeTx(&tx)) {
			t.Fatalf("entry %d: not held encoded (%v)", seq, ok)
		}
	}
}

func BenchmarkPGLog_AppendDocChange100KB(b *testing.B) {
	logtest.BenchmarkAppendDocChange(b, openPG(b), 100<<10)
}
