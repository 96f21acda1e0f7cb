package store

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"iter"
	"math"
	"strconv"

	"github.com/unosync/uno/conflict"
	"github.com/unosync/uno/crdt"
)

// FieldValue is what one field of an alive row shows.
type FieldValue struct {
	// JSON is the field's value: a register's resolved value, a counter's
	// number, a set's members as an array, a doc's document as a JSON
	// object (see [DocJSON]).
	JSON json.RawMessage
	// Siblings holds the concurrent values of a multi-value register, when
	// there is more than one.
	Siblings []conflict.Value
}

// Resolve returns what each field of a row shows under the schema's
// policies. It returns nil for a row that is not alive.
func Resolve(s *Schema, collection string, r *crdt.Row) map[string]FieldValue {
	if r == nil || !r.Alive() {
		return nil
	}
	out := make(map[string]FieldValue, len(r.Fields))
	for name, v := range ResolveFields(s, collection, r) {
		out[name] = v
	}
	return out
}

// ResolveFields is Resolve without the map: it yields each field's name
// and what it shows, in the row's field order, and nothing for a row that
// is not alive.
func ResolveFields(s *Schema, collection string, r *crdt.Row) iter.Seq2[string, FieldValue] {
	return func(yield func(string, FieldValue) bool) {
		if r == nil || !r.Alive() {
			return
		}
		for i := range r.Fields {
			f := &r.Fields[i]
			if v, ok := resolveField(s, collection, f); ok && !yield(f.Name, v) {
				return
			}
		}
	}
}

func resolveField(s *Schema, collection string, f *crdt.Field) (FieldValue, bool) {
	switch f.Kind {
	case crdt.KindCounter:
		return FieldValue{JSON: strconv.AppendInt(nil, f.Counter.Value(), 10)}, true
	case crdt.KindSet:
		b := []byte{'['}
		for i, m := range f.Set.Values() {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, m...)
		}
		return FieldValue{JSON: append(b, ']')}, true
	case crdt.KindDoc:
		b, ok := DocJSON(&f.Doc)
		return FieldValue{JSON: b}, ok
	}
	res, ok := s.PolicyOf(collection, f.Name).Resolve(f.Register.Entries)
	if !ok {
		return FieldValue{}, false
	}
	return FieldValue{JSON: res.Value.Data, Siblings: res.Siblings}, true
}

// DocColumnMaxBytes bounds the documents whose JSON a doc field's column
// holds: rendering a document costs time in its size, and a column is
// written on every change, so typing into a large document would pay it
// on every keystroke. A larger document's column is NULL; Get, Find and
// Watch still show it (they render it when read).
const DocColumnMaxBytes = 64 << 10

// columnValue converts a field to the value stored in its SQL column:
// NULL, INTEGER (integers, booleans, counters), REAL, TEXT (strings; objects,
// arrays and sets as JSON text; docs up to DocColumnMaxBytes as their JSON,
// or as BLOB bytes in a build without the Automerge library). Queries
// compare these.
func columnValue(s *Schema, collection string, f *crdt.Field) any {
	if f.Kind == crdt.KindDoc {
		if f.Doc.Len() > DocColumnMaxBytes {
			return nil
		}
		if b, ok := DocJSON(&f.Doc); ok {
			return string(b)
		}
		return f.Doc.Bytes()
	}
	if f.Kind == crdt.KindCounter {
		return f.Counter.Value()
	}
	v, ok := resolveField(s, collection, f)
	if !ok {
		return nil
	}
	if f.Kind == crdt.KindSet {
		return string(v.JSON)
	}
	sv, err := jsonToSQL(v.JSON)
	if err != nil {
		// Register values are validated JSON when written; a value that
		// does not parse is kept as text rather than lost.
		return string(v.JSON)
	}
	return sv
}

// jsonToSQL maps one JSON value to its SQL column value.
func jsonToSQL(b []byte) (any, error) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return nil, fmt.Errorf("empty JSON value")
	}
	switch b[0] {
	case 'n':
		return nil, nil
	case 't':
		return int64(1), nil
	case 'f':
		return int64(0), nil
	case '"':
		if len(b) >= 2 && b[len(b)-1] == '"' && plainString(b[1:len(b)-1]) {
			return string(b[1 : len(b)-1]), nil
		}
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return nil, err
		}
		return s, nil
	case '{', '[':
		var buf bytes.Buffer
		if err := json.Compact(&buf, b); err != nil {
			return nil, err
		}
		return buf.String(), nil
	}
	if i, err := strconv.ParseInt(string(b), 10, 64); err == nil {
		return i, nil
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil || math.IsInf(f, 0) {
		return nil, fmt.Errorf("invalid JSON number %q", b)
	}
	return f, nil
}

// plainString reports whether a JSON string body has no escapes and only
// ASCII, so it is its own value.
func plainString(b []byte) bool {
	for _, c := range b {
		if c == '\\' || c == '"' || c < 0x20 || c >= 0x80 {
			return false
		}
	}
	return true
}

// compareSQL orders column values as SQLite does with the BINARY
// collation: NULL < numbers < text < blobs; numbers by value, text and blobs
// bytewise. The memory store uses it to answer queries exactly as SQL does.
func compareSQL(a, b any) int {
	ca, cb := sqlClass(a), sqlClass(b)
	if ca != cb {
		return ca - cb
	}
	switch ca {
	case 0:
		return 0
	case 1:
		return compareNumbers(a, b)
	case 2:
		return bytes.Compare([]byte(a.(string)), []byte(b.(string)))
	}
	return bytes.Compare(a.([]byte), b.([]byte))
}

func sqlClass(v any) int {
	switch v.(type) {
	case nil:
		return 0
	case int64, float64:
		return 1
	case string:
		return 2
	}
	return 3
}

func compareNumbers(a, b any) int {
	ai, aInt := a.(int64)
	bi, bInt := b.(int64)
	switch {
	case aInt && bInt:
		return cmp.Compare(ai, bi)
	case aInt:
		return compareIntFloat(ai, b.(float64))
	case bInt:
		return -compareIntFloat(bi, a.(float64))
	}
	return cmp.Compare(a.(float64), b.(float64))
}

// compareIntFloat compares an integer and a float exactly, as SQLite does
// (sqlite3IntFloatCompare): converting the integer to float64 would make
// distinct values beyond 2^53 equal.
func compareIntFloat(i int64, f float64) int {
	switch {
	case f < -9223372036854775808.0:
		return 1
	case f >= 9223372036854775808.0:
		return -1
	}
	if c := cmp.Compare(i, int64(f)); c != 0 {
		return c
	}
	return cmp.Compare(float64(i), f)
}
