package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/unosync/uno/client"
)

// writer is a background-syncing client that writes until stopped.
type writer struct {
	c       *client.Client
	written atomic.Int64 // transactions committed locally
}

// acked returns a lower bound of the sequence number the server has
// acknowledged: the first outbox entry's predecessor, or everything
// written (read first) when the outbox is empty.
func (w *writer) acked(t *testing.T) uint64 {
	t.Helper()
	written := uint64(w.written.Load())
	box, err := w.c.Outbox(context.Background(), 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(box) > 0 {
		return box[0].Seq - 1
	}
	return written
}

// startWriters opens n clients of the server at url and has each commit
// transactions in a loop: write(c, i, k) makes client i's k-th round and
// returns how many transactions it committed. stop ends the loops and
// waits for them.
func startWriters(t *testing.T, n int, cfg client.Config, pause time.Duration, write func(c *client.Client, i, k int) (int, error)) (ws []*writer, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ws = make([]*writer, n)
	for i := range ws {
		c := cfg
		c.Path = filepath.Join(t.TempDir(), fmt.Sprintf("c%d.db", i))
		cl, err := client.Open(context.Background(), c)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cl.Close() })
		ws[i] = &writer{c: cl}
	}
	var wg sync.WaitGroup
	for i, w := range ws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; ctx.Err() == nil; k++ {
				done, err := write(w.c, i, k)
				w.written.Add(int64(done))
				if err != nil {
					t.Error(err)
					return
				}
				time.Sleep(pause)
			}
		}()
	}
	return ws, func() { cancel(); wg.Wait() }
}
