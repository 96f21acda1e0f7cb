package jobs

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"
	_ "modernc.org/sqlite" // the "sqlite" database/sql driver
)

// store is the log's database as the jobs use it: River's driver and
// migrations, and the table of live sessions' floors (jobs_floors).
type store interface {
	migrate(ctx context.Context) error
	// setFloors replaces node's rows with floors (tenant → lowest
	// position of its live sessions), stamped now.
	setFloors(ctx context.Context, node string, floors map[string]uint64, now time.Time) error
	// floor returns the lowest floor of tenant among the rows stamped
	// after since, or false when there is none.
	floor(ctx context.Context, tenant string, since time.Time) (uint64, bool, error)
	// counts returns the jobs by state and kind.
	counts(ctx context.Context) ([]Count, error)
	close()
}

const floorsTable = `CREATE TABLE IF NOT EXISTS jobs_floors (
	node    TEXT NOT NULL,
	tenant  TEXT NOT NULL,
	low     BIGINT NOT NULL,
	seen_ms BIGINT NOT NULL,
	PRIMARY KEY (node, tenant))`

// sqliteStore is the embedded log's SQLite file, through its own pool of
// one connection whose transactions begin IMMEDIATE (River's driver
// advises one connection; immediate transactions wait on the writer
// lock with the busy timeout instead of failing on upgrade).
type sqliteStore struct{ db *sql.DB }

func openSQLite(path string) (*sqliteStore, error) {
	if path == "" || strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("%w: SQLite path %q: want a file name without ? or #", ErrConfig, path)
	}
	q := url.Values{}
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_pragma", "busy_timeout(10000)")
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open jobs database: %w", err)
	}
	db.SetMaxOpenConns(1)
	return &sqliteStore{db: db}, nil
}

func (s *sqliteStore) migrate(ctx context.Context) error {
	m, err := rivermigrate.New(riversqlite.New(s.db), nil)
	if err != nil {
		return fmt.Errorf("migrate jobs: %w", err)
	}
	if _, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return fmt.Errorf("migrate jobs: %w", err)
	}
	if _, err := s.db.ExecContext(ctx, floorsTable); err != nil {
		return fmt.Errorf("migrate jobs: %w", err)
	}
	return nil
}

func (s *sqliteStore) setFloors(ctx context.Context, node string, floors map[string]uint64, now time.Time) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("record floors: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `DELETE FROM jobs_floors WHERE node = ?`, node); err != nil {
		return fmt.Errorf("record floors: %w", err)
	}
	for t, low := range floors {
		if _, err := tx.ExecContext(ctx, `INSERT INTO jobs_floors (node, tenant, low, seen_ms) VALUES (?, ?, ?, ?)`,
			node, t, int64(min(low, 1<<62)), now.UnixMilli()); err != nil {
			return fmt.Errorf("record floors: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("record floors: %w", err)
	}
	return nil
}

func (s *sqliteStore) floor(ctx context.Context, tenant string, since time.Time) (uint64, bool, error) {
	var low sql.NullInt64
	err := s.db.QueryRowContext(ctx, `SELECT min(low) FROM jobs_floors WHERE tenant = ? AND seen_ms > ?`, tenant, since.UnixMilli()).Scan(&low)
	if err != nil {
		return 0, false, fmt.Errorf("read floors: %w", err)
	}
	return uint64(low.Int64), low.Valid, nil
}

func (s *sqliteStore) counts(ctx context.Context) ([]Count, error) {
	rows, err := s.db.QueryContext(ctx, countsQuery)
	if err != nil {
		return nil, fmt.Errorf("count jobs: %w", err)
	}
	defer rows.Close()
	var out []Count
	for rows.Next() {
		var c Count
		if err := rows.Scan(&c.State, &c.Kind, &c.N); err != nil {
			return nil, fmt.Errorf("count jobs: %w", err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

func (s *sqliteStore) close() { s.db.Close() }

const countsQuery = `SELECT state, kind, count(*) FROM river_job GROUP BY state, kind ORDER BY state, kind`

// pgStore is the Postgres log's database, through a pool of its own.
type pgStore struct{ pool *pgxpool.Pool }

func openPostgres(ctx context.Context, dsn string) (*pgStore, error) {
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("%w: postgres DSN: %w", ErrConfig, err)
	}
	return &pgStore{pool: pool}, nil
}

func (s *pgStore) migrate(ctx context.Context) error {
	m, err := rivermigrate.New(riverpgxv5.New(s.pool), nil)
	if err != nil {
		return fmt.Errorf("migrate jobs: %w", err)
	}
	// River's migrator takes an advisory lock per step: several nodes
	// may start at once.
	if _, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return fmt.Errorf("migrate jobs: %w", err)
	}
	// The serving role may not create tables (uno migrate up, as the
	// owner, did): create only what is missing.
	var exists bool
	if err := s.pool.QueryRow(ctx, `SELECT to_regclass('jobs_floors') IS NOT NULL`).Scan(&exists); err != nil {
		return fmt.Errorf("migrate jobs: %w", err)
	}
	if exists {
		return nil
	}
	if _, err := s.pool.Exec(ctx, floorsTable); err != nil {
		return fmt.Errorf("migrate jobs: %w", err)
	}
	return nil
}

func (s *pgStore) setFloors(ctx context.Context, node string, floors map[string]uint64, now time.Time) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("record floors: %w", err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `DELETE FROM jobs_floors WHERE node = $1`, node); err != nil {
		return fmt.Errorf("record floors: %w", err)
	}
	for t, low := range floors {
		if _, err := tx.Exec(ctx, `INSERT INTO jobs_floors (node, tenant, low, seen_ms) VALUES ($1, $2, $3, $4)`,
			node, t, int64(min(low, 1<<62)), now.UnixMilli()); err != nil {
			return fmt.Errorf("record floors: %w", err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("record floors: %w", err)
	}
	return nil
}

func (s *pgStore) floor(ctx context.Context, tenant string, since time.Time) (uint64, bool, error) {
	var low *int64
	err := s.pool.QueryRow(ctx, `SELECT min(low) FROM jobs_floors WHERE tenant = $1 AND seen_ms > $2`, tenant, since.UnixMilli()).Scan(&low)
	if err != nil {
		return 0, false, fmt.Errorf("read floors: %w", err)
	}
	if low == nil {
		return 0, false, nil
	}
	return uint64(*low), true, nil
}

func (s *pgStore) counts(ctx context.Context) ([]Count, error) {
	rows, err := s.pool.Query(ctx, countsQuery)
	if err != nil {
		return nil, fmt.Errorf("count jobs: %w", err)
	}
	defer rows.Close()
	var out []Count
	for rows.Next() {
		var c Count
		var state string
		if err := rows.Scan(&state, &c.Kind, &c.N); err != nil {
			return nil, fmt.Errorf("count jobs: %w", err)
		}
		c.State = state
		out = append(out, c)
	}
	return out, rows.Err()
}

func (s *pgStore) close() { s.pool.Close() }
