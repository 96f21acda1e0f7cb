package bench

import (
	"context"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/unosync/uno/client"
	"github.com/unosync/uno/server"
	"github.com/unosync/uno/server/sqlitelog"
	"github.com/unosync/uno/tenancy"
)

// syncEnv is an in-process server (the embedded SQLite log, durable
// commits) on a real loopback socket.
type syncEnv struct {
	url   string
	token string
	log   *sqlitelog.Log
}

func startSync(b B, cfg server.Config) *syncEnv {
	b.Helper()
	l, err := sqlitelog.Open(context.Background(), filepath.Join(b.TempDir(), "server.db"), nil)
	if err != nil {
		b.Fatal(err)
	}
	auth, err := tenancy.NewDevAuth("bench")
	if err != nil {
		b.Fatal(err)
	}
	cfg.Log, cfg.Auth = l, auth
	srv, err := server.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	b.Cleanup(func() { hs.Close(); srv.Close(); l.Close() })
	return &syncEnv{url: "ws" + strings.TrimPrefix(hs.URL, "http") + "/v1/sync", token: auth.Token, log: l}
}

func (e *syncEnv) client(b B, name string, cfg client.Config) *client.Client {
	b.Helper()
	cfg.Path = filepath.Join(b.TempDir(), name+".db")
	cfg.Server, cfg.Token = e.url, e.token
	c, err := client.Open(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return c
}

// SyncUpdates is the end-to-end write benchmark: two clients each write
// 10,000 field updates (100 transactions of 100 updates, at
// synchronous=FULL) while syncing in the background through the server;
// an iteration ends when both hold all 20,000 updates and the server has
// acknowledged all of them. It reports updates/s.
func SyncUpdates(b B) {
	const perClient, perTx = 10_000, 100
	ctx := context.Background()
	var total time.Duration
	for n := range b.N() {
		b.StopTimer()
		e := startSync(b, server.Config{})
		cs := []*client.Client{e.client(b, fmt.Sprint("a", n), client.Config{}), e.client(b, fmt.Sprint("b", n), client.Config{})}
		b.StartTimer()
		start := time.Now()
		var wg sync.WaitGroup
		errs := make(chan error, len(cs))
		for i, c := range cs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for t := 0; t < perClient/perTx; t++ {
					err := c.Tx(ctx, func(tx *client.Tx) error {
						for u := range perTx {
							if err := tx.Put("items", fmt.Sprintf("c%d-%d", i, t*perTx+u), map[string]any{"n": u}); err != nil {
								return err
							}
						}
						return nil
					})
					if err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			b.Fatal(err)
		}
		// Both converge: everything acknowledged, everything received.
		for range 2 {
			for _, c := range cs {
				sctx, cancel := context.WithTimeout(ctx, time.Minute)
				if err := c.Sync(sctx); err != nil {
					b.Fatal(err)
				}
				cancel()
			}
		}
		total += time.Since(start)
		b.StopTimer()
		for _, c := range cs {
			c.Close()
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(b.N()*2*perClient)/total.Seconds(), "updates/s")
}
