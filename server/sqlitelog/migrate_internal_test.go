package sqlitelog

import (
	"context"
	"path/filepath"
	"testing"
)

// Every migration goes down and up again: the schema goes all the way
// down to no table and back up, and the newest step down and up once
// more with data in its table.
func TestMigrate_DownAndUp(t *testing.T) {
	ctx := context.Background()
	db, err := openDB(ctx, filepath.Join(t.TempDir(), "log.db"), "immediate")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tables := func() int {
		t.Helper()
		var n int
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema WHERE type = 'table'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	top := tables()
	if _, err := db.ExecContext(ctx, `INSERT INTO site_runs (tenant, site, first_seq, epoch) VALUES ('t1', x'01', 1, -1)`); err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct{ to, tables int }{{SchemaVersion - 1, top - 1}, {SchemaVersion, top}, {0, 0}, {SchemaVersion, top}} {
		if err := migrate(ctx, db, step.to); err != nil {
			t.Fatalf("migrate to %d: %v", step.to, err)
		}
		if n := tables(); n != step.tables {
			t.Fatalf("at version %d: %d tables, want %d", step.to, n, step.tables)
		}
	}
}
