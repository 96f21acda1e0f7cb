package store

import (
	"context"
	"database/sql"
	"fmt"
)

// migration is one step of the internal schema, with the statements that
// apply it and the ones that undo it. Steps run in one SQL transaction each
// and record their version in PRAGMA user_version.
type migration struct {
	up, down []string
	// downGo, if set, runs before down, in the same transaction: for data
	// that SQL alone cannot move back.
	downGo func(context.Context, *sql.Tx) error
}

// migrations lists every step; version n is migrations[n-1]. Append only.
var migrations = []migration{
	{ // 1: the replica, deleted rows' states, outbox, per-site high-water marks
		// and the list of collection tables (each holds its alive rows' states).
		up: []string{
			`CREATE TABLE _uno_replica (
				id    INTEGER PRIMARY KEY CHECK (id = 1),
				site  BLOB    NOT NULL,
				seq   INTEGER NOT NULL,
				clock INTEGER NOT NULL
			)`,
			`CREATE TABLE _uno_deleted (
				coll  TEXT NOT NULL,
				id    TEXT NOT NULL,
				state BLOB NOT NULL,
				PRIMARY KEY (coll, id)
			) WITHOUT ROWID`,
			`CREATE TABLE _uno_outbox (
				seq INTEGER PRIMARY KEY,
				tx  BLOB NOT NULL
			)`,
			`CREATE TABLE _uno_sites (
				site BLOB    PRIMARY KEY,
				seq  INTEGER NOT NULL
			) WITHOUT ROWID`,
			`CREATE TABLE _uno_collections (
				name TEXT PRIMARY KEY
			) WITHOUT ROWID`,
		},
		down: []string{
			`DROP TABLE _uno_collections`,
			`DROP TABLE _uno_sites`,
			`DROP TABLE _uno_outbox`,
			`DROP TABLE _uno_deleted`,
			`DROP TABLE _uno_replica`,
		},
	},
	{ // 2: the conflict log.
		up: []string{
			`CREATE TABLE _uno_conflicts (
				id          INTEGER PRIMARY KEY AUTOINCREMENT,
				coll        TEXT    NOT NULL,
				row         TEXT    NOT NULL,
				field       TEXT    NOT NULL,
				mode        INTEGER NOT NULL,
				winner      BLOB,
				winner_site BLOB    NOT NULL,
				winner_time INTEGER NOT NULL,
				loser       BLOB,
				loser_site  BLOB    NOT NULL,
				loser_time  INTEGER NOT NULL
			)`,
		},
		down: []string{
			`DROP TABLE _uno_conflicts`,
		},
	},
	{ // 3: the sync cursor: the last tenant sequence number applied from a server.
		up: []string{
			`ALTER TABLE _uno_replica ADD COLUMN cursor INTEGER NOT NULL DEFAULT 0`,
		},
		down: []string{
			`ALTER TABLE _uno_replica DROP COLUMN cursor`,
		},
	},
	{ // 4: the rejection feed: local transactions a server refused.
		up: []string{
			`CREATE TABLE _uno_rejections (
				id     INTEGER PRIMARY KEY AUTOINCREMENT,
				seq    INTEGER NOT NULL,
				code   INTEGER NOT NULL,
				reason TEXT    NOT NULL
			)`,
		},
		down: []string{
			`DROP TABLE _uno_rejections`,
		},
	},
	{ // 5: the subscriptions the replica holds (opaque to the store).
		up: []string{
			`ALTER TABLE _uno_replica ADD COLUMN subscriptions BLOB`,
		},
		down: []string{
			`ALTER TABLE _uno_replica DROP COLUMN subscriptions`,
		},
	},
	chunksTable, // 6: documents' chunks, apart from their rows' states (chunks.go).
	{ // 7: the sync cursor and the clock a remote batch leaves, in two
		// rows of _uno_sites (sites x'' and x'00': a real site's ID has
		// 16 bytes), beside the sites' marks the batch writes too: one
		// page less per remote batch than in _uno_replica. The cursor
		// column there is left unused; the clock column still takes what
		// acks and Observe raise it to, and the replica's clock is the
		// greatest of them.
		up: []string{
			`INSERT INTO _uno_sites (site, seq) SELECT x'', cursor FROM _uno_replica WHERE id = 1`,
			`INSERT INTO _uno_sites (site, seq) SELECT x'00', clock FROM _uno_replica WHERE id = 1`,
		},
		down: []string{
			`UPDATE _uno_replica SET
				cursor = coalesce((SELECT seq FROM _uno_sites WHERE site = x''), cursor),
				clock = max(clock, coalesce((SELECT seq FROM _uno_sites WHERE site = x'00'), 0))
			WHERE id = 1`,
			`DELETE FROM _uno_sites WHERE length(site) <= 1`,
		},
	},
	{ // 8: each outbox entry's epoch (the store opening that wrote it,
		// 0 before this version) and its increments' deltas (NULL when
		// it has none): what Fork needs to move writes to a new site.
		up: []string{
			`ALTER TABLE _uno_outbox ADD COLUMN epoch INTEGER NOT NULL DEFAULT 0`,
			`ALTER TABLE _uno_outbox ADD COLUMN deltas BLOB`,
		},
		down: []string{
			`ALTER TABLE _uno_outbox DROP COLUMN deltas`,
			`ALTER TABLE _uno_outbox DROP COLUMN epoch`,
		},
	},
}

// SchemaVersion is the internal schema version this code writes.
var SchemaVersion = len(migrations)

// userVersion reads the applied migration version.
func userVersion(ctx context.Context, db *sql.DB) (int, error) {
	var v int
	if err := db.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&v); err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return v, nil
}

// migrate moves the internal schema to version target, up or down, one step
// per transaction. A database newer than this code is refused.
func migrate(ctx context.Context, db *sql.DB, target int) error {
	if target < 0 || target > len(migrations) {
		return fmt.Errorf("%w: no version %d (known: 0..%d)", ErrMigration, target, len(migrations))
	}
	cur, err := userVersion(ctx, db)
	if err != nil {
		return err
	}
	if cur > len(migrations) {
		return fmt.Errorf("%w: database is at version %d, newer than this uno (%d): upgrade uno", ErrMigration, cur, len(migrations))
	}
	for cur != target {
		var next int
		var stmts []string
		var fn func(context.Context, *sql.Tx) error
		if target > cur {
			next, stmts = cur+1, migrations[cur].up
		} else {
			next, stmts, fn = cur-1, migrations[cur-1].down, migrations[cur-1].downGo
		}
		if err := migrateStep(ctx, db, fn, stmts, next); err != nil {
			return fmt.Errorf("%w: %d to %d: %w", ErrMigration, cur, next, err)
		}
		cur = next
	}
	return nil
}

func migrateStep(ctx context.Context, db *sql.DB, fn func(context.Context, *sql.Tx) error, stmts []string, version int) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if fn != nil {
		if err := fn(ctx, tx); err != nil {
			return err
		}
	}
	for _, s := range stmts {
		if _, err := tx.ExecContext(ctx, s); err != nil {
			return err
		}
	}
	// PRAGMA takes no parameters; version is an int we computed.
	if _, err := tx.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, version)); err != nil {
		return err
	}
	return tx.Commit()
}
