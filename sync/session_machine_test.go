package sync_test

// rapid state machines for each session alone: random peer messages
// (through the codec) and random IO results, in any order, with the
// invariants checked after every action:
//
//   - nothing panics;
//   - a Step that returns an error leaves the session Closed, with a Close
//     of the error's code in Ready and, last in Send, the matching Error;
//     once closed, nothing more is sent;
//   - server: every Ack covers only what the driver committed (Accept's
//     high-water mark, then Appended), Append never skips or repeats a
//     sequence number, and Changes and Snapshots never outnumber the
//     credits granted (Hello.Credits plus every Credit.N); an Auth is
//     taken only while the session is open and no other is being
//     verified, and every AuthOK answers one the driver verified;
//   - client: every Push continues from the previous one, or from the
//     high-water mark of Welcome after a (re)connect (or, after a gap
//     Reject, from the mark of the Ack that follows), and Applied moves the cursor to the
//     batch's end and grants one credit; Reauthenticate sends Auth only
//     while open, and an AuthOK is taken only for an Auth in flight.

import (
	"errors"
	"fmt"
	"math"
	"testing"

	"github.com/unosync/uno/crdt"
	usync "github.com/unosync/uno/sync"
	"pgregory.net/rapid"
)

var sessAllCodes = []usync.Code{
	usync.CodeBadMessage, usync.CodeUnknownType, usync.CodeUnsupportedVersion, usync.CodeTooLarge,
	usync.CodeBadCompression, usync.CodeUnexpected, usync.CodeUnauthorized, usync.CodeTokenExpired,
	usync.CodeForbidden, usync.CodeGap, usync.CodeMalformedTx, usync.CodeClockDrift, usync.CodeInvalidTx,
	usync.CodeWrongSite, usync.CodeResync, usync.CodeSlowConsumer, usync.CodeRateLimited,
	usync.CodeUnavailable, usync.CodeInternal, usync.CodeShuttingDown,
}

// sessCheckStepErr checks a Step's outcome: an error closes the session
// (unless it was closed already) with a Close of the error's code and the
// matching Error last in Send.
func sessCheckStepErr(t *rapid.T, what string, err error, wasClosed, closed bool, send []usync.Message, close *usync.Error) {
	t.Helper()
	if err == nil || wasClosed {
		if err == nil && wasClosed {
			t.Fatalf("%s on a closed session returned no error", what)
		}
		return
	}
	code := usync.CodeOf(err)
	if !closed {
		t.Fatalf("%s returned %v, but the session is not closed", what, err)
	}
	if close == nil || close.Code != code {
		t.Fatalf("%s returned %v; Ready.Close = %v", what, err, close)
	}
	if len(send) == 0 {
		t.Fatalf("%s returned %v; nothing to send", what, err)
	}
	if e, ok := send[len(send)-1].(*usync.ErrorMessage); !ok || e.Code != code {
		t.Fatalf("%s returned %v; Send ends with %T %+v", what, err, send[len(send)-1], send[len(send)-1])
	}
}

// ---- server ----

type srvMachine struct {
	codec *usync.Codec
	cfg   usync.ServerConfig
	s     *usync.ServerSession

	hello      *usync.Hello // the Hello the session took
	logStart   uint64       // Accept's LogStart
	durable    uint64       // highest seq of the site the driver committed (Accept's high-water, then appends)
	handed     []crdt.Tx    // handed to the driver by Ready.Append, not committed yet
	handedHW   uint64       // highest seq handed to the driver (or durable)
	tenant     uint64       // the last tenant seq the driver gave out
	given      map[uint64]bool
	granted    uint64 // Hello.Credits + every Credit.N
	sent       int    // Changes and Snapshots the driver took from Ready
	cursor     uint64 // Cursor after open; never goes back
	peerClosed bool   // the client's Error closed the session
	closedSend int    // len(Ready().Send) when last checked while closed; -1 while open
	rejects    map[*usync.Reject]bool
	authing    bool // an Auth was taken and neither Reauthenticated nor Refused yet
	verified   int  // Reauthenticated calls that answered an Auth
	authOKs    int  // AuthOKs the driver took from Ready
}

func (m *srvMachine) step(t *rapid.T, msg usync.Message) error {
	t.Helper()
	wasClosed := m.s.Closed()
	err := m.s.Step(sessWire(t, m.codec, msg))
	rd := m.s.Ready()
	sessCheckStepErr(t, "Step("+msg.Type().String()+")", err, wasClosed, m.s.Closed(), rd.Send, rd.Close)
	return err
}

// closedBy checks a call that must close the session with code.
func (m *srvMachine) closedBy(t *rapid.T, what string, wasClosed bool, code usync.Code) {
	t.Helper()
	if wasClosed {
		return
	}
	rd := m.s.Ready()
	sessCheckStepErr(t, what, &usync.Error{Code: code}, false, m.s.Closed(), rd.Send, rd.Close)
}

func (m *srvMachine) accept(t *rapid.T) {
	t.Helper()
	p := usync.AcceptParams{
		HighWater:  rapid.Uint64Range(0, 4).Draw(t, "hw"),
		Head:       rapid.Uint64Range(0, 12).Draw(t, "head"),
		LogStart:   rapid.SampledFrom([]uint64{0, 1, 1, 1, 3, 6}).Draw(t, "logStart"),
		ServerTime: sessServerTime,
	}
	wasOpen := m.s.Open()
	m.s.Accept(p)
	if wasOpen || !m.s.Open() {
		return
	}
	m.durable, m.handedHW, m.logStart = p.HighWater, p.HighWater, p.LogStart
	m.cursor = m.s.Cursor()
	if want := min(m.hello.Cursor, p.Head); m.cursor != want {
		t.Fatalf("Accept: cursor %d, want min(Hello.Cursor %d, Head %d)", m.cursor, m.hello.Cursor, p.Head)
	}
	send := m.s.Ready().Send
	w, ok := send[len(send)-1].(*usync.Welcome)
	if !ok || w.HighWater != p.HighWater || w.Head != p.Head || w.Version != m.s.Version() {
		t.Fatalf("Accept(%+v): last message %T %+v", p, send[len(send)-1], send[len(send)-1])
	}
}

// commit commits the handed transactions (a few found already held, as
// when another connection of the site appended them) and calls Appended.
func (m *srvMachine) commit(t *rapid.T) {
	t.Helper()
	seqs := make([]uint64, len(m.handed))
	for i, tx := range m.handed {
		m.durable = tx.Seq
		if rapid.IntRange(0, 9).Draw(t, "held") == 0 {
			continue
		}
		m.tenant++
		seqs[i] = m.tenant
		m.given[m.tenant] = true
	}
	m.handed = nil
	m.s.Appended(seqs)
}

func (m *srvMachine) appendFailed(t *rapid.T) {
	t.Helper()
	wasClosed := m.s.Closed()
	m.handed = nil
	m.s.AppendFailed(errors.New("disk full"))
	m.closedBy(t, "AppendFailed", wasClosed, usync.CodeUnavailable)
}

// ready does what Ready asks, choosing the IO results at random: Accept,
// Refuse or not yet; commit now, fail, or commit later.
func (m *srvMachine) ready(t *rapid.T) {
	rd := m.s.Ready()
	if rd.Authenticate != nil {
		switch rapid.IntRange(0, 5).Draw(t, "auth") {
		case 0, 1, 2, 3:
			m.accept(t)
		case 4:
			wasClosed := m.s.Closed()
			m.s.Refuse(usync.ErrForbidden)
			m.closedBy(t, "Refuse", wasClosed, usync.CodeForbidden)
		}
	}
	if rd.Reauthenticate != nil {
		if !m.authing {
			t.Fatalf("Ready.Reauthenticate with no Auth taken")
		}
		switch rapid.IntRange(0, 4).Draw(t, "reauth") {
		case 0, 1:
			m.reauthenticated(t)
		case 2:
			wasClosed := m.s.Closed()
			code := rapid.SampledFrom([]usync.Code{usync.CodeUnauthorized, usync.CodeTokenExpired, usync.CodeForbidden}).Draw(t, "refusal")
			m.s.Refuse(&usync.Error{Code: code})
			m.authing = false
			m.closedBy(t, "Refuse", wasClosed, code)
		}
	}
	if len(rd.Append) > 0 {
		for _, tx := range rd.Append {
			if tx.Site != m.s.Site() || tx.Seq != m.handedHW+1 {
				t.Fatalf("Ready.Append holds %s/%d after %d handed (site %s)", tx.Site.String()[:4], tx.Seq, m.handedHW, m.s.Site().String()[:4])
			}
			m.handedHW = tx.Seq
		}
		m.handed = append(m.handed, rd.Append...)
		switch rapid.IntRange(0, 5).Draw(t, "io") {
		case 0, 1, 2:
			m.commit(t)
		case 3:
			m.appendFailed(t)
		}
	}
	for _, msg := range rd.Send {
		switch msg.(type) {
		case *usync.Changes, *usync.Snapshot:
			m.sent++
		case *usync.AuthOK:
			m.authOKs++
		}
	}
	if rd.Close != nil && !m.peerClosed {
		if e, ok := rd.Send[len(rd.Send)-1].(*usync.ErrorMessage); !ok || e.Code != rd.Close.Code {
			t.Fatalf("Ready.Close %v, but Send ends with %T", rd.Close, rd.Send[len(rd.Send)-1])
		}
	}
	m.s.Advance(rd)
}

// reauthenticated is the driver accepting the token of the Auth taken (or
// calling Reauthenticated with none to answer, which must do nothing).
func (m *srvMachine) reauthenticated(t *rapid.T) {
	t.Helper()
	before := len(m.s.Ready().Send)
	expires := rapid.SampledFrom([]int64{0, 1, 1_700_000_060_000}).Draw(t, "expires")
	m.s.Reauthenticated(expires)
	send := m.s.Ready().Send
	if !m.authing || !m.s.Open() {
		if len(send) != before {
			t.Fatalf("Reauthenticated with no Auth to answer sent %T", send[len(send)-1])
		}
		return
	}
	m.authing = false
	m.verified++
	if len(send) != before+1 {
		t.Fatalf("Reauthenticated: %d messages more, want one AuthOK", len(send)-before)
	}
	if ok, isOK := send[len(send)-1].(*usync.AuthOK); !isOK || ok.Expires != expires {
		t.Fatalf("Reauthenticated(%d) sent %T %+v", expires, send[len(send)-1], send[len(send)-1])
	}
}

// auth steps an Auth: taken only while open with no other being verified.
func (m *srvMachine) auth(t *rapid.T) {
	wasOpen, wasAuthing := m.s.Open(), m.authing
	a := &usync.Auth{Token: rapid.SampledFrom([]string{"tok2", "", "other tenant"}).Draw(t, "token")}
	err := m.step(t, a)
	switch {
	case err == nil:
		if !wasOpen || wasAuthing {
			t.Fatalf("Auth taken (open %v, another being verified %v)", wasOpen, wasAuthing)
		}
		if rd := m.s.Ready(); rd.Reauthenticate == nil || rd.Reauthenticate.Token != a.Token {
			t.Fatalf("Auth taken: Ready.Reauthenticate = %+v", rd.Reauthenticate)
		}
		m.authing = true
	case wasOpen && !wasAuthing:
		t.Fatalf("Auth refused on an open session: %v", err)
	}
}

func (m *srvMachine) deliver(t *rapid.T) {
	from, snapshot, after, ok := m.s.Want()
	credits := m.s.Credits()
	before := len(m.s.Ready().Send)
	if !ok {
		// Neither kind of delivery may do anything without credit.
		to := m.s.Cursor() + rapid.Uint64Range(1, 3).Draw(t, "to")
		m.s.Deliver(sessChanges(m.s.Cursor(), to), nil, to)
		m.s.DeliverSnapshot(&usync.Snapshot{Seq: to, Last: true})
		if n := len(m.s.Ready().Send); n != before || m.s.Credits() != credits {
			t.Fatalf("Deliver when Want says no: %d messages more, credits %d → %d", n-before, credits, m.s.Credits())
		}
		return
	}
	if credits == 0 {
		t.Fatalf("Want says ok with no credit")
	}
	want := 1
	if snapshot {
		chunk := &usync.Snapshot{Seq: m.logStart - 1 + rapid.Uint64Range(0, 3).Draw(t, "snapSeq"), After: after, Last: rapid.Bool().Draw(t, "last")}
		for i := range rapid.IntRange(0, 2).Draw(t, "rows") {
			chunk.Rows = append(chunk.Rows, usync.SnapshotRow{Collection: "todo", Row: after.Row + string(rune('a'+i)), State: []byte{byte(i)}})
		}
		m.s.DeliverSnapshot(chunk)
		if chunk.Last && m.s.Cursor() != chunk.Seq {
			t.Fatalf("after the last snapshot chunk at %d the cursor is %d", chunk.Seq, m.s.Cursor())
		}
	} else {
		to := from + rapid.Uint64Range(0, 3).Draw(t, "n")
		if to == from {
			want = 0
		}
		// Entries of both sites: the session's own (A's) stay out.
		chs := sessChanges(from, to)
		var others []usync.Change
		for i := range chs {
			if rapid.Bool().Draw(t, "own") {
				chs[i].Tx.Site = siteA
				continue
			}
			others = append(others, chs[i])
		}
		if own := m.s.Deliver(chs, nil, to); own != len(chs)-len(others) {
			t.Fatalf("Deliver of %d entries, %d of them the session's own, says it left out %d", len(chs), len(chs)-len(others), own)
		}
		if m.s.Cursor() != to {
			t.Fatalf("Deliver(…, %d) from %d: cursor %d", to, from, m.s.Cursor())
		}
		if send := m.s.Ready().Send; want == 1 {
			c, ok := send[len(send)-1].(*usync.Changes)
			if !ok || c.To != to || len(c.Changes) != len(others) {
				t.Fatalf("Deliver (%d, %d] sent %T %+v; want Changes to %d with the %d entries of other sites", from, to, send[len(send)-1], send[len(send)-1], to, len(others))
			}
			for i := range others {
				if c.Changes[i].Seq != others[i].Seq || c.Changes[i].Tx.Site == siteA {
					t.Fatalf("Deliver (%d, %d] sent entry %d as tenant seq %d of %s; want %d", from, to, i, c.Changes[i].Seq, c.Changes[i].Tx.Site, others[i].Seq)
				}
			}
		}
	}
	send := m.s.Ready().Send
	if len(send) != before+want || m.s.Credits() != credits-uint32(want) {
		t.Fatalf("Deliver: %d messages more, credits %d → %d; want %d more", len(send)-before, credits, m.s.Credits(), want)
	}
	if want == 1 && !snapshot {
		if c, ok := send[len(send)-1].(*usync.Changes); !ok || c.From != from {
			t.Fatalf("Deliver from %d sent %T %+v", from, send[len(send)-1], send[len(send)-1])
		}
	}
}

// sessChanges returns log entries (from, to] of site B.
func sessChanges(from, to uint64) []usync.Change {
	var chs []usync.Change
	for seq := from + 1; seq <= to; seq++ {
		chs = append(chs, usync.Change{Seq: seq, Tx: sessTx(siteB, seq)})
	}
	return chs
}

// genPush returns a Push of site A around the high-water mark: mostly in
// order, sometimes repeating or skipping sequence numbers.
func (m *srvMachine) genPush(t *rapid.T) *usync.Push {
	p := &usync.Push{}
	n := rapid.IntRange(0, int(m.cfg.Limits.MaxPushTxs)).Draw(t, "pushTxs")
	seq := uint64(max(int64(m.handedHW)+rapid.Int64Range(-2, 2).Draw(t, "pushFrom"), 1))
	for range n {
		p.Txs = append(p.Txs, sessTx(siteA, seq))
		seq += uint64(rapid.SampledFrom([]int{1, 1, 1, 1, 1, 1, 2, 0}).Draw(t, "pushStep"))
		seq = max(seq, 1)
	}
	return p
}

func (m *srvMachine) check(t *rapid.T) {
	rd := m.s.Ready()
	sent := m.sent
	for _, msg := range rd.Send {
		switch msg := msg.(type) {
		case *usync.Changes, *usync.Snapshot:
			sent++
		case *usync.Reject:
			// A gap is a seq past the high-water mark + 1; the session's
			// mark is at least what the driver was handed.
			if !m.rejects[msg] && (msg.Code != usync.CodeGap || msg.Seq <= m.handedHW+1) {
				t.Fatalf("Reject %s of seq %d with %d handed to the driver", msg.Code, msg.Seq, m.handedHW)
			}
			m.rejects[msg] = true
		case *usync.Ack:
			if msg.HighWater > m.durable {
				t.Fatalf("Ack of %d; the driver committed up to %d", msg.HighWater, m.durable)
			}
			for _, seq := range msg.Seqs {
				if seq != 0 && !m.given[seq] {
					t.Fatalf("Ack with tenant seq %d, which Appended never reported", seq)
				}
			}
		}
	}
	authOKs := m.authOKs
	for _, msg := range rd.Send {
		if _, ok := msg.(*usync.AuthOK); ok {
			authOKs++
		}
	}
	if authOKs > m.verified {
		t.Fatalf("%d AuthOKs sent for %d tokens the driver verified", authOKs, m.verified)
	}
	if uint64(sent) > m.granted {
		t.Fatalf("%d Changes and Snapshots sent, %d credits granted", sent, m.granted)
	}
	if m.s.Credits() > m.cfg.MaxCredits {
		t.Fatalf("%d credits, more than MaxCredits %d", m.s.Credits(), m.cfg.MaxCredits)
	}
	for _, tx := range rd.Append {
		if tx.Site != m.s.Site() {
			t.Fatalf("Append holds a transaction of site %s on the session of %s", tx.Site.String()[:4], m.s.Site().String()[:4])
		}
	}
	if m.s.Open() {
		if m.s.Cursor() < m.cursor {
			t.Fatalf("cursor went back from %d to %d", m.cursor, m.s.Cursor())
		}
		m.cursor = m.s.Cursor()
	}
	if m.s.Closed() {
		if m.closedSend >= 0 && len(rd.Send) > m.closedSend {
			t.Fatalf("closed session sent %T %+v", rd.Send[len(rd.Send)-1], rd.Send[len(rd.Send)-1])
		}
		m.closedSend = len(rd.Send)
	}
}

// sessActions builds a Repeat map in which an action registered with
// weight w is picked w times as often (Repeat picks keys uniformly).
type sessActions map[string]func(*rapid.T)

func (a sessActions) add(name string, w int, f func(*rapid.T)) {
	for i := range w {
		a[fmt.Sprintf("%s/%d", name, i)] = f
	}
}

// sessRepeat runs the actions for about three times rapid's -rapid.steps.
func sessRepeat(t *rapid.T, a sessActions) {
	for range 3 {
		t.Repeat(a)
	}
}

func (m *srvMachine) reset() {
	m.s = usync.NewServerSession(m.cfg)
	m.hello, m.logStart, m.durable, m.handed, m.handedHW = nil, 0, 0, nil, 0
	m.granted, m.sent, m.cursor, m.peerClosed, m.closedSend = 0, 0, 0, false, -1
	m.rejects = make(map[*usync.Reject]bool)
	m.authing, m.verified, m.authOKs = false, 0, 0
}

func (m *srvMachine) helloAction(t *rapid.T) {
	if m.hello != nil {
		t.Skip("said Hello")
	}
	h := &usync.Hello{
		Versions: rapid.SampledFrom([][]uint16{{1}, {1}, {1}, {2, 1}, {1, 3}, {2}, nil}).Draw(t, "versions"),
		Site:     rapid.SampledFrom([]crdt.SiteID{siteA, siteA, siteA, siteA, siteA, {}}).Draw(t, "site"),
		Cursor:   rapid.Uint64Range(0, 12).Draw(t, "cursor"),
		Credits:  rapid.Uint32Range(0, 3).Draw(t, "credits"),
	}
	if m.step(t, h) == nil {
		m.hello = h
		m.granted += uint64(h.Credits)
	}
}

// misbehave does one of the things that close the session.
func (m *srvMachine) misbehave(t *rapid.T) {
	wasClosed := m.s.Closed()
	switch rapid.IntRange(0, 7).Draw(t, "misbehave") {
	case 5:
		p := m.genPush(t)
		p.Txs = append(p.Txs, sessTx(siteB, m.handedHW+1))
		if err := m.step(t, p); err == nil {
			t.Fatalf("Push with a transaction of another site: no error")
		}
	case 6:
		if err := m.step(t, push(sessTxs(siteA, m.handedHW+1, m.handedHW+uint64(m.cfg.Limits.MaxPushTxs)+1)...)); err == nil {
			t.Fatalf("Push over MaxPushTxs: no error")
		}
	case 7:
		h := hello(siteA, 0, 1)
		if err := m.step(t, h); err == nil {
			if m.hello != nil {
				t.Fatalf("second Hello: no error")
			}
			m.hello = h // the first, in fact
			m.granted += uint64(h.Credits)
		}
	case 0:
		e := &usync.ErrorMessage{Code: rapid.SampledFrom(sessAllCodes).Draw(t, "code")}
		if m.step(t, e) == nil && !wasClosed {
			if rd := m.s.Ready(); !m.s.Closed() || rd.Close == nil || rd.Close.Code != e.Code {
				t.Fatalf("the client's Error %s: Closed %v, Ready.Close %v", e.Code, m.s.Closed(), rd.Close)
			}
			m.peerClosed = true
		}
	case 1:
		msg := rapid.SampledFrom([]usync.Message{
			welcome(0, 0, defaultLimits), &usync.Ack{HighWater: 1}, &usync.Changes{From: 0, To: 1, Changes: sessChanges(0, 1)},
			&usync.Snapshot{Seq: 1}, &usync.Reject{Site: siteA, Seq: 1, Code: usync.CodeGap}, &usync.AuthOK{Expires: 1},
		}).Draw(t, "msg")
		if err := m.step(t, msg); err == nil {
			t.Fatalf("Step(%T) from a client: no error", msg)
		}
	case 2:
		m.s.Refuse(errors.New("bad token"))
		m.authing = false
		m.closedBy(t, "Refuse", wasClosed, usync.CodeUnauthorized)
	case 3:
		code := rapid.SampledFrom(sessAllCodes).Draw(t, "code")
		m.s.Fail(&usync.Error{Code: code})
		m.closedBy(t, "Fail", wasClosed, code)
	default:
		m.appendFailed(t)
	}
}

func TestServerSession_StateMachine(t *testing.T) {
	codec := sessNewCodec(t)
	rapid.Check(t, func(t *rapid.T) {
		m := &srvMachine{
			codec: codec,
			cfg:   usync.ServerConfig{Limits: usync.Limits{MaxPushTxs: 3, MaxInFlight: 2}, MaxCredits: 5},
			given: make(map[uint64]bool),
		}
		m.reset()
		if rapid.IntRange(0, 4).Draw(t, "handshake") > 0 {
			m.helloAction(t)
			if m.hello != nil {
				m.accept(t)
			}
		}
		a := sessActions{"": m.check}
		a.add("Hello", 1, m.helloAction)
		a.add("Push", 5, func(t *rapid.T) { m.step(t, m.genPush(t)) })
		a.add("Credit", 2, func(t *rapid.T) {
			c := &usync.Credit{N: rapid.SampledFrom([]uint32{0, 1, 1, 2, math.MaxUint32}).Draw(t, "n")}
			if m.step(t, c) == nil {
				m.granted += uint64(c.N)
			}
		})
		a.add("Ping", 1, func(t *rapid.T) {
			m.step(t, rapid.SampledFrom([]usync.Message{&usync.Ping{Nonce: 1}, &usync.Pong{Nonce: 2}}).Draw(t, "ping"))
		})
		a.add("Auth", 1, m.auth)
		a.add("Reauthenticated", 1, m.reauthenticated)
		a.add("misbehave", 1, m.misbehave)
		a.add("Ready", 5, m.ready)
		a.add("Accept", 1, func(t *rapid.T) {
			if m.hello != nil {
				m.accept(t)
				return
			}
			m.s.Accept(usync.AcceptParams{HighWater: 1, Head: 1, LogStart: 1})
			if m.s.Open() {
				t.Fatalf("Accept opened a session that took no Hello")
			}
		})
		a.add("commit", 2, func(t *rapid.T) {
			if len(m.handed) == 0 {
				t.Skip("nothing handed")
			}
			m.commit(t)
		})
		a.add("stray Appended", 1, func(t *rapid.T) {
			if len(m.handed) > 0 || len(m.s.Ready().Append) > 0 {
				t.Skip("an append is pending")
			}
			before := len(m.s.Ready().Send)
			m.s.Appended([]uint64{rapid.Uint64Range(0, 3).Draw(t, "seq")})
			if n := len(m.s.Ready().Send); n != before {
				t.Fatalf("Appended with nothing pending sent %T", m.s.Ready().Send[n-1])
			}
		})
		a.add("Deliver", 4, m.deliver)
		a.add("new session", 1, func(t *rapid.T) {
			if !m.s.Closed() {
				t.Skip("open")
			}
			m.reset()
		})
		sessRepeat(t, a)
	})
}

// ---- client ----

type cliMachine struct {
	codec *usync.Codec
	cfg   usync.ClientConfig
	s     *usync.ClientSession

	made       uint64 // local transactions 1..made exist
	acked      uint64 // the driver's acked mark: the outbox holds acked+1..made
	cursor     uint64 // the driver's persisted cursor
	next       uint64 // the seq the next Push must start with; 0 until Welcome
	inFlight   int    // Pushes not acknowledged yet
	rewind     bool   // a gap Reject was stepped: the next Ack sets where pushes resume
	started    bool
	authing    int // Auths sent and not answered yet
	seen       map[usync.Message]bool
	closedSend int // len(Ready().Send) when last checked while closed; -1 while open
}

func (m *cliMachine) connect() {
	m.s = usync.NewClientSession(m.cfg, m.cursor)
	m.next, m.closedSend, m.inFlight, m.started, m.authing = 0, -1, 0, false, 0
	m.seen = make(map[usync.Message]bool)
}

func (m *cliMachine) step(t *rapid.T, msg usync.Message) error {
	t.Helper()
	wasClosed := m.s.Closed()
	before := len(m.s.Ready().Send)
	err := m.s.Step(sessWire(t, m.codec, msg))
	rd := m.s.Ready()
	sessCheckStepErr(t, "Step("+msg.Type().String()+")", err, wasClosed, m.s.Closed(), rd.Send, rd.Close)
	if e, ok := msg.(*usync.ErrorMessage); ok && !wasClosed {
		if !m.s.Closed() || rd.Close == nil || rd.Close.Code != e.Code || len(rd.Send) != before || rd.Apply != nil {
			t.Fatalf("the server's Error %s: Closed %v, Close %v, %d messages more, Apply %T", e.Code, m.s.Closed(), rd.Close, len(rd.Send)-before, rd.Apply)
		}
	}
	return err
}

// applied is the driver applying Ready.Apply and calling Applied.
func (m *cliMachine) applied(t *rapid.T) {
	rd := m.s.Ready()
	wasOpen, cursor, before := m.s.Open(), m.s.Cursor(), len(rd.Send)
	m.s.Applied()
	want := cursor
	switch b := rd.Apply.(type) {
	case *usync.Changes:
		want = b.To
	case *usync.Snapshot:
		if b.Last {
			want = b.Seq
		}
	}
	send := m.s.Ready().Send
	if rd.Apply == nil || !wasOpen {
		if len(send) != before || m.s.Cursor() != cursor {
			t.Fatalf("Applied with nothing to apply: %d messages more, cursor %d → %d", len(send)-before, cursor, m.s.Cursor())
		}
		return
	}
	if m.s.Cursor() != want {
		t.Fatalf("Applied %T: cursor %d, want %d", rd.Apply, m.s.Cursor(), want)
	}
	if len(send) != before+1 {
		t.Fatalf("Applied: %d messages more, want one Credit", len(send)-before)
	}
	if c, ok := send[len(send)-1].(*usync.Credit); !ok || c.N != 1 {
		t.Fatalf("Applied sent %T %+v, want Credit{1}", send[len(send)-1], send[len(send)-1])
	}
	if m.s.Ready().Apply != nil {
		t.Fatalf("Ready.Apply still set after Applied")
	}
	m.cursor = m.s.Cursor()
}

func (m *cliMachine) check(t *rapid.T) {
	rd := m.s.Ready()
	for _, msg := range rd.Send {
		if m.seen[msg] {
			continue
		}
		m.seen[msg] = true
		switch msg := msg.(type) {
		case *usync.Push:
			if m.next == 0 {
				t.Fatalf("Push before Welcome")
			}
			for i, tx := range msg.Txs {
				if tx.Site != m.cfg.Site || tx.Seq != m.next+uint64(i) {
					t.Fatalf("Push of %s/%d at %d; want %d", tx.Site.String()[:4], tx.Seq, i, m.next+uint64(i))
				}
			}
			m.next += uint64(len(msg.Txs))
			m.inFlight++
		case *usync.Credit:
			if msg.N != 1 {
				t.Fatalf("Credit of %d", msg.N)
			}
		}
	}
	if m.s.Closed() {
		if m.closedSend >= 0 && len(rd.Send) > m.closedSend {
			t.Fatalf("closed session sent %T %+v", rd.Send[len(rd.Send)-1], rd.Send[len(rd.Send)-1])
		}
		m.closedSend = len(rd.Send)
	}
}

func (m *cliMachine) start() {
	m.s.Start()
	m.started = true
}

func (m *cliMachine) welcome(t *rapid.T) {
	if !m.started || m.s.Welcome() != nil {
		t.Skip("not waiting for Welcome")
	}
	w := &usync.Welcome{
		Version:    rapid.SampledFrom([]uint16{1, 1, 1, 1, 2}).Draw(t, "version"),
		ServerTime: sessServerTime,
		HighWater:  rapid.Uint64Range(m.acked, m.made).Draw(t, "hw"),
		Head:       rapid.Uint64Range(0, 12).Draw(t, "head"),
		Limits: usync.Limits{
			MaxPushTxs:  rapid.SampledFrom([]uint32{0, 2, 1000}).Draw(t, "maxPushTxs"),
			MaxInFlight: rapid.SampledFrom([]uint32{0, 1, 2}).Draw(t, "maxInFlight"),
		},
	}
	m.stepWelcome(t, w)
}

func (m *cliMachine) stepWelcome(t *rapid.T, w *usync.Welcome) {
	if m.step(t, w) == nil {
		m.next, m.rewind = w.HighWater+1, false
		if rd := m.s.Ready(); w.HighWater > 0 && rd.Acked != w.HighWater {
			t.Fatalf("Welcome with high-water %d: Ready.Acked %d", w.HighWater, rd.Acked)
		}
	}
}

func (m *cliMachine) ready(t *rapid.T) {
	rd := m.s.Ready()
	if rd.Acked > m.acked {
		m.acked = rd.Acked
	}
	if rd.Apply != nil && rapid.Bool().Draw(t, "applyNow") {
		m.applied(t)
	}
	// A batch not applied yet stays with the driver: ClientReady says to
	// call Applied before Advance.
	rd.Apply = nil
	m.s.Advance(rd)
}

func (m *cliMachine) push(t *rapid.T) {
	after, limit, ok := m.s.WantPush()
	if !ok {
		t.Skip("no push wanted")
	}
	var txs []crdt.Tx
	for seq := max(after, m.acked) + 1; seq <= m.made && len(txs) < limit; seq++ {
		txs = append(txs, sessTx(siteA, seq))
	}
	if len(txs) == 0 {
		t.Skip("nothing to push")
	}
	before := len(m.s.Ready().Send)
	err := m.s.Push(txs)
	if (err == nil) != (txs[0].Seq == after+1) {
		t.Fatalf("Push from %d after WantPush said %d: %v", txs[0].Seq, after, err)
	}
	if err != nil && len(m.s.Ready().Send) != before {
		t.Fatalf("refused Push sent something")
	}
}

// reauthenticate sends Auth when open, and nothing otherwise.
func (m *cliMachine) reauthenticate(t *rapid.T) {
	before, open := len(m.s.Ready().Send), m.s.Open()
	m.s.Reauthenticate("tok2")
	send := m.s.Ready().Send
	if !open {
		if len(send) != before {
			t.Fatalf("Reauthenticate on a session not open sent %T", send[len(send)-1])
		}
		return
	}
	if a, ok := send[len(send)-1].(*usync.Auth); len(send) != before+1 || !ok || a.Token != "tok2" {
		t.Fatalf("Reauthenticate: %d messages more, last %T", len(send)-before, send[len(send)-1])
	}
	m.authing++
}

// authOK steps an AuthOK: taken only for an Auth in flight.
func (m *cliMachine) authOK(t *rapid.T) {
	open := m.s.Open()
	ok := &usync.AuthOK{Expires: rapid.SampledFrom([]int64{0, 1, 1_700_000_060_000}).Draw(t, "expires")}
	err := m.step(t, ok)
	switch {
	case err == nil:
		if m.authing == 0 {
			t.Fatalf("AuthOK taken with no Auth in flight")
		}
		m.authing--
		if m.s.Expires() != ok.Expires || !m.s.Ready().Authenticated {
			t.Fatalf("AuthOK{%d}: Expires() = %d, Ready.Authenticated = %v", ok.Expires, m.s.Expires(), m.s.Ready().Authenticated)
		}
	case open && m.authing > 0:
		t.Fatalf("AuthOK refused with %d Auth in flight: %v", m.authing, err)
	}
}

// misbehave does one of the things that close the session.
func (m *cliMachine) misbehave(t *rapid.T) {
	wasClosed := m.s.Closed()
	switch rapid.IntRange(0, 7).Draw(t, "misbehave") {
	case 3:
		// Usually refused (no push in flight, or above what was pushed);
		// when it is taken, it is an Ack like any other.
		hw := rapid.Uint64Range(0, m.made+1).Draw(t, "hw")
		if m.step(t, &usync.Ack{HighWater: hw}) == nil {
			m.inFlight--
			if m.rewind {
				m.next, m.rewind = hw+1, false
			}
		}
	case 4:
		m.step(t, &usync.Reject{Site: siteB, Seq: 1, Code: usync.CodeGap})
	case 5:
		m.step(t, &usync.Changes{From: m.s.Cursor() + 1, To: m.s.Cursor() + 1})
	case 6:
		from := uint64(max(int64(m.s.Cursor())+rapid.Int64Range(-1, 2).Draw(t, "off"), 0))
		m.step(t, &usync.Changes{From: from, To: from + 1, Changes: sessChanges(from, from+1)})
	case 7:
		m.stepWelcome(t, welcome(0, 0, defaultLimits)) // closes unless waiting for one
	case 0:
		m.step(t, &usync.ErrorMessage{Code: rapid.SampledFrom(sessAllCodes).Draw(t, "code")})
	case 1:
		msg := rapid.SampledFrom([]usync.Message{
			hello(siteA, 0, 1), push(sessTx(siteA, 1)), &usync.Credit{N: 1}, &usync.Auth{Token: "tok"},
		}).Draw(t, "msg")
		if err := m.step(t, msg); err == nil {
			t.Fatalf("Step(%T) from a server: no error", msg)
		}
	default:
		code := rapid.SampledFrom(sessAllCodes).Draw(t, "code")
		m.s.Fail(&usync.Error{Code: code})
		if !wasClosed {
			rd := m.s.Ready()
			sessCheckStepErr(t, "Fail", &usync.Error{Code: code}, false, m.s.Closed(), rd.Send, rd.Close)
		}
	}
}

func TestClientSession_StateMachine(t *testing.T) {
	codec := sessNewCodec(t)
	rapid.Check(t, func(t *rapid.T) {
		m := &cliMachine{codec: codec, cfg: usync.ClientConfig{Site: siteA, Token: "tok", Window: 3}}
		m.connect()
		if rapid.IntRange(0, 4).Draw(t, "handshake") > 0 {
			m.start()
			m.welcome(t)
		}
		a := sessActions{"": m.check}
		a.add("Start", 1, func(t *rapid.T) { m.start() })
		a.add("local", 3, func(t *rapid.T) {
			if m.made >= 12 {
				t.Skip("enough")
			}
			m.made++
		})
		a.add("Welcome", 1, m.welcome)
		a.add("Ack", 3, func(t *rapid.T) {
			if m.inFlight == 0 || !m.s.Open() {
				t.Skip("no push in flight")
			}
			hw := rapid.Uint64Range(0, m.next-1).Draw(t, "hw")
			if m.step(t, &usync.Ack{HighWater: hw}) == nil {
				m.inFlight--
				if m.rewind { // after a gap, pushes resume from the Ack's mark
					m.next, m.rewind = hw+1, false
				}
			}
		})
		a.add("Reject", 1, func(t *rapid.T) {
			if !m.s.Open() {
				t.Skip("not open")
			}
			r := &usync.Reject{
				Site: siteA,
				Seq:  rapid.Uint64Range(0, m.made+1).Draw(t, "seq"),
				Code: rapid.SampledFrom([]usync.Code{usync.CodeGap, usync.CodeInvalidTx}).Draw(t, "code"),
			}
			if m.step(t, r) == nil && r.Code == usync.CodeGap {
				m.rewind = true
			}
		})
		a.add("Changes", 4, func(t *rapid.T) {
			if !m.s.Open() || m.s.Ready().Apply != nil {
				t.Skip("not open, or applying")
			}
			from := m.s.Cursor()
			to := from + rapid.Uint64Range(0, 3).Draw(t, "n")
			ch := &usync.Changes{From: from, To: to}
			for _, c := range sessChanges(from, to) {
				if rapid.IntRange(0, 3).Draw(t, "filtered") > 0 {
					ch.Changes = append(ch.Changes, c)
				}
			}
			if m.step(t, ch) == nil && m.s.Ready().Apply == nil {
				t.Fatalf("Changes taken, nothing to apply")
			}
		})
		a.add("Snapshot", 1, func(t *rapid.T) {
			if !m.s.Open() || m.s.Ready().Apply != nil {
				t.Skip("not open, or applying")
			}
			m.step(t, &usync.Snapshot{
				Seq:  rapid.Uint64Range(m.s.Cursor(), m.s.Cursor()+4).Draw(t, "seq"),
				Rows: []usync.SnapshotRow{{Collection: "todo", Row: "r1", State: []byte{1}}},
				Last: rapid.Bool().Draw(t, "last"),
			})
		})
		a.add("Ping", 1, func(t *rapid.T) {
			m.step(t, rapid.SampledFrom([]usync.Message{&usync.Ping{Nonce: 3}, &usync.Pong{Nonce: 4}}).Draw(t, "ping"))
		})
		a.add("Reauthenticate", 1, m.reauthenticate)
		a.add("AuthOK", 1, m.authOK)
		a.add("misbehave", 1, m.misbehave)
		a.add("Applied", 3, m.applied)
		a.add("Ready", 4, m.ready)
		a.add("push", 4, m.push)
		a.add("push anything", 1, func(t *rapid.T) {
			seq := rapid.Uint64Range(0, m.made+1).Draw(t, "from")
			var txs []crdt.Tx
			for range rapid.IntRange(0, 3).Draw(t, "n") {
				txs = append(txs, crdt.Tx{Site: rapid.SampledFrom([]crdt.SiteID{siteA, siteA, siteB}).Draw(t, "site"), Seq: seq})
				seq++
			}
			before := len(m.s.Ready().Send)
			err := m.s.Push(txs)
			if err != nil && len(m.s.Ready().Send) != before {
				t.Fatalf("refused Push sent something")
			}
			if err == nil && len(txs) > 0 {
				m.made = max(m.made, txs[len(txs)-1].Seq) // the driver had them after all
			}
		})
		a.add("heartbeat", 1, func(t *rapid.T) {
			if m.s.Closed() {
				t.Skip("closed")
			}
			m.s.Ping(7)
		})
		a.add("reconnect", 1, func(t *rapid.T) {
			m.connect()
			m.start()
		})
		sessRepeat(t, a)
	})
}
