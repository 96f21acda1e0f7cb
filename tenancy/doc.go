// Package tenancy will hold tenant IDs, token verification, per-tenant
// quotas and rate limits. It is not implemented yet.
package tenancy
