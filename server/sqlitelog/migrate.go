package sqlitelog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"

	"github.com/unosync/uno/crdt"
	"github.com/unosync/uno/server/internal/rowmodel"
)

// ErrSchemaVersion reports a log file written by a newer uno.
var ErrSchemaVersion = errors.New("sqlitelog: schema version")

// migration is one versioned step of the log's schema: up moves from the
// previous version to this one, down back. Open runs the ups it needs;
// the version is SQLite's user_version, set in the step's transaction.
type migration struct {
	name     string
	up, down func(ctx context.Context, tx *sql.Tx) error
}

func stmts(qs ...string) func(context.Context, *sql.Tx) error {
	return func(ctx context.Context, tx *sql.Tx) error {
		for _, q := range qs {
			if _, err := tx.ExecContext(ctx, q); err != nil {
				return fmt.Errorf("%.60s: %w", q, err)
			}
		}
		return nil
	}
}

var migrations = []migration{
	{
		name: "events, heads, sites and the rows read model",
		// IF NOT EXISTS: logs written before versions were kept have
		// these tables at user_version 0.
		up: stmts(`CREATE TABLE IF NOT EXISTS events (
			tenant   TEXT    NOT NULL,
			seq      INTEGER NOT NULL,
			site     BLOB    NOT NULL,
			site_seq INTEGER NOT NULL,
			tx       BLOB    NOT NULL,
			PRIMARY KEY (tenant, seq)
		) WITHOUT ROWID`,
			`CREATE UNIQUE INDEX IF NOT EXISTS events_site ON events (tenant, site, site_seq)`,
			`CREATE TABLE IF NOT EXISTS heads (
			tenant TEXT    PRIMARY KEY,
			seq    INTEGER NOT NULL
		) WITHOUT ROWID`,
			`CREATE TABLE IF NOT EXISTS sites (
			tenant TEXT    NOT NULL,
			site   BLOB    NOT NULL,
			seq    INTEGER NOT NULL,
			PRIMARY KEY (tenant, site)
		) WITHOUT ROWID`,
			`CREATE TABLE IF NOT EXISTS rows (
			tenant TEXT    NOT NULL,
			coll   TEXT    NOT NULL,
			id     TEXT    NOT NULL,
			seq    INTEGER NOT NULL,
			state  BLOB    NOT NULL,
			PRIMARY KEY (tenant, coll, id)
		) WITHOUT ROWID`),
		down: stmts(`DROP TABLE rows`, `DROP TABLE sites`, `DROP TABLE heads`, `DROP TABLE events`),
	},
	{
		name: "rows keep their values as a JSON document",
		up:   addRowDocs,
		down: stmts(`ALTER TABLE rows DROP COLUMN doc`),
	},
	{
		name: "tenant registry; entries remember when they were appended",
		up: stmts(`CREATE TABLE tenants (
			tenant         TEXT    PRIMARY KEY,
			status         TEXT    NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
			ops_per_sec    INTEGER NOT NULL DEFAULT 0 CHECK (ops_per_sec >= 0),
			max_rows       INTEGER NOT NULL DEFAULT 0 CHECK (max_rows >= 0),
			max_bytes      INTEGER NOT NULL DEFAULT 0 CHECK (max_bytes >= 0),
			retention_days INTEGER NOT NULL DEFAULT 0 CHECK (retention_days >= 0),
			created_at     INTEGER NOT NULL
		) WITHOUT ROWID`,
			// Unix milliseconds; 0 for entries appended before, which
			// the next step dates.
			`ALTER TABLE events ADD COLUMN appended_at INTEGER NOT NULL DEFAULT 0`),
		down: stmts(`ALTER TABLE events DROP COLUMN appended_at`, `DROP TABLE tenants`),
	},
	{
		// Retention deletes entries appended before a time; an entry's
		// age before version 3 is unknown, so it counts from the
		// migration: such entries stay until a retention pass after it
		// finds them older. (Nothing restores the zeros going down:
		// version 3 treats both alike.)
		name: "entries appended before version 3 count as appended at the migration",
		up:   stmts(`UPDATE events SET appended_at = CAST(unixepoch('subsec') * 1000 AS INTEGER) WHERE appended_at = 0`),
		down: stmts(),
	},
	{
		name: "async projections' checkpoints",
		up: stmts(`CREATE TABLE checkpoints (
			tenant     TEXT    NOT NULL,
			projection TEXT    NOT NULL,
			seq        INTEGER NOT NULL,
			PRIMARY KEY (tenant, projection)
		) WITHOUT ROWID`),
		down: stmts(`DROP TABLE checkpoints`),
	},
	{
		// compact_floor: entries below it may have lost their doc
		// changes (readers behind it bootstrap); compacted: entries
		// below it are rewritten (where an interrupted run resumes).
		// Rows with doc fields render them as their documents' JSON
		// from this version: their docs are rendered again.
		name: "log compaction: each tenant's floor and progress; doc fields rendered as JSON",
		up: func(ctx context.Context, tx *sql.Tx) error {
			err := stmts(`ALTER TABLE heads ADD COLUMN compact_floor INTEGER NOT NULL DEFAULT 1`,
				`ALTER TABLE heads ADD COLUMN compacted INTEGER NOT NULL DEFAULT 1`)(ctx, tx)
			if err != nil {
				return err
			}
			return fillRowDocs(ctx, tx, true)
		},
		down: stmts(`ALTER TABLE heads DROP COLUMN compacted`, `ALTER TABLE heads DROP COLUMN compact_floor`),
	},
	{
		// trace: the W3C traceparent of the append's span, when it was
		// traced (NULL otherwise): async projections link to it.
		name: "entries keep the trace context of their append",
		up:   stmts(`ALTER TABLE events ADD COLUMN trace TEXT`),
		down: stmts(`ALTER TABLE events DROP COLUMN trace`),
	},
	{
		// An append reads its sites' marks and moves them in the same
		// transaction, under SQLite's one writer, so an entry is never
		// there twice; the unique index only cost every append an insert
		// into a B-tree ordered by site (a page written per site in each
		// group commit: ~17% of an append's CPU with 50 writers).
		name: "no unique index on events (tenant, site, site_seq)",
		up:   stmts(`DROP INDEX IF EXISTS events_site`),
		down: stmts(`CREATE UNIQUE INDEX events_site ON events (tenant, site, site_seq)`),
	},
	{
		// Each site's runs (server.SiteRunner): from which of its
		// sequence numbers on which epoch of the replica's store wrote
		// its transactions. epoch is a uint64 kept as the bits of an
		// int64.
		name: "sites' runs: the epochs that wrote their transactions",
		up: stmts(`CREATE TABLE site_runs (
			tenant    TEXT    NOT NULL,
			site      BLOB    NOT NULL,
			first_seq INTEGER NOT NULL,
			epoch     INTEGER NOT NULL,
			PRIMARY KEY (tenant, site, first_seq)
		) WITHOUT ROWID`),
		down: stmts(`DROP TABLE site_runs`),
	},
}

// SchemaVersion is the schema version this uno writes.
var SchemaVersion = len(migrations)

// migrate moves the schema to version target, one step per transaction.
func migrate(ctx context.Context, db *sql.DB, target int) error {
	for {
		var v int
		if err := db.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&v); err != nil {
			return fmt.Errorf("read schema version: %w", err)
		}
		if v > len(migrations) {
			return fmt.Errorf("%w: the log is at version %d, this uno knows %d: run a newer uno", ErrSchemaVersion, v, len(migrations))
		}
		if v == target {
			return nil
		}
		var step func(context.Context, *sql.Tx) error
		next := v + 1
		if target > v {
			step = migrations[v].up
		} else {
			step, next = migrations[v-1].down, v-1
		}
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if err := step(ctx, tx); err != nil {
			tx.Rollback()
			return fmt.Errorf("migrate to version %d: %w", next, err)
		}
		// PRAGMA takes no parameters; next is an int.
		if _, err := tx.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, next)); err != nil {
			tx.Rollback()
			return err
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("migrate to version %d: %w", next, err)
		}
	}
}

// addRowDocs adds the doc column to the rows read model and fills it from
// the states (logs written before documents were kept).
func addRowDocs(ctx context.Context, tx *sql.Tx) error {
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM pragma_table_info('rows') WHERE name = 'doc'`).Scan(&n); err != nil || n > 0 {
		return err // a log from before versions that has it already
	}
	if _, err := tx.ExecContext(ctx, `ALTER TABLE rows ADD COLUMN doc TEXT`); err != nil {
		return err
	}
	return fillRowDocs(ctx, tx, false)
}

// fillRowDocs renders the doc column of every row from its state, or
// with docFields only of the rows with a doc field.
func fillRowDocs(ctx context.Context, tx *sql.Tx, docFields bool) error {
	rows, err := tx.QueryContext(ctx, `SELECT tenant, coll, id, state FROM rows`)
	if err != nil {
		return err
	}
	type docRow struct{ tenant, coll, id, doc string }
	var docs []docRow
	for rows.Next() {
		var d docRow
		var state []byte
		if err := rows.Scan(&d.tenant, &d.coll, &d.id, &state); err != nil {
			rows.Close()
			return err
		}
		r, err := crdt.DecodeRow(state)
		if err != nil {
			rows.Close()
			return fmt.Errorf("row %s/%s: %w", d.coll, d.id, err)
		}
		if docFields && !slices.ContainsFunc(r.Fields, func(f crdt.Field) bool { return f.Kind == crdt.KindDoc }) {
			continue
		}
		if doc := rowmodel.Doc(r); doc != nil {
			d.doc = string(doc)
			docs = append(docs, d)
		}
	}
	rows.Close()
	for _, d := range docs {
		if _, err := tx.ExecContext(ctx, `UPDATE rows SET doc = ? WHERE tenant = ? AND coll = ? AND id = ?`, d.doc, d.tenant, d.coll, d.id); err != nil {
			return err
		}
	}
	return nil
}
