package browser

import (
	"encoding/json"
	"net/url"
	"os/exec"
	"path/filepath"
	"testing"
)

// spliceJS runs the notes page's splice module (examples/web/splice.js)
// under Node on cases (JSON) and returns what script prints (JSON).
func spliceJS(t *testing.T, script string, cases any, dst any) {
	t.Helper()
	in, err := json.Marshal(cases)
	if err != nil {
		t.Fatal(err)
	}
	mod := (&url.URL{Scheme: "file", Path: filepath.Join(root, "examples/web/splice.js")}).String()
	src := "import * as s from '" + mod + "';\nconst cases = JSON.parse(process.argv[1]);\nprocess.stdout.write(JSON.stringify(" + script + "));\n"
	out, err := exec.Command("node", "--input-type=module", "-e", src, string(in)).CombinedOutput()
	if err != nil {
		t.Fatalf("node: %v\n%s", err, out)
	}
	if err := json.Unmarshal(out, dst); err != nil {
		t.Fatalf("node printed %s: %v", out, err)
	}
}

type splice struct {
	Pos int    `json:"pos"`
	Del int    `json:"del"`
	Ins string `json:"ins"`
}

// One splice turns a text into another, keeping the common prefix and
// suffix, counting UTF-16 code units and never splitting a surrogate
// pair (JSON cannot carry half of one).
func TestNotesPage_Diff(t *testing.T) {
	cases := []struct {
		A, B string
		Want splice
	}{
		{"hello world", "hello brave world", splice{6, 0, "brave "}},
		{"hello world", "hello", splice{5, 6, ""}},
		{"", "abc", splice{0, 0, "abc"}},
		{"abc", "", splice{0, 3, ""}},
		{"aaa", "aaaa", splice{3, 0, "a"}},
		{"a😀b", "a😁b", splice{1, 2, "😁"}}, // same high surrogate
		{"😀b", "🈀b", splice{0, 2, "🈀"}},   // same low surrogate
		{"😀", "😀😀", splice{2, 0, "😀"}},
		{"ab😀cd", "ab😀xcd", splice{4, 0, "x"}}, // after the pair: 2 units
		{"same", "same", splice{4, 0, ""}},
	}
	var got []struct {
		Splice  splice `json:"splice"`
		Applied string `json:"applied"`
	}
	spliceJS(t, `cases.map(({A, B}) => { const d = s.diff(A, B); return {splice: d, applied: s.apply(A, d)}; })`, cases, &got)
	for i, c := range cases {
		if got[i].Splice != c.Want || got[i].Applied != c.B {
			t.Errorf("diff(%q, %q) = %+v, applied %q; want %+v", c.A, c.B, got[i].Splice, got[i].Applied, c.Want)
		}
	}
}

// A local edit made on a text moves past an edit made elsewhere on the
// same text: both stay, whatever their places.
func TestNotesPage_Rebase(t *testing.T) {
	cases := []struct {
		Base, Local, Remote, Want string
	}{
		{"We meet.", "Update: We meet.", "We meet. Cake.", "Update: We meet. Cake."},
		{"We meet.", "We meet. Cake.", "Update: We meet.", "Update: We meet. Cake."},
		{"ab", "aXb", "aYb", "aXYb"},                                 // the same place: local first
		{"hello world", "hello", "hello brave world", "hellobrave "}, // two splices
		{"hello world", "world", "hello, world", ",world"},           // the comma stays
		{"abcdef", "af", "abXef", "aXf"},                             // both deleted cd, once
		{"abcdef", "abXef", "af", "aXf"},                             // local text inside a remote deletion stays
		{"a😀b", "a😀b!", "😀a😀b", "😀a😀b!"},                             // code units
		{"same", "same", "changed", "changed"},
	}
	var got []string
	spliceJS(t, `cases.map(({Base, Local, Remote}) => {
		const r = s.diff(Base, Remote);
		return s.rebase(s.diff(Base, Local), r).reduce(s.apply, s.apply(Base, r));
	})`, cases, &got)
	for i, c := range cases {
		if got[i] != c.Want {
			t.Errorf("base %q, local %q, remote %q: merged %q, want %q", c.Base, c.Local, c.Remote, got[i], c.Want)
		}
	}
}

// A caret keeps its place in the text around it when a splice is shown.
func TestNotesPage_MapPos(t *testing.T) {
	d := splice{Pos: 4, Del: 2, Ins: "xyz"}
	cases := []struct{ X, Want int }{{0, 0}, {4, 4}, {5, 7}, {6, 7}, {9, 10}}
	var got []int
	spliceJS(t, `cases.map(({X}) => s.mapPos(X, {pos: 4, del: 2, ins: 'xyz'}))`, cases, &got)
	for i, c := range cases {
		if got[i] != c.Want {
			t.Errorf("mapPos(%d, %+v) = %d, want %d", c.X, d, got[i], c.Want)
		}
	}
}
