package browser

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/unosync/uno/client"
)

// The browser benchmarks run the client in Chromium; each reports what the
// page measured itself (performance.now), not the driver's round trips:
//
//	go test ./internal/browser -run '^$' -bench . -benchtime 3x

// BenchmarkBrowserDownload reports the core download every page loads
// (uno.wasm, Go's loader, uno.js, the worker's script and SQLite),
// gzipped as uno serve --web sends it.
func BenchmarkBrowserDownload(b *testing.B) {
	total := 0
	for range b.N {
		total = coreDownload(b)
	}
	b.ReportMetric(float64(total), "gzip-bytes")
}

// BenchmarkBrowserFirstPage is the time from navigation to a usable
// database (uno.wasm fetched, compiled and started; the database opened)
// in a fresh profile.
func BenchmarkBrowserFirstPage(b *testing.B) {
	addr := freeAddr(b)
	startServe(b, addr, b.TempDir())
	br := newBrowser(b)
	var total float64
	for n := range b.N {
		name := fmt.Sprint("p", n)
		br.launch(name, filepath.Join(b.TempDir(), name))
		br.open(name, fmt.Sprintf("http://%s/#db=first", addr))
		var ms float64
		br.eval(name, `window.unoReadyAt`, &ms)
		total += ms
		br.do(map[string]any{"cmd": "close", "profile": name})
	}
	b.ReportMetric(total/float64(b.N), "ms-to-usable")
}

// BenchmarkBrowserLocalWrites is local batched writes: 10 transactions of
// 1,000 rows (4 fields each), committed to IndexedDB, in rows/s, through
// the example app's database: the client in uno.js's Web Worker. The
// browser is fresh, so its first 10,000 rows include V8 compiling the
// hot parts of uno.wasm with its optimising tier, and run several times
// slower than later ones: they are reported apart, as cold-rows/s, and
// rows/s is the rows after them (with -benchtime 1x, it is the cold
// figure). A returning visitor's page does not start that cold:
// Chromium keeps the optimised code of a module it compiled in its cache,
// so after the rounds the page is reloaded and writes another 10,000
// rows, reported as revisit-rows/s. The same workload natively is
// BenchmarkNativeLocalWrites.
func BenchmarkBrowserLocalWrites(b *testing.B) {
	addr := freeAddr(b)
	startServe(b, addr, b.TempDir())
	br := newBrowser(b)
	br.launch("p", filepath.Join(b.TempDir(), "p"))
	br.open("p", fmt.Sprintf("http://%s/#db=writes", addr))
	write := func(prefix string) (ms float64) {
		br.eval("p", fmt.Sprintf(`(async () => {
			const t0 = performance.now();
			for (let t = 0; t < 10; t++) {
				const tx = uno.transaction();
				for (let i = 0; i < 1000; i++) tx.put('bench', '%s-' + t + '-' + i, {title: 'row ' + i, done: false, rank: i, note: Math.random().toString(36)});
				await tx.commit();
			}
			return performance.now() - t0;
		})()`, prefix), &ms)
		return ms
	}
	var total, cold float64
	for n := range b.N {
		ms := write(fmt.Sprint("r", n))
		if n == 0 {
			cold = ms
			continue
		}
		total += ms
	}
	b.ReportMetric(10_000/(cold/1000), "cold-rows/s")
	if b.N == 1 {
		total = cold
	}
	b.ReportMetric(float64(max(b.N-1, 1)*10_000)/(total/1000), "rows/s")
	b.StopTimer()
	br.page(map[string]any{"cmd": "reload", "profile": "p", "ready": appReady})
	b.ReportMetric(10_000/(write("v")/1000), "revisit-rows/s")
}

// BenchmarkNativeLocalWrites is BenchmarkBrowserLocalWrites's workload on
// the native client (modernc SQLite on disk, synchronous=FULL).
func BenchmarkNativeLocalWrites(b *testing.B) {
	ctx := context.Background()
	c, err := client.Open(ctx, client.Config{Path: filepath.Join(b.TempDir(), "native.db")})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	for n := range b.N {
		for t := range 10 {
			err := c.Tx(ctx, func(tx *client.Tx) error {
				for i := range 1000 {
					if err := tx.Put("bench", fmt.Sprintf("r%d-%d-%d", n, t, i), map[string]any{"title": fmt.Sprint("row ", i), "done": false, "rank": i, "note": fmt.Sprint(i * 7919)}); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.N*10_000)/time.Since(start).Seconds(), "rows/s")
}

// BenchmarkBrowserSync10k is the time to sync 10,000 rows into a fresh
// browser: from navigation until the page's database is up to date with
// all of them (target ≤ 5 s). The rows are in a collection the app does
// not list, so the page's rendering is not counted.
func BenchmarkBrowserSync10k(b *testing.B) {
	const rows = 10_000
	ctx := context.Background()
	addr := freeAddr(b)
	srv := startServe(b, addr, b.TempDir())
	seed, err := client.Open(ctx, client.Config{Path: filepath.Join(b.TempDir(), "seed.db"), Server: "ws://" + addr + "/v1/sync", Token: srv.token, ManualSync: true})
	if err != nil {
		b.Fatal(err)
	}
	defer seed.Close()
	for t := range rows / 1000 {
		err := seed.Tx(ctx, func(tx *client.Tx) error {
			for i := range 1000 {
				if err := tx.Put("items", fmt.Sprintf("t%05d", t*1000+i), map[string]any{"title": fmt.Sprint("item ", t*1000+i), "done": i%3 == 0, "created": t*1000 + i}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	sctx, cancel := context.WithTimeout(ctx, run.deadline(b, 5*time.Second))
	defer cancel()
	if err := seed.Sync(sctx); err != nil {
		b.Fatal(err)
	}
	br := newBrowser(b)
	var total float64
	for n := range b.N {
		name := fmt.Sprint("p", n)
		br.launch(name, filepath.Join(b.TempDir(), name))
		br.open(name, srv.url(fmt.Sprint("sync", n)))
		// Poll in the page, recording when the database became up to date.
		var ms float64
		v := br.do(map[string]any{"cmd": "eval", "profile": name, "timeout": run.deadline(b, 5*time.Second), "js": `new Promise((resolve) => {
			const check = () => {
				const s = window.unoStatus;
				if (s && s.state === 'upToDate' && s.bootstrap.Done) resolve(performance.now());
				else setTimeout(check, 5);
			};
			check();
		})`})
		if err := json.Unmarshal(v, &ms); err != nil {
			b.Fatal(err)
		}
		var n int
		br.eval(name, `uno.collection('items').find().then(rs => rs.length)`, &n)
		if n != rows {
			b.Fatalf("the browser holds %d rows, want %d", n, rows)
		}
		total += ms
		br.do(map[string]any{"cmd": "close", "profile": name})
	}
	b.ReportMetric(total/float64(b.N)/1000, "s-to-synced")
}
