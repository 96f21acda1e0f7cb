package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// openRaw opens a database file for the migration code, without the store.
func openRaw(t *testing.T) (*sql.DB, string) {
	t.Helper()
	return openRawAt(t, filepath.Join(t.TempDir(), "uno.db"))
}

// openRawAt is openRaw on the database at path.
func openRawAt(t *testing.T, path string) (*sql.DB, string) {
	t.Helper()
	o, err := Options{}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	db, err := openDB(path, &o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, path
}

// unoTables lists uno's internal tables in db.
func unoTables(t *testing.T, db *sql.DB) []string {
	t.Helper()
	rows, err := db.QueryContext(t.Context(), `SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE '\_uno\_%' ESCAPE '\' ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		out = append(out, n)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// tablesAt returns the internal tables at schema version v, read off the
// migrations' own CREATE and DROP statements.
func tablesAt(v int) []string {
	re := regexp.MustCompile(`(?is)^\s*(CREATE|DROP)\s+TABLE\s+(?:IF\s+(?:NOT\s+)?EXISTS\s+)?"?(_uno_\w+)`)
	have := map[string]bool{}
	for _, m := range migrations[:v] {
		for _, stmt := range m.up {
			if g := re.FindStringSubmatch(stmt); g != nil {
				have[g[2]] = strings.EqualFold(g[1], "CREATE")
			}
		}
	}
	out := []string{}
	for name, ok := range have {
		if ok {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// migrateTo runs migrate, turning a panic into an error so that one
// broken step fails its test instead of the whole package.
func migrateTo(ctx context.Context, db *sql.DB, target int) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("migrate to %d panicked: %v", target, p)
		}
	}()
	return migrate(ctx, db, target)
}

func checkVersion(t *testing.T, db *sql.DB, want int) {
	t.Helper()
	v, err := userVersion(t.Context(), db)
	if err != nil {
		t.Fatal(err)
	}
	if v != want {
		t.Errorf("user_version = %d, want %d", v, want)
	}
	if diff := cmp.Diff(tablesAt(want), unoTables(t, db)); diff != "" {
		t.Errorf("tables at version %d (-want +got):\n%s", want, diff)
	}
}

func TestMigrate_Tables(t *testing.T) {
	// The helper reads the migrations right: every version has tables, and
	// each step's down undoes exactly what its up created.
	if got := tablesAt(0); len(got) != 0 {
		t.Errorf("tables at version 0 = %v", got)
	}
	for v := 1; v <= SchemaVersion; v++ {
		if len(tablesAt(v)) == 0 {
			t.Errorf("no tables at version %d", v)
		}
	}
}

func TestMigrate_UpDownUp(t *testing.T) {
	ctx := t.Context()
	db, path := openRaw(t)
	checkVersion(t, db, 0)
	for _, target := range []int{SchemaVersion, 0, SchemaVersion, SchemaVersion} {
		if err := migrateTo(ctx, db, target); err != nil {
			t.Fatalf("migrate to %d: %v", target, err)
		}
		checkVersion(t, db, target)
	}
	// A store opens on the migrated database and works. (Close first: in
	// the browser a database has one connection at a time.)
	db.Close()
	s, err := OpenSQLite(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if n, err := s.Pending(ctx); err != nil || n != 0 {
		t.Errorf("Pending = %d, %v", n, err)
	}
}

func TestMigrate_EachStep(t *testing.T) {
	ctx := t.Context()
	db, _ := openRaw(t)
	for v := 1; v <= SchemaVersion; v++ {
		t.Run(fmt.Sprint("v", v), func(t *testing.T) {
			for _, target := range []int{v, v - 1, v} {
				if err := migrateTo(ctx, db, target); err != nil {
					t.Fatalf("migrate %d to %d: %v", v-1, target, err)
				}
				checkVersion(t, db, target)
			}
		})
	}
	// And all the way down, one step at a time.
	for v := SchemaVersion - 1; v >= 0; v-- {
		if err := migrateTo(ctx, db, v); err != nil {
			t.Fatalf("migrate down to %d: %v", v, err)
		}
		checkVersion(t, db, v)
	}
}

func TestMigrate_KeepsData(t *testing.T) {
	// Going down and up again above version 1 keeps the data of version 1.
	ctx := t.Context()
	db, _ := openRaw(t)
	if err := migrateTo(ctx, db, SchemaVersion); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO _uno_replica (id, site, seq, clock) VALUES (1, x'01', 7, 9)`); err != nil {
		t.Fatal(err)
	}
	if err := migrateTo(ctx, db, 1); err != nil {
		t.Fatal(err)
	}
	if err := migrateTo(ctx, db, SchemaVersion); err != nil {
		t.Fatal(err)
	}
	var seq int
	if err := db.QueryRowContext(ctx, `SELECT seq FROM _uno_replica`).Scan(&seq); err != nil || seq != 7 {
		t.Errorf("replica seq after down and up = %d, %v; want 7", seq, err)
	}
}

func TestMigrate_NewerDatabase(t *testing.T) {
	ctx := t.Context()
	db, path := openRaw(t)
	if err := migrateTo(ctx, db, SchemaVersion); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, SchemaVersion+1)); err != nil {
		t.Fatal(err)
	}
	for _, target := range []int{SchemaVersion, 0} {
		if err := migrateTo(ctx, db, target); !errors.Is(err, ErrMigration) {
			t.Errorf("migrate to %d on a newer database = %v, want ErrMigration", target, err)
		}
	}
	tables := unoTables(t, db)
	if !slices.Equal(tables, tablesAt(SchemaVersion)) {
		t.Errorf("a refused migration changed the tables: %v", tables)
	}
	db.Close()
	if s, err := OpenSQLite(ctx, path, Options{}); !errors.Is(err, ErrMigration) {
		if err == nil {
			s.Close()
		}
		t.Errorf("OpenSQLite on a newer database = %v, want ErrMigration", err)
	}
}

func TestMigrate_UnknownTarget(t *testing.T) {
	ctx := t.Context()
	db, _ := openRaw(t)
	for _, target := range []int{-1, SchemaVersion + 1, 1000} {
		if err := migrateTo(ctx, db, target); !errors.Is(err, ErrMigration) {
			t.Errorf("migrate to %d = %v, want ErrMigration", target, err)
		}
	}
	checkVersion(t, db, 0)
}

func TestMigrate_FailedStepRollsBack(t *testing.T) {
	ctx := t.Context()
	db, _ := openRaw(t)
	if err := migrateTo(ctx, db, 1); err != nil {
		t.Fatal(err)
	}
	// A table in the way makes step 2 fail half-way: nothing of it stays.
	if _, err := db.ExecContext(ctx, `CREATE TABLE _uno_conflicts (x)`); err != nil {
		t.Fatal(err)
	}
	if err := migrateTo(ctx, db, SchemaVersion); !errors.Is(err, ErrMigration) {
		t.Fatalf("migrate over a conflicting table = %v, want ErrMigration", err)
	}
	v, err := userVersion(ctx, db)
	if err != nil || v != 1 {
		t.Errorf("user_version after a failed step = %d, %v; want 1", v, err)
	}
	if _, err := db.ExecContext(ctx, `DROP TABLE _uno_conflicts`); err != nil {
		t.Fatal(err)
	}
	if err := migrateTo(ctx, db, SchemaVersion); err != nil {
		t.Fatalf("migrate after clearing the way: %v", err)
	}
	checkVersion(t, db, SchemaVersion)
}

// The migration functions take a context; a cancelled one stops them.
func TestMigrate_Cancelled(t *testing.T) {
	db, _ := openRaw(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := migrateTo(ctx, db, SchemaVersion); err == nil {
		t.Error("migrate with a cancelled context succeeded")
	}
	checkVersion(t, db, 0)
}

// Version 7 moves the sync cursor and the batch clock into _uno_sites:
// a store opened on a version-6 database keeps its cursor and clock, and
// going back down puts what the store moved since into _uno_replica.
func TestMigrate_CursorMovesToSites(t *testing.T) {
	ctx := t.Context()
	db, path := openRaw(t)
	if err := migrateTo(ctx, db, 6); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO _uno_replica (id, site, seq, clock, cursor) VALUES (1, randomblob(16), 0, 99, 42)`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	s, err := OpenSQLite(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if c, err := s.Cursor(ctx); err != nil || c != 42 {
		t.Errorf("cursor after the migration %d, %v; want 42", c, err)
	}
	if last := s.clock.Last(); last < 99 {
		t.Errorf("clock after the migration %d, want at least 99", last)
	}
	if _, err := s.ApplyAt(ctx, nil, 50); err != nil {
		t.Fatal(err)
	}
	if c, err := s.Cursor(ctx); err != nil || c != 50 {
		t.Errorf("cursor after a batch %d, %v; want 50", c, err)
	}
	s.Close()

	db, _ = openRawAt(t, path)
	if err := migrateTo(ctx, db, 6); err != nil {
		t.Fatal(err)
	}
	var cursor, clock, reserved int
	if err := db.QueryRowContext(ctx, `SELECT cursor, clock, (SELECT count(*) FROM _uno_sites WHERE length(site) <= 1) FROM _uno_replica`).Scan(&cursor, &clock, &reserved); err != nil {
		t.Fatal(err)
	}
	if cursor != 50 || clock < 99 || reserved != 0 {
		t.Errorf("at version 6 again: cursor %d, clock %d, %d reserved rows; want 50, ≥ 99, 0", cursor, clock, reserved)
	}
}
