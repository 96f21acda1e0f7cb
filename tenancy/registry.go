package tenancy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

// Tenant is a tenant's entry in a registry: whether it may connect, and
// its limits.
type Tenant struct {
	ID        string
	Suspended bool
	// OpsPerSec caps the transactions a tenant may push per second, per
	// server node (0: no cap).
	OpsPerSec int
	// MaxRows and MaxBytes cap the rows the tenant's read model holds and
	// their merge states' bytes (0: no cap). A push that would go over is
	// refused with CodeQuotaExceeded; the quota counts the incoming
	// transaction, so a tenant never goes over by more than one.
	MaxRows, MaxBytes int64
	// RetentionDays is how long log entries are kept (0: forever). Older
	// ones are deleted once every projection has folded them; a client
	// whose cursor falls behind the log bootstraps from a snapshot.
	RetentionDays int
	CreatedAt     time.Time
}

// Validate checks the ID and that no limit is negative.
func (t *Tenant) Validate() error {
	if err := ValidTenant(t.ID); err != nil {
		return err
	}
	if t.OpsPerSec < 0 || t.MaxRows < 0 || t.MaxBytes < 0 || t.RetentionDays < 0 {
		return fmt.Errorf("%w: limits must not be negative (0: no limit)", ErrInvalidLimits)
	}
	return nil
}

// Registry errors.
var (
	// ErrUnknownTenant reports a tenant the registry does not hold.
	ErrUnknownTenant = errors.New("tenancy: unknown tenant")
	// ErrTenantExists reports creating a tenant the registry holds.
	ErrTenantExists = errors.New("tenancy: tenant exists")
	// ErrInvalidLimits reports negative limits.
	ErrInvalidLimits = errors.New("tenancy: invalid limits")
)

// Registry knows which tenants exist and their limits. With one
// configured (server.Config.Registry), sessions of unknown or suspended
// tenants are refused and each tenant's limits are enforced. Both event
// logs offer one (package server/sqlitelog and server/pglog).
type Registry interface {
	// Tenant returns the tenant's entry, or an error wrapping
	// ErrUnknownTenant.
	Tenant(ctx context.Context, id string) (Tenant, error)
	// Retained returns the tenants that have a retention, by ID, with
	// only ID and RetentionDays set: what the server's retention job
	// needs, and no more (the server's role may not list tenants).
	Retained(ctx context.Context) ([]Tenant, error)
}

// Admin is a registry that can also be administered (uno tenant).
type Admin interface {
	Registry
	// List returns every tenant, by ID.
	List(ctx context.Context) ([]Tenant, error)
	// Create adds a tenant (ErrTenantExists if it is there).
	Create(ctx context.Context, t Tenant) error
	// SetLimits changes a tenant's limits to t's.
	SetLimits(ctx context.Context, t Tenant) error
	// SetSuspended suspends or resumes a tenant.
	SetSuspended(ctx context.Context, id string, suspended bool) error
	// Delete removes a tenant and all its data.
	Delete(ctx context.Context, id string) error
	// Export writes a tenant's log as JSON lines, oldest first, and
	// returns the number of entries.
	Export(ctx context.Context, id string, w io.Writer) (int, error)
	// Close releases the registry.
	Close()
}
