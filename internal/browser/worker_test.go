package browser

import (
	"encoding/json"
	"fmt"
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
