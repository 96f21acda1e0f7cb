package sqlitelog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/unosync/uno/server/internal/logtrace"
	"github.com/unosync/uno/server/internal/rowmodel"
	usync "github.com/unosync/uno/sync"
	"modernc.org/sqlite"
)

// A Projection is a read model in the log's file folded from the event
// log: the Q of CQRS, the embedded twin of pglog.Projection. It owns
// Tables (created by SetupProjections) and folds each tenant's log
// entries into them with Fold, in sequence order, exactly once:
//
//   - inline (Async false), Fold runs in the append transaction, under
//     the savepoint of the append it folds, so the projection is never
//     behind the log; it adds to every append's time, and an error fails
//     that append only (nothing of it is appended).
//   - async, a worker goroutine of the log folds new entries in batches,
//     each batch in one transaction with the projection's checkpoint
//     (table checkpoints), so a crash or a restart repeats nothing and
//     skips nothing. Appends wake it; at Open it visits every tenant.
//
// RebuildProjection replays the whole log into fresh copies of the tables
// and swaps them in atomically: the way to fix a fold or change a
// projection's tables.
type Projection struct {
	// Name identifies the projection: lower-case letters, digits and '_',
	// not "rows" (the built-in read model).
	Name string
	// Tables are the tables it owns. Name them after the projection.
	Tables []Table
	// Async folds after the append rather than in it.
	Async bool
	// Fold folds entries of one tenant, in sequence order, into the
	// tables. It must write only that tenant's rows (SQLite has no
	// row-level security: nothing else keeps tenants apart). Refer to the
	// tables by their bare names (a rebuild points them at the fresh
	// copies). An error fails the append (inline) or the batch (async,
	// retried after a backoff).
	Fold func(ctx context.Context, tx *sql.Tx, tenant string, changes []usync.Change) error
}

// Table is one table of a projection. Columns is the body of its CREATE
// TABLE (what goes between the parentheses): it must start with "tenant
// TEXT NOT NULL" and its primary key must lead with tenant, like every
// table of the log.
type Table struct {
	Name    string
	Columns string
}

var (
	projectionName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`)
	leadsTenant    = regexp.MustCompile(`(?is)^\s*tenant\s+text\s+not\s+null\b.*primary\s+key\s*\(\s*tenant\b`)
	// ownTables are the log's own tables: no projection may own them.
	ownTables = map[string]bool{"events": true, "heads": true, "sites": true, "site_runs": true, "rows": true, "tenants": true, "checkpoints": true}
)

// ErrProjection reports a projection that cannot be used as declared.
var ErrProjection = errors.New("sqlitelog: projection")

func (p *Projection) validate() error {
	if !projectionName.MatchString(p.Name) || p.Name == "rows" {
		return fmt.Errorf("%w: name %q: want lower-case letters, digits and _, not rows", ErrProjection, p.Name)
	}
	if p.Fold == nil {
		return fmt.Errorf("%w %s: no Fold", ErrProjection, p.Name)
	}
	for _, t := range p.Tables {
		if !projectionName.MatchString(t.Name) || strings.HasPrefix(t.Name, "uno_") || strings.HasPrefix(t.Name, "sqlite_") || ownTables[t.Name] {
			return fmt.Errorf("%w %s: table name %q: want lower-case letters, digits and _, not starting with uno_ or sqlite_, not one of the log's tables", ErrProjection, p.Name, t.Name)
		}
		if !leadsTenant.MatchString(t.Columns) {
			return fmt.Errorf("%w %s: table %s: columns must start with \"tenant TEXT NOT NULL\" and the primary key must lead with tenant", ErrProjection, p.Name, t.Name)
		}
	}
	return nil
}

// validateAll validates ps and refuses two projections of one name or
// two owning one table.
func validateAll(ps []Projection) error {
	names, tables := map[string]bool{}, map[string]string{}
	for i := range ps {
		p := &ps[i]
		if err := p.validate(); err != nil {
			return err
		}
		if names[p.Name] {
			return fmt.Errorf("%w: two projections named %s", ErrProjection, p.Name)
		}
		names[p.Name] = true
		for _, t := range p.Tables {
			if other, ok := tables[t.Name]; ok {
				return fmt.Errorf("%w: projections %s and %s both own table %s", ErrProjection, other, p.Name, t.Name)
			}
			tables[t.Name] = p.Name
		}
	}
	return nil
}

// tableExists reports whether the main schema holds table name.
func tableExists(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, name string) (bool, error) {
	var n int
	err := q.QueryRowContext(ctx, `SELECT count(*) FROM main.sqlite_schema WHERE type = 'table' AND name = ?`, name).Scan(&n)
	return n > 0, err
}

// SetupProjections creates, in the log file at path (created, or its
// schema moved up, as Open does), the tables of the projections that do
// not exist yet. A projection that gets a new table on a log that already
// holds entries is then rebuilt (RebuildProjection), so it starts equal
// to the log, not empty. It may run while a server uses the file. With no
// projections it does nothing.
func SetupProjections(ctx context.Context, path string, ps ...Projection) error {
	if err := validateAll(ps); err != nil || len(ps) == 0 {
		return err
	}
	db, err := openDB(ctx, path, "deferred")
	if err != nil {
		return fmt.Errorf("setup projections: %w", err)
	}
	defer db.Close()
	for _, p := range ps {
		created := false
		err := inTx(ctx, db, func(tx *sql.Tx) error {
			// Take the writer lock before reading (see rebuild's swap).
			if _, err := tx.ExecContext(ctx, `UPDATE main.heads SET seq = seq WHERE 0`); err != nil {
				return err
			}
			for _, t := range p.Tables {
				ok, err := tableExists(ctx, tx, t.Name)
				if err != nil {
					return err
				}
				if ok {
					continue
				}
				if _, err := tx.ExecContext(ctx, fmt.Sprintf(`CREATE TABLE main.%s (%s)`, t.Name, t.Columns)); err != nil {
					return fmt.Errorf("table %s: %w", t.Name, err)
				}
				created = true
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("setup projection %s: %w", p.Name, err)
		}
		var entries bool
		if err := db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM heads WHERE seq > 0)`).Scan(&entries); err != nil {
			return fmt.Errorf("setup projection %s: %w", p.Name, err)
		}
		if created && entries {
			if err := rebuild(ctx, db, p, nil); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkProjections refuses projections declared wrongly or whose tables
// are missing.
func checkProjections(ctx context.Context, db *sql.DB, ps []Projection) error {
	if err := validateAll(ps); err != nil {
		return err
	}
	for _, p := range ps {
		for _, t := range p.Tables {
			ok, err := tableExists(ctx, db, t.Name)
			if err != nil {
				return fmt.Errorf("projection %s: %w", p.Name, err)
			}
			if !ok {
				return fmt.Errorf("%w %s: table %s missing: run uno projection setup --data", ErrProjection, p.Name, t.Name)
			}
		}
	}
	return nil
}

// inTx runs f in a write transaction on db and commits if it succeeds.
func inTx(ctx context.Context, db interface {
	BeginTx(context.Context, *sql.TxOptions) (*sql.Tx, error)
}, f func(tx *sql.Tx) error) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := f(tx); err != nil {
		return err
	}
	return tx.Commit()
}

// foldInline folds one append's new entries into the inline projections,
// inside its savepoint.
func (l *Log) foldInline(ctx context.Context, tx *sql.Tx, tenant string, chs []usync.Change) error {
	if len(chs) == 0 {
		return nil
	}
	for _, p := range l.inline {
		pctx, span := logtrace.StartProjection(ctx, tracerName, p.Name, tenant, len(chs))
		err := p.Fold(pctx, tx, tenant, chs)
		logtrace.End(span, err)
		if err != nil {
			return fmt.Errorf("projection %s: %w", p.Name, err)
		}
	}
	return nil
}

// readEntries reads up to limit of the tenant's entries after seq.
func readEntries(ctx context.Context, tx *sql.Tx, tenant string, after uint64, limit int) ([]usync.Change, error) {
	rows, err := tx.QueryContext(ctx, `SELECT seq, tx FROM events WHERE tenant = ? AND seq > ? ORDER BY seq LIMIT ?`, tenant, int64(after), limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	return rowmodel.CollectEntries(rows, 0, nil)
}

// RebuildProgress reports a rebuild's progress: the tenant being replayed,
// the sequence number reached and the tenant's head.
type RebuildProgress func(tenant string, seq, head uint64)

// rebuildBatch is the most entries a rebuild folds per transaction before
// the swap.
const rebuildBatch = 1000

// A rebuild replays the log, then catches up with what was appended
// meanwhile until a pass folds fewer than rebuildSmall entries, or for at
// most rebuildPasses passes in all, before its swap.
const (
	rebuildSmall  = 100
	rebuildPasses = 8
)

// RebuildProjection replays the log at path into fresh copies of p's
// tables and swaps them in. The copies are TEMP tables of the rebuild's
// connection, which the fold's bare table names find first; each tenant
// is replayed a batch per transaction, so appends wait for one batch at a
// time. The swap is one write transaction: it folds the entries appended
// meanwhile, replaces each table with its copy and, for an async
// projection, sets its checkpoints to the heads it reached. SQLite's one
// writer makes appends (and the async worker) wait for it, and readers see
// the old tables until it commits, the new ones after.
//
// It may run while a server runs on the file: the server keeps nothing of
// a projection's tables in memory, and its inline folds and async batches
// are transactions that the swap serialises with. The tenants replayed
// are every tenant with a log or in the registry. Entries that retention
// deleted are not replayed.
func RebuildProjection(ctx context.Context, path string, p Projection, progress RebuildProgress) error {
	if err := p.validate(); err != nil {
		return err
	}
	db, err := openDB(ctx, path, "deferred")
	if err != nil {
		return fmt.Errorf("rebuild %s: %w", p.Name, err)
	}
	defer db.Close()
	return rebuild(ctx, db, p, progress)
}

func rebuild(ctx context.Context, db *sql.DB, p Projection, progress RebuildProgress) error {
	if progress == nil {
		progress = func(string, uint64, uint64) {}
	}
	// One connection: its TEMP tables are the copies.
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("rebuild %s: %w", p.Name, err)
	}
	defer conn.Close()
	defer func() {
		for _, t := range p.Tables {
			conn.ExecContext(context.WithoutCancel(ctx), `DROP TABLE IF EXISTS temp.`+t.Name)
		}
	}()
	err = inTx(ctx, conn, func(tx *sql.Tx) error {
		for _, t := range p.Tables {
			if _, err := tx.ExecContext(ctx, `DROP TABLE IF EXISTS temp.`+t.Name); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, fmt.Sprintf(`CREATE TEMP TABLE %s (%s)`, t.Name, t.Columns)); err != nil {
				return fmt.Errorf("table %s: %w", t.Name, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("rebuild %s: %w", p.Name, err)
	}
	reached := map[string]uint64{}
	var tenants []string
	err = inTx(ctx, conn, func(tx *sql.Tx) (err error) {
		tenants, err = rebuildTenants(ctx, tx)
		return err
	})
	if err != nil {
		return fmt.Errorf("rebuild %s: %w", p.Name, err)
	}
	// Replay each tenant, a batch per transaction; then pass again for
	// what was appended meanwhile, still without the writer lock, until a
	// pass finds little. The swap below holds the lock while it folds the
	// rest, and appends wait for it (up to their busy timeout): the rest
	// must stay small even when the replay took long (a loaded machine).
	for pass := 0; pass < rebuildPasses; pass++ {
		folded := 0
		for _, tenant := range tenants {
			for {
				var n int
				err := inTx(ctx, conn, func(tx *sql.Tx) (err error) {
					n, err = foldRebuild(ctx, tx, p, tenant, reached, progress)
					return err
				})
				if err != nil {
					return fmt.Errorf("rebuild %s: tenant %s: %w", p.Name, tenant, err)
				}
				folded += n
				if n < rebuildBatch {
					break
				}
			}
		}
		if folded < rebuildSmall {
			break
		}
	}
	// The swap: fold what arrived meanwhile and put the copies in place,
	// holding the writer lock throughout. A write first takes the lock
	// (and waits for an append in progress) before anything is read, so
	// what it reads is the newest state.
	// Writers busy for longer than the busy timeout (a loaded machine)
	// make the swap fail with SQLITE_BUSY having changed nothing: it is
	// tried again, a bounded number of times.
	for attempt := 0; ; attempt++ {
		err = swap(ctx, conn, p, reached, progress)
		if !isBusy(err) || attempt == 4 {
			break
		}
		select {
		case <-time.After(time.Duration(50<<attempt) * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if err != nil {
		return fmt.Errorf("rebuild %s: swap: %w", p.Name, err)
	}
	return nil
}

// isBusy reports whether err is SQLite's SQLITE_BUSY (the lock was held
// past the busy timeout).
func isBusy(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code()&0xff == 5 // SQLITE_BUSY
}

// swap folds what arrived during a rebuild and puts its copies in place.
func swap(ctx context.Context, conn *sql.Conn, p Projection, reached map[string]uint64, progress RebuildProgress) error {
	return inTx(ctx, conn, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE main.heads SET seq = seq WHERE 0`); err != nil {
			return err
		}
		tenants, err := rebuildTenants(ctx, tx)
		if err != nil {
			return err
		}
		for _, tenant := range tenants {
			for {
				n, err := foldRebuild(ctx, tx, p, tenant, reached, progress)
				if err != nil {
					return fmt.Errorf("tenant %s: %w", tenant, err)
				}
				if n < rebuildBatch {
					break
				}
			}
		}
		for _, t := range p.Tables {
			for _, q := range []string{
				`DROP TABLE IF EXISTS main.` + t.Name,
				fmt.Sprintf(`CREATE TABLE main.%s (%s)`, t.Name, t.Columns),
				fmt.Sprintf(`INSERT INTO main.%[1]s SELECT * FROM temp.%[1]s`, t.Name),
				`DROP TABLE temp.` + t.Name,
			} {
				if _, err := tx.ExecContext(ctx, q); err != nil {
					return fmt.Errorf("table %s: %w", t.Name, err)
				}
			}
		}
		if !p.Async {
			return nil
		}
		for tenant, seq := range reached {
			if _, err := tx.ExecContext(ctx, `INSERT INTO checkpoints (tenant, projection, seq) VALUES (?, ?, ?)
				ON CONFLICT (tenant, projection) DO UPDATE SET seq = excluded.seq`, tenant, p.Name, int64(seq)); err != nil {
				return err
			}
		}
		return nil
	})
}

// foldRebuild folds the next batch of tenant's entries into the copies
// and returns how many it folded.
func foldRebuild(ctx context.Context, tx *sql.Tx, p Projection, tenant string, reached map[string]uint64, progress RebuildProgress) (int, error) {
	var head uint64
	if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(seq), 0) FROM heads WHERE tenant = ?`, tenant).Scan(&head); err != nil {
		return 0, err
	}
	chs, err := readEntries(ctx, tx, tenant, reached[tenant], rebuildBatch)
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

// rebuildTenants lists the tenants of the registry and those with a log.
func rebuildTenants(ctx context.Context, tx *sql.Tx) ([]string, error) {
	return queryTenants(ctx, tx, `SELECT tenant FROM tenants UNION SELECT tenant FROM heads ORDER BY 1`)
}

// queryTenants runs a query of one text column: tenant IDs (or, for
// queryTenantTables, table names).
func queryTenants(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, query string) ([]string, error) {
	rows, err := q.QueryContext(ctx, query)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}
