package sync

import (
	"strconv"

	"github.com/unosync/uno/crdt"
)

// Protocol versions this package speaks, newest first. A handshake picks
// the newest version both sides know. Version 2 adds trace context:
// Push.Trace and Change.Trace, sent only on a session of version 2 or
// later, so a peer that speaks only version 1 never receives them.
// Version 3 adds epochs: Push.Epoch, and Check and Runs.
var Versions = []uint16{3, 2, 1}

// VersionTrace is the first protocol version whose Push and Change carry
// trace context.
const VersionTrace uint16 = 2

// VersionEpochs is the first protocol version whose Push carries its
// transactions' epoch, and which has Check and Runs.
const VersionEpochs uint16 = 3

// Type identifies a message on the wire. Values are part of the protocol.
type Type uint8

// Message types.
const (
	TypeHello    Type = 1
	TypeWelcome  Type = 2
	TypePush     Type = 3
	TypeAck      Type = 4
	TypeChanges  Type = 5
	TypeSnapshot Type = 6
	TypeReject   Type = 7
	TypeError    Type = 8
	TypePing     Type = 9
	TypePong     Type = 10
	TypeCredit   Type = 11
	TypeAuth     Type = 12
	TypeAuthOK   Type = 13
	TypeCheck    Type = 14
	TypeRuns     Type = 15
)

var typeNames = map[Type]string{
	TypeHello: "Hello", TypeWelcome: "Welcome", TypePush: "Push", TypeAck: "Ack",
	TypeChanges: "Changes", TypeSnapshot: "Snapshot", TypeReject: "Reject",
	TypeError: "Error", TypePing: "Ping", TypePong: "Pong", TypeCredit: "Credit",
	TypeAuth: "Auth", TypeAuthOK: "AuthOK", TypeCheck: "Check", TypeRuns: "Runs",
}

func (t Type) String() string {
	if n, ok := typeNames[t]; ok {
		return n
	}
	return "Type(" + strconv.Itoa(int(t)) + ")"
}

// Message is one protocol message. The set is closed: the types below.
type Message interface {
	Type() Type
}

// Hello opens a session (client → server).
type Hello struct {
	_             struct{}       `cbor:",toarray"`
	Versions      []uint16       // protocol versions the client speaks
	Site          crdt.SiteID    // the client's replica
	Token         string         // credentials; the tenant comes from here, never from the payload
	SchemaVersion int            // the app's declared schema version
	Cursor        uint64         // the last tenant sequence number the client applied (0: none)
	Subscriptions []Subscription // collections to receive; none means all the token allows
	Credits       uint32         // Changes messages the server may send before the next Credit
	// Resume continues an interrupted bootstrap: the snapshot's seq and
	// the last row received (zero: no bootstrap to resume).
	Resume Resume
	// Resubscribe says the replica holds Previous up to Cursor, not
	// Subscriptions: the server first sends, as a snapshot, just the rows
	// that Subscriptions adds, then the log from Cursor.
	Resubscribe bool
	Previous    []Subscription
}

// Resume names where an interrupted snapshot stopped.
type Resume struct {
	_     struct{} `cbor:",toarray"`
	Seq   uint64
	After crdt.RowKey
}

// Subscription names a collection to receive, with optional field filters.
type Subscription struct {
	_          struct{} `cbor:",toarray"`
	Collection string
	Where      []Filter
}

// Filter keeps rows whose Field equals Value (JSON).
type Filter struct {
	_     struct{} `cbor:",toarray"`
	Field string
	Value []byte
}

// Welcome accepts a session (server → client).
type Welcome struct {
	_          struct{}       `cbor:",toarray"`
	Version    uint16         // the protocol version chosen
	ServerTime crdt.Timestamp // the server's clock, for the client's HLC
	HighWater  uint64         // the highest sequence number of the client's site the server holds
	Head       uint64         // the tenant's newest sequence number
	Limits     Limits         // what the server accepts
	// Expires is when the session's token expires, in Unix milliseconds
	// of the server's clock (0: never). A client that can get a fresh
	// token sends Auth before then; otherwise the server closes the
	// session with CodeTokenExpired at that time.
	Expires int64
}

// Limits are a server's limits, sent in Welcome so clients stay within them.
type Limits struct {
	_               struct{} `cbor:",toarray"`
	MaxMessageBytes uint32   // largest message after decompression
	MaxPushTxs      uint32   // most transactions in one Push
	MaxInFlight     uint32   // most Push messages awaiting an Ack
}

// Push uploads local transactions of the session's site, in sequence order
// (client → server).
type Push struct {
	_   struct{} `cbor:",toarray"`
	Txs []crdt.Tx
	// Trace is the W3C traceparent of the writes pushed ("" none), so
	// that the server continues the writer's trace. It is a trailing
	// element left out when empty: a Push without it decodes as before.
	// The server ignores a malformed one.
	Trace string
	// Epoch is the epoch that wrote Txs (see Run): a Push carries one
	// run's transactions. A trailing element sent from VersionEpochs on,
	// left out when 0.
	Epoch uint64
}

// Ack says that the server has committed every transaction of the
// session's site up to HighWater (server → client). It is sent only after
// the commit: an acknowledged write is durable.
type Ack struct {
	_         struct{} `cbor:",toarray"`
	HighWater uint64
	// Seqs are the tenant sequence numbers given to the transactions of the
	// Push being acknowledged, in order (0 for ones already held).
	Seqs []uint64
}

// Change is one transaction of the tenant's log with its sequence number.
type Change struct {
	_   struct{} `cbor:",toarray"`
	Seq uint64
	Tx  crdt.Tx
	// Trace is the W3C traceparent of the append that wrote the entry
	// ("" none), so that a receiving client's apply joins the writer's
	// trace. A trailing element left out when empty, as Push.Trace.
	Trace string
}

// Changes carries log entries From < seq ≤ To in order (server → client).
// The client applies the batch and moves its cursor to To in one
// transaction. Entries in between may be left out: those the client does
// not subscribe to, and the client's own transactions, which the server
// never sends back (the Ack told the client they are held). To covers
// them all, so the cursor moves past them; a Changes may carry no entry.
type Changes struct {
	_       struct{} `cbor:",toarray"`
	From    uint64
	To      uint64
	Changes []Change
	// Rows are whole states of rows in collections the client subscribes
	// to with filters, which changed in (From, To] and match the filters
	// now: their ops are left out of Changes, so that a row that comes
	// into the filter arrives whole. The client joins them as snapshot
	// rows, in the same transaction.
	Rows []SnapshotRow
}

// SnapshotRow is one row's merge state (crdt.EncodeRow bytes).
type SnapshotRow struct {
	_          struct{} `cbor:",toarray"`
	Collection string
	Row        string
	State      []byte
}

// Snapshot is one chunk of the read model as of tenant sequence number
// Seq, for a client whose cursor is older than the retained log (server →
// client). Chunks are ordered by (collection, row); After is the key the
// chunk continues from, so an interrupted bootstrap resumes. The client
// merges each row with its own state (snapshots carry merge metadata), and
// after the Last chunk sets its cursor to Seq and receives Changes from Seq.
type Snapshot struct {
	_          struct{} `cbor:",toarray"`
	Seq        uint64
	After      crdt.RowKey
	Rows       []SnapshotRow
	Last       bool
	TotalRows  uint64 // rows in the whole snapshot, when known (for progress)
	TotalBytes uint64
	// Sites holds, in the first chunk, each site's high-water mark as of
	// the snapshot (read before any row): the client records them with the
	// last chunk, so that the Changes after the snapshot continue each
	// site's sequence. A resumed snapshot does not send them again.
	Sites []SiteMark
}

// Run is a stretch of one site's transactions written by one opening of
// the replica's store (an epoch, a random number each open draws): the
// site's transactions from First up to the next run's First. A database
// that went back to an earlier state (restored from a backup, or rolled
// back by a power cut under relaxed durability) writes its next
// transactions under a new epoch, so the server's runs and the
// replica's tell apart two different transactions with one sequence
// number (see Check).
type Run struct {
	_     struct{} `cbor:",toarray"`
	First uint64   // the run's first sequence number
	Epoch uint64   // the epoch that wrote it (0: unknown, written before epochs)
}

// SiteMark is a site's highest sequence number.
type SiteMark struct {
	_    struct{} `cbor:",toarray"`
	Site crdt.SiteID
	Seq  uint64
}

// Reject refuses one pushed transaction (server → client). The client
// rolls it back locally and reports it on its conflict and rejection feed.
type Reject struct {
	_      struct{} `cbor:",toarray"`
	Site   crdt.SiteID
	Seq    uint64
	Code   Code
	Reason string
	// Rows are the server's states of the rows the transaction touched,
	// after refusing it (for a rule's refusal; none for a gap): the client
	// takes them in place of its own and replays its later pending
	// transactions on them.
	Rows []SnapshotRow
}

// ErrorMessage reports a session error; the sender closes after it.
type ErrorMessage struct {
	_       struct{} `cbor:",toarray"`
	Code    Code
	Message string
}

// Err returns the error the message carries.
func (m *ErrorMessage) Err() *Error { return &Error{Code: m.Code, Message: m.Message} }

// Ping asks the peer for a Pong with the same Nonce (heartbeat).
type Ping struct {
	_     struct{} `cbor:",toarray"`
	Nonce uint64
}

// Pong answers a Ping. A server's Pong carries the tenant's head when the
// Ping arrived, so a Ping is also a barrier: a client that has applied up
// to Head holds everything the server held then.
type Pong struct {
	_     struct{} `cbor:",toarray"`
	Nonce uint64
	Head  uint64
}

// Credit grants the server N more Changes or Snapshot messages (client →
// server): flow control, so a slow client never makes the server buffer.
type Credit struct {
	_ struct{} `cbor:",toarray"`
	N uint32
}

// Auth replaces the session's credentials without reconnecting (client →
// server), typically shortly before the token in use expires. The server
// verifies Token as it verified Hello's and answers AuthOK. A token it
// refuses closes the session with the refusal's code (CodeUnauthorized,
// CodeTokenExpired), and so does a token for another tenant than the
// session's (CodeForbidden): the tenant never changes within a session.
type Auth struct {
	_     struct{} `cbor:",toarray"`
	Token string
}

// AuthOK accepts the token of an Auth (server → client), one AuthOK per
// Auth, in order. From now on the session expires with the new token.
type AuthOK struct {
	_ struct{} `cbor:",toarray"`
	// Expires is when the new token expires, in Unix milliseconds of the
	// server's clock (0: never), as in Welcome.
	Expires int64
}

// Check asks, after Welcome, for the server's runs of the session's site
// from seq From on (client → server), when the server holds some of the
// transactions the client has not had acknowledged (Welcome.HighWater at
// or above From, the first of them). The client's runs and the server's
// tell whether the server holds other transactions under some of those
// numbers: the replica's database went back to an earlier state (a
// restored copy, or a power cut under relaxed durability) and wrote
// again. The client neither pushes nor takes HighWater as an
// acknowledgement until Runs answers. An answer whose Through falls
// short of both the client's unacknowledged writes and HighWater (the
// runs were too many for one message) leaves the rest unknown: the
// client sends another Check from Through+1, and so on. The server takes
// a Check only when the last one was answered, from past that answer's
// Through, and no further than its high-water mark. From VersionEpochs on.
type Check struct {
	_    struct{} `cbor:",toarray"`
	From uint64
}

// Runs answers Check (server → client): the server's runs of the site
// covering From up to Through, the seq up to which they say which epoch
// wrote each transaction it holds (its high-water mark, or less when the
// runs were too many for one message). A seq the runs leave unknown
// (before the first, or of epoch 0: written before epochs) is taken to
// match.
type Runs struct {
	_       struct{} `cbor:",toarray"`
	Runs    []Run
	Through uint64
}

func (*Hello) Type() Type        { return TypeHello }
func (*Welcome) Type() Type      { return TypeWelcome }
func (*Push) Type() Type         { return TypePush }
func (*Ack) Type() Type          { return TypeAck }
func (*Changes) Type() Type      { return TypeChanges }
func (*Snapshot) Type() Type     { return TypeSnapshot }
func (*Reject) Type() Type       { return TypeReject }
func (*ErrorMessage) Type() Type { return TypeError }
func (*Ping) Type() Type         { return TypePing }
func (*Pong) Type() Type         { return TypePong }
func (*Credit) Type() Type       { return TypeCredit }
func (*Auth) Type() Type         { return TypeAuth }
func (*AuthOK) Type() Type       { return TypeAuthOK }
func (*Check) Type() Type        { return TypeCheck }
func (*Runs) Type() Type         { return TypeRuns }

// newMessage returns an empty message of type t, or nil for an unknown type.
func newMessage(t Type) Message {
	switch t {
	case TypeHello:
		return &Hello{}
	case TypeWelcome:
		return &Welcome{}
	case TypePush:
		return &Push{}
	case TypeAck:
		return &Ack{}
	case TypeChanges:
		return &Changes{}
	case TypeSnapshot:
		return &Snapshot{}
	case TypeReject:
		return &Reject{}
	case TypeError:
		return &ErrorMessage{}
	case TypePing:
		return &Ping{}
	case TypePong:
		return &Pong{}
	case TypeCredit:
		return &Credit{}
	case TypeAuth:
		return &Auth{}
	case TypeAuthOK:
		return &AuthOK{}
	case TypeCheck:
		return &Check{}
	case TypeRuns:
		return &Runs{}
	}
	return nil
}
