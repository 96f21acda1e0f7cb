package e2e

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/unosync/uno/client"
	"github.com/unosync/uno/internal/pgtest"
	"github.com/unosync/uno/server"
	"github.com/unosync/uno/server/sqlitelog"
)

// unoBinary is built once by TestMain for the tests that run the server
// as a real process.
var unoBinary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "uno-e2e")
	if err != nil {
		panic(err)
	}
	unoBinary = filepath.Join(dir, "uno")
	out, err := exec.Command("go", "build", "-o", unoBinary, "github.com/unosync/uno/cmd/uno").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build uno: %v\n%s", err, out)
		os.Exit(1)
	}
	code := pgtest.Main(m)
	os.RemoveAll(dir)
	os.Exit(code)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// serverProc is `uno serve` running as a child process.
type serverProc struct {
	cmd *exec.Cmd
}

func startProc(t *testing.T, addr, dataDir string) *serverProc {
	t.Helper()
	cmd := exec.Command(unoBinary, "serve", "--addr", addr, "--data", dataDir, "--log-level", "warn")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Wait until it says it listens.
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "development token") {
			break
		}
	}
	go func() {
		for sc.Scan() {
		}
	}()
	return &serverProc{cmd: cmd}
}

func (p *serverProc) kill() {
	p.cmd.Process.Signal(syscall.SIGKILL)
	p.cmd.Wait()
}

// Kill -9 the server in the middle of pushes, again and again: no
// acknowledged transaction is lost, none is applied twice, and the clients
// resume by themselves.
func TestKillServer(t *testing.T) {
	cycles := 20
	if s := os.Getenv("UNO_KILL_CYCLES"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			t.Fatalf("UNO_KILL_CYCLES=%q: want a positive number", s)
		}
		cycles = n
	}
	ctx := context.Background()
	dataDir := t.TempDir()
	addr := freeAddr(t)
	proc := startProc(t, addr, dataDir)
	defer func() { proc.kill() }()
	tokenBytes, err := os.ReadFile(filepath.Join(dataDir, "dev-token"))
	if err != nil {
		t.Fatal(err)
	}
	token := strings.TrimSpace(string(tokenBytes))

	const nClients = 3
	ws, stopWriting := startWriters(t, nClients, client.Config{
		Server: "ws://" + addr + "/v1/sync", Token: token,
		BackoffMin: 10 * time.Millisecond, BackoffMax: 300 * time.Millisecond, DialTimeout: time.Second,
	}, time.Millisecond, func(c *client.Client, i, k int) (int, error) {
		if err := c.Collection("items").Put(ctx, fmt.Sprintf("c%d-%d", i, k), map[string]any{"n": k}); err != nil {
			return 0, err
		}
		if err := c.Collection("counters").Increment(ctx, "total", "n", 1); err != nil {
			return 1, err
		}
		return 2, nil
	})
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	for cycle := range cycles {
		time.Sleep(time.Duration(50+rng.IntN(150)) * time.Millisecond)
		// What each client knows the server acknowledged, just before the kill.
		acked := make([]uint64, nClients)
		for i, w := range ws {
			acked[i] = w.acked(t)
		}
		proc.kill()
		// With the server down, its log must hold every acknowledged transaction.
		l, err := sqlitelog.Open(ctx, filepath.Join(dataDir, "log.db"), nil)
		if err != nil {
			t.Fatalf("cycle %d: open log: %v", cycle, err)
		}
		for i, w := range ws {
			hw, err := l.HighWater(ctx, "dev", w.c.Site())
			if err != nil {
				t.Fatal(err)
			}
			if hw < acked[i] {
				t.Fatalf("cycle %d: client %d had seq %d acknowledged, the log holds only %d: an acknowledged write was lost", cycle, i, acked[i], hw)
			}
		}
		l.Close()
		proc = startProc(t, addr, dataDir)
	}
	stopWriting()
	// Heal: every client syncs everything by itself.
	for i, w := range ws {
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		if err := w.c.Sync(sctx); err != nil {
			t.Fatalf("client %d did not catch up: %v", i, err)
		}
		cancel()
	}
	// The live tail brings everyone the others' last transactions: wait
	// for every replica to match the server's read model (read from the
	// server's database file while it runs: SQLite WAL allows that).
	l, err := sqlitelog.Open(ctx, filepath.Join(dataDir, "log.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for i, w := range ws {
		deadline := time.Now().Add(30 * time.Second)
		for {
			want, err := l.RowsHash(ctx, "dev")
			if err != nil {
				t.Fatal(err)
			}
			if h, _ := w.c.Hash(ctx); h == want {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("client %d never matched the server's read model", i)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	proc.kill()
	// Exactly once: the log holds each client's transactions once each, in order.
	seen, total := siteSeqs(t, l, "dev")
	var written uint64
	for i, w := range ws {
		written += uint64(w.written.Load())
		if got := seen[w.c.Site().String()]; got != uint64(w.written.Load()) {
			t.Errorf("client %d wrote %d transactions, the log holds %d", i, w.written.Load(), got)
		}
	}
	if total != written {
		t.Errorf("log holds %d transactions, clients wrote %d", total, written)
	}
	// And every replica converged with the read model.
	want, err := l.RowsHash(ctx, "dev")
	if err != nil {
		t.Fatal(err)
	}
	for i, w := range ws {
		if h, _ := w.c.Hash(ctx); h != want {
			t.Errorf("client %d differs from the server's read model", i)
		}
	}
	t.Logf("%d kill cycles, %d transactions", cycles, total)
}

// siteSeqs reads a tenant's whole log, checks that each site's
// transactions appear once each and in order, and returns each site's last
// sequence number and the number of entries.
func siteSeqs(t *testing.T, l server.Log, tenant string) (map[string]uint64, uint64) {
	t.Helper()
	ctx := context.Background()
	seen := map[string]uint64{}
	var total, after uint64
	for {
		chs, err := l.Read(ctx, tenant, after, 1000, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(chs) == 0 {
			return seen, total
		}
		for _, ch := range chs {
			k := ch.Tx.Site.String()
			if ch.Tx.Seq != seen[k]+1 {
				t.Fatalf("log: site %s seq %d after %d: a duplicate or a gap", k, ch.Tx.Seq, seen[k])
			}
			seen[k] = ch.Tx.Seq
			total++
		}
		after = chs[len(chs)-1].Seq
	}
}
