package store

import (
	"context"
	"sync/atomic"

	"github.com/unosync/uno/internal/walfill"
)

// The write-ahead log is checkpointed (its pages copied into the database
// file, so that it can start over from the beginning of its preallocated
// space) in the background. SQLite's automatic checkpoint runs inside the
// commit that takes the log past 1,000 pages: one write in ~490 (one row
// each, at 200 Hz) took 6.2 ms at synchronous=NORMAL where the median took
// 0.08 ms, and 10.6 ms at FULL. Commits are counted instead
// (walfill.Pacer), and past about checkpointFrames of log a goroutine
// checkpoints on a pooled connection, between the writes of an app that
// is not writing all the time. SQLite's automatic checkpoint stays where
// it is: when writes come too fast for the background, the log is
// checkpointed and bounded as it always was.
const checkpointFrames = 500

// checkpointer runs a store's background checkpoints.
type checkpointer struct {
	pacer *walfill.Pacer // commit weight: a commit counts 1 plus the rows it touched
	kick  chan struct{}
	stop  context.CancelFunc
	done  chan struct{}
	// For tests: checkpoints that left the log to start over, kicks sent
	// and checkpoints done, and the most frames a checkpoint found.
	runs, kicks, dones, most atomic.Int64
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
				c.dones.Add(1)
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
		c.kicks.Add(1)
	default: // one is under way or asked for
	}
}

// checkpoint copies the log into the database file on a pooled
// connection, under the write lock. Beside the writes (tried first) every
// pass found new ones, and writes at full speed on a busy machine took
// the log to twice its preallocated size while SQLite's own checkpoint,
// finding one under way, did not run: with the lock, a write that comes
// during a checkpoint waits for it as it would for SQLite's own, and the
// log stays as bounded as it was. An app that does not write all the
// time rarely writes during one. An error leaves the log to SQLite's
// automatic checkpoint.
func (s *SQLite) checkpoint(ctx context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.check() != nil {
		return
	}
	var busy, log, copied int
	if err := s.db.QueryRowContext(ctx, checkpointSQL).Scan(&busy, &log, &copied); err != nil {
		return
	}
	s.ckpt.pacer.Observed(log)
	if int64(log) > s.ckpt.most.Load() {
		s.ckpt.most.Store(int64(log))
	}
	if log == copied {
		s.ckpt.runs.Add(1)
	}
}

const checkpointSQL = `PRAGMA wal_checkpoint(PASSIVE)`
