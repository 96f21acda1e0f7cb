//go:build cgo && (linux || darwin) && (amd64 || arm64)

package crdt_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/unosync/uno/crdt"
	"pgregory.net/rapid"
)

func openDocR(t interface{ Fatalf(string, ...any) }, st *crdt.DocState, site crdt.SiteID) *crdt.Document {
	d, err := crdt.OpenDocument(st, site)
	if err != nil {
		t.Fatalf("OpenDocument: %v", err)
	}
	return d
}

// Replicas make random concurrent text and map edits, delivered as uno
// delivers them (with duplicates): every replica ends with the same
// document and the same state hash.
func TestDocument_RandomEditsConverge(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(2, 4).Draw(t, "replicas")
		s := newDocSim(n, func(t *rapid.T, i int, st *crdt.DocState, seq uint64) []byte {
			d := openDocR(t, st, crdt.SiteID{0: byte(i + 1), 15: 7})
			defer d.Close()
			for range rapid.IntRange(1, 3).Draw(t, "edits") {
				var err error
				switch rapid.IntRange(0, 3).Draw(t, "edit") {
				case 0, 1:
					cur, _ := d.Text(crdt.Path{"text"})
					l := len([]rune(cur))
					pos := rapid.IntRange(0, l).Draw(t, "pos")
					del := rapid.IntRange(0, min(3, l-pos)).Draw(t, "del")
					err = d.Splice(crdt.Path{"text"}, pos, del, rapid.StringOfN(rapid.RuneFrom([]rune("abcxyz é")), 0, 4, -1).Draw(t, "ins"))
				case 2:
					key := rapid.SampledFrom([]string{"a", "b", "c"}).Draw(t, "key")
					err = d.Put(crdt.Path{"map", key}, []byte(rapid.SampledFrom([]string{`1`, `"s"`, `[1,2]`, `{"x":true}`, `null`}).Draw(t, "value")))
				case 3:
					err = d.Increment(crdt.Path{"n"}, int64(rapid.IntRange(-3, 3).Draw(t, "delta")))
				}
				if err != nil {
					t.Fatalf("edit: %v", err)
				}
			}
			ch, err := d.Commit(crdt.MakeTimestamp(int64(seq), 0))
			if err != nil {
				t.Fatalf("Commit: %v", err)
			}
			return ch
		})
		for range rapid.IntRange(1, 40).Draw(t, "steps") {
			s.step(t)
		}
		s.finish(t)
		want := docJSON(t, s.docState(0))
		for i := 1; i < n; i++ {
			if got := docJSON(t, s.docState(i)); !bytes.Equal(got, want) {
				t.Fatalf("replica %d: %s\nreplica 0: %s", i, got, want)
			}
		}
	})
}

func docJSON(t interface{ Fatalf(string, ...any) }, st *crdt.DocState) []byte {
	d := openDocR(t, st, crdt.SiteID{})
	defer d.Close()
	b, err := d.JSON()
	if err != nil {
		t.Fatalf("JSON: %v", err)
	}
	if !st.HeadsAre(d.Heads()) {
		t.Fatalf("Automerge heads %v, state heads %v", d.Heads(), st.Heads)
	}
	return b
}

// Two words inserted concurrently at the same position by different
// sites never interleave: each appears whole in the merged text.
func TestDocument_ConcurrentInsertsDoNotInterleave(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		// Distinct alphabets, so that finding each word whole proves it
		// was not interleaved; a base text, so both edit one text object.
		base := rapid.StringMatching(`[A-Z ]{1,10}`).Draw(t, "base")
		w1, w2 := rapid.StringMatching(`[a-m]{2,8}`).Draw(t, "w1"), rapid.StringMatching(`[n-z]{2,8}`).Draw(t, "w2")
		pos := rapid.IntRange(0, len(base)).Draw(t, "pos")
		s1, s2 := crdt.SiteID{0: 1}, crdt.SiteID{0: 2}
		var st crdt.State
		apply := func(site crdt.SiteID, seq uint64, ch []byte) {
			tx := &crdt.Tx{Site: site, Seq: seq, Time: crdt.MakeTimestamp(int64(seq), 0), Ops: []crdt.Op{{
				Type: crdt.OpChange, Kind: crdt.KindDoc, Collection: "notes", Row: "n1", Field: "body", CL: 1, Value: ch}}}
			if _, err := st.Apply(tx); err != nil {
				t.Fatal(err)
			}
		}
		d0 := openDocR(t, &crdt.DocState{}, s1)
		must0(t, d0.Splice(crdt.Path{"text"}, 0, 0, base))
		c0, _ := d0.Commit(1)
		if c0 != nil {
			apply(s1, 1, c0)
		}
		shared := crdt.DocState{}
		if r := st.Row(docKey); r != nil {
			f, _ := r.Field("body")
			shared = f.Doc
		}
		// Each site types its word one character per change, not seeing the other's.
		for k, w := range []string{w1, w2} {
			site := []crdt.SiteID{s1, s2}[k]
			d := openDocR(t, &shared, site)
			seq := uint64(2)
			for j, r := range w {
				must0(t, d.Splice(crdt.Path{"text"}, pos+j, 0, string(r)))
				ch, err := d.Commit(crdt.MakeTimestamp(int64(seq), 0))
				must0(t, err)
				apply(site, seq, ch)
				seq++
			}
		}
		r := st.Row(docKey)
		f, _ := r.Field("body")
		d := openDocR(t, &f.Doc, crdt.SiteID{})
		got, err := d.Text(crdt.Path{"text"})
		must0(t, err)
		if !strings.Contains(got, w1) || !strings.Contains(got, w2) || len(got) != len(base)+len(w1)+len(w2) {
			t.Fatalf("base %q, %q and %q inserted at %d: merged %q interleaves them", base, w1, w2, pos, got)
		}
	})
}

func must0(t interface{ Fatal(...any) }, err error) {
	if err != nil {
		t.Fatal(err)
	}
}

// Splices are handed to Automerge in runs (typing, backspacing and
// deleting forward make one splice each): whatever the mix of edits,
// reads, commits and out-of-range splices, the text is the one a plain
// string model gives, bounds are checked against it, and another replica
// that applies the changes holds the same text.
func TestDocument_TypingRunsMatchAModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		site := crdt.SiteID{0: 1, 15: 1}
		d := openDocR(t, &crdt.DocState{}, site)
		defer d.Close()
		other := openDocR(t, &crdt.DocState{}, crdt.SiteID{0: 2, 15: 2})
		defer other.Close()
		p := crdt.Path{"text"}
		var model []rune
		cursor, ts := 0, int64(1)
		runes := rapid.StringOfN(rapid.RuneFrom([]rune("ab é€😀")), 1, 3, -1)
		splice := func(t *rapid.T, pos, del int, ins string) {
			err := d.Splice(p, pos, del, ins)
			if pos > len(model) || pos+del > len(model) {
				if !errors.Is(err, crdt.ErrDocPath) {
					t.Fatalf("splice at %d deleting %d of %d: %v, want ErrDocPath", pos, del, len(model), err)
				}
				return
			}
			if err != nil {
				t.Fatalf("splice at %d deleting %d of %d: %v", pos, del, len(model), err)
			}
			model = slices.Concat(model[:pos], []rune(ins), model[pos+del:])
			cursor = pos + len([]rune(ins))
		}
		check := func(t *rapid.T, doc *crdt.Document, who string) {
			if got, err := doc.Text(p); err != nil || got != string(model) {
				t.Fatalf("%s: text %q, %v; want %q", who, got, err, string(model))
			}
			want, _ := json.Marshal(map[string]string{"text": string(model)})
			if got, err := doc.JSON(); err != nil || !bytes.Equal(got, want) {
				t.Fatalf("%s: JSON %s, %v; want %s", who, got, err, want)
			}
		}
		deliver := func(t *rapid.T) {
			ts++
			ch, err := d.Commit(crdt.MakeTimestamp(ts, 0))
			if err != nil {
				t.Fatalf("Commit: %v", err)
			}
			if ch != nil {
				if err := other.Apply(ch); err != nil {
					t.Fatalf("Apply: %v", err)
				}
			}
		}
		splice(t, 0, 0, "") // the text exists
		for range rapid.IntRange(1, 60).Draw(t, "steps") {
			cursor = min(cursor, len(model))
			switch rapid.IntRange(0, 9).Draw(t, "step") {
			case 0, 1, 2:
				splice(t, cursor, 0, runes.Draw(t, "typed"))
			case 3:
				k := rapid.IntRange(0, cursor).Draw(t, "backspaces")
				splice(t, cursor-k, k, "")
			case 4:
				splice(t, cursor, rapid.IntRange(0, len(model)-cursor).Draw(t, "deletes"), "")
			case 5:
				cursor = rapid.IntRange(0, len(model)).Draw(t, "cursor")
			case 6:
				pos := rapid.IntRange(0, len(model)).Draw(t, "pos")
				splice(t, pos, rapid.IntRange(0, len(model)-pos).Draw(t, "del"), runes.Draw(t, "ins"))
			case 7:
				splice(t, len(model)+rapid.IntRange(0, 2).Draw(t, "beyond"), rapid.IntRange(0, 2).Draw(t, "del"), "x")
			case 8:
				check(t, d, "the editing replica")
			case 9:
				deliver(t)
			}
		}
		deliver(t)
		check(t, d, "the editing replica")
		check(t, other, "the other replica")
	})
}

// Typing a word key by key makes the very change that splicing it whole
// does: a run handed to Automerge in one call is the same operations.
func TestDocument_TypingMakesTheSameChangeAsOneSplice(t *testing.T) {
	site := crdt.SiteID{0: 9, 15: 9}
	word := []rune("héllo wörld 😀")
	typed := openDocR(t, &crdt.DocState{}, site)
	defer typed.Close()
	keyed := openDocR(t, &crdt.DocState{}, site)
	defer keyed.Close()
	p := crdt.Path{"text"}
	for i, r := range word {
		if err := typed.Splice(p, i, 0, string(r)); err != nil {
			t.Fatal(err)
		}
		if err := keyed.Splice(p, i, 0, string(r)); err != nil {
			t.Fatal(err)
		}
		if _, err := keyed.Text(p); err != nil { // hands each key over alone
			t.Fatal(err)
		}
	}
	a, err := typed.Commit(crdt.MakeTimestamp(1, 0))
	if err != nil {
		t.Fatal(err)
	}
	b, err := keyed.Commit(crdt.MakeTimestamp(1, 0))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Errorf("typed as a run: change %x\nkey by key: %x", a, b)
	}
}
