//go:build js || (cgo && (linux || darwin) && (amd64 || arm64))

package crdt

import (
	"encoding/json"
	"fmt"
	"strings"
)

// What the bindings that edit documents share.

// check refuses path segments other than strings and non-negative ints.
func (p Path) check() error {
	for i, s := range p {
		switch s := s.(type) {
		case string:
		case int:
			if s < 0 {
				return fmt.Errorf("%w: segment %d is a negative index", ErrDocPath, i)
			}
		default:
			return fmt.Errorf("%w: segment %d is a %T (use string keys and int indexes)", ErrDocPath, i, s)
		}
	}
	return nil
}

// docValue converts a JSON value into the Go values the Automerge
// bindings store: objects, arrays, strings (as scalar strings, not
// text), integers, floats, booleans and null.
func docValue(b []byte) (any, error) {
	var v any
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidValue, err)
	}
	return fromJSON(v), nil
}

func fromJSON(v any) any {
	switch v := v.(type) {
	case json.Number:
		if i, err := v.Int64(); err == nil {
			return i
		}
		f, _ := v.Float64()
		return f
	case map[string]any:
		for k, x := range v {
			v[k] = fromJSON(x)
		}
	case []any:
		for i, x := range v {
			v[i] = fromJSON(x)
		}
	}
	return v
}
