package crdt_test

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/unosync/uno/crdt"
)

func TestNewSiteID(t *testing.T) {
	src := bytes.NewReader(bytes.Repeat([]byte{0xC3}, 20))
	s, err := crdt.NewSiteID(src)
	if err != nil || s != (crdt.SiteID{0xC3, 0xC3, 0xC3, 0xC3, 0xC3, 0xC3, 0xC3, 0xC3, 0xC3, 0xC3, 0xC3, 0xC3, 0xC3, 0xC3, 0xC3, 0xC3}) {
		t.Fatalf("NewSiteID = %v, %v", s, err)
	}
	if _, err := crdt.NewSiteID(bytes.NewReader(make([]byte, 15))); err == nil {
		t.Fatal("NewSiteID from 15 bytes succeeded")
	}
}

func TestParseSiteID(t *testing.T) {
	s := crdt.SiteID{0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0, 0, 0, 0, 0, 0, 0, 0xff}
	str := s.String()
	if str != "0123456789abcdef00000000000000ff" {
		t.Fatalf("String() = %q", str)
	}
	for _, in := range []string{str, strings.ToUpper(str)} {
		if got, err := crdt.ParseSiteID(in); err != nil || got != s {
			t.Errorf("ParseSiteID(%q) = %v, %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "00", str + "00", str[:31] + "g", str[:30]} {
		if _, err := crdt.ParseSiteID(bad); err == nil {
			t.Errorf("ParseSiteID(%q) succeeded", bad)
		}
	}
	if !(crdt.SiteID{}).IsZero() || s.IsZero() {
		t.Error("IsZero is wrong")
	}
	if siteA.Compare(siteB) >= 0 || siteB.Compare(siteA) <= 0 || siteA.Compare(siteA) != 0 {
		t.Error("Compare is not bytewise")
	}
}

func TestKind(t *testing.T) {
	for _, k := range []crdt.Kind{crdt.KindRegister, crdt.KindCounter, crdt.KindSet, crdt.KindDoc} {
		if !k.Valid() {
			t.Errorf("%s not valid", k)
		}
		if got, err := crdt.ParseKind(k.String()); err != nil || got != k {
			t.Errorf("ParseKind(%q) = %v, %v", k.String(), got, err)
		}
	}
	for _, k := range []crdt.Kind{0, 5, 255} {
		if k.Valid() || k.String() == "" {
			t.Errorf("kind %d: Valid %v, String %q", uint8(k), k.Valid(), k.String())
		}
	}
	if _, err := crdt.ParseKind("Register"); err == nil {
		t.Error("ParseKind is case-insensitive")
	}
	if crdt.OpDelete.String() != "delete" || crdt.OpType(99).String() != "op(99)" {
		t.Error("OpType.String")
	}
}

func TestDot_Compare(t *testing.T) {
	ordered := []crdt.Dot{
		{Site: siteB, Time: ts(1)},
		{Site: siteA, Time: ts(2)},
		{Site: siteB, Time: ts(2)}, // same time: site breaks the tie
		{Site: siteA, Time: ts(3)},
	}
	for i := range ordered {
		for j := range ordered {
			got := ordered[i].Compare(ordered[j])
			want := 0
			if i < j {
				want = -1
			} else if i > j {
				want = 1
			}
			if got != want {
				t.Errorf("%v.Compare(%v) = %d, want %d", ordered[i], ordered[j], got, want)
			}
		}
	}
}

func TestContext(t *testing.T) {
	a5, b5, a7, c1 := crdt.Dot{Site: siteA, Time: ts(5)}, crdt.Dot{Site: siteB, Time: ts(5)}, crdt.Dot{Site: siteA, Time: ts(7)}, crdt.Dot{Site: siteC, Time: ts(1)}
	var empty crdt.Context
	if empty.Covers(a5) {
		t.Error("empty context covers a dot")
	}
	c := empty.Add(b5).Add(c1).Add(a5)
	if want := (crdt.Context{a5, b5, c1}); !slices.Equal(c, want) {
		t.Fatalf("Add: %v, want sorted %v", c, want)
	}
	if !c.Covers(a5) || !c.Covers(crdt.Dot{Site: siteA, Time: ts(4)}) || c.Covers(a7) || c.Covers(crdt.Dot{Site: crdt.SiteID{0xDD}, Time: ts(0)}) {
		t.Error("Covers is not per-site ≤")
	}
	// Contexts are values: Add and Join return new ones.
	before := slices.Clone(c)
	c2 := c.Add(a7)
	if !slices.Equal(c, before) || !c2.Covers(a7) {
		t.Errorf("Add modified its receiver: %v", c)
	}
	if got := c.Add(crdt.Dot{Site: siteA, Time: ts(1)}); !slices.Equal(got, c) {
		t.Errorf("Add of a covered dot changed the context: %v", got)
	}
	j := crdt.Context{b5}.Join(crdt.Context{a7, crdt.Dot{Site: siteB, Time: ts(2)}, c1})
	if want := (crdt.Context{a7, b5, c1}); !slices.Equal(j, want) {
		t.Errorf("Join = %v, want per-site max %v", j, want)
	}
	if !slices.Equal(c, before) {
		t.Error("Join modified its receiver")
	}
}

func TestErrors(t *testing.T) {
	// The sentinels are distinct and keep their package prefix.
	errs := []error{crdt.ErrMalformedOp, crdt.ErrDecode, crdt.ErrClockDrift, crdt.ErrKindMismatch}
	for i, a := range errs {
		if !strings.HasPrefix(a.Error(), "crdt: ") {
			t.Errorf("%q lacks the crdt: prefix", a)
		}
		for j, b := range errs {
			if i != j && errors.Is(a, b) {
				t.Errorf("%v matches %v", a, b)
			}
		}
	}
}
