package sync

import (
	"slices"

	"github.com/unosync/uno/crdt"
)

// ServerConfig configures a ServerSession. Zero fields take the defaults.
type ServerConfig struct {
	// Versions the server speaks, newest first. Default Versions.
	Versions []uint16
	// Limits are announced in Welcome and enforced on Push. Defaults:
	// MaxMessageBytes 16 MiB, MaxPushTxs 1,000, MaxInFlight 8.
	Limits Limits
	// MaxCredits caps the credits a client may grant. Default 64.
	MaxCredits uint32
}

func (c *ServerConfig) withDefaults() ServerConfig {
	o := *c
	if len(o.Versions) == 0 {
		o.Versions = Versions
	}
	if o.Limits.MaxMessageBytes == 0 {
		o.Limits.MaxMessageBytes = 16 << 20
	}
	if o.Limits.MaxPushTxs == 0 {
		o.Limits.MaxPushTxs = 1000
	}
	if o.Limits.MaxInFlight == 0 {
		o.Limits.MaxInFlight = 8
	}
	if o.MaxCredits == 0 {
		o.MaxCredits = 64
	}
	return o
}

type serverState uint8

const (
	serverNew    serverState = iota // waiting for Hello
	serverAuth                      // Hello received, waiting for Accept or Refuse
	serverOpen                      // session open
	serverClosed                    // closed; every input is ignored
)

// ServerSession is the server's side of one connection, as a pure state
// machine in the style of etcd's raft.RawNode: the driver feeds it the
// client's messages ([ServerSession.Step]) and the results of its own IO
// (Accept, Appended, Deliver, DeliverSnapshot), then asks [ServerSession.Ready]
// what to do, does it in the documented order, and calls Advance.
//
// Server rules for a site's pushed transactions, by sequence number: at or
// below the high-water mark, skip and acknowledge again; more than one
// above it, reject as a gap (CodeGap) with nothing after it applied;
// otherwise append. Acks are produced only by [ServerSession.Appended], that
// is after the driver committed: an Ack always means durable.
//
// Changes flow only against credits granted by the client, so a slow
// client stops the server reading the log for it instead of making it
// buffer.
//
// An open session may renew its credentials with Auth: the driver verifies
// the new token (Ready.Reauthenticate) and calls Reauthenticated, which
// answers AuthOK, or Refuse, which closes the session. The driver also
// refuses, with CodeForbidden, a token that names another tenant than the
// session's: the tenant never changes within a session.
type ServerSession struct {
	cfg   ServerConfig
	state serverState

	hello     *Hello
	version   uint16
	site      crdt.SiteID
	highWater uint64 // highest seq of the site committed or handed to Append
	committed uint64 // highest seq of the site known committed
	cursor    uint64 // the client's cursor: everything up to it was sent
	head      uint64 // the tenant's head, as last observed
	snapshot  *snapshotState
	credits   uint32

	reauth    bool    // an Auth's token is with the driver
	checking  bool    // a Check is with the driver
	checked   uint64  // the Through of the last Runs sent (0: none)
	appending bool    // an Append is with the driver
	queue     []*Push // pushes waiting for the append in progress
	pending   []uint64

	rd ServerReady
}

type snapshotState struct {
	after crdt.RowKey // the last row sent
}

// ServerReady is what the driver must do next, in this order:
//
//  1. If Authenticate is set, verify Hello's token and call Accept or
//     Refuse. If Reauthenticate is set, verify Auth's token and call
//     Reauthenticated or Refuse (a token of another tenant than the
//     session's is refused with CodeForbidden).
//     If Check is set, read the site's runs covering Check.From up to
//     CheckThrough (the session's high-water mark) and call Checked.
//  2. If Append is not empty, append these transactions durably (one
//     commit), then call Appended with their tenant sequence numbers.
//     AppendEpoch is the epoch that wrote them (see Run): a log that
//     keeps runs records that the site's run from Append[0] on is of
//     this epoch, first, unless that is already the epoch of the run
//     before.
//  3. Send the messages in Send, in order.
//  4. If Close is set, close the connection with its code (after sending
//     Send, which ends with the matching Error message).
//
// Then call Advance.
type ServerReady struct {
	Authenticate   *Hello
	Reauthenticate *Auth
	Check          *Check
	CheckThrough   uint64
	Append         []crdt.Tx
	AppendEpoch    uint64
	// AppendTrace is the W3C traceparent the Push of Append carried
	// ("" none; unchecked: the driver validates it).
	AppendTrace string
	Send        []Message
	Close       *Error
}

// NewServerSession returns a session waiting for the client's Hello.
func NewServerSession(cfg ServerConfig) *ServerSession {
	return &ServerSession{cfg: cfg.withDefaults()}
}

// Site returns the session's site (zero before Hello).
func (s *ServerSession) Site() crdt.SiteID { return s.site }

// Version returns the negotiated protocol version (0 before Accept).
func (s *ServerSession) Version() uint16 { return s.version }

// Open reports whether the session is open (accepted, not closed).
func (s *ServerSession) Open() bool { return s.state == serverOpen }

// Closed reports whether the session has ended.
func (s *ServerSession) Closed() bool { return s.state == serverClosed }

// Cursor returns the tenant sequence number up to which the client has
// been sent everything.
func (s *ServerSession) Cursor() uint64 { return s.cursor }

// Credits returns the Changes or Snapshot messages the session may still send.
func (s *ServerSession) Credits() uint32 { return s.credits }

// Ready returns what the driver must do (see ServerReady).
func (s *ServerSession) Ready() ServerReady { return s.rd }

// HasReady reports whether Ready holds anything to do.
func (s *ServerSession) HasReady() bool {
	return s.rd.Authenticate != nil || s.rd.Reauthenticate != nil || s.rd.Check != nil || len(s.rd.Append) > 0 || len(s.rd.Send) > 0 || s.rd.Close != nil
}

// Advance acknowledges that the driver did everything in rd.
func (s *ServerSession) Advance(rd ServerReady) {
	if rd.Authenticate != nil {
		s.rd.Authenticate = nil
	}
	if rd.Reauthenticate != nil && s.rd.Reauthenticate == rd.Reauthenticate {
		s.rd.Reauthenticate = nil
	}
	if rd.Check != nil && s.rd.Check == rd.Check {
		s.rd.Check = nil
	}
	if len(rd.Append) > 0 {
		if len(s.rd.Append) >= len(rd.Append) {
			s.rd.Append = s.rd.Append[len(rd.Append):]
		} else {
			s.rd.Append = nil // dropped by a failure meanwhile
		}
		if len(s.rd.Append) == 0 {
			s.rd.AppendTrace, s.rd.AppendEpoch = "", 0
		}
	}
	s.rd.Send = s.rd.Send[len(rd.Send):]
	if rd.Close != nil {
		s.rd.Close = nil
	}
}

func (s *ServerSession) send(m Message) { s.rd.Send = append(s.rd.Send, m) }

// fail sends an Error and closes the session. It returns the error.
func (s *ServerSession) fail(e *Error) error {
	if s.state == serverClosed {
		return e
	}
	s.state = serverClosed
	s.send(&ErrorMessage{Code: e.Code, Message: e.Message})
	s.rd.Close = e
	s.rd.Append = nil
	s.rd.Reauthenticate = nil
	s.rd.Check = nil
	s.queue = nil
	s.reauth = false
	return e
}

// Step feeds one message from the client. A message that breaks the
// protocol closes the session with a coded Error (and is returned);
// nothing of it is applied.
func (s *ServerSession) Step(m Message) error {
	if s.state == serverClosed {
		return Errorf(CodeUnexpected, "session closed")
	}
	switch m := m.(type) {
	case *Hello:
		if s.state != serverNew {
			return s.fail(Errorf(CodeUnexpected, "second Hello"))
		}
		if s.pickVersion(m.Versions) == 0 {
			return s.fail(Errorf(CodeUnsupportedVersion, "client speaks %v, server %v", m.Versions, s.cfg.Versions))
		}
		if m.Site.IsZero() {
			return s.fail(Errorf(CodeBadMessage, "Hello without a site"))
		}
		s.hello, s.site, s.state = m, m.Site, serverAuth
		s.rd.Authenticate = m
		return nil
	case *Ping:
		s.send(&Pong{Nonce: m.Nonce, Head: s.head})
		return nil
	case *Pong:
		return nil
	case *ErrorMessage:
		s.state = serverClosed
		s.rd.Close = m.Err()
		// A closed session verifies no more tokens.
		s.rd.Reauthenticate, s.reauth = nil, false
		return nil
	}
	if s.state != serverOpen {
		return s.fail(Errorf(CodeUnexpected, "%s before the session is open", m.Type()))
	}
	switch m := m.(type) {
	case *Push:
		return s.push(m)
	case *Credit:
		s.credits = uint32(min(uint64(s.credits)+uint64(m.N), uint64(s.cfg.MaxCredits)))
		return nil
	case *Check:
		if s.version < VersionEpochs {
			return s.fail(Errorf(CodeUnexpected, "Check on a session of version %d", s.version))
		}
		// A client asks again only when an answer did not reach its
		// unacknowledged writes (the runs were too many for one), from
		// past it: each Check moves on, and stays within what the
		// server holds.
		if s.checking {
			return s.fail(Errorf(CodeUnexpected, "Check while another is being answered"))
		}
		if m.From == 0 {
			return s.fail(Errorf(CodeBadMessage, "Check from seq 0"))
		}
		if m.From <= s.checked {
			return s.fail(Errorf(CodeBadMessage, "Check from seq %d: runs were sent through %d", m.From, s.checked))
		}
		if m.From > s.committed {
			return s.fail(Errorf(CodeBadMessage, "Check from seq %d, past the %d the server holds", m.From, s.committed))
		}
		s.checking = true
		s.rd.Check, s.rd.CheckThrough = m, s.committed
		return nil
	case *Auth:
		if s.reauth {
			return s.fail(Errorf(CodeUnexpected, "Auth while the previous one is being verified"))
		}
		s.reauth = true
		s.rd.Reauthenticate = m
		return nil
	}
	return s.fail(Errorf(CodeUnexpected, "%s from a client", m.Type()))
}

func (s *ServerSession) pickVersion(client []uint16) uint16 {
	for _, v := range s.cfg.Versions {
		if slices.Contains(client, v) {
			return v
		}
	}
	return 0
}

// AcceptParams are what the driver learned while authenticating.
type AcceptParams struct {
	// HighWater is the highest sequence number of the client's site in
	// the tenant's log.
	HighWater uint64
	// Head is the tenant's newest sequence number.
	Head uint64
	// Snapshot starts the session with a snapshot even though the log
	// holds everything after the client's cursor: the rows a changed
	// subscription adds (Hello.Resubscribe), which ends at the cursor.
	Snapshot bool
	// LogStart is the oldest sequence number still in the log (1 while
	// nothing was trimmed). A client whose cursor is older bootstraps from
	// a snapshot.
	LogStart uint64
	// ServerTime is the server's clock now.
	ServerTime crdt.Timestamp
	// SnapshotAfter, for a bootstrap resumed from Hello.Resume, is the row
	// the snapshot continues after.
	SnapshotAfter crdt.RowKey
	// Expires is when the token expires, in Unix milliseconds (0: never).
	// Welcome tells the client, so that it renews the token in time.
	Expires int64
}

// Accept opens the session after the token was verified.
func (s *ServerSession) Accept(p AcceptParams) {
	if s.state != serverAuth {
		return
	}
	s.state = serverOpen
	s.version = s.pickVersion(s.hello.Versions)
	s.highWater, s.committed, s.head = p.HighWater, p.HighWater, p.Head
	s.cursor = min(s.hello.Cursor, p.Head)
	s.credits = min(s.hello.Credits, s.cfg.MaxCredits)
	if p.Snapshot || p.LogStart > 1 && s.cursor+1 < p.LogStart {
		s.snapshot = &snapshotState{after: p.SnapshotAfter}
	}
	s.send(&Welcome{Version: s.version, ServerTime: p.ServerTime, HighWater: p.HighWater, Head: p.Head, Limits: s.cfg.Limits, Expires: p.Expires})
}

// ObserveHead tells the session the tenant's head, which Pong reports.
// The driver calls it before stepping a Ping.
func (s *ServerSession) ObserveHead(head uint64) { s.head = max(s.head, head) }

// Checked answers the Check in Ready.Check with the site's runs covering
// its From up to through: the CheckThrough it was given, or less when
// the driver read fewer runs than there are (see Runs).
func (s *ServerSession) Checked(runs []Run, through uint64) {
	if !s.checking || s.state != serverOpen {
		return
	}
	s.checking, s.checked = false, through
	s.rd.Check = nil
	s.send(&Runs{Runs: runs, Through: through})
}

// Reauthenticated answers the Auth in Ready.Reauthenticate: its token was
// verified and names the session's tenant. expires is when it expires, in
// Unix milliseconds (0: never). It does nothing without an Auth to answer.
func (s *ServerSession) Reauthenticated(expires int64) {
	if !s.reauth || s.state != serverOpen {
		return
	}
	s.reauth, s.rd.Reauthenticate = false, nil
	s.send(&AuthOK{Expires: expires})
}

// Refuse ends the session: the token of Hello or Auth was refused (err's
// code goes to the client; CodeUnauthorized unless err carries one).
func (s *ServerSession) Refuse(err error) {
	var e *Error
	if !asError(err, &e) {
		e = Errorf(CodeUnauthorized, "%v", err)
	}
	s.fail(e)
}

func (s *ServerSession) push(m *Push) error {
	if uint32(len(m.Txs)) > s.cfg.Limits.MaxPushTxs {
		return s.fail(Errorf(CodeTooLarge, "push of %d transactions, max %d", len(m.Txs), s.cfg.Limits.MaxPushTxs))
	}
	for i := range m.Txs {
		if m.Txs[i].Site != s.site {
			return s.fail(Errorf(CodeWrongSite, "push of a transaction of site %s on the session of site %s", m.Txs[i].Site, s.site))
		}
	}
	if s.appending {
		if uint32(len(s.queue)) >= s.cfg.Limits.MaxInFlight {
			return s.fail(Errorf(CodeRateLimited, "more than %d pushes in flight", s.cfg.Limits.MaxInFlight))
		}
		s.queue = append(s.queue, m)
		return nil
	}
	s.startPush(m)
	return nil
}

// startPush applies the per-site rules to m and either hands the new
// transactions to the driver or, when there are none, acknowledges again.
func (s *ServerSession) startPush(m *Push) {
	var appendTxs []crdt.Tx
	s.pending = make([]uint64, 0, len(m.Txs))
	next := s.highWater + 1
txs:
	for i := range m.Txs {
		tx := &m.Txs[i]
		switch {
		case tx.Seq < next:
			s.pending = append(s.pending, 0) // already held: skip, ack again
		case tx.Seq == next:
			appendTxs = append(appendTxs, *tx)
			s.pending = append(s.pending, tx.Seq)
			next++
		default:
			// A gap: nothing from here on applies. The client resends
			// from its high-water mark after the Ack.
			s.send(&Reject{Site: tx.Site, Seq: tx.Seq, Code: CodeGap, Reason: "expected sequence number " + utoa(next)})
			break txs
		}
	}
	if len(appendTxs) == 0 {
		s.send(&Ack{HighWater: s.committed, Seqs: make([]uint64, len(s.pending))})
		s.pending = nil
		return
	}
	s.appending = true
	s.highWater = next - 1
	s.rd.Append = append(s.rd.Append, appendTxs...)
	s.rd.AppendTrace, s.rd.AppendEpoch = m.Trace, m.Epoch
	if s.version < VersionEpochs {
		s.rd.AppendEpoch = 0
	}
}

// Appended reports that the transactions of the last Append are committed,
// with the tenant sequence numbers they were given (0 for one the log
// already held, found idempotently). Only now is the Ack sent.
func (s *ServerSession) Appended(seqs []uint64) {
	if !s.appending || s.state == serverClosed {
		return
	}
	s.appending = false
	s.committed = s.highWater
	ack := &Ack{HighWater: s.committed, Seqs: make([]uint64, len(s.pending))}
	j := 0
	for i, p := range s.pending {
		if p != 0 && j < len(seqs) {
			ack.Seqs[i] = seqs[j]
			j++
		}
	}
	s.pending = nil
	s.send(ack)
	for len(s.queue) > 0 && !s.appending && s.state == serverOpen {
		m := s.queue[0]
		s.queue = s.queue[1:]
		s.startPush(m)
	}
}

// AppendFailed reports that the last Append did not commit. The session
// closes with CodeUnavailable; the client reconnects and pushes again.
func (s *ServerSession) AppendFailed(err error) {
	s.fail(Errorf(CodeUnavailable, "append: %v", err))
}

// RejectTx queues a Reject for one of the session's transactions that a
// write rule refused. The driver appends an empty transaction in its
// place (so the site's sequence has no gap) and calls RejectTx before
// Appended, so the client hears of the refusal before the Ack.
func (s *ServerSession) RejectTx(m *Reject) {
	if s.state == serverOpen {
		s.send(m)
	}
}

// Want reports whether the session can take more data for the client: the
// log entries after from (up to one message's worth) or, while
// bootstrapping, the next snapshot chunk after key. The driver reads them
// and calls Deliver or DeliverSnapshot, or nothing if there is nothing new
// (and asks again when the log grows).
func (s *ServerSession) Want() (from uint64, snapshot bool, after crdt.RowKey, ok bool) {
	if s.state != serverOpen || s.credits == 0 {
		return 0, false, crdt.RowKey{}, false
	}
	if s.snapshot != nil {
		return 0, true, s.snapshot.after, true
	}
	return s.cursor, false, crdt.RowKey{}, true
}

// Deliver sends log entries after the cursor up to to (entries in
// between that the client does not subscribe to are left out) and the
// states of filtered rows they changed, using one credit. It returns how
// many of changes it left out as the session's own.
//
// The session's own transactions (of its site) never go back to it: the
// Ack told the client they are held, and it applied them when it made
// them. The Changes still covers them (To), so the client's cursor moves
// past them; a batch of nothing but its own goes out empty for that. The
// states in rows go out whoever wrote them: a filtered row's state holds
// other sites' writes the client may not have (it joins its own again,
// which changes nothing). Replicas that share a site (a copied database)
// therefore never receive each other's transactions; they are broken
// anyway, as the server holds the second one's pushes for the first's.
func (s *ServerSession) Deliver(changes []Change, rows []SnapshotRow, to uint64) (own int) {
	if s.state != serverOpen || s.credits == 0 || s.snapshot != nil || to <= s.cursor {
		return 0
	}
	sent := changes
	for i := range changes {
		if changes[i].Tx.Site == s.site {
			sent = s.others(changes)
			break
		}
	}
	s.send(&Changes{From: s.cursor, To: to, Changes: sent, Rows: rows})
	s.cursor = to
	s.head = max(s.head, to)
	s.credits--
	return len(changes) - len(sent)
}

// others returns a copy of changes without the session's own.
func (s *ServerSession) others(changes []Change) []Change {
	out := make([]Change, 0, len(changes))
	for _, ch := range changes {
		if ch.Tx.Site != s.site {
			out = append(out, ch)
		}
	}
	return out
}

// DeliverSnapshot sends one snapshot chunk, using one credit. After the
// last chunk the session continues with Changes from the snapshot's seq.
func (s *ServerSession) DeliverSnapshot(m *Snapshot) {
	if s.state != serverOpen || s.credits == 0 || s.snapshot == nil {
		return
	}
	s.send(m)
	s.credits--
	if len(m.Rows) > 0 {
		last := m.Rows[len(m.Rows)-1]
		s.snapshot.after = crdt.RowKey{Collection: last.Collection, Row: last.Row}
	}
	if m.Last {
		s.cursor = m.Seq
		s.snapshot = nil
	}
}

// Fail closes the session with err (for example a token that expired
// mid-connection, or a client that fell too far behind).
func (s *ServerSession) Fail(err *Error) { s.fail(err) }

func utoa(v uint64) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			return string(b[i:])
		}
	}
}
