package server

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/unosync/uno/crdt"
	"github.com/unosync/uno/server/internal/rowmodel"
	usync "github.com/unosync/uno/sync"
	"github.com/unosync/uno/tenancy"
)

// Errors returned by event logs.
var (
	// ErrLogClosed is returned by every method of a closed log.
	ErrLogClosed = errors.New("server: log closed")
	// ErrInvalidTenant reports an empty or over-long tenant ID.
	ErrInvalidTenant = tenancy.ErrInvalidTenant
)

// Log is a per-tenant, append-only event log of transactions: the system
// of record. Two implementations pass the same conformance suite
// (package logtest): package sqlitelog (embedded, the default) and
// package pglog (Postgres). What a log can do beyond Log it says by
// implementing the capability interfaces below, each checked by logtest.
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
	// usync.ErrGap, appending nothing. The caller has validated the
	// transactions (crdt rules); a log with a rows read model fails the
	// call with a *TxRefusedError, appending nothing, when a transaction
	// breaks a rule only the merged state can check: it would make a row
	// larger than MaxRowBytes (wrapping a *RowTooLargeError), or a doc
	// change skips one of its site's changes (CodeMalformedTx).
	Append(ctx context.Context, tenant string, txs []crdt.Tx) ([]uint64, error)

	// HighWater returns the highest sequence number of site in the
	// tenant's log (0 if none).
	HighWater(ctx context.Context, tenant string, site crdt.SiteID) (uint64, error)

	// Head returns the tenant's newest sequence number (0 if empty).
	Head(ctx context.Context, tenant string) (uint64, error)

	// Read returns up to limit entries of the tenant with sequence numbers
	// above after, in order, and at most about maxBytes of encoded
	// transactions (always at least one entry when there is one). A
	// log that compacts (Compactor) serves none below its compaction
	// floor: a reader behind it sees a gap, as behind a retention cut.
	// The entries may be shared with the log and its other readers (a
	// fan-out reads the same ones for every connection): the caller
	// must not modify them, and copies what it changes.
	Read(ctx context.Context, tenant string, after uint64, limit, maxBytes int) ([]usync.Change, error)

	// Wait returns a channel that is closed once the tenant's head is
	// above seq (at once if it already is), or when ctx ends. It is how
	// tailing readers wake up without polling. A wake-up may find nothing
	// new (another node's notification, a reconnection): the reader reads,
	// then waits again with a new call.
	Wait(ctx context.Context, tenant string, seq uint64) <-chan struct{}

	// Close releases the log.
	Close() error
}

// Numbered is what a Log's Append calls once the sequence numbers of its
// call's transactions are final (0 for those it skipped) and before any
// reader or waiter can see the entries: before the commit. ctx is the one
// Append was given. Through it the server notes, for the entries it
// appends, when they were appended and the trace of the append, so that
// the fan-out of each entry to other sessions is measured
// (uno_delivery_seconds) and traced (uno.server.fanout) even when a
// session reads it before Append returns. A log that does not call it
// still works; such entries are then measured and traced only if read
// after Append returns. Numbered does not block and costs one context
// lookup when the server did not ask for it.
func Numbered(ctx context.Context, seqs []uint64) {
	if n, ok := ctx.Value(numberedKey{}).(numberer); ok {
		n.numbered(seqs)
	}
}

// WithNumbered returns ctx carrying f, for Numbered to call: how a Log's
// tests (package logtest) see that it numbers an append's entries before
// they can be read.
func WithNumbered(ctx context.Context, f func(seqs []uint64)) context.Context {
	return context.WithValue(ctx, numberedKey{}, numberedFunc(f))
}

// numberedKey is the context key of the numberer an append's Numbered
// calls.
type numberedKey struct{}

type numberer interface{ numbered(seqs []uint64) }

type numberedFunc func(seqs []uint64)

func (f numberedFunc) numbered(seqs []uint64) { f(seqs) }

// Snapshotter is the capability of a log with a rows read model: reading
// it in (collection, row) order, for bootstrapping clients.
type Snapshotter interface {
	// SnapshotRows returns rows of the tenant after the key after, in
	// (collection, row) order, with their merge states: up to limit rows
	// and at most maxBytes of states (always at least one row when there
	// is one). more reports whether rows follow.
	SnapshotRows(ctx context.Context, tenant string, after crdt.RowKey, limit, maxBytes int) (rows []usync.SnapshotRow, more bool, err error)
	// SnapshotSize returns the number of rows and their state bytes.
	SnapshotSize(ctx context.Context, tenant string) (rows, bytes uint64, err error)
	// SnapshotSites returns every site's high-water mark. Read it after
	// the snapshot's head and before its rows.
	SnapshotSites(ctx context.Context, tenant string) ([]usync.SiteMark, error)
}

// RowStater is the capability of a log with a rows read model: the
// current states of some rows. Rules, quotas, filtered subscriptions and
// rejections need it.
type RowStater interface {
	// RowStates returns the rows' states in keys' order; a row never
	// written has no State.
	RowStates(ctx context.Context, tenant string, keys []crdt.RowKey) ([]usync.SnapshotRow, error)
}

// RowHasher is the capability of a log with a rows read model: its
// canonical state hash, equal to the crdt.State hash of every client
// that applied the whole log.
type RowHasher interface {
	RowsHash(ctx context.Context, tenant string) ([32]byte, error)
}

// RowQuerier is the capability of a log whose rows read model answers the
// query API. Every log orders and pages alike: ordered by a field, rows
// go by its value's type — missing or null, strings, numbers, false,
// true, arrays, objects — then strings by their UTF-8 bytes, numbers by
// their exact value (no float64 rounding), arrays and objects as equals,
// then by ID in byte order; a cursor resumes exactly after its row. A
// filter on a number matches it exactly (1 matches 1.0), on null only a
// field holding null.
type RowQuerier interface {
	QueryRows(ctx context.Context, tenant string, q RowQuery) ([]QueryRow, error)
}

// EncodedTail is the capability of a log that keeps its newest entries
// encoded: Encoded returns the encodings of entries (in order, as Read
// returned them for the tenant, though some may be left out: an author's
// own), or false. A fan-out then encodes each entry once.
type EncodedTail interface {
	Encoded(tenant string, entries []usync.Change) ([][]byte, bool)
}

// Watcher is the capability of a log whose waits end by a call rather
// than a context: Watch is Wait, ended by cancel (to be called once the
// wait is no longer needed, whether or not it fired); ctx bounds only
// the read of the head. A connection waits once per delivery, and a
// context each would cost it more than the wait.
type Watcher interface {
	Watch(ctx context.Context, tenant string, seq uint64) (ch <-chan struct{}, cancel func())
}

// SiteRunner is the capability of a log that keeps, for each site, which
// opening of the replica's store (epoch) wrote its transactions, as runs
// (usync.Run): a replica whose database went back to an earlier state
// and wrote again is told which of its writes reuse sequence numbers the
// log holds for other transactions (see usync.Check). Runs change only
// when a replica's epoch does: once per opening that pushes, not once
// per append.
type SiteRunner interface {
	// SaveRun records that the site's transactions from run.First on were
	// written in run.Epoch. An Append whose context carries a run
	// (WithRun) saves it this way in the append's own transaction, before
	// its entries: the run and the append it starts commit together or
	// not at all. That is how the server saves runs. It replaces the site's runs from run.First on
	// that lie above the site's high-water mark (left by an append that
	// did not commit), and records nothing at or below it: the runs of
	// what the log holds stay as they are, whatever another session of
	// the replica appended meanwhile. The caller saves a run for the next
	// seq before appending it.
	SaveRun(ctx context.Context, tenant string, site crdt.SiteID, run usync.Run) error
	// Runs returns the site's runs covering seqs from..through: the run
	// holding from (the last starting at or before it), if any, then
	// those starting after from up to through, in order, at most limit.
	Runs(ctx context.Context, tenant string, site crdt.SiteID, from, through uint64, limit int) ([]usync.Run, error)
}

// WithRun returns ctx carrying the run the transactions of site from
// run.First on start: a SiteRunner's Append given it saves the run as
// SaveRun does, in the append's transaction.
func WithRun(ctx context.Context, site crdt.SiteID, run usync.Run) context.Context {
	return context.WithValue(ctx, runKey{}, siteRun{site, run})
}

// RunOf returns the run ctx carries (WithRun), if any: what a SiteRunner's
// Append saves with its entries.
func RunOf(ctx context.Context) (crdt.SiteID, usync.Run, bool) {
	r, ok := ctx.Value(runKey{}).(siteRun)
	return r.site, r.run, ok
}

// CheckRun fails when the run ctx carries (WithRun) starts past the
// largest int64, which no log stores (no pushed seq gets that far: the
// session refuses it first). A SiteRunner's Append calls it before
// anything else, so an append with such a run writes nothing.
func CheckRun(ctx context.Context) error {
	if _, run, ok := RunOf(ctx); ok && run.First > math.MaxInt64 {
		return fmt.Errorf("append: the run's first seq %d is out of range", run.First)
	}
	return nil
}

type runKey struct{}

type siteRun struct {
	site crdt.SiteID
	run  usync.Run
}

// Retainer is the capability of a log that forgets old entries.
type Retainer interface {
	// LogStart returns the oldest sequence number the log still holds
	// (the head + 1 when it holds none, 1 for a tenant with no log).
	LogStart(ctx context.Context, tenant string) (uint64, error)
	// Retain deletes the tenant's entries up to the newest appended
	// before the time (but none a projection has not folded yet) and
	// returns how many. The head, the sites' marks and the read models
	// stay, so appends stay idempotent; a reader whose cursor is behind
	// the cut reads the first entry held and sees the gap.
	Retain(ctx context.Context, tenant string, before time.Time) (int64, error)
}

// Compactor is the capability of a log that can drop the doc changes of
// old entries: the rows read model already holds every doc field merged
// (crdt compacts a long run of changes into one saved Automerge
// document), so the log need not keep each change once every replica
// that reads the log is past it.
//
// Compaction keeps every transaction (possibly with no ops left), so
// appends stay idempotent by (site, seq) and the numbering stays
// gap-free. It records the tenant's compaction floor: a replica whose
// cursor is below it can no longer catch up from the log and bootstraps
// from a snapshot, as one behind a retained log's start does. Read
// serves no entry below the floor (a reader behind it sees a gap), so a
// session reading while a compaction runs is told to resync rather than
// receive an entry without its changes. Rebuilding a projection folds the
// compacted entries as they now are: without their doc changes.
type Compactor interface {
	// CompactFloor returns the tenant's compaction floor: the entries
	// below it may have lost their doc changes, and a cursor below
	// floor-1 bootstraps (1 when nothing was compacted).
	CompactFloor(ctx context.Context, tenant string) (uint64, error)
	// Compact drops the doc changes (OpChange ops) of the tenant's
	// entries below before, capped at the head + 1 and at what every
	// async projection has folded, and moves the floor past the last
	// entry it rewrote (entries it left as they were stay readable). It
	// is idempotent and resumes where an interrupted run stopped.
	Compact(ctx context.Context, tenant string, before uint64) (Compaction, error)
}

// Compaction is what one Compact did.
type Compaction struct {
	Floor     uint64 // the tenant's floor after it
	Rewritten int64  // entries rewritten (those that held doc changes)
	Saved     int64  // bytes of encoded entries saved
}

// MaxRowBytes is the largest merged state a row may have: small enough
// that any row fits one sync message. A log's Append refuses a
// transaction that would make a row larger.
const MaxRowBytes = rowmodel.DefaultMaxRowBytes

// TxRefusedError is how a log refuses one transaction of an Append: Append
// fails, appending nothing, and the server refuses Tx with Code (a Reject
// to its client), appends it empty in its place, so the site's sequence
// stays gap-free, and appends the others again.
type TxRefusedError = rowmodel.RefusedError

// RowTooLargeError says why a transaction that would make a row's merged
// state larger than MaxRowBytes was refused: a *TxRefusedError
// (CodeRowTooLarge) wraps it.
type RowTooLargeError = rowmodel.TooLargeError
