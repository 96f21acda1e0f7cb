package e2e

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/unosync/uno/client"
)

// A blue-green switch loses no acknowledged write. Two real `uno serve`
// processes on one Postgres verify the same HS256 JWTs; a TCP balancer in
// the test sends each new connection to a process whose /readyz answers
// 200 (as a Kubernetes Service does). Clients write through it all along.
// Blue gets SIGTERM with a drain delay: its /readyz fails, the balancer
// stops choosing it, its sessions close with 1402 and the clients
// reconnect through the balancer to green. Then the reverse: a new blue
// takes over from green. Every write a client saw acknowledged (its
// pending count back at 0) is in the read model exactly once (a counter
// incremented in the same transaction counts each), and the replicas end
// equal to it.
func TestServe_BlueGreenSwitch(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Second)
	defer cancel()
	pg := newPG(t)
	secret := make([]byte, 32)
	rand.Read(secret)
	keyFile := filepath.Join(t.TempDir(), "jwt-key")
	if err := os.WriteFile(keyFile, secret, 0o600); err != nil {
		t.Fatal(err)
	}
	token, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"tenant": "dev", "sub": "writer", "exp": time.Now().Add(time.Hour).Unix(),
	}).SignedString(secret)
	if err != nil {
		t.Fatal(err)
	}
	start := func(name string) *colour {
		return startColour(t, name, "--postgres", pg.app, "--jwt-alg", "HS256", "--jwt-key", keyFile, "--drain-delay", "3s")
	}

	blue := start("blue")
	lb := newBalancer(t, ctx)
	lb.add(blue)

	// Writers: each transaction puts a row of its own and increments the
	// writer's counter; a write counts as acknowledged once the client has
	// nothing pending.
	const writers = 3
	dir := t.TempDir()
	clients := make([]*client.Client, writers)
	acked := make([]atomic.Int64, writers)
	stop := make(chan struct{})
	errc := make(chan error, writers)
	var wg sync.WaitGroup
	for i := range writers {
		c, err := client.Open(ctx, client.Config{
			Path: filepath.Join(dir, fmt.Sprintf("w%d.db", i)), Server: "ws://" + lb.addr + "/v1/sync", Token: token,
			BackoffMin: 20 * time.Millisecond, BackoffMax: 500 * time.Millisecond,
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		clients[i] = c
		wg.Add(1)
		go func() {
			defer wg.Done()
			errc <- write(ctx, c, i, &acked[i], stop)
		}()
	}
	// progress waits until every writer has had n more writes acknowledged.
	progress := func(what string, n int64) {
		t.Helper()
		base := make([]int64, writers)
		for i := range writers {
			base[i] = acked[i].Load()
		}
		deadline := time.Now().Add(90 * time.Second)
		for i := range writers {
			for acked[i].Load() < base[i]+n {
				if time.Now().After(deadline) {
					t.Fatalf("%s: writer %d had %d writes acknowledged in 90s, want %d", what, i, acked[i].Load()-base[i], n)
				}
				time.Sleep(10 * time.Millisecond)
			}
		}
	}
	progress("through blue", 10)

	// switchOver moves the clients from one colour to the other.
	switchOver := func(from, to *colour) {
		t.Helper()
		lb.add(to)
		progress("with both behind the balancer", 5)
		if err := from.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		t.Logf("SIGTERM to %s at %d, %d, %d writes acknowledged", from.name, acked[0].Load(), acked[1].Load(), acked[2].Load())
		before := lb.picked(to)
		// Not ready, while it still serves for the drain delay.
		for {
			code, body := readyz(from.addr)
			if code == http.StatusServiceUnavailable && body == "draining" {
				break
			}
			select {
			case <-from.exited:
				t.Fatalf("%s exited with no /readyz answering 503 draining seen (last %d %q)\n%s", from.name, code, body, from.output())
			case <-time.After(10 * time.Millisecond):
			}
		}
		select {
		case <-from.exited:
		case <-time.After(90 * time.Second):
			t.Fatalf("%s did not exit within 90s of SIGTERM\n%s", from.name, from.output())
		}
		if from.err != nil {
			t.Fatalf("%s exited %v after SIGTERM, want 0 (drained in time)\n%s", from.name, from.err, from.output())
		}
		for _, want := range []string{"not ready, serving 3s more before draining", "uno serve: stopped"} {
			if !strings.Contains(from.output(), want) {
				t.Errorf("%s's output lacks %q\n%s", from.name, want, from.output())
			}
		}
		if n := lb.picked(from); n == 0 {
			t.Fatalf("the balancer never sent %s a connection", from.name)
		}
		progress("after "+from.name+" exited, through "+to.name, 10)
		if lb.picked(to) == before {
			t.Fatalf("the writes after %s exited did not go through %s", from.name, to.name)
		}
	}
	green := start("green")
	switchOver(blue, green)
	blue2 := start("blue2")
	switchOver(green, blue2)

	close(stop)
	wg.Wait()
	close(errc)
	for err := range errc {
		if err != nil {
			t.Fatal(err)
		}
	}

	// The read model, as the serving colour answers it.
	rows := queryAll(t, ctx, blue2.addr, token, "todos")
	stats := queryAll(t, ctx, blue2.addr, token, "stats")
	total := int64(0)
	for i := range writers {
		n := acked[i].Load()
		total += n
		for k := range n {
			id := fmt.Sprintf("w%d-%d", i, k)
			if _, ok := rows[id]; !ok {
				t.Errorf("acknowledged write %s is not in the read model", id)
			}
		}
		var got int64
		if s, ok := stats[fmt.Sprintf("w%d", i)]; ok {
			json.Unmarshal(s["writes"], &got)
		}
		if got != n {
			t.Errorf("writer %d: counter %d, %d writes acknowledged (a write applied twice or lost)", i, got, n)
		}
	}
	if int64(len(rows)) != total {
		t.Errorf("read model has %d rows, %d writes acknowledged", len(rows), total)
	}
	t.Logf("%d writes by %d clients across two switches, all in the read model once", total, writers)
	want, err := pg.log.RowsHash(ctx, "dev")
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range clients {
		waitFor(t, func() bool { h, _ := c.Hash(ctx); return h == want })
		t.Logf("replica %d converged", i)
	}
}

// write writes w{i}-{n} with n from 0 on, one transaction each, and after
// each waits until the client has nothing pending (the server
// acknowledged it), then counts it, until stop closes.
func write(ctx context.Context, c *client.Client, i int, acked *atomic.Int64, stop <-chan struct{}) error {
	for n := int64(0); ; n++ {
		select {
		case <-stop:
			return nil
		default:
		}
		err := c.Tx(ctx, func(tx *client.Tx) error {
			if err := tx.Put("todos", fmt.Sprintf("w%d-%d", i, n), map[string]any{"by": i, "n": n}); err != nil {
				return err
			}
			return tx.Increment("stats", fmt.Sprintf("w%d", i), "writes", 1)
		})
		if err != nil {
			return fmt.Errorf("writer %d: write %d: %w", i, n, err)
		}
		deadline := time.Now().Add(90 * time.Second)
		for {
			p, err := c.Pending(ctx)
			if err != nil {
				return fmt.Errorf("writer %d: pending: %w", i, err)
			}
			if p == 0 {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("writer %d: write %d not acknowledged within 90s", i, n)
			}
			time.Sleep(5 * time.Millisecond)
		}
		acked.Store(n + 1)
	}
}

// queryAll reads a whole collection through the query API, by ID.
func queryAll(t *testing.T, ctx context.Context, addr, token, coll string) map[string]map[string]json.RawMessage {
	t.Helper()
	out := map[string]map[string]json.RawMessage{}
	after := ""
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/v1/collections/"+coll+"?limit=1000&after="+after, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("query %s: %s %s", coll, resp.Status, b)
		}
		var page struct {
			Rows []map[string]json.RawMessage `json:"rows"`
			Next string                       `json:"next"`
		}
		if err := json.Unmarshal(b, &page); err != nil {
			t.Fatalf("query %s: %v: %s", coll, err, b)
		}
		for _, r := range page.Rows {
			var id string
			json.Unmarshal(r["id"], &id)
			if _, dup := out[id]; dup {
				t.Errorf("query %s: row %s twice", coll, id)
			}
			out[id] = r
		}
		if page.Next == "" {
			return out
		}
		after = page.Next
	}
}

// colour is one `uno serve` process of a blue-green pair.
type colour struct {
	name, addr string
	cmd        *exec.Cmd
	exited     chan struct{}
	err        error // cmd.Wait's, once exited is closed

	mu  sync.Mutex
	out strings.Builder
}

func (c *colour) output() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.out.String()
}

// startColour starts `uno serve` on a free loopback port and waits until
// its /readyz answers 200.
func startColour(t *testing.T, name string, args ...string) *colour {
	t.Helper()
	c := &colour{name: name, addr: freeAddr(t), exited: make(chan struct{})}
	c.cmd = exec.Command(unoBinary, append([]string{"serve", "--addr", c.addr, "--data", t.TempDir(), "--log-level", "warn"}, args...)...)
	stdout, err := c.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	c.cmd.Stderr = lockedWriter{&c.mu, &c.out}
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			c.mu.Lock()
			c.out.WriteString(sc.Text() + "\n")
			c.mu.Unlock()
		}
		c.err = c.cmd.Wait()
		close(c.exited)
	}()
	t.Cleanup(func() {
		c.cmd.Process.Kill()
		<-c.exited
	})
	deadline := time.Now().Add(60 * time.Second)
	for !ready(c.addr) {
		select {
		case <-c.exited:
			t.Fatalf("%s exited before it was ready: %v\n%s", name, c.err, c.output())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready within 60s\n%s", name, c.output())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return c
}

// ready reports whether addr's /readyz answers 200.
func ready(addr string) bool {
	code, _ := readyz(addr)
	return code == http.StatusOK
}

// readyz returns addr's /readyz status and body (0 if it did not answer).
func readyz(addr string) (int, string) {
	hc := http.Client{Timeout: time.Second}
	resp, err := hc.Get("http://" + addr + "/readyz")
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	return resp.StatusCode, strings.TrimSpace(string(b))
}

// balancer is a TCP load balancer: each new connection goes to a backend
// whose /readyz answered 200 at its last poll (every 100ms), round robin;
// with none ready the connection is closed.
type balancer struct {
	addr string
	mu   sync.Mutex
	back []*backend
	next int
}

type backend struct {
	c      *colour
	ready  atomic.Bool
	picked atomic.Int64
}

func newBalancer(t *testing.T, ctx context.Context) *balancer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lb := &balancer{addr: ln.Addr().String()}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var connMu sync.Mutex
	conns := map[net.Conn]bool{}
	track := func(c net.Conn, on bool) {
		connMu.Lock()
		defer connMu.Unlock()
		if on {
			conns[c] = true
		} else {
			delete(conns, c)
		}
	}
	t.Cleanup(func() {
		cancel()
		ln.Close()
		connMu.Lock()
		for c := range conns {
			c.Close()
		}
		connMu.Unlock()
		wg.Wait()
	})
	wg.Add(2)
	go func() { // readiness polling
		defer wg.Done()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			lb.mu.Lock()
			back := append([]*backend(nil), lb.back...)
			lb.mu.Unlock()
			for _, b := range back {
				b.ready.Store(ready(b.c.addr))
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	go func() {
		defer wg.Done()
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			b := lb.pick()
			if b == nil {
				in.Close()
				continue
			}
			out, err := net.DialTimeout("tcp", b.c.addr, 5*time.Second)
			if err != nil {
				in.Close()
				continue
			}
			track(in, true)
			track(out, true)
			wg.Add(2)
			pipe := func(dst, src net.Conn) {
				defer wg.Done()
				io.Copy(dst, src)
				dst.Close()
				src.Close()
				track(dst, false)
				track(src, false)
			}
			go pipe(out, in)
			go pipe(in, out)
		}
	}()
	return lb
}

// add puts c behind the balancer once its readiness has been polled.
func (lb *balancer) add(c *colour) {
	b := &backend{c: c}
	b.ready.Store(ready(c.addr))
	lb.mu.Lock()
	lb.back = append(lb.back, b)
	lb.mu.Unlock()
}

func (lb *balancer) pick() *backend {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	for range lb.back {
		b := lb.back[lb.next%len(lb.back)]
		lb.next++
		if b.ready.Load() {
			b.picked.Add(1)
			return b
		}
	}
	return nil
}

// picked is how many connections went to c.
func (lb *balancer) picked(c *colour) int64 {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	for _, b := range lb.back {
		if b.c == c {
			return b.picked.Load()
		}
	}
	return 0
}
