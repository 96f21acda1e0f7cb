package rowmodel

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
)

// The query API orders rows by a field's value, then by ID. Both logs
// follow one order, defined here, rather than their databases' own:
// SQLite's JSON functions turn numbers into float64 (2^53 + 1 becomes
// 2^53) and know nothing of types, and Postgres compares jsonb strings
// by the database's collation. The order is Postgres's documented jsonb
// order, by type first, made exact and independent of the database:
//
//	missing or null < strings < numbers < false < true < arrays < objects
//
// Strings compare by their UTF-8 bytes (after JSON unescaping), numbers
// by their exact decimal value (1, 1.0 and 1e0 are equal; no rounding at
// any size), and all arrays are equal, as are all objects. Equal values
// go by ID.
//
// The ranks of the types, in order.
const (
	RankNull = iota
	RankString
	RankNumber
	RankFalse
	RankTrue
	RankArray
	RankObject
)

// ErrOrderValue reports a value that is not one JSON value (or a number
// outside what a row can hold), as a cursor from a client may be.
var ErrOrderValue = errors.New("rowmodel: not an order value")

// maxExponentDigits bounds a number's exponent in an order value: crdt
// validation stores none with more than 3 digits; more than this is
// clamped in keys and refused in OrderParts (Postgres's numeric cannot
// hold it).
const (
	maxExponentDigits = 4
	maxExponent       = 1 << 20 // where longer exponents are clamped
)

// OrderKey returns the sort key of the JSON value v in the query order:
// keys of two values compare as bytes (bytes.Compare, SQLite's BLOB
// comparison) as the values do in the order. nil or empty v is a missing
// field, the same as null. It fails with ErrOrderValue if v is not one
// JSON value.
func OrderKey(v []byte) ([]byte, error) {
	v = bytes.TrimSpace(v)
	if len(v) == 0 {
		return []byte{RankNull}, nil
	}
	switch c := v[0]; {
	case c == '"':
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return nil, fmt.Errorf("%w: %.40s", ErrOrderValue, v)
		}
		return append([]byte{RankString}, s...), nil
	case c == '-' || c >= '0' && c <= '9':
		n, ok := parseNumber(v)
		if !ok {
			return nil, fmt.Errorf("%w: %.40s", ErrOrderValue, v)
		}
		return n.appendKey([]byte{RankNumber}), nil
	}
	rank, ok := otherRank(v)
	if !ok {
		return nil, fmt.Errorf("%w: %.40s", ErrOrderValue, v)
	}
	return []byte{byte(rank)}, nil
}

// OrderParts splits the JSON value v into what a database compares,
// in order, to follow the query order: its rank, its number (a literal
// for Postgres's numeric; "0" if v is no number) and its string (""
// if v is no string). nil or empty v is null. It fails with
// ErrOrderValue if v is not one JSON value or is a number whose
// exponent has more than 4 digits.
func OrderParts(v []byte) (rank int, num, str string, err error) {
	v = bytes.TrimSpace(v)
	if len(v) == 0 {
		return RankNull, "0", "", nil
	}
	switch c := v[0]; {
	case c == '"':
		if err := json.Unmarshal(v, &str); err != nil {
			return 0, "", "", fmt.Errorf("%w: %.40s", ErrOrderValue, v)
		}
		return RankString, "0", str, nil
	case c == '-' || c >= '0' && c <= '9':
		n, ok := parseNumber(v)
		if !ok || n.clamped {
			return 0, "", "", fmt.Errorf("%w: %.40s", ErrOrderValue, v)
		}
		return RankNumber, string(v), "", nil
	}
	rank, ok := otherRank(v)
	if !ok {
		return 0, "", "", fmt.Errorf("%w: %.40s", ErrOrderValue, v)
	}
	return rank, "0", "", nil
}

// otherRank returns the rank of a JSON value that is no string and no
// number.
func otherRank(v []byte) (int, bool) {
	switch string(v) {
	case "null":
		return RankNull, true
	case "false":
		return RankFalse, true
	case "true":
		return RankTrue, true
	}
	if !json.Valid(v) {
		return 0, false
	}
	switch v[0] {
	case '[':
		return RankArray, true
	case '{':
		return RankObject, true
	}
	return 0, false
}

// decimal is a number as ±0.d₁d₂…dₙ × 10^exp, with d₁ and dₙ not 0 (no
// digits: zero).
type decimal struct {
	neg     bool
	digits  []byte // ASCII
	exp     int
	clamped bool // the exponent was out of range
}

// parseNumber parses a JSON number literal exactly.
func parseNumber(b []byte) (decimal, bool) {
	var d decimal
	i := 0
	if b[i] == '-' {
		d.neg = true
		i++
	}
	start := i
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	default:
		return d, false
	}
	intPart := b[start:i]
	var frac []byte
	if i < len(b) && b[i] == '.' {
		i++
		start = i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == start {
			return d, false
		}
		frac = b[start:i]
	}
	exp := 0
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		neg := false
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			neg = b[i] == '-'
			i++
		}
		start = i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			if exp < maxExponent {
				exp = min(exp*10+int(b[i]-'0'), maxExponent)
			}
			i++
		}
		if i == start {
			return d, false
		}
		d.clamped = i-start > maxExponentDigits
		if neg {
			exp = -exp
		}
	}
	if i != len(b) {
		return d, false
	}
	d.digits = append(append(make([]byte, 0, len(intPart)+len(frac)), intPart...), frac...)
	d.exp = len(intPart) + exp
	for len(d.digits) > 0 && d.digits[0] == '0' {
		d.digits = d.digits[1:]
		d.exp--
	}
	for len(d.digits) > 0 && d.digits[len(d.digits)-1] == '0' {
		d.digits = d.digits[:len(d.digits)-1]
	}
	return d, true
}

// appendKey appends the number's sort key: a sign byte, then for
// nonzero numbers the exponent and the digits, both inverted for
// negative numbers, whose digits end with 0xFF so that a longer
// magnitude sorts first.
func (d decimal) appendKey(b []byte) []byte {
	if len(d.digits) == 0 {
		return append(b, 0x80)
	}
	exp := uint32(int32(d.exp)) + 1<<31 // order-preserving for any int32
	if !d.neg {
		b = append(b, 0x81)
		b = binary.BigEndian.AppendUint32(b, exp)
		return append(b, d.digits...)
	}
	b = append(b, 0x7F)
	b = binary.BigEndian.AppendUint32(b, ^exp)
	for _, c := range d.digits {
		b = append(b, '0'+'9'-c)
	}
	return append(b, 0xFF)
}
