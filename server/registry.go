package server

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	gosync "sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	usync "github.com/unosync/uno/sync"
)

// Tenant is a tenant's entry in the registry.
type Tenant struct {
	ID        string
	Suspended bool
	// OpsPerSec caps the transactions a tenant may push per second, per
	// server node (0: no cap).
	OpsPerSec int
	// MaxRows and MaxBytes cap the rows the tenant's read model holds and
	// their merge states' bytes (0: no cap). A push that would go over is
	// refused with CodeQuotaExceeded. Sizes are checked as of a few
	// seconds ago, so a burst can overshoot by what arrives meanwhile.
	MaxRows, MaxBytes int64
	// RetentionDays is how long log entries are kept (0: forever). Older
	// ones are deleted once every projection has folded them; a client
	// whose cursor falls behind the log bootstraps from a snapshot.
	RetentionDays int
	CreatedAt     time.Time
}

func (t *Tenant) validate() error {
	if err := validTenant(t.ID); err != nil {
		return fmt.Errorf("%w: %q", err, t.ID)
	}
	if t.OpsPerSec < 0 || t.MaxRows < 0 || t.MaxBytes < 0 || t.RetentionDays < 0 {
		return errors.New("tenant registry: limits must not be negative (0: no limit)")
	}
	return nil
}

// ErrUnknownTenant reports a tenant the registry does not hold.
var ErrUnknownTenant = errors.New("server: unknown tenant")

// Registry knows which tenants exist and their limits. With one configured
// (Config.Registry), sessions of unknown or suspended tenants are refused
// with CodeForbidden and pushes over a tenant's rate with CodeRateLimited.
type Registry interface {
	Tenant(ctx context.Context, id string) (Tenant, error)
}

// PGRegistry is the tenant registry in Postgres (table uno_tenants), with
// the administration the uno tenant command uses.
type PGRegistry struct {
	pool *pgxpool.Pool
}

// OpenPGRegistry connects to the registry at dsn.
func OpenPGRegistry(ctx context.Context, dsn string) (*PGRegistry, error) {
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("tenant registry: %w", err)
	}
	return &PGRegistry{pool: pool}, nil
}

// Close releases the registry.
func (r *PGRegistry) Close() { r.pool.Close() }

// Tenant implements Registry.
func (r *PGRegistry) Tenant(ctx context.Context, id string) (Tenant, error) {
	t := Tenant{ID: id}
	var status string
	err := r.pool.QueryRow(ctx, `SELECT status, ops_per_sec, max_rows, max_bytes, retention_days, created_at FROM uno_tenants WHERE tenant_id = $1`, id).
		Scan(&status, &t.OpsPerSec, &t.MaxRows, &t.MaxBytes, &t.RetentionDays, &t.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return Tenant{}, fmt.Errorf("%w: %q", ErrUnknownTenant, id)
	}
	if err != nil {
		return Tenant{}, fmt.Errorf("tenant registry: %w", err)
	}
	t.Suspended = status == "suspended"
	return t, nil
}

// Create adds a tenant.
func (r *PGRegistry) Create(ctx context.Context, t Tenant) error {
	if err := t.validate(); err != nil {
		return err
	}
	_, err := r.pool.Exec(ctx, `INSERT INTO uno_tenants (tenant_id, ops_per_sec, max_rows, max_bytes, retention_days) VALUES ($1, $2, $3, $4, $5)`,
		t.ID, t.OpsPerSec, t.MaxRows, t.MaxBytes, t.RetentionDays)
	if err != nil {
		return fmt.Errorf("create tenant %q: %w", t.ID, err)
	}
	return nil
}

// SetLimits changes a tenant's limits (OpsPerSec, MaxRows, MaxBytes,
// RetentionDays) to t's. Sessions opened after it see them.
func (r *PGRegistry) SetLimits(ctx context.Context, t Tenant) error {
	if err := t.validate(); err != nil {
		return err
	}
	tag, err := r.pool.Exec(ctx, `UPDATE uno_tenants SET ops_per_sec = $2, max_rows = $3, max_bytes = $4, retention_days = $5 WHERE tenant_id = $1`,
		t.ID, t.OpsPerSec, t.MaxRows, t.MaxBytes, t.RetentionDays)
	if err != nil {
		return fmt.Errorf("set limits of tenant %q: %w", t.ID, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("%w: %q", ErrUnknownTenant, t.ID)
	}
	return nil
}

// List returns every tenant, by ID.
func (r *PGRegistry) List(ctx context.Context) ([]Tenant, error) {
	rows, err := r.pool.Query(ctx, `SELECT tenant_id, status, ops_per_sec, max_rows, max_bytes, retention_days, created_at FROM uno_tenants ORDER BY tenant_id`)
	if err != nil {
		return nil, fmt.Errorf("list tenants: %w", err)
	}
	defer rows.Close()
	var out []Tenant
	for rows.Next() {
		var t Tenant
		var status string
		if err := rows.Scan(&t.ID, &status, &t.OpsPerSec, &t.MaxRows, &t.MaxBytes, &t.RetentionDays, &t.CreatedAt); err != nil {
			return nil, err
		}
		t.Suspended = status == "suspended"
		out = append(out, t)
	}
	return out, rows.Err()
}

// SetSuspended suspends or resumes a tenant.
func (r *PGRegistry) SetSuspended(ctx context.Context, id string, suspended bool) error {
	status := "active"
	if suspended {
		status = "suspended"
	}
	tag, err := r.pool.Exec(ctx, `UPDATE uno_tenants SET status = $2 WHERE tenant_id = $1`, id, status)
	if err != nil {
		return fmt.Errorf("set tenant %q %s: %w", id, status, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("%w: %q", ErrUnknownTenant, id)
	}
	return nil
}

// Delete removes a tenant and all its data, in one transaction. Connect
// as the tables' owner: it runs with the tenant set so that row-level
// security lets it see the rows.
func (r *PGRegistry) Delete(ctx context.Context, id string) error {
	return pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT set_config('uno.tenant', $1, true)`, id); err != nil {
			return err
		}
		// Every tenant table: the log's and the projections'.
		rows, err := tx.Query(ctx, `SELECT c.relname FROM pg_class c
			WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'r' AND c.relname <> 'uno_tenants'
			AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped)`)
		if err != nil {
			return err
		}
		tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		for _, t := range tables {
			if _, err := tx.Exec(ctx, `DELETE FROM `+pgx.Identifier{t}.Sanitize()+` WHERE tenant_id = $1`, id); err != nil {
				return fmt.Errorf("delete tenant %q: %s: %w", id, t, err)
			}
		}
		tag, err := tx.Exec(ctx, `DELETE FROM uno_tenants WHERE tenant_id = $1`, id)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("%w: %q", ErrUnknownTenant, id)
		}
		return nil
	})
}

// Export writes a tenant's log as JSON lines, oldest first: one object per
// entry with its seq, site (hex), site_seq and the encoded transaction
// (base64 of crdt.EncodeTx bytes).
func (r *PGRegistry) Export(ctx context.Context, id string, w io.Writer) (int, error) {
	enc := json.NewEncoder(w)
	n := 0
	err := pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT set_config('uno.tenant', $1, true)`, id); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT seq, site, site_seq, tx FROM uno_events WHERE tenant_id = $1 ORDER BY seq`, id)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var seq, siteSeq int64
			var site, b []byte
			if err := rows.Scan(&seq, &site, &siteSeq, &b); err != nil {
				return err
			}
			if err := enc.Encode(map[string]any{"seq": seq, "site": fmt.Sprintf("%x", site), "site_seq": siteSeq, "tx": base64.StdEncoding.EncodeToString(b)}); err != nil {
				return err
			}
			n++
		}
		return rows.Err()
	})
	if err != nil {
		return n, fmt.Errorf("export tenant %q: %w", id, err)
	}
	return n, nil
}

// rateLimiter is a token bucket per tenant: OpsPerSec tokens a second,
// bursts up to one second's worth.
type rateLimiter struct {
	mu      gosync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

// allow takes n tokens from the tenant's bucket, or reports it cannot. A
// push larger than one second's worth needs a full bucket.
func (rl *rateLimiter) allow(tenant string, perSec int, n int, now time.Time) bool {
	if perSec <= 0 {
		return true
	}
	n = min(n, perSec)
	rl.mu.Lock()
	defer rl.mu.Unlock()
	if rl.buckets == nil {
		rl.buckets = map[string]*bucket{}
	}
	b := rl.buckets[tenant]
	if b == nil {
		b = &bucket{tokens: float64(perSec), last: now}
		rl.buckets[tenant] = b
	}
	b.tokens = min(float64(perSec), b.tokens+now.Sub(b.last).Seconds()*float64(perSec))
	b.last = now
	if b.tokens < float64(n) {
		return false
	}
	b.tokens -= float64(n)
	return true
}

// admit checks the registry for a session's tenant.
func (s *Server) admit(ctx context.Context, tenant string) (Tenant, error) {
	if s.cfg.Registry == nil {
		return Tenant{ID: tenant}, nil
	}
	t, err := s.cfg.Registry.Tenant(ctx, tenant)
	switch {
	case errors.Is(err, ErrUnknownTenant):
		return Tenant{}, usync.Errorf(usync.CodeForbidden, "tenant %q is not registered", tenant)
	case err != nil:
		return Tenant{}, usync.Errorf(usync.CodeUnavailable, "tenant registry: %v", err)
	case t.Suspended:
		return Tenant{}, usync.Errorf(usync.CodeForbidden, "tenant %q is suspended", tenant)
	}
	return t, nil
}
