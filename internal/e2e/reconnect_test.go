package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/unosync/uno/client"
)

// gate is a TCP proxy on loopback in front of a server, which a test takes
// down and brings back up: while down it accepts each connection and
// closes it at once, as a server that is restarting would. It notes when
// each connection attempt came.
type gate struct {
	ln       net.Listener
	mu       sync.Mutex
	up       bool
	attempts []time.Time
	conns    []net.Conn
}

// newGate starts a gate to target, down.
func newGate(t *testing.T, target string) *gate {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &gate{ln: ln}
	t.Cleanup(func() {
		ln.Close()
		g.mu.Lock()
		defer g.mu.Unlock()
		for _, c := range g.conns {
			c.Close()
		}
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			g.mu.Lock()
			g.attempts = append(g.attempts, time.Now())
			up := g.up
			g.mu.Unlock()
			if !up {
				c.Close()
				continue
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			g.mu.Lock()
			g.conns = append(g.conns, c, s)
			g.mu.Unlock()
			go func() { io.Copy(s, c); s.Close() }()
			go func() { io.Copy(c, s); c.Close() }()
		}
	}()
	return g
}

// url is the sync endpoint through the gate.
func (g *gate) url() string { return "ws://" + g.ln.Addr().String() + "/v1/sync" }

// open lets connections through to the server.
func (g *gate) open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.up = true
}

// times returns when each connection attempt so far came.
func (g *gate) times() []time.Time {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]time.Time(nil), g.attempts...)
}

// waitAttempts waits until n connection attempts have come.
func (g *gate) waitAttempts(t *testing.T, n int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for len(g.times()) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d connection attempts within %s, want %d", len(g.times()), within, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// waitOffline waits until c is offline, waiting to retry.
func waitOffline(t *testing.T, c *client.Client) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for c.Status().State != client.StateOffline {
		if time.Now().After(deadline) {
			t.Fatalf("status %+v, want offline", c.Status())
		}
		time.Sleep(time.Millisecond)
	}
}

// openThrough opens a background-syncing client of e through g.
func openThrough(t *testing.T, e *env, g *gate, backoffMin, backoffMax time.Duration) *client.Client {
	t.Helper()
	c, err := client.Open(context.Background(), client.Config{
		Path:   filepath.Join(t.TempDir(), "c.db"),
		Server: g.url(), Token: e.auth.Token,
		BackoffMin: backoffMin, BackoffMax: backoffMax,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// Sync connects at once, however long the backoff and however many
// attempts failed before: with an hour's backoff, each Sync while the
// server is down makes one attempt, and once it is back Sync completes
// without waiting.
func TestSync_ConnectsAtOnceWhateverTheBackoff(t *testing.T) {
	ctx := context.Background()
	e := startServer(t)
	w := e.client(t, "writer", true)
	if err := w.Collection("todos").Put(ctx, "t1", map[string]any{"title": "from the server"}); err != nil {
		t.Fatal(err)
	}
	syncCtx(t, w)

	g := newGate(t, e.addr)
	c := openThrough(t, e, g, time.Hour, time.Hour)
	g.waitAttempts(t, 1, 5*time.Second) // the first, on Open
	for n := 2; n <= 8; n++ {
		waitOffline(t, c)
		sctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- c.Sync(sctx) }()
		g.waitAttempts(t, n, 5*time.Second)
		cancel()
		<-done
	}

	g.open()
	start := time.Now()
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := c.Sync(sctx); err != nil {
		t.Fatalf("Sync once the server is back (after %s): %v", time.Since(start), err)
	}
	if d, err := c.Collection("todos").Get(ctx, "t1"); err != nil || string(d.Fields["title"]) != `"from the server"` {
		t.Fatalf("after Sync: %+v, %v; want the server's row", d, err)
	}
	if st := c.Status(); st.State != client.StateUpToDate {
		t.Fatalf("status %+v after Sync, want up to date", st)
	}
}

// While the server is down, every wait stays under its ceiling,
// BackoffMin·2^(failures-1): a client keeps trying at growing but
// bounded intervals, with no fixed long pause after a few failures.
func TestSync_BackoffStaysUnderItsCeiling(t *testing.T) {
	const backoffMin, attempts = 20 * time.Millisecond, 8
	// slack covers an attempt's own failing and the scheduling of a busy
	// machine; the waits it bounds grow to 1.3 s.
	const slack = time.Second
	e := startServer(t)
	g := newGate(t, e.addr)
	openThrough(t, e, g, backoffMin, time.Hour)
	var within time.Duration
	for i := 1; i < attempts; i++ {
		within += backoffMin<<(i-1) + slack
	}
	g.waitAttempts(t, attempts, within)
	times := g.times()
	for i := 1; i < attempts; i++ {
		gap, ceil := times[i].Sub(times[i-1]), backoffMin<<(i-1)
		if gap > ceil+slack {
			t.Errorf("attempt %d came %s after attempt %d failed, want at most %s (+%s slack)", i+1, gap, i, ceil, slack)
		}
	}
}

// Local writes may start an attempt, but a loop of writes against a dead
// server does not hammer it: one write-started attempt, then the backoff
// runs its course. Sync still connects at once.
func TestSync_WritesDoNotHammerADeadServer(t *testing.T) {
	ctx := context.Background()
	e := startServer(t)
	g := newGate(t, e.addr)
	c := openThrough(t, e, g, time.Hour, time.Hour)
	g.waitAttempts(t, 1, 5*time.Second)
	waitOffline(t, c)
	todos := c.Collection("todos")
	const writes = 200
	for i := range writes {
		if err := todos.Put(ctx, fmt.Sprint("t", i), map[string]any{"n": i}); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(100 * time.Millisecond) // attempts that should not come
	if n := len(g.times()); n != 2 {
		t.Fatalf("%d connection attempts after %d writes to a dead server, want 2 (the first, one a write started)", n, writes)
	}

	g.open()
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := c.Sync(sctx); err != nil {
		t.Fatal(err)
	}
	if n, err := c.Pending(ctx); err != nil || n != 0 {
		t.Fatalf("%d pending (%v) after Sync, want 0", n, err)
	}
}
