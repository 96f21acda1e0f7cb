package sync_test

import (
	"testing"

	"github.com/unosync/uno/crdt"
	usync "github.com/unosync/uno/sync"
)

// echoPipe is one connection of the lost-Ack test: the frames in flight
// each way, handed over only when the test says so.
type echoPipe struct {
	t      *testing.T
	server *sessServer
	client *sessClient // nil once cut
	up     []usync.Message
	down   []usync.Message
}

func newEchoPipe(t *testing.T, log *sessLog, c *sessClient) *echoPipe {
	p := &echoPipe{t: t, client: c}
	codec := sessNewCodec(t)
	p.server = newSessServer(t, log, usync.ServerConfig{}, func(m usync.Message) {
		if p.client != nil {
			p.down = append(p.down, sessWire(t, codec, m))
		}
	})
	c.connect(func(m usync.Message) { p.up = append(p.up, sessWire(t, codec, m)) })
	return p
}

// flowUp hands the server every frame the client sent.
func (p *echoPipe) flowUp() {
	p.t.Helper()
	for len(p.up) > 0 {
		m := p.up[0]
		p.up = p.up[1:]
		if err := p.server.step(m); err != nil {
			p.t.Fatalf("server Step(%T): %v", m, err)
		}
	}
}

// flow hands over every frame both ways until the connection is quiet.
func (p *echoPipe) flow() {
	p.t.Helper()
	for len(p.up) > 0 || len(p.down) > 0 {
		p.flowUp()
		for len(p.down) > 0 {
			m := p.down[0]
			p.down = p.down[1:]
			p.client.step(m)
		}
	}
}

// cut loses the frames to the client and discards its session; the
// server's end still reads what the client sent (a half-open connection).
func (p *echoPipe) cut() {
	p.client.disconnect()
	p.client, p.down = nil, nil
}

// An author whose Ack is lost still ends with an empty outbox and the
// state every replica has, although the server never sends it its own
// transaction: it pushes again on a new connection while the old one's
// append commits, the server answers that push "already held" (0), and
// the Changes it sends the author cover the entry without carrying it.
func TestSession_LostAckConverges(t *testing.T) {
	log := newSessLog(t)
	a := newSessClient(t, siteA, sessSimStart)
	b := newSessClient(t, siteB, sessSimStart)
	write := func(c *sessClient, v string) {
		c.local(func(bl *crdt.Builder) error {
			return bl.Set(crdt.RowKey{Collection: "todo", Row: "r1"}, "title", crdt.KindRegister, []byte(`"`+v+`"`))
		})
	}

	pa := newEchoPipe(t, log, a)
	pa.flow()
	write(a, "a1") // pushed on the first connection
	if len(pa.up) != 1 {
		t.Fatalf("%d frames up after the write, want its Push", len(pa.up))
	}
	pa.cut()

	// A reconnects before its old connection's Push arrives: the server
	// holds nothing of it yet, so A pushes a1 again.
	pa2 := newEchoPipe(t, log, a)
	pa2.flowUp() // Hello
	for len(pa2.down) > 0 {
		m := pa2.down[0]
		pa2.down = pa2.down[1:]
		a.step(m) // Welcome (high-water 0): the Push of a1 again
	}
	pa.flowUp() // the old connection appends a1; its Ack is lost
	if log.Head() != 1 || log.HighWater(siteA) != 1 {
		t.Fatalf("log head %d, A's high-water %d; want a1 appended at 1", log.Head(), log.HighWater(siteA))
	}
	pa2.flowUp() // the second Push of a1: already held
	var ack *usync.Ack
	for _, m := range pa2.down {
		if m, ok := m.(*usync.Ack); ok {
			ack = m
		}
	}
	if ack == nil || ack.HighWater != 1 || len(ack.Seqs) != 1 || ack.Seqs[0] != 0 {
		t.Fatalf("Ack %+v, want high-water 1 with seq 0 (already held)", ack)
	}
	pa2.flow() // the Ack, and Changes covering a1 without it (checked by the harness)

	pb := newEchoPipe(t, log, b)
	pb.flow()
	write(b, "b1")
	pb.flow()
	pa2.server.process()
	pa2.flow()
	write(a, "a2")
	pa2.flow()
	pb.server.process()
	pb.flow()

	log.check()
	want := log.state().Hash()
	for _, c := range []*sessClient{a, b} {
		if len(c.outbox) != 0 || c.acked != uint64(len(c.made)) {
			t.Errorf("client %s: outbox %d, acked %d of %d", c.name(), len(c.outbox), c.acked, len(c.made))
		}
		if c.cursor != log.Head() {
			t.Errorf("client %s: cursor %d, head %d", c.name(), c.cursor, log.Head())
		}
		if got := c.state.Hash(); got != want {
			t.Errorf("client %s: state hash %x, the log's %x", c.name(), got[:8], want[:8])
		}
	}
	if log.Head() != 3 {
		t.Errorf("log head %d, want 3 (a1, b1, a2 once each)", log.Head())
	}
}
