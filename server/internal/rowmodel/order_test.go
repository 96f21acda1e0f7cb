package rowmodel

import (
	"bytes"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"testing"

	"pgregory.net/rapid"
)

// Values in the query order; those in one group are equal.
var ordered = [][]string{
	{``, `null`, ` null `},
	{`""`},
	{`"10"`},
	{`"B"`},
	{`"a"`},
	{`"a\u0000"`},
	{`"ab"`},
	{`"é"`, `"\u00e9"`},
	{`-1e1000`},
	{`-123456789012345678901234567891`},
	{`-123456789012345678901234567890`},
	{`-9007199254740993`},
	{`-9007199254740992`, `-9007199254740992.0`, `-9.007199254740992e15`},
	{`-100`, `-1e2`, `-1E+2`, `-100.000`},
	{`-10`},
	{`-2`},
	{`-1.5`},
	{`-1.25`},
	{`-1.2`},
	{`-1`},
	{`-1e-7`},
	{`0`, `-0`, `0.0`, `0e10`, `-0.0e-3`},
	{`1e-7`, `0.0000001`, `1E-7`},
	{`1`, `1.0`, `1e0`, `10e-1`},
	{`1.2`},
	{`1.25`},
	{`1.5`},
	{`2`},
	{`10`},
	{`100`, `1e2`},
	{`9007199254740992`},
	{`9007199254740993`},
	{`9007199254740994`},
	{`123456789012345678901234567890`},
	{`123456789012345678901234567891`},
	{`1e1000`},
	{`false`},
	{`true`},
	{`[]`, `[1,2]`, `[null]`, `["z"]`},
	{`{}`, `{"a":1}`},
}

func TestOrderKey_Order(t *testing.T) {
	type keyed struct {
		v   string
		g   int
		key []byte
	}
	var all []keyed
	for g, group := range ordered {
		for _, v := range group {
			k, err := OrderKey([]byte(v))
			if err != nil {
				t.Fatalf("OrderKey(%s): %v", v, err)
			}
			all = append(all, keyed{v, g, k})
		}
	}
	for _, a := range all {
		for _, b := range all {
			want := 0
			switch {
			case a.g < b.g:
				want = -1
			case a.g > b.g:
				want = 1
			}
			if got := bytes.Compare(a.key, b.key); got != want {
				t.Errorf("%s vs %s: keys compare %d, want %d", a.v, b.v, got, want)
			}
		}
	}
}

func TestOrderKey_Invalid(t *testing.T) {
	for _, v := range []string{`nul`, `"a`, `01`, `1.`, `.5`, `1e`, `--1`, `1x`, `+1`, `[1`, `{"a"}`, `tru`, `1 2`, `NaN`} {
		if _, err := OrderKey([]byte(v)); !errors.Is(err, ErrOrderValue) {
			t.Errorf("OrderKey(%s): %v, want ErrOrderValue", v, err)
		}
		if _, _, _, err := OrderParts([]byte(v)); !errors.Is(err, ErrOrderValue) {
			t.Errorf("OrderParts(%s): %v, want ErrOrderValue", v, err)
		}
	}
	if _, _, _, err := OrderParts([]byte(`1e12345`)); !errors.Is(err, ErrOrderValue) {
		t.Errorf("OrderParts of a 5-digit exponent: %v", err)
	}
	if _, err := OrderKey([]byte(`1e` + strings.Repeat("9", 50))); err != nil {
		t.Errorf("OrderKey of a long exponent: %v", err)
	}
}

func TestOrderParts(t *testing.T) {
	for _, c := range []struct {
		v        string
		rank     int
		num, str string
	}{
		{``, RankNull, "0", ""}, {`null`, RankNull, "0", ""}, {`"a\"b"`, RankString, "0", `a"b`},
		{`9007199254740993`, RankNumber, "9007199254740993", ""}, {`-1.5e3`, RankNumber, "-1.5e3", ""},
		{`false`, RankFalse, "0", ""}, {`true`, RankTrue, "0", ""}, {`[1]`, RankArray, "0", ""}, {`{"a":"b"}`, RankObject, "0", ""},
	} {
		rank, num, str, err := OrderParts([]byte(c.v))
		if err != nil || rank != c.rank || num != c.num || str != c.str {
			t.Errorf("OrderParts(%s) = %d, %q, %q, %v; want %d, %q, %q", c.v, rank, num, str, err, c.rank, c.num, c.str)
		}
	}
}

// Keys of numbers compare as their exact values do.
func TestOrderKey_NumbersExact(t *testing.T) {
	literal := rapid.Custom(func(t *rapid.T) string {
		var b strings.Builder
		if rapid.Bool().Draw(t, "neg") {
			b.WriteByte('-')
		}
		digits := rapid.StringMatching(`0|[1-9][0-9]{0,30}`).Draw(t, "int")
		b.WriteString(digits)
		if frac := rapid.StringMatching(`[0-9]{0,20}`).Draw(t, "frac"); frac != "" {
			b.WriteString("." + frac)
		}
		if rapid.Bool().Draw(t, "hasExp") {
			fmt.Fprintf(&b, "e%d", rapid.IntRange(-400, 400).Draw(t, "exp"))
		}
		return b.String()
	})
	rapid.Check(t, func(t *rapid.T) {
		a, b := literal.Draw(t, "a"), literal.Draw(t, "b")
		ra, _ := new(big.Rat).SetString(a)
		rb, _ := new(big.Rat).SetString(b)
		ka, err := OrderKey([]byte(a))
		if err != nil {
			t.Fatal(err)
		}
		kb, err := OrderKey([]byte(b))
		if err != nil {
			t.Fatal(err)
		}
		if got, want := bytes.Compare(ka, kb), ra.Cmp(rb); got != want {
			t.Fatalf("%s vs %s: keys compare %d, values %d", a, b, got, want)
		}
	})
}
