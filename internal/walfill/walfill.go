package walfill

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// zeros is what Prefill writes, shared (never written to): a store opened
// allocates nothing for it.
var zeros [64 << 10]byte

// Prefill extends the write-ahead log of the SQLite database at path, which
// db has open in WAL mode, with zeros up to size bytes. It changes nothing
// when the log is that long already or does not exist.
//
// It holds the database's write lock (BEGIN IMMEDIATE) throughout, so no
// writer, in this process or another, appends frames meanwhile; it writes
// only past the log's end, which SQLite has not written yet. Zeros are no
// valid frame (their salt matches no header), so recovery after a crash
// stops at them as it stops at the end of the file. The log's file
// descriptor here is its own: SQLite holds no lock on the -wal file that
// closing it could release.
func Prefill(ctx context.Context, db *sql.DB, path string, size int64) error {
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("prefill wal: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `BEGIN IMMEDIATE`); err != nil {
		return fmt.Errorf("prefill wal: %w", err)
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), `ROLLBACK`)
	f, err := os.OpenFile(path+"-wal", os.O_WRONLY, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("prefill wal: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("prefill wal: %w", err)
	}
	if fi.Size() >= size {
		return nil
	}
	for off := fi.Size(); off < size; off += int64(len(zeros)) {
		n := min(int64(len(zeros)), size-off)
		if _, err := f.WriteAt(zeros[:n], off); err != nil {
			return fmt.Errorf("prefill wal: %w", err)
		}
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("prefill wal: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("prefill wal: %w", err)
	}
	return nil
}
