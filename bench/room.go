package bench

import (
	"context"
	"fmt"
	"sync"
	"time"

	usync "github.com/unosync/uno/sync"
)

// roomPeer runs one peer of a room: it pushes its writes one at a time
// (each after the previous one's Ack) and counts the log entries
// delivered to it, granting a credit per Changes message, until it has
// want of them (the server never delivers a peer its own writes) and
// every write is acknowledged. onDelivery, if set, sees each delivered
// transaction.
func roomPeer(ctx context.Context, p *peer, writes int, pace time.Duration, want int, onDelivery func(usync.Change)) error {
	acks := make(chan struct{}, 1)
	done := make(chan error, 1)
	go func() {
		got, acked, owed := 0, 0, uint32(0)
		for got < want || acked < writes {
			m, err := p.recv(ctx)
			if err != nil {
				done <- err
				return
			}
			switch m := m.(type) {
			case *usync.Ack:
				acked++
				acks <- struct{}{}
			case *usync.Changes:
				got += len(m.Changes)
				if onDelivery != nil {
					for _, ch := range m.Changes {
						onDelivery(ch)
					}
				}
				// Grant credits 4 at a time, as the client does (window 8).
				if owed++; owed >= 4 {
					if err := p.send(ctx, &usync.Credit{N: owed}); err != nil {
						done <- err
						return
					}
					owed = 0
				}
			case *usync.ErrorMessage:
				done <- m.Err()
				return
			}
		}
		done <- nil
	}()
	var tick *time.Ticker
	if pace > 0 {
		tick = time.NewTicker(pace)
		defer tick.Stop()
	}
	for i := range writes {
		if tick != nil {
			<-tick.C
		}
		v := fmt.Appendf(nil, "%d", time.Now().UnixNano())
		if _, err := p.push(ctx, "room", fmt.Sprintf("%x-%d", p.site[:4], i), v); err != nil {
			return err
		}
		select {
		case <-acks:
		case err := <-done:
			if err == nil && i == writes-1 {
				return nil // the last Ack ended the loop with everything in
			}
			return fmt.Errorf("peer stopped before its writes were acknowledged: %v", err)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return <-done
}

// Room is the fan-out benchmark: 50 peers on one collection, 40 writes
// each, every write delivered to the 49 other peers (98,000 deliveries;
// none back to its author). The server
// runs as its own process so its CPU time per delivery can be measured.
// It reports deliveries/s and server µs CPU/delivery.
func Room(b B) { room(50, 40)(b) }

// room returns the room benchmark with peers peers writing writes each.
func room(peers, writes int) func(B) {
	return func(b B) {
		srv := startServerProcess(b)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		var elapsed, cpu time.Duration
		for n := range b.N() {
			b.StopTimer()
			ps := make([]*peer, peers)
			for i := range ps {
				// The log holds the earlier iterations' writes: start after
				// them (from 0 a peer would bootstrap them as a snapshot).
				p, _, err := dialPeerAt(ctx, srv.url, srv.token, 8, uint64(n*peers*writes))
				if err != nil {
					b.Fatal(err)
				}
				ps[i] = p
			}
			cpu0 := srv.cpu(b)
			b.StartTimer()
			start := time.Now()
			var wg sync.WaitGroup
			var failed firstError
			for _, p := range ps {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if err := roomPeer(ctx, p, writes, 0, (peers-1)*writes, nil); err != nil {
						failed.set(err)
					}
				}()
			}
			wg.Wait()
			elapsed += time.Since(start)
			b.StopTimer()
			cpu += srv.cpu(b) - cpu0
			for _, p := range ps {
				p.close()
			}
			if err := failed.get(); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			_ = ctx
		}
		deliveries := float64(b.N() * peers * (peers - 1) * writes)
		b.ReportMetric(deliveries/elapsed.Seconds(), "deliveries/s")
		b.ReportMetric(float64(cpu.Microseconds())/deliveries, "server-µs-cpu/delivery")
	}
}

// PacedLatency is the latency benchmark: one writer at 50 Hz, 49 readers;
// p50 and p99 of the time from a write's push to its delivery at each reader.
func PacedLatency(b B) { pacedLatency(49, 250)(b) } // 5 s at 50 Hz

// pacedLatency returns the latency benchmark with readers readers and
// writes writes at 50 Hz.
func pacedLatency(readers, writes int) func(B) {
	return func(b B) {
		srv := startServerProcess(b)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		var mu sync.Mutex
		var lat []time.Duration
		for n := range b.N() {
			ps := make([]*peer, readers+1)
			for i := range ps {
				p, _, err := dialPeerAt(ctx, srv.url, srv.token, 8, uint64(n*writes)) // after the earlier iterations' writes
				if err != nil {
					b.Fatal(err)
				}
				ps[i] = p
			}
			record := func(ch usync.Change) {
				var sent int64
				fmt.Sscan(string(ch.Tx.Ops[1].Value), &sent)
				mu.Lock()
				lat = append(lat, time.Since(time.Unix(0, sent)))
				mu.Unlock()
			}
			var wg sync.WaitGroup
			var failed firstError
			for i, p := range ps {
				wg.Add(1)
				go func() {
					defer wg.Done()
					n, pace, want, on := 0, time.Duration(0), writes, record
					if i == 0 { // the writer, delivered nothing
						n, pace, want, on = writes, 20*time.Millisecond, 0, nil
					}
					if err := roomPeer(ctx, p, n, pace, want, on); err != nil {
						failed.set(err)
					}
				}()
			}
			wg.Wait()
			for _, p := range ps {
				p.close()
			}
			if err := failed.get(); err != nil {
				b.Fatal(err)
			}
		}
		reportPercentiles(b, lat)
	}
}
