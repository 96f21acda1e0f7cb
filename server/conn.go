package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/unosync/uno/crdt"
	"github.com/unosync/uno/internal/wsframe"
	usync "github.com/unosync/uno/sync"
	"github.com/unosync/uno/tenancy"
	"go.opentelemetry.io/otel/trace"
)

// conn drives one ServerSession over one WebSocket: it does the session's
// IO in the order its Ready documents (authenticate, append durably, then
// send, then close).
type conn struct {
	s      *Server
	live   *Live // the live settings when the session started
	ws     *websocket.Conn
	sess   *usync.ServerSession
	tenant string
	user   string          // the token's user ("" if it names none)
	snap   *usync.Snapshot // the bootstrap in progress: its seq and totals
	scope  scope           // what the session may receive
	prev   *scope          // during a resubscription's snapshot: what the replica already has
	// rewritten says the Changes being sent lost ops to the scope, so the
	// log's encodings of its entries do not fit it.
	rewritten bool

	started    time.Time       // when the connection was accepted
	remote     string          // the client's address
	bytesIn    int64           // frame bytes received
	bytesOut   int64           // frame bytes sent
	pushed     []time.Time     // when each Push not yet acknowledged arrived, oldest first
	stalled    time.Time       // since when the client has had no credit while behind
	expires    time.Time       // when the session's token expires (zero: never)
	limits     tenancy.Tenant  // the tenant's registry entry (zero limits: none)
	wait       <-chan struct{} // closed when the log grows past waitFrom
	waitFrom   uint64
	waitCancel func()
	// appendSpan, wasNumbered and numberedSeqs belong to the append in
	// progress: its span (nil: not traced), whether the log called
	// Numbered, and the seqs it numbered.
	appendSpan   trace.Span
	wasNumbered  bool
	numberedSeqs []uint64
	// runEpoch is the epoch of the site's run the next append continues
	// (runKnown: read from the log), with a log that keeps runs.
	runEpoch uint64
	runKnown bool
	// pos is where the replica needs the log from (for compaction):
	// its cursor, or a bootstrap's snapshot seq. tracked: the session
	// is in the server's sessions.
	pos     atomic.Uint64
	tracked bool
	// kick ends the session with its error (an operator suspended the
	// tenant): buffered, so a sender never waits (sessions.end).
	kick chan *usync.Error

	// Reads and writes take wctx, the connection's context without its
	// cancellation, so the WebSocket library registers nothing per frame;
	// run closes the WebSocket once when the connection's context ends,
	// which is what a cancelled read or write did. Writes are bounded by
	// one timer per connection rather than a deadline per frame: wtimer
	// closes the WebSocket when the write under way, begun at writeStart
	// (Unix ns; 0 when none), has taken WriteTimeout, setting
	// writeExpired.
	wctx         context.Context
	wtimer       *time.Timer
	writeStart   atomic.Int64
	writeExpired atomic.Bool
}

// run serves the connection until it ends. Frames are read by a goroutine
// into an unbuffered channel, so a client that sends faster than its
// pushes commit is slowed by TCP, not buffered.
func (c *conn) run(reqCtx context.Context) error {
	ctx, cancel := context.WithCancel(reqCtx)
	defer cancel()
	ctx = context.WithValue(ctx, numberedKey{}, c) // see Numbered
	stop := context.AfterFunc(c.s.cut, cancel)
	defer stop()
	c.wctx = context.WithoutCancel(ctx)
	c.wtimer = time.AfterFunc(time.Hour, c.writeTimedOut)
	c.wtimer.Stop()
	defer c.wtimer.Stop()
	stopClose := context.AfterFunc(ctx, func() { c.ws.CloseNow() })
	defer stopClose()

	frames := make(chan *[]byte)
	readErr := make(chan error, 1)
	go func() {
		for {
			typ, b, err := wsframe.Read(c.wctx, c.ws)
			if err != nil {
				readErr <- err
				return
			}
			if typ != websocket.MessageBinary {
				readErr <- usync.Errorf(usync.CodeBadMessage, "text frame: uno speaks binary frames")
				return
			}
			select {
			case frames <- b:
			case <-ctx.Done():
				return
			}
		}
	}()

	// Close the WebSocket (with its code) before the deferred cancel: a
	// cancelled read would drop the connection without a close frame.
	err := c.loop(ctx, frames, readErr)
	if c.tracked {
		c.s.sessions.remove(c)
	}
	code, reason := c.close(err)
	level := slog.LevelInfo
	if c.tenant == "" {
		level = slog.LevelDebug // never opened: refusals are logged at Warn
	}
	c.log(reqCtx, level, "session end", slog.String("remote", c.remote), slog.Duration("duration", time.Since(c.started)),
		slog.Int("close_code", int(code)), slog.String("reason", reason), slog.Int64("bytes_in", c.bytesIn), slog.Int64("bytes_out", c.bytesOut))
	return err
}

// log logs msg with the session's tenant, user and site, then attrs. It
// costs nothing more than the call when level is disabled (attrs must be
// cheap to make: no slog.Any).
func (c *conn) log(ctx context.Context, level slog.Level, msg string, attrs ...slog.Attr) {
	l := c.s.cfg.Logger
	if !l.Enabled(ctx, level) {
		return
	}
	l.LogAttrs(ctx, level, msg, append([]slog.Attr{slog.String("tenant", c.tenant), slog.String("user", c.user),
		slog.String("site", c.sess.Site().String())}, attrs...)...)
}

// refuse ends the session before it opens, logging why at Warn (err's
// code goes to the client).
func (c *conn) refuse(ctx context.Context, err error) {
	se := asSyncError(err)
	c.log(ctx, slog.LevelWarn, "session refused", slog.String("remote", c.remote), slog.Int("code", int(se.Code)), slog.String("reason", se.Message))
	c.sess.Refuse(se)
}

// expire ends the session whose token expired.
func (c *conn) expire(ctx context.Context) {
	c.log(ctx, slog.LevelWarn, "token expired", slog.String("remote", c.remote), slog.Time("expires", c.expires))
	c.sess.Fail(usync.Errorf(usync.CodeTokenExpired, "the token expired: reconnect with a fresh one"))
}

func (c *conn) loop(ctx context.Context, frames <-chan *[]byte, readErr <-chan error) error {
	for {
		if err := c.ready(ctx); err != nil {
			return err
		}
		if c.tracked {
			c.pos.Store(c.position())
		}
		if c.sess.Closed() {
			return nil
		}
		if c.s.ctx.Err() != nil {
			// The server is draining. ready appended and acknowledged
			// every push received so far; close, and the client
			// reconnects (to another node, or to this one once back).
			c.sess.Fail(usync.Errorf(usync.CodeShuttingDown, "server shutting down: reconnect"))
			continue
		}
		// Wake for the next frame, or for log growth when the client has
		// credit (no credit: the log is not read for it at all).
		var logGrew <-chan struct{}
		var deadline time.Time // when the loop must look again, without any event
		from, snapshot, after, ok := c.sess.Want()
		if ok || !c.sess.Open() {
			c.stalled = time.Time{}
		} else if c.behind(ctx) {
			// Out of credit with entries waiting: a client that stays so
			// is told to come back and resume from its cursor, rather
			// than holding a connection the server cannot serve.
			if c.stalled.IsZero() {
				c.stalled = time.Now()
			}
			if time.Since(c.stalled) >= c.s.cfg.StallTimeout {
				c.log(ctx, slog.LevelWarn, "slow consumer", slog.String("remote", c.remote), slog.Uint64("cursor", c.sess.Cursor()),
					slog.Duration("stalled", time.Since(c.stalled)))
				c.sess.Fail(usync.Errorf(usync.CodeSlowConsumer, "no credit for %s while behind: reconnect and resume from your cursor", c.s.cfg.StallTimeout))
				continue
			}
			deadline = c.stalled.Add(c.s.cfg.StallTimeout)
		} else if c.tenant != "" {
			// Out of credit but caught up: wake when the log grows, to
			// start the stall clock then.
			from, ok = c.sess.Cursor(), true
		}
		if c.tenant == "" && !c.sess.Closed() {
			// No Hello yet: the connection holds a slot, so it gets
			// HelloTimeout to say who it is.
			helloBy := c.started.Add(c.live.HelloTimeout)
			if !time.Now().Before(helloBy) {
				err := usync.Errorf(usync.CodeUnauthorized, "no Hello within %s", c.live.HelloTimeout)
				c.s.refusedAuth(ctx, c.remote, err.Code, err.Message)
				c.sess.Fail(err)
				continue
			}
			deadline = helloBy
		}
		if !c.expires.IsZero() && c.sess.Open() {
			if c.expired() {
				c.expire(ctx)
				continue
			}
			if deadline.IsZero() || c.expires.Before(deadline) {
				deadline = c.expires
			}
		}
		if ok && c.tenant != "" {
			if snapshot {
				if err := c.deliverSnapshot(ctx, after); err != nil {
					return err
				}
				continue
			}
			// One waiter per connection, kept while the cursor stays: a
			// frame from the client does not re-register it.
			if c.wait == nil || c.waitFrom != from {
				c.stopWait()
				if w, ok := c.s.cfg.Log.(Watcher); ok {
					c.wait, c.waitCancel = w.Watch(ctx, c.tenant, from)
				} else {
					wctx, cancel := context.WithCancel(ctx)
					c.wait, c.waitCancel = c.s.cfg.Log.Wait(wctx, c.tenant, from), cancel
				}
				c.waitFrom = from
			}
			logGrew = c.wait
		}
		var timer *time.Timer
		var wake <-chan time.Time
		if !deadline.IsZero() {
			timer = time.NewTimer(time.Until(deadline))
			wake = timer.C
		}
		err := c.next(ctx, frames, readErr, logGrew, wake)
		if timer != nil {
			timer.Stop()
		}
		if err != nil {
			c.stopWait()
			return err
		}
	}
}

// expired reports whether the session's token has expired.
func (c *conn) expired() bool {
	return !c.expires.IsZero() && !c.s.cfg.Now().Before(c.expires)
}

// behind reports whether the log holds entries past the client's cursor.
func (c *conn) behind(ctx context.Context) bool {
	if c.tenant == "" {
		return false
	}
	head, err := c.s.cfg.Log.Head(ctx, c.tenant)
	return err == nil && head > c.sess.Cursor()
}

// stopWait unregisters the connection's log waiter, if any.
func (c *conn) stopWait() {
	if c.waitCancel != nil {
		c.waitCancel()
	}
	c.wait, c.waitCancel = nil, nil
}

// next waits for one event and feeds it to the session.
func (c *conn) next(ctx context.Context, frames <-chan *[]byte, readErr <-chan error, logGrew <-chan struct{}, stall <-chan time.Time) error {
	select {
	case <-stall: // the loop re-checks and ends the session
		return nil
	case err := <-c.kick:
		c.log(ctx, slog.LevelWarn, "session ended by an operator", slog.String("remote", c.remote), slog.String("reason", err.Message))
		c.sess.Fail(err)
		return nil
	case buf := <-frames:
		// The message decoded copies what it keeps (the codec's
		// decoders copy byte strings): the frame's memory goes back.
		defer wsframe.Put(buf, buf)
		b := *buf
		c.bytesIn += int64(len(b))
		c.s.m.bytesIn.Add(float64(len(b)))
		// A frame holds its share of MaxPushBytes from decoding until
		// what it asks for is done (a push appended and acknowledged):
		// the server holds only so many large pushes at once, and the
		// others wait, their clients slowed by TCP.
		w, waited := c.s.frameWeight(b), time.Now()
		if err := c.s.inFlight.Acquire(ctx, w); err != nil {
			return err
		}
		c.s.m.pushWait.Observe(time.Since(waited).Seconds())
		defer c.s.inFlight.Release(w)
		m, err := c.s.codec.Decode(b)
		if err != nil {
			c.sess.Fail(asSyncError(err))
			return nil
		}
		if _, ok := m.(*usync.Push); ok {
			// Each Push the session takes gets one Ack, in order (the
			// session bounds the pushes in flight).
			c.s.m.pushes.Inc()
			c.pushed = append(c.pushed, time.Now())
		}
		c.sess.Step(m) // a protocol error closes the session with its code
		return c.ready(ctx)
	case <-logGrew:
		// The waiter fired: wait anew next time, even if this wake-up
		// brings nothing (another node's notification, a reconnection),
		// so an idle session never spins on a closed channel.
		c.stopWait()
		return c.deliver(ctx)
	case err := <-readErr:
		return err
	case <-c.s.ctx.Done(): // the loop closes the session
		return nil
	case <-ctx.Done():
		c.sess.Fail(usync.Errorf(usync.CodeShuttingDown, "server shutting down: reconnect"))
		c.ready(context.Background())
		return ctx.Err()
	}
}

// ready does what the session asks until it asks for nothing.
func (c *conn) ready(ctx context.Context) error {
	for c.sess.HasReady() {
		rd := c.sess.Ready()
		if rd.Authenticate != nil {
			if err := c.authenticate(ctx, rd.Authenticate); err != nil {
				return err
			}
		}
		if rd.Reauthenticate != nil {
			c.reauthenticate(ctx, rd.Reauthenticate)
		}
		if rd.Check != nil {
			c.check(ctx, rd.Check, rd.CheckThrough)
		}
		if len(rd.Append) > 0 && c.expired() {
			c.expire(ctx)
			c.sess.Advance(rd)
			continue
		}
		if len(rd.Append) > 0 && !c.s.rate.Allow(c.tenant, c.limits.OpsPerSec, len(rd.Append), c.s.cfg.Now()) {
			c.sess.Fail(usync.Errorf(usync.CodeRateLimited, "tenant %q is over its %d transactions/s: back off and retry", c.tenant, c.limits.OpsPerSec))
			c.sess.Advance(rd)
			continue
		}
		if len(rd.Append) > 0 {
			ctx, span := c.startPush(ctx, rd)
			if err := c.checkClocks(rd.Append); err != nil {
				endSpan(span, err)
				c.sess.Fail(err)
				c.sess.Advance(rd)
				continue
			}
			txs, rejects, err := c.validate(ctx, rd.Append)
			actx, newRun := ctx, false
			if err == nil {
				actx, newRun, err = c.withRun(ctx, rd.Append[0].Seq, rd.AppendEpoch)
			}
			var seqs []uint64
			if err == nil {
				seqs, _, rejects, err = c.append(actx, txs, rejects)
			}
			if err == nil && newRun {
				c.runEpoch = rd.AppendEpoch
			}
			if err == nil && len(rejects) > 0 {
				err = c.reject(ctx, rejects)
			}
			endSpan(span, err)
			if err != nil {
				var se *usync.Error
				if errors.As(err, &se) {
					if se.Code == usync.CodeUnavailable || se.Code == usync.CodeInternal {
						c.log(ctx, slog.LevelError, "push failed", slog.String("err", se.Message))
					}
					c.sess.Fail(se)
				} else {
					c.sess.Fail(c.s.unavailable("append", err, "tenant", c.tenant))
				}
			} else {
				appended := 0
				for _, seq := range seqs {
					if seq != 0 {
						appended++
					}
				}
				c.s.m.appended.Add(float64(appended))
				c.log(ctx, slog.LevelDebug, "push", slog.Int("txs", len(rd.Append)), slog.Int("appended", appended),
					slog.Int("rejected", len(rejects)), slog.Uint64("high_water", rd.Append[len(rd.Append)-1].Seq))
				c.sess.Appended(seqs)
			}
		}
		for _, m := range rd.Send {
			if err := c.write(ctx, m); err != nil {
				return err
			}
		}
		c.sess.Advance(rd)
		if rd.Close != nil {
			return rd.Close
		}
	}
	return nil
}

// maxCheckRuns bounds the runs one Runs answer carries (about 20 bytes
// each): a replica with more runs than that between its acknowledged
// writes and the server's high-water mark asks again for the rest (see
// usync.Check).
const maxCheckRuns = 1024

// check answers the session's Check with the site's runs, when the log
// keeps them (none otherwise: every seq then matches).
func (c *conn) check(ctx context.Context, m *usync.Check, through uint64) {
	var runs []usync.Run
	if sr, ok := c.s.cfg.Log.(SiteRunner); ok && m.From <= through {
		var err error
		if runs, err = sr.Runs(ctx, c.tenant, c.sess.Site(), m.From, through, maxCheckRuns); err != nil {
			c.sess.Fail(c.s.unavailable("read site runs", err, "tenant", c.tenant))
			return
		}
		if len(runs) == maxCheckRuns {
			through = runs[len(runs)-1].First
		}
	}
	c.sess.Checked(runs, through)
}

// withRun returns ctx for an append of the site's transactions from
// first on, written in epoch: carrying the run they start (server.WithRun,
// which the log saves in the append's transaction) unless the run before
// them is of that epoch already, so once per opening of the replica's
// store that pushes, not once per append (see usync.Check). newRun
// reports whether it carries one: once the append commits, that run is
// the site's current one.
func (c *conn) withRun(ctx context.Context, first, epoch uint64) (_ context.Context, newRun bool, _ error) {
	sr, ok := c.s.cfg.Log.(SiteRunner)
	if !ok {
		return ctx, false, nil
	}
	site := c.sess.Site()
	if !c.runKnown {
		runs, err := sr.Runs(ctx, c.tenant, site, first-1, first-1, 1)
		if err != nil {
			return nil, false, c.s.unavailable("read site runs", err, "tenant", c.tenant)
		}
		if len(runs) > 0 {
			c.runEpoch = runs[0].Epoch
		}
		c.runKnown = true
	}
	if epoch == c.runEpoch {
		return ctx, false, nil
	}
	return WithRun(ctx, site, usync.Run{First: first, Epoch: epoch}), true, nil
}

// unixMilli is t in Unix milliseconds, 0 for the zero time (never).
func unixMilli(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func (c *conn) authenticate(ctx context.Context, h *usync.Hello) error {
	id, err := c.s.authenticate(ctx, h.Token, c.remote) // logs a refusal
	if err != nil {
		c.sess.Refuse(err)
		return nil
	}
	tenant := id.Tenant
	c.user, c.expires = id.User, id.Expires
	t, err := c.s.admit(ctx, tenant)
	if err != nil {
		c.refuse(ctx, err)
		return nil
	}
	c.limits = t
	c.tenant = tenant
	// Tracked from here, at the cursor it comes with, so that a
	// compaction does not move past it while the session starts.
	c.pos.Store(h.Cursor)
	c.s.sessions.add(c)
	c.tracked = true
	if c.scope, err = newScope(h.Subscriptions, c.live.Rules, c.user); err != nil {
		c.refuse(ctx, err)
		return nil
	}
	hw, err := c.s.cfg.Log.HighWater(ctx, tenant, h.Site)
	if err != nil {
		c.sess.Fail(c.s.unavailable("read high-water", err, "tenant", tenant))
		return nil
	}
	head, err := c.s.cfg.Log.Head(ctx, tenant)
	if err != nil {
		c.sess.Fail(c.s.unavailable("read head", err, "tenant", tenant))
		return nil
	}
	// A client with no cursor bootstraps from the rows read model (as of
	// the head now) rather than replaying the whole log.
	// A client resuming an interrupted bootstrap continues it from the
	// row it names, at the snapshot's seq.
	logStart := uint64(1)
	var after crdt.RowKey
	resubscribe := false
	// A cursor older than the log's oldest entry (retention forgot the
	// ones after it) bootstraps from the read model as a fresh one does.
	first := uint64(1)
	if ls, ok := c.s.cfg.Log.(Retainer); ok {
		if first, err = ls.LogStart(ctx, tenant); err != nil {
			c.sess.Fail(c.s.unavailable("read log start", err, "tenant", tenant))
			return nil
		}
	}
	// So does one below the compaction floor: the entries after it may
	// have lost their doc changes.
	if cp, ok := c.s.cfg.Log.(Compactor); ok {
		floor, err := cp.CompactFloor(ctx, tenant)
		if err != nil {
			c.sess.Fail(c.s.unavailable("read compaction floor", err, "tenant", tenant))
			return nil
		}
		first = max(first, floor)
	}
	behind := h.Cursor > 0 && h.Cursor+1 < first
	if _, ok := c.s.cfg.Log.(Snapshotter); ok && h.Resubscribe && h.Cursor > 0 && h.Cursor <= head && !behind {
		// The replica holds Previous up to its cursor: send the rows the
		// new subscriptions add, as they are now, then the log from the
		// cursor (entries it repeats are joins, idempotent).
		prev, err := newScope(h.Previous, c.live.Rules, c.user)
		if err != nil {
			c.refuse(ctx, err)
			return nil
		}
		c.prev, resubscribe = &prev, true
		c.snap = &usync.Snapshot{Seq: h.Cursor}
		if r := h.Resume; r.Seq == h.Cursor && r.After != (crdt.RowKey{}) {
			after = r.After
		}
		c.s.m.resubscribes.Inc()
	} else if sn, ok := c.s.cfg.Log.(Snapshotter); ok && (h.Cursor == 0 || behind) && head > 0 {
		rows, bytes, err := sn.SnapshotSize(ctx, tenant)
		if err != nil {
			c.sess.Fail(c.s.unavailable("snapshot size", err, "tenant", tenant))
			return nil
		}
		c.snap = &usync.Snapshot{Seq: head, TotalRows: rows, TotalBytes: bytes}
		if r := h.Resume; r.Seq > 0 && r.Seq <= head && r.Seq+1 >= first && r.After != (crdt.RowKey{}) {
			c.snap.Seq, after = r.Seq, r.After
			c.s.m.resumes.Inc()
		} else {
			sites, err := sn.SnapshotSites(ctx, tenant)
			if err != nil {
				c.sess.Fail(c.s.unavailable("snapshot sites", err, "tenant", tenant))
				return nil
			}
			c.snap.Sites = sites
		}
		logStart = c.snap.Seq + 1
	}
	now := c.s.cfg.Now().UnixMilli()
	c.sess.Accept(usync.AcceptParams{HighWater: hw, Head: head, LogStart: logStart, SnapshotAfter: after, Snapshot: resubscribe,
		ServerTime: crdt.MakeTimestamp(max(now, 0), 0), Expires: unixMilli(c.expires)})
	c.log(ctx, slog.LevelInfo, "session start", slog.String("remote", c.remote), slog.Uint64("cursor", h.Cursor),
		slog.Uint64("head", head), slog.Bool("snapshot", c.snap != nil))
	return nil
}

// position returns where the replica needs the log from: its cursor, or
// the snapshot's seq while it bootstraps.
func (c *conn) position() uint64 {
	p := c.sess.Cursor()
	if c.snap != nil {
		p = max(p, c.snap.Seq)
	}
	return p
}

// reauthenticate verifies the token of an Auth on the open session. A
// valid token of the session's tenant (still admitted) replaces the old
// one, and the session now expires with it; any other closes the session:
// the tenant never changes within a session.
func (c *conn) reauthenticate(ctx context.Context, a *usync.Auth) {
	id, err := c.s.authenticate(ctx, a.Token, c.remote) // logs a refusal
	if err != nil {
		c.sess.Refuse(err)
		return
	}
	tenant, until := id.Tenant, id.Expires
	if tenant != c.tenant {
		c.refuse(ctx, usync.Errorf(usync.CodeForbidden, "the token is for another tenant than the session's: reconnect to change tenants"))
		return
	}
	if id.User != c.user {
		// The session's scope and write rules are the user's.
		c.refuse(ctx, usync.Errorf(usync.CodeForbidden, "the token is for another user than the session's: reconnect to change users"))
		return
	}
	t, err := c.s.admit(ctx, tenant)
	if err != nil {
		c.refuse(ctx, err)
		return
	}
	c.limits, c.expires = t, until
	c.s.m.reauths.Inc()
	c.sess.Reauthenticated(unixMilli(until))
}

// append appends txs. A transaction the log refuses (*TxRefusedError: it
// would make a row larger than any message carries, or a doc change skips
// one of its site's changes) is refused with the error's code and
// appended empty, and the others are appended again: the log appends
// nothing of a call that fails, so each refusal costs one retry.
func (c *conn) append(ctx context.Context, txs []crdt.Tx, rejects []rejection) ([]uint64, []crdt.Tx, []rejection, error) {
	for {
		start := time.Now()
		actx, span := c.startAppend(ctx, txs)
		c.appendSpan, c.wasNumbered, c.numberedSeqs = span, false, nil
		seqs, err := c.s.cfg.Log.Append(actx, c.tenant, txs)
		c.endAppend(span, seqs, err)
		now := time.Now()
		c.s.m.appendTime.Observe(now.Sub(start).Seconds())
		switch {
		case err == nil && !c.wasNumbered:
			// The log did not call Numbered: note the entries now.
			c.s.appends.record(c.tenant, seqs, now)
			c.s.tr.recordAppend(span, c.tenant, seqs)
		case err != nil && c.wasNumbered:
			// Numbered, then not committed: the numbers will be
			// given again.
			c.s.appends.forget(c.tenant, c.numberedSeqs)
			c.s.tr.forget(c.tenant, c.numberedSeqs)
		}
		c.appendSpan, c.wasNumbered, c.numberedSeqs = nil, false, nil
		if err == nil {
			c.s.sessions.appended(c.tenant)
		}
		var refused *TxRefusedError
		if !errors.As(err, &refused) {
			return seqs, txs, rejects, err
		}
		i := slices.IndexFunc(txs, func(t crdt.Tx) bool { return t.Site == refused.Tx.Site && t.Seq == refused.Tx.Seq })
		if i < 0 || len(txs[i].Ops) == 0 {
			return nil, nil, nil, fmt.Errorf("append: %w", err) // not one of ours: a bug
		}
		orig := txs[i]
		txs = slices.Clone(txs)
		txs[i] = crdt.Tx{Site: orig.Site, Seq: orig.Seq, Time: orig.Time}
		rejects = append(rejects, rejection{tx: &orig, code: refused.Code, why: refused.Error()})
	}
}

// numbered notes, as the log numbers the entries of the append in
// progress (see Numbered), when they were appended and its trace, before
// any session can read them.
func (c *conn) numbered(seqs []uint64) {
	c.wasNumbered, c.numberedSeqs = true, seqs
	c.s.appends.record(c.tenant, seqs, time.Now())
	c.s.tr.recordAppend(c.appendSpan, c.tenant, seqs)
}

// rejection is a transaction a write rule refused.
type rejection struct {
	tx   *crdt.Tx // as pushed
	code usync.Code
	why  string
}

// validate runs the quotas, the rules and the write hook on each
// transaction. It returns the transactions to append, with each refused
// one replaced by an empty transaction of the same site and seq, and the
// refusals; an error when they could not be checked.
func (c *conn) validate(ctx context.Context, txs []crdt.Tx) ([]crdt.Tx, []rejection, error) {
	ctx = context.WithValue(ctx, userKey{}, c.user)
	var out []crdt.Tx
	var rejects []rejection
	owners := map[crdt.RowKey][]byte{}
	var quota quotaState
	for i := range txs {
		// The rules every replica relies on come first: a transaction
		// that breaks them would stop every replica that applies it.
		err := crdt.ValidateTx(&txs[i], c.s.cfg.Schema, c.s.cfg.Limits)
		if err != nil {
			err = usync.Errorf(usync.TxCode(err), "%v", err)
		} else if n := txs[i].SizeBound(); n > c.s.cfg.Limits.MaxRowBytes {
			err = usync.Errorf(usync.CodeRowTooLarge, "transaction of about %d bytes, over the %d one may carry: split it", n, c.s.cfg.Limits.MaxRowBytes)
		}
		if err == nil {
			err = c.checkRules(ctx, &txs[i], owners)
		}
		if err == nil && c.s.cfg.Validate != nil {
			err = c.s.cfg.Validate(ctx, c.tenant, &txs[i])
		}
		if err == nil { // last: it counts what it admits
			err = c.checkQuota(ctx, &txs[i], &quota)
		}
		if err == nil {
			continue
		}
		if se := (*usync.Error)(nil); errors.As(err, &se) && (se.Code == usync.CodeUnavailable || se.Code == usync.CodeInternal) {
			// The rules could not be checked: fail the push (the client
			// retries it) rather than refuse the transaction for good.
			return nil, nil, err
		}
		if out == nil {
			out = append([]crdt.Tx(nil), txs...)
		}
		out[i] = crdt.Tx{Site: txs[i].Site, Seq: txs[i].Seq, Time: txs[i].Time}
		code := usync.CodeInvalidTx
		var se *usync.Error
		if errors.As(err, &se) {
			code = se.Code
		}
		rejects = append(rejects, rejection{tx: &txs[i], code: code, why: err.Error()})
	}
	if out == nil {
		return txs, nil, nil
	}
	return out, rejects, nil
}

// reject tells the client of each refused transaction, with the server's
// states of the rows it touched, before the Ack.
func (c *conn) reject(ctx context.Context, rejects []rejection) error {
	rs, ok := c.s.cfg.Log.(RowStater)
	for _, r := range rejects {
		m := &usync.Reject{Site: r.tx.Site, Seq: r.tx.Seq, Code: r.code, Reason: r.why}
		if ok {
			seen := map[crdt.RowKey]bool{}
			var keys []crdt.RowKey
			for _, op := range r.tx.Ops {
				k := crdt.RowKey{Collection: op.Collection, Row: op.Row}
				if !seen[k] {
					seen[k] = true
					keys = append(keys, k)
				}
			}
			rows, err := rs.RowStates(ctx, c.tenant, keys)
			if err != nil {
				return fmt.Errorf("read refused rows: %w", err)
			}
			// The same read rules as every path: a row the session may
			// not read goes back without its state (the client then
			// holds it as never written, as its subscriptions would).
			for i := range rows {
				if rows[i].State == nil {
					continue
				}
				row, err := crdt.DecodeRow(rows[i].State)
				if err != nil || !c.scope.admits(rows[i].Collection, row) {
					rows[i].State = nil
				}
			}
			m.Rows = rows
		}
		c.sess.RejectTx(m) // counted and logged when written
	}
	return nil
}

// checkClocks refuses transactions stamped further ahead of the server's
// clock than MaxDrift: accepted, they would drag every replica's clock
// into the future.
func (c *conn) checkClocks(txs []crdt.Tx) *usync.Error {
	now := c.s.cfg.Now()
	for i := range txs {
		if ahead := txs[i].Time.Time().Sub(now); ahead > c.live.MaxDrift {
			return usync.Errorf(usync.CodeClockDrift, "transaction %d is stamped %s ahead of the server's clock (max %s): fix the device's clock",
				txs[i].Seq, ahead.Round(time.Second), c.live.MaxDrift)
		}
	}
	return nil
}

// snapshotAdmits reports whether a snapshot row goes to the client: it is
// in its scope and, during a resubscription, not in what it already has.
func (c *conn) snapshotAdmits(r usync.SnapshotRow) (bool, error) {
	if !c.scope.has(r.Collection) || c.prev == nil && !c.scope.filtered(r.Collection) {
		return c.scope.has(r.Collection), nil
	}
	row, err := crdt.DecodeRow(r.State)
	if err != nil {
		return false, err
	}
	return c.scope.admits(r.Collection, row) && (c.prev == nil || !c.prev.admits(r.Collection, row)), nil
}

// deliverSnapshot sends the next chunk of the bootstrap snapshot.
func (c *conn) deliverSnapshot(ctx context.Context, after crdt.RowKey) error {
	sn, ok := c.s.cfg.Log.(Snapshotter)
	if !ok || c.snap == nil {
		c.sess.Fail(usync.Errorf(usync.CodeInternal, "snapshot without a read model"))
		return c.ready(ctx)
	}
	rows, more, err := sn.SnapshotRows(ctx, c.tenant, after, c.live.BatchRows, c.live.BatchBytes)
	if err != nil {
		c.sess.Fail(c.s.unavailable("read snapshot", err, "tenant", c.tenant))
		return c.ready(ctx)
	}
	m := *c.snap
	m.After, m.Rows, m.Last = after, rows, !more
	if c.scope.restricted() || c.prev != nil {
		kept := rows[:0:0]
		for _, r := range rows {
			ok, err := c.snapshotAdmits(r)
			if err != nil {
				c.log(ctx, slog.LevelError, "decode snapshot row", slog.String("collection", r.Collection), slog.String("row", r.Row), slog.String("err", err.Error()))
				c.sess.Fail(usync.Errorf(usync.CodeInternal, "a stored row does not decode: retry later"))
				return c.ready(ctx)
			}
			if ok {
				kept = append(kept, r)
			}
		}
		m.Rows = kept
		if len(kept) == 0 && !m.Last {
			// Nothing subscribed in this chunk: skip ahead without
			// spending a credit on an empty one.
			last := rows[len(rows)-1]
			return c.deliverSnapshot(ctx, crdt.RowKey{Collection: last.Collection, Row: last.Row})
		}
	}
	if after != (crdt.RowKey{}) {
		m.Sites = nil // sent with the first chunk
	}
	c.s.m.snapshotRows.Add(float64(len(rows)))
	c.sess.DeliverSnapshot(&m)
	return c.ready(ctx)
}

// deliver sends the log entries after the session's cursor while it has credit.
func (c *conn) deliver(ctx context.Context) error {
	for {
		from, snapshot, _, ok := c.sess.Want()
		if !ok || snapshot {
			return nil
		}
		b, err := c.read(ctx, from)
		if err != nil {
			c.sess.Fail(c.s.unavailable("read log", err, "tenant", c.tenant))
			return c.ready(ctx)
		}
		if b.to == 0 {
			return nil
		}
		if b.first != from+1 {
			// Retention forgot entries after the cursor while the client
			// was connected: it must bootstrap again.
			c.sess.Fail(usync.Errorf(usync.CodeResync, "the log no longer holds the entries after %d: reconnect to bootstrap", from))
			return c.ready(ctx)
		}
		if head, err := c.s.cfg.Log.Head(ctx, c.tenant); err == nil {
			c.s.m.lag.Observe(float64(head - from))
		}
		c.rewritten = b.rewritten
		chs, spans := c.fanout(ctx, b.chs)
		own := c.sess.Deliver(chs, b.rows, b.to) // never the client's own
		c.s.m.delivered.Add(float64(len(b.chs) - own))
		c.s.m.ownSkipped.Add(float64(own))
		err = c.ready(ctx)
		endSpans(spans, err)
		if err != nil {
			return err
		}
	}
}

// batch is what one Changes carries: the entries (from first to to) as
// the session may see them, and the filtered rows' states.
type batch struct {
	first, to uint64
	chs       []usync.Change
	rows      []usync.SnapshotRow
	rewritten bool
}

// read reads the next batch of log entries after from, bounded by
// BatchRows and BatchBytes, cut to what the session may see. The whole
// states of filtered rows count towards BatchBytes too: a batch whose
// rows go over is read again with half the entries (one entry always
// goes). A zero batch means the log has nothing after from.
func (c *conn) read(ctx context.Context, from uint64) (batch, error) {
	limit := c.live.BatchRows
	for {
		chs, err := c.s.cfg.Log.Read(ctx, c.tenant, from, limit, c.live.BatchBytes)
		if err != nil || len(chs) == 0 {
			return batch{}, err
		}
		b := batch{first: chs[0].Seq, to: chs[len(chs)-1].Seq}
		b.chs, b.rows, b.rewritten, err = c.visible(ctx, chs)
		if err != nil {
			return batch{}, err
		}
		size := 0
		for _, r := range b.rows {
			size += len(r.State)
		}
		if size <= c.live.BatchBytes || len(chs) == 1 {
			return b, nil
		}
		limit = len(chs) / 2
	}
}

func (c *conn) write(ctx context.Context, m usync.Message) error {
	var b []byte
	var err error
	if ch, ok := m.(*usync.Changes); ok {
		buf := wsframe.Get()
		defer wsframe.Put(buf, &b)
		b, err = c.encodeChanges(*buf, ch)
	} else {
		b, err = c.s.codec.Encode(m)
	}
	if err != nil {
		return fmt.Errorf("encode %s: %w", m.Type(), err)
	}
	switch m := m.(type) {
	case *usync.Ack:
		c.s.m.acks.Inc()
	case *usync.ErrorMessage:
		c.s.m.rejects.WithLabelValues(m.Code.String()).Inc()
	case *usync.Reject:
		// Every refused transaction, whether the session (a gap) or the
		// server's rules refused it, is counted and logged here, once.
		c.s.m.rejects.WithLabelValues(m.Code.String()).Inc()
		c.log(ctx, slog.LevelWarn, "write refused", slog.Uint64("seq", m.Seq), slog.Int("code", int(m.Code)), slog.String("reason", loggedReason(m.Reason)))
	}
	c.s.m.bytesOut.Add(float64(len(b)))
	c.bytesOut += int64(len(b))
	if err := c.writeFrame(ctx, b); err != nil {
		return err
	}
	switch m := m.(type) {
	case *usync.Ack:
		if len(c.pushed) > 0 {
			c.s.m.pushAck.Observe(time.Since(c.pushed[0]).Seconds())
			c.pushed = c.pushed[1:]
		}
	case *usync.Changes:
		c.s.appends.observe(c.s.m.delivery, c.tenant, m.Changes, time.Now())
	}
	return nil
}

// writeFrame writes one frame, bounded by WriteTimeout (see wtimer) and
// by the connection's context.
func (c *conn) writeFrame(ctx context.Context, b []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.writeStart.Store(time.Now().UnixNano())
	defer c.writeStart.Store(0)
	c.wtimer.Reset(c.s.cfg.WriteTimeout)
	err := c.ws.Write(c.wctx, websocket.MessageBinary, b)
	c.wtimer.Stop()
	if err != nil && c.writeExpired.Load() {
		return fmt.Errorf("write to a client that read nothing for %s (WriteTimeout): %w", c.s.cfg.WriteTimeout, err)
	}
	return err
}

// writeTimedOut is wtimer's: it closes the WebSocket if the write under
// way has taken WriteTimeout (not if the timer fired for one that ended).
func (c *conn) writeTimedOut() {
	start := c.writeStart.Load()
	if start != 0 && time.Since(time.Unix(0, start)) >= c.s.cfg.WriteTimeout {
		c.writeExpired.Store(true)
		c.ws.CloseNow()
	}
}

// loggedReason is a refusal's reason as the server's log keeps it: a
// malformed value's refusal quotes part of the value, which stays out.
func loggedReason(reason string) string {
	invalid := crdt.ErrInvalidValue.Error()
	if before, _, ok := strings.Cut(reason, invalid); ok {
		return before + invalid
	}
	return reason
}

// encodeChanges encodes a Changes from the encodings the log keeps of its
// newest entries, when it has them: fanning an entry out to many
// connections then encodes it once. The frame is built in buf's memory
// when it has room.
func (c *conn) encodeChanges(buf []byte, ch *usync.Changes) ([]byte, error) {
	if enc, ok := c.s.cfg.Log.(EncodedTail); ok && !c.rewritten && len(ch.Rows) == 0 {
		if txs, ok := enc.Encoded(c.tenant, ch.Changes); ok {
			seqs := make([]uint64, len(ch.Changes))
			var traces []string
			for i := range ch.Changes {
				seqs[i] = ch.Changes[i].Seq
				if t := ch.Changes[i].Trace; t != "" {
					if traces == nil {
						traces = make([]string, len(ch.Changes))
					}
					traces[i] = t
				}
			}
			return c.s.codec.AppendChangesTraced(buf, ch.From, ch.To, seqs, traces, txs)
		}
	}
	return c.s.codec.Encode(ch)
}

// close ends the WebSocket with a close code carrying the protocol code.
// It returns the session's close code and reason: the server's, or the
// client's when the client closed it (StatusAbnormalClosure, with the
// error, when the connection just dropped).
func (c *conn) close(err error) (websocket.StatusCode, string) {
	var se *usync.Error
	var ce websocket.CloseError
	switch {
	case err == nil:
		c.ws.Close(websocket.StatusNormalClosure, "")
		return websocket.StatusNormalClosure, ""
	case errors.As(err, &se):
		reason := se.Error()
		if len(reason) > 120 { // a close frame's reason is at most 123 bytes
			reason = reason[:120]
		}
		c.ws.Close(CloseCode(se.Code), reason)
		return CloseCode(se.Code), reason
	case errors.As(err, &ce):
		c.ws.CloseNow()
		return ce.Code, ce.Reason
	default:
		c.ws.CloseNow()
		return websocket.StatusAbnormalClosure, err.Error()
	}
}

// CloseCode is the WebSocket close code for a protocol error code: 4000
// plus the code's offset from 1000 (CodeGap 1200 closes with 4200).
func CloseCode(c usync.Code) websocket.StatusCode {
	if c < 1000 || c > 1999 {
		return websocket.StatusInternalError
	}
	return websocket.StatusCode(4000 + int(c) - 1000)
}

func asSyncError(err error) *usync.Error {
	var se *usync.Error
	if errors.As(err, &se) {
		return se
	}
	return usync.Errorf(usync.CodeBadMessage, "%v", err)
}
