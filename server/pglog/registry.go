package pglog

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/unosync/uno/tenancy"
)

// Registry is the tenant registry in Postgres (table uno_tenants), with
// the administration the uno tenant command uses.
type Registry struct {
	pool *pgxpool.Pool
}

// OpenRegistry connects to the registry at dsn.
func OpenRegistry(ctx context.Context, dsn string) (*Registry, error) {
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("tenant registry: %w", err)
	}
	return &Registry{pool: pool}, nil
}

// Close releases the registry.
func (r *Registry) Close() { r.pool.Close() }

// Tenant implements tenancy.Registry.
func (r *Registry) Tenant(ctx context.Context, id string) (tenancy.Tenant, error) {
	t := tenancy.Tenant{ID: id}
	var status string
	// In a transaction scoped to the tenant: the server's role sees only
	// that tenant's entry (row-level security on uno_tenants).
	err := pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT set_config('uno.tenant', $1, true)`, id); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `SELECT status, ops_per_sec, max_rows, max_bytes, retention_days, created_at FROM uno_tenants WHERE tenant_id = $1`, id).
			Scan(&status, &t.OpsPerSec, &t.MaxRows, &t.MaxBytes, &t.RetentionDays, &t.CreatedAt)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return tenancy.Tenant{}, fmt.Errorf("%w: %q", tenancy.ErrUnknownTenant, id)
	}
	if err != nil {
		return tenancy.Tenant{}, fmt.Errorf("tenant registry: %w", err)
	}
	t.Suspended = status == "suspended"
	return t, nil
}

// Create adds a tenant, active, with t's limits; ErrTenantExists if the
// registry holds it.
func (r *Registry) Create(ctx context.Context, t tenancy.Tenant) error {
	if err := t.Validate(); err != nil {
		return err
	}
	tag, err := r.pool.Exec(ctx, `INSERT INTO uno_tenants (tenant_id, ops_per_sec, max_rows, max_bytes, retention_days) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (tenant_id) DO NOTHING`,
		t.ID, t.OpsPerSec, t.MaxRows, t.MaxBytes, t.RetentionDays)
	if err != nil {
		return fmt.Errorf("create tenant %q: %w", t.ID, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("%w: %q", tenancy.ErrTenantExists, t.ID)
	}
	return nil
}

// SetLimits changes a tenant's limits (OpsPerSec, MaxRows, MaxBytes,
// RetentionDays) to t's. Sessions opened after it see them.
func (r *Registry) SetLimits(ctx context.Context, t tenancy.Tenant) error {
	if err := t.Validate(); err != nil {
		return err
	}
	tag, err := r.pool.Exec(ctx, `UPDATE uno_tenants SET ops_per_sec = $2, max_rows = $3, max_bytes = $4, retention_days = $5 WHERE tenant_id = $1`,
		t.ID, t.OpsPerSec, t.MaxRows, t.MaxBytes, t.RetentionDays)
	if err != nil {
		return fmt.Errorf("set limits of tenant %q: %w", t.ID, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("%w: %q", tenancy.ErrUnknownTenant, t.ID)
	}
	return nil
}

// Retained implements tenancy.Registry, through uno_retained_tenants(), a
// function that runs as the tables' owner and returns only IDs and
// retentions.
func (r *Registry) Retained(ctx context.Context) ([]tenancy.Tenant, error) {
	rows, err := r.pool.Query(ctx, `SELECT tenant_id, retention_days FROM uno_retained_tenants()`)
	if err != nil {
		return nil, fmt.Errorf("list retained tenants: %w", err)
	}
	var out []tenancy.Tenant
	for rows.Next() {
		var t tenancy.Tenant
		if err := rows.Scan(&t.ID, &t.RetentionDays); err != nil {
			rows.Close()
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// List returns every tenant, by ID (byte order, as the SQLite
// registry). Connect as the tables' owner: the
// server's role sees none (row-level security).
func (r *Registry) List(ctx context.Context) ([]tenancy.Tenant, error) {
	rows, err := r.pool.Query(ctx, `SELECT tenant_id, status, ops_per_sec, max_rows, max_bytes, retention_days, created_at FROM uno_tenants ORDER BY tenant_id COLLATE "C"`)
	if err != nil {
		return nil, fmt.Errorf("list tenants: %w", err)
	}
	defer rows.Close()
	var out []tenancy.Tenant
	for rows.Next() {
		var t tenancy.Tenant
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
func (r *Registry) SetSuspended(ctx context.Context, id string, suspended bool) error {
	status := "active"
	if suspended {
		status = "suspended"
	}
	tag, err := r.pool.Exec(ctx, `UPDATE uno_tenants SET status = $2 WHERE tenant_id = $1`, id, status)
	if err != nil {
		return fmt.Errorf("set tenant %q %s: %w", id, status, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("%w: %q", tenancy.ErrUnknownTenant, id)
	}
	return nil
}

// Delete removes a tenant and all its data, in one transaction. Connect
// as the tables' owner: it runs with the tenant set so that row-level
// security lets it see the rows.
func (r *Registry) Delete(ctx context.Context, id string) error {
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
			return fmt.Errorf("%w: %q", tenancy.ErrUnknownTenant, id)
		}
		return nil
	})
}

// Export writes a tenant's log as JSON lines, oldest first: one object per
// entry with its seq, site (hex), site_seq and the encoded transaction
// (base64 of crdt.EncodeTx bytes).
func (r *Registry) Export(ctx context.Context, id string, w io.Writer) (int, error) {
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
