//go:build cgo && (linux || darwin) && (amd64 || arm64)

package sqlitelog_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/unosync/uno/crdt"
	"github.com/unosync/uno/server"
	"github.com/unosync/uno/server/sqlitelog"
)

// Compaction keeps every transaction and its other ops: only the doc
// changes go.
func TestSQLiteLog_CompactKeepsOtherOps(t *testing.T) {
	ctx := context.Background()
	l := openLog(t)
	site := crdt.SiteID{1}
	d, err := crdt.OpenDocument(&crdt.DocState{}, site)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Splice(crdt.Path{"text"}, 0, 0, "hello"); err != nil {
		t.Fatal(err)
	}
	ch, err := d.Commit(crdt.MakeTimestamp(1_700_000_000_000, 0))
	if err != nil {
		t.Fatal(err)
	}
	tx := crdt.Tx{Site: site, Seq: 1, Time: crdt.MakeTimestamp(1_700_000_000_000, 0), Ops: []crdt.Op{
		{Type: crdt.OpRevive, Collection: "notes", Row: "n", CL: 1},
		{Type: crdt.OpChange, Kind: crdt.KindDoc, Collection: "notes", Row: "n", Field: "body", CL: 1, Value: ch},
		{Type: crdt.OpSet, Kind: crdt.KindRegister, Collection: "notes", Row: "n", Field: "title", CL: 1, Value: []byte(`"t"`)},
	}}
	if _, err := l.Append(ctx, "t1", []crdt.Tx{tx}); err != nil {
		t.Fatal(err)
	}
	if res, err := l.Compact(ctx, "t1", 2); err != nil || res.Rewritten != 1 {
		t.Fatalf("Compact = %+v, %v", res, err)
	}
	var b []byte
	if err := l.DB().QueryRowContext(ctx, `SELECT tx FROM events WHERE tenant = 't1' AND seq = 1`).Scan(&b); err != nil {
		t.Fatal(err)
	}
	got, err := crdt.DecodeTx(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.Site != site || got.Seq != 1 || len(got.Ops) != 2 || got.Ops[0].Type != crdt.OpRevive || got.Ops[1].Type != crdt.OpSet {
		t.Fatalf("compacted entry %+v, want the revive and the set of tx 1", got)
	}
}

// A log from before doc fields rendered as JSON renders them when it is
// opened.
func TestSQLiteLog_UpgradeRendersDocFields(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "old.db")
	l, err := sqlitelog.Open(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	site := crdt.SiteID{1}
	d, err := crdt.OpenDocument(&crdt.DocState{}, site)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Splice(crdt.Path{"text"}, 0, 0, "hi"); err != nil {
		t.Fatal(err)
	}
	ch, err := d.Commit(crdt.MakeTimestamp(1_700_000_000_000, 0))
	if err != nil {
		t.Fatal(err)
	}
	tx := crdt.Tx{Site: site, Seq: 1, Time: crdt.MakeTimestamp(1_700_000_000_000, 0), Ops: []crdt.Op{
		{Type: crdt.OpRevive, Collection: "notes", Row: "n", CL: 1},
		{Type: crdt.OpChange, Kind: crdt.KindDoc, Collection: "notes", Row: "n", Field: "body", CL: 1, Value: ch},
	}}
	if _, err := l.Append(ctx, "t1", []crdt.Tx{tx}); err != nil {
		t.Fatal(err)
	}
	// What version 5 rendered: the doc field left out.
	l = reopenAfter(t, l, path, `UPDATE rows SET doc = '{}'`, `DROP TABLE site_runs`, `ALTER TABLE events DROP COLUMN trace`, `ALTER TABLE heads DROP COLUMN compacted`,
		`ALTER TABLE heads DROP COLUMN compact_floor`, `PRAGMA user_version = 5`)
	rows, err := l.QueryRows(ctx, "t1", server.RowQuery{Collection: "notes", Limit: 10})
	if err != nil || len(rows) != 1 || string(rows[0].Doc) != `{"body":{"text":"hi"}}` {
		t.Fatalf("after the upgrade: %+v, %v", rows, err)
	}
}
