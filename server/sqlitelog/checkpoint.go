package sqlitelog

import (
	"context"
	"sync/atomic"

	"github.com/unosync/uno/internal/walfill"
)

// The log's write-ahead log is checkpointed (its pages copied into the
// database file, so that it starts over from the beginning of its
// preallocated space) in the background.
// SQLite's automatic checkpoint runs inside the commit that takes the log
// past 1,000 pages: one group commit in a few hundred, and with it the
// Acks and deliveries of its appends, waited for copying the log and two
// fsyncs. Group commits are counted instead (walfill.Pacer), and past
// about checkpointFrames of log a goroutine checkpoints while appends go
// on; SQLite's automatic checkpoint stays, at walBackstopPages, in case
// those fall behind.
const (
	// checkpointFrames is how much log a background checkpoint comes
	// after: SQLite's default, well within the preallocated log
	// (walPrefill, 2,000 pages).
	checkpointFrames = 1000
	// walBackstopPages is where SQLite's automatic checkpoint runs.
	walBackstopPages = 4000
)

// checkpointer runs the log's background checkpoints.
type checkpointer struct {
	pacer *walfill.Pacer // commit weight: a group commit counts 1 plus its transactions
	kick  chan struct{}
	runs  atomic.Int64 // checkpoints that left nothing to copy, for tests
}

// committed counts a group commit of txs transactions toward the next
// background checkpoint.
func (c *checkpointer) committed(txs int) {
	if !c.pacer.Add(txs + 1) {
		return
	}
	select {
	case c.kick <- struct{}{}:
	default: // one is under way or asked for
	}
}

// runCheckpoints checkpoints the log whenever kicked, until ctx ends.
func (l *Log) runCheckpoints(ctx context.Context) {
	for {
		select {
		case <-l.ckpt.kick:
			l.checkpoint(ctx)
		case <-ctx.Done():
			return
		}
	}
}

// checkpoint copies the log into the database file: first beside the
// appends, then what they wrote meanwhile with the committer held off.
// SQLite starts the log over at the first write after a checkpoint that
// left nothing to copy, and with appends going on every pass finds new
// ones. The second pass is short, as it copies only what the first left.
// While it waits for the committer and runs, appends queue (ckptWants),
// and it hands them to a committer of their own after. An error leaves
// the log to the automatic checkpoint.
func (l *Log) checkpoint(ctx context.Context) {
	var busy, log, copied int
	if err := l.db.QueryRowContext(ctx, checkpointSQL).Scan(&busy, &log, &copied); err != nil {
		return
	}
	l.ckpt.pacer.Observed(log)
	l.mu.Lock()
	l.ckptWants = true // the committer stops after its group, new appends queue
	for l.committing {
		l.cond.Wait()
	}
	l.ckptWants = false
	l.committing = true // as the committer
	closed := l.closed
	l.mu.Unlock()
	if !closed {
		if err := l.db.QueryRowContext(ctx, checkpointSQL).Scan(&busy, &log, &copied); err == nil && log == copied {
			l.ckpt.runs.Add(1)
		}
	}
	if closed {
		l.commitLoop(false) // Close waits for this goroutine: commit what it accepted
		return
	}
	go l.commitLoop(false) // a committer of their own, so this goroutine goes back to checkpointing
}

const checkpointSQL = `PRAGMA wal_checkpoint(PASSIVE)`
