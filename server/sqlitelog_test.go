package server_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/unosync/uno/crdt"
	"github.com/unosync/uno/server"
	"github.com/unosync/uno/server/logtest"
)

func openLog(t *testing.T) *server.SQLiteLog {
	t.Helper()
	l, err := server.OpenSQLiteLog(context.Background(), filepath.Join(t.TempDir(), "log.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func TestSQLiteLog(t *testing.T) {
	logtest.Run(t, func(t *testing.T) server.Log { return openLog(t) })
}

// The rows read model is the log's merged state: its hash equals that of a
// replica that applied every entry.
func TestSQLiteLog_RowsReadModel(t *testing.T) {
	ctx := context.Background()
	l := openLog(t)
	var replica crdt.State
	for i, s := range []crdt.SiteID{{1}, {2}} {
		var seq uint64
		for n := range 5 {
			seq++
			b := crdt.NewBuilder(s, seq, crdt.MakeTimestamp(int64(1_700_000_000_000+10*n+i), 0), func(k crdt.RowKey) (*crdt.Row, error) { return replica.Row(k), nil })
			k := crdt.RowKey{Collection: "todos", Row: "shared"}
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
	if other, _ := l.RowsHash(ctx, "t2"); other == got {
		t.Fatal("another tenant's read model has the same hash")
	}
}
