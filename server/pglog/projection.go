package pglog

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/unosync/uno/crdt"
	"github.com/unosync/uno/server/internal/rowmodel"
	usync "github.com/unosync/uno/sync"
)

// A Projection is a read model on Postgres folded from the event log: the
// Q of CQRS. It owns Tables (created by SetupProjections, each under the
// same row-level security as the log) and folds each tenant's log entries
// into them with Fold, in sequence order, exactly once:
//
//   - inline (Async false), Fold runs in the append transaction, so the
//     projection is never behind the log; it adds to every append's time.
//   - async, a worker on each server node folds new entries in batches,
//     each batch in one transaction with the projection's checkpoint
//     (table uno_checkpoints), so a crash repeats nothing and skips
//     nothing; two nodes never fold the same entries (the checkpoint row
//     is locked while folding).
//
// RebuildProjection replays the whole log into fresh copies of the tables
// and swaps them in atomically: the way to fix a fold or change a
// projection's tables.
type Projection struct {
	// Name identifies the projection: lower-case letters, digits and '_'.
	Name string
	// Tables are the tables it owns. Name them after the projection.
	Tables []ProjectionTable
	// Async folds after the append rather than in it.
	Async bool
	// Fold folds entries of one tenant, in sequence order, into the
	// tables. tx is scoped to tenant: row-level security shows only its
	// rows and refuses writes of other tenants' rows. Refer to the tables
	// by their bare names (a rebuild points them at the fresh copies).
	// An error aborts the append (inline) or the batch (async, retried).
	Fold func(ctx context.Context, tx pgx.Tx, tenant string, changes []usync.Change) error

	// carryDocs marks the rows read model (RowsProjection): a rebuild
	// starts each compacted tenant's copy from the doc fields of the
	// live table, which compaction left nowhere else.
	carryDocs bool
}

// ProjectionTable is one table of a projection. Columns is the body of its
// CREATE TABLE: it must start with "tenant_id text NOT NULL" and its
// primary key must lead with tenant_id, like every tenant table.
type ProjectionTable struct {
	Name    string
	Columns string
}

var (
	projectionName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`)
	leadsTenant    = regexp.MustCompile(`(?is)^\s*tenant_id\s+text\s+not\s+null\b.*primary\s+key\s*\(\s*tenant_id\b`)
)

// ErrProjection reports a projection that cannot be used as declared.
var ErrProjection = errors.New("server: projection")

func (p *Projection) validate() error {
	if !projectionName.MatchString(p.Name) {
		return fmt.Errorf("%w: name %q: want lower-case letters, digits and _", ErrProjection, p.Name)
	}
	if p.Fold == nil {
		return fmt.Errorf("%w %s: no Fold", ErrProjection, p.Name)
	}
	for _, t := range p.Tables {
		if !projectionName.MatchString(t.Name) || strings.HasPrefix(t.Name, "uno_") && p.Name != "rows" {
			return fmt.Errorf("%w %s: table name %q: want lower-case letters, digits and _, not starting with uno_", ErrProjection, p.Name, t.Name)
		}
		if !leadsTenant.MatchString(t.Columns) {
			return fmt.Errorf("%w %s: table %s: columns must start with \"tenant_id text NOT NULL\" and the primary key must lead with tenant_id", ErrProjection, p.Name, t.Name)
		}
	}
	return nil
}

// SetupProjections creates the tables of the projections that do not
// exist yet, each with row-level security forced and the same policy as
// the log's tables, and grants on them what the server's role has on
// uno_rows. Run it as the tables' owner, after MigratePG.
func SetupProjections(ctx context.Context, dsn string, ps ...Projection) error {
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		return fmt.Errorf("setup projections: %w", err)
	}
	defer pool.Close()
	for _, p := range ps {
		if err := p.validate(); err != nil {
			return err
		}
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			for _, t := range p.Tables {
				var exists bool
				if err := tx.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, t.Name).Scan(&exists); err != nil {
					return err
				}
				if exists {
					continue
				}
				if err := createProjectionTable(ctx, tx, "", t); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("setup projection %s: %w", p.Name, err)
		}
	}
	return nil
}

// createProjectionTable creates t in schema (the current one if ""), under
// row-level security, with uno_rows's grants.
func createProjectionTable(ctx context.Context, tx pgx.Tx, schema string, t ProjectionTable) error {
	name := pgx.Identifier{t.Name}.Sanitize()
	if schema != "" {
		name = pgx.Identifier{schema, t.Name}.Sanitize()
	}
	stmts := append([]string{fmt.Sprintf(`CREATE TABLE %s (%s)`, name, t.Columns)}, rlsUp(name)...)
	for _, s := range stmts {
		if _, err := tx.Exec(ctx, s); err != nil {
			return fmt.Errorf("table %s: %w", t.Name, err)
		}
	}
	if err := grantLike(ctx, tx, "uno_rows", name); err != nil {
		return fmt.Errorf("table %s: %w", t.Name, err)
	}
	return nil
}

// grantLike grants on the table name (an SQL identifier, sanitized) what
// roles other than the current one and PUBLIC have on the table like of
// the current schema: the server's role gets on a new table what it has
// on the log's.
func grantLike(ctx context.Context, tx pgx.Tx, like, name string) error {
	rows, err := tx.Query(ctx, `SELECT grantee, privilege_type FROM information_schema.role_table_grants
		WHERE table_name = $1 AND table_schema = current_schema() AND grantee NOT IN (current_user, 'PUBLIC')`, like)
	if err != nil {
		return err
	}
	grants, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) ([2]string, error) {
		var g [2]string
		err := r.Scan(&g[0], &g[1])
		return g, err
	})
	if err != nil {
		return err
	}
	for _, g := range grants {
		if _, err := tx.Exec(ctx, fmt.Sprintf(`GRANT %s ON %s TO %s`, g[1], name, pgx.Identifier{g[0]}.Sanitize())); err != nil {
			return err
		}
	}
	return nil
}

// rebuildSchema holds the fresh copies of a projection's tables while a
// rebuild fills them.
const rebuildSchema = "uno_rebuild"

// RebuildProgress reports a rebuild's progress: the tenant being replayed,
// the sequence number reached and the tenant's head.
type RebuildProgress func(tenant string, seq, head uint64)

// RebuildProjection replays the log into fresh copies of p's tables (in
// schema uno_rebuild) and swaps them in, in one transaction that briefly
// holds appends back (it locks uno_heads) while it folds the entries that
// arrived meanwhile. Readers see the old tables until the swap commits and
// the new ones after. An async projection's checkpoints are set to the
// heads it reached. The rows read model (RowsProjection) of a tenant
// whose log is compacted starts from the live table's doc fields, which
// compaction left nowhere else (see carryDocs). Run it as the tables' owner. The tenants replayed are
// those of the registry and, if the role bypasses row-level security (a
// superuser), every tenant with a log.
func RebuildProjection(ctx context.Context, dsn string, p Projection, progress RebuildProgress) error {
	if err := p.validate(); err != nil {
		return err
	}
	if progress == nil {
		progress = func(string, uint64, uint64) {}
	}
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		return fmt.Errorf("rebuild %s: %w", p.Name, err)
	}
	defer pool.Close()
	var live, path string
	if err := pool.QueryRow(ctx, `SELECT current_schema(), current_setting('search_path')`).Scan(&live, &path); err != nil {
		return fmt.Errorf("rebuild %s: %w", p.Name, err)
	}
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DROP SCHEMA IF EXISTS `+rebuildSchema+` CASCADE`); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `CREATE SCHEMA `+rebuildSchema); err != nil {
			return err
		}
		for _, t := range p.Tables {
			if err := createProjectionTable(ctx, tx, rebuildSchema, t); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("rebuild %s: %w", p.Name, err)
	}
	defer pool.Exec(context.WithoutCancel(ctx), `DROP SCHEMA IF EXISTS `+rebuildSchema+` CASCADE`)
	// The fold's bare table names find the copies first.
	path = rebuildSchema + ", " + path

	// Replay each tenant, a batch per transaction, without holding
	// appends back.
	reached := map[string]uint64{}
	tenants, err := rebuildTenants(ctx, pool)
	if err != nil {
		return fmt.Errorf("rebuild %s: %w", p.Name, err)
	}
	for _, tenant := range tenants {
		if p.carryDocs {
			if err := carryDocs(ctx, pool, live, tenant); err != nil {
				return fmt.Errorf("rebuild %s: tenant %s: %w", p.Name, tenant, err)
			}
		}
		for {
			var n int
			err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
				var err error
				n, err = foldRebuild(ctx, tx, p, path, tenant, reached, progress)
				return err
			})
			if err != nil {
				return fmt.Errorf("rebuild %s: tenant %s: %w", p.Name, tenant, err)
			}
			if n < rebuildBatch {
				break
			}
		}
	}
	// The swap: hold appends back, fold what arrived meanwhile, and put
	// the copies in the old tables' place.
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `LOCK TABLE uno_heads IN SHARE ROW EXCLUSIVE MODE`); err != nil {
			return err
		}
		if p.Async {
			// An async fold takes its checkpoint row, then writes the
			// live tables: take the checkpoints before dropping those
			// tables (waiting for folds in flight), or a fold writing
			// them while the swap waited for its checkpoint row would
			// deadlock.
			if _, err := tx.Exec(ctx, `LOCK TABLE uno_checkpoints IN SHARE ROW EXCLUSIVE MODE`); err != nil {
				return err
			}
		}
		tenants, err := rebuildTenants(ctx, tx)
		if err != nil {
			return err
		}
		for _, tenant := range tenants {
			for {
				n, err := foldRebuild(ctx, tx, p, path, tenant, reached, progress)
				if err != nil {
					return fmt.Errorf("tenant %s: %w", tenant, err)
				}
				if n < rebuildBatch {
					break
				}
			}
		}
		for _, t := range p.Tables {
			if _, err := tx.Exec(ctx, `DROP TABLE IF EXISTS `+pgx.Identifier{live, t.Name}.Sanitize()); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `ALTER TABLE `+pgx.Identifier{rebuildSchema, t.Name}.Sanitize()+` SET SCHEMA `+pgx.Identifier{live}.Sanitize()); err != nil {
				return err
			}
		}
		if !p.Async {
			return nil
		}
		for tenant, seq := range reached {
			if _, err := tx.Exec(ctx, `SELECT set_config('uno.tenant', $1, true)`, tenant); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `INSERT INTO uno_checkpoints (tenant_id, projection, seq) VALUES ($1, $2, $3)
				ON CONFLICT (tenant_id, projection) DO UPDATE SET seq = excluded.seq`, tenant, p.Name, int64(seq)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("rebuild %s: swap: %w", p.Name, err)
	}
	return nil
}

const rebuildBatch = 1000

// foldRebuild folds the next batch of tenant's entries into the fresh
// copies and returns how many it folded.
func foldRebuild(ctx context.Context, tx pgx.Tx, p Projection, path, tenant string, reached map[string]uint64, progress RebuildProgress) (int, error) {
	if _, err := tx.Exec(ctx, `SELECT set_config('uno.tenant', $1, true), set_config('search_path', $2, true)`, tenant, path); err != nil {
		return 0, err
	}
	var head uint64
	if err := tx.QueryRow(ctx, `SELECT coalesce(max(seq), 0) FROM uno_heads WHERE tenant_id = $1`, tenant).Scan(&head); err != nil {
		return 0, err
	}
	chs, err := readEvents(ctx, tx, tenant, reached[tenant], rebuildBatch, 0, nil)
	if err != nil || len(chs) == 0 {
		return 0, err
	}
	if err := p.Fold(ctx, tx, tenant, chs); err != nil {
		return 0, err
	}
	reached[tenant] = chs[len(chs)-1].Seq
	progress(tenant, reached[tenant], head)
	return len(chs), nil
}

// carryDocs starts the rebuild's copy of the rows read model, for a
// tenant whose log is compacted, with the doc fields of the live table:
// compaction dropped the doc changes below its floor from the log, so
// their merged documents are only there. Each row with doc fields gets
// its causal length, those fields and its version; the replay then
// merges every other op (and the doc changes above the floor, which the
// documents hold already) into them, so the copy ends equal to the live
// table, row for row. Rows without doc fields come from the replay alone.
func carryDocs(ctx context.Context, pool *pgxpool.Pool, live, tenant string) error {
	var floor uint64
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT set_config('uno.tenant', $1, true)`, tenant); err != nil {
			return err
		}
		err := tx.QueryRow(ctx, `SELECT compact_floor FROM uno_heads WHERE tenant_id = $1`, tenant).Scan(&floor)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		return err
	})
	if err != nil || floor <= 1 {
		return err
	}
	liveRows := pgx.Identifier{live, "uno_rows"}.Sanitize()
	copyRows := pgx.Identifier{rebuildSchema, "uno_rows"}.Sanitize()
	var after crdt.RowKey
	for {
		n := 0
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `SELECT set_config('uno.tenant', $1, true)`, tenant); err != nil {
				return err
			}
			rows, err := tx.Query(ctx, `SELECT coll, id, seq, state FROM `+liveRows+`
				WHERE tenant_id = $1 AND (coll, id) > ($2, $3) ORDER BY coll, id LIMIT $4`, tenant, after.Collection, after.Row, rebuildBatch)
			if err != nil {
				return err
			}
			var colls, ids, docs []string
			var seqs []int64
			var states [][]byte
			for rows.Next() {
				var seq int64
				var state []byte
				if err := rows.Scan(&after.Collection, &after.Row, &seq, &state); err != nil {
					rows.Close()
					return err
				}
				n++
				r, err := crdt.DecodeRow(state)
				if err != nil {
					rows.Close()
					return fmt.Errorf("rows read model: row %s/%s: %w", after.Collection, after.Row, err)
				}
				kept := crdt.Row{CL: r.CL}
				for _, f := range r.Fields {
					if f.Kind == crdt.KindDoc {
						kept.Fields = append(kept.Fields, f)
					}
				}
				if len(kept.Fields) == 0 {
					continue
				}
				colls, ids, seqs = append(colls, after.Collection), append(ids, after.Row), append(seqs, seq)
				states, docs = append(states, crdt.EncodeRow(&kept)), append(docs, string(rowmodel.Doc(&kept)))
			}
			if err := rows.Err(); err != nil || len(colls) == 0 {
				return err
			}
			_, err = tx.Exec(ctx, `INSERT INTO `+copyRows+` (tenant_id, coll, id, seq, state, doc)
				SELECT $1, c, i, s, st, d::jsonb FROM unnest($2::text[], $3::text[], $4::bigint[], $5::bytea[], $6::text[]) AS u(c, i, s, st, d)`,
				tenant, colls, ids, seqs, states, docs)
			return err
		})
		if err != nil {
			return fmt.Errorf("carry doc fields over: %w", err)
		}
		if n < rebuildBatch {
			return nil
		}
	}
}

type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// rebuildTenants lists the tenants of the registry and those whose heads
// the role can see.
func rebuildTenants(ctx context.Context, q querier) ([]string, error) {
	rows, err := q.Query(ctx, `SELECT tenant_id FROM uno_tenants UNION SELECT tenant_id FROM uno_heads ORDER BY 1`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// readEvents reads up to limit of the tenant's entries after seq, and at
// most maxBytes of encodings (at least one entry; 0: no byte bound), in a
// transaction scoped to the tenant. keep, if not nil, is handed each
// entry with its encoding.
func readEvents(ctx context.Context, q querier, tenant string, after uint64, limit, maxBytes int, keep func(seq uint64, tx *crdt.Tx, enc []byte)) ([]usync.Change, error) {
	return queryEvents(ctx, q, `SELECT seq, tx FROM uno_events WHERE tenant_id = $1 AND seq > $2 ORDER BY seq LIMIT $3`, tenant, after, limit, maxBytes, keep)
}

// queryEvents runs query, of (tenant, after, limit), for log entries.
func queryEvents(ctx context.Context, q querier, query, tenant string, after uint64, limit, maxBytes int, keep func(seq uint64, tx *crdt.Tx, enc []byte)) ([]usync.Change, error) {
	rows, err := q.Query(ctx, query, tenant, int64(after), limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	return rowmodel.CollectEntries(rows, maxBytes, keep)
}
