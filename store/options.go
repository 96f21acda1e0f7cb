package store

import (
	"crypto/rand"
	"fmt"
	"io"
	"runtime"
	"strings"
	"time"
)

// Options configure a store. The zero value is ready to use.
type Options struct {
	// Schema declares collections; nil means none (any valid name).
	Schema *Schema
	// Synchronous is SQLite's synchronous level: "FULL" (the default: a
	// commit survives power loss), "NORMAL" (survives a process crash,
	// may lose the last commits on power loss) or "EXTRA". In the browser
	// every level syncs each commit to IndexedDB.
	Synchronous string
	// BusyTimeout bounds how long a connection waits for a lock held by
	// another process. Default 5s.
	BusyTimeout time.Duration
	// MaxConns caps open connections (readers run in parallel under WAL;
	// writes are serialised). Default max(4, GOMAXPROCS). A native store
	// at FULL or EXTRA keeps one more, idle, so SQLite keeps the log it
	// syncs (see ErrNotDurable). In the browser (GOOS=js) it is always 1.
	MaxConns int
	// MaxDrift bounds how far ahead of the local clock a remote
	// transaction's timestamp may be. Default crdt.DefaultMaxDrift.
	MaxDrift time.Duration
	// Now returns the wall time; default time.Now. Tests pass fake clocks.
	Now func() time.Time
	// Rand is the source of the site ID for a new store; default crypto/rand.
	Rand io.Reader
}

func (o Options) withDefaults() (Options, error) {
	if err := o.Schema.Validate(); err != nil {
		return o, err
	}
	switch s := strings.ToUpper(o.Synchronous); s {
	case "":
		o.Synchronous = "FULL"
	case "FULL", "NORMAL", "EXTRA":
		o.Synchronous = s
	default:
		return o, fmt.Errorf("store: synchronous %q: want FULL, NORMAL or EXTRA", o.Synchronous)
	}
	if o.BusyTimeout <= 0 {
		o.BusyTimeout = 5 * time.Second
	}
	if o.MaxConns <= 0 {
		o.MaxConns = max(4, runtime.GOMAXPROCS(0))
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
	return o, nil
}

// WALPrefill is the size a native store's write-ahead log is extended to,
// with zeros, when the store opens (package walfill): a commit then
// overwrites blocks the file has rather than growing it, so its fsync
// has no size change to journal and its writes no blocks to allocate.
// It covers the log up to SQLite's automatic checkpoint (1,000 pages);
// the store's background checkpoints (checkpoint.go) come before that,
// and SQLite then writes the log from its start again. SQLite deletes the
// log when the store closes.
const WALPrefill = 4200 << 10
