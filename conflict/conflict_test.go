package conflict_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/unosync/uno/conflict"
	"github.com/unosync/uno/crdt"
)

func dot(site byte, ms int64) crdt.Dot {
	return crdt.Dot{Site: crdt.SiteID{site}, Time: crdt.MakeTimestamp(ms, 0)}
}

func entry(site byte, ms int64, v string) crdt.Entry {
	return crdt.Entry{Dot: dot(site, ms), Value: []byte(v)}
}

// maxNumber keeps the larger JSON number; on a tie, the value with the
// greater dot. It is commutative, associative and idempotent.
func maxNumber(a, b conflict.Value) conflict.Value {
	var x, y float64
	_ = json.Unmarshal(a.Data, &x)
	_ = json.Unmarshal(b.Data, &y)
	switch {
	case x > y:
		return a
	case y > x:
		return b
	case a.Dot.Compare(b.Dot) >= 0:
		return a
	}
	return b
}

func TestPolicy_Resolve(t *testing.T) {
	entries := []crdt.Entry{entry(2, 10, "7"), entry(1, 20, "3"), entry(3, 20, "5")} // sorted by dot
	tests := []struct {
		name     string
		p        conflict.Policy
		want     string
		siblings int
	}{
		{"lww picks the greatest dot", conflict.LWW(), "5", 0},
		{"zero policy is lww", conflict.Policy{}, "5", 0},
		{"resolver folds", conflict.Custom(maxNumber), "7", 0},
		{"multi-value shows lww and keeps siblings", conflict.MultiValue(), "5", 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, ok := tt.p.Resolve(entries)
			if !ok || string(res.Value.Data) != tt.want || len(res.Siblings) != tt.siblings {
				t.Fatalf("Resolve = %v (ok %v, %d siblings), want %s with %d siblings", res.Value, ok, len(res.Siblings), tt.want, tt.siblings)
			}
		})
	}
	if _, ok := conflict.LWW().Resolve(nil); ok {
		t.Error("Resolve of an empty register reported a value")
	}
	if res, _ := conflict.MultiValue().Resolve(entries[:1]); res.Siblings != nil {
		t.Errorf("one value has siblings %v", res.Siblings)
	}
}

func TestPolicy_Records(t *testing.T) {
	in := entry(1, 20, `"mine"`)
	other := entry(2, 10, `"theirs"`)
	recs := conflict.LWW().Records("todos", "t1", "title", in, []crdt.Entry{other})
	if len(recs) != 1 {
		t.Fatalf("%d records, want 1", len(recs))
	}
	r := recs[0]
	if r.Collection != "todos" || r.Row != "t1" || r.Field != "title" || r.Mode != conflict.ModeLWW {
		t.Errorf("record names %+v", r)
	}
	if !bytes.Equal(r.Winner.Data, in.Value) || r.Winner.Dot != in.Dot || !bytes.Equal(r.Loser.Data, other.Value) || r.Loser.Dot != other.Dot {
		t.Errorf("winner %v loser %v: want the greater dot to win", r.Winner, r.Loser)
	}
	// The incoming write may also lose.
	r = conflict.LWW().Records("todos", "t1", "title", other, []crdt.Entry{in})[0]
	if r.Winner.Dot != in.Dot || r.Loser.Dot != other.Dot {
		t.Errorf("older incoming write: winner %v loser %v", r.Winner, r.Loser)
	}
	// Under a resolver the winner is the resolver's result.
	r = conflict.Custom(maxNumber).Records("c", "r", "f", entry(1, 20, "3"), []crdt.Entry{entry(2, 10, "9")})[0]
	if string(r.Winner.Data) != "9" || r.Mode != conflict.ModeResolver {
		t.Errorf("resolver record %+v", r)
	}
	if recs := conflict.LWW().Records("c", "r", "f", in, nil); recs != nil {
		t.Errorf("no concurrent entries gave records %v", recs)
	}
	if !strings.Contains(r.String(), "lost to") {
		t.Errorf("String() = %q", r.String())
	}
}

func TestPolicy_Validate(t *testing.T) {
	if err := conflict.Custom(nil).Validate(); !errors.Is(err, conflict.ErrInvalidPolicy) {
		t.Errorf("resolver policy without resolver: %v", err)
	}
	if err := (conflict.Policy{Mode: 9}).Validate(); !errors.Is(err, conflict.ErrInvalidPolicy) {
		t.Errorf("unknown mode: %v", err)
	}
	for _, p := range []conflict.Policy{conflict.LWW(), conflict.MultiValue(), conflict.Custom(maxNumber)} {
		if err := p.Validate(); err != nil {
			t.Errorf("%v: %v", p.Mode, err)
		}
	}
}
