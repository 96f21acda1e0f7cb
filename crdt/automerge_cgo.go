//go:build cgo && (linux || darwin) && (amd64 || arm64)

package crdt

import (
	"encoding/json"
	"fmt"
	"slices"
	"unicode/utf8"

	"github.com/automerge/automerge-go"
)

// DocEditing reports whether this build can read and edit doc fields.
// It is true natively with cgo (automerge-go) and in the browser
// (@automerge/automerge); false otherwise, where doc edits return
// [ErrDocUnavailable].
const DocEditing = true

func init() {
	DocCompactor = compactAutomerge
	DocValidator = validateAutomerge
}

func compactAutomerge(chunks [][]byte, heads []DocHead) ([]byte, bool) {
	d, err := loadChunks(chunks)
	if err != nil || !(&DocState{Heads: heads}).HeadsAre(amHeads(d)) {
		return nil, false
	}
	return d.Save(), true
}

// validateAutomerge decodes each change chunk in full.
func validateAutomerge(changes []byte) error {
	chs, err := splitChanges(changes, maxDecodeBytes)
	if err != nil {
		return err
	}
	for _, ch := range chs {
		if err := decodeChange(ch.Raw); err != nil {
			return err
		}
	}
	return nil
}

func loadChunks(chunks [][]byte) (*automerge.Doc, error) {
	d := automerge.New()
	for _, c := range chunks {
		if err := d.LoadIncremental(c); err != nil {
			return nil, fmt.Errorf("%w: doc: %v", ErrDecode, err)
		}
	}
	return d, nil
}

// Document is an open Automerge document: a doc field's state loaded for
// reading and editing. Edits accumulate until [Document.Commit] turns them
// into one change authored by the site. A Document is not safe for
// concurrent use.
type Document struct {
	am    *automerge.Doc
	dirty bool
	// texts remembers the text objects Splice found, by path, with their
	// lengths: finding one walks the document from the root, and asking
	// its length is a call into Automerge. Any edit but a splice, and any
	// change applied, may replace them, so those forget them.
	texts map[string]*openText
	// pending is a run of typing not yet handed to Automerge (see
	// Splice); err is the first error handing one over met.
	pending pendingSplice
	err     error
}

// openText is a text object and its length in code points, counting the
// pending splice. Once the text has been read whole, a copy of it is kept
// (kept) that splices keep up to date: Automerge builds the text anew on
// every read, at a cost in the operations the text has seen, deleted ones
// included, and a doc field's JSON column is read after every write. The
// copy is bytes while the text is all ASCII (ascii: a code point's index
// is its byte's, and reading the copy is one memory copy), else runes
// (turning 64K runes into a string took three quarters of rendering a doc
// field's JSON column in the editing trace benchmark).
type openText struct {
	t     *automerge.Text
	n     int
	kept  bool
	ascii bool
	bytes []byte
	runes []rune
}

// splice applies a splice to the copy of the text, if one is kept.
func (o *openText) splice(pos, del int, ins []byte) {
	switch {
	case !o.kept:
		return
	case o.ascii && isASCII(ins):
		o.bytes = slices.Replace(o.bytes, pos, pos+del, ins...)
		return
	case o.ascii:
		o.runes, o.bytes, o.ascii = []rune(string(o.bytes)), nil, false
	}
	o.runes = slices.Replace(o.runes, pos, pos+del, []rune(string(ins))...)
}

// keep keeps s as the copy of the text.
func (o *openText) keep(s string) {
	o.kept, o.ascii = true, isASCII([]byte(s))
	if o.ascii {
		o.bytes, o.runes = []byte(s), nil
	} else {
		o.bytes, o.runes = nil, []rune(s)
	}
}

// copied returns the copy of the text, if one is kept.
func (o *openText) copied() (string, bool) {
	switch {
	case !o.kept:
		return "", false
	case o.ascii:
		return string(o.bytes), true
	}
	return string(o.runes), true
}

func isASCII(b []byte) bool {
	for _, c := range b {
		if c >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// pendingSplice is one splice, at pos of the text t (at path key),
// deleting del code points and inserting ins (n code points), that
// stands for several adjacent ones: characters typed one after another,
// or deleted by repeated backspaces or deletes. Automerge makes the same
// operations of one splice as of the run it stands for (each inserted
// character after the one before; a deleted run's characters deleted),
// with one call instead of one per keystroke.
type pendingSplice struct {
	key      string // "" when there is none
	path     Path
	t        *automerge.Text
	pos, del int
	ins      []byte
	n        int
}

// coalesce adds the splice (pos, del, text) of the text at key to the
// pending one if it continues it, and reports whether it did.
func (ps *pendingSplice) coalesce(key string, pos, del int, text string) bool {
	if ps.key != key {
		return false
	}
	switch {
	case del == 0 && pos == ps.pos+ps.n: // typing on
		ps.ins = append(ps.ins, text...)
		ps.n += utf8.RuneCountInString(text)
		return true
	case text == "" && pos+del == ps.pos+ps.n && pos >= ps.pos: // backspacing over what was typed
		for range del {
			_, size := utf8.DecodeLastRune(ps.ins)
			ps.ins = ps.ins[:len(ps.ins)-size]
		}
		ps.n -= del
		return true
	case text == "" && pos+del == ps.pos+ps.n: // ... and on into what was there
		ps.del += ps.pos - pos
		ps.pos, ps.ins, ps.n = pos, ps.ins[:0], 0
		return true
	case text == "" && ps.n == 0 && pos == ps.pos: // deleting forward
		ps.del += del
		return true
	}
	return false
}

// flush hands the pending splice to Automerge.
func (d *Document) flush() error {
	ps := &d.pending
	if ps.key == "" {
		return d.err
	}
	if err := ps.t.Splice(ps.pos, ps.del, string(ps.ins)); err != nil {
		if d.err == nil {
			d.err = fmt.Errorf("%w %s: splice at %d deleting %d: %v", ErrDocPath, ps.path, ps.pos, ps.del, err)
		}
		d.texts = nil
	} else if o := d.texts[ps.key]; o != nil {
		o.splice(ps.pos, ps.del, ps.ins)
	}
	ps.key, ps.path, ps.t, ps.ins = "", nil, nil, ps.ins[:0]
	return d.err
}

// OpenDocument loads a doc field's state; edits are authored by site.
func OpenDocument(s *DocState, site SiteID) (*Document, error) {
	d, err := loadChunks(s.Chunks)
	if err != nil {
		return nil, err
	}
	if err := d.SetActorID(site.String()); err != nil {
		return nil, err
	}
	return &Document{am: d}, nil
}

// Apply loads Automerge change chunks (an [OpChange] value) into the document.
func (d *Document) Apply(changes []byte) error {
	if err := d.flush(); err != nil {
		return err
	}
	d.texts = nil
	if err := d.am.LoadIncremental(changes); err != nil {
		return fmt.Errorf("%w: doc: %v", ErrDecode, err)
	}
	return nil
}

// Heads returns the document's heads, sorted.
func (d *Document) Heads() []ChangeHash {
	d.flush() // an error stays in d.err for Commit
	out := amHeads(d.am)
	slices.SortFunc(out, ChangeHash.Compare)
	return out
}

func amHeads(d *automerge.Doc) []ChangeHash {
	hs := d.Heads()
	out := make([]ChangeHash, len(hs))
	for i, h := range hs {
		out[i] = ChangeHash(h)
	}
	return out
}

// Save returns the document saved whole.
func (d *Document) Save() []byte {
	d.flush() // an error stays in d.err for Commit
	return d.am.Save()
}

// Commit ends the current edits: it returns them as one change chunk, or
// nil if there were none. ts stamps the change (Automerge keeps
// milliseconds).
func (d *Document) Commit(ts Timestamp) ([]byte, error) {
	if err := d.flush(); err != nil {
		return nil, err
	}
	if !d.dirty {
		return nil, nil
	}
	d.dirty = false
	t := ts.Time()
	h, err := d.am.Commit("", automerge.CommitOptions{Time: &t})
	if err != nil {
		// automerge-go says so in words only, and asking for the heads
		// first would commit the edits itself.
		if err.Error() == "Commit is empty" {
			return nil, nil
		}
		return nil, err
	}
	ch, err := d.am.Change(h)
	if err != nil {
		return nil, err
	}
	return ch.Save(), nil
}

// path flushes the pending splice (everything that takes a path reads or
// edits the document) and returns the Automerge path of p.
func (d *Document) path(p Path) (*automerge.Path, error) {
	if err := d.flush(); err != nil {
		return nil, err
	}
	if err := p.check(); err != nil {
		return nil, err
	}
	return d.am.Path(slices.Clone([]any(p))...), nil
}

func (d *Document) edited(err error, p Path) error {
	d.texts = nil
	if err != nil {
		return fmt.Errorf("%w %s: %v", ErrDocPath, p, err)
	}
	d.dirty = true
	return nil
}

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
	ap, err := d.path(p)
	if err != nil {
		return err
	}
	return d.edited(ap.Set(v), p)
}

// Insert inserts a JSON value into the list at p before index i.
func (d *Document) Insert(p Path, i int, value []byte) error {
	v, err := docValue(value)
	if err != nil {
		return err
	}
	ap, err := d.path(p)
	if err != nil {
		return err
	}
	return d.edited(ap.List().Insert(i, v), p)
}

// Delete removes the map key or list element at p.
func (d *Document) Delete(p Path) error {
	if len(p) == 0 {
		return fmt.Errorf("%w: cannot delete the root map", ErrDocPath)
	}
	ap, err := d.path(p)
	if err != nil {
		return err
	}
	return d.edited(ap.Delete(), p)
}

// Splice edits the text at p: deletes del characters at pos and inserts
// text there. A missing value at p becomes an empty text first.
// Positions count Unicode code points.
func (d *Document) Splice(p Path, pos, del int, text string) error {
	if pos < 0 || del < 0 {
		return fmt.Errorf("%w %s: negative position or count", ErrDocPath, p)
	}
	key := p.String()
	if o := d.texts[key]; o != nil {
		if pos > o.n || pos+del > o.n {
			return fmt.Errorf("%w %s: splice at %d deleting %d in a text of %d characters", ErrDocPath, p, pos, del, o.n)
		}
		if del == 0 && text == "" {
			return nil
		}
		if !d.pending.coalesce(key, pos, del, text) {
			if err := d.flush(); err != nil {
				return err
			}
			d.pending = pendingSplice{key: key, path: p, t: o.t, pos: pos, del: del, ins: append(d.pending.ins[:0], text...), n: utf8.RuneCountInString(text)}
		}
		o.n += utf8.RuneCountInString(text) - del
		d.dirty = true
		return nil
	}
	ap, err := d.path(p)
	if err != nil {
		return err
	}
	v, err := ap.Get()
	if err != nil {
		return fmt.Errorf("%w %s: %v", ErrDocPath, p, err)
	}
	switch v.Kind() {
	case automerge.KindVoid:
		if err := d.edited(ap.Set(automerge.NewText("")), p); err != nil {
			return err
		}
	case automerge.KindText:
	default:
		return fmt.Errorf("%w %s: holds a %v, not text", ErrDocPath, p, v.Kind())
	}
	v, err = ap.Get()
	if err != nil || v.Kind() != automerge.KindText {
		return fmt.Errorf("%w %s: no text: %v", ErrDocPath, p, err)
	}
	t := v.Text()
	n := t.Len()
	if pos > n || pos+del > n {
		return fmt.Errorf("%w %s: splice at %d deleting %d in a text of %d characters", ErrDocPath, p, pos, del, n)
	}
	if del == 0 && text == "" { // the text exists now, and nothing else changes
		return nil
	}
	if err := d.edited(t.Splice(pos, del, text), p); err != nil {
		return err
	}
	if d.texts == nil {
		d.texts = map[string]*openText{}
	}
	d.texts[key] = &openText{t: t, n: n - del + utf8.RuneCountInString(text)}
	return nil
}

// Increment adds delta to the counter at p, creating it (at zero) if missing.
func (d *Document) Increment(p Path, delta int64) error {
	ap, err := d.path(p)
	if err != nil {
		return err
	}
	return d.edited(ap.Counter().Inc(delta), p)
}

// Text returns the text at p.
func (d *Document) Text(p Path) (string, error) {
	ap, err := d.path(p)
	if err != nil {
		return "", err
	}
	v, err := ap.Get()
	if err != nil {
		return "", fmt.Errorf("%w %s: %v", ErrDocPath, p, err)
	}
	switch v.Kind() {
	case automerge.KindText:
		return d.text(v, p)
	case automerge.KindStr:
		return v.Str(), nil
	case automerge.KindVoid:
		return "", nil
	}
	return "", fmt.Errorf("%w %s: holds a %v, not text", ErrDocPath, p, v.Kind())
}

// Get returns the value at p as JSON: maps as objects, lists as arrays,
// text and strings as strings, counters as numbers, bytes as base64,
// timestamps as RFC 3339 strings; null when nothing is there.
func (d *Document) Get(p Path) ([]byte, error) {
	ap, err := d.path(p)
	if err != nil {
		return nil, err
	}
	var v *automerge.Value
	if len(p) == 0 {
		v = d.am.Root()
	} else if v, err = ap.Get(); err != nil {
		return nil, fmt.Errorf("%w %s: %v", ErrDocPath, p, err)
	}
	g, err := d.value(v, p)
	if err != nil {
		return nil, fmt.Errorf("%w %s: %v", ErrDocPath, p, err)
	}
	return json.Marshal(g)
}

// value returns v, at p, as Go values (automerge.Value.Interface), with
// the texts Splice knows read from their copies.
func (d *Document) value(v *automerge.Value, p Path) (any, error) {
	switch v.Kind() {
	case automerge.KindMap:
		vs, err := v.Map().Values()
		if err != nil {
			return nil, err
		}
		out := make(map[string]any, len(vs))
		for k, c := range vs {
			if out[k], err = d.value(c, append(p[:len(p):len(p)], k)); err != nil {
				return nil, err
			}
		}
		return out, nil
	case automerge.KindList:
		vs, err := v.List().Values()
		if err != nil {
			return nil, err
		}
		out := make([]any, len(vs))
		for i, c := range vs {
			if out[i], err = d.value(c, append(p[:len(p):len(p)], i)); err != nil {
				return nil, err
			}
		}
		return out, nil
	case automerge.KindText:
		return d.text(v, p)
	}
	return v.Interface(), nil
}

// text returns the text v at p, from its copy if Splice knows it (making
// the copy if there is none yet).
func (d *Document) text(v *automerge.Value, p Path) (string, error) {
	o := d.texts[p.String()]
	if o != nil {
		if s, ok := o.copied(); ok {
			return s, nil
		}
	}
	s, err := v.Text().Get()
	if err == nil && o != nil {
		o.keep(s)
	}
	return s, err
}

// JSON returns the whole document as a JSON object.
func (d *Document) JSON() ([]byte, error) { return d.Get(nil) }

// Close releases the document.
func (d *Document) Close() {}
