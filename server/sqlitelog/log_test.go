package sqlitelog_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/unosync/uno/crdt"
	"github.com/unosync/uno/server"
	"github.com/unosync/uno/server/logtest"
	"github.com/unosync/uno/server/sqlitelog"
)

func openLog(t *testing.T) *sqlitelog.Log {
	t.Helper()
	l, err := sqlitelog.Open(context.Background(), filepath.Join(t.TempDir(), "log.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func TestSQLiteLog(t *testing.T) {
	logtest.Run(t, func(t *testing.T) server.Log { return openLog(t) })
}

// A log file written before rows kept JSON documents gets them when it is
// opened.
func TestSQLiteLog_UpgradesRowDocs(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "old.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	var st crdt.State
	b := crdt.NewBuilder(crdt.SiteID{1}, 1, crdt.MakeTimestamp(1_700_000_000_000, 0), func(k crdt.RowKey) (*crdt.Row, error) { return st.Row(k), nil })
	k := crdt.RowKey{Collection: "todos", Row: "a"}
	if err := b.Set(k, "title", crdt.KindRegister, []byte(`"hi"`)); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Apply(b.Tx()); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{
		`CREATE TABLE rows (tenant TEXT NOT NULL, coll TEXT NOT NULL, id TEXT NOT NULL, seq INTEGER NOT NULL, state BLOB NOT NULL, PRIMARY KEY (tenant, coll, id)) WITHOUT ROWID`,
	} {
		if _, err := db.Exec(s); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Exec(`INSERT INTO rows VALUES ('t1', 'todos', 'a', 1, ?)`, crdt.EncodeRow(st.Row(k))); err != nil {
		t.Fatal(err)
	}
	db.Close()
	l, err := sqlitelog.Open(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	rows, err := l.QueryRows(ctx, "t1", server.RowQuery{Collection: "todos", Where: []server.FieldValue{{Field: "title", Value: []byte(`"hi"`)}}, Limit: 10})
	if err != nil || len(rows) != 1 || string(rows[0].Doc) != `{"title":"hi"}` {
		t.Fatalf("after the upgrade: %+v, %v", rows, err)
	}
}
