//go:build cgo && (linux || darwin) && (amd64 || arm64)

package crdt_test

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"github.com/unosync/uno/crdt"
)

// siteJS is the site whose Automerge actor writes the JavaScript changes.
var siteJS = crdt.SiteID{0x15, 0x0a, 0x75}

// automergeInterop runs wasm/test/automerge-interop.mjs (see its comment)
// with Node on dir.
func automergeInterop(t *testing.T, dir, phase string) {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is not on PATH (install Node 20, then run npm ci --prefix wasm): %v", err)
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "wasm/node_modules/@automerge/automerge/package.json")); err != nil {
		t.Fatalf("@automerge/automerge is not installed: run npm ci --prefix wasm (%v)", err)
	}
	cmd := exec.Command(node, filepath.Join(root, "wasm/test/automerge-interop.mjs"), dir, phase)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("node automerge-interop.mjs %s: %v\n%s", phase, err, out)
	}
}

func writeFile(t *testing.T, dir, name string, data []byte) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, dir, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sameJSON fails the test unless got and want hold the same JSON value.
func sameJSON(t *testing.T, what string, got, want []byte) {
	t.Helper()
	var g, w any
	if err := errors.Join(json.Unmarshal(got, &g), json.Unmarshal(want, &w)); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("%s:\n got %s\nwant %s", what, got, want)
	}
}

func hexHeads(hs []crdt.ChangeHash) []string {
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = h.String()
	}
	slices.Sort(out)
	return out
}

// Documents and changes cross between automerge-go and the pinned
// @automerge/automerge both ways: JavaScript reads what Go wrote and
// edits it (marks included, which automerge-go cannot read but keeps);
// Go reads JavaScript's save, and takes its changes through a
// transaction of the JavaScript actor's site; both ends agree on the
// heads and the JSON.
func TestDocument_InteropWithAutomergeJS(t *testing.T) {
	dir := t.TempDir()

	// Go writes a document in two changes.
	a := &node{site: siteA}
	doc := openDoc(t, &crdt.DocState{}, siteA)
	edit(t,
		doc.Put(crdt.Path{"title"}, []byte(`"Trip plan"`)),
		doc.Splice(crdt.Path{"body"}, 0, 0, "Pack the bags"),
		doc.Put(crdt.Path{"meta"}, []byte(`{"owner": {"name": "ann", "age": 41}, "tags": ["travel", "2026"], "ratio": 0.25, "done": false, "none": null}`)),
		doc.Increment(crdt.Path{"likes"}, 2),
	)
	ch1 := commit(t, doc, ts(1))
	edit(t,
		doc.Splice(crdt.Path{"body"}, 13, 0, " and go, café"),
		doc.Insert(crdt.Path{"meta", "tags"}, 0, []byte(`"first"`)),
		doc.Increment(crdt.Path{"likes"}, 5),
	)
	ch2 := commit(t, doc, ts(2))
	a.write(t, ts(2), func(b *crdt.Builder) error { return b.Change(keyR0, "doc", append(slices.Clip(ch1), ch2...)) })
	goJSON, err := doc.JSON()
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, "go.save", doc.Save())
	writeFile(t, dir, "go.changes", append(slices.Clip(ch1), ch2...))
	writeFile(t, dir, "go.json", goJSON)
	writeFile(t, dir, "js.actor", []byte(siteJS.String()))

	automergeInterop(t, dir, "edit")

	// Go reads JavaScript's save.
	jsJSON := readFile(t, dir, "js.json")
	var jsHeads []string
	if err := json.Unmarshal(readFile(t, dir, "js.heads"), &jsHeads); err != nil {
		t.Fatal(err)
	}
	slices.Sort(jsHeads)
	loaded := openDoc(t, &crdt.DocState{Chunks: [][]byte{readFile(t, dir, "js.save")}}, siteA)
	got, err := loaded.JSON()
	if err != nil {
		t.Fatal(err)
	}
	sameJSON(t, "JSON of js.save read in Go", got, jsJSON)
	if h := hexHeads(loaded.Heads()); !slices.Equal(h, jsHeads) {
		t.Fatalf("heads of js.save read in Go %v, JavaScript's %v", h, jsHeads)
	}
	for _, tc := range []struct {
		path crdt.Path
		want string
	}{
		{crdt.Path{"body"}, ">> Pack the bags and go, café"},
		{crdt.Path{"note"}, "a scalar from JavaScript"},
		{crdt.Path{"jsText"}, "collaborative text from JavaScript"},
	} {
		if s, err := loaded.Text(tc.path); err != nil || s != tc.want {
			t.Errorf("Text(%s) = %q, %v; want %q", tc.path, s, err, tc.want)
		}
	}
	// JavaScript's string assignment made text, ImmutableString a scalar.
	edit(t, loaded.Splice(crdt.Path{"jsText"}, 0, 0, "Go edits "))
	if err := loaded.Splice(crdt.Path{"note"}, 0, 0, "x"); !errors.Is(err, crdt.ErrDocPath) {
		t.Errorf("Splice of JavaScript's ImmutableString: %v, want ErrDocPath", err)
	}
	commit(t, loaded, ts(5))

	// Go saves what it loaded and edited; JavaScript finds its marks.
	resaved := openDoc(t, &crdt.DocState{Chunks: [][]byte{readFile(t, dir, "js.save")}}, siteA)
	json2, err := resaved.JSON()
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, "go2.save", resaved.Save())
	writeFile(t, dir, "go2.json", json2)
	heads2, _ := json.Marshal(hexHeads(resaved.Heads()))
	writeFile(t, dir, "go2.heads", heads2)
	automergeInterop(t, dir, "marks")

	// JavaScript's changes reach Go's replica in a transaction of the
	// JavaScript actor's site, through the rules the server runs.
	jsChanges := readFile(t, dir, "js.changes")
	js := &node{site: siteJS}
	js.recv(t, a.txs...)
	tx := js.write(t, ts(3), func(b *crdt.Builder) error { return b.Change(keyR0, "doc", jsChanges) })
	if err := crdt.ValidateTx(tx, nil, crdt.Limits{}); err != nil {
		t.Fatalf("ValidateTx of JavaScript's changes: %v", err)
	}
	if err := docOf(t, &a.state, keyR0, "doc").CheckNext(siteJS, jsChanges); err != nil {
		t.Fatalf("CheckNext of JavaScript's changes: %v", err)
	}
	a.recv(t, tx)
	st := docOf(t, &a.state, keyR0, "doc")
	if h := hexHeads(heads(st)); !slices.Equal(h, jsHeads) {
		t.Fatalf("doc state heads %v, JavaScript's %v", h, jsHeads)
	}
	merged := openDoc(t, st, siteA)
	got, err = merged.JSON()
	if err != nil {
		t.Fatal(err)
	}
	sameJSON(t, "JSON after Go applied JavaScript's changes", got, jsJSON)
	if h := hexHeads(merged.Heads()); !slices.Equal(h, jsHeads) {
		t.Fatalf("heads after Go applied JavaScript's changes %v, JavaScript's %v", h, jsHeads)
	}
	// And Go's own document takes them through Apply.
	if err := doc.Apply(jsChanges); err != nil {
		t.Fatal(err)
	}
	if h := hexHeads(doc.Heads()); !slices.Equal(h, jsHeads) {
		t.Fatalf("heads after Apply %v, JavaScript's %v", h, jsHeads)
	}
	if a.state.Hash() != js.state.Hash() {
		t.Fatal("the Go and JavaScript sites' replicas differ")
	}

	// The script still writes testdata/automerge-alltypes.bin as it is
	// (see TestDocument_EveryDatatypeAsJSON).
	automergeInterop(t, dir, "alltypes")
	fresh := openDoc(t, &crdt.DocState{Chunks: [][]byte{readFile(t, dir, "alltypes.bin")}}, siteA)
	committed := openDoc(t, &crdt.DocState{Chunks: [][]byte{readFile(t, "testdata", "automerge-alltypes.bin")}}, siteA)
	if !slices.Equal(fresh.Heads(), committed.Heads()) {
		t.Fatalf("automerge-interop.mjs alltypes writes a document with heads %x; testdata/automerge-alltypes.bin has %x (regenerate it)", fresh.Heads(), committed.Heads())
	}
}
