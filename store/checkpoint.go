package store

import (
	"context"
	"sync/atomic"

	"github.com/unosync/uno/internal/walfill"
)

// The write-ahead log is checkpointed (its pages copied into the
// database file, so that it can start over from the beginning of its
// preallocated space) in the background. SQLite's automatic checkpoint
// runs inside the commit that takes the log past 1,000 pages, so one
// write in a few hundred paid for copying the log and two fsyncs: in the
// paced benchmark (1 writer at 50 Hz, 1 receiver) the 194th write took
// 5.5–7.6 ms in every run where the others took ~2. Commits are counted
// instead (walfill.Pacer), and past about checkpointFrames of log a
// goroutine checkpoints on a pooled connection while writes go on.
// SQLite's automatic checkpoint stays, at walBackstopPages, in case those
// fall behind.
const (
	// checkpointFrames is how much log a background checkpoint comes
	// after: within the preallocated log (WALPrefill, 1,000 pages and a
	// little more) with room for what is written while it runs (writes
	// at full speed outrun it: the log then grows past that for a while,
	// up to twice it in the test).
	checkpointFrames = 700
	// walBackstopPages is where SQLite's automatic checkpoint runs.
	walBackstopPages = 4000
)

// checkpointer runs a store's background checkpoints.
type checkpointer struct {
	pacer *walfill.Pacer // commit weight: a commit counts 1 plus the rows it touched
	kick  chan struct{}
	stop  context.CancelFunc
	done  chan struct{}
	runs  atomic.Int64 // checkpoints completed, for tests
}

// startCheckpointer starts the background checkpoints of a store whose
// journal is a WAL.
func (s *SQLite) startCheckpointer() {
	if !walJournal {
		return
	}
	ctx, stop := context.WithCancel(context.Background())
	c := &checkpointer{pacer: walfill.NewPacer(checkpointFrames), kick: make(chan struct{}, 1), stop: stop, done: make(chan struct{})}
	s.ckpt = c
	go func() {
		defer close(c.done)
		for {
			select {
			case <-c.kick:
				s.checkpoint(ctx)
			case <-ctx.Done():
				return
			}
		}
	}()
}

// stopCheckpointer stops the background checkpoints and waits for one
// under way.
func (s *SQLite) stopCheckpointer() {
	if c := s.ckpt; c != nil {
		c.stop()
		<-c.done
	}
}

// committed counts a commit that touched rows rows toward the next
// background checkpoint.
func (s *SQLite) committed(rows int) {
	c := s.ckpt
	if c == nil || !c.pacer.Add(rows+1) {
		return
	}
	select {
	case c.kick <- struct{}{}:
	default: // one is under way or asked for
	}
}

// checkpoint copies the log into the database file on a pooled
// connection: first beside the writes, then what was written meanwhile
// under the write lock. SQLite starts the log over at the first write
// after a checkpoint that left nothing to copy, and with writes going on
// every pass finds new ones (measured: with passes beside the writes
// alone, the log grew to the backstop). The second pass is short, as it
// copies only what the first left. An error leaves the log to the
// automatic checkpoint.
func (s *SQLite) checkpoint(ctx context.Context) {
	var busy, log, copied int
	if err := s.db.QueryRowContext(ctx, checkpointSQL).Scan(&busy, &log, &copied); err != nil {
		return
	}
	s.ckpt.pacer.Observed(log)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.check() != nil {
		return
	}
	if err := s.db.QueryRowContext(ctx, checkpointSQL).Scan(&busy, &log, &copied); err == nil && log == copied {
		s.ckpt.runs.Add(1)
	}
}

const checkpointSQL = `PRAGMA wal_checkpoint(PASSIVE)`
