package server

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	usync "github.com/unosync/uno/sync"
)

func changes(seqs ...uint64) []usync.Change {
	out := make([]usync.Change, len(seqs))
	for i, s := range seqs {
		out[i].Seq = s
	}
	return out
}

// appendTimes measures the entries it knows, forgets the oldest entries
// of a tenant past appendRingSize and the tenant appended to longest ago
// past its tenant bound.
func TestAppendTimes_Bounds(t *testing.T) {
	a := newAppendTimes(2)
	t0 := time.Now()
	seqs := make([]uint64, appendRingSize+10)
	for i := range seqs {
		seqs[i] = uint64(i + 1)
	}
	a.record("t1", seqs, t0)
	a.record("t2", []uint64{0, 1}, t0.Add(time.Second))

	var seen []float64
	h := prometheus.ObserverFunc(func(v float64) { seen = append(seen, v) })
	a.observe(h, "t1", changes(1, 10, appendRingSize+10, appendRingSize+11), t0.Add(time.Millisecond))
	if len(seen) != 1 || seen[0] != 0.001 {
		t.Fatalf("observed %v, want just 0.001: seqs 1 and 10 were overwritten, %d was never appended", seen, appendRingSize+11)
	}
	a.observe(h, "t2", changes(1), t0.Add(2*time.Second))
	a.observe(h, "other", changes(1), t0)
	if len(seen) != 2 || seen[1] != 1 {
		t.Fatalf("observed %v, want 0.001 then 1 (t2's seq 1), nothing of a tenant never appended to", seen)
	}

	a.record("t3", []uint64{1}, t0.Add(2*time.Second)) // evicts t1, the oldest
	if len(a.tenants) != 2 || a.tenants["t1"] != nil {
		t.Fatalf("tenants kept: %v, want t2 and t3", a.tenants)
	}
	for i := range 100 {
		a.record(fmt.Sprint("x", i), []uint64{1}, t0.Add(time.Duration(3+i)*time.Second))
	}
	if len(a.tenants) != 2 {
		t.Fatalf("%d tenants kept, want at most 2", len(a.tenants))
	}
}

// A disabled level costs no allocation on the hot path.
func TestConn_LogDisabledAllocs(t *testing.T) {
	c := &conn{s: &Server{cfg: Config{Logger: slog.New(slog.DiscardHandler)}}, sess: usync.NewServerSession(usync.ServerConfig{}), tenant: "t", user: "u"}
	ctx := context.Background()
	n := testing.AllocsPerRun(100, func() {
		c.log(ctx, slog.LevelDebug, "push", slog.Int("txs", 3), slog.Int("appended", 3), slog.Int("rejected", 0), slog.Uint64("high_water", 9))
	})
	if n != 0 {
		t.Fatalf("a disabled log record costs %v allocations, want 0", n)
	}
}
