package browser

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
)

// Every method of the JavaScript API works in Chromium, and errors are
// UnoError objects (instances of Error) carrying their numeric codes.
func TestBrowser_API(t *testing.T) {
	addr := freeAddr(t)
	startServe(t, addr, t.TempDir())
	b := newBrowser(t)
	b.launch("p", filepath.Join(t.TempDir(), "p"))
	b.open("p", fmt.Sprintf("http://%s/#db=api", addr))
	var report map[string]any
	b.eval("p", `(async () => {
		const r = {};
		const c = uno.collection('things');
		await c.put('a', {title: 'A', n: 1});
		await c.patch('a', {title: 'A2'});
		await c.increment('a', 'votes', 5);
		await c.increment('a', 'votes', -2);
		await c.add('a', 'tags', 'x');
		await c.add('a', 'tags', 'y');
		await c.remove('a', 'tags', 'x');
		const a = await c.get('a');
		r.a = a;
		await uno.transaction().put('things', 'b', {title: 'B', n: 2}).put('things', 'c', {title: 'C', n: 3}).delete('things', 'c').commit();
		r.found = (await c.find({where: [['n', '>=', 1]], orderBy: 'n', desc: true})).map(x => x.id);
		r.limited = (await c.find({orderBy: 'id', limit: 1})).map(x => x.id);
		try { await c.get('missing'); } catch (e) { r.notFound = {isError: e instanceof Error, name: e.name, code: e.code}; }
		try { await uno.collection('bad name!').put('x', {}); } catch (e) { r.badName = e.code; }
		try { await c.put('', {}); } catch (e) { r.badID = e.code; }
		// A row over the 2 MiB any message carries, of values each under 1 MiB.
		try { await c.put('big', {a: 'x'.repeat(900000), b: 'y'.repeat(900000), c: 'z'.repeat(900000)}); } catch (e) { r.tooLarge = e.code; }
		try { await uno.transaction().put('things', 'd', {t: 1}).increment('things', 'a', 'title', 1).commit(); } catch (e) { r.kind = e.code; }
		try { await c.get('d'); r.atomic = false; } catch (e) { r.atomic = e.code === 2008; }
		try { await uno.sync(); } catch (e) { r.noServer = e.code; }
		r.pending = await uno.pending(); // 7 single writes and a transaction
		r.status = (await uno.status()).state;
		r.hash = (await uno.hash()).length;
		r.conflicts = Array.isArray(await uno.conflicts());
		r.rejections = Array.isArray(await uno.rejections());
		let seen = 0;
		const stop = c.watch({}, () => { seen++; });
		await new Promise(res => setTimeout(res, 100));
		await c.put('e', {title: 'E'});
		await new Promise(res => setTimeout(res, 200));
		stop();
		r.watched = seen;
		return r;
	})()`, &report)
	a := report["a"].(map[string]any)
	if a["title"] != "A2" || a["n"] != float64(1) || a["votes"] != float64(3) || fmt.Sprint(a["tags"]) != "[y]" {
		t.Errorf("row a: %v", a)
	}
	if fmt.Sprint(report["found"]) != "[b a]" || fmt.Sprint(report["limited"]) != "[a]" {
		t.Errorf("find: %v, limited %v", report["found"], report["limited"])
	}
	nf := report["notFound"].(map[string]any)
	if nf["isError"] != true || nf["name"] != "UnoError" || nf["code"] != float64(2008) {
		t.Errorf("get of a missing row: %v", nf)
	}
	for key, want := range map[string]float64{"badName": 2001, "badID": 2002, "kind": 2007, "noServer": 2012, "tooLarge": 1206} {
		if report[key] != want {
			t.Errorf("%s: code %v, want %v", key, report[key], want)
		}
	}
	if report["atomic"] != true {
		t.Error("a failed transaction left a write behind")
	}
	if report["pending"] != float64(8) || report["status"] != "offline" || report["hash"] != float64(64) {
		t.Errorf("pending %v, status %v, hash length %v", report["pending"], report["status"], report["hash"])
	}
	if report["conflicts"] != true || report["rejections"] != true {
		t.Errorf("feeds: %v %v", report["conflicts"], report["rejections"])
	}
	if report["watched"].(float64) < 2 {
		t.Errorf("the watch fired %v times, want the first result and the change", report["watched"])
	}
}

// The doc field methods of the JavaScript API work in Chromium through
// uno.js: edits in one transaction, the function form, reads, a watch
// and its unsubscribe function; errors are UnoErrors with their codes.
func TestBrowser_DocAPI(t *testing.T) {
	addr := freeAddr(t)
	startServe(t, addr, t.TempDir())
	b := newBrowser(t)
	b.launch("p", filepath.Join(t.TempDir(), "p"))
	b.open("p", fmt.Sprintf("http://%s/#db=docapi", addr))
	var report, watched map[string]any
	b.eval("p", `(async () => {
		const r = {};
		const c = uno.collection('notes');
		const code = async (p) => { try { await p; return 'no error'; } catch (e) { return e instanceof Error && e.name === 'UnoError' ? e.code : String(e); } };
		window.updates = [];
		window.stopWatch = c.watchDoc('n', 'body', (u) => window.updates.push(u));
		await c.editDoc('n', 'body', [
			{splice: {path: 'text', pos: 0, del: 0, text: 'hello 😀'}},
			{put: {path: ['meta', 'tags'], value: ['a', 'c']}},
			{insert: {path: ['meta', 'tags'], index: 1, value: 'b'}},
			{increment: {path: ['views'], delta: 2}},
			{put: {path: ['gone'], value: null}},
			{delete: {path: ['gone']}},
		]);
		await c.splice('n', 'body', ['text'], 8, 0, '!'); // after the emoji: UTF-16 code units
		await uno.transaction().put('notes', 'n', {title: 'T'}).editDoc('notes', 'n', 'body', [{increment: {path: 'views', delta: 1}}]).commit();
		await c.editDoc('n', 'body', (doc) => [{splice: {path: 'text', pos: doc.text.length, del: 0, text: '?'}}]);
		r.doc = await c.readDoc('n', 'body');
		r.tags = await c.readDoc('n', 'body', ['meta', 'tags']);
		r.text = await c.text('n', 'body', 'text');
		r.row = (await c.get('n')).body;
		r.docPath = await code(c.splice('n', 'body', 'text', 99, 0, 'x'));
		r.kind = await code(c.editDoc('n', 'title', [{put: {path: 'x', value: 1}}]));
		r.invalid = await code(c.editDoc('n', 'body', [{increment: {path: 'views', delta: 2 ** 60}}]));
		r.badShape = await code(c.editDoc('n', 'body', [{put: {path: 'x'}}]));
		r.badKind = await code(c.editDoc('n', 'body', [{replace: {path: 'x', value: 1}}]));
		r.notArray = await code(c.editDoc('n', 'body', 'text'));
		r.badPath = await code(c.readDoc('n', 'body', [true]));
		try { await c.editDoc('n', 'body', () => { throw new RangeError('mine'); }); } catch (e) { r.thrown = e instanceof RangeError && e.message === 'mine'; }
		r.unchanged = JSON.stringify(await c.readDoc('n', 'body')) === JSON.stringify(r.doc);
		return r;
	})()`, &report)
	// The watch sees the last change; after stop it sees none, while a new
	// watch sees the next one.
	b.waitFor("p", `window.updates.at(-1)?.doc?.text === 'hello 😀!?'`)
	b.eval("p", `(async () => {
		window.stopWatch();
		window.seen = window.updates.length;
		await uno.collection('notes').splice('n', 'body', 'text', 0, 0, '>');
		window.probe = [];
		window.stopProbe = uno.collection('notes').watchDoc('n', 'body', (u) => window.probe.push(u));
	})()`, nil)
	b.waitFor("p", `window.probe.length > 0`)
	b.eval("p", `(() => {
		window.stopProbe();
		return {first: window.updates[0], last: window.updates.at(-1), afterStop: window.updates.length - window.seen, probe: window.probe[0].doc.text};
	})()`, &watched)
	want := `{"meta":{"tags":["a","b","c"]},"text":"hello 😀!?","views":3}`
	if got, _ := json.Marshal(report["doc"]); string(got) != want {
		t.Errorf("readDoc = %s, want %s", got, want)
	}
	if got, _ := json.Marshal(report["row"]); string(got) != want {
		t.Errorf("the row's body = %s, want %s", got, want)
	}
	if fmt.Sprint(report["tags"]) != "[a b c]" || report["text"] != "hello 😀!?" {
		t.Errorf("readDoc of a path: %v; text %q", report["tags"], report["text"])
	}
	for key, want := range map[string]float64{"docPath": 2013, "kind": 2007, "invalid": 2003, "badShape": 2011, "badKind": 2011, "notArray": 2011, "badPath": 2013} {
		if report[key] != want {
			t.Errorf("%s: %v, want code %v", key, report[key], want)
		}
	}
	if report["thrown"] != true || report["unchanged"] != true {
		t.Errorf("a throwing edits function: rethrown %v, document unchanged %v", report["thrown"], report["unchanged"])
	}
	if first, _ := json.Marshal(watched["first"]); string(first) != `{"doc":null,"paths":[]}` {
		t.Errorf("the watch's first update: %s", first)
	}
	last, _ := watched["last"].(map[string]any)
	if doc, _ := json.Marshal(last["doc"]); string(doc) != want {
		t.Errorf("the watch's last update: %s", doc)
	}
	if watched["afterStop"] != float64(0) || watched["probe"] != ">hello 😀!?" {
		t.Errorf("after stop: %v updates (want 0); a new watch saw %q", watched["afterStop"], watched["probe"])
	}
}
