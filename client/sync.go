package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"time"

	"github.com/coder/websocket"
	"github.com/unosync/uno/crdt"
	"github.com/unosync/uno/internal/wsframe"
	"github.com/unosync/uno/store"
	usync "github.com/unosync/uno/sync"
)

// ErrNoServer reports a sync without Config.Server.
var ErrNoServer = errors.New("client: no server configured (set Config.Server)")

// SyncState is where the client is with its server.
type SyncState uint8

// Sync states.
const (
	StateOffline    SyncState = iota // not connected (no server, or waiting to retry)
	StateConnecting                  // dialing and handshaking
	StateSyncing                     // connected, with work in flight
	StateUpToDate                    // connected, nothing pending, caught up
)

func (s SyncState) String() string {
	return [...]string{"offline", "connecting", "syncing", "up-to-date"}[s]
}

// Status describes the client's sync.
type Status struct {
	State SyncState
	// Pending counts local transactions the server has not acknowledged.
	Pending int
	// LastSync is when the client was last up to date.
	LastSync time.Time
	// Err is the error that ended the last connection, if any; its code
	// (usync.CodeOf) says whether retrying can help.
	Err error
	// Retry is when the next connection attempt is due (while offline);
	// a Sync call, or a local write, may bring the attempt forward.
	Retry time.Time
	// Bootstrap is the progress of the last bootstrap from a snapshot.
	Bootstrap Progress

	errAt time.Time // when Err was set
}

// Progress counts a bootstrap: rows and bytes received so far, and the
// totals the server announced.
type Progress struct {
	Rows, Bytes           uint64
	TotalRows, TotalBytes uint64
	Done                  bool
}

// Status returns the current sync status.
func (c *Client) Status() Status {
	c.syncMu.Lock()
	defer c.syncMu.Unlock()
	return c.status
}

// StatusChanges subscribes to the sync status: the returned channel
// receives the current status at once and then the status each time it
// changes. It keeps only the latest status, replacing one not yet
// received, so a slow reader never blocks the client. The subscription
// ends, and the channel is closed, when ctx ends or the client closes;
// cancel ctx when done with it, as the client keeps every subscription
// until then.
func (c *Client) StatusChanges(ctx context.Context) <-chan Status {
	c.syncMu.Lock()
	defer c.syncMu.Unlock()
	ch := make(chan Status, 1)
	ch <- c.status
	if c.statusSubs == nil || ctx.Err() != nil { // closed, or cancelled already
		close(ch)
		return ch
	}
	c.statusSubs[ch] = context.AfterFunc(ctx, func() {
		c.syncMu.Lock()
		defer c.syncMu.Unlock()
		if _, ok := c.statusSubs[ch]; ok {
			delete(c.statusSubs, ch)
			close(ch)
		}
	})
	return ch
}

func (c *Client) setStatus(f func(*Status)) {
	c.syncMu.Lock()
	defer c.syncMu.Unlock()
	old := c.status
	f(&c.status)
	if c.status.State == StateUpToDate && old.State != StateUpToDate {
		c.status.LastSync = c.cfg.Now()
	}
	if c.status == old {
		return
	}
	for ch := range c.statusSubs {
		select {
		case <-ch:
		default:
		}
		ch <- c.status
	}
	if c.status.State == StateUpToDate {
		close(c.upToDate)
		c.upToDate = make(chan struct{})
	}
}

// wakeSync tells the background loop that there is something to push.
func (c *Client) wakeSync() {
	select {
	case c.syncWake <- struct{}{}:
	default:
	}
}

// Sync runs one sync and returns when the replica is up to date: every
// local transaction acknowledged by the server and every change it held
// applied. With the background loop running (the default when Server is
// set), Sync waits for it, and if the loop is waiting to reconnect it
// connects at once, whatever the backoff (one attempt per call: if that
// attempt fails, Sync waits for the next one the backoff allows, until
// ctx ends). A local write also ends that wait, but not twice in a row:
// when an attempt a write started fails, writes leave the next wait
// alone, so a loop of writes cannot hammer a server that is down. With
// Config.ManualSync Sync connects, syncs and disconnects itself. Errors
// from the server match the usync Err variables (errors.Is).
func (c *Client) Sync(ctx context.Context) error {
	if err := c.check(); err != nil {
		return err
	}
	if c.cfg.Server == "" {
		return ErrNoServer
	}
	if c.cfg.ManualSync {
		return c.connect(ctx, false)
	}
	// Connect now if the loop is waiting to retry, whatever its backoff.
	// An error that ended a connection before this call is not its
	// answer: the attempt it asks for may fare better (a tenant resumed,
	// a server back).
	begun := time.Now()
	select {
	case c.syncNow <- struct{}{}:
	default:
	}
	// Ask the live connection for a barrier: the server's head now. Then
	// wait until it is applied and nothing is pending. A barrier lost with
	// its connection is asked for again.
	var head uint64
	var reply chan uint64
	asked := time.Time{}
	for {
		c.syncMu.Lock()
		st, wait := c.status, c.upToDate
		c.syncMu.Unlock()
		if st.Err != nil && !usync.CodeOf(st.Err).Retryable() && isProtocol(st.Err) && st.State == StateOffline && !st.errAt.Before(begun) {
			return st.Err
		}
		if reply == nil && st.State >= StateSyncing && time.Since(asked) > c.cfg.Heartbeat {
			r := make(chan uint64, 1)
			select {
			case c.barriers <- r:
				reply, asked = r, time.Now()
			default: // the loop is busy; ask again soon
			}
		}
		select {
		case h := <-reply:
			head, reply = h, nil
			head++ // marks "known", as 0 is a valid head
		default:
		}
		if head > 0 && st.State == StateUpToDate {
			cursor, err := c.store.Cursor(ctx)
			if err != nil {
				return err
			}
			n, err := c.store.Pending(ctx)
			if err != nil {
				return err
			}
			if n == 0 && cursor >= head-1 {
				return nil
			}
		}
		select {
		case <-wait:
		case h := <-reply:
			head, reply = h+1, nil
		case <-time.After(20 * time.Millisecond): // re-check status, cursor and pending
			if reply != nil && time.Since(asked) > c.cfg.Heartbeat {
				reply = nil // lost with its connection: ask again
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// runSync is the background loop: connect, sync live until the
// connection ends, wait (retryDelay) and connect again. A Sync call ends
// the wait at once. A local write ends it too, but never twice in a row:
// when an attempt a write started fails, the next wait runs its course
// (or a Sync ends it), so a loop of writes against a dead server at most
// doubles the attempts backoff allows.
func (c *Client) runSync(ctx context.Context) {
	failures := 0
	byWrite := false // the last attempt was started by a local write
	for ctx.Err() == nil {
		// This attempt serves every Sync call and write so far.
		drain(c.syncNow)
		drain(c.syncWake)
		start := time.Now()
		err := c.connect(ctx, true)
		if ctx.Err() != nil {
			return
		}
		if time.Since(start) > c.cfg.BackoffMax {
			failures, byWrite = 0, false // a long session: start backing off afresh
		}
		failures++
		n := failures
		refreshable := c.cfg.TokenSource != nil && usync.CodeOf(err) == usync.CodeTokenExpired
		if err != nil && !usync.CodeOf(err).Retryable() && isProtocol(err) && !refreshable {
			n = math.MaxInt // no retry can fix it (a refused token): wait the longest, jittered
		}
		delay := retryDelay(c.cfg.BackoffMin, c.cfg.BackoffMax, n, rand.Int64N)
		c.cfg.Logger.Info("sync disconnected", "err", err, "failures", failures, "retry_in", delay)
		c.setStatus(func(s *Status) {
			s.State, s.Err, s.Retry, s.errAt = StateOffline, err, c.cfg.Now().Add(delay), time.Now()
		})
		wake := c.syncWake
		if byWrite {
			wake = nil // a write may not end this wait
		}
		timer := time.NewTimer(delay)
		select {
		case <-timer.C:
			byWrite = false
		case <-c.syncNow:
			byWrite = false
		case <-wake:
			byWrite = true
		case <-ctx.Done():
		}
		timer.Stop()
	}
}

// retryDelay is how long to wait before connecting again after failures
// (at least 1) attempts in a row failed: a random duration in
// (0, min(hi, lo·2^(failures-1))], exponential backoff with full jitter,
// so that clients a server outage cut off together do not come back
// together. randN(n) returns a random integer in [0, n), as
// rand.Int64N does.
func retryDelay(lo, hi time.Duration, failures int, randN func(int64) int64) time.Duration {
	ceil := max(min(lo, hi), 1)
	for i := 1; i < failures && ceil < hi; i++ {
		ceil = min(hi, ceil*2)
		if ceil <= 0 { // overflow
			ceil = hi
		}
	}
	return time.Duration(randN(int64(ceil))) + 1
}

// drain empties a wake-up channel of capacity one.
func drain(ch chan struct{}) {
	select {
	case <-ch:
	default:
	}
}

func isProtocol(err error) bool {
	var se *usync.Error
	return errors.As(err, &se)
}

// connect runs one connection: until caught up (live false) or until it
// ends (live true). A connection that finds the server holding writes of
// this replica its database lost (store.ErrLostWrites: a power cut under
// relaxed durability, a file restored from an older copy) is followed at
// once by one that bootstraps, which brings them back.
//
// One that finds the server holding other writes of this replica under
// sequence numbers it used again (its database went back, then wrote)
// moves those writes to a new site (store.Store.Fork) and is followed at
// once by one that bootstraps as the new site: both sets of writes
// survive.
func (c *Client) connect(ctx context.Context, live bool) error {
	err := c.connectOnce(ctx, live)
	// The new site may hold other writes already, from an earlier fork of
	// an earlier state of this database: a few forks in a row can follow.
	for forks := 0; errors.Is(err, usync.ErrForked) && ctx.Err() == nil && forks < maxForks; forks++ {
		c.cfg.Logger.Warn("sync: this replica's database went back to an earlier state (a power cut with relaxed durability, or a file restored from an older copy) and wrote again under sequence numbers the server holds for other writes; those writes moved to a new site, and the replica bootstraps again", "err", err)
		err = c.connectOnce(ctx, live)
	}
	if errors.Is(err, store.ErrLostWrites) && ctx.Err() == nil {
		c.cfg.Logger.Warn("sync: the server holds writes this replica's database lost (a power cut with relaxed durability, or a file restored from an older copy); bootstrapping again to get them back", "err", err)
		err = c.connectOnce(ctx, live)
	}
	return err
}

// maxForks bounds the forks one connect follows at once; past it the
// sync loop reconnects after its backoff, as after any retryable error.
const maxForks = 8

func (c *Client) connectOnce(ctx context.Context, live bool) error {
	c.setStatus(func(s *Status) { s.State = StateConnecting })
	codec, err := usync.NewCodec(usync.CodecConfig{})
	if err != nil {
		return err
	}
	defer codec.Close()
	dctx, cancel := context.WithTimeout(ctx, c.cfg.DialTimeout)
	ws, _, err := websocket.Dial(dctx, c.cfg.Server, dialOptions(c.cfg.TLS))
	cancel()
	if err != nil {
		return fmt.Errorf("sync: connect %s: %w", c.cfg.Server, err)
	}
	defer ws.CloseNow()
	ws.SetReadLimit(int64(codec.Limits().MaxFrameBytes))
	cursor, err := c.store.Cursor(ctx)
	if err != nil {
		return err
	}
	var resume usync.Resume
	c.syncMu.Lock()
	if b := c.boot; b != nil && b.after != (crdt.RowKey{}) {
		resume = usync.Resume{Seq: b.seq, After: b.after}
	}
	c.syncMu.Unlock()
	subs, prev, err := c.subscriptions(ctx, cursor)
	if err != nil {
		return err
	}
	token := c.cfg.Token
	if c.cfg.TokenSource != nil {
		if token, err = c.cfg.TokenSource(ctx); err != nil {
			return fmt.Errorf("sync: get a token: %w", err)
		}
	}
	runs, last := c.store.Runs()
	sess := usync.NewClientSession(usync.ClientConfig{Site: c.store.Site(), Token: token, SchemaVersion: c.schemaVersion(),
		Subscriptions: subs, Resubscribe: prev != nil, Previous: prev, Resume: resume, Window: 8, CreditBatch: 4,
		Runs: syncRuns(runs), Last: last}, cursor)
	d := &syncDriver{c: c, ws: ws, codec: codec, sess: sess, live: live, waiting: map[uint64]chan uint64{}}
	sess.Start()
	if err := d.run(ctx); err != nil {
		return err
	}
	ws.Close(websocket.StatusNormalClosure, "")
	return nil
}

// syncRuns converts the store's runs for the session.
func syncRuns(runs []store.Run) []usync.Run {
	out := make([]usync.Run, len(runs))
	for i, r := range runs {
		out[i] = usync.Run{First: r.First, Epoch: r.Epoch}
	}
	return out
}

// runAt returns the epoch of the outbox entry seq and the first seq of
// the next run (0: none).
func runAt(runs []store.Run, seq uint64) (epoch, next uint64) {
	for _, r := range runs {
		if r.First > seq {
			return epoch, r.First
		}
		epoch = r.Epoch
	}
	return epoch, 0
}

// subscriptions returns the subscriptions to send and, when the replica
// holds others up to its cursor, those (non-nil): the server then sends
// just the rows the new ones add, and once they are in the new ones are
// recorded as held. The record is kept in the store.
func (c *Client) subscriptions(ctx context.Context, cursor uint64) (subs, prev []usync.Subscription, err error) {
	subs = make([]usync.Subscription, len(c.cfg.Subscriptions))
	for i, name := range c.cfg.Subscriptions {
		subs[i] = usync.Subscription{Collection: name}
		where := c.cfg.Where[name]
		fields := make([]string, 0, len(where))
		for f := range where {
			fields = append(fields, f)
		}
		sort.Strings(fields)
		for _, f := range fields {
			v, err := json.Marshal(where[f])
			if err != nil {
				return nil, nil, fmt.Errorf("sync: subscription %s: where %s: %w", name, f, err)
			}
			subs[i].Where = append(subs[i].Where, usync.Filter{Field: f, Value: v})
		}
	}
	record, err := json.Marshal(subs)
	if err != nil {
		return nil, nil, err
	}
	held, err := c.store.Subscriptions(ctx)
	if err != nil {
		return nil, nil, err
	}
	c.syncMu.Lock()
	c.resubscribing = nil
	c.syncMu.Unlock()
	switch {
	case bytes.Equal(held, record):
		return subs, nil, nil
	case cursor == 0 || held == nil:
		// Nothing received yet (or a replica from before the record was
		// kept): it will hold these.
		return subs, nil, c.store.SetSubscriptions(ctx, record)
	}
	if err := json.Unmarshal(held, &prev); err != nil {
		return nil, nil, fmt.Errorf("sync: the replica's subscriptions record: %w", err)
	}
	if prev == nil {
		prev = []usync.Subscription{}
	}
	c.syncMu.Lock()
	c.resubscribing = record
	c.syncMu.Unlock()
	return subs, prev, nil
}

func (c *Client) schemaVersion() int {
	if c.cfg.Schema == nil {
		return 0
	}
	return c.cfg.Schema.Version
}

// syncDriver does a ClientSession's IO over one WebSocket, in the order
// ClientReady documents.
type syncDriver struct {
	c       *Client
	ws      *websocket.Conn
	codec   *usync.Codec
	sess    *usync.ClientSession
	live    bool
	nonce   uint64
	waiting map[uint64]chan uint64 // barriers asked for, by Ping nonce
	renew   renewal                // renewing the token in band
	ahead   usync.Message          // a message read ahead (readAhead), stepped next
	wctx    context.Context        // run's context without its cancellation, for frames
}

func (d *syncDriver) run(ctx context.Context) (err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer func() { d.endRenewal(err) }()
	// Frames are read and written under ctx without its cancellation:
	// the WebSocket registers a callback on the context of each read and
	// write, a cost per frame. Closing the WebSocket once when ctx ends
	// does what a cancelled read or write did.
	d.wctx = context.WithoutCancel(ctx)
	defer context.AfterFunc(ctx, func() { d.ws.CloseNow() })()
	// Frames are read into pooled memory (wsframe), which goes back once
	// the frame is decoded: the codec's decoders copy what a message keeps.
	frames := make(chan *[]byte)
	readErr := make(chan error, 1)
	go func() {
		for {
			typ, b, err := wsframe.Read(d.wctx, d.ws)
			if err != nil {
				readErr <- fmt.Errorf("sync: read: %w", err)
				return
			}
			if typ != websocket.MessageBinary {
				wsframe.Put(b, b)
				readErr <- usync.Errorf(usync.CodeBadMessage, "text frame from the server")
				return
			}
			select {
			case frames <- b:
			case <-ctx.Done():
				wsframe.Put(b, b)
				return
			}
		}
	}()
	beat := time.NewTicker(d.c.cfg.Heartbeat)
	defer beat.Stop()
	lastHeard := time.Now()
	for {
		if err := d.ready(ctx); err != nil {
			return err
		}
		if err := d.push(ctx); err != nil {
			return err
		}
		if err := d.ready(ctx); err != nil {
			return err
		}
		done, err := d.status(ctx)
		if err != nil {
			return err
		}
		if done && !d.live {
			return nil
		}
		var reauths chan chan error // renewals are asked for only on an open session
		if d.sess.Open() {
			reauths = d.c.reauths
		}
		if m := d.ahead; m != nil { // read ahead, not a batch of changes
			d.ahead = nil
			d.step(m)
			continue
		}
		select {
		case b := <-frames:
			lastHeard = time.Now()
			m, err := d.decode(b)
			if err != nil {
				var se *usync.Error
				errors.As(err, &se)
				d.sess.Fail(se)
				continue
			}
			d.step(m)
			d.readAhead(frames)
		case <-d.c.syncWake:
		case <-d.c.syncNow: // a Sync call: this connection serves it
		case r := <-d.c.barriers:
			d.nonce++
			d.waiting[d.nonce] = r
			d.sess.Ping(d.nonce)
		case <-d.renew.due():
			d.renew.timer = nil
			d.fetchToken(ctx)
		case w := <-reauths:
			d.askedToRenew(ctx, w)
		case res := <-d.renew.fetch:
			d.gotToken(ctx, res)
		case <-beat.C:
			if time.Since(lastHeard) > 3*d.c.cfg.Heartbeat {
				return usync.Errorf(usync.CodeUnavailable, "no word from the server for %s", time.Since(lastHeard).Round(time.Second))
			}
			d.nonce++
			d.sess.Ping(d.nonce)
		case err := <-readErr:
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// status publishes the sync status and reports whether the replica is up
// to date: welcomed, nothing pending, caught up with the announced head.
// It runs on every pass of the loop: the store keeps its count of pending
// writes (Store.Pending reads it, it does not count the outbox).
func (d *syncDriver) status(ctx context.Context) (bool, error) {
	n, err := d.c.store.Pending(ctx)
	if err != nil {
		return false, err
	}
	w := d.sess.Welcome()
	d.c.syncMu.Lock()
	resubscribing := d.c.resubscribing != nil
	d.c.syncMu.Unlock()
	done := w != nil && d.sess.Open() && n == 0 && d.sess.Cursor() >= w.Head && !resubscribing
	d.c.setStatus(func(s *Status) {
		s.Pending, s.Err = n, nil
		switch {
		case done:
			s.State = StateUpToDate
		case w != nil:
			s.State = StateSyncing
		}
	})
	return done, nil
}

// maxPushBytes bounds the transactions of one Push: well within a frame
// (usync.CodecConfig.MaxFrameBytes, 4 MiB), even incompressible.
const maxPushBytes = 1 << 20

// push hands the session the next outbox entries it can take.
func (d *syncDriver) push(ctx context.Context) error {
	for {
		after, max, ok := d.sess.WantPush()
		if !ok {
			return nil
		}
		// The loop passes here once per frame it receives: a replica
		// with nothing pending (a receiver) skips the query of its
		// outbox, asking only the count the store keeps in memory.
		if n, err := d.c.store.Pending(ctx); err != nil || n == 0 {
			return err
		}
		txs, err := d.c.store.Outbox(ctx, after, max)
		if err != nil || len(txs) == 0 {
			return err
		}
		// A Push stays within maxPushBytes (one transaction always goes:
		// the store refuses any larger than a message carries), so it
		// fits a frame, and carries one run's transactions, labelled
		// with its epoch.
		runs, _ := d.c.store.Runs()
		epoch, next := runAt(runs, txs[0].Seq)
		flat := make([]crdt.Tx, 0, len(txs))
		size := 0
		for _, tx := range txs {
			if size += tx.SizeBound(); len(flat) > 0 && (size > maxPushBytes || next != 0 && tx.Seq >= next) {
				break
			}
			flat = append(flat, *tx)
		}
		span, traceparent := d.c.tr.startPush(ctx, flat)
		err = d.sess.PushTraced(flat, traceparent, epoch)
		endSpan(span, err)
		if err != nil {
			return err
		}
	}
}

// step feeds the session a message from the server.
func (d *syncDriver) step(m usync.Message) {
	d.sess.Step(m)
	if nonce, head := d.sess.LastPong(); d.waiting[nonce] != nil {
		d.waiting[nonce] <- head
		delete(d.waiting, nonce)
	}
}

// readAhead, after an Ack, steps a batch of changes that has arrived
// already too, so that ready stores both in one transaction: an author's
// Ack is usually followed at once by the Changes that moves its cursor
// past its own entries. Any other message waits in d.ahead for the next
// turn (it must not be stepped before the Ack is stored).
func (d *syncDriver) readAhead(frames <-chan *[]byte) {
	if rd := d.sess.Ready(); rd.Acked == 0 || rd.Apply != nil || len(rd.Rejected) > 0 || rd.Close != nil {
		return
	}
	select {
	case b := <-frames:
		m, err := d.decode(b)
		if err != nil {
			var se *usync.Error
			errors.As(err, &se)
			d.sess.Fail(se)
			return
		}
		if _, ok := m.(*usync.Changes); ok {
			d.step(m)
		} else {
			d.ahead = m
		}
	default:
	}
}

// decode decodes a frame read by wsframe.Read and gives its memory back.
func (d *syncDriver) decode(frame *[]byte) (usync.Message, error) {
	defer wsframe.Put(frame, frame)
	return d.codec.Decode(*frame)
}

// ready does the session's IO in the order ClientReady documents.
func (d *syncDriver) ready(ctx context.Context) error {
	for d.sess.HasReady() {
		rd := d.sess.Ready()
		if rd.Observe != 0 {
			if err := d.c.store.Observe(ctx, rd.Observe); err != nil {
				return err
			}
		}
		if rd.Authenticated {
			d.authenticated()
		}
		if rd.Fork != 0 {
			was := d.c.store.Site()
			site, err := d.c.store.Fork(ctx, rd.Fork, uint16(usync.CodeForked))
			if err != nil {
				return err
			}
			if site != was {
				e := usync.Errorf(usync.CodeForked, "writes from seq %d of site %s moved to site %s", rd.Fork, was, site)
				d.sess.Fail(e)
				// The server logs why the session ends; then connect
				// again as the new site.
				if b, err := d.codec.Encode(&usync.ErrorMessage{Code: e.Code, Message: e.Message}); err == nil {
					_ = d.ws.Write(d.wctx, websocket.MessageBinary, b)
				}
				return e
			}
		}
		// Rejections first: the Ack that follows one drops it from the outbox.
		for _, r := range rd.Rejected {
			if err := d.c.rollback(ctx, r); err != nil {
				return err
			}
		}
		// An Ack and a batch of changes that arrived together are stored
		// in one transaction (see readAhead).
		ack := rd.Acked
		if _, changes := rd.Apply.(*usync.Changes); ack > 0 && !changes {
			if err := d.c.store.Ack(ctx, ack); err != nil {
				return err
			}
			ack = 0
		}
		if rd.Apply != nil {
			if err := d.apply(ctx, rd.Apply, ack); err != nil {
				return err
			}
			d.sess.Applied()
		}
		for _, m := range rd.Send {
			b, err := d.codec.Encode(m)
			if err != nil {
				return err
			}
			if err := d.ws.Write(d.wctx, websocket.MessageBinary, b); err != nil {
				return fmt.Errorf("sync: write: %w", err)
			}
		}
		d.sess.Advance(rd)
		if rd.Close != nil {
			return rd.Close
		}
	}
	return nil
}

// apply applies a batch of changes, or a snapshot chunk, and moves the
// cursor in the same local transaction.
// apply stores a batch from the server and, with a Changes, the
// acknowledgement of the outbox up to ack (0: none) in the same
// transaction.
func (d *syncDriver) apply(ctx context.Context, m usync.Message, ack uint64) error {
	if sn, ok := m.(*usync.Snapshot); ok {
		return d.applySnapshot(ctx, sn)
	}
	ch := m.(*usync.Changes)
	txs := make([]*crdt.Tx, len(ch.Changes))
	for i := range ch.Changes {
		txs[i] = &ch.Changes[i].Tx
	}
	var rows []store.RowState
	if len(ch.Rows) > 0 {
		var err error
		if rows, _, err = decodeRows(ch.Rows); err != nil {
			return err
		}
	}
	actx, span := d.c.tr.startApply(ctx, ch)
	commit, err := d.c.store.Receive(actx, txs, rows, ch.To, ack)
	endSpan(span, err)
	if err != nil {
		return err
	}
	d.c.notify(commit)
	return nil
}

// bootState is a bootstrap in progress, kept across connections so an
// interrupted one resumes where it stopped.
type bootState struct {
	seq   uint64                 // the snapshot's seq
	after crdt.RowKey            // the last row merged
	marks map[crdt.SiteID]uint64 // the sites' marks, from the first chunk
}

// applySnapshot merges one snapshot chunk; the last one records the
// sites' marks and moves the cursor to the snapshot's seq. Progress shows
// in Status.Bootstrap.
func (d *syncDriver) applySnapshot(ctx context.Context, sn *usync.Snapshot) error {
	c := d.c
	c.syncMu.Lock()
	if sn.After == (crdt.RowKey{}) { // a new bootstrap
		c.boot = &bootState{seq: sn.Seq, marks: map[crdt.SiteID]uint64{}}
		for _, m := range sn.Sites {
			c.boot.marks[m.Site] = m.Seq
		}
		c.status.Bootstrap = Progress{}
	}
	boot := c.boot
	c.syncMu.Unlock()
	if boot == nil || boot.seq != sn.Seq || boot.after != sn.After {
		return usync.Errorf(usync.CodeUnexpected, "snapshot chunk after %v of seq %d does not continue this client's bootstrap", sn.After, sn.Seq)
	}
	rows, size, err := decodeRows(sn.Rows)
	if err != nil {
		return err
	}
	var cursor uint64
	var marks map[crdt.SiteID]uint64
	if sn.Last {
		cursor, marks = sn.Seq, boot.marks
	}
	commit, err := c.store.MergeRows(ctx, rows, marks, cursor)
	if err != nil {
		return err
	}
	c.notify(commit)
	c.syncMu.Lock()
	if len(rows) > 0 {
		boot.after = rows[len(rows)-1].Key
	}
	var held []byte
	if sn.Last {
		c.boot = nil
		held, c.resubscribing = c.resubscribing, nil
	}
	c.syncMu.Unlock()
	if held != nil {
		// The rows the new subscriptions add are in.
		if err := c.store.SetSubscriptions(ctx, held); err != nil {
			return err
		}
	}
	c.setStatus(func(s *Status) {
		s.Bootstrap.Rows += uint64(len(rows))
		s.Bootstrap.Bytes += size
		s.Bootstrap.TotalRows, s.Bootstrap.TotalBytes = sn.TotalRows, sn.TotalBytes
		s.Bootstrap.Done = sn.Last
	})
	return nil
}

// decodeRows decodes rows' states received from the server.
func decodeRows(in []usync.SnapshotRow) ([]store.RowState, uint64, error) {
	rows := make([]store.RowState, len(in))
	var size uint64
	for i, r := range in {
		row, err := crdt.DecodeRow(r.State)
		if err != nil {
			return nil, 0, usync.Errorf(usync.CodeBadMessage, "row %s/%s: %v", r.Collection, r.Row, err)
		}
		rows[i] = store.RowState{Key: crdt.RowKey{Collection: r.Collection, Row: r.Row}, Row: row}
		size += uint64(len(r.State))
	}
	return rows, size, nil
}

// rollback undoes a local transaction the server refused: the rows it
// touched take the server's states with the later pending transactions
// replayed, and the refusal joins the rejection feed.
func (c *Client) rollback(ctx context.Context, r *usync.Reject) error {
	c.cfg.Logger.Warn("server refused a transaction", "seq", r.Seq, "code", r.Code, "reason", r.Reason)
	rows := make([]store.RowState, len(r.Rows))
	for i, sr := range r.Rows {
		row := &crdt.Row{}
		if len(sr.State) > 0 {
			var err error
			if row, err = crdt.DecodeRow(sr.State); err != nil {
				return usync.Errorf(usync.CodeBadMessage, "reject row %s/%s: %v", sr.Collection, sr.Row, err)
			}
		}
		rows[i] = store.RowState{Key: crdt.RowKey{Collection: sr.Collection, Row: sr.Row}, Row: row}
	}
	commit, err := c.store.Reject(ctx, store.Rejection{Seq: r.Seq, Code: uint16(r.Code), Reason: r.Reason}, rows)
	if err != nil {
		return err
	}
	c.notify(commit)
	return nil
}

// Rejections returns up to limit entries of the rejection feed with IDs
// above after, oldest first (limit 0: all): local transactions a server
// refused and the client rolled back. Code is a usync.Code.
func (c *Client) Rejections(ctx context.Context, after uint64, limit int) ([]store.Rejection, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	return c.store.Rejections(ctx, after, limit)
}
