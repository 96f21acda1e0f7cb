package cli

import (
	"bytes"
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"

	"github.com/unosync/uno/crdt"
	"github.com/unosync/uno/server/sqlitelog"
	usync "github.com/unosync/uno/sync"
)

// uno projection works on a data directory's SQLite log with --data:
// setup creates the tables, list names the projections, rebuild replays
// one; a log is chosen by exactly one flag.
func TestProjection_SQLiteData(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	p := sqlitelog.Projection{Name: "seen", Async: true,
		Tables: []sqlitelog.Table{{Name: "seen", Columns: "tenant TEXT NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (tenant, seq)"}},
		Fold: func(ctx context.Context, tx *sql.Tx, tenant string, chs []usync.Change) error {
			for _, ch := range chs {
				if _, err := tx.ExecContext(ctx, `INSERT INTO seen VALUES (?, ?)`, tenant, int64(ch.Seq)); err != nil {
					return err
				}
			}
			return nil
		}}
	app := Options{SQLiteProjections: []sqlitelog.Projection{p}}
	run := func(args ...string) (string, error) {
		root := rootCmd(app)
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetErr(&out)
		root.SetArgs(args)
		err := root.ExecuteContext(ctx)
		return out.String(), err
	}
	if _, err := run("projection", "list"); err == nil || !strings.Contains(err.Error(), "--data") {
		t.Fatalf("projection list without a log: %v", err)
	}
	if _, err := run("projection", "list", "--data", dir, "--postgres", "postgres://x"); err == nil {
		t.Fatal("projection list with both --data and --postgres: accepted")
	}
	if _, err := run("projection", "rebuild", "seen", "--data", dir); err == nil || !strings.Contains(err.Error(), "no SQLite log") {
		t.Fatalf("rebuild on an empty directory: %v", err)
	}
	if out, err := run("projection", "setup", "--data", dir); err != nil || !strings.Contains(out, "1 projection(s) set up") {
		t.Fatalf("setup: %q, %v", out, err)
	}
	if out, err := run("projection", "list", "--data", dir); err != nil || !strings.Contains(out, "seen\tasync") {
		t.Fatalf("list: %q, %v", out, err)
	}
	// Entries appended with no worker running: the rebuild folds them.
	path := filepath.Join(dir, "log.db")
	l, err := sqlitelog.Open(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for seq := uint64(1); seq <= 3; seq++ {
		tx := crdt.Tx{Site: crdt.SiteID{1}, Seq: seq, Time: crdt.Timestamp(seq), Ops: []crdt.Op{{Type: crdt.OpSet, Kind: crdt.KindRegister,
			Collection: "c", Row: "r", Field: "f", CL: 1, Value: []byte(`1`)}}}
		if _, err := l.Append(ctx, "t1", []crdt.Tx{tx}); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := run("projection", "rebuild", "seen", "--data", dir); err != nil || !strings.Contains(out, "rebuilt and swapped in") {
		t.Fatalf("rebuild: %q, %v", out, err)
	}
	var n int
	if err := l.DB().QueryRow(`SELECT count(*) FROM seen`).Scan(&n); err != nil || n != 3 {
		t.Fatalf("after the rebuild, seen holds %d rows (%v), want 3", n, err)
	}
	l.Close()
	if _, err := run("projection", "rebuild", "nope", "--data", dir); err == nil || !strings.Contains(err.Error(), "it has: rows, seen") {
		t.Fatalf("rebuild of an unknown projection: %v", err)
	}
	if _, err := run("projection", "rebuild", "rows", "--data", dir); err == nil || !strings.Contains(err.Error(), "--postgres") {
		t.Fatalf("rebuild rows on SQLite: %v", err)
	}
}
