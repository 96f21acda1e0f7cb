package client

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"
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

// A Watch's query, run again, builds afresh only the rows whose stored
// state changed, and hands out copies: changing a result's Doc changes
// neither the watch's rows nor the next result. (A limit makes it query:
// a whole collection is patched, below.)
func TestWatch_RefreshDecodesChangedRows(t *testing.T) {
	ctx := t.Context()
	items, w := watchedRows(t, 10, Query{Limit: 100})
	first := <-w.C
	if len(first) != 10 || w.decoded != 10 {
		t.Fatalf("first result: %d rows, %d built; want 10, 10", len(first), w.decoded)
	}
	first[0].Fields["n"] = json.RawMessage(`"changed by the app"`)
	delete(first[1].Fields, "n")
	if err := items.Patch(ctx, "r5", map[string]any{"n": 50}); err != nil {
		t.Fatal(err)
	}
	var next []Doc
	select {
	case next = <-w.C:
	case <-time.After(time.Minute):
		t.Fatal("no result after a write")
	}
	if w.decoded != 1 {
		t.Errorf("refresh after one row's write built %d rows, want 1", w.decoded)
	}
	for i, d := range next {
		want := fmt.Sprint(i)
		if i == 5 {
			want = "50"
		}
		if got := string(d.Fields["n"]); got != want {
			t.Errorf("row %s: n = %s, want %s", d.ID, got, want)
		}
	}
}

// A refresh fills the map of the result before last, emptied, rather
// than make one: it allocates less than one that makes its map, and the
// spare map keeps no row's state.
func TestWatch_RefreshReusesItsMap(t *testing.T) {
	ctx := t.Context()
	_, w := watchedRows(t, 100, Query{})
	<-w.C // from here nothing is written: the watch's goroutine waits, and the test queries
	refresh := func() {
		docs, _, err := w.query(ctx)
		if err != nil || len(docs) != 100 || len(w.rows) != 100 {
			t.Fatalf("refresh: %d rows, %d kept, %v", len(docs), len(w.rows), err)
		}
	}
	refresh()
	if w.spare == nil || len(w.spare) != 0 {
		t.Errorf("after a refresh the spare map is %v with %d rows; want one, empty", w.spare == nil, len(w.spare))
	}
	reused := testing.AllocsPerRun(20, refresh)
	made := testing.AllocsPerRun(20, func() { w.spare = nil; refresh() })
	if reused >= made {
		t.Errorf("a refresh made %.0f allocations with the spare map, %.0f making its own", reused, made)
	}
	t.Logf("allocations per refresh of 100 rows: %.0f reusing the map, %.0f making one", reused, made)
}

// A watch of a whole collection builds its next result from the rows
// each commit reported, reading nothing: only the written row is built,
// a deleted one goes, the order is by ID either way, and the results are
// copies.
func TestWatch_PatchFromCommit(t *testing.T) {
	ctx := t.Context()
	for _, desc := range []bool{false, true} {
		items, w := watchedRows(t, 10, Query{Desc: desc})
		first := <-w.C
		if len(first) != 10 || w.patched != -1 {
			t.Fatalf("first result: %d rows, patched %d; want 10 from the query", len(first), w.patched)
		}
		first[0].Fields["n"] = json.RawMessage(`"changed by the app"`)
		delete(first[1].Fields, "n")
		next := func(what string) []Doc {
			t.Helper()
			select {
			case docs := <-w.C:
				return docs
			case <-time.After(time.Minute):
				t.Fatalf("no result after %s", what)
				return nil
			}
		}
		if err := items.Patch(ctx, "r5", map[string]any{"n": 50}); err != nil {
			t.Fatal(err)
		}
		if docs := next("a write"); w.patched != 1 || string(docs[slices.IndexFunc(docs, func(d Doc) bool { return d.ID == "r5" })].Fields["n"]) != "50" {
			t.Errorf("after one row's write the watch patched %d rows (want 1; -1: it queried) and shows %v", w.patched, renderDocs(docs))
		}
		if err := items.Put(ctx, "r10", map[string]any{"n": 10}); err != nil {
			t.Fatal(err)
		}
		if docs := next("a new row"); len(docs) != 11 {
			t.Errorf("after a new row the watch shows %d rows, want 11", len(docs))
		}
		if err := items.Delete(ctx, "r0"); err != nil {
			t.Fatal(err)
		}
		docs := next("a delete")
		if w.patched != 0 {
			t.Errorf("after a delete the watch patched %d rows, want 0 (-1: it queried)", w.patched)
		}
		want, err := items.Find(ctx, Query{Desc: desc})
		if err != nil {
			t.Fatal(err)
		}
		if got, wantJSON := renderDocs(docs), renderDocs(want); got != wantJSON {
			t.Errorf("desc %v: patched result\n%s\nFind\n%s", desc, got, wantJSON)
		}
	}
}

func renderDocs(docs []Doc) string {
	var b []byte
	for _, d := range docs {
		b = append(b, d.JSON()...)
		b = append(b, '\n')
	}
	return string(b)
}

// watchedRows opens a client whose collection "items" holds n rows, r0
// to r<n-1> with n set to the number, and watches them with q.
func watchedRows(t *testing.T, n int, q Query) (*Collection, *Watch) {
	ctx := t.Context()
	c, err := Open(ctx, Config{Path: filepath.Join(t.TempDir(), "uno.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	items := c.Collection("items")
	for i := range n {
		if err := items.Put(ctx, fmt.Sprint("r", i), map[string]any{"n": i}); err != nil {
			t.Fatal(err)
		}
	}
	w, err := items.Watch(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)
	return items, w
}
