package browser

import (
	"fmt"
	"path/filepath"
	"testing"
)

// A page that uses no doc field downloads nothing of Automerge; the first
// use loads the files build.sh copied (ES modules and automerge.wasm),
// once, and they work.
func TestBrowser_AutomergeOnDemand(t *testing.T) {
	addr := freeAddr(t)
	startServe(t, addr, t.TempDir())
	b := newBrowser(t)
	b.launch("p", filepath.Join(t.TempDir(), "p"))
	b.open("p", fmt.Sprintf("http://%s/#db=lazy", addr))
	var report struct {
		Before, After []string
		Same          bool
		Value         string
		Heads         int
	}
	b.eval("p", `(async () => {
		const automergeFiles = () => performance.getEntriesByType('resource').map(e => e.name).filter(n => n.includes('/automerge/'));
		await uno.collection('things').put('a', {title: 'no doc fields here'});
		const before = automergeFiles();
		const am = await globalThis.__unoLoadAutomerge();
		const same = am === await globalThis.__unoLoadAutomerge();
		const h = am.getBackend(am.init({actor: '0a000000000000000000000000000000'}));
		h.put('_root', 'title', 'loaded', 'str');
		h.commit(null, 1);
		const r = {before, after: automergeFiles(), same, value: h.get('_root', 'title'), heads: h.getHeads().length};
		h.free();
		return r;
	})()`, &report)
	if len(report.Before) != 0 {
		t.Errorf("Automerge files downloaded before any doc field was used: %v", report.Before)
	}
	wasm := 0
	for _, f := range report.After {
		if filepath.Ext(f) == ".wasm" {
			wasm++
		}
	}
	if wasm != 1 {
		t.Errorf("after loading Automerge the page fetched %v: want automerge.wasm once", report.After)
	}
	if !report.Same || report.Value != "loaded" || report.Heads != 1 {
		t.Errorf("Automerge in the page: same module %v, value %q, %d heads; want true, %q, 1", report.Same, report.Value, report.Heads, "loaded")
	}
}
