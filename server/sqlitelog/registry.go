package sqlitelog

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/unosync/uno/tenancy"
)

// Registry is the tenant registry in the log's file (table tenants),
// with the administration the uno tenant command uses. It is the
// embedded twin of pglog.Registry and behaves the same (the registry
// suite in server/logtest runs against both).
type Registry struct {
	db  *sql.DB
	log *Log // the log sharing db, told of deletions; nil if opened apart
}

var _ tenancy.Admin = (*Registry)(nil)

// Registry returns the tenant registry in the log's file. It shares the
// log's database: closing it does nothing, Log.Close closes both. A
// tenant deleted through it is also forgotten by the log's memory.
func (l *Log) Registry() *Registry { return &Registry{db: l.db, log: l} }

// OpenRegistry opens the tenant registry in the log file at path,
// creating the file or moving its schema up as Open does. A server
// running on the same file keeps the heads and newest entries of its
// tenants in memory, which a deletion through this registry does not
// reach: delete tenants through the server log's [Log.Registry], or with
// the server stopped.
func OpenRegistry(ctx context.Context, path string) (*Registry, error) {
	db, err := openDB(ctx, path, "immediate")
	if err != nil {
		return nil, fmt.Errorf("tenant registry: %w", err)
	}
	return &Registry{db: db}, nil
}

// Close releases the registry (see Log.Registry for a shared one).
func (r *Registry) Close() {
	if r.log == nil {
		r.db.Close()
	}
}

func (r *Registry) check() error {
	if r.log != nil {
		return r.log.check()
	}
	return nil
}

const sqlTenantColumns = `tenant, status, ops_per_sec, max_rows, max_bytes, retention_days, created_at`

func scanTenant(row interface{ Scan(...any) error }) (tenancy.Tenant, error) {
	var t tenancy.Tenant
	var status string
	var created int64
	if err := row.Scan(&t.ID, &status, &t.OpsPerSec, &t.MaxRows, &t.MaxBytes, &t.RetentionDays, &created); err != nil {
		return tenancy.Tenant{}, err
	}
	t.Suspended = status == "suspended"
	t.CreatedAt = time.UnixMilli(created)
	return t, nil
}

// Tenant implements tenancy.Registry.
func (r *Registry) Tenant(ctx context.Context, id string) (tenancy.Tenant, error) {
	if err := r.check(); err != nil {
		return tenancy.Tenant{}, err
	}
	t, err := scanTenant(r.db.QueryRowContext(ctx, `SELECT `+sqlTenantColumns+` FROM tenants WHERE tenant = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return tenancy.Tenant{}, fmt.Errorf("%w: %q", tenancy.ErrUnknownTenant, id)
	}
	if err != nil {
		return tenancy.Tenant{}, fmt.Errorf("tenant registry: %w", err)
	}
	return t, nil
}

// List implements tenancy.Registry: every tenant, by ID (byte order).
func (r *Registry) List(ctx context.Context) ([]tenancy.Tenant, error) {
	if err := r.check(); err != nil {
		return nil, err
	}
	rows, err := r.db.QueryContext(ctx, `SELECT `+sqlTenantColumns+` FROM tenants ORDER BY tenant`)
	if err != nil {
		return nil, fmt.Errorf("list tenants: %w", err)
	}
	defer rows.Close()
	var out []tenancy.Tenant
	for rows.Next() {
		t, err := scanTenant(rows)
		if err != nil {
			return nil, fmt.Errorf("list tenants: %w", err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list tenants: %w", err)
	}
	return out, nil
}

// Retained implements tenancy.Registry: the tenants with a retention, by
// ID, with only ID and RetentionDays set.
func (r *Registry) Retained(ctx context.Context) ([]tenancy.Tenant, error) {
	if err := r.check(); err != nil {
		return nil, err
	}
	rows, err := r.db.QueryContext(ctx, `SELECT tenant, retention_days FROM tenants WHERE retention_days > 0 ORDER BY tenant`)
	if err != nil {
		return nil, fmt.Errorf("list retained tenants: %w", err)
	}
	defer rows.Close()
	var out []tenancy.Tenant
	for rows.Next() {
		var t tenancy.Tenant
		if err := rows.Scan(&t.ID, &t.RetentionDays); err != nil {
			return nil, fmt.Errorf("list retained tenants: %w", err)
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// Create adds a tenant, active, with t's limits; ErrTenantExists if the
// registry holds it.
func (r *Registry) Create(ctx context.Context, t tenancy.Tenant) error {
	if err := t.Validate(); err != nil {
		return err
	}
	if err := r.check(); err != nil {
		return err
	}
	res, err := r.db.ExecContext(ctx, `INSERT INTO tenants (tenant, ops_per_sec, max_rows, max_bytes, retention_days, created_at)
		VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (tenant) DO NOTHING`,
		t.ID, t.OpsPerSec, t.MaxRows, t.MaxBytes, t.RetentionDays, time.Now().UnixMilli())
	if err != nil {
		return fmt.Errorf("create tenant %q: %w", t.ID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
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
	return r.update(ctx, t.ID, "set limits of", `UPDATE tenants SET ops_per_sec = ?2, max_rows = ?3, max_bytes = ?4, retention_days = ?5 WHERE tenant = ?1`,
		t.OpsPerSec, t.MaxRows, t.MaxBytes, t.RetentionDays)
}

// SetSuspended suspends or resumes a tenant.
func (r *Registry) SetSuspended(ctx context.Context, id string, suspended bool) error {
	status := "active"
	if suspended {
		status = "suspended"
	}
	return r.update(ctx, id, "suspend or resume", `UPDATE tenants SET status = ?2 WHERE tenant = ?1`, status)
}

// update runs one update of the tenant's registry row.
func (r *Registry) update(ctx context.Context, id, what, q string, args ...any) error {
	if err := r.check(); err != nil {
		return err
	}
	res, err := r.db.ExecContext(ctx, q, append([]any{id}, args...)...)
	if err != nil {
		return fmt.Errorf("%s tenant %q: %w", what, id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("%w: %q", tenancy.ErrUnknownTenant, id)
	}
	return nil
}

// Delete removes a tenant and all its data (its entries, head, sites'
// marks and runs, rows, and its rows and checkpoints in every
// projection) in one transaction; ErrUnknownTenant, deleting nothing, if
// the registry does not hold it. The tenant's log starts again from
// sequence number 1, and a tenant created again with its ID finds none
// of it.
func (r *Registry) Delete(ctx context.Context, id string) error {
	if err := r.check(); err != nil {
		return err
	}
	err := r.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM tenants WHERE tenant = ?`, id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("%w: %q", tenancy.ErrUnknownTenant, id)
		}
		// Every tenant table: the log's (entries, heads, sites' marks and
		// runs, rows, projections' checkpoints) and the projections'.
		tables, err := queryTenantTables(ctx, tx)
		if err != nil {
			return err
		}
		for _, table := range tables {
			if _, err := tx.ExecContext(ctx, `DELETE FROM "`+table+`" WHERE tenant = ?`, id); err != nil {
				return fmt.Errorf("%s: %w", table, err)
			}
		}
		return nil
	})
	if r.log != nil {
		r.log.forget(id) // after the commit: see forget
	}
	if err != nil {
		return fmt.Errorf("delete tenant %q: %w", id, err)
	}
	return nil
}

// queryTenantTables lists the tables with a tenant column but the
// registry's own: every projection's table leads its key with it.
// Projection and log table names are lower-case letters, digits and _.
func queryTenantTables(ctx context.Context, tx *sql.Tx) ([]string, error) {
	tables, err := queryTenants(ctx, tx, `SELECT m.name FROM sqlite_schema m
		WHERE m.type = 'table' AND m.name <> 'tenants'
		AND EXISTS (SELECT 1 FROM pragma_table_info(m.name) p WHERE p.name = 'tenant') ORDER BY m.name`)
	if err != nil {
		return nil, err
	}
	for _, name := range tables {
		if !projectionName.MatchString(name) {
			return nil, fmt.Errorf("table %q: not a name uno makes", name)
		}
	}
	return tables, nil
}

func (r *Registry) inTx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := r.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}

// Export writes a tenant's log as JSON lines, oldest first, as
// pglog.Registry does: one object per entry with its seq, site (hex),
// site_seq and the encoded transaction (base64 of crdt.EncodeTx bytes).
// It returns the number of entries; a tenant with no log has none.
func (r *Registry) Export(ctx context.Context, id string, w io.Writer) (int, error) {
	if err := r.check(); err != nil {
		return 0, err
	}
	// One query: one read transaction, one state of the log.
	rows, err := r.db.QueryContext(ctx, `SELECT seq, site, site_seq, tx FROM events WHERE tenant = ? ORDER BY seq`, id)
	if err != nil {
		return 0, fmt.Errorf("export tenant %q: %w", id, err)
	}
	defer rows.Close()
	enc := json.NewEncoder(w)
	n := 0
	for rows.Next() {
		var seq, siteSeq int64
		var site, b []byte
		if err := rows.Scan(&seq, &site, &siteSeq, &b); err != nil {
			return n, fmt.Errorf("export tenant %q: %w", id, err)
		}
		if err := enc.Encode(map[string]any{"seq": seq, "site": fmt.Sprintf("%x", site), "site_seq": siteSeq, "tx": base64.StdEncoding.EncodeToString(b)}); err != nil {
			return n, fmt.Errorf("export tenant %q: %w", id, err)
		}
		n++
	}
	if err := rows.Err(); err != nil {
		return n, fmt.Errorf("export tenant %q: %w", id, err)
	}
	return n, nil
}
