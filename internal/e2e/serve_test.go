package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/unosync/uno/client"
	"github.com/unosync/uno/crdt"
	"github.com/unosync/uno/server"
	"github.com/unosync/uno/server/sqlitelog"
	usync "github.com/unosync/uno/sync"
)

// unoProc is `uno serve` as a child process, with what it printed.
type unoProc struct {
	addr   string // host:port it listens on
	cmd    *exec.Cmd
	token  string
	exited chan struct{} // closed once the process has exited
	err    error         // cmd.Wait's, once exited is closed

	mu     sync.Mutex
	stdout []string
	stderr strings.Builder
}

// startUno starts `uno serve --addr addr --data dataDir args...` and waits
// until it prints its development token. The process is killed when the
// test ends, if it still runs.
func startUno(t *testing.T, addr, dataDir string, args ...string) *unoProc {
	t.Helper()
	p := &unoProc{addr: addr, exited: make(chan struct{})}
	p.cmd = exec.Command(unoBinary, append([]string{"serve", "--addr", addr, "--data", dataDir, "--log-level", "warn"}, args...)...)
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.cmd.Stderr = lockedWriter{&p.mu, &p.stderr}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	tokens := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			p.mu.Lock()
			p.stdout = append(p.stdout, sc.Text())
			p.mu.Unlock()
			if tok, ok := strings.CutPrefix(sc.Text(), "development token"); ok && len(tokens) == 0 {
				tokens <- tok[strings.LastIndex(tok, " ")+1:]
			}
		}
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.exited
	})
	timeout := time.After(30 * time.Second)
	select {
	case p.token = <-tokens:
		return p
	case <-p.exited:
		t.Fatalf("uno serve exited before it listened: %v\n%s", p.err, p.output())
	case <-timeout:
		t.Fatalf("uno serve printed no token in 30s\n%s", p.output())
	}
	return nil
}

// wait waits for the process to exit, at most d; it reports whether it did.
func (p *unoProc) wait(d time.Duration) bool {
	select {
	case <-p.exited:
		return true
	case <-time.After(d):
		return false
	}
}

// output is what the process printed so far.
func (p *unoProc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return "stdout:\n" + strings.Join(p.stdout, "\n") + "\nstderr:\n" + p.stderr.String()
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *strings.Builder
}

func (w lockedWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(b)
}

// dialSite opens a raw session of site on a sync endpoint and returns it
// with its Welcome.
func dialSite(t *testing.T, ctx context.Context, url, token string, site crdt.SiteID) (*rawPeer, *usync.Welcome) {
	t.Helper()
	codec, err := usync.NewCodec(usync.CodecConfig{})
	if err != nil {
		t.Fatal(err)
	}
	ws, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.CloseNow() })
	p := &rawPeer{ws: ws, codec: codec}
	p.send(t, ctx, &usync.Hello{Versions: usync.Versions, Site: site, Token: token})
	w, ok := p.recv(t, ctx).(*usync.Welcome)
	if !ok {
		t.Fatal("no Welcome")
	}
	return p, w
}

// untilClosed reads messages until the server closes the connection and
// returns them with the close status.
func untilClosed(t *testing.T, ctx context.Context, p *rawPeer) ([]usync.Message, websocket.StatusCode) {
	t.Helper()
	var got []usync.Message
	for {
		_, b, err := p.ws.Read(ctx)
		if err != nil {
			return got, websocket.CloseStatus(err)
		}
		m, err := p.codec.Decode(b)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, m)
	}
}

// SIGTERM drains uno serve: the clients' sessions close with
// CodeShuttingDown after the pushes already received are acknowledged,
// the process exits 0 well within --drain-timeout, and what it
// acknowledged is in its log when it starts again.
func TestServe_SIGTERMDrains(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	addr, dataDir := freeAddr(t), t.TempDir()
	const drain = 20 * time.Second
	p := startUno(t, addr, dataDir, "--drain-timeout", drain.String())
	url := "ws://" + addr + "/v1/sync"

	// A client app, live, whose log tells why its connections end.
	shutdownSeen := errWatch{target: usync.ErrShuttingDown, once: new(sync.Once), seen: make(chan struct{})}
	c, err := client.Open(ctx, client.Config{
		Path: filepath.Join(t.TempDir(), "app.db"), Server: url, Token: p.token,
		BackoffMin: 20 * time.Millisecond, BackoffMax: 200 * time.Millisecond,
		Logger: slog.New(shutdownSeen),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Collection("items").Put(ctx, "a", map[string]any{"n": 1}); err != nil {
		t.Fatal(err)
	}
	if err := c.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	// A live query.
	events, streamEnded := liveQuery(t, ctx, addr, p.token, "items")
	select {
	case <-events:
	case err := <-streamEnded:
		t.Fatal(err)
	}

	// A raw session with one push acknowledged, and one sent just before
	// the signal (in flight, or not yet read).
	site := crdt.SiteID{0x51, 0x67}
	raw, _ := dialSite(t, ctx, url, p.token, site)
	raw.send(t, ctx, &usync.Push{Txs: []crdt.Tx{tx(site, 1)}})
	if a := nextOf[*usync.Ack](t, ctx, raw); a.HighWater != 1 {
		t.Fatalf("Ack %+v, want high-water 1", a)
	}
	raw.send(t, ctx, &usync.Push{Txs: []crdt.Tx{tx(site, 2)}})
	start := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}

	msgs, status := untilClosed(t, ctx, raw)
	if status != server.CloseCode(usync.CodeShuttingDown) {
		t.Fatalf("closed with %v, want %v (CodeShuttingDown); got %d messages", status, server.CloseCode(usync.CodeShuttingDown), len(msgs))
	}
	acked2, sawError := false, false
	for _, m := range msgs {
		switch m := m.(type) {
		case *usync.Ack:
			if sawError {
				t.Fatal("an Ack after the Error")
			}
			acked2 = m.HighWater == 2
		case *usync.ErrorMessage:
			if m.Code != usync.CodeShuttingDown {
				t.Fatalf("Error %+v, want CodeShuttingDown", m)
			}
			sawError = true
		}
	}
	if !sawError {
		t.Fatalf("no Error message before the close: %v", msgs)
	}
	// The client app's connection ends with the code too.
	select {
	case <-shutdownSeen.seen:
	case <-ctx.Done():
		t.Fatal("the client's connection never ended with CodeShuttingDown")
	}

	// The live query ends (a client's EventSource reconnects).
	for ended := false; !ended; {
		select {
		case <-events:
		case <-streamEnded:
			ended = true
		case <-ctx.Done():
			t.Fatal("the live query did not end")
		}
	}

	if !p.wait(drain) {
		t.Fatalf("uno serve still runs %s after SIGTERM\n%s", drain, p.output())
	}
	if p.err != nil {
		t.Fatalf("uno serve exited with %v after SIGTERM\n%s", p.err, p.output())
	}
	t.Logf("drained in %s (push 2 acknowledged: %v)", time.Since(start).Round(time.Millisecond), acked2)
	if out := p.output(); !strings.Contains(out, "uno serve: stopped") {
		t.Fatalf("no word of a clean stop:\n%s", out)
	}

	// Started again: the log holds what was acknowledged, and only that.
	p = startUno(t, addr, dataDir)
	_, w := dialSite(t, ctx, url, p.token, site)
	if want := map[bool]uint64{false: 1, true: 2}[acked2]; w.HighWater != want {
		t.Fatalf("after the restart the site's high-water is %d, want %d (push 2 acknowledged: %v)", w.HighWater, want, acked2)
	}
	// The client app reconnects by itself.
	if err := c.Collection("items").Put(ctx, "b", map[string]any{"n": 2}); err != nil {
		t.Fatal(err)
	}
	if err := c.Sync(ctx); err != nil {
		t.Fatalf("the client did not sync with the restarted server: %v", err)
	}
}

// gatedLog holds every Append until release is closed.
type gatedLog struct {
	testLog
	entered chan struct{} // closed when the first Append starts
	once    sync.Once
	release chan struct{}
}

func (l *gatedLog) Append(ctx context.Context, tenant string, txs []crdt.Tx) ([]uint64, error) {
	l.once.Do(func() { close(l.entered) })
	select {
	case <-l.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return l.testLog.Append(ctx, tenant, txs)
}

// Server.Shutdown lets a push being appended commit and be acknowledged,
// then closes the session with CodeShuttingDown.
func TestServer_ShutdownAcksTheAppendInFlight(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l, err := sqlitelog.Open(ctx, filepath.Join(t.TempDir(), "server.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	g := &gatedLog{testLog: l, entered: make(chan struct{}), release: make(chan struct{})}
	e := startServerWith(t, server.Config{Log: g})
	site := crdt.SiteID{0x1a}
	p := helloSite(t, ctx, e, site)
	p.send(t, ctx, &usync.Push{Txs: []crdt.Tx{tx(site, 1)}})
	select {
	case <-g.entered:
	case <-ctx.Done():
		t.Fatal("the push was never appended")
	}
	done := make(chan error, 1)
	go func() { done <- e.server.Shutdown(ctx) }()
	// Draining: new sessions are refused.
	for {
		resp, err := http.Get(e.http + "/v1/sync")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusServiceUnavailable {
			break
		}
		if ctx.Err() != nil {
			t.Fatal("Shutdown never refused new sessions")
		}
		time.Sleep(5 * time.Millisecond)
	}
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned (%v) while a push was being appended", err)
	default:
	}
	close(g.release)
	msgs, status := untilClosed(t, ctx, p)
	if len(msgs) != 2 {
		t.Fatalf("got %v, want an Ack and an Error", msgs)
	}
	if a, ok := msgs[0].(*usync.Ack); !ok || a.HighWater != 1 {
		t.Fatalf("first %T %+v, want the Ack of seq 1", msgs[0], msgs[0])
	}
	if em, ok := msgs[1].(*usync.ErrorMessage); !ok || em.Code != usync.CodeShuttingDown {
		t.Fatalf("then %T %+v, want an Error with CodeShuttingDown", msgs[1], msgs[1])
	}
	if status != server.CloseCode(usync.CodeShuttingDown) {
		t.Fatalf("closed with %v, want %v", status, server.CloseCode(usync.CodeShuttingDown))
	}
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if hw, err := l.HighWater(ctx, "dev", site); err != nil || hw != 1 {
		t.Fatalf("high-water %d (%v), want 1", hw, err)
	}
}

// Server.Shutdown cuts what is still running when its context ends.
func TestServer_ShutdownDeadline(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l, err := sqlitelog.Open(ctx, filepath.Join(t.TempDir(), "server.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	g := &gatedLog{testLog: l, entered: make(chan struct{}), release: make(chan struct{})} // never released
	e := startServerWith(t, server.Config{Log: g})
	site := crdt.SiteID{0x1b}
	p := helloSite(t, ctx, e, site)
	p.send(t, ctx, &usync.Push{Txs: []crdt.Tx{tx(site, 1)}})
	<-g.entered
	sctx, scancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer scancel()
	if err := e.server.Shutdown(sctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown = %v, want the deadline's error", err)
	}
	// Cut: the connection drops (no close code promised), with no Ack.
	msgs, _ := untilClosed(t, ctx, p)
	for _, m := range msgs {
		if _, ok := m.(*usync.Ack); ok {
			t.Fatal("an Ack for an append that was cut")
		}
	}
	if hw, _ := l.HighWater(ctx, "dev", site); hw != 0 {
		t.Fatalf("high-water %d, want 0: the cut append committed", hw)
	}
}

// errWatch is a slog.Handler that closes seen the first time a record
// carries an error matching target.
type errWatch struct {
	target error
	once   *sync.Once
	seen   chan struct{}
}

func (h errWatch) Enabled(context.Context, slog.Level) bool { return true }

func (h errWatch) Handle(_ context.Context, r slog.Record) error {
	r.Attrs(func(a slog.Attr) bool {
		if err, ok := a.Value.Any().(error); ok && errors.Is(err, h.target) {
			h.once.Do(func() { close(h.seen) })
		}
		return true
	})
	return nil
}

func (h errWatch) WithAttrs([]slog.Attr) slog.Handler { return h }

func (h errWatch) WithGroup(string) slog.Handler { return h }

// Two servers never share a data directory: the second stops at once,
// naming the directory and the first's process; the lock goes with the
// first, even killed with SIGKILL.
func TestServe_DataDirLock(t *testing.T) {
	dataDir := t.TempDir()
	first := startUno(t, freeAddr(t), dataDir)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, unoBinary, "serve", "--addr", freeAddr(t), "--data", dataDir).CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("the second uno serve still ran after 30s:\n%s", out)
	}
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("the second uno serve on %s: %v, want exit status 1\n%s", dataDir, err, out)
	}
	for _, want := range []string{dataDir, fmt.Sprintf("process %d", first.cmd.Process.Pid), "in use"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the refusal does not say %q:\n%s", want, out)
		}
	}
	if strings.Contains(string(out), "development token") {
		t.Errorf("the second uno serve started serving:\n%s", out)
	}

	first.cmd.Process.Kill()
	if !first.wait(30 * time.Second) {
		t.Fatal("SIGKILL did not end uno serve")
	}
	startUno(t, freeAddr(t), dataDir) // fails the test unless it serves
}

// WebSocket sessions and live query streams (Server-Sent Events) live on
// past uno serve's read and write timeouts, which bound the other
// requests: net/http clears its deadlines from hijacked connections, and
// a stream extends its own per event.
func TestServe_LongSessionsOutliveTimeouts(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const timeout = time.Second
	addr := freeAddr(t)
	p := startUno(t, addr, t.TempDir(), "--read-timeout", timeout.String(), "--write-timeout", timeout.String(),
		"--read-header-timeout", timeout.String(), "--idle-timeout", timeout.String())
	site := crdt.SiteID{0x7e}
	ws, _ := dialSite(t, ctx, "ws://"+addr+"/v1/sync", p.token, site)

	events, streamErr := liveQuery(t, ctx, addr, p.token, "c")
	nextEvent := func(what string) string {
		t.Helper()
		select {
		case data := <-events:
			return data
		case err := <-streamErr:
			t.Fatalf("%s: %v", what, err)
		case <-ctx.Done():
			t.Fatalf("%s: no event", what)
		}
		return ""
	}
	nextEvent("the first result")

	// A write every 250ms for 4 times the timeouts: each is acknowledged
	// on the session and streamed as a new result.
	start := time.Now()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for seq := uint64(1); time.Since(start) < 4*timeout; seq++ {
		<-tick.C
		ws.send(t, ctx, &usync.Push{Txs: []crdt.Tx{tx(site, seq)}})
		if a := nextOf[*usync.Ack](t, ctx, ws); a.HighWater != seq {
			t.Fatalf("after %s: Ack %+v, want high-water %d", time.Since(start).Round(time.Millisecond), a, seq)
		}
		for want := fmt.Sprintf(`"n":%d`, seq); ; { // the site's cumulative count
			if data := nextEvent(fmt.Sprintf("after %s", time.Since(start).Round(time.Millisecond))); strings.Contains(data, want) {
				break
			}
		}
	}
}

// liveQuery opens the live query of a collection (Server-Sent Events) and
// returns its events' data, and the error that ends the stream.
func liveQuery(t *testing.T, ctx context.Context, addr, token, coll string) (<-chan string, <-chan error) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/v1/collections/"+coll+"?live=1", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != 200 {
		t.Fatalf("live query: %s", resp.Status)
	}
	events := make(chan string)
	ended := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				select {
				case events <- data:
				case <-ctx.Done():
					return
				}
			}
		}
		ended <- fmt.Errorf("the stream ended: %v", sc.Err())
	}()
	return events, ended
}
