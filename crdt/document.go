package crdt

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// ErrDocUnavailable is returned for reading or editing a doc field in a
// build without an Automerge library: a native build with CGO_ENABLED=0
// or for a platform automerge-go does not support. Such a build still
// stores, syncs and merges doc fields (their bytes); build with cgo on
// linux or darwin (amd64, arm64) to read and edit them.
var ErrDocUnavailable = errors.New("crdt: doc editing unavailable in this build: it has no Automerge library (build with CGO_ENABLED=1 on linux or darwin, amd64 or arm64)")

// ErrDocPath reports a path that does not lead where an edit needs: a
// key of something that is not a map, an index beyond a list, text
// editing of something that is not text.
var ErrDocPath = errors.New("crdt: doc path")

// Path addresses a value inside a document: map keys (string) and list
// indexes (int), from the root map. An empty path is the root.
type Path []any

func (p Path) String() string {
	var b strings.Builder
	for _, s := range p {
		switch s := s.(type) {
		case string:
			b.WriteString("/" + s)
		default:
			fmt.Fprintf(&b, "/%v", s)
		}
	}
	if b.Len() == 0 {
		return "/"
	}
	return b.String()
}

// ParsePath decodes a JSON array of strings and integers, such as
// ["items", 0, "title"], into a Path.
func ParsePath(b []byte) (Path, error) {
	var raw []json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("%w: want a JSON array of keys and indexes: %v", ErrDocPath, err)
	}
	p := make(Path, len(raw))
	for i, r := range raw {
		var s string
		var n int
		switch {
		case json.Unmarshal(r, &s) == nil:
			p[i] = s
		case json.Unmarshal(r, &n) == nil && n >= 0:
			p[i] = n
		default:
			return nil, fmt.Errorf("%w: segment %d is %s (use strings and non-negative integers)", ErrDocPath, i, r)
		}
	}
	return p, nil
}
