package sync_test

// The simulated network property: 2–3 clients and one server log, with
// connections that carry frames in order (as TCP does) but get cut at any
// moment. A cut loses everything in flight, discards the client's session
// and, usually, the server's; sometimes the server's side lingers and still
// reads what the client had sent before the cut (a half-open connection:
// the client has already reconnected while its old session appends), so
// one site has two server sessions at once and pushes reach the log twice.
// At the end everything heals and the replicas must converge.

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/unosync/uno/crdt"
	usync "github.com/unosync/uno/sync"
	"pgregory.net/rapid"
)

var (
	sessSimKeys = []crdt.RowKey{
		{Collection: "todo", Row: "r1"}, {Collection: "todo", Row: "r2"}, {Collection: "note", Row: "r1"},
	}
	sessSimRegisters = []string{"title", "done"}
	sessSimStart     = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
)

const sessSimCounter = "n"

// sessConn is one connection: the client's end (nil once cut) and the
// server's, with the frames in flight each way, in order.
type sessConn struct {
	id     int
	client *sessClient
	server *sessServer
	up     [][]byte          // client → server
	down   [][]byte          // server → client
	pings  map[uint64]uint64 // the log's head when the server read Ping nonce
}

type sessNet struct {
	t       *rapid.T
	codec   *usync.Codec
	cfg     usync.ServerConfig
	log     *sessLog
	clients []*sessClient
	conns   []*sessConn // open ones first touched first; lingering server ends too
	nextID  int
	wall    time.Time
}

func newSessNet(t *rapid.T, codec *usync.Codec) *sessNet {
	n := &sessNet{
		t: t, codec: codec, log: newSessLog(t), wall: sessSimStart,
		// Small pushes and windows, so batches split and credits run out.
		cfg: usync.ServerConfig{Limits: usync.Limits{MaxPushTxs: rapid.SampledFrom([]uint32{2, 1000}).Draw(t, "maxPushTxs"), MaxInFlight: 2}},
	}
	for i := range rapid.IntRange(2, 3).Draw(t, "clients") {
		c := newSessClient(t, sessSite(byte(0x10*(i+1))), n.wall)
		c.cfg.Window = rapid.Uint32Range(1, 3).Draw(t, "window")
		n.clients = append(n.clients, c)
		if rapid.Bool().Draw(t, "online") {
			n.connect(c)
		}
	}
	return n
}

func (n *sessNet) encode(m usync.Message) []byte {
	n.t.Helper()
	frame, err := n.codec.Encode(m)
	if err != nil {
		n.t.Fatalf("Encode(%T): %v", m, err)
	}
	return frame
}

func (n *sessNet) decode(frame []byte) usync.Message {
	n.t.Helper()
	m, err := n.codec.Decode(frame)
	if err != nil {
		n.t.Fatalf("Decode: %v", err)
	}
	return m
}

// connect opens a new connection for c: a new ClientSession from its
// persisted cursor, a new ServerSession.
func (n *sessNet) connect(c *sessClient) {
	conn := &sessConn{id: n.nextID, client: c, pings: make(map[uint64]uint64)}
	n.nextID++
	conn.server = newSessServer(n.t, n.log, n.cfg, func(m usync.Message) {
		if conn.client != nil {
			conn.down = append(conn.down, n.encode(m))
		}
	})
	n.conns = append(n.conns, conn)
	c.wall = n.wall
	c.connect(func(m usync.Message) { conn.up = append(conn.up, n.encode(m)) })
}

func (n *sessNet) connOf(c *sessClient) *sessConn {
	for _, conn := range n.conns {
		if conn.client == c {
			return conn
		}
	}
	return nil
}

// cut loses everything in flight and discards the client's session. The
// server's session is discarded too unless linger: then it still reads the
// frames the client had sent, and its answers are lost.
func (n *sessNet) cut(conn *sessConn, linger bool) {
	conn.client.disconnect()
	conn.client, conn.down = nil, nil
	if !linger {
		conn.up = nil
	}
	n.gc()
}

// gc forgets the server ends of cut connections with nothing left to read.
func (n *sessNet) gc() {
	n.conns = slices.DeleteFunc(n.conns, func(conn *sessConn) bool { return conn.client == nil && len(conn.up) == 0 })
}

// deliver hands the next frame of conn in one direction to its receiver.
func (n *sessNet) deliver(conn *sessConn, up bool) {
	n.t.Helper()
	if up {
		m := n.decode(conn.up[0])
		conn.up = conn.up[1:]
		if p, ok := m.(*usync.Ping); ok {
			conn.pings[p.Nonce] = n.log.Head()
		}
		if err := conn.server.step(m); err != nil {
			n.t.Fatalf("conn %d: server Step(%T %+v): %v", conn.id, m, m, err)
		}
		if conn.server.closed != nil {
			n.t.Fatalf("conn %d: server closed the session: %v", conn.id, conn.server.closed)
		}
		n.gc()
		return
	}
	c := conn.client
	m := n.decode(conn.down[0])
	conn.down = conn.down[1:]
	// An acknowledged write is durable: the log holds it already.
	switch m := m.(type) {
	case *usync.Ack:
		if hw := n.log.HighWater(c.site); m.HighWater > hw {
			n.t.Fatalf("conn %d: Ack of %d, the log holds %s up to %d", conn.id, m.HighWater, c.name(), hw)
		}
	case *usync.Pong:
		// Sync is a barrier: the Pong's head covers the log as the server
		// read the Ping.
		if want, ok := conn.pings[m.Nonce]; !ok || m.Head < want || m.Head > n.log.Head() {
			n.t.Fatalf("conn %d: Pong %d with head %d; the log's head was %d at the Ping (seen: %v), is %d now", conn.id, m.Nonce, m.Head, want, ok, n.log.Head())
		}
	case *usync.Welcome:
		if hw := n.log.HighWater(c.site); m.HighWater > hw || m.HighWater < c.acked {
			n.t.Fatalf("conn %d: Welcome with high-water %d; log holds %d, client saw %d acknowledged", conn.id, m.HighWater, hw, c.acked)
		}
	}
	c.wall = n.wall
	c.step(m)
}

// pump lets every open server session deliver what the log grew by.
func (n *sessNet) pump() {
	for _, conn := range n.conns {
		if conn.client != nil {
			conn.server.process()
		}
	}
}

// local makes a random local transaction at c: register writes and
// counter increments on a small key space.
func (n *sessNet) local(c *sessClient) {
	t := n.t
	c.wall = n.wall
	ops := rapid.IntRange(1, 3).Draw(t, "ops")
	c.local(func(b *crdt.Builder) error {
		for i := range ops {
			k := rapid.SampledFrom(sessSimKeys).Draw(t, "key")
			if rapid.IntRange(0, 2).Draw(t, "kind") == 0 {
				if err := b.Increment(k, sessSimCounter, rapid.Int64Range(-3, 5).Draw(t, "delta")); err != nil {
					return err
				}
				continue
			}
			field := rapid.SampledFrom(sessSimRegisters).Draw(t, "field")
			if err := b.Set(k, field, crdt.KindRegister, fmt.Appendf(nil, `"%s-%d-%d"`, c.name(), len(c.made)+1, i)); err != nil {
				return err
			}
		}
		return nil
	})
}

type sessFlight struct {
	conn *sessConn
	up   bool
}

func (n *sessNet) inFlight() []sessFlight {
	var fs []sessFlight
	for _, conn := range n.conns {
		if len(conn.up) > 0 {
			fs = append(fs, sessFlight{conn, true})
		}
		if len(conn.down) > 0 {
			fs = append(fs, sessFlight{conn, false})
		}
	}
	return fs
}

// step does one random thing.
func (n *sessNet) step() {
	t := n.t
	n.wall = n.wall.Add(time.Duration(rapid.IntRange(0, 50).Draw(t, "ms")) * time.Millisecond)
	c := n.clients[rapid.IntRange(0, len(n.clients)-1).Draw(t, "client")]
	switch action := rapid.IntRange(0, 10).Draw(t, "action"); {
	case action <= 2:
		n.local(c)
	case action <= 7:
		fs := n.inFlight()
		if len(fs) == 0 {
			n.local(c)
			break
		}
		f := fs[rapid.IntRange(0, len(fs)-1).Draw(t, "frame")]
		n.deliver(f.conn, f.up)
	case action == 8:
		if conn := n.connOf(c); conn != nil {
			n.cut(conn, rapid.IntRange(0, 2).Draw(t, "linger") == 0)
			break
		}
		n.connect(c)
	case action == 9:
		if n.connOf(c) == nil {
			n.connect(c)
		}
	default:
		if n.connOf(c) == nil || c.s.Closed() {
			n.local(c)
			break
		}
		n.nextID++
		c.s.Ping(uint64(n.nextID))
		c.process()
	}
	n.pump()
	for _, c := range n.clients {
		if c.acked > n.log.HighWater(c.site) {
			t.Fatalf("client %s holds %d acknowledged, the log only %d", c.name(), c.acked, n.log.HighWater(c.site))
		}
		if c.cursor > n.log.Head() {
			t.Fatalf("client %s at cursor %d past the head %d", c.name(), c.cursor, n.log.Head())
		}
	}
}

// heal reconnects every client and delivers every frame until quiet.
func (n *sessNet) heal() {
	for _, c := range n.clients {
		if n.connOf(c) == nil {
			n.connect(c)
		}
	}
	for i := 0; ; i++ {
		if i > 100_000 {
			n.t.Fatalf("no quiet after %d deliveries", i)
		}
		fs := n.inFlight()
		if len(fs) == 0 {
			return
		}
		f := fs[i%len(fs)]
		n.deliver(f.conn, f.up)
		n.pump()
	}
}

// check asserts the consistency contract after heal.
func (n *sessNet) check() {
	t := n.t
	n.log.check()
	want := n.log.state().Hash()
	head := n.log.Head()
	for _, c := range n.clients {
		if len(c.outbox) != 0 {
			t.Fatalf("client %s: outbox holds %d transactions after heal (acked %d)", c.name(), len(c.outbox), c.acked)
		}
		if made := uint64(len(c.made)); c.acked != made || n.log.HighWater(c.site) != made {
			t.Fatalf("client %s made %d transactions; acked %d, log holds %d", c.name(), made, c.acked, n.log.HighWater(c.site))
		}
		for _, tx := range c.made {
			seq := n.log.held[sessTxID{tx.Site, tx.Seq}]
			if got := n.log.changes[seq-1].Tx; string(crdt.EncodeTx(&got)) != string(crdt.EncodeTx(&tx)) {
				t.Fatalf("client %s: tx %d reached the log as %+v, made as %+v", c.name(), tx.Seq, got, tx)
			}
		}
		if c.cursor != head || c.s.Cursor() != head {
			t.Fatalf("client %s: cursor %d (session %d), head %d", c.name(), c.cursor, c.s.Cursor(), head)
		}
		if got := c.state.Hash(); got != want {
			t.Fatalf("client %s: state hash %x, log's %x", c.name(), got[:8], want[:8])
		}
	}
}

// TestSession_Network runs clients and the server sessions over a
// simulated network that cuts connections at random moments, then heals
// it, and checks the consistency contract: every acknowledged write is in
// the log exactly once, each site's writes in order and gap-free, nothing
// left in any outbox, every replica at the head with the state the whole
// log builds.
func TestSession_Network(t *testing.T) {
	codec := sessNewCodec(t)
	rapid.Check(t, func(t *rapid.T) {
		n := newSessNet(t, codec)
		for range rapid.IntRange(0, 80).Draw(t, "steps") {
			n.step()
		}
		n.heal()
		n.check()
	})
}
