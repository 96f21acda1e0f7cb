package server

import (
	"context"
	"errors"

	"github.com/unosync/uno/crdt"
	usync "github.com/unosync/uno/sync"
)

// Errors returned by event logs.
var (
	// ErrLogClosed is returned by every method of a closed log.
	ErrLogClosed = errors.New("server: log closed")
	// ErrInvalidTenant reports an empty or over-long tenant ID.
	ErrInvalidTenant = errors.New("server: invalid tenant")
)

// MaxTenantBytes is the longest tenant ID.
const MaxTenantBytes = 128

// Log is a per-tenant, append-only event log of transactions: the system
// of record. Two implementations pass the same conformance suite
// (package logtest): the embedded SQLite one and (next) Postgres.
//
// The tenant is always an explicit argument; one tenant's calls never see
// another's entries.
type Log interface {
	// Append appends transactions of one site, in sequence order,
	// durably, in one commit. It is idempotent: a transaction whose
	// (site, seq) the tenant's log already holds is skipped and gets 0.
	// Each appended transaction gets the tenant's next sequence number:
	// numbers are gap-free and follow commit order, so a reader that saw
	// n has seen everything up to n. A transaction that skips some of its
	// site's earlier ones fails the whole call with an error matching
	// usync.ErrGap, appending nothing.
	Append(ctx context.Context, tenant string, txs []crdt.Tx) ([]uint64, error)

	// HighWater returns the highest sequence number of site in the
	// tenant's log (0 if none).
	HighWater(ctx context.Context, tenant string, site crdt.SiteID) (uint64, error)

	// Head returns the tenant's newest sequence number (0 if empty).
	Head(ctx context.Context, tenant string) (uint64, error)

	// Read returns up to limit entries of the tenant with sequence numbers
	// above after, in order.
	Read(ctx context.Context, tenant string, after uint64, limit int) ([]usync.Change, error)

	// Wait returns a channel that is closed once the tenant's head is
	// above seq (at once if it already is), or when ctx ends. It is how
	// tailing readers wake up without polling.
	Wait(ctx context.Context, tenant string, seq uint64) <-chan struct{}

	// Close releases the log.
	Close() error
}

func validTenant(t string) error {
	if t == "" || len(t) > MaxTenantBytes {
		return ErrInvalidTenant
	}
	return nil
}

// Snapshotter is the optional capability of a log with a rows read model:
// reading it in (collection, row) order, for bootstrapping clients.
type Snapshotter interface {
	// SnapshotRows returns up to limit rows of the tenant after the key
	// after, in (collection, row) order, with their merge states.
	SnapshotRows(ctx context.Context, tenant string, after crdt.RowKey, limit int) ([]usync.SnapshotRow, error)
	// SnapshotSize returns the number of rows and their state bytes.
	SnapshotSize(ctx context.Context, tenant string) (rows, bytes uint64, err error)
	// SnapshotSites returns every site's high-water mark. Read it after
	// the snapshot's head and before its rows.
	SnapshotSites(ctx context.Context, tenant string) ([]usync.SiteMark, error)
}

// encodedTxs is the optional capability of a log that keeps its newest
// entries encoded: Encoded returns the encodings of entries (consecutive,
// as Read returns them), or false.
type encodedTxs interface {
	Encoded(tenant string, entries []usync.Change) ([][]byte, bool)
}

// rowStates is the optional capability of a log with a rows read model:
// the current states of some rows (no State for a row never written).
type rowStates interface {
	RowStates(ctx context.Context, tenant string, keys []crdt.RowKey) ([]usync.SnapshotRow, error)
}
