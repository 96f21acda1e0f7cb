package pglog

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/unosync/uno/crdt"
	"github.com/unosync/uno/server/internal/rowmodel"
)

// ErrSchemaVersion reports a Postgres schema this uno cannot use as it is.
var ErrSchemaVersion = errors.New("server: postgres schema version")

// migration is one step of the Postgres schema: SQL, or Go for what SQL
// cannot say, each way.
type migration struct {
	up, down     []string
	upGo, downGo func(ctx context.Context, tx pgx.Tx) error // run after the SQL
}

// tenantTables are the tables holding tenant data: each leads its keys
// with tenant_id and is under row-level security.
var tenantTables = []string{"uno_heads", "uno_events", "uno_sites", "uno_rows", "uno_checkpoints", "uno_site_runs"}

// migrations lists every step; version n is migrations[n-1]. Append only.
var migrations = []migration{
	{ // 1: the log, high-water marks, heads and the rows read model.
		up: []string{
			`CREATE TABLE uno_heads (
				tenant_id text   NOT NULL PRIMARY KEY,
				seq       bigint NOT NULL
			)`,
			`CREATE TABLE uno_events (
				tenant_id text   NOT NULL,
				seq       bigint NOT NULL,
				site      bytea  NOT NULL,
				site_seq  bigint NOT NULL,
				tx        bytea  NOT NULL,
				PRIMARY KEY (tenant_id, seq)
			)`,
			`CREATE UNIQUE INDEX uno_events_site ON uno_events (tenant_id, site, site_seq)`,
			`CREATE TABLE uno_sites (
				tenant_id text   NOT NULL,
				site      bytea  NOT NULL,
				seq       bigint NOT NULL,
				PRIMARY KEY (tenant_id, site)
			)`,
			`CREATE TABLE uno_rows (
				tenant_id text   NOT NULL,
				coll      text   NOT NULL,
				id        text   NOT NULL,
				seq       bigint NOT NULL,
				state     bytea  NOT NULL,
				PRIMARY KEY (tenant_id, coll, id)
			)`,
		},
		down: []string{`DROP TABLE uno_rows`, `DROP TABLE uno_sites`, `DROP TABLE uno_events`, `DROP TABLE uno_heads`},
	},
	{ // 2: row-level security on every tenant table, forced for the owner too.
		up:   rlsUp(tenantTables[:4]...),
		down: rlsDown(tenantTables[:4]...),
	},
	{ // 3: the tenant registry: which tenants exist, their status and quotas.
		up: []string{`CREATE TABLE uno_tenants (
			tenant_id   text        NOT NULL PRIMARY KEY,
			status      text        NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
			ops_per_sec integer     NOT NULL DEFAULT 0 CHECK (ops_per_sec >= 0),
			created_at  timestamptz NOT NULL DEFAULT now()
		)`},
		down: []string{`DROP TABLE uno_tenants`},
	},
	{ // 4: the rows read model as JSON (filled from the states by a Go
		// step), projection checkpoints, and tenant quotas and retention.
		up: append([]string{
			`ALTER TABLE uno_rows ADD COLUMN doc jsonb`,
			// Byte order, as every replica orders keys: the primary key
			// then serves the snapshot's and the query API's orders.
			`ALTER TABLE uno_rows ALTER COLUMN coll TYPE text COLLATE "C", ALTER COLUMN id TYPE text COLLATE "C"`,
			`CREATE TABLE uno_checkpoints (
				tenant_id  text   NOT NULL,
				projection text   NOT NULL,
				seq        bigint NOT NULL,
				PRIMARY KEY (tenant_id, projection)
			)`,
			// When each entry was appended, for retention.
			`ALTER TABLE uno_events ADD COLUMN appended_at timestamptz NOT NULL DEFAULT now()`,
			`ALTER TABLE uno_tenants
				ADD COLUMN max_rows       bigint  NOT NULL DEFAULT 0 CHECK (max_rows >= 0),
				ADD COLUMN max_bytes      bigint  NOT NULL DEFAULT 0 CHECK (max_bytes >= 0),
				ADD COLUMN retention_days integer NOT NULL DEFAULT 0 CHECK (retention_days >= 0)`,
		}, rlsUp("uno_checkpoints")...),
		upGo: backfillRowDocs,
		down: []string{
			`ALTER TABLE uno_tenants DROP COLUMN max_rows, DROP COLUMN max_bytes, DROP COLUMN retention_days`,
			`DROP TABLE uno_checkpoints`,
			`ALTER TABLE uno_events DROP COLUMN appended_at`,
			`ALTER TABLE uno_rows DROP COLUMN doc`,
			`ALTER TABLE uno_rows ALTER COLUMN coll TYPE text COLLATE "default", ALTER COLUMN id TYPE text COLLATE "default"`,
		},
	},
	{ // 5: no unique index on (tenant, site, site_seq): an append checks its
		// sites' marks under the head lock and moves them in the same
		// transaction, so an entry is never there twice; the index only
		// cost every append an insert into it.
		up:   []string{`DROP INDEX uno_events_site`},
		down: []string{`CREATE UNIQUE INDEX uno_events_site ON uno_events (tenant_id, site, site_seq)`},
	},
	{ // 6: the registry under row-level security: the server's role reads
		// only the entry of the tenant it sets, and learns which tenants
		// exist (IDs) and have a retention (IDs and days) through
		// functions that run as the owner. Not FORCEd: the owner (uno tenant) sees every
		// entry.
		up: []string{
			`ALTER TABLE uno_tenants ENABLE ROW LEVEL SECURITY`,
			`CREATE POLICY tenant_isolation ON uno_tenants
				USING (tenant_id = NULLIF(current_setting('uno.tenant', true), ''))
				WITH CHECK (tenant_id = NULLIF(current_setting('uno.tenant', true), ''))`,
			`CREATE FUNCTION uno_retained_tenants() RETURNS TABLE (tenant_id text, retention_days integer)
				LANGUAGE sql STABLE SECURITY DEFINER SET search_path FROM CURRENT
				AS $$ SELECT tenant_id, retention_days FROM uno_tenants WHERE retention_days > 0 ORDER BY tenant_id $$`,
			// Async projections visit every registered tenant when a log
			// opens: IDs only.
			`CREATE FUNCTION uno_tenant_ids() RETURNS SETOF text
				LANGUAGE sql STABLE SECURITY DEFINER SET search_path FROM CURRENT
				AS $$ SELECT tenant_id FROM uno_tenants ORDER BY tenant_id $$`,
		},
		down: []string{
			`DROP FUNCTION uno_tenant_ids()`,
			`DROP FUNCTION uno_retained_tenants()`,
			`DROP POLICY tenant_isolation ON uno_tenants`,
			`ALTER TABLE uno_tenants DISABLE ROW LEVEL SECURITY`,
		},
	},
	{ // 7: log compaction: each tenant's floor (entries below it may have
		// lost their doc changes; readers behind it bootstrap) and
		// progress (entries below it are rewritten); the rows' documents
		// rendered again (doc fields as JSON).
		up: []string{`ALTER TABLE uno_heads
			ADD COLUMN compact_floor bigint NOT NULL DEFAULT 1,
			ADD COLUMN compacted     bigint NOT NULL DEFAULT 1`},
		// Doc fields render as their documents' JSON from this version.
		upGo: backfillRowDocs,
		down: []string{`ALTER TABLE uno_heads DROP COLUMN compacted, DROP COLUMN compact_floor`},
	},
	{ // 8: entries keep the W3C traceparent of their append's span, when
		// it was traced (NULL otherwise): async projections link to it.
		up:   []string{`ALTER TABLE uno_events ADD COLUMN trace text`},
		down: []string{`ALTER TABLE uno_events DROP COLUMN trace`},
	},
	{ // 9: each site's runs (server.SiteRunner): from which of its seqs on
		// which epoch of the replica's store wrote its transactions. epoch
		// is a uint64 kept as the bits of a bigint. The server's role gets
		// on it what it has on uno_sites: a role granted its privileges
		// before this version can use it without being granted again.
		up: append([]string{`CREATE TABLE uno_site_runs (
				tenant_id text   NOT NULL,
				site      bytea  NOT NULL,
				first_seq bigint NOT NULL,
				epoch     bigint NOT NULL,
				PRIMARY KEY (tenant_id, site, first_seq)
			)`}, rlsUp("uno_site_runs")...),
		upGo: func(ctx context.Context, tx pgx.Tx) error { return grantLike(ctx, tx, "uno_sites", "uno_site_runs") },
		down: []string{`DROP TABLE uno_site_runs`},
	},
}

// backfillRowDocs fills the doc column of every row from its state. The
// migrating role owns the table; it lifts FORCE for the step so that its
// own policy does not hide the rows, and puts it back before committing.
func backfillRowDocs(ctx context.Context, tx pgx.Tx) error {
	if _, err := tx.Exec(ctx, `ALTER TABLE uno_rows NO FORCE ROW LEVEL SECURITY`); err != nil {
		return err
	}
	rows, err := tx.Query(ctx, `SELECT tenant_id, coll, id, state FROM uno_rows`)
	if err != nil {
		return err
	}
	var tenants, colls, ids, docs []string
	for rows.Next() {
		var t, c, id string
		var state []byte
		if err := rows.Scan(&t, &c, &id, &state); err != nil {
			rows.Close()
			return err
		}
		r, err := crdt.DecodeRow(state)
		if err != nil {
			rows.Close()
			return fmt.Errorf("row %s %s/%s: %w", t, c, id, err)
		}
		if doc := rowmodel.Doc(r); doc != nil {
			tenants, colls, ids, docs = append(tenants, t), append(colls, c), append(ids, id), append(docs, string(doc))
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	if len(ids) > 0 {
		if _, err := tx.Exec(ctx, `UPDATE uno_rows r SET doc = u.doc::jsonb
			FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS u(t, c, id, doc)
			WHERE r.tenant_id = u.t AND r.coll = u.c AND r.id = u.id`, tenants, colls, ids, docs); err != nil {
			return err
		}
	}
	_, err = tx.Exec(ctx, `ALTER TABLE uno_rows FORCE ROW LEVEL SECURITY`)
	return err
}

// SchemaVersion is the Postgres schema version this code needs.
var SchemaVersion = len(migrations)

func rlsUp(tables ...string) []string {
	var out []string
	for _, t := range tables {
		out = append(out,
			fmt.Sprintf(`ALTER TABLE %s ENABLE ROW LEVEL SECURITY`, t),
			fmt.Sprintf(`ALTER TABLE %s FORCE ROW LEVEL SECURITY`, t),
			// After COMMIT a transaction-local setting reads '' rather
			// than NULL: NULLIF makes "no tenant" match nothing.
			fmt.Sprintf(`CREATE POLICY tenant_isolation ON %s
				USING (tenant_id = NULLIF(current_setting('uno.tenant', true), ''))
				WITH CHECK (tenant_id = NULLIF(current_setting('uno.tenant', true), ''))`, t))
	}
	return out
}

func rlsDown(tables ...string) []string {
	var out []string
	for _, t := range tables {
		out = append(out,
			fmt.Sprintf(`DROP POLICY tenant_isolation ON %s`, t),
			fmt.Sprintf(`ALTER TABLE %s NO FORCE ROW LEVEL SECURITY`, t),
			fmt.Sprintf(`ALTER TABLE %s DISABLE ROW LEVEL SECURITY`, t))
	}
	return out
}

const versionTable = `CREATE TABLE IF NOT EXISTS uno_schema (
	id      int PRIMARY KEY CHECK (id = 1),
	version int NOT NULL
)`

// pgVersion reads the schema version (0 for a database uno never touched).
func schemaVersion(ctx context.Context, pool *pgxpool.Pool) (int, error) {
	var exists bool
	if err := pool.QueryRow(ctx, `SELECT to_regclass('uno_schema') IS NOT NULL`).Scan(&exists); err != nil {
		return 0, err
	}
	if !exists {
		return 0, nil
	}
	var v int
	err := pool.QueryRow(ctx, `SELECT version FROM uno_schema WHERE id = 1`).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	return v, err
}

// PGSchemaStatus returns the database's schema version and the one this
// uno needs.
func SchemaStatus(ctx context.Context, dsn string) (have, want int, err error) {
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		return 0, 0, err
	}
	defer pool.Close()
	have, err = schemaVersion(ctx, pool)
	return have, SchemaVersion, err
}

// MigratePG moves the Postgres schema to version target (up or down), one
// step per transaction under an advisory lock, so concurrent migrators
// wait for each other. Run it as the tables' owner.
func Migrate(ctx context.Context, dsn string, target int) error {
	if target < 0 || target > len(migrations) {
		return fmt.Errorf("%w: no version %d (known: 0..%d)", ErrSchemaVersion, target, len(migrations))
	}
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer pool.Close()
	if _, err := pool.Exec(ctx, versionTable); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	for {
		done := false
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(7368120)`); err != nil {
				return err
			}
			var cur int
			err := tx.QueryRow(ctx, `SELECT version FROM uno_schema WHERE id = 1`).Scan(&cur)
			if errors.Is(err, pgx.ErrNoRows) {
				cur, err = 0, nil
			}
			if err != nil {
				return err
			}
			if cur > len(migrations) {
				return fmt.Errorf("%w: database is at version %d, newer than this uno (%d): upgrade uno", ErrSchemaVersion, cur, len(migrations))
			}
			if cur == target {
				done = true
				return nil
			}
			next, stmts, step := cur+1, []string(nil), (func(context.Context, pgx.Tx) error)(nil)
			if target > cur {
				stmts, step = migrations[cur].up, migrations[cur].upGo
			} else {
				next, stmts, step = cur-1, migrations[cur-1].down, migrations[cur-1].downGo
			}
			for _, s := range stmts {
				if _, err := tx.Exec(ctx, s); err != nil {
					return fmt.Errorf("%d to %d: %w", cur, next, err)
				}
			}
			if step != nil {
				if err := step(ctx, tx); err != nil {
					return fmt.Errorf("%d to %d: %w", cur, next, err)
				}
			}
			_, err = tx.Exec(ctx, `INSERT INTO uno_schema (id, version) VALUES (1, $1) ON CONFLICT (id) DO UPDATE SET version = excluded.version`, next)
			return err
		})
		if err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		if done {
			return migrateJobs(ctx, pool, target)
		}
	}
}
