package browser

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
	"unicode/utf8"

	"github.com/unosync/uno/client"
	"github.com/unosync/uno/crdt"
	"github.com/unosync/uno/store"
)

// notesSchema is examples/notes's schema: the page and the terminal app
// share notes.
var notesSchema = &store.Schema{
	Version: 1,
	Collections: []store.Collection{{
		Name:   "notes",
		Fields: []store.Field{{Name: "title"}, {Name: "created"}, {Name: "body", Kind: crdt.KindDoc}},
	}},
}

// notesURL is the notes page's URL, with the token and the database's
// name.
func (s *serveProc) notesURL(db string) string {
	return fmt.Sprintf("http://%s/notes.html#token=%s&db=%s", s.addr, s.token, db)
}

// setName sets the name the profile's edits are shown under, as a user
// would in the page.
func (b *browser) setName(name, as string) {
	b.t.Helper()
	js, _ := json.Marshal(as)
	b.eval(name, fmt.Sprintf(`(() => {
		const el = document.getElementById('name');
		el.value = %s;
		el.dispatchEvent(new Event('change'));
	})()`, js), nil)
}

// typeNote types s into the open note's textarea at pos (-1: the end),
// one character per input event as a keyboard would, then waits until
// the page has committed the textarea's text to the note.
func (b *browser) typeNote(name string, pos int, s string) {
	b.t.Helper()
	js, _ := json.Marshal(s)
	b.eval(name, fmt.Sprintf(`(async () => {
		const a = document.getElementById('text');
		a.focus();
		let p = %d < 0 ? a.value.length : %d;
		for (const ch of %s) {
			a.setRangeText(ch, p, p, 'end');
			p += ch.length;
			a.dispatchEvent(new Event('input', {bubbles: true}));
			await new Promise((r) => setTimeout(r)); // let the page's handlers run between keys
		}
	})()`, pos, pos, js), nil)
	b.waitFor(name, `(async () => {
		const id = new URLSearchParams(location.hash.slice(1)).get('note');
		return document.getElementById('text').value === await uno.collection('notes').text(id, 'body', ['text']);
	})()`)
}

// noteJSON returns the note's body exactly as the page's client gives it
// (the bridge's JSON text, before JavaScript parses it: the bridge is the
// worker's proxy, or Go's globalThis.__uno on the page's thread).
func (b *browser) noteJSON(name, id string) string {
	b.t.Helper()
	var out string
	b.eval(name, fmt.Sprintf(`uno._b.call(uno._id, 'readDoc', JSON.stringify(['notes', %q, 'body', []]))`, id), &out)
	return out
}

// Two browser profiles edit one note in the notes page (examples/web/
// notes.html) while the server is down, at different places; when it
// comes back both show one merged text and each other's names, and a
// native Go client with the terminal app's schema reads the same document
// byte for byte, with the same canonical hash.
func TestBrowser_NotesOfflineEditsMerge(t *testing.T) {
	ctx := context.Background()
	addr, data := freeAddr(t), t.TempDir()
	srv := startServe(t, addr, data)
	b := newBrowser(t)
	for p, as := range map[string]string{"a": "ann", "b": "bob"} {
		b.launch(p, filepath.Join(t.TempDir(), p))
		b.page(map[string]any{"cmd": "goto", "profile": p, "url": srv.notesURL("notes"), "ready": appReady})
		b.waitFor(p, upToDate)
		b.setName(p, as)
	}

	// ann starts a note and writes its first line; bob opens it.
	b.eval("a", `(() => {
		document.getElementById('title').value = 'Plans';
		document.getElementById('new').requestSubmit();
	})()`, nil)
	b.waitFor("a", `document.querySelector('#notes li.selected') !== null && !document.getElementById('text').disabled`)
	var id string
	b.eval("a", `document.querySelector('#notes li.selected').dataset.id`, &id)
	b.typeNote("a", 0, "We meet on Monday.")
	b.waitFor("a", upToDate)
	b.waitFor("b", fmt.Sprintf(`document.querySelector('#notes li[data-id=%q]') !== null`, id))
	b.eval("b", fmt.Sprintf(`document.querySelector('#notes li[data-id=%q]').click()`, id), nil)
	b.waitFor("b", `!document.getElementById('text').disabled && document.getElementById('text').value === 'We meet on Monday.'`)

	srv.stop()
	for _, p := range []string{"a", "b"} {
		b.waitFor(p, `!document.getElementById('offline').hidden`)
	}
	// Offline, both type: ann at the start, bob at the end.
	b.typeNote("a", 0, "Update: ")
	b.typeNote("b", -1, " Bring cake 🎂.")
	for _, p := range []string{"a", "b"} {
		b.waitFor(p, `document.getElementById('pending').textContent !== '0 pending'`)
	}
	b.screenshot("b", "notes-offline-b.png")

	srv = startServe(t, addr, data)
	const want = "Update: We meet on Monday. Bring cake 🎂."
	wantJS, _ := json.Marshal(want)
	for p, other := range map[string]string{"a": "bob", "b": "ann"} {
		b.waitFor(p, upToDate+` && document.getElementById('offline').hidden`)
		b.waitFor(p, fmt.Sprintf(`document.getElementById('text').value === %s`, wantJS))
		b.waitFor(p, fmt.Sprintf(`document.getElementById('editors').textContent.includes(%q)`, other))
	}
	b.screenshot("a", "notes-a.png")
	b.screenshot("b", "notes-b.png")

	ja, jb := b.noteJSON("a", id), b.noteJSON("b", id)
	if ja != jb {
		t.Fatalf("the browsers' documents differ:\n%s\n%s", ja, jb)
	}
	var body struct {
		Text    string            `json:"text"`
		Editors map[string]string `json:"editors"`
	}
	if err := json.Unmarshal([]byte(ja), &body); err != nil {
		t.Fatal(err)
	}
	if body.Text != want || len(body.Editors) != 2 || body.Editors["ann"] == "" || body.Editors["bob"] == "" {
		t.Fatalf("the note: %s; want the text %q edited by ann and bob", ja, want)
	}
	var ha, hb string
	b.eval("a", `uno.hash()`, &ha)
	b.eval("b", `uno.hash()`, &hb)
	if ha != hb {
		t.Fatalf("the browsers' hashes differ: %s vs %s", ha, hb)
	}

	native, err := client.Open(ctx, client.Config{Path: filepath.Join(t.TempDir(), "native.db"), Schema: notesSchema,
		Server: "ws://" + addr + "/v1/sync", Token: srv.token, ManualSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer native.Close()
	sctx, cancel := context.WithTimeout(ctx, b.step())
	defer cancel()
	if err := native.Sync(sctx); err != nil {
		t.Fatal(err)
	}
	doc, err := native.Collection("notes").ReadDoc(ctx, id, "body", nil)
	if err != nil {
		t.Fatal(err)
	}
	if string(doc) != ja {
		t.Fatalf("the native client reads\n%s\nthe browsers\n%s", doc, ja)
	}
	h, err := native.Hash(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(h[:]); got != ha {
		t.Fatalf("the native client's hash %s differs from the browsers' %s", got, ha)
	}

	// Online, an edit shows live in the other page, and the caret there
	// stays by the text it was in.
	b.eval("a", `(() => {
		const a = document.getElementById('text');
		a.focus();
		const at = a.value.indexOf('Monday');
		a.setSelectionRange(at, at);
	})()`, nil)
	b.typeNote("b", 0, "Note: ")
	b.waitFor("a", `(() => {
		const a = document.getElementById('text');
		return a.value.startsWith('Note: Update:') && a.selectionStart === a.value.indexOf('Monday') && a.selectionEnd === a.selectionStart;
	})()`)
	// So does one from the native client (as the terminal app makes it;
	// it counts code points where the pages count UTF-16 code units).
	sync := func() {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, b.step())
		defer cancel()
		if err := native.Sync(sctx); err != nil {
			t.Fatal(err)
		}
	}
	sync() // a has b's edit: so has the server
	notes := native.Collection("notes")
	if text, err := notes.Text(ctx, id, "body", client.Path{"text"}); err != nil || text != "Note: "+want {
		t.Fatalf("the native client's text: %q, %v; want %q", text, err, "Note: "+want)
	}
	if err := notes.Splice(ctx, id, "body", client.Path{"text"}, utf8.RuneCountInString("Note: "+want), 0, " (Go)"); err != nil {
		t.Fatal(err)
	}
	sync()
	for _, p := range []string{"a", "b"} {
		b.waitFor(p, fmt.Sprintf(`document.getElementById('text').value === %s`, mustJSON("Note: "+want+" (Go)")))
	}
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}
