package browser

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// automergeRequests lists the Automerge files the profile's pages and
// workers requested so far.
func (b *browser) automergeRequests(name string) []string {
	b.t.Helper()
	var all, out []string
	if err := json.Unmarshal(b.do(map[string]any{"cmd": "requests", "profile": name}), &all); err != nil {
		b.t.Fatal(err)
	}
	for _, u := range all {
		if strings.Contains(u, "/automerge/") {
			out = append(out, u)
		}
	}
	return out
}

// A page that uses no doc field downloads nothing of Automerge; the first
// use loads the files build.sh copied (ES modules and automerge.wasm),
// once, inside the worker the client runs in, and they work. The page's
// thread loads neither uno.wasm nor Automerge.
func TestBrowser_AutomergeOnDemand(t *testing.T) {
	addr := freeAddr(t)
	startServe(t, addr, t.TempDir())
	b := newBrowser(t)
	b.launch("p", filepath.Join(t.TempDir(), "p"))
	b.open("p", fmt.Sprintf("http://%s/#db=lazy", addr))
	b.eval("p", `uno.collection('things').put('a', {title: 'no doc fields here'})`, nil)
	if got := b.automergeRequests("p"); len(got) != 0 {
		t.Errorf("Automerge files downloaded before any doc field was used: %v", got)
	}
	var report struct {
		Text               string
		PageGo, PageLoader bool
	}
	b.eval("p", `(async () => {
		const c = uno.collection('things');
		await c.splice('a', 'body', 'text', 0, 0, 'loaded');
		await c.splice('b', 'body', 'text', 0, 0, 'again');
		return {text: await c.text('a', 'body', 'text'), pageGo: globalThis.__uno !== undefined, pageLoader: globalThis.__unoLoadAutomerge !== undefined};
	})()`, &report)
	wasm := 0
	after := b.automergeRequests("p")
	for _, f := range after {
		if filepath.Ext(f) == ".wasm" {
			wasm++
		}
	}
	if wasm != 1 {
		t.Errorf("after using doc fields the worker fetched %v: want automerge.wasm once", after)
	}
	if report.Text != "loaded" {
		t.Errorf("the doc field's text is %q, want %q", report.Text, "loaded")
	}
	if report.PageGo || report.PageLoader {
		t.Errorf("the page's thread has the client (%v) or the Automerge loader (%v): want both in the worker", report.PageGo, report.PageLoader)
	}
}

// On the page's thread (open({worker: false}) and what a page without
// workers gets), useAutomerge's loader loads the same files, once, and
// they work.
func TestBrowser_AutomergeOnPage(t *testing.T) {
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
		const { useAutomerge } = await import('./uno/uno.js');
		useAutomerge();
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
		t.Errorf("Automerge files downloaded before the loader was called: %v", report.Before)
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
