package bench

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/binary"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/unosync/uno/crdt"
	usync "github.com/unosync/uno/sync"
)

// The network ceilings: what github.com/coder/websocket (the library the
// client and the server use) does on loopback with nothing else in the
// way — no store, no log, no protocol.

// updateFrame returns a frame the size of one update on the wire: the
// encoded Push of a transaction setting one field of one row.
func updateFrame(b B) []byte {
	b.Helper()
	codec, err := usync.NewCodec(usync.CodecConfig{})
	if err != nil {
		b.Fatal(err)
	}
	defer codec.Close()
	var site crdt.SiteID
	rand.Read(site[:])
	tx := crdt.Tx{Site: site, Seq: 1, Time: crdt.NewClock(0, 0).Now(time.Now()), Ops: []crdt.Op{
		{Type: crdt.OpRevive, Collection: collection, Row: "c0", CL: 1},
		{Type: crdt.OpSet, Kind: crdt.KindRegister, Collection: collection, Row: "c0", Field: "n", CL: 1, Value: []byte("1999")},
	}}
	f, err := codec.Encode(&usync.Push{Txs: []crdt.Tx{tx}})
	if err != nil {
		b.Fatal(err)
	}
	return f
}

// wsServer starts a WebSocket server on loopback calling serve for each
// connection, and returns its ws:// URL.
func wsServer(b B, serve func(ctx context.Context, c *websocket.Conn)) string {
	b.Helper()
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		serve(r.Context(), c)
	}))
	b.Cleanup(hs.Close)
	return "ws" + strings.TrimPrefix(hs.URL, "http")
}

func wsDial(b B, ctx context.Context, url string) *websocket.Conn {
	b.Helper()
	c, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.CloseNow() })
	return c
}

// WSEcho returns the latency ceiling: n round trips of an update-sized
// binary message to a WebSocket echo server on loopback, one at a time.
// It reports p50, p90, p99, p99.9 and max in ms.
func WSEcho(n int) func(B) {
	return func(b B) {
		ctx := context.Background()
		url := wsServer(b, func(ctx context.Context, c *websocket.Conn) {
			for {
				typ, m, err := c.Read(ctx)
				if err != nil {
					return
				}
				if c.Write(ctx, typ, m) != nil {
					return
				}
			}
		})
		frame := updateFrame(b)
		var lat []time.Duration
		for range b.N() {
			b.StopTimer()
			c := wsDial(b, ctx, url)
			b.StartTimer()
			for range n {
				start := time.Now()
				if err := c.Write(ctx, websocket.MessageBinary, frame); err != nil {
					b.Fatal(err)
				}
				if _, m, err := c.Read(ctx); err != nil || len(m) != len(frame) {
					b.Fatalf("echo: %d bytes, %v", len(m), err)
				}
				lat = append(lat, time.Since(start))
			}
		}
		reportPercentiles(b, lat)
		b.ReportMetric(float64(len(frame)), "frame-bytes")
	}
}

// WSBroadcast returns the fan-out ceiling: one sender sends n update-sized
// messages to a server that writes each to every one of receivers
// connections (a goroutine and a queue per connection, as a sync server
// has); an iteration ends when every receiver has all n. It reports
// deliveries/s.
func WSBroadcast(receivers, n int) func(B) {
	return func(b B) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		frame := updateFrame(b)
		var elapsed time.Duration
		for range b.N() {
			b.StopTimer()
			h := newHub(receivers, n)
			url := wsServer(b, func(ctx context.Context, c *websocket.Conn) {
				typ, first, err := c.Read(ctx)
				if err != nil {
					return
				}
				if typ == websocket.MessageText { // a receiver says hello
					h.serve(ctx, c)
					return
				}
				for m := first; ; { // the sender
					h.publish(m)
					if _, m, err = c.Read(ctx); err != nil {
						h.close()
						return
					}
				}
			})
			rs := make([]*websocket.Conn, receivers)
			for i := range rs {
				rs[i] = h.dial(b, ctx, url)
			}
			sender := wsDial(b, ctx, url)
			var got atomic.Int64
			var wg sync.WaitGroup
			var failed firstError
			b.StartTimer()
			start := time.Now()
			for _, r := range rs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range n {
						if _, _, err := r.Read(ctx); err != nil {
							failed.set(err)
							return
						}
						got.Add(1)
					}
				}()
			}
			for range n {
				if err := sender.Write(ctx, websocket.MessageBinary, frame); err != nil {
					b.Fatal(err)
				}
			}
			wg.Wait()
			elapsed += time.Since(start)
			b.StopTimer()
			if err := failed.get(); err != nil {
				b.Fatal(err)
			}
			sender.Close(websocket.StatusNormalClosure, "")
			b.StartTimer()
		}
		b.ReportMetric(float64(b.N()*receivers*n)/elapsed.Seconds(), "deliveries/s")
	}
}

// WSRelay returns the paced latency ceiling of a durable sync server:
// one writer sends an update-sized frame p.Writes times at p.Hz to a
// relay that commits each (the fsync floor's transaction: a row and a log
// row, sync=FULL) and then writes it to p.Receivers connections (a
// goroutine and a queue each), all raw WebSocket on loopback. A latency is
// the time from the writer's send to a receiver reading the frame. These
// are the hops and the durable commit every paced write of a durable
// server makes, with no client store, no protocol and no log schema. One
// untimed frame goes first, as in PacedWatch. It reports p50, p90, p99,
// p99.9 and max in ms over every delivery.
func WSRelay(p Paced) func(B) { return wsRelay(p, false) }

// WSRelayReplicas is WSRelay between replicas: the writer and every
// receiver keep a plain SQLite file (sync=NORMAL, as relaxed durability
// commits). The writer commits each write there (a row and a log row)
// before sending it; a receiver commits what it reads (the row and its
// cursor, as PlainApply) and reads the row back, as a live query would. A
// latency runs from the start of the writer's commit to the receiver's
// read. This is the least a paced write costs any sync engine whose
// peers are SQLite replicas and whose server is durable: PacedWatch at
// relaxed durability without uno's code.
func WSRelayReplicas(p Paced) func(B) { return wsRelay(p, true) }

// replica is a WSRelayReplicas peer's plain SQLite file.
type replica struct {
	db                *sql.DB
	ins, logIns, read *sql.Stmt // the writer's commit; a receiver's read back
	upsert, cursor    *sql.Stmt // a receiver's apply (PlainApply's)
}

func openReplica(b B) *replica {
	b.Helper()
	r := &replica{db: openPlain(b, "NORMAL")}
	// No checkpoint in a commit's path: a paced run's commits fit the
	// preallocated log, and a replica can checkpoint in the background (as
	// the store does) or when idle.
	if _, err := r.db.Exec(`PRAGMA wal_autocheckpoint = 0`); err != nil {
		b.Fatal(err)
	}
	r.ins, r.logIns = prepare(b, r.db)
	r.upsert, r.cursor = plainApplyStmts(b, r.db)
	var err error
	if r.read, err = r.db.Prepare(`SELECT title FROM tasks WHERE id = ?`); err != nil {
		b.Fatal(err)
	}
	return r
}

// write commits write i as the writer does.
func (r *replica) write(i int) error {
	tx, err := r.db.Begin()
	if err != nil {
		return err
	}
	defer tx.Rollback()
	id := strconv.Itoa(i)
	if _, err := tx.Stmt(r.ins).Exec(id, "task number "+id, nil, nil, nil); err != nil {
		return err
	}
	if _, err := tx.Stmt(r.logIns).Exec(i, id); err != nil {
		return err
	}
	return tx.Commit()
}

// receive commits write i as a receiver does and reads it back.
func (r *replica) receive(i int) error {
	if err := plainApply(r.db, r.upsert, r.cursor, i); err != nil {
		return err
	}
	var title string
	return r.read.QueryRow(strconv.Itoa(i % 100)).Scan(&title)
}

func wsRelay(p Paced, replicas bool) func(B) {
	return func(b B) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		base := updateFrame(b)
		var lat []time.Duration
		for range b.N() {
			b.StopTimer()
			db := openPlain(b, "FULL")
			ins, logIns := prepare(b, db)
			sent := make([]atomic.Int64, p.Writes+1) // unix ns at each send; the last is the untimed frame
			var mu sync.Mutex
			h := newHub(p.Receivers, p.Writes+1)
			var failed firstError
			url := wsServer(b, func(ctx context.Context, c *websocket.Conn) {
				typ, m, err := c.Read(ctx)
				if err != nil {
					return
				}
				if typ == websocket.MessageText { // a receiver says hello
					h.serve(ctx, c)
					return
				}
				for seq := 1; ; seq++ { // the writer
					id := strconv.Itoa(seq)
					tx, err := db.Begin()
					if err == nil {
						_, err = tx.Stmt(ins).Exec(id, "task number "+id, nil, nil, nil)
					}
					if err == nil {
						_, err = tx.Stmt(logIns).Exec(seq, m)
					}
					if err == nil {
						err = tx.Commit()
					}
					if err != nil {
						failed.set(fmt.Errorf("relay commit: %w", err))
						h.close() // the receivers stop waiting
						return
					}
					h.publish(m)
					if _, m, err = c.Read(ctx); err != nil {
						h.close()
						return
					}
				}
			})
			var wg sync.WaitGroup
			for range p.Receivers {
				r := h.dial(b, ctx, url)
				var store *replica
				if replicas {
					store = openReplica(b)
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					var mine []time.Duration
					for range p.Writes + 1 {
						_, m, err := r.Read(ctx)
						if err != nil {
							failed.set(err)
							return
						}
						i := binary.BigEndian.Uint32(m)
						if store != nil {
							if err := store.receive(int(i)); err != nil {
								failed.set(fmt.Errorf("receiver's commit: %w", err))
								return
							}
						}
						now := time.Now()
						if int(i) < p.Writes {
							mine = append(mine, now.Sub(time.Unix(0, sent[i].Load())))
						}
					}
					mu.Lock()
					lat = append(lat, mine...)
					mu.Unlock()
				}()
			}
			writer := wsDial(b, ctx, url)
			var store *replica
			if replicas {
				store = openReplica(b)
			}
			send := func(i int) {
				f := slices.Clone(base)
				binary.BigEndian.PutUint32(f, uint32(i)) // the relay forwards bytes, it never decodes them
				sent[i].Store(time.Now().UnixNano())
				if store != nil {
					if err := store.write(i); err != nil {
						b.Fatal(err)
					}
				}
				if err := writer.Write(ctx, websocket.MessageBinary, f); err != nil {
					b.Fatal(err)
				}
			}
			send(p.Writes) // untimed: the first commit and the first write of each connection
			b.StartTimer()
			tick := time.NewTicker(time.Duration(float64(time.Second) / p.Hz))
			for i := range p.Writes {
				<-tick.C
				send(i)
			}
			tick.Stop()
			wg.Wait()
			b.StopTimer()
			if err := failed.get(); err != nil {
				b.Fatal(err)
			}
			writer.Close(websocket.StatusNormalClosure, "")
			b.StartTimer()
		}
		reportPercentiles(b, lat)
	}
}

// hub is the raw servers' fan-out: a queue and a goroutine writing it
// per receiver connection, as a sync server has.
type hub struct {
	size   int // messages a queue holds
	mu     sync.Mutex
	queues []chan []byte
	joined chan struct{}
}

func newHub(receivers, size int) *hub {
	return &hub{size: size, joined: make(chan struct{}, receivers)}
}

// serve writes what is published to the receiver's connection c until
// the hub closes.
func (h *hub) serve(ctx context.Context, c *websocket.Conn) {
	q := make(chan []byte, h.size)
	h.mu.Lock()
	h.queues = append(h.queues, q)
	h.mu.Unlock()
	h.joined <- struct{}{}
	for m := range q {
		if c.Write(ctx, websocket.MessageBinary, m) != nil {
			return
		}
	}
	c.Close(websocket.StatusNormalClosure, "")
}

// dial connects a receiver to the server at url and returns once the
// hub serves it.
func (h *hub) dial(b B, ctx context.Context, url string) *websocket.Conn {
	b.Helper()
	c := wsDial(b, ctx, url)
	if err := c.Write(ctx, websocket.MessageText, []byte("hello")); err != nil {
		b.Fatal(err)
	}
	<-h.joined
	return c
}

// publish queues m for every receiver.
func (h *hub) publish(m []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, q := range h.queues {
		q <- m
	}
}

// close ends the receivers' queues.
func (h *hub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, q := range h.queues {
		close(q)
	}
	h.queues = nil
}
