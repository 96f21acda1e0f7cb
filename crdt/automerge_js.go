//go:build js

package crdt

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync"
	"syscall/js"
	"time"

	"github.com/unosync/uno/internal/jspromise"
)

// The browser binding: the npm package @automerge/automerge (3.x), whose
// WebAssembly core writes the same bytes as automerge-go. It is loaded the
// first time a doc field is used, so an app without doc fields downloads
// nothing more: [OpenDocument], [DocCompactor] and [DocValidator] call
// globalThis.__unoLoadAutomerge(), which uno.js installs (and, under Node,
// wasm/test/node-setup.cjs), and wait for the Promise of the module it
// returns. They block the calling goroutine until it settles, so they must
// not run inside a js.FuncOf callback (the bridge runs every call on its
// own goroutine).
//
// Documents are edited through the module's low-level mutable handle (the
// automerge-wasm Automerge class): edits accumulate and one commit makes
// one change, as with automerge-go.

// DocEditing reports whether this build can read and edit doc fields.
// It is true natively with cgo (automerge-go) and in the browser
// (@automerge/automerge); false otherwise, where doc edits return
// [ErrDocUnavailable].
const DocEditing = true

func init() {
	DocCompactor = compactAutomerge
	DocValidator = validateAutomerge
}

// automerge holds the @automerge/automerge module once loaded.
var automerge struct {
	mu  sync.Mutex
	mod js.Value // undefined until loaded
}

// loadError is a failed load of the Automerge module: doc fields cannot
// be read or edited for now, so it matches [ErrDocUnavailable]. A later
// use tries again.
type loadError struct{ err error }

func (e *loadError) Error() string {
	return "crdt: doc editing unavailable: load @automerge/automerge: " + e.err.Error()
}
func (e *loadError) Unwrap() error        { return e.err }
func (e *loadError) Is(target error) bool { return target == ErrDocUnavailable }

// automergeModule returns the Automerge module, loading it the first time.
func automergeModule() (js.Value, error) {
	automerge.mu.Lock()
	defer automerge.mu.Unlock()
	if !automerge.mod.IsUndefined() {
		return automerge.mod, nil
	}
	load := js.Global().Get("__unoLoadAutomerge")
	if load.Type() != js.TypeFunction {
		return js.Value{}, &loadError{errors.New("globalThis.__unoLoadAutomerge is not a function (uno.js installs it)")}
	}
	var p js.Value
	if err := catch(func() { p = load.Invoke() }); err != nil {
		return js.Value{}, &loadError{err}
	}
	mod, err := jspromise.Await(p)
	if err == nil && mod.Type() != js.TypeObject {
		err = errors.New("__unoLoadAutomerge resolved to no module")
	}
	if err == nil && mod.Get("getBackend").Type() != js.TypeFunction {
		err = errors.New("__unoLoadAutomerge resolved to a module without getBackend (want @automerge/automerge 3.x)")
	}
	if err != nil {
		return js.Value{}, &loadError{err}
	}
	automerge.mod = mod
	return mod, nil
}

// catch runs f and returns the JavaScript exception it raised, if any.
func catch(f func()) (err error) {
	defer func() {
		if r := recover(); r != nil {
			e, ok := r.(js.Error)
			if !ok {
				panic(r)
			}
			err = jspromise.Error(e.Value)
		}
	}()
	f()
	return nil
}

// newHandle returns an empty automerge-wasm document whose changes are
// authored by actor (hex), or by a random actor if it is empty.
func newHandle(am js.Value, actor string) (js.Value, error) {
	opts := map[string]any{}
	if actor != "" {
		opts["actor"] = actor
	}
	var h js.Value
	err := catch(func() { h = am.Call("getBackend", am.Call("init", opts)) })
	return h, err
}

// loadChunks loads Automerge chunks (changes and saved documents) into h.
func loadChunks(h js.Value, chunks [][]byte) error {
	for _, c := range chunks {
		if err := catch(func() { h.Call("loadIncremental", jsBytes(c)) }); err != nil {
			return fmt.Errorf("%w: doc: %v", ErrDecode, err)
		}
	}
	return nil
}

func compactAutomerge(chunks [][]byte, heads []DocHead) ([]byte, bool) {
	am, err := automergeModule()
	if err != nil {
		return nil, false
	}
	h, err := newHandle(am, "")
	if err != nil {
		return nil, false
	}
	defer h.Call("free")
	if err := loadChunks(h, chunks); err != nil {
		return nil, false
	}
	if !(&DocState{Heads: heads}).HeadsAre(handleHeads(h)) {
		return nil, false
	}
	return goBytes(h.Call("save")), true
}

// validateAutomerge decodes change chunks in full. When the module cannot
// be loaded it accepts them: [ValidateTx] has checked their headers, as in
// a build without the library.
func validateAutomerge(changes []byte) error {
	am, err := automergeModule()
	if err != nil {
		return nil
	}
	chs, err := splitChanges(changes, maxDecodeBytes)
	if err != nil {
		return err
	}
	h, err := newHandle(am, "")
	if err != nil {
		return err
	}
	defer h.Call("free")
	return catch(func() { h.Call("applyChanges", jsChanges(chs)) })
}

func jsChanges(chs []amChangeHeader) js.Value {
	arr := js.Global().Get("Array").New(len(chs))
	for i, ch := range chs {
		arr.SetIndex(i, jsBytes(ch.Raw))
	}
	return arr
}

func jsBytes(b []byte) js.Value {
	a := js.Global().Get("Uint8Array").New(len(b))
	js.CopyBytesToJS(a, b)
	return a
}

func goBytes(a js.Value) []byte {
	b := make([]byte, a.Length())
	js.CopyBytesToGo(b, a)
	return b
}

// handleHeads returns h's heads, sorted.
func handleHeads(h js.Value) []ChangeHash {
	hs := h.Call("getHeads")
	out := make([]ChangeHash, hs.Length())
	for i := range out {
		if _, err := hex.Decode(out[i][:], []byte(hs.Index(i).String())); err != nil {
			panic(fmt.Sprintf("crdt: Automerge head %q is not a hash: %v", hs.Index(i).String(), err))
		}
	}
	slices.SortFunc(out, ChangeHash.Compare)
	return out
}

// Document is an open Automerge document: a doc field's state loaded for
// reading and editing. Edits accumulate until [Document.Commit] turns them
// into one change authored by the site. A Document is not safe for
// concurrent use, and must not be used after [Document.Close].
type Document struct {
	h     js.Value // the automerge-wasm Automerge handle
	dirty bool
}

// OpenDocument loads a doc field's state; edits are authored by site.
// The first call loads the Automerge module (see the file comment): an
// error matching [ErrDocUnavailable] means it could not be loaded.
func OpenDocument(s *DocState, site SiteID) (*Document, error) {
	am, err := automergeModule()
	if err != nil {
		return nil, err
	}
	h, err := newHandle(am, site.String())
	if err != nil {
		return nil, err
	}
	if err := loadChunks(h, s.Chunks); err != nil {
		h.Call("free")
		return nil, err
	}
	return &Document{h: h}, nil
}

// Apply loads Automerge change chunks (an [OpChange] value) into the
// document. Bytes that are not whole change chunks return an error
// wrapping ErrDecode and change nothing (automerge-go ignores them).
func (d *Document) Apply(changes []byte) error {
	if len(changes) == 0 {
		return nil
	}
	chs, err := splitChanges(changes, maxDecodeBytes)
	if err == nil {
		err = catch(func() { d.h.Call("applyChanges", jsChanges(chs)) })
	}
	if err != nil {
		return fmt.Errorf("%w: doc: %v", ErrDecode, err)
	}
	return nil
}

// Heads returns the document's heads, sorted.
func (d *Document) Heads() []ChangeHash { return handleHeads(d.h) }

// Save returns the document saved whole.
func (d *Document) Save() []byte { return goBytes(d.h.Call("save")) }

// Commit ends the current edits: it returns them as one change chunk, or
// nil if there were none. ts stamps the change (Automerge keeps
// milliseconds).
func (d *Document) Commit(ts Timestamp) ([]byte, error) {
	if !d.dirty {
		return nil, nil
	}
	d.dirty = false
	t := ts.Time()
	ms := js.Null()
	if !t.IsZero() {
		ms = js.ValueOf(t.UnixMilli())
	}
	var ch []byte
	err := catch(func() {
		if d.h.Call("commit", js.Null(), ms).IsNull() {
			return
		}
		ch = goBytes(d.h.Call("getLastLocalChange"))
	})
	return ch, err
}

// amValue is a value as getWithType reads it: its Automerge datatype
// ("map", "list", "text", "str", "int", "counter", ...; "" when nothing is
// there) and the value, or the object's ID.
type amValue struct {
	typ string
	v   js.Value
}

var amRoot = amValue{typ: "map", v: js.ValueOf("_root")}

func (d *Document) get(obj js.Value, prop any) amValue {
	r := d.h.Call("getWithType", obj, prop)
	if r.Type() != js.TypeObject {
		return amValue{}
	}
	return amValue{typ: r.Index(0).String(), v: r.Index(1)}
}

func (d *Document) length(obj js.Value) int { return d.h.Call("length", obj).Int() }

// do runs an edit or a read of p: it checks p first, and turns a
// JavaScript exception into an error wrapping ErrDocPath.
func (d *Document) do(p Path, f func() error) error {
	if err := p.check(); err != nil {
		return err
	}
	var ferr error
	if err := catch(func() { ferr = f() }); err != nil {
		return fmt.Errorf("%w %s: %v", ErrDocPath, p, err)
	}
	return ferr
}

// edit runs an edit of p as do does, and marks the document edited if
// it succeeds.
func (d *Document) edit(p Path, f func() error) error {
	if err := d.do(p, f); err != nil {
		return err
	}
	d.dirty = true
	return nil
}

// resolve returns the value at p, void if a key or index on the way is
// missing.
func (d *Document) resolve(p Path) (amValue, error) {
	cur := amRoot
	for _, s := range p {
		switch s := s.(type) {
		case string:
			if cur.typ == "" {
				return cur, nil
			}
			if cur.typ != "map" {
				return amValue{}, fmt.Errorf("%w %s: reads key %q of a %s", ErrDocPath, p, s, cur.typ)
			}
			cur = d.get(cur.v, s)
		case int:
			if cur.typ == "" {
				return cur, nil
			}
			if cur.typ != "list" {
				return amValue{}, fmt.Errorf("%w %s: reads index %d of a %s", ErrDocPath, p, s, cur.typ)
			}
			if s >= d.length(cur.v) {
				return amValue{}, nil
			}
			cur = d.get(cur.v, s)
		}
	}
	return cur, nil
}

// slot is where a write at a path lands: key prop of the map obj, or
// index prop of the list obj of length n, holding cur. A write to a slot
// with ins set inserts before prop; ensure sets it for index n (the write
// appends).
type slot struct {
	obj  js.Value
	prop any // string or int
	n    int
	ins  bool
	cur  amValue
}

// ensure returns the slot p (not the root) leads to, creating the maps
// and lists on the way that are missing, as automerge-go does.
func (d *Document) ensure(p Path) (slot, error) {
	parent, last := p[:len(p)-1], p[len(p)-1]
	switch key := last.(type) {
	case string:
		obj, err := d.ensureObj(parent, "map")
		if err != nil {
			return slot{}, err
		}
		return slot{obj: obj, prop: key, cur: d.get(obj, key)}, nil
	case int:
		obj, err := d.ensureObj(parent, "list")
		if err != nil {
			return slot{}, err
		}
		s := slot{obj: obj, prop: key, n: d.length(obj)}
		if key < s.n {
			s.cur = d.get(obj, key)
		} else {
			s.ins = key == s.n
		}
		return s, nil
	}
	panic("crdt: Path.check let through a segment that is neither a string nor an int")
}

// ensureObj returns the ID of the map or list (typ) at p, creating it if
// nothing is there.
func (d *Document) ensureObj(p Path, typ string) (js.Value, error) {
	if len(p) == 0 {
		if typ != "map" {
			return js.Value{}, fmt.Errorf("%w %s: the root is a map, not a list", ErrDocPath, p)
		}
		return amRoot.v, nil
	}
	s, err := d.ensure(p)
	if err != nil {
		return js.Value{}, err
	}
	switch s.cur.typ {
	case typ:
		return s.cur.v, nil
	case "":
		return d.putObject(s, typ)
	}
	return js.Value{}, fmt.Errorf("%w %s: holds a %s, not a %s", ErrDocPath, p, s.cur.typ, typ)
}

// writable refuses a write beyond the end of a list.
func (s slot) writable() error {
	if i, ok := s.prop.(int); ok && i > s.n {
		return fmt.Errorf("%w: index %d is beyond the end of a list of %d", ErrDocPath, i, s.n)
	}
	return nil
}

// putObject creates an empty map, list or text (typ) at s.
func (d *Document) putObject(s slot, typ string) (js.Value, error) {
	if err := s.writable(); err != nil {
		return js.Value{}, err
	}
	var empty any
	switch typ {
	case "map":
		empty = map[string]any{}
	case "list":
		empty = []any{}
	case "text":
		empty = ""
	}
	if s.ins {
		return d.h.Call("insertObject", s.obj, s.prop, empty), nil
	}
	return d.h.Call("putObject", s.obj, s.prop, empty), nil
}

// putScalar writes v, of Automerge datatype typ, at s.
func (d *Document) putScalar(s slot, v js.Value, typ string) error {
	if err := s.writable(); err != nil {
		return err
	}
	if s.ins {
		d.h.Call("insert", s.obj, s.prop, v, typ)
	} else {
		d.h.Call("put", s.obj, s.prop, v, typ)
	}
	return nil
}

// write writes v, a value docValue returned, at s: maps and lists as
// Automerge maps and lists, strings as scalar strings.
func (d *Document) write(s slot, v any) error {
	switch v := v.(type) {
	case map[string]any:
		id, err := d.putObject(s, "map")
		if err != nil {
			return err
		}
		for _, k := range slices.Sorted(maps.Keys(v)) {
			if err := d.write(slot{obj: id, prop: k}, v[k]); err != nil {
				return err
			}
		}
		return nil
	case []any:
		id, err := d.putObject(s, "list")
		if err != nil {
			return err
		}
		for i, x := range v {
			if err := d.write(slot{obj: id, prop: i, n: i, ins: true}, x); err != nil {
				return err
			}
		}
		return nil
	case string:
		return d.putScalar(s, js.ValueOf(v), "str")
	case int64:
		return d.putScalar(s, jsInt(v), "int")
	case float64:
		return d.putScalar(s, js.ValueOf(v), "f64")
	case bool:
		return d.putScalar(s, js.ValueOf(v), "boolean")
	case nil:
		return d.putScalar(s, js.Null(), "null")
	}
	panic(fmt.Sprintf("crdt: docValue returned a %T", v))
}

// maxExactInt bounds the integers a JavaScript number holds exactly.
const maxExactInt = 1 << 53

// jsInt returns i as a JavaScript number, or a BigInt beyond 2^53.
func jsInt(i int64) js.Value {
	if -maxExactInt < i && i < maxExactInt {
		return js.ValueOf(i)
	}
	return js.Global().Get("BigInt").Invoke(strconv.FormatInt(i, 10))
}

// goValue returns v as automerge-go's Value.Interface does: maps as
// map[string]any, lists as []any, text as string, counters and integers
// as int64 (uint64), bytes as []byte, timestamps as time.Time.
func (d *Document) goValue(v amValue) (any, error) {
	switch v.typ {
	case "map":
		keys := d.h.Call("keys", v.v)
		out := make(map[string]any, keys.Length())
		for i := range keys.Length() {
			k := keys.Index(i).String()
			x, err := d.goValue(d.get(v.v, k))
			if err != nil {
				return nil, err
			}
			out[k] = x
		}
		return out, nil
	case "list":
		n := d.length(v.v)
		out := make([]any, n)
		for i := range n {
			x, err := d.goValue(d.get(v.v, i))
			if err != nil {
				return nil, err
			}
			out[i] = x
		}
		return out, nil
	case "text":
		return d.h.Call("text", v.v).String(), nil
	case "str":
		return v.v.String(), nil
	case "int", "counter":
		// Values beyond 2^53 are BigInts, which syscall/js cannot type:
		// read their decimal form.
		return strconv.ParseInt(jsString(v.v), 10, 64)
	case "uint":
		return strconv.ParseUint(jsString(v.v), 10, 64)
	case "f64":
		return v.v.Float(), nil
	case "boolean":
		return v.v.Bool(), nil
	case "timestamp":
		return time.UnixMilli(int64(v.v.Call("getTime").Float())), nil
	case "bytes":
		return goBytes(v.v), nil
	}
	return nil, nil // nothing there, null, or a datatype JSON has no form for
}

func jsString(v js.Value) string { return js.Global().Get("String").Invoke(v).String() }

// Put sets the value at p, a JSON value, creating missing maps on the
// way. Strings are stored as scalar strings; use [Document.Splice] for
// collaborative text. An index one past the end of a list appends.
func (d *Document) Put(p Path, value []byte) error {
	if len(p) == 0 {
		return fmt.Errorf("%w: cannot replace the root map (put its keys)", ErrDocPath)
	}
	v, err := docValue(value)
	if err != nil {
		return err
	}
	return d.edit(p, func() error {
		s, err := d.ensure(p)
		if err != nil {
			return err
		}
		return d.write(s, v)
	})
}

// Insert inserts a JSON value into the list at p before index i.
func (d *Document) Insert(p Path, i int, value []byte) error {
	v, err := docValue(value)
	if err != nil {
		return err
	}
	return d.edit(p, func() error {
		if i < 0 {
			return fmt.Errorf("%w %s: insert at negative index %d", ErrDocPath, p, i)
		}
		obj, err := d.ensureObj(p, "list")
		if err != nil {
			return err
		}
		n := d.length(obj)
		if i > n {
			return fmt.Errorf("%w %s: insert at index %d beyond the end of a list of %d", ErrDocPath, p, i, n)
		}
		return d.write(slot{obj: obj, prop: i, n: n, ins: true}, v)
	})
}

// Delete removes the map key or list element at p.
func (d *Document) Delete(p Path) error {
	if len(p) == 0 {
		return fmt.Errorf("%w: cannot delete the root map", ErrDocPath)
	}
	return d.edit(p, func() error {
		s, err := d.ensure(p)
		if err != nil {
			return err
		}
		if i, ok := s.prop.(int); ok && i >= s.n {
			return fmt.Errorf("%w %s: delete index %d beyond the end of a list of %d", ErrDocPath, p, i, s.n)
		}
		d.h.Call("delete", s.obj, s.prop)
		return nil
	})
}

// Splice edits the text at p: deletes del characters at pos and inserts
// text there. A missing value at p becomes an empty text first.
// Positions count UTF-16 code units, as JavaScript strings do (natively
// they count Unicode code points: the two differ for characters beyond
// the Basic Multilingual Plane, such as most emoji, which take two).
func (d *Document) Splice(p Path, pos, del int, text string) error {
	if pos < 0 || del < 0 {
		return fmt.Errorf("%w %s: negative position or count", ErrDocPath, p)
	}
	return d.edit(p, func() error {
		v, err := d.resolve(p)
		if err != nil {
			return err
		}
		switch v.typ {
		case "":
			s, err := d.ensure(p)
			if err != nil {
				return err
			}
			if v.v, err = d.putObject(s, "text"); err != nil {
				return err
			}
		case "text":
		default:
			return fmt.Errorf("%w %s: holds a %s, not text", ErrDocPath, p, v.typ)
		}
		if n := d.length(v.v); pos > n || pos+del > n {
			return fmt.Errorf("%w %s: splice at %d deleting %d in a text of %d characters", ErrDocPath, p, pos, del, n)
		}
		d.h.Call("splice", v.v, pos, del, text)
		return nil
	})
}

// Increment adds delta to the counter at p, creating it (at zero) if
// missing. @automerge/automerge takes deltas within ±2^53 only; a larger
// one returns an error wrapping ErrInvalidValue.
func (d *Document) Increment(p Path, delta int64) error {
	if len(p) == 0 {
		return fmt.Errorf("%w: the root is a map, not a counter", ErrDocPath)
	}
	if delta <= -maxExactInt || delta >= maxExactInt {
		return fmt.Errorf("%w: increment by %d: @automerge/automerge takes deltas within ±2^53", ErrInvalidValue, delta)
	}
	return d.edit(p, func() error {
		s, err := d.ensure(p)
		if err != nil {
			return err
		}
		switch s.cur.typ {
		case "":
			if err := d.putScalar(s, js.ValueOf(0), "counter"); err != nil {
				return err
			}
		case "counter":
		default:
			return fmt.Errorf("%w %s: holds a %s, not a counter", ErrDocPath, p, s.cur.typ)
		}
		d.h.Call("increment", s.obj, s.prop, delta)
		return nil
	})
}

// Text returns the text at p.
func (d *Document) Text(p Path) (string, error) {
	var out string
	err := d.do(p, func() error {
		v, err := d.resolve(p)
		if err != nil {
			return err
		}
		switch v.typ {
		case "text":
			out = d.h.Call("text", v.v).String()
		case "str":
			out = v.v.String()
		case "":
		default:
			return fmt.Errorf("%w %s: holds a %s, not text", ErrDocPath, p, v.typ)
		}
		return nil
	})
	return out, err
}

// Get returns the value at p as JSON: maps as objects, lists as arrays,
// text and strings as strings, counters as numbers, bytes as base64,
// timestamps as RFC 3339 strings; null when nothing is there.
func (d *Document) Get(p Path) ([]byte, error) {
	var out any
	err := d.do(p, func() error {
		v, err := d.resolve(p)
		if err != nil {
			return err
		}
		out, err = d.goValue(v)
		return err
	})
	if err != nil {
		return nil, err
	}
	return json.Marshal(out)
}

// JSON returns the whole document as a JSON object.
func (d *Document) JSON() ([]byte, error) { return d.Get(nil) }

// Close releases the document's WebAssembly memory.
func (d *Document) Close() {
	if !d.h.IsUndefined() {
		d.h.Call("free")
		d.h = js.Value{}
	}
}
