//go:build js

package bridge

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strconv"
	"syscall/js"
	"testing"
	"time"
)

// These tests drive globalThis.__uno as uno.js does, under Node
// (wasm/test/go_js_wasm_exec: IndexedDB from fake-indexeddb, the loader
// of @automerge/automerge):
//
//	GOOS=js GOARCH=wasm go test -exec "$PWD/wasm/test/go_js_wasm_exec" ./wasm/bridge

// unavailable is what the first use of a doc field returned while the
// Automerge loader failed (TestMain, before anything loaded Automerge).
var unavailable struct {
	err  *jsError
	text string
}

func TestMain(m *testing.M) {
	Register()
	if err := checkUnavailable(); err != nil {
		fmt.Fprintln(os.Stderr, "bridge tests:", err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// checkUnavailable uses a doc field once with a loader that fails, then
// puts the real loader back.
func checkUnavailable() error {
	g := js.Global()
	loader := g.Get("__unoLoadAutomerge")
	if loader.Type() != js.TypeFunction {
		return fmt.Errorf("no Automerge loader: run the tests with wasm/test/go_js_wasm_exec")
	}
	g.Set("__unoLoadAutomerge", js.FuncOf(func(js.Value, []js.Value) any {
		return g.Get("Promise").Call("reject", g.Get("Error").New("offline"))
	}))
	defer g.Set("__unoLoadAutomerge", loader)
	id, jerr := settle(g.Get("__uno").Call("open", `{"name":"unavailable"}`))
	if jerr != nil {
		return jerr
	}
	var n int
	if err := json.Unmarshal([]byte(id.String()), &n); err != nil {
		return err
	}
	c := jsClient{id: n}
	unavailable.err = c.edit("n", splice([]any{"text"}, 0, 0, "x"))
	// After a failed load, a later use tries again.
	g.Set("__unoLoadAutomerge", loader)
	if err := c.try("text", []any{"notes", "n", "body", []any{"text"}}, &unavailable.text); err != nil {
		return fmt.Errorf("text after the loader came back: %v", err)
	}
	return c.try("close", nil, nil).orNil()
}

// jsError is a rejected call's {code, message}.
type jsError struct {
	Code    int
	Message string
}

func (e *jsError) Error() string { return fmt.Sprintf("%s (code %d)", e.Message, e.Code) }

func (e *jsError) orNil() error {
	if e == nil {
		return nil
	}
	return e
}

// settle waits for a Promise.
func settle(p js.Value) (js.Value, *jsError) {
	type result struct {
		v   js.Value
		err *jsError
	}
	ch := make(chan result, 1)
	ok := js.FuncOf(func(_ js.Value, a []js.Value) any {
		ch <- result{v: a[0]}
		return nil
	})
	fail := js.FuncOf(func(_ js.Value, a []js.Value) any {
		ch <- result{err: &jsError{Code: a[0].Get("code").Int(), Message: a[0].Get("message").String()}}
		return nil
	})
	defer ok.Release()
	defer fail.Release()
	p.Call("then", ok, fail)
	r := <-ch
	return r.v, r.err
}

// jsClient is a client opened through the bridge.
type jsClient struct {
	t  testing.TB
	id int
}

func open(t testing.TB) *jsClient {
	t.Helper()
	opts, _ := json.Marshal(map[string]any{"name": fmt.Sprintf("%s-%d", t.Name(), time.Now().UnixNano())})
	v, err := settle(js.Global().Get("__uno").Call("open", string(opts)))
	if err != nil {
		t.Fatal(err)
	}
	var id int
	if err := json.Unmarshal([]byte(v.String()), &id); err != nil {
		t.Fatal(err)
	}
	c := &jsClient{t: t, id: id}
	t.Cleanup(func() { c.try("close", nil, nil) })
	return c
}

// try calls a method with args and decodes its result into dst (if not
// nil).
func (c *jsClient) try(method string, args []any, dst any) *jsError {
	if args == nil {
		args = []any{}
	}
	a, err := json.Marshal(args)
	if err != nil {
		panic(err)
	}
	v, jerr := settle(js.Global().Get("__uno").Call("call", c.id, method, string(a)))
	if jerr != nil {
		return jerr
	}
	if dst != nil && v.Type() == js.TypeString {
		if err := json.Unmarshal([]byte(v.String()), dst); err != nil {
			return &jsError{Code: -1, Message: fmt.Sprintf("decode %s: %v", v.String(), err)}
		}
	}
	return nil
}

func (c *jsClient) do(method string, args []any, dst any) {
	c.t.Helper()
	if err := c.try(method, args, dst); err != nil {
		c.t.Fatalf("%s %v: %v", method, args, err)
	}
}

// edit applies doc edits to notes/id.body in one transaction.
func (c *jsClient) edit(id string, edits ...map[string]any) *jsError {
	return c.try("tx", []any{[]any{map[string]any{"op": "doc", "collection": "notes", "id": id, "field": "body", "edits": edits}}}, nil)
}

func splice(path []any, pos, del int, text string) map[string]any {
	return map[string]any{"splice": map[string]any{"path": path, "pos": pos, "del": del, "text": text}}
}

func edit(kind string, members ...any) map[string]any {
	m := map[string]any{}
	for i := 0; i < len(members); i += 2 {
		m[members[i].(string)] = members[i+1]
	}
	return map[string]any{kind: m}
}

func (c *jsClient) readDoc(id string, path []any) string {
	c.t.Helper()
	var v json.RawMessage
	c.do("readDoc", []any{"notes", id, "body", path}, &v)
	return string(v)
}

func TestBridge_DocUnavailable(t *testing.T) {
	if unavailable.err == nil || unavailable.err.Code != CodeDocUnavailable {
		t.Fatalf("a doc edit while Automerge cannot load: %v, want code %d", unavailable.err, CodeDocUnavailable)
	}
	if unavailable.text != "" {
		t.Errorf("text of a failed edit: %q, want none", unavailable.text)
	}
}

// Every kind of edit, in one transaction, and the reads.
func TestBridge_EditDoc(t *testing.T) {
	c := open(t)
	text := []any{"text"}
	if err := c.edit("n1",
		splice(text, 0, 0, "hello world"),
		splice(text, 5, 6, ", doc"),
		edit("put", "path", []any{"editors", "ann"}, "value", "2026-01-02T03:04:05Z"),
		edit("put", "path", []any{"tags"}, "value", []any{"a", "c"}),
		edit("insert", "path", []any{"tags"}, "index", 1, "value", "b"),
		edit("put", "path", []any{"gone"}, "value", map[string]any{"x": 1}),
		edit("delete", "path", []any{"gone"}),
		edit("increment", "path", []any{"views"}, "delta", 3),
		edit("increment", "path", []any{"views"}, "delta", -1),
	); err != nil {
		t.Fatal(err)
	}
	want := `{"editors":{"ann":"2026-01-02T03:04:05Z"},"tags":["a","b","c"],"text":"hello, doc","views":2}`
	if got := c.readDoc("n1", nil); got != want {
		t.Errorf("readDoc = %s, want %s", got, want)
	}
	if got := c.readDoc("n1", []any{"tags", 1}); got != `"b"` {
		t.Errorf("readDoc tags/1 = %s", got)
	}
	if got := c.readDoc("n1", []any{"missing"}); got != `null` {
		t.Errorf("readDoc of a missing key = %s, want null", got)
	}
	var s string
	c.do("text", []any{"notes", "n1", "body", text}, &s)
	if s != "hello, doc" {
		t.Errorf("text = %q", s)
	}
	// The row shows the doc as its JSON.
	var row doc
	c.do("get", []any{"notes", "n1"}, &row)
	if got := string(row.Fields["body"]); got != want {
		t.Errorf("the row's body = %s, want %s", got, want)
	}
	// A row that does not exist reads as an empty document.
	if got := c.readDoc("nobody", nil); got != `{}` {
		t.Errorf("readDoc of a missing row = %s, want {}", got)
	}
}

// Text positions count UTF-16 code units, as JavaScript strings do.
func TestBridge_SpliceUTF16(t *testing.T) {
	c := open(t)
	text := []any{"text"}
	if err := c.edit("n", splice(text, 0, 0, "a😀b")); err != nil {
		t.Fatal(err)
	}
	// "a😀b".length is 4 in JavaScript: b is at 3.
	if err := c.edit("n", splice(text, 3, 1, "c"), splice(text, 4, 0, "!")); err != nil {
		t.Fatal(err)
	}
	var s string
	c.do("text", []any{"notes", "n", "body", text}, &s)
	if s != "a😀c!" {
		t.Errorf("text = %q, want %q", s, "a😀c!")
	}
}

// Errors carry their codes, and a failed transaction changes nothing.
func TestBridge_DocErrors(t *testing.T) {
	c := open(t)
	text := []any{"text"}
	if err := c.edit("n", splice(text, 0, 0, "abc")); err != nil {
		t.Fatal(err)
	}
	c.do("tx", []any{[]any{map[string]any{"op": "put", "collection": "notes", "id": "r", "doc": map[string]any{"body": "a register"}}}}, nil)
	before := c.readDoc("n", nil)
	for _, tt := range []struct {
		name  string
		id    string
		edits []map[string]any
		code  int
	}{
		{"splice beyond the text", "n", []any2{splice(text, 4, 0, "x")}, CodeDocPath},
		{"delete beyond the text", "n", []any2{splice(text, 2, 5, "")}, CodeDocPath},
		{"splice of a map", "n", []any2{edit("put", "path", []any{"m"}, "value", map[string]any{}), splice([]any{"m"}, 0, 0, "x")}, CodeDocPath},
		{"a key of text", "n", []any2{edit("put", "path", []any{"text", "k"}, "value", 1)}, CodeDocPath},
		{"a negative index", "n", []any2{edit("delete", "path", []any{"l", -1})}, CodeDocPath},
		{"a path of a bool", "n", []any2{edit("delete", "path", []any{true})}, CodeDocPath},
		{"a register field", "r", []any2{splice(text, 0, 0, "x")}, CodeKindMismatch},
		{"a delta beyond 2^53", "n", []any2{edit("increment", "path", []any{"c"}, "delta", int64(1)<<54)}, CodeInvalidValue},
		{"put without a value", "n", []any2{edit("put", "path", []any{"k"})}, CodeBadArgument},
		{"two kinds in one edit", "n", []any2{{"put": map[string]any{"path": []any{"k"}, "value": 1}, "delete": map[string]any{"path": []any{"k"}}}}, CodeBadArgument},
		{"no kind", "n", []any2{{}}, CodeBadArgument},
		{"a bad field name", "n", nil, CodeInvalidName},
	} {
		t.Run(tt.name, func(t *testing.T) {
			field := "body"
			if tt.edits == nil {
				field = "Body!"
			}
			// Each transaction first makes a valid edit: it must not stay.
			edits := append([]any2{edit("put", "path", []any{"first"}, "value", true)}, tt.edits...)
			err := c.try("tx", []any{[]any{map[string]any{"op": "doc", "collection": "notes", "id": tt.id, "field": field, "edits": edits}}}, nil)
			if err == nil || err.Code != tt.code {
				t.Fatalf("got %v, want code %d", err, tt.code)
			}
			if got := c.readDoc("n", nil); got != before {
				t.Errorf("after the failed transaction the document is %s, want %s", got, before)
			}
		})
	}
	for _, tt := range []struct {
		method string
		args   []any
		code   int
	}{
		{"readDoc", []any{"notes", "n", "body", []any{"text", 0}}, CodeDocPath},
		{"readDoc", []any{"notes", "n", "body", "text"}, CodeDocPath}, // uno.js turns a key into a path
		{"text", []any{"notes", "n", "body", []any{}}, CodeDocPath},
		{"readDoc", []any{"notes", "n"}, CodeBadArgument},
	} {
		if err := c.try(tt.method, tt.args, nil); err == nil || err.Code != tt.code {
			t.Errorf("%s %v: got %v, want code %d", tt.method, tt.args, err, tt.code)
		}
	}
}

type any2 = map[string]any

// A doc watch delivers the document now, then each change with the paths
// it touched, and stops when told.
func TestBridge_WatchDoc(t *testing.T) {
	c := open(t)
	type update struct {
		Doc   json.RawMessage `json:"doc"`
		Paths [][]any         `json:"paths"`
	}
	updates := make(chan update, 16)
	cb := js.FuncOf(func(_ js.Value, a []js.Value) any {
		if a[0].IsNull() {
			t.Errorf("watch error: %s (code %d)", a[1].String(), a[2].Int())
			return nil
		}
		var u update
		if err := json.Unmarshal([]byte(a[0].String()), &u); err != nil {
			t.Errorf("update %s: %v", a[0].String(), err)
		}
		updates <- u
		return nil
	})
	defer cb.Release()
	api := js.Global().Get("__uno")
	wid := api.Call("watchDoc", c.id, "notes", "w", "body", cb).Int()
	if wid < 0 {
		t.Fatal("watchDoc refused its arguments")
	}
	next := func(want string) update {
		t.Helper()
		select {
		case u := <-updates:
			if string(u.Doc) != want {
				t.Fatalf("update %s, want %s", u.Doc, want)
			}
			return u
		case <-time.After(20 * time.Second): // a bound for a hung watch, not a pace
			t.Fatalf("no update (want %s)", want)
		}
		return update{}
	}
	if u := next("null"); u.Paths == nil || len(u.Paths) != 0 {
		t.Errorf("first update's paths: %v, want []", u.Paths)
	}
	if err := c.edit("w", splice([]any{"text"}, 0, 0, "hi"), edit("put", "path", []any{"editors", "ann"}, "value", "now")); err != nil {
		t.Fatal(err)
	}
	// The row appeared: the root changed.
	if u := next(`{"editors":{"ann":"now"},"text":"hi"}`); fmt.Sprint(u.Paths) != "[[]]" {
		t.Errorf("paths %v, want [[]]", u.Paths)
	}
	if err := c.edit("w", edit("put", "path", []any{"editors", "bob"}, "value", "later"), splice([]any{"text"}, 0, 0, "oh ")); err != nil {
		t.Fatal(err)
	}
	if u := next(`{"editors":{"ann":"now","bob":"later"},"text":"oh hi"}`); fmt.Sprint(u.Paths) != "[[editors bob] [text]]" {
		t.Errorf("paths %v, want [[editors bob] [text]]", u.Paths)
	}
	if err := c.edit("w", splice([]any{"text"}, 5, 0, "!")); err != nil {
		t.Fatal(err)
	}
	if u := next(`{"editors":{"ann":"now","bob":"later"},"text":"oh hi!"}`); !slices.EqualFunc(u.Paths, [][]any{{"text"}}, func(a, b []any) bool { return fmt.Sprint(a) == fmt.Sprint(b) }) {
		t.Errorf("paths %v, want [[text]]", u.Paths)
	}
	api.Call("stop", wid)
	if err := c.edit("w", splice([]any{"text"}, 0, 0, "x")); err != nil {
		t.Fatal(err)
	}
	// The edit is committed; a watch still running would have sent it
	// by the time a read returns after it.
	c.readDoc("w", nil)
	select {
	case u := <-updates:
		t.Errorf("an update after stop: %s", u.Doc)
	default:
	}
	if code := api.Call("watchDoc", c.id, "notes", "w", "body").Int(); code != -1 {
		t.Errorf("watchDoc without a callback: %d, want -1", code)
	}
}

// editDocWith's function sees the document inside the transaction and
// returns the edits; one that fails aborts the transaction.
func TestBridge_EditDocWith(t *testing.T) {
	c := open(t)
	if err := c.edit("n", splice([]any{"text"}, 0, 0, "abc")); err != nil {
		t.Fatal(err)
	}
	api := js.Global().Get("__uno")
	var seen []string
	with := func(edits string) *jsError {
		fn := js.FuncOf(func(_ js.Value, a []js.Value) any {
			seen = append(seen, a[0].String())
			if edits == "" {
				return js.Null()
			}
			return edits
		})
		defer fn.Release()
		_, err := settle(api.Call("editDocWith", c.id, "notes", "n", "body", fn))
		return err
	}
	if err := with(`[{"splice":{"path":["text"],"pos":3,"del":0,"text":"d"}}]`); err != nil {
		t.Fatal(err)
	}
	if err := with(""); err == nil {
		t.Error("a function returning null did not abort")
	}
	if err := with(`[{"splice":{"path":["text"],"pos":0,"del":0,"text":"x"}},{"splice":{"path":["text"],"pos":9,"del":0,"text":"x"}}]`); err == nil || err.Code != CodeDocPath {
		t.Errorf("a splice beyond the text: %v, want code %d", err, CodeDocPath)
	}
	if err := with(`[]`); err != nil {
		t.Errorf("no edits: %v", err)
	}
	want := []string{`{"text":"abc"}`, `{"text":"abcd"}`, `{"text":"abcd"}`, `{"text":"abcd"}`}
	if !slices.Equal(seen, want) {
		t.Errorf("the function saw %q, want %q", seen, want)
	}
	if got := c.readDoc("n", nil); got != `{"text":"abcd"}` {
		t.Errorf("document %s", got)
	}
}

// BenchmarkBridge_LocalWrites is BenchmarkBrowserLocalWrites's workload
// (internal/browser) through the bridge under Node: 1,000-row
// transactions of four fields, as uno.js's transaction().commit() sends
// them.
func BenchmarkBridge_LocalWrites(b *testing.B) {
	c := open(b)
	n := 0
	for b.Loop() {
		ops := make([]any, 1000)
		for i := range ops {
			n++
			ops[i] = map[string]any{"op": "put", "collection": "bench", "id": fmt.Sprint("r", n),
				"doc": map[string]any{"title": fmt.Sprint("row ", i), "done": false, "rank": i, "note": strconv.FormatInt(int64(n)*7919, 36)}}
		}
		c.do("tx", []any{ops}, nil)
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "rows/s")
}

// A commit IndexedDB does not keep rejects with CodeNotSaved and leaves
// nothing behind; the database goes on.
func TestBridge_NotSaved(t *testing.T) {
	c := open(t)
	put := func(id string) *jsError {
		return c.try("tx", []any{[]any{map[string]any{"op": "put", "collection": "todos", "id": id, "doc": map[string]any{"title": id}}}}, nil)
	}
	if err := put("a"); err != nil {
		t.Fatal(err)
	}
	engine, jerr := settle(js.Global().Call("__unoLoadSQLite"))
	if jerr != nil {
		t.Fatal(jerr)
	}
	abort := js.FuncOf(func(_ js.Value, a []js.Value) any {
		a[0].Call("abort")
		return nil
	})
	defer abort.Release()
	engine.Set("beforeCommit", abort)
	err := put("b")
	engine.Set("beforeCommit", js.Null())
	if err == nil || err.Code != CodeNotSaved {
		t.Fatalf("a write IndexedDB refused: %v, want code %d", err, CodeNotSaved)
	}
	if err := c.try("get", []any{"todos", "b"}, nil); err == nil || err.Code != CodeNotFound {
		t.Fatalf("get of the refused row: %v, want code %d", err, CodeNotFound)
	}
	if err := put("b"); err != nil {
		t.Fatalf("the write again: %v", err)
	}
	var doc struct{ Fields map[string]any }
	c.do("get", []any{"todos", "b"}, &doc)
	if doc.Fields["title"] != "b" {
		t.Fatalf("row b = %v", doc)
	}
}
