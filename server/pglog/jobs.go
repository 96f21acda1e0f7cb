package pglog

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
)

// jobsFloors is the table of live sessions' floors that the background
// jobs share between nodes (package server/jobs, which creates it too
// where the log's role may).
const jobsFloors = `CREATE TABLE IF NOT EXISTS jobs_floors (
	node    TEXT NOT NULL,
	tenant  TEXT NOT NULL,
	low     BIGINT NOT NULL,
	seen_ms BIGINT NOT NULL,
	PRIMARY KEY (node, tenant))`

// migrateJobs brings the background jobs' tables along with the log's
// schema: River's (its own migrator, which locks each step) and the
// floors table at the newest version; none at version 0.
func migrateJobs(ctx context.Context, pool *pgxpool.Pool, target int) error {
	if target != 0 && target != len(migrations) {
		return nil
	}
	m, err := rivermigrate.New(riverpgxv5.New(pool), nil)
	if err != nil {
		return fmt.Errorf("migrate jobs: %w", err)
	}
	if target == 0 {
		if _, err := pool.Exec(ctx, `DROP TABLE IF EXISTS jobs_floors`); err != nil {
			return fmt.Errorf("migrate jobs: %w", err)
		}
		if _, err := m.Migrate(ctx, rivermigrate.DirectionDown, &rivermigrate.MigrateOpts{TargetVersion: -1}); err != nil {
			return fmt.Errorf("migrate jobs: %w", err)
		}
		return nil
	}
	if _, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return fmt.Errorf("migrate jobs: %w", err)
	}
	if _, err := pool.Exec(ctx, jobsFloors); err != nil {
		return fmt.Errorf("migrate jobs: %w", err)
	}
	return nil
}
