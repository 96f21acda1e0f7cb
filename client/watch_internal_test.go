package client

import (
	"bytes"
	"encoding/json"
	"testing"
)

// A Watch fires when its result's fingerprint changes: every difference
// in IDs, order, field names, values or siblings must change it, and
// nothing else.
func TestFingerprint(t *testing.T) {
	doc := func(id string, fields ...string) Doc {
		d := Doc{ID: id, Fields: map[string]json.RawMessage{}}
		for i := 0; i < len(fields); i += 2 {
			d.Fields[fields[i]] = json.RawMessage(fields[i+1])
		}
		return d
	}
	withSibling := func(d Doc, field, v string) Doc {
		d.Siblings = map[string][]Sibling{field: {{Value: json.RawMessage(v)}}}
		return d
	}
	base := []Doc{doc("a", "x", "1", "y", `"s"`), doc("b", "x", "2")}
	same := []Doc{doc("a", "y", `"s"`, "x", "1"), doc("b", "x", "2")} // the same, fields made in another order
	if !bytes.Equal(fingerprint(base), fingerprint(same)) {
		t.Error("the same result has two fingerprints")
	}
	for name, other := range map[string][]Doc{
		"a value":        {doc("a", "x", "3", "y", `"s"`), doc("b", "x", "2")},
		"a field's name": {doc("a", "z", "1", "y", `"s"`), doc("b", "x", "2")},
		"a field more":   {doc("a", "x", "1", "y", `"s"`), doc("b", "x", "2", "z", "0")},
		"an ID":          {doc("a", "x", "1", "y", `"s"`), doc("c", "x", "2")},
		"the order":      {doc("b", "x", "2"), doc("a", "x", "1", "y", `"s"`)},
		"a row fewer":    {doc("a", "x", "1", "y", `"s"`)},
		"a sibling":      {withSibling(doc("a", "x", "1", "y", `"s"`), "x", "7"), doc("b", "x", "2")},
	} {
		if bytes.Equal(fingerprint(base), fingerprint(other)) {
			t.Errorf("%s changed and the fingerprint did not", name)
		}
	}
	// The same bytes cut differently between ID, name and value.
	if bytes.Equal(fingerprint([]Doc{doc("ab", "x", "1")}), fingerprint([]Doc{doc("a", "bx", "1")})) {
		t.Error("an ID and a field name cut differently give one fingerprint")
	}
	if bytes.Equal(fingerprint([]Doc{doc("a", "x", "12")}), fingerprint([]Doc{doc("a", "x1", "2")})) {
		t.Error("a field name and its value cut differently give one fingerprint")
	}
}
