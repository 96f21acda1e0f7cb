package sync

import (
	"slices"

	"github.com/unosync/uno/crdt"
)

// ClientConfig configures a ClientSession. Zero fields take the defaults.
type ClientConfig struct {
	// Site is the client's replica. Required.
	Site crdt.SiteID
	// Token carries the client's credentials.
	Token string
	// SchemaVersion is the app's declared schema version.
	SchemaVersion int
	// Subscriptions name the collections to receive; none means all.
	Subscriptions []Subscription
	// Resubscribe, with Previous, says the replica holds Previous rather
	// than Subscriptions (see Hello.Resubscribe).
	Resubscribe bool
	Previous    []Subscription
	// Versions the client speaks, newest first. Default Versions.
	Versions []uint16
	// Window is how many Changes or Snapshot messages the server may have
	// in flight to the client. Default 4.
	Window uint32
	// Resume continues a bootstrap an earlier connection left unfinished.
	Resume Resume
	// CreditBatch grants credits this many at a time (at most Window;
	// default 1): fewer Credit frames for the server to read. The server
	// always keeps at least Window-CreditBatch+1 credits, so it never
	// waits for a batch.
	CreditBatch uint32
	// Runs are the runs of the replica's unacknowledged transactions and
	// Last its last sequence number when the session starts (the store's
	// Runs). With them the session finds the transactions of the
	// replica that reuse a sequence number the server holds for another
	// (ClientReady.Fork) before it takes Welcome's high-water mark as an
	// acknowledgement: on a session of VersionEpochs or later by asking
	// the server's runs (Check), and on any by the numbers alone.
	Runs []Run
	Last uint64
}

type clientState uint8

const (
	clientNew   clientState = iota
	clientHello             // Hello sent, waiting for Welcome
	clientOpen              // Welcome received
	clientClosed
)

// ClientSession is the client's side of one connection, a pure state
// machine like [ServerSession]. The driver starts it with
// [ClientSession.Start], feeds it the server's messages with Step and the
// results of its own IO (Push, Applied), and follows Ready. A batch in
// Ready.Apply must be applied (and Applied called) before the next
// message is stepped: the session holds one batch at a time.
//
// Welcome says when the session's token expires ([ClientSession.Expires]).
// A driver that can get a fresh token renews it in band before then with
// [ClientSession.Reauthenticate]; the server answers AuthOK with the new
// expiry, or closes the session if it refuses the token.
type ClientSession struct {
	cfg   ClientConfig
	state clientState

	version  uint16
	welcome  *Welcome
	cursor   uint64 // last tenant seq applied locally (persisted by the driver)
	acked    uint64 // highest seq of the site the server acknowledged
	sent     uint64 // highest seq of the site pushed on this connection
	inFlight uint32
	applying bool  // a Changes or Snapshot is with the driver
	expires  int64 // when the token expires, Unix ms of the server's clock (0: never)
	authing  int   // Auth messages awaiting their AuthOK

	pongNonce, pongHead uint64 // the last Pong
	checking            bool   // a Check awaits its Runs: no push, no acknowledgement
	checkFrom           uint64 // the From of the last Check sent
	rewind              bool   // a gap was reported: resend from the next Ack's mark
	owed                uint32 // credits earned by applied batches, not granted yet

	rd ClientReady
}

// ClientReady is what the driver must do next, in this order:
//
//  1. If Observe is set, fold the server's time into the local clock.
//     If Authenticated is set, the server accepted the session's token
//     (at Welcome, or at the AuthOK answering Reauthenticate):
//     [ClientSession.Expires] says when it expires, so schedule the next
//     renewal from it.
//  2. If Fork is set, the server holds other transactions of the site
//     under sequence numbers the replica used from Fork on: move the
//     outbox from Fork on to a new site (store.Store.Fork). If that moved
//     anything, close the connection (CodeForked) and connect again as
//     the new site, skipping the rest; otherwise carry on.
//     If Acked is above the last value, drop the outbox entries up to it
//     (they are durable on the server).
//  3. If Apply is set, apply its transactions (or snapshot rows) and move
//     the cursor to its end in ONE local transaction, then call Applied.
//  4. Roll back each transaction in Rejected and report it to the app.
//  5. Send the messages in Send, in order.
//  6. If Close is set, close the connection; Close.Code.Retryable says
//     whether to reconnect.
//
// Then call Advance.
type ClientReady struct {
	Observe       crdt.Timestamp
	Authenticated bool
	Fork          uint64
	Acked         uint64
	Apply         Message // *Changes or *Snapshot
	Rejected      []*Reject
	Send          []Message
	Close         *Error
}

// NewClientSession returns a session for a client whose cursor (the last
// tenant sequence number it applied) is cursor.
func NewClientSession(cfg ClientConfig, cursor uint64) *ClientSession {
	if len(cfg.Versions) == 0 {
		cfg.Versions = Versions
	}
	if cfg.Window == 0 {
		cfg.Window = 4
	}
	cfg.CreditBatch = min(max(cfg.CreditBatch, 1), cfg.Window)
	return &ClientSession{cfg: cfg, cursor: cursor}
}

// Start sends Hello.
func (c *ClientSession) Start() {
	if c.state != clientNew {
		return
	}
	c.state = clientHello
	c.send(&Hello{
		Versions: c.cfg.Versions, Site: c.cfg.Site, Token: c.cfg.Token,
		SchemaVersion: c.cfg.SchemaVersion, Cursor: c.cursor,
		Subscriptions: c.cfg.Subscriptions, Credits: c.cfg.Window, Resume: c.cfg.Resume,
		Resubscribe: c.cfg.Resubscribe, Previous: c.cfg.Previous,
	})
}

func (c *ClientSession) send(m Message) { c.rd.Send = append(c.rd.Send, m) }

// Open reports whether the server welcomed the session and it is not closed.
func (c *ClientSession) Open() bool { return c.state == clientOpen }

// Closed reports whether the session ended.
func (c *ClientSession) Closed() bool { return c.state == clientClosed }

// Welcome returns the server's Welcome (nil before it arrives).
func (c *ClientSession) Welcome() *Welcome { return c.welcome }

// Cursor returns the last tenant sequence number applied.
func (c *ClientSession) Cursor() uint64 { return c.cursor }

// Version returns the negotiated protocol version (0 before Welcome).
func (c *ClientSession) Version() uint16 { return c.version }

// Acked returns the highest sequence number of the site the server holds.
func (c *ClientSession) Acked() uint64 { return c.acked }

// Ready returns what the driver must do (see ClientReady).
func (c *ClientSession) Ready() ClientReady { return c.rd }

// HasReady reports whether Ready holds anything to do.
func (c *ClientSession) HasReady() bool {
	return c.rd.Observe != 0 || c.rd.Authenticated || c.rd.Fork != 0 || c.rd.Acked != 0 || c.rd.Apply != nil || len(c.rd.Rejected) > 0 || len(c.rd.Send) > 0 || c.rd.Close != nil
}

// Advance acknowledges that the driver did everything in rd.
func (c *ClientSession) Advance(rd ClientReady) {
	if rd.Observe != 0 {
		c.rd.Observe = 0
	}
	if rd.Authenticated {
		c.rd.Authenticated = false
	}
	if rd.Fork != 0 && c.rd.Fork == rd.Fork {
		c.rd.Fork = 0
	}
	if rd.Acked != 0 && c.rd.Acked == rd.Acked {
		c.rd.Acked = 0
	}
	if rd.Apply != nil && c.rd.Apply == rd.Apply {
		c.rd.Apply = nil
	}
	c.rd.Rejected = c.rd.Rejected[len(rd.Rejected):]
	c.rd.Send = c.rd.Send[len(rd.Send):]
	if rd.Close != nil {
		c.rd.Close = nil
	}
}

func (c *ClientSession) fail(e *Error) error {
	if c.state == clientClosed {
		return e
	}
	c.state = clientClosed
	c.send(&ErrorMessage{Code: e.Code, Message: e.Message})
	c.rd.Close = e
	c.rd.Apply = nil
	return e
}

// Step feeds one message from the server. A message that breaks the
// protocol closes the session with a coded error; nothing of it applies.
func (c *ClientSession) Step(m Message) error {
	if c.state == clientClosed {
		return Errorf(CodeUnexpected, "session closed")
	}
	switch m := m.(type) {
	case *ErrorMessage:
		c.state = clientClosed
		c.rd.Close = m.Err()
		c.rd.Apply = nil
		return nil
	case *Ping:
		c.send(&Pong{Nonce: m.Nonce})
		return nil
	case *Pong:
		c.pongNonce, c.pongHead = m.Nonce, m.Head
		return nil
	case *Welcome:
		if c.state != clientHello {
			return c.fail(Errorf(CodeUnexpected, "Welcome twice"))
		}
		ok := false
		for _, v := range c.cfg.Versions {
			ok = ok || v == m.Version
		}
		if !ok {
			return c.fail(Errorf(CodeUnsupportedVersion, "server chose version %d, client speaks %v", m.Version, c.cfg.Versions))
		}
		c.state, c.version, c.welcome = clientOpen, m.Version, m
		c.rd.Observe = m.ServerTime
		c.expires, c.rd.Authenticated = m.Expires, true
		if runs := c.cfg.Runs; c.version >= VersionEpochs && len(runs) > 0 && m.HighWater >= runs[0].First {
			// The server holds some of what the replica has not had
			// acknowledged: the same transactions, unless the
			// replica's database went back and wrote again.
			c.check(runs[0].First)
			return nil
		}
		c.open(0)
		return nil
	}
	if c.state != clientOpen {
		return c.fail(Errorf(CodeUnexpected, "%s before Welcome", m.Type()))
	}
	switch m := m.(type) {
	case *Ack:
		if c.inFlight == 0 {
			return c.fail(Errorf(CodeUnexpected, "Ack with no Push in flight"))
		}
		if m.HighWater > c.sent {
			return c.fail(Errorf(CodeBadMessage, "Ack of seq %d, only %d pushed", m.HighWater, c.sent))
		}
		c.inFlight--
		c.ack(m.HighWater)
		if c.rewind {
			c.sent, c.rewind = m.HighWater, false
		}
		return nil
	case *Reject:
		if m.Site != c.cfg.Site {
			return c.fail(Errorf(CodeBadMessage, "Reject of another site's transaction"))
		}
		if m.Code == CodeGap {
			// The server holds less than we pushed: push again from its
			// high-water mark, which the Ack that follows reports.
			c.rewind = true
			return nil
		}
		c.rd.Rejected = append(c.rd.Rejected, m)
		return nil
	case *Changes:
		if c.applying {
			return c.fail(Errorf(CodeUnexpected, "Changes while another batch is being applied"))
		}
		if m.From != c.cursor {
			return c.fail(Errorf(CodeGap, "Changes from %d, cursor at %d", m.From, c.cursor))
		}
		c.applying = true
		c.rd.Apply = m
		return nil
	case *Snapshot:
		if c.applying {
			return c.fail(Errorf(CodeUnexpected, "Snapshot while another batch is being applied"))
		}
		c.applying = true
		c.rd.Apply = m
		return nil
	case *Runs:
		if !c.checking {
			return c.fail(Errorf(CodeUnexpected, "Runs with no Check in flight"))
		}
		if m.Through < c.checkFrom {
			return c.fail(Errorf(CodeBadMessage, "Runs through %d for a Check from %d", m.Through, c.checkFrom))
		}
		c.checking = false
		through := min(m.Through, c.welcome.HighWater)
		fork := Diverged(c.cfg.Runs, c.cfg.Last, m.Runs, through)
		if fork == 0 && through < min(c.cfg.Last, c.welcome.HighWater) {
			// The runs were too many for one answer: ask for the rest.
			c.check(through + 1)
			return nil
		}
		c.open(fork)
		return nil
	case *AuthOK:
		if c.authing == 0 {
			return c.fail(Errorf(CodeUnexpected, "AuthOK with no Auth in flight"))
		}
		c.authing--
		c.expires, c.rd.Authenticated = m.Expires, true
		return nil
	}
	return c.fail(Errorf(CodeUnexpected, "%s from a server", m.Type()))
}

// check asks for the server's runs of the site from seq from on.
func (c *ClientSession) check(from uint64) {
	c.checking, c.checkFrom = true, from
	c.send(&Check{From: from})
}

// open takes Welcome's high-water mark as an acknowledgement, from which
// pushes continue, once the replica's transactions it covers are known
// to be the server's (fork 0) or from fork on not. Any the replica made
// after the session started above the last it had then (ClientConfig.Last)
// the server cannot hold either: it holds others under their numbers.
func (c *ClientSession) open(fork uint64) {
	known := len(c.cfg.Runs) > 0 || c.cfg.Last > 0 // a driver that keeps no outbox leaves both zero
	if hw := c.welcome.HighWater; known && hw > c.cfg.Last && (fork == 0 || fork > c.cfg.Last+1) {
		fork = c.cfg.Last + 1
	}
	c.rd.Fork = fork
	c.ack(c.welcome.HighWater)
	// Everything above the server's high-water mark is pushed again.
	c.sent = c.acked
}

// Diverged returns the first sequence number in mine's range up to
// through (and last, the replica's last) at which the server holds a
// transaction written in another epoch than the replica's own (0:
// none). mine are the replica's runs, theirs the server's. A seq the
// server's runs leave unknown (before their first, or of epoch 0)
// matches.
func Diverged(mine []Run, last uint64, theirs []Run, through uint64) uint64 {
	if len(mine) == 0 {
		return 0
	}
	end := min(last, through)
	// The epochs change only at a run's first seq: check each.
	points := []uint64{mine[0].First}
	for _, r := range mine[1:] {
		points = append(points, r.First)
	}
	for _, r := range theirs {
		if r.First > mine[0].First {
			points = append(points, r.First)
		}
	}
	slices.Sort(points)
	for _, p := range points {
		if p > end {
			break
		}
		if s := epochAt(theirs, p); s != 0 && s != epochAt(mine, p) {
			return p
		}
	}
	return 0
}

// epochAt returns the epoch of the run holding seq (0 if none does).
func epochAt(runs []Run, seq uint64) uint64 {
	var e uint64
	for _, r := range runs {
		if r.First > seq {
			break
		}
		e = r.Epoch
	}
	return e
}

func (c *ClientSession) ack(hw uint64) {
	if hw > c.acked {
		c.acked = hw
		c.rd.Acked = hw
	}
}

// Applied reports that the batch in Ready.Apply was applied and the cursor
// moved in the same local transaction. It grants the server one more
// credit.
func (c *ClientSession) Applied() {
	if !c.applying || c.state != clientOpen {
		return
	}
	c.applying = false
	switch m := c.rd.Apply.(type) {
	case *Changes:
		c.cursor = m.To
	case *Snapshot:
		if m.Last {
			c.cursor = m.Seq
		}
	}
	c.rd.Apply = nil
	if c.owed++; c.owed >= c.cfg.CreditBatch {
		c.send(&Credit{N: c.owed})
		c.owed = 0
	}
}

// WantPush reports whether the session can push: the driver reads up to
// max outbox entries with sequence numbers above after and calls Push.
func (c *ClientSession) WantPush() (after uint64, max int, ok bool) {
	if c.state != clientOpen || c.welcome == nil || c.checking {
		return 0, 0, false
	}
	lim := c.welcome.Limits
	if lim.MaxInFlight != 0 && c.inFlight >= lim.MaxInFlight {
		return 0, 0, false
	}
	max = 1000
	if lim.MaxPushTxs != 0 {
		max = int(lim.MaxPushTxs)
	}
	return c.sent, max, true
}

// Push sends local transactions; they must continue from WantPush's after
// in sequence order.
func (c *ClientSession) Push(txs []crdt.Tx) error { return c.PushTraced(txs, "", 0) }

// PushTraced is Push with the W3C traceparent of the writes pushed and
// the epoch that wrote them (0: unknown): the transactions of one run
// (see Run). The trace goes on the wire only on a session of version
// VersionTrace or later, the epoch of VersionEpochs or later (an older
// server would not decode them).
func (c *ClientSession) PushTraced(txs []crdt.Tx, trace string, epoch uint64) error {
	if len(txs) == 0 || c.state != clientOpen {
		return nil
	}
	for i := range txs {
		if txs[i].Site != c.cfg.Site || txs[i].Seq != c.sent+uint64(i)+1 {
			return Errorf(CodeGap, "push of %s/%d after %d", txs[i].Site, txs[i].Seq, c.sent+uint64(i))
		}
	}
	c.sent = txs[len(txs)-1].Seq
	c.inFlight++
	if c.version < VersionTrace {
		trace = ""
	}
	if c.version < VersionEpochs {
		epoch = 0
	}
	c.send(&Push{Txs: txs, Trace: trace, Epoch: epoch})
	return nil
}

// Expires returns when the session's token expires, in Unix milliseconds
// of the server's clock (0: never, or not known before Welcome): from
// Welcome, then from each AuthOK.
func (c *ClientSession) Expires() int64 { return c.expires }

// Reauthenticate sends Auth with a fresh token, if the session is open.
// The server answers AuthOK (Ready.Authenticated, with the new Expires) or
// closes the session with the refusal's code; the session carries on
// meanwhile.
func (c *ClientSession) Reauthenticate(token string) {
	if c.state != clientOpen {
		return
	}
	c.authing++
	c.send(&Auth{Token: token})
}

// LastPong returns the nonce and the server's head of the last Pong.
func (c *ClientSession) LastPong() (nonce, head uint64) { return c.pongNonce, c.pongHead }

// Ping sends a heartbeat, which is also a barrier (see Pong).
func (c *ClientSession) Ping(nonce uint64) {
	if c.state != clientClosed {
		c.send(&Ping{Nonce: nonce})
	}
}

// Fail closes the session from the client's side.
func (c *ClientSession) Fail(err *Error) { c.fail(err) }
