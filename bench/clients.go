package bench

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/unosync/uno/client"
	"github.com/unosync/uno/server"
)

// The real-client workloads: every peer is a client.Client on a SQLite
// file of its own, with default settings apart from Durability, writing
// one update per transaction, syncing in the background through a fresh
// in-process server (startSync) on a loopback socket. Receivers learn of
// updates the way an app does, through Watch.

// Fanout says how many clients each write how many updates; see
// ClientUpdates.
type Fanout struct {
	Clients, Updates int
}

// Paced says how often one writer writes, how many times, and how many
// clients receive it; see PacedWatch.
type Paced struct {
	Receivers int
	Hz        float64
	Writes    int
}

// The default sizes of the real-client workloads. A write to 49
// receivers makes 49 latencies that rise and fall together (one slow
// append or GC pause delays them all), so the p99 of PacedMany's is
// about its slowest writes': 300 writes put 3 writes' worth of
// latencies in the top 1%, where 100 put one, whose p99 moved by 4 ms
// from round to round.
var (
	TwoClients   = Fanout{Clients: 2, Updates: 2000}
	FiftyClients = Fanout{Clients: 50, Updates: 40}
	PacedOne     = Paced{Receivers: 1, Hz: 50, Writes: 250}
	PacedMany    = Paced{Receivers: 49, Hz: 20, Writes: 300}
)

// collection is the one collection the real-client workloads write.
const collection = "items"

// openClients starts n clients configured by cfg and waits until
// each has connected and caught up (so the timed part does not include
// dialing).
func openClients(b B, e *syncEnv, n int, cfg client.Config) []*client.Client {
	b.Helper()
	cs := make([]*client.Client, n)
	for i := range cs {
		cs[i] = e.client(b, fmt.Sprint("c", i), cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, c := range cs {
		st := c.StatusChanges(ctx)
		for s := range st {
			if s.State == client.StateUpToDate {
				break
			}
		}
		if ctx.Err() != nil {
			b.Fatalf("a client did not connect within a minute (state %v)", c.Status().State)
		}
	}
	return cs
}

// ClientUpdates returns the fan-out workload: f.Clients clients each set
// the field n of their own row f.Updates times, one Put per transaction,
// all at once, while syncing in the background; an iteration ends when
// every client's Watch shows every row at its last value (a client's
// updates reach the others in the order written, so the last value
// means all of them arrived). It reports updates/s (updates written per
// second) and deliveries/s (updates delivered to the other clients per
// second: the server never sends a client its own updates).
func ClientUpdates(f Fanout, d client.Durability) func(B) {
	return func(b B) {
		ctx := context.Background()
		var elapsed time.Duration
		for range b.N() {
			b.StopTimer()
			e := startSync(b, server.Config{})
			cs := openClients(b, e, f.Clients, client.Config{Durability: d})
			last := f.Updates - 1
			watches := make([]*client.Watch, len(cs))
			for i, c := range cs {
				w, err := c.Collection(collection).Watch(ctx, client.Query{Where: []client.Cond{client.Where("n", "=", last)}})
				if err != nil {
					b.Fatal(err)
				}
				watches[i] = w
				<-w.C // the initial, empty result
			}
			b.StartTimer()
			start := time.Now()
			var wg sync.WaitGroup
			var failed firstError
			for i, c := range cs {
				wg.Add(2)
				go func() { // the writer
					defer wg.Done()
					items := c.Collection(collection)
					id := fmt.Sprint("c", i)
					for u := range f.Updates {
						if err := items.Put(ctx, id, map[string]any{"n": u}); err != nil {
							failed.set(err)
							return
						}
					}
				}()
				go func() { // the receiver
					defer wg.Done()
					all := func(docs []client.Doc) bool { return len(docs) >= len(cs) }
					if err := waitWatch(ctx, watches[i], 2*time.Minute, "every update", all); err != nil {
						failed.set(fmt.Errorf("client %d: %w", i, err))
					}
				}()
			}
			wg.Wait()
			elapsed += time.Since(start)
			b.StopTimer()
			if err := failed.get(); err != nil {
				b.Fatal(err)
			}
			for _, w := range watches {
				w.Close()
			}
			for _, c := range cs {
				c.Close()
			}
			b.StartTimer()
		}
		updates := float64(b.N() * f.Clients * f.Updates)
		b.ReportMetric(updates/elapsed.Seconds(), "updates/s")
		b.ReportMetric(updates*float64(f.Clients-1)/elapsed.Seconds(), "deliveries/s")
	}
}

// waitWatch waits until w shows a result for which done holds; what says
// what was awaited, for the error.
func waitWatch(ctx context.Context, w *client.Watch, timeout time.Duration, what string, done func([]client.Doc) bool) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		select {
		case docs, ok := <-w.C:
			if !ok {
				return fmt.Errorf("watch stopped: %v", w.Err())
			}
			if done(docs) {
				return nil
			}
		case <-t.C:
			return fmt.Errorf("%s did not arrive within %v", what, timeout)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// PacedWatch returns the paced latency workload: one writer Puts its row
// p.Writes times at p.Hz, one update per transaction, the value carrying
// the update's sequence number; p.Receivers clients Watch the
// collection. A latency is the time from the start of the Put call to a
// receiver's Watch showing that value; a result that skips values (Watch
// keeps only the newest) counts for the newest one only. One untimed
// write goes first, which every receiver sees: the first change to a
// collection creates its table. It reports p50, p90, p99, p99.9 and max
// in ms, the share of values seen, and the process's CPU per delivery (it
// holds the server, the writer and the receivers).
func PacedWatch(p Paced, d client.Durability) func(B) { return pacedWatch(p, d, nil) }

// pacedWatch is PacedWatch, every part traced into st when st is not nil
// (see PacedStages).
func pacedWatch(p Paced, d client.Durability, st *stageTrace) func(B) {
	return func(b B) {
		ctx := context.Background()
		var lat []time.Duration
		var cpu time.Duration
		seen := 0
		for range b.N() {
			b.StopTimer()
			cfg := client.Config{Durability: d}
			if st != nil {
				cfg.TracerProvider = st.start(p.Writes)
			}
			e := startSync(b, server.Config{TracerProvider: cfg.TracerProvider})
			cs := openClients(b, e, p.Receivers+1, cfg)
			writer, receivers := cs[0], cs[1:]
			sent := make([]atomic.Int64, p.Writes)    // unix ns at the start of each Put
			watched := make([]atomic.Int64, p.Writes) // unix ns when the first receiver's Watch showed it
			var mu sync.Mutex
			var wg sync.WaitGroup
			var failed firstError
			items := writer.Collection(collection)
			watches := make([]*client.Watch, len(receivers))
			for i, r := range receivers {
				w, err := r.Collection(collection).Watch(ctx, client.Query{})
				if err != nil {
					b.Fatal(err)
				}
				<-w.C // the initial, empty result
				watches[i] = w
			}
			// One untimed write first: it creates the collection's table on
			// every replica and prepares the statements that apply and query
			// it, once in a replica's life (49 receivers take ~40 ms over it).
			if err := items.Put(ctx, "w", map[string]any{"seq": -1}); err != nil {
				b.Fatal(err)
			}
			for _, w := range watches {
				first := func(docs []client.Doc) bool { return len(docs) > 0 && string(docs[0].Fields["seq"]) == "-1" }
				if err := waitWatch(ctx, w, time.Minute, "the untimed write", first); err != nil {
					b.Fatal(err)
				}
			}
			for i, w := range watches {
				wg.Add(1)
				go func() {
					defer wg.Done()
					defer w.Close()
					var mine []time.Duration
					timeout := time.NewTimer(time.Minute)
					defer timeout.Stop()
					for got := -1; got < p.Writes-1; {
						select {
						case docs, ok := <-w.C:
							now := time.Now()
							if !ok {
								failed.set(fmt.Errorf("watch stopped: %v", w.Err()))
								return
							}
							if len(docs) == 0 {
								continue
							}
							seq, err := strconv.Atoi(string(docs[0].Fields["seq"]))
							if err != nil || seq <= got || seq >= p.Writes {
								failed.set(fmt.Errorf("watch showed seq %s after %d", docs[0].Fields["seq"], got))
								return
							}
							got = seq
							mine = append(mine, now.Sub(time.Unix(0, sent[seq].Load())))
							if i == 0 {
								watched[seq].Store(now.UnixNano())
							}
							timeout.Reset(time.Minute)
						case <-timeout.C:
							failed.set(fmt.Errorf("no update for a minute after seq %d", got))
							return
						}
					}
					mu.Lock()
					lat = append(lat, mine...)
					mu.Unlock()
				}()
			}
			b.StartTimer()
			cpu0 := processCPU(b)
			tick := time.NewTicker(time.Duration(float64(time.Second) / p.Hz))
			for seq := range p.Writes {
				<-tick.C
				sent[seq].Store(time.Now().UnixNano())
				if err := items.Put(ctx, "w", map[string]any{"seq": seq}); err != nil {
					b.Fatal(err)
				}
			}
			tick.Stop()
			wg.Wait()
			cpu += processCPU(b) - cpu0
			b.StopTimer()
			if err := failed.get(); err != nil {
				b.Fatal(err)
			}
			seen += p.Receivers * p.Writes
			for _, c := range cs {
				c.Close()
			}
			if st != nil {
				if err := st.round(sent, watched); err != nil {
					b.Fatal(err)
				}
			}
			b.StartTimer()
		}
		if len(lat) == 0 {
			b.Fatal("no latency measured")
		}
		reportPercentiles(b, lat)
		if st != nil {
			st.report(b)
		}
		b.ReportMetric(float64(len(lat))/float64(seen), "seen-share")
		// The process holds the server, the writer and every receiver.
		b.ReportMetric(float64(cpu.Microseconds())/float64(seen), "cpu-µs/delivery")
	}
}

// reportPercentiles reports p50, p90, p99, p99.9 and max of lat in ms.
func reportPercentiles(b B, lat []time.Duration) {
	slices.Sort(lat)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	at := func(q float64) time.Duration { return lat[min(len(lat)-1, int(q*float64(len(lat))))] }
	b.ReportMetric(ms(at(0.50)), "p50-ms")
	b.ReportMetric(ms(at(0.90)), "p90-ms")
	b.ReportMetric(ms(at(0.99)), "p99-ms")
	b.ReportMetric(ms(at(0.999)), "p99.9-ms")
	b.ReportMetric(ms(lat[len(lat)-1]), "max-ms")
	b.ReportMetric(float64(len(lat)), "samples")
}
