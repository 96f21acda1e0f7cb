package store

import (
	"context"
	"errors"

	"github.com/unosync/uno/conflict"
	"github.com/unosync/uno/crdt"
)

// Errors returned by stores. Wrapped errors keep these in their chain:
// match them with errors.Is.
var (
	// ErrClosed is returned by every method of a closed store.
	ErrClosed = errors.New("store: closed")
	// ErrInvalidName reports a collection or field name that is not
	// [a-z][a-z0-9_]{0,62} (or is reserved). It is crdt.ErrInvalidName,
	// the error of the rules clients and servers share.
	ErrInvalidName = crdt.ErrInvalidName
	// ErrInvalidQuery reports a query that cannot run: an unknown operator,
	// a value that is not JSON-compatible, a negative limit.
	ErrInvalidQuery = errors.New("store: invalid query")
	// ErrInvalidSchema reports a schema that cannot be used.
	ErrInvalidSchema = errors.New("store: invalid schema")
	// ErrMigration reports a failed or impossible migration.
	ErrMigration = errors.New("store: migration")
	// ErrGap reports a transaction whose sequence number skips some of its
	// site's earlier transactions: they must be applied first.
	ErrGap = errors.New("store: gap in a site's transactions")
	// ErrCorrupt reports stored data that does not decode.
	ErrCorrupt = errors.New("store: corrupt data")
	// ErrLostWrites reports, from Ack, that the server holds transactions
	// of this replica that its database no longer has: a power cut lost
	// the last commits (relaxed durability), or the file was restored from
	// an older copy. The store has moved its sequence number past them, so
	// new writes never reuse one, and its cursor back to 0: the next
	// connection bootstraps from the server's rows, which hold them.
	ErrLostWrites = errors.New("store: the server holds writes of this replica that its database lost")
	// ErrInUse reports, from OpenSQLite on Unix, a database file another
	// process has open as a store: a store is used by one process at a
	// time (it is one replica, with one outbox and one sync loop). Close
	// it there first, or open a copy.
	ErrInUse = errors.New("store: the database is open in another process (a store is used by one process at a time)")
)

// Store is a replica's local database: the merge state of every row, the
// materialised collections, the outbox of local transactions not yet
// acknowledged by a server, the conflict log and the replica's identity
// and clock.
//
// Two implementations pass the same conformance suite (package storetest):
// [SQLite], the real one, and [Memory], for tests. Methods are safe for
// concurrent use; writes are serialised.
type Store interface {
	// Site returns the replica's site ID, chosen when the store was created.
	Site() crdt.SiteID

	// Schema returns the schema the store was opened with (nil if none).
	Schema() *Schema

	// Write runs fn against a builder for the next local transaction and
	// commits what it built: the rows' new states, the materialised values,
	// the outbox entry and the clock, in one atomic transaction. If fn
	// returns an error, or builds no op, nothing is written and no sequence
	// number is used. The returned Commit's Tx is nil when nothing was built.
	// What fn built must pass crdt.ValidateTx (with the store's declared
	// schema) and leave every row it writes within crdt's MaxRowBytes:
	// otherwise Write fails with the crdt error (crdt.ErrInvalidName,
	// ErrInvalidID, ErrInvalidValue, ErrUndeclared, ErrRowTooLarge) and
	// writes nothing.
	Write(ctx context.Context, fn func(b *crdt.Builder) error) (*Commit, error)

	// Apply merges transactions from other replicas, in order, in one
	// atomic transaction. Transactions already applied (by site and
	// sequence number) are skipped, so delivering one twice has no second
	// effect. Each site's transactions apply in order: one that skips a
	// sequence number fails the batch with an error wrapping ErrGap. A transaction stamped too far in the future (see
	// [crdt.Clock.Observe]) fails the whole batch with an error wrapping
	// crdt.ErrClockDrift; one that fails crdt.ValidateTx (without the
	// declared schema: the server enforces its own) with its error, such
	// as crdt.ErrMalformedOp or crdt.ErrInvalidValue.
	Apply(ctx context.Context, txs []*crdt.Tx) (*Commit, error)

	// ApplyAt is Apply that also moves the sync cursor (the last tenant
	// sequence number received from a server) to cursor, in the same
	// atomic transaction. The cursor never goes backwards. A server's log
	// already orders every site's transactions, and a subscription may
	// leave some out, so ApplyAt accepts a site's sequence with gaps.
	ApplyAt(ctx context.Context, txs []*crdt.Tx, cursor uint64) (*Commit, error)

	// MergeRows joins row states received from a server (a snapshot) into
	// the replica, in one atomic transaction, and moves the sync cursor to
	// cursor (0 leaves it). Merging is a join, so rows newer than what the
	// replica holds, older, or with its own pending edits all end right.
	// marks are sites' high-water marks as of the snapshot: they are
	// raised, never lowered.
	MergeRows(ctx context.Context, rows []RowState, marks map[crdt.SiteID]uint64, cursor uint64) (*Commit, error)

	// ApplyRowsAt is ApplyAt and MergeRows (with no marks) in one atomic
	// transaction: a server's batch of log entries with the whole states
	// of the filtered rows they changed.
	ApplyRowsAt(ctx context.Context, txs []*crdt.Tx, rows []RowState, cursor uint64) (*Commit, error)

	// Receive is ApplyRowsAt and Ack(ack) in one transaction (ack 0: no
	// acknowledgement): what arrived from the server together, stored
	// with one commit. An ack above the replica's last local write is
	// Ack's ErrLostWrites, and nothing is applied.
	Receive(ctx context.Context, txs []*crdt.Tx, rows []RowState, cursor, ack uint64) (*Commit, error)

	// Subscriptions returns what SetSubscriptions last stored (nil if
	// nothing): the sync client's record of the subscriptions the replica
	// holds, opaque to the store.
	Subscriptions(ctx context.Context) ([]byte, error)
	// SetSubscriptions stores b durably.
	SetSubscriptions(ctx context.Context, b []byte) error

	// Observe folds a trusted timestamp (the server's clock) into the
	// replica's clock and persists it, so later writes are stamped after it.
	Observe(ctx context.Context, ts crdt.Timestamp) error

	// Reject rolls back a local transaction a server refused: each row it
	// touched takes the server's state (rows; an empty Row for one the
	// server never had) with this replica's later pending transactions
	// replayed on it, and the refusal joins the rejection feed, in one
	// atomic transaction.
	Reject(ctx context.Context, r Rejection, rows []RowState) (*Commit, error)

	// Rejections returns up to limit rejections with IDs above after,
	// oldest first.
	Rejections(ctx context.Context, after uint64, limit int) ([]Rejection, error)

	// Cursor returns the sync cursor (0 before the first sync).
	Cursor(ctx context.Context) (uint64, error)

	// Row returns the merge state of a row, alive or deleted, or nil if the
	// replica never saw it.
	Row(ctx context.Context, collection, id string) (*crdt.Row, error)

	// Query returns the alive rows of a collection that match q, in its order.
	Query(ctx context.Context, q Query) ([]Doc, error)

	// Pending returns the number of local transactions not yet
	// acknowledged. It is cheap (a count the store keeps, not a count of
	// the outbox): sync loops call it on every pass.
	Pending(ctx context.Context) (int, error)

	// Outbox returns up to limit unacknowledged local transactions with
	// sequence numbers above after, in order.
	Outbox(ctx context.Context, after uint64, limit int) ([]*crdt.Tx, error)

	// Ack drops the outbox entries up to and including seq. A seq above
	// the replica's last local one fails with ErrLostWrites (see there).
	Ack(ctx context.Context, seq uint64) error

	// Runs returns the outbox's runs, in order: each stretch of its
	// transactions written by one opening of the store (see Run), none
	// when the outbox is empty; and the replica's last sequence number.
	// It is cheap (kept in memory): a sync loop labels every push with
	// its run's epoch.
	Runs() (runs []Run, last uint64)

	// Fork moves the outbox's transactions from seq from on to a new
	// site, the replica's from now on: what a replica does when a server
	// holds other transactions of its site under those sequence numbers
	// (its database went back to an earlier state, restored from a copy
	// or rolled back by a power cut under relaxed durability, and wrote
	// again), so that both its lost writes and the new ones survive.
	//
	// The moved transactions are numbered from 1 on the new site, keep
	// their timestamps and meaning (crdt.Resite: counters keep each
	// increment, not the part it was computed from), and stay in the
	// outbox to be pushed; the ones before from are acknowledged. The
	// rows they touched hold only what the moved transactions write, and
	// the sync cursor goes back to 0, until the next connection
	// bootstraps the server's state of every row and joins it: the lost
	// writes come back then. A doc change cannot move (its Automerge
	// changes are authored by the old site): it is dropped, and its
	// transaction goes on the rejection feed with code. All in one
	// atomic, durable transaction. Fork returns the new site; with
	// nothing from from on it changes nothing and returns the old one.
	//
	// Fork is a function of the moved entries alone: the new site is a
	// hash of the old one and the first moved transaction, and the moved
	// transactions are the same bytes with the same epochs whatever else
	// the store holds. A database restored again from a copy taken
	// before a fork forks the same writes to the same transactions, which
	// the server already holds: nothing counts twice.
	Fork(ctx context.Context, from uint64, code uint16) (crdt.SiteID, error)

	// Conflicts returns up to limit conflict records with IDs above after, oldest first.
	Conflicts(ctx context.Context, after uint64, limit int) ([]ConflictEntry, error)

	// Hash returns the canonical state hash of every row (see crdt.State.Hash).
	Hash(ctx context.Context) ([32]byte, error)

	// Close releases the store. Pending writes have committed when Write
	// returned; Close never loses them.
	Close() error
}

// Run is a stretch of the outbox's transactions, from First up to the
// next run's First, written by one opening of the store: Epoch is a
// random number each opening draws (0 for transactions written before
// stores kept epochs). A database that went back to an earlier state
// cannot know it did, but its next writes get a new epoch: the server,
// which records the epochs of the transactions it holds, tells such a
// replica which of its sequence numbers it holds for other writes (see
// Fork).
type Run struct {
	First uint64
	Epoch uint64
}

// Commit describes a committed Write or Apply.
type Commit struct {
	// Tx is the local transaction committed by Write; nil for Apply or an
	// empty Write.
	Tx *crdt.Tx
	// Changed lists the rows whose state changed, each once.
	Changed []crdt.RowKey
	// Conflicts lists the conflicts the commit recorded.
	Conflicts []ConflictEntry
	// Reported says the store already passed Changed, with the rows' new
	// states and in commit order, to the function its OnChange set
	// (store.SQLite); a caller that set one need not act on Changed again.
	Reported bool
}

// RowState is a row's merge state with its key.
type RowState struct {
	Key crdt.RowKey
	Row *crdt.Row
}

// Doc is one alive row returned by Query.
type Doc struct {
	ID string
	// Row is the row's merge state, or nil when the query's Known said
	// the caller holds the row as of State already.
	Row *crdt.Row
	// State is the row's merge state as stored (crdt.EncodeRow), when the
	// store keeps it encoded (the SQLite store); nil otherwise.
	State []byte
}

// Rejection is a local transaction a server refused, on the rejection feed.
type Rejection struct {
	ID     uint64 // position in the feed (set by the store)
	Seq    uint64 // the refused transaction's sequence number
	Code   uint16 // the protocol error code (see package sync)
	Reason string
}

// ConflictEntry is a conflict record with its position in the log.
type ConflictEntry struct {
	ID uint64
	conflict.Record
}
