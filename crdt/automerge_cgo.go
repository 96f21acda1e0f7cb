//go:build cgo && (linux || darwin) && (amd64 || arm64)

package crdt

import (
	"encoding/json"
	"fmt"
	"slices"

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
	// texts remembers the text objects Splice found, by path: finding one
	// walks the document from the root. Any edit but a splice, and any
	// change applied, may replace them, so those forget them.
	texts map[string]*automerge.Text
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
	d.texts = nil
	if err := d.am.LoadIncremental(changes); err != nil {
		return fmt.Errorf("%w: doc: %v", ErrDecode, err)
	}
	return nil
}

// Heads returns the document's heads, sorted.
func (d *Document) Heads() []ChangeHash {
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
func (d *Document) Save() []byte { return d.am.Save() }

// Commit ends the current edits: it returns them as one change chunk, or
// nil if there were none. ts stamps the change (Automerge keeps
// milliseconds).
func (d *Document) Commit(ts Timestamp) ([]byte, error) {
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

func (d *Document) path(p Path) (*automerge.Path, error) {
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
	if t := d.texts[key]; t != nil {
		if del == 0 && text == "" {
			return nil
		}
		if n := t.Len(); pos > n || pos+del > n {
			return fmt.Errorf("%w %s: splice at %d deleting %d in a text of %d characters", ErrDocPath, p, pos, del, n)
		}
		if err := t.Splice(pos, del, text); err != nil {
			return fmt.Errorf("%w %s: splice at %d deleting %d: %v", ErrDocPath, p, pos, del, err)
		}
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
		if err := ap.Set(automerge.NewText("")); err != nil {
			return d.edited(err, p)
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
	if n := t.Len(); pos > n || pos+del > n {
		return fmt.Errorf("%w %s: splice at %d deleting %d in a text of %d characters", ErrDocPath, p, pos, del, n)
	}
	if del == 0 && text == "" { // the text exists now, and nothing else changes
		return nil
	}
	if err := d.edited(t.Splice(pos, del, text), p); err != nil {
		return err
	}
	if d.texts == nil {
		d.texts = map[string]*automerge.Text{}
	}
	d.texts[key] = t
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
		return v.Text().Get()
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
	return json.Marshal(v.Interface())
}

// JSON returns the whole document as a JSON object.
func (d *Document) JSON() ([]byte, error) { return d.Get(nil) }

// Close releases the document.
func (d *Document) Close() {}
