package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// ErrNotDurable is what a local write returns when the disk failed to
// sync it: the write is committed (readers and the sync loop may have
// seen it) but may not survive a power cut, nor may any write after it.
// The store then takes no more local writes: close it, check the disk,
// and open it again.
var ErrNotDurable = errors.New("store: the disk failed to sync a committed write")

// walSyncer makes local writes durable after they commit. A durable store
// (synchronous FULL or EXTRA, WAL journal) commits its local writes at
// synchronous=NORMAL, which writes the transaction's frames to the log
// and makes them visible without waiting for the disk, and then syncs the
// log itself before Write returns. What a write promises is the same as
// a commit at FULL: when Write returns, the transaction is on disk. The
// difference is what may happen in between: the sync loop reads and
// pushes the write while its sync runs (see SQLite.OnCommit), so the push
// no longer waits one fsync. A write pushed and then lost to a power cut
// is the case a rollback already is (the server holds it; see Fork).
//
// The sync runs under the store's write lock, as SQLite's own would:
// writes that come meanwhile queue and commit together next (group
// commit), and remote changes and acks wait rather than write into the
// log while it is being synced (letting them in cost the 2-client
// benchmark at full durability 10–15% of its updates/s on one shared
// disk). One failed sync stops local writes: every later one returns
// ErrNotDurable, as after a failed fsync the kernel may have dropped the
// pages it could not write, and a second fsync would not say so.
//
// Its fields are guarded by the store's mu.
type walSyncer struct {
	path string   // the log: the database's path + "-wal"
	pin  *sql.DB  // one connection, held open so SQLite keeps the log
	f    *os.File // the log
	err  error    // the first failure (or the store closing): final

	testSync func() error // tests: runs in place of each sync
}

// newWALSyncer opens the log of the database at path for syncing, and
// syncs its directory once: SQLite created the log, and its name must
// survive a power cut as its frames must (SQLite at FULL syncs the
// directory on the log's first sync, which it no longer makes).
//
// It pins the log with a connection of its own, from open (one of the
// store's settings): a database in WAL mode keeps its log while any
// connection has it open, and a pool closes the connections it finds
// broken (all of them, in a store of one).
func newWALSyncer(ctx context.Context, path string, open func() (*sql.DB, error)) (*walSyncer, error) {
	y := &walSyncer{path: path + "-wal"}
	db, err := open()
	if err != nil {
		return nil, fmt.Errorf("pin the log: %w", err)
	}
	// A read opens the log; in WAL mode a connection then holds a shared
	// lock on the database until it closes.
	var n int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master`).Scan(&n); err != nil {
		db.Close()
		return nil, fmt.Errorf("pin the log: %w", err)
	}
	y.pin = db
	if y.f, err = os.OpenFile(y.path, os.O_RDWR, 0); err != nil {
		db.Close()
		return nil, fmt.Errorf("open the log to sync: %w", err)
	}
	if err := syncDir(filepath.Dir(y.path)); err != nil {
		y.f.Close()
		db.Close()
		return nil, err
	}
	return y, nil
}

// sync makes every commit so far durable, or returns the error that
// stopped the syncer.
func (y *walSyncer) sync() error {
	if y.err != nil {
		return y.err
	}
	if err := y.syncFile(); err != nil {
		y.err = fmt.Errorf("%w: %w", ErrNotDurable, err)
	}
	return y.err
}

// failed returns the error that stopped the syncer after a failed sync
// (not its closing, which the store reports itself).
func (y *walSyncer) failed() error {
	if errors.Is(y.err, ErrNotDurable) {
		return y.err
	}
	return nil
}

// syncFile syncs the log's data (fdatasync where there is one: the log
// is preallocated, so no size changes with a commit). The file stays the
// log: SQLite deletes the log only as the database's last connection
// closes, and the syncer's pin stays open until the store closes. (A check of
// the file's identity by stat on each sync would cost more than it
// seems: any stat between the commit's writes and the fdatasync made the
// pair 30–60 µs slower on this project's test machines, a fifth of a
// single write.)
func (y *walSyncer) syncFile() error {
	if y.testSync != nil {
		return y.testSync()
	}
	return datasync(y.f)
}

// close closes the log's file and the pin; later syncs return ErrClosed.
func (y *walSyncer) close() {
	if y.err == nil {
		y.err = ErrClosed
	}
	y.f.Close()
	y.pin.Close()
}

// syncDir syncs the directory at path: the names in it survive a power cut.
func syncDir(path string) error {
	d, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("sync directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync directory %s: %w", path, err)
	}
	return nil
}
