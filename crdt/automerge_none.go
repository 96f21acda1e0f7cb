//go:build !js && !(cgo && (linux || darwin) && (amd64 || arm64))

package crdt

// DocEditing reports whether this build can read and edit doc fields: not
// this one (no Automerge library). Doc fields are still stored, synced and
// merged; opening one returns [ErrDocUnavailable].
const DocEditing = false

// Document is an open Automerge document. In this build it cannot be
// opened: [OpenDocument] returns [ErrDocUnavailable].
type Document struct{}

// OpenDocument returns ErrDocUnavailable: this build has no Automerge library.
func OpenDocument(s *DocState, site SiteID) (*Document, error) { return nil, ErrDocUnavailable }

func (d *Document) Apply(changes []byte) error                     { return ErrDocUnavailable }
func (d *Document) Heads() []ChangeHash                            { return nil }
func (d *Document) Save() []byte                                   { return nil }
func (d *Document) Commit(ts Timestamp) ([]byte, error)            { return nil, ErrDocUnavailable }
func (d *Document) Put(p Path, value []byte) error                 { return ErrDocUnavailable }
func (d *Document) Insert(p Path, i int, value []byte) error       { return ErrDocUnavailable }
func (d *Document) Delete(p Path) error                            { return ErrDocUnavailable }
func (d *Document) Splice(p Path, pos, del int, text string) error { return ErrDocUnavailable }
func (d *Document) Increment(p Path, delta int64) error            { return ErrDocUnavailable }
func (d *Document) Text(p Path) (string, error)                    { return "", ErrDocUnavailable }
func (d *Document) Get(p Path) ([]byte, error)                     { return nil, ErrDocUnavailable }
func (d *Document) JSON() ([]byte, error)                          { return nil, ErrDocUnavailable }
func (d *Document) Close()                                         {}
