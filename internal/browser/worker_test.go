package browser

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// pageGaps is JavaScript that runs its argument (an async function) while a
// setInterval loop on the page ticks, and returns how long the function
// took and the longest time the loop went without a tick (ms).
const pageGaps = `async (fn) => {
	let last = performance.now(), longest = 0, ticks = 0;
	const tick = () => { const now = performance.now(); longest = Math.max(longest, now - last); last = now; ticks++; };
	const timer = setInterval(tick, 1);
	const t0 = performance.now();
	await fn();
	const took = performance.now() - t0;
	clearInterval(timer);
	tick();
	return {took, longest, ticks};
}`

// writeRows is JavaScript writing 10,000 rows to db as
// BenchmarkBrowserLocalWrites does: 10 transactions of 1,000 rows.
const writeRows = `async (db, prefix) => {
	for (let t = 0; t < 10; t++) {
		const tx = db.transaction();
		for (let i = 0; i < 1000; i++) tx.put('bench', prefix + t + '-' + i, {title: 'row ' + i, done: false, rank: i, note: Math.random().toString(36)});
		await tx.commit();
	}
}`

// The client runs in a Web Worker, so the page's thread stays free: while
// the page writes 10,000 rows, a timer loop on the page keeps ticking. The
// same writes with the client on the page's thread (open({worker:
// false})) are the control: there the loop stops for as long as the
// client computes a transaction, which shows the measurement sees a
// blocked thread. The bound is derived from the run itself: the longest
// gap in the worker must be a small share of the writes' duration and
// well below the control's.
func TestBrowser_PageStaysFree(t *testing.T) {
	addr := freeAddr(t)
	startServe(t, addr, t.TempDir())
	b := newBrowser(t)
	b.launch("p", filepath.Join(t.TempDir(), "p"))
	b.open("p", fmt.Sprintf("http://%s/#db=free", addr))
	type gaps struct{ Took, Longest, Ticks float64 }
	var r struct {
		PageGo         bool
		Worker, OnPage gaps
	}
	v := b.do(map[string]any{"cmd": "eval", "profile": "p", "timeout": 4 * b.step(), "js": fmt.Sprintf(`(async () => {
		const gaps = %s, writeRows = %s;
		const pageGo = globalThis.__uno !== undefined;
		const worker = await gaps(() => writeRows(uno, 'w'));
		const { open } = await import('./uno/uno.js');
		const db = await open({name: 'free-page', worker: false});
		const onPage = await gaps(() => writeRows(db, 'p'));
		await db.close();
		return {pageGo, worker, onPage};
	})()`, pageGaps, writeRows)})
	if err := json.Unmarshal(v, &r); err != nil {
		t.Fatal(err)
	}
	t.Logf("10,000 rows in the worker: %.0f ms, the page's longest gap %.1f ms (%.0f ticks); on the page's thread: %.0f ms, longest gap %.1f ms (%.0f ticks)",
		r.Worker.Took, r.Worker.Longest, r.Worker.Ticks, r.OnPage.Took, r.OnPage.Longest, r.OnPage.Ticks)
	if r.PageGo {
		t.Error("the client (globalThis.__uno) runs on the page's thread: want it in the worker")
	}
	if r.Worker.Longest > r.Worker.Took/10 {
		t.Errorf("with the client in the worker the page went %.1f ms without a tick while writing for %.0f ms: want under a tenth", r.Worker.Longest, r.Worker.Took)
	}
	if r.Worker.Longest*2 > r.OnPage.Longest {
		t.Errorf("the control did not block the page: on the page's thread the longest gap was %.1f ms, in the worker %.1f ms", r.OnPage.Longest, r.Worker.Longest)
	}
}

// What crosses between the page and the worker as functions works: a
// token function (the worker asks the page at each connection) and a
// throwing one (the connection fails with its message, the page keeps
// working). When no worker can be started the client runs on the page's
// thread, unless open was told worker: true.
func TestBrowser_WorkerTokenAndFallback(t *testing.T) {
	addr := freeAddr(t)
	srv := startServe(t, addr, t.TempDir())
	b := newBrowser(t)
	b.launch("p", filepath.Join(t.TempDir(), "p"))
	b.open("p", fmt.Sprintf("http://%s/#db=fallback", addr))
	var r struct {
		Synced, Asked   float64
		Rows            []string
		Fallback        bool
		PageGo          bool
		Forced          float64
		FallbackMessage string
	}
	b.eval("p", fmt.Sprintf(`(async () => {
		const r = {asked: 0};
		const { open } = await import('./uno/uno.js');
		const db = await open({name: 'token-fn', server: 'ws://%s/v1/sync', manualSync: true, worker: true,
			token: async () => { r.asked++; await new Promise(res => setTimeout(res, 10)); return %q; }});
		await db.collection('things').put('t', {by: 'token function'});
		await db.sync();
		r.synced = await db.pending();
		await db.close();
		// A fresh copy of the module (its own worker state), on a page
		// whose Worker constructor throws.
		const W = globalThis.Worker;
		globalThis.Worker = function () { throw new Error('workers are blocked here'); };
		try {
			const m = await import('./uno/uno.js?no-worker');
			try { await m.open({name: 'forced', worker: true}); r.forced = 0; } catch (e) { r.forced = e.code; r.fallbackMessage = e.message; }
			const fb = await m.open({name: 'fallback-page'});
			await fb.collection('things').put('a', {n: 1});
			r.rows = (await fb.collection('things').find()).map(x => x.id);
			r.pageGo = globalThis.__uno !== undefined;
			await fb.close();
		} finally {
			globalThis.Worker = W;
		}
		return r;
	})()`, addr, srv.token), &r)
	if r.Synced != 0 || r.Asked < 1 {
		t.Errorf("with a token function: %v pending after sync (want 0), the function was asked %v times", r.Synced, r.Asked)
	}
	if r.Forced != 2099 {
		t.Errorf("open({worker: true}) without workers: code %v (%s), want 2099", r.Forced, r.FallbackMessage)
	}
	if !r.PageGo || fmt.Sprint(r.Rows) != "[a]" {
		t.Errorf("the fallback: client on the page %v, rows %v", r.PageGo, r.Rows)
	}
}

// The core download (what every page loads: uno.wasm, Go's loader,
// uno.js, the worker's script and SQLite: uno-sqlite.mjs and sqlite3/)
// stays within 6 MB gzipped.
func TestBrowser_DownloadSize(t *testing.T) {
	const budget = 6_000_000
	total := coreDownload(t)
	t.Logf("core download: %d bytes gzipped (budget %d)", total, budget)
	if total > budget {
		t.Errorf("the core download is %d bytes gzipped, over the %d budget", total, budget)
	}
}

// coreDownload returns the core download's size, gzipped (as uno serve
// --web sends it), logging each file's.
func coreDownload(t testing.TB) int {
	t.Helper()
	total := 0
	for _, f := range []string{"uno.wasm", "wasm_exec.js", "uno.js", "uno-worker.js", "uno-sqlite.mjs", "sqlite3/index.mjs", "sqlite3/sqlite3.wasm"} {
		raw, err := os.ReadFile(filepath.Join(built.web, "uno", f))
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		zw.Write(raw)
		zw.Close()
		t.Logf("%-20s %9d bytes raw %9d gzipped", f, len(raw), buf.Len())
		total += buf.Len()
	}
	return total
}
