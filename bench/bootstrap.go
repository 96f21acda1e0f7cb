package bench

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/unosync/uno/client"
	"github.com/unosync/uno/crdt"
	usync "github.com/unosync/uno/sync"
)

// Bootstrap measures a fresh client bootstrapping 100,000 rows
// (UNO_BOOTSTRAP_ROWS to change it) from
// `uno serve` (its own process): the time until the client is up to date,
// the bytes the server sent, and the client's peak RSS during the
// bootstrap (the process's VmHWM, reset just before it).
func Bootstrap(b B) { bootstrap(b, startServerProcess(b), bootstrapRows(100_000)) }

const bootstrapBatch = 1000

// BootstrapTargetRows is the size the bootstrap's target (≤ 30 s, a
// client peak RSS ≤ 300 MB) is set at, and uno bench's bootstrap size.
const BootstrapTargetRows = 1_000_000

// bootstrapRows is UNO_BOOTSTRAP_ROWS rounded up to a batch, or def.
func bootstrapRows(def int) int {
	if v, err := strconv.Atoi(os.Getenv("UNO_BOOTSTRAP_ROWS")); err == nil && v > 0 {
		return (v + bootstrapBatch - 1) / bootstrapBatch * bootstrapBatch
	}
	return def
}

// bootstrap seeds srv with rows rows (a multiple of bootstrapBatch) and
// measures a new client's bootstrap of them.
func bootstrap(b B, srv *serverProcess, rows int) {
	const batch = bootstrapBatch
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	// Seed: one peer pushes 100,000 rows of three fields, 1,000 per Push.
	p, _, err := dialPeer(ctx, srv.url, srv.token, 1)
	if err != nil {
		b.Fatal(err)
	}
	for start := 0; start < rows; start += batch {
		txs := make([]crdt.Tx, batch)
		for i := range txs {
			n := start + i
			p.seq++
			id := fmt.Sprintf("row-%06d", n)
			txs[i] = crdt.Tx{Site: p.site, Seq: p.seq, Time: p.clock.Now(time.Now()), Ops: []crdt.Op{
				{Type: crdt.OpRevive, Collection: "items", Row: id, CL: 1},
				{Type: crdt.OpSet, Kind: crdt.KindRegister, Collection: "items", Row: id, Field: "title", CL: 1, Value: fmt.Appendf(nil, `"item number %d"`, n)},
				{Type: crdt.OpSet, Kind: crdt.KindRegister, Collection: "items", Row: id, Field: "done", CL: 1, Value: []byte("false")},
				{Type: crdt.OpSet, Kind: crdt.KindRegister, Collection: "items", Row: id, Field: "rank", CL: 1, Value: fmt.Appendf(nil, "%d", n)},
			}}
		}
		if err := p.send(ctx, &usync.Push{Txs: txs}); err != nil {
			b.Fatal(err)
		}
		for acked := false; !acked; {
			m, err := p.recv(ctx)
			if err != nil {
				b.Fatal(err)
			}
			switch m := m.(type) {
			case *usync.Ack:
				acked = true
			case *usync.ErrorMessage:
				b.Fatal(m.Err())
			}
		}
	}
	p.close()
	var elapsed time.Duration
	var sent float64
	var peak int64
	for n := range b.N() {
		out0 := scrape(b, srv, "uno_bytes_out_total")
		resetPeakRSS(b)
		start := time.Now()
		c, err := client.Open(ctx, client.Config{Path: filepath.Join(b.TempDir(), fmt.Sprintf("boot%d.db", n)),
			Server: srv.url, Token: srv.token, ManualSync: true})
		if err != nil {
			b.Fatal(err)
		}
		if err := c.Sync(ctx); err != nil {
			b.Fatal(err)
		}
		elapsed += time.Since(start)
		peak = max(peak, peakRSS(b))
		sent += scrape(b, srv, "uno_bytes_out_total") - out0
		st := c.Status()
		if st.Bootstrap.Rows != uint64(rows) || !st.Bootstrap.Done {
			b.Fatalf("bootstrap %+v, want %d rows", st.Bootstrap, rows)
		}
		c.Close()
	}
	b.ReportMetric(elapsed.Seconds()/float64(b.N()), "s/bootstrap")
	b.ReportMetric(sent/float64(b.N())/1e6, "MB-sent")
	b.ReportMetric(float64(peak)/(1<<20), "peak-RSS-MiB")
	b.ReportMetric(float64(rows), "rows")
}

// scrape reads one counter from the server's /metrics.
func scrape(b B, srv *serverProcess, name string) float64 {
	b.Helper()
	url := "http" + strings.TrimSuffix(strings.TrimPrefix(srv.url, "ws"), "/v1/sync") + "/metrics"
	resp, err := http.Get(url)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 2 && f[0] == name {
			v, _ := strconv.ParseFloat(f[1], 64)
			return v
		}
	}
	b.Fatalf("metric %s not found", name)
	return 0
}

// resetPeakRSS resets the process's VmHWM (Linux: write 5 to clear_refs).
func resetPeakRSS(b B) {
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		b.Logf("cannot reset peak RSS: %v", err)
	}
}

// peakRSS returns the process's VmHWM in bytes.
func peakRSS(b B) int64 {
	f, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(f), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			kb, _ := strconv.ParseInt(strings.Fields(line)[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}
