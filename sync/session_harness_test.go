package sync_test

// The test harness for the session state machines: an in-memory tenant log,
// a server driver running one ServerSession per connection against it, and
// a client driver around ClientSession with its own crdt.State, outbox,
// acked mark and cursor. Every message between them travels through the
// real Codec (Encode, then Decode), so the codec is exercised too.
//
// The drivers do their IO in the order ServerReady and ClientReady
// document. They are used by the transcript tests (session_test.go), the
// simulated network property (session_sim_test.go) and, in part, the state
// machine properties (session_machine_test.go).

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/unosync/uno/crdt"
	usync "github.com/unosync/uno/sync"
)

// sessTB is what the harness needs from *testing.T and *rapid.T.
type sessTB interface {
	Helper()
	Fatalf(format string, args ...any)
}

// sessServerTime is the ServerTime of every Accept in the harness.
var sessServerTime = crdt.MakeTimestamp(time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC).UnixMilli(), 7)

// sessSite returns a site ID whose first byte is b (and ordered by b).
func sessSite(b byte) crdt.SiteID {
	var s crdt.SiteID
	s[0] = b
	for i := 1; i < len(s); i++ {
		s[i] = b ^ byte(i*37)
	}
	return s
}

// sessTx returns a small valid transaction (site, seq): one register write.
func sessTx(site crdt.SiteID, seq uint64) crdt.Tx {
	return crdt.Tx{Site: site, Seq: seq, Time: sessServerTime + crdt.Timestamp(seq), Ops: []crdt.Op{{
		Type: crdt.OpSet, Kind: crdt.KindRegister, Collection: "todo", Row: "r1", Field: "title",
		CL: 1, Value: []byte(fmt.Sprintf(`"v%d"`, seq)),
	}}}
}

// sessTxs returns sessTx(site, seq) for seq in [from, to].
func sessTxs(site crdt.SiteID, from, to uint64) []crdt.Tx {
	var txs []crdt.Tx
	for seq := from; seq <= to; seq++ {
		txs = append(txs, sessTx(site, seq))
	}
	return txs
}

// sessNewCodec returns a codec with the default limits, closed at cleanup.
func sessNewCodec(tb testing.TB) *usync.Codec {
	tb.Helper()
	c, err := usync.NewCodec(usync.CodecConfig{})
	if err != nil {
		tb.Fatalf("NewCodec: %v", err)
	}
	tb.Cleanup(c.Close)
	return c
}

// sessWire returns m as the peer receives it: encoded, then decoded.
func sessWire(tb sessTB, c *usync.Codec, m usync.Message) usync.Message {
	tb.Helper()
	frame, err := c.Encode(m)
	if err != nil {
		tb.Fatalf("Encode(%T %+v): %v", m, m, err)
	}
	out, err := c.Decode(frame)
	if err != nil {
		tb.Fatalf("Decode(Encode(%T %+v)): %v", m, m, err)
	}
	return out
}

// sessWireAll passes every message of ms through the codec.
func sessWireAll(tb sessTB, c *usync.Codec, ms []usync.Message) []usync.Message {
	tb.Helper()
	var out []usync.Message
	for _, m := range ms {
		out = append(out, sessWire(tb, c, m))
	}
	return out
}

// codeOf returns the code of err, 0 for nil.
func codeOf(err error) usync.Code {
	if err == nil {
		return 0
	}
	return usync.CodeOf(err)
}

// closeCode returns e's code, 0 for nil.
func closeCode(e *usync.Error) usync.Code {
	if e == nil {
		return 0
	}
	return e.Code
}

// ---- the tenant log ----

type sessTxID struct {
	site crdt.SiteID
	seq  uint64
}

// sessLog is an in-memory tenant log: changes with gap-free tenant
// sequence numbers from 1, appended idempotently by (site, seq).
type sessLog struct {
	tb      sessTB
	changes []usync.Change
	held    map[sessTxID]uint64 // tenant seq by (site, seq)
	hw      map[crdt.SiteID]uint64
}

func newSessLog(tb sessTB) *sessLog {
	return &sessLog{tb: tb, held: make(map[sessTxID]uint64), hw: make(map[crdt.SiteID]uint64)}
}

// Head returns the newest tenant sequence number (0 when empty).
func (l *sessLog) Head() uint64 { return uint64(len(l.changes)) }

// HighWater returns the highest sequence number of site in the log.
func (l *sessLog) HighWater(site crdt.SiteID) uint64 { return l.hw[site] }

// Append appends txs in one commit. A transaction the log already holds
// gets tenant sequence number 0 and is not appended again. A transaction
// that skips one of its site's earlier ones is a bug of the session (it
// must never ask for that), so it fails the test.
func (l *sessLog) Append(txs []crdt.Tx) []uint64 {
	l.tb.Helper()
	seqs := make([]uint64, len(txs))
	for i, tx := range txs {
		id := sessTxID{tx.Site, tx.Seq}
		if _, ok := l.held[id]; ok {
			continue
		}
		if tx.Seq != l.hw[tx.Site]+1 {
			l.tb.Fatalf("log: append of %s/%d after %d: a gap", tx.Site.String()[:4], tx.Seq, l.hw[tx.Site])
		}
		seq := uint64(len(l.changes)) + 1
		l.changes = append(l.changes, usync.Change{Seq: seq, Tx: tx})
		l.held[id] = seq
		l.hw[tx.Site] = tx.Seq
		seqs[i] = seq
	}
	return seqs
}

// After returns up to n changes with tenant seq above from.
func (l *sessLog) After(from uint64, n int) []usync.Change {
	if from >= l.Head() {
		return nil
	}
	end := min(from+uint64(n), l.Head())
	return slices.Clone(l.changes[from:end])
}

// check verifies the log: tenant seqs 1..Head, each (site, seq) once, and
// each site's transactions in sequence order without gaps.
func (l *sessLog) check() {
	l.tb.Helper()
	next := make(map[crdt.SiteID]uint64)
	seen := make(map[sessTxID]bool)
	for i, ch := range l.changes {
		if ch.Seq != uint64(i)+1 {
			l.tb.Fatalf("log: entry %d has tenant seq %d", i, ch.Seq)
		}
		id := sessTxID{ch.Tx.Site, ch.Tx.Seq}
		if seen[id] {
			l.tb.Fatalf("log: %s/%d twice", id.site.String()[:4], id.seq)
		}
		seen[id] = true
		if ch.Tx.Seq != next[ch.Tx.Site]+1 {
			l.tb.Fatalf("log: %s/%d at tenant seq %d follows %d", id.site.String()[:4], id.seq, ch.Seq, next[ch.Tx.Site])
		}
		next[ch.Tx.Site] = ch.Tx.Seq
	}
}

// state returns the state built by applying the whole log in order.
func (l *sessLog) state() *crdt.State {
	l.tb.Helper()
	var s crdt.State
	for i := range l.changes {
		if _, err := s.Apply(&l.changes[i].Tx); err != nil {
			l.tb.Fatalf("log: apply tenant seq %d: %v", l.changes[i].Seq, err)
		}
	}
	return &s
}

// ---- the server driver ----

// sessServer drives one ServerSession against the log, as server/ does:
// it accepts every Hello with the site's high-water mark, appends and
// reports Appended, and delivers up to 10 log entries per Changes while
// the session has credits.
type sessServer struct {
	tb     sessTB
	log    *sessLog
	s      *usync.ServerSession
	send   func(usync.Message) // to the client
	closed *usync.Error        // the session's Close, once it closed
}

func newSessServer(tb sessTB, log *sessLog, cfg usync.ServerConfig, send func(usync.Message)) *sessServer {
	return &sessServer{tb: tb, log: log, s: usync.NewServerSession(cfg), send: send}
}

// step feeds a client message and does what the session asks. Before a
// Ping it tells the session the log's head, which the Pong reports.
func (d *sessServer) step(m usync.Message) error {
	if _, ok := m.(*usync.Ping); ok {
		d.s.ObserveHead(d.log.Head())
	}
	err := d.s.Step(m)
	d.process()
	return err
}

// process does everything Ready asks, then delivers what the session wants,
// until there is nothing left to do. Call it again when the log grows.
func (d *sessServer) process() {
	d.tb.Helper()
	for {
		for d.s.HasReady() {
			rd := d.s.Ready()
			if rd.Authenticate != nil {
				d.s.Accept(usync.AcceptParams{
					HighWater:  d.log.HighWater(rd.Authenticate.Site),
					Head:       d.log.Head(),
					LogStart:   1,
					ServerTime: sessServerTime,
				})
			}
			if len(rd.Append) > 0 {
				d.s.Appended(d.log.Append(rd.Append))
			}
			for _, m := range rd.Send {
				if ch, ok := m.(*usync.Changes); ok {
					d.checkChanges(ch)
				}
				d.send(m)
			}
			if rd.Close != nil {
				d.closed = rd.Close
			}
			d.s.Advance(rd)
		}
		if !d.deliver() {
			return
		}
	}
}

// checkChanges checks that ch leaves out of the log's entries in
// (From, To] exactly the session's own: every other one goes to the
// client, unchanged.
func (d *sessServer) checkChanges(ch *usync.Changes) {
	d.tb.Helper()
	var want []usync.Change
	for _, e := range d.log.changes[ch.From:ch.To] {
		if e.Tx.Site != d.s.Site() {
			want = append(want, e)
		}
	}
	if len(ch.Changes) != len(want) {
		d.tb.Fatalf("server: Changes (%d, %d] for site %s carries %d entries, want %d (all but its own)",
			ch.From, ch.To, d.s.Site().String()[:4], len(ch.Changes), len(want))
	}
	for i := range want {
		if ch.Changes[i].Seq != want[i].Seq || ch.Changes[i].Tx.Site != want[i].Tx.Site || ch.Changes[i].Tx.Seq != want[i].Tx.Seq {
			d.tb.Fatalf("server: Changes (%d, %d] entry %d is tenant seq %d, want %d", ch.From, ch.To, i, ch.Changes[i].Seq, want[i].Seq)
		}
	}
}

// deliver hands the session the log entries after its cursor (up to 10)
// if it wants them; it reports whether it did.
func (d *sessServer) deliver() bool {
	from, snapshot, _, ok := d.s.Want()
	if !ok || snapshot {
		return false
	}
	changes := d.log.After(from, 10)
	if len(changes) == 0 {
		return false
	}
	d.s.Deliver(changes, nil, changes[len(changes)-1].Seq)
	return true
}

// ---- the client driver ----

// sessClient is one replica: its crdt.State, an outbox of the local
// transactions the server has not acknowledged, a persisted acked mark and
// cursor, and the session of its current connection (nil while offline).
//
// It fails the test on anything a correct server never causes: a session
// error or close, a rejected transaction, a Push that does not continue
// from the previous one, a Changes batch with a gap.
type sessClient struct {
	tb    sessTB
	site  crdt.SiteID
	cfg   usync.ClientConfig
	state crdt.State
	clock *crdt.Clock
	wall  time.Time

	made   []crdt.Tx // every local transaction, by seq-1
	outbox []crdt.Tx // local transactions above acked
	acked  uint64    // the server's high-water mark for the site (persisted)
	cursor uint64    // last tenant seq applied (persisted, with the state)

	s        *usync.ClientSession
	send     func(usync.Message) // to the server
	lastPush uint64              // last seq pushed on this session (its acked mark at Welcome)
}

func newSessClient(tb sessTB, site crdt.SiteID, wall time.Time) *sessClient {
	return &sessClient{
		tb: tb, site: site, wall: wall,
		cfg:   usync.ClientConfig{Site: site, Token: "token-" + site.String()[:4]},
		clock: crdt.NewClock(0, 0),
	}
}

// local makes one local transaction with build, applies it to the state
// and adds it to the outbox, then pushes it if connected.
func (c *sessClient) local(build func(b *crdt.Builder) error) {
	c.tb.Helper()
	seq := uint64(len(c.made)) + 1
	b := crdt.NewBuilder(c.site, seq, c.clock.Now(c.wall), func(k crdt.RowKey) (*crdt.Row, error) { return c.state.Row(k), nil })
	if err := build(b); err != nil {
		c.tb.Fatalf("client %s: build tx %d: %v", c.name(), seq, err)
	}
	tx := *b.Tx()
	if _, err := c.state.Apply(&tx); err != nil {
		c.tb.Fatalf("client %s: apply own tx %d: %v", c.name(), seq, err)
	}
	c.made = append(c.made, tx)
	c.outbox = append(c.outbox, tx)
	if c.s != nil {
		c.process()
	}
}

func (c *sessClient) name() string { return c.site.String()[:4] }

// connect starts a new session from the persisted cursor (the outbox is
// pushed again from the server's high-water mark once welcomed).
func (c *sessClient) connect(send func(usync.Message)) {
	c.s = usync.NewClientSession(c.cfg, c.cursor)
	c.send = send
	c.lastPush = 0
	c.s.Start()
	c.process()
}

// disconnect discards the session: the connection is gone.
func (c *sessClient) disconnect() { c.s, c.send = nil, nil }

// step feeds a server message and does what the session asks.
func (c *sessClient) step(m usync.Message) {
	c.tb.Helper()
	if err := c.s.Step(m); err != nil {
		c.tb.Fatalf("client %s: Step(%T %+v): %v", c.name(), m, m, err)
	}
	if w, ok := m.(*usync.Welcome); ok {
		c.lastPush = w.HighWater
	}
	c.process()
}

// process does everything Ready asks in the documented order, then pushes
// the outbox while the session can take it, until there is nothing to do.
func (c *sessClient) process() {
	c.tb.Helper()
	for {
		for c.s.HasReady() {
			rd := c.s.Ready()
			if rd.Observe != 0 {
				if err := c.clock.Observe(rd.Observe, c.wall); err != nil {
					c.tb.Fatalf("client %s: observe server time: %v", c.name(), err)
				}
			}
			if rd.Acked > c.acked {
				c.acked = rd.Acked
				c.outbox = slices.DeleteFunc(c.outbox, func(tx crdt.Tx) bool { return tx.Seq <= c.acked })
			}
			if rd.Apply != nil {
				c.apply(rd.Apply)
				c.s.Applied()
				c.cursor = c.s.Cursor()
			}
			for _, r := range rd.Rejected {
				c.tb.Fatalf("client %s: server rejected %s/%d: %s %s", c.name(), r.Site.String()[:4], r.Seq, r.Code, r.Reason)
			}
			for _, m := range rd.Send {
				if p, ok := m.(*usync.Push); ok {
					c.checkPush(p)
				}
				c.send(m)
			}
			if rd.Close != nil {
				c.tb.Fatalf("client %s: session closed: %v", c.name(), rd.Close)
			}
			c.s.Advance(rd)
		}
		if !c.push() {
			return
		}
	}
}

// apply applies a Changes batch to the state as one local transaction
// with the cursor. The server never sends the client's own transactions
// (it has them already); the server driver checks that nothing else is
// left out.
func (c *sessClient) apply(m usync.Message) {
	c.tb.Helper()
	ch, ok := m.(*usync.Changes)
	if !ok {
		c.tb.Fatalf("client %s: unexpected %T to apply", c.name(), m)
	}
	if ch.From != c.cursor {
		c.tb.Fatalf("client %s: Changes from %d handed over at cursor %d", c.name(), ch.From, c.cursor)
	}
	last := ch.From
	for i := range ch.Changes {
		e := &ch.Changes[i]
		if e.Seq <= last || e.Seq > ch.To {
			c.tb.Fatalf("client %s: Changes (%d, %d] holds tenant seq %d after %d", c.name(), ch.From, ch.To, e.Seq, last)
		}
		last = e.Seq
		if e.Tx.Site == c.site {
			c.tb.Fatalf("client %s: Changes (%d, %d] echoes its own %d (tenant seq %d)", c.name(), ch.From, ch.To, e.Tx.Seq, e.Seq)
		}
		if _, err := c.state.Apply(&e.Tx); err != nil {
			c.tb.Fatalf("client %s: apply tenant seq %d: %v", c.name(), e.Seq, err)
		}
		if err := c.clock.Observe(e.Tx.Time, c.wall); err != nil {
			c.tb.Fatalf("client %s: observe tenant seq %d: %v", c.name(), e.Seq, err)
		}
	}
}

// push pushes the outbox entries the session wants; it reports whether it
// pushed anything.
func (c *sessClient) push() bool {
	c.tb.Helper()
	after, limit, ok := c.s.WantPush()
	if !ok {
		return false
	}
	var txs []crdt.Tx
	for _, tx := range c.outbox {
		if tx.Seq > after && len(txs) < limit {
			txs = append(txs, tx)
		}
	}
	if len(txs) == 0 {
		return false
	}
	if err := c.s.Push(txs); err != nil {
		c.tb.Fatalf("client %s: Push(%d..%d) after WantPush said %d: %v", c.name(), txs[0].Seq, txs[len(txs)-1].Seq, after, err)
	}
	return true
}

// checkPush checks that a Push continues from the previous one on the
// session, or from the acked mark the server sent in Welcome.
func (c *sessClient) checkPush(p *usync.Push) {
	c.tb.Helper()
	for i, tx := range p.Txs {
		if tx.Site != c.site || tx.Seq != c.lastPush+uint64(i)+1 {
			c.tb.Fatalf("client %s: Push of %s/%d at %d, after %d", c.name(), tx.Site.String()[:4], tx.Seq, i, c.lastPush)
		}
	}
	c.lastPush += uint64(len(p.Txs))
}
