//go:build js || (cgo && (linux || darwin) && (amd64 || arm64))

package crdt_test

// Tests of crdt.Document, the Automerge binding, that run against every
// binding: natively automerge-go (cgo), and under Node @automerge/automerge
// (GOOS=js GOARCH=wasm go test -exec wasm/test/go_js_wasm_exec ./crdt).

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"math"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/unosync/uno/crdt"
)

// openDoc opens s for editing by site and closes it when the test ends.
func openDoc(tb testing.TB, s *crdt.DocState, site crdt.SiteID) *crdt.Document {
	tb.Helper()
	d, err := crdt.OpenDocument(s, site)
	if err != nil {
		tb.Fatalf("open document: %v", err)
	}
	tb.Cleanup(d.Close)
	return d
}

// edit runs the edits and fails the test on the first error.
func edit(tb testing.TB, edits ...error) {
	tb.Helper()
	if err := errors.Join(edits...); err != nil {
		tb.Fatalf("edit: %v", err)
	}
}

// commit commits d's edits and returns the change, which must exist.
func commit(tb testing.TB, d *crdt.Document, at crdt.Timestamp) []byte {
	tb.Helper()
	ch, err := d.Commit(at)
	if err != nil || ch == nil {
		tb.Fatalf("commit: %x, %v; want a change", ch, err)
	}
	return ch
}

func wantJSON(tb testing.TB, d *crdt.Document, want string) {
	tb.Helper()
	got, err := d.JSON()
	if err != nil || string(got) != want {
		tb.Fatalf("JSON() = %s, %v\nwant %s", got, err, want)
	}
}

// docOf returns the doc field's state in s.
func docOf(tb testing.TB, s *crdt.State, k crdt.RowKey, field string) *crdt.DocState {
	tb.Helper()
	row := s.Row(k)
	if row == nil {
		tb.Fatalf("row %v missing", k)
	}
	f, ok := row.Field(field)
	if !ok || f.Kind != crdt.KindDoc {
		tb.Fatalf("row %v has no doc field %q", k, field)
	}
	return &f.Doc
}

func TestDocument_Edits(t *testing.T) {
	if !crdt.DocEditing {
		t.Fatal("DocEditing is false in a build with an Automerge binding")
	}
	d := openDoc(t, &crdt.DocState{}, siteA)
	edit(t,
		d.Put(crdt.Path{"title"}, []byte(`"Groceries"`)),
		d.Put(crdt.Path{"meta", "tags"}, []byte(`["a", "b"]`)), // creates the map meta
		d.Insert(crdt.Path{"meta", "tags"}, 1, []byte(`"x"`)),
		d.Put(crdt.Path{"meta", "tags", 3}, []byte(`"appended"`)),
		d.Delete(crdt.Path{"meta", "tags", 0}),
		d.Put(crdt.Path{"meta", "owner"}, []byte(`{"name": "ann", "age": 40, "ratio": 1.5, "admin": false, "nothing": null}`)),
		d.Put(crdt.Path{"meta", "big"}, []byte(`9007199254740993`)), // beyond float64's integers
		d.Put(crdt.Path{"gone"}, []byte(`1`)),
		d.Delete(crdt.Path{"gone"}),
		d.Splice(crdt.Path{"body"}, 0, 0, "hello world"), // creates the text
		d.Splice(crdt.Path{"body"}, 5, 6, ", Ann"),
		d.Splice(crdt.Path{"body"}, 0, 1, "H"),
		d.Increment(crdt.Path{"views"}, 2), // creates the counter
		d.Increment(crdt.Path{"views"}, 5),
		d.Increment(crdt.Path{"views"}, -3),
		d.Put(crdt.Path{"items"}, []byte(`[]`)),
		d.Insert(crdt.Path{"items"}, 0, []byte(`{"done": true}`)),
		d.Splice(crdt.Path{"items", 0, "note"}, 0, 0, "é ü"),
	)
	wantJSON(t, d, `{"body":"Hello, Ann","items":[{"done":true,"note":"é ü"}],`+
		`"meta":{"big":9007199254740993,"owner":{"admin":false,"age":40,"name":"ann","nothing":null,"ratio":1.5},"tags":["x","b","appended"]},`+
		`"title":"Groceries","views":4}`)

	texts := []struct {
		path crdt.Path
		want string
	}{
		{crdt.Path{"body"}, "Hello, Ann"}, // text
		{crdt.Path{"title"}, "Groceries"}, // scalar string
		{crdt.Path{"missing"}, ""},
		{crdt.Path{"items", 0, "note"}, "é ü"},
	}
	for _, tc := range texts {
		if got, err := d.Text(tc.path); err != nil || got != tc.want {
			t.Errorf("Text(%s) = %q, %v; want %q", tc.path, got, err, tc.want)
		}
	}
	gets := []struct {
		path crdt.Path
		want string
	}{
		{crdt.Path{"meta", "tags"}, `["x","b","appended"]`},
		{crdt.Path{"meta", "tags", 1}, `"b"`},
		{crdt.Path{"meta", "tags", 9}, `null`},
		{crdt.Path{"views"}, `4`},
		{crdt.Path{"missing", "deeper"}, `null`},
		{crdt.Path{"meta", "owner", "ratio"}, `1.5`},
	}
	for _, tc := range gets {
		if got, err := d.Get(tc.path); err != nil || string(got) != tc.want {
			t.Errorf("Get(%s) = %s, %v; want %s", tc.path, got, err, tc.want)
		}
	}

	// A string Put stores is a scalar: it cannot be spliced.
	if err := d.Splice(crdt.Path{"title"}, 0, 0, "x"); !errors.Is(err, crdt.ErrDocPath) {
		t.Errorf("Splice of a scalar string: %v, want ErrDocPath", err)
	}
}

func TestDocument_EditErrors(t *testing.T) {
	d := openDoc(t, &crdt.DocState{}, siteA)
	edit(t,
		d.Put(crdt.Path{"title"}, []byte(`"t"`)),
		d.Put(crdt.Path{"list"}, []byte(`[1, 2]`)),
		d.Splice(crdt.Path{"body"}, 0, 0, "abc"),
		d.Increment(crdt.Path{"n"}, 1),
	)
	before, err := d.JSON()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		do   func() error
		want error
	}{
		{"put the root", func() error { return d.Put(nil, []byte(`{}`)) }, crdt.ErrDocPath},
		{"delete the root", func() error { return d.Delete(nil) }, crdt.ErrDocPath},
		{"put invalid JSON", func() error { return d.Put(crdt.Path{"x"}, []byte(`{`)) }, crdt.ErrInvalidValue},
		{"put a key of a string", func() error { return d.Put(crdt.Path{"title", "x"}, []byte(`1`)) }, crdt.ErrDocPath},
		{"put an index of a map", func() error { return d.Put(crdt.Path{"title", 0}, []byte(`1`)) }, crdt.ErrDocPath},
		{"put beyond the end of a list", func() error { return d.Put(crdt.Path{"list", 3}, []byte(`1`)) }, crdt.ErrDocPath},
		{"put with a bad segment", func() error { return d.Put(crdt.Path{"list", 1.5}, []byte(`1`)) }, crdt.ErrDocPath},
		{"put with a negative index", func() error { return d.Put(crdt.Path{"list", -1}, []byte(`1`)) }, crdt.ErrDocPath},
		{"insert beyond the end", func() error { return d.Insert(crdt.Path{"list"}, 3, []byte(`1`)) }, crdt.ErrDocPath},
		{"insert into a map", func() error { return d.Insert(crdt.Path{"title"}, 0, []byte(`1`)) }, crdt.ErrDocPath},
		{"delete beyond the end", func() error { return d.Delete(crdt.Path{"list", 2}) }, crdt.ErrDocPath},
		{"splice a counter", func() error { return d.Splice(crdt.Path{"n"}, 0, 0, "x") }, crdt.ErrDocPath},
		{"splice beyond the end", func() error { return d.Splice(crdt.Path{"body"}, 4, 0, "x") }, crdt.ErrDocPath},
		{"splice deleting beyond the end", func() error { return d.Splice(crdt.Path{"body"}, 1, 3, "") }, crdt.ErrDocPath},
		{"splice at a negative position", func() error { return d.Splice(crdt.Path{"body"}, -1, 0, "x") }, crdt.ErrDocPath},
		{"increment a string", func() error { return d.Increment(crdt.Path{"title"}, 1) }, crdt.ErrDocPath},
		{"increment text", func() error { return d.Increment(crdt.Path{"body"}, 1) }, crdt.ErrDocPath},
		{"text of a list", func() error { _, err := d.Text(crdt.Path{"list"}); return err }, crdt.ErrDocPath},
		{"get a key of a counter", func() error { _, err := d.Get(crdt.Path{"n", "x"}); return err }, crdt.ErrDocPath},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.do(); !errors.Is(err, tc.want) {
				t.Errorf("error %v, want %v", err, tc.want)
			}
		})
	}
	wantJSON(t, d, string(before))
}

func TestDocument_SpliceUnits(t *testing.T) {
	d := openDoc(t, &crdt.DocState{}, siteA)
	edit(t, d.Splice(crdt.Path{"t"}, 0, 0, "a😀b"))
	// The emoji is one code point natively, two UTF-16 code units in
	// JavaScript: position 2 is after it natively, inside it in JavaScript.
	after := 2
	if runtime.GOOS == "js" {
		after = 3
	}
	edit(t, d.Splice(crdt.Path{"t"}, after, 1, "c"))
	if got, err := d.Text(crdt.Path{"t"}); err != nil || got != "a😀c" {
		t.Fatalf("text %q, %v; want %q", got, err, "a😀c")
	}
	if err := d.Splice(crdt.Path{"t"}, after+2, 0, "x"); !errors.Is(err, crdt.ErrDocPath) {
		t.Errorf("splice past the end: %v, want ErrDocPath", err)
	}
}

func TestDocument_CommitThroughBuilder(t *testing.T) {
	a, b := &node{site: siteA}, &node{site: siteB}
	docA := openDoc(t, &crdt.DocState{}, siteA)
	if ch, err := docA.Commit(ts(1)); ch != nil || err != nil {
		t.Fatalf("Commit without edits = %x, %v; want nil", ch, err)
	}
	edit(t,
		docA.Put(crdt.Path{"title"}, []byte(`"plan"`)),
		docA.Splice(crdt.Path{"body"}, 0, 0, "step one"),
		docA.Increment(crdt.Path{"n"}, 1),
	)
	ch1 := commit(t, docA, ts(1))
	if ch, err := docA.Commit(ts(2)); ch != nil || err != nil {
		t.Fatalf("second Commit without edits = %x, %v; want nil", ch, err)
	}
	if crdt.DocValidator == nil {
		t.Fatal("DocValidator is not set")
	}
	if err := crdt.DocValidator(ch1); err != nil {
		t.Fatalf("DocValidator(a committed change): %v", err)
	}
	edit(t, docA.Increment(crdt.Path{"n"}, 2))
	ch2 := commit(t, docA, ts(2))

	// Both changes, in one transaction of site A.
	tx := a.write(t, ts(2), func(b *crdt.Builder) error {
		return errors.Join(b.Change(keyR0, "body", ch1), b.Change(keyR0, "body", ch2))
	})
	changes := slices.DeleteFunc(slices.Clone(tx.Ops), func(op crdt.Op) bool { return op.Type != crdt.OpChange })
	if len(changes) != 1 || !bytes.Equal(changes[0].Value, append(slices.Clip(ch1), ch2...)) {
		t.Fatalf("ops %+v: want one change op holding both changes", tx.Ops)
	}
	if err := crdt.ValidateTx(tx, nil, crdt.Limits{}); err != nil {
		t.Fatalf("ValidateTx: %v", err)
	}
	b.recv(t, tx)
	stB := docOf(t, &b.state, keyR0, "body")
	if got, want := heads(stB), docA.Heads(); !slices.Equal(got, want) {
		t.Fatalf("state heads %x, document heads %x", got, want)
	}

	// B opens the field, sees A's edits, edits on; A applies B's change.
	docB := openDoc(t, stB, siteB)
	wantJSON(t, docB, `{"body":"step one","n":3,"title":"plan"}`)
	edit(t,
		docB.Splice(crdt.Path{"body"}, 8, 0, ", two"),
		docB.Increment(crdt.Path{"n"}, 10),
	)
	chB := commit(t, docB, ts(3))
	if err := (&crdt.DocState{}).CheckNext(siteB, chB); err != nil {
		t.Fatalf("CheckNext(B's first change): %v", err)
	}
	txB := b.write(t, ts(3), func(bb *crdt.Builder) error { return bb.Change(keyR0, "body", chB) })
	a.recv(t, txB)
	if err := docA.Apply(chB); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	const want = `{"body":"step one, two","n":13,"title":"plan"}`
	wantJSON(t, docA, want)
	if !slices.Equal(docA.Heads(), docB.Heads()) {
		t.Fatalf("heads differ: A %x, B %x", docA.Heads(), docB.Heads())
	}
	if a.state.Hash() != b.state.Hash() {
		t.Fatal("replica states differ")
	}
	wantJSON(t, openDoc(t, docOf(t, &a.state, keyR0, "body"), siteC), want)

	// A change by another site is refused by the builder.
	bad := crdt.NewBuilder(siteA, 99, ts(4), func(k crdt.RowKey) (*crdt.Row, error) { return a.state.Row(k), nil })
	if err := bad.Change(keyR0, "body", chB); !errors.Is(err, crdt.ErrInvalidValue) {
		t.Errorf("Change with B's change in a transaction of A: %v, want ErrInvalidValue", err)
	}
	// Bytes that are not changes leave the document as it was. The
	// browser binding reports them; automerge-go's LoadIncremental ignores
	// what it cannot parse and returns nil.
	headsA := docA.Heads()
	for name, bad := range map[string][]byte{
		"garbage":           []byte("not automerge"),
		"truncated change":  chB[:len(chB)-3],
		"change and a byte": append(slices.Clip(chB), 1),
	} {
		err := docA.Apply(bad)
		if runtime.GOOS == "js" && !errors.Is(err, crdt.ErrDecode) {
			t.Errorf("Apply(%s): %v, want ErrDecode", name, err)
		}
		if !slices.Equal(docA.Heads(), headsA) {
			t.Errorf("Apply(%s) changed the heads", name)
		}
	}
	wantJSON(t, docA, want)
	if err := crdt.DocValidator(append(slices.Clip(chB), 0x85, 0x6f, 0x4a, 0x83, 1, 2, 3)); err == nil {
		t.Error("DocValidator accepted a truncated chunk after a change")
	}
}

func heads(s *crdt.DocState) []crdt.ChangeHash {
	out := make([]crdt.ChangeHash, len(s.Heads))
	for i, h := range s.Heads {
		out[i] = h.Hash
	}
	return out
}

func TestDocument_SaveLoad(t *testing.T) {
	d := openDoc(t, &crdt.DocState{}, siteA)
	edit(t,
		d.Put(crdt.Path{"list"}, []byte(`[1, "two", {"three": 3}]`)),
		d.Splice(crdt.Path{"text"}, 0, 0, "saved"),
		d.Increment(crdt.Path{"c"}, 7),
	)
	commit(t, d, ts(1))
	edit(t, d.Splice(crdt.Path{"text"}, 5, 0, "!"))
	commit(t, d, ts(2))
	saved := d.Save()
	loaded := openDoc(t, &crdt.DocState{Chunks: [][]byte{saved}}, siteB)
	wantJSON(t, loaded, `{"c":7,"list":[1,"two",{"three":3}],"text":"saved!"}`)
	if !slices.Equal(loaded.Heads(), d.Heads()) {
		t.Fatalf("heads after load %x, want %x", loaded.Heads(), d.Heads())
	}
	if _, err := crdt.OpenDocument(&crdt.DocState{Chunks: [][]byte{saved[:len(saved)/2]}}, siteB); !errors.Is(err, crdt.ErrDecode) {
		t.Errorf("open a truncated save: %v, want ErrDecode", err)
	}
}

func TestDocument_Compaction(t *testing.T) {
	a := &node{site: siteA}
	d := openDoc(t, &crdt.DocState{}, siteA)
	for i := range 5 {
		edit(t, d.Splice(crdt.Path{"log"}, i, 0, "x"), d.Increment(crdt.Path{"n"}, 1))
		ch := commit(t, d, ts(int64(i)))
		a.write(t, ts(int64(i)), func(b *crdt.Builder) error { return b.Change(keyR0, "doc", ch) })
	}
	st := docOf(t, &a.state, keyR0, "doc")
	if len(st.Chunks) != 5 {
		t.Fatalf("%d chunks before compaction, want 5 (one per change)", len(st.Chunks))
	}
	hash := a.state.Hash()
	if _, ok := crdt.DocCompactor(st.Chunks, st.Heads[:0]); ok {
		t.Error("DocCompactor compacted chunks whose heads disagree")
	}
	if !st.Compact() {
		t.Fatal("Compact() = false")
	}
	if len(st.Chunks) != 1 || a.state.Hash() != hash {
		t.Fatalf("after compaction: %d chunks, state hash changed %v; want 1 chunk, same hash", len(st.Chunks), a.state.Hash() != hash)
	}
	got := openDoc(t, st, siteB)
	wantJSON(t, got, `{"log":"xxxxx","n":5}`)
	if !slices.Equal(got.Heads(), d.Heads()) {
		t.Fatalf("heads after compaction %x, want %x", got.Heads(), d.Heads())
	}
	// The compacted state goes on taking changes.
	edit(t, d.Splice(crdt.Path{"log"}, 5, 0, "y"))
	ch := commit(t, d, ts(9))
	a.write(t, ts(9), func(b *crdt.Builder) error { return b.Change(keyR0, "doc", ch) })
	wantJSON(t, openDoc(t, docOf(t, &a.state, keyR0, "doc"), siteB), `{"log":"xxxxxy","n":5}`)
}

// allTypes is a document saved by @automerge/automerge holding every
// datatype (node wasm/test/automerge-interop.mjs DIR alltypes writes it),
// embedded so that the test also runs in a browser, which has no files.
//
//go:embed testdata/automerge-alltypes.bin
var allTypes []byte

// Both bindings show every datatype as the same JSON, byte for byte.
func TestDocument_EveryDatatypeAsJSON(t *testing.T) {
	d := openDoc(t, &crdt.DocState{Chunks: [][]byte{allTypes}}, siteA)
	want, err := json.Marshal(map[string]any{
		"str":       `scalar "quoted" <tag> & é`,
		"text":      "text with 😀",
		"emptyText": "",
		"int":       -42,
		"big":       int64(9007199254740993),
		"uint":      uint64(math.MaxUint64),
		"f64":       0.1,
		"f64int":    3.0,
		"yes":       true,
		"nothing":   nil,
		"when":      time.UnixMilli(1700000000123),
		"counter":   -5,
		"bytes":     []byte{0, 1, 2, 250, 255},
		"list":      []any{"first", map[string]any{"a": 2, "z": 1}, []any{}, 7, "text in a list"},
		"emptyMap":  map[string]any{},
	})
	if err != nil {
		t.Fatal(err)
	}
	wantJSON(t, d, string(want))
	for _, tc := range []struct {
		path crdt.Path
		want string
	}{
		{crdt.Path{"list", 1}, `{"a":2,"z":1}`},
		{crdt.Path{"list", 4}, `"text in a list"`},
		{crdt.Path{"when"}, string(must2(json.Marshal(time.UnixMilli(1700000000123))))},
		{crdt.Path{"big"}, `9007199254740993`},
	} {
		if got, err := d.Get(tc.path); err != nil || string(got) != tc.want {
			t.Errorf("Get(%s) = %s, %v; want %s", tc.path, got, err, tc.want)
		}
	}
	if s, err := d.Text(crdt.Path{"list", 4}); err != nil || s != "text in a list" {
		t.Errorf("Text of text in a list = %q, %v", s, err)
	}
}

func must2[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
