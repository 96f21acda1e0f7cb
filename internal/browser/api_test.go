package browser

import (
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
