package client_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/unosync/uno/client"
)

// Many goroutines write through one client while a watch runs and readers
// query. Run with -race.
func TestClient_Concurrent(t *testing.T) {
	const (
		writers = 8
		perG    = 50
	)
	ctx := context.Background()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			cfg := client.Config{}
			if b.name == "sqlite" {
				cfg.Synchronous = "NORMAL" // durability is not what this test is about
			}
			c := open(t, b, cfg)
			w, err := c.Collection("shared").Watch(ctx, client.Query{OrderBy: "id"})
			must(t, err)

			// The watcher checks every result and keeps the latest.
			var (
				mu      sync.Mutex
				last    []string
				changed = make(chan struct{}, 1)
			)
			var watcher sync.WaitGroup
			defer func() { w.Close(); watcher.Wait() }() // even when the test fails early
			watcher.Go(func() {
				for docs := range w.C {
					checkPairs(t, "watch", docs)
					mu.Lock()
					last = render(docs)
					mu.Unlock()
					select {
					case changed <- struct{}{}:
					default:
					}
				}
			})
			done := make(chan struct{})
			var readers sync.WaitGroup
			for range 2 {
				readers.Go(func() {
					for {
						select {
						case <-done:
							return
						default:
						}
						docs, err := c.Collection("shared").Find(ctx, client.Query{})
						if err != nil {
							t.Errorf("Find: %v", err)
							return
						}
						checkPairs(t, "find", docs)
					}
				})
			}

			var sums, txs [writers]int64
			var writersWG sync.WaitGroup
			for g := range writers {
				writersWG.Go(func() {
					col := c.Collection("shared")
					for i := range perG {
						var err error
						switch i % 3 {
						case 0: // a one-op write to a shared row
							d := int64(g*perG + i)
							if i%2 == 1 {
								d = -d
							}
							if err = col.Increment(ctx, "counter", "n", d); err == nil {
								sums[g] += d
								txs[g]++
							}
						case 1: // puts to a shared row and to a row of its own
							if err = col.Put(ctx, "last", map[string]any{"by": g, "i": i}); err == nil {
								txs[g]++
								if err = col.Put(ctx, "g"+strconv.Itoa(g), map[string]any{"i": i}); err == nil {
									txs[g]++
								}
							}
						case 2: // an increment and two rows that must agree, in one transaction
							err = c.Tx(ctx, func(tx *client.Tx) error {
								v := fmt.Sprintf("%d-%d", g, i)
								if err := tx.Increment("shared", "counter", "n", 1); err != nil {
									return err
								}
								if err := tx.Put("shared", "pair_a", map[string]any{"v": v}); err != nil {
									return err
								}
								return tx.Put("shared", "pair_b", map[string]any{"v": v})
							})
							if err == nil {
								sums[g]++
								txs[g]++
							}
						}
						if err != nil {
							t.Errorf("writer %d op %d: %v", g, i, err)
							return
						}
					}
				})
			}
			writersWG.Wait()
			close(done)
			readers.Wait()

			var sum, n int64
			for g := range writers {
				sum += sums[g]
				n += txs[g]
			}
			if got := fields(get(t, c, "shared", "counter"))["n"]; got != strconv.FormatInt(sum, 10) {
				t.Errorf("counter = %s, want %d", got, sum)
			}
			if got := pending(t, c); int64(got) != n {
				t.Errorf("Pending = %d, want %d (one per transaction)", got, n)
			}
			for g := range writers {
				if got := fields(get(t, c, "shared", "g"+strconv.Itoa(g)))["i"]; got != strconv.Itoa(perG-1) {
					t.Errorf("g%d.i = %s, want its last put %d", g, got, perG-1)
				}
			}

			// Once writes stop, the watch settles on what Find shows.
			want := render(find(t, c, "shared", client.Query{OrderBy: "id"}))
			deadline := time.After(wait)
			for {
				mu.Lock()
				got := last
				mu.Unlock()
				if cmp.Equal(want, got) {
					break
				}
				select {
				case <-changed:
				case <-deadline:
					t.Fatalf("the watch did not settle on the final result (-want +last):\n%s", cmp.Diff(want, got))
				}
			}
		})
	}
}

// checkPairs reports a result showing pair_a and pair_b disagreeing: they
// are always written in one transaction.
func checkPairs(t *testing.T, who string, docs []client.Doc) {
	var a, b string
	for _, d := range docs {
		switch d.ID {
		case "pair_a":
			a = string(d.Fields["v"])
		case "pair_b":
			b = string(d.Fields["v"])
		}
	}
	if a != b {
		t.Errorf("%s saw half a transaction: pair_a %s, pair_b %s", who, a, b)
	}
}
