package bench

import (
	"bufio"
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/coder/websocket"
	"github.com/unosync/uno/crdt"
	usync "github.com/unosync/uno/sync"
)

// peer is a load-generating client speaking the protocol directly: it
// keeps no store, so a benchmark measures the server, not 50 SQLite files.
type peer struct {
	ws    *websocket.Conn
	codec *usync.Codec
	site  crdt.SiteID
	seq   uint64
	clock *crdt.Clock
}

func dialPeer(ctx context.Context, url, token string, window uint32) (*peer, *usync.Welcome, error) {
	return dialPeerAt(ctx, url, token, window, 0)
}

// dialPeerAt is dialPeer resuming from cursor: a peer that starts at the
// log's head reads only what is appended after it joined (from 0, it
// bootstraps from a snapshot).
func dialPeerAt(ctx context.Context, url, token string, window uint32, cursor uint64) (*peer, *usync.Welcome, error) {
	codec, err := usync.NewCodec(usync.CodecConfig{})
	if err != nil {
		return nil, nil, err
	}
	ws, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		return nil, nil, err
	}
	ws.SetReadLimit(8 << 20)
	p := &peer{ws: ws, codec: codec, clock: crdt.NewClock(0, 0)}
	if _, err := rand.Read(p.site[:]); err != nil {
		return nil, nil, err
	}
	if err := p.send(ctx, &usync.Hello{Versions: usync.Versions, Site: p.site, Token: token, Cursor: cursor, Credits: window}); err != nil {
		return nil, nil, err
	}
	m, err := p.recv(ctx)
	if err != nil {
		return nil, nil, err
	}
	w, ok := m.(*usync.Welcome)
	if !ok {
		return nil, nil, fmt.Errorf("handshake: got %T", m)
	}
	return p, w, nil
}

func (p *peer) send(ctx context.Context, m usync.Message) error {
	b, err := p.codec.Encode(m)
	if err != nil {
		return err
	}
	return p.ws.Write(ctx, websocket.MessageBinary, b)
}

func (p *peer) recv(ctx context.Context) (usync.Message, error) {
	_, b, err := p.ws.Read(ctx)
	if err != nil {
		return nil, err
	}
	return p.codec.Decode(b)
}

// push sends one transaction writing one field of row id.
func (p *peer) push(ctx context.Context, collection, id string, value []byte) (crdt.Tx, error) {
	p.seq++
	tx := crdt.Tx{Site: p.site, Seq: p.seq, Time: p.clock.Now(time.Now()), Ops: []crdt.Op{
		{Type: crdt.OpRevive, Collection: collection, Row: id, CL: 1},
		{Type: crdt.OpSet, Kind: crdt.KindRegister, Collection: collection, Row: id, Field: "v", CL: 1, Value: value},
	}}
	return tx, p.send(ctx, &usync.Push{Txs: []crdt.Tx{tx}})
}

func (p *peer) close() {
	p.ws.Close(websocket.StatusNormalClosure, "")
	p.codec.Close()
}

// serverProcess is `uno serve` as a child process, so that its CPU time
// can be read apart from the load generator's.
type serverProcess struct {
	cmd   *exec.Cmd
	url   string
	token string
}

func startServerProcess(b B, args ...string) *serverProcess {
	b.Helper()
	dir := b.TempDir()
	bin := filepath.Join(dir, "uno")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/unosync/uno/cmd/uno").CombinedOutput(); err != nil {
		b.Fatalf("build uno: %v\n%s", err, out)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(bin, append([]string{"serve", "--addr", addr, "--data", filepath.Join(dir, "data"), "--log-level", "warn"}, args...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	sc := bufio.NewScanner(stdout)
	token := ""
	for sc.Scan() {
		if i := strings.LastIndex(sc.Text(), ": "); strings.HasPrefix(sc.Text(), "development token") && i > 0 {
			token = sc.Text()[i+2:]
			break
		}
	}
	go func() {
		for sc.Scan() {
		}
	}()
	if token == "" {
		b.Fatal("uno serve printed no token")
	}
	return &serverProcess{cmd: cmd, url: "ws://" + addr + "/v1/sync", token: token}
}

// cpu returns the process's user+system CPU time so far (Linux /proc).
func (s *serverProcess) cpu(b B) time.Duration {
	b.Helper()
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", s.cmd.Process.Pid))
	if err != nil {
		b.Fatal(err)
	}
	f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+2:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * time.Second / 100 // USER_HZ
}
