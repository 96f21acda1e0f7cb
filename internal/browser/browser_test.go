package browser

import (
	"context"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/unosync/uno/client"
)

// Two browser profiles edit the same todos while the server is down (the
// offline banner shows), then the server comes back: both converge to the
// same state, and a native Go client agrees (canonical hashes).
func TestBrowser_OfflineEditsConverge(t *testing.T) {
	ctx := context.Background()
	addr, data := freeAddr(t), t.TempDir()
	srv := startServe(t, addr, data)
	b := newBrowser(t)
	for _, p := range []string{"a", "b"} {
		b.launch(p, filepath.Join(t.TempDir(), p))
		b.open(p, srv.url("todos"))
		b.waitFor(p, upToDate)
	}
	b.addTodo("a", "buy milk")
	b.addTodo("a", "walk the dog")
	b.waitFor("b", `document.querySelectorAll('#list li').length === 2`)
	b.screenshot("a", "offline-1-synced.png")

	srv.stop()
	for _, p := range []string{"a", "b"} {
		b.waitFor(p, `!document.getElementById('offline').hidden`)
	}
	b.screenshot("a", "offline-2-banner.png")
	// Concurrent offline edits: a ticks the first todo and adds one; b
	// deletes the second and adds another.
	b.eval("a", `document.querySelector('#list li input').click()`, nil)
	b.addTodo("a", "from a, offline")
	b.eval("b", `document.querySelectorAll('#list li button')[1].click()`, nil)
	b.addTodo("b", "from b, offline")
	b.waitFor("a", `document.getElementById('pending').textContent !== '0 pending'`)

	srv = startServe(t, addr, data)
	for _, p := range []string{"a", "b"} {
		b.waitFor(p, upToDate+` && document.getElementById('offline').hidden`)
	}
	// Each has the other's writes: 3 todos, the first done.
	for _, p := range []string{"a", "b"} {
		b.waitFor(p, `document.querySelectorAll('#list li').length === 3 && document.querySelector('#list li').classList.contains('done')`)
	}
	b.screenshot("b", "offline-3-converged.png")
	var ha, hb string
	b.eval("a", `uno.hash()`, &ha)
	b.eval("b", `uno.hash()`, &hb)
	if ha != hb {
		t.Fatalf("the browsers differ: %s vs %s", ha, hb)
	}
	if got := b.titles("a"); !slices.Equal(got, b.titles("b")) {
		t.Fatalf("lists differ: %v vs %v", got, b.titles("b"))
	}
	native, err := client.Open(ctx, client.Config{Path: filepath.Join(t.TempDir(), "native.db"), Server: "ws://" + addr + "/v1/sync", Token: srv.token, ManualSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer native.Close()
	sctx, cancel := context.WithTimeout(ctx, b.step())
	defer cancel()
	if err := native.Sync(sctx); err != nil {
		t.Fatal(err)
	}
	h, err := native.Hash(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(h[:]); got != ha {
		t.Fatalf("the native client's hash %s differs from the browsers' %s", got, ha)
	}
}

// A committed write survives a reload, a crash of the tab, a restart of
// the browser with the same profile and a SIGKILL of the whole browser (no
// server: the database is local).
func TestBrowser_Persistence(t *testing.T) {
	addr := freeAddr(t)
	srv := startServe(t, addr, t.TempDir())
	b := newBrowser(t)
	dir := filepath.Join(t.TempDir(), "p")
	b.launch("p", dir)
	local := fmt.Sprintf("http://%s/#db=local", addr) // no token: no sync
	b.open("p", local)
	b.addTodo("p", "survives a reload")
	b.page(map[string]any{"cmd": "reload", "profile": "p", "ready": appReady})
	b.waitFor("p", `document.querySelectorAll('#list li').length === 1`)

	b.addTodo("p", "survives a tab crash")
	b.do(map[string]any{"cmd": "crash", "profile": "p"})
	b.page(map[string]any{"cmd": "newPage", "profile": "p", "url": local, "ready": appReady})
	b.waitFor("p", `document.querySelectorAll('#list li').length === 2`)

	b.addTodo("p", "survives a browser restart")
	b.do(map[string]any{"cmd": "close", "profile": "p"})
	b.launch("p", dir)
	b.open("p", local)
	b.waitFor("p", `document.querySelectorAll('#list li').length === 3`)

	// And a browser killed (SIGKILL, every process of the profile) right
	// after the write returned.
	b.addTodo("p", "survives a browser kill")
	if n := killProfile(t, dir); n == 0 {
		t.Fatal("no browser process of the profile to kill")
	}
	b.do(map[string]any{"cmd": "forget", "profile": "p"})
	b.launch("p", dir)
	b.open("p", local)
	b.waitFor("p", `document.querySelectorAll('#list li').length === 4`)
	if got := b.titles("p"); !slices.Equal(got, []string{"survives a reload", "survives a tab crash", "survives a browser restart", "survives a browser kill"}) {
		t.Fatalf("after the restarts: %v", got)
	}
	b.screenshot("p", "persistence.png")
	_ = srv
}

// One tab owns a database (Web Locks): without a server a second tab gets
// a clear error (code 2010); with one, the app gives the second tab a
// replica of its own and each tab shows the other's writes live. A watch
// callback fires for a change made elsewhere.
func TestBrowser_TwoTabsAndRemoteWatch(t *testing.T) {
	ctx := context.Background()
	addr := freeAddr(t)
	srv := startServe(t, addr, t.TempDir())
	b := newBrowser(t)
	b.launch("p", filepath.Join(t.TempDir(), "p"))
	local := fmt.Sprintf("http://%s/#db=alone", addr)
	b.open("p", local)
	b.page(map[string]any{"cmd": "newPage", "profile": "p", "url": local, "ready": `document.getElementById('error').hidden === false`})
	var msg string
	b.eval("p", `document.getElementById('error').textContent`, &msg)
	if want := "(code 2010)"; !strings.HasSuffix(msg, want) {
		t.Fatalf("second tab without a server: %q, want an error with code 2010", msg)
	}
	b.do(map[string]any{"cmd": "close", "profile": "p"})

	// With the server: two tabs, one database name.
	b.launch("tabs", filepath.Join(t.TempDir(), "tabs"))
	b.open("tabs", srv.url("tabs"))
	b.waitFor("tabs", upToDate)
	b.addTodo("tabs", "from the first tab")
	b.page(map[string]any{"cmd": "newPage", "profile": "tabs", "url": srv.url("tabs"), "ready": appReady})
	b.waitFor("tabs", `!document.getElementById('tabnote').hidden && document.querySelectorAll('#list li').length === 1`)
	b.addTodo("tabs", "from the second tab")
	b.screenshot("tabs", "second-tab.png")
	b.do(map[string]any{"cmd": "switchPage", "profile": "tabs", "index": 0})
	b.waitFor("tabs", `document.querySelectorAll('#list li').length === 2`)
	b.do(map[string]any{"cmd": "close", "profile": "tabs"})

	// A native client writes; a page's watch callback sees it.
	native, err := client.Open(ctx, client.Config{Path: filepath.Join(t.TempDir(), "native.db"), Server: "ws://" + addr + "/v1/sync", Token: srv.token})
	if err != nil {
		t.Fatal(err)
	}
	defer native.Close()
	if err := native.Collection("todos").Put(ctx, "remote", map[string]any{"title": "written natively", "done": false, "created": 1}); err != nil {
		t.Fatal(err)
	}
	b.launch("p", filepath.Join(t.TempDir(), "p2"))
	b.open("p", srv.url("watch"))
	b.eval("p", `(() => { window.seen = []; uno.collection('todos').watch({}, rows => window.seen.push(rows.map(r => r.title))); })()`, nil)
	if err := native.Collection("todos").Put(ctx, "remote2", map[string]any{"title": "second remote write", "done": false, "created": 2}); err != nil {
		t.Fatal(err)
	}
	b.waitFor("p", `window.seen.some(ts => ts.includes('second remote write'))`)
}
