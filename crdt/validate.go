package crdt

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// The validation rules: what a transaction may carry so that every replica
// of a tenant can apply and store it. Clients run them before a write
// commits and on what they receive; the server runs the same functions
// before it appends a pushed transaction to the log, because one entry
// that a replica cannot apply stops every replica of the tenant.

// MaxIDBytes is the longest row ID, in bytes.
const MaxIDBytes = 256

// DocValidator, when set, decodes Automerge change chunks in full and
// returns an error if they do not decode. The platform file with the
// Automerge library sets it; without it [ValidateTx] checks the chunks'
// headers, checksums and authors only.
var DocValidator func(changes []byte) error

// Defaults of [Limits].
const (
	DefaultMaxValueBytes = 1 << 20 // 1 MiB
	DefaultMaxDepth      = 64
	DefaultMaxRowBytes   = 2 << 20 // 2 MiB
)

// Limits bounds what one write may carry. The zero value (or a zero
// field) means the defaults; clients and servers should use the same
// limits, so a write one accepts the other accepts too.
type Limits struct {
	// MaxValueBytes caps one value: a register's JSON, a set member or a
	// doc's bytes. Default 1 MiB.
	MaxValueBytes int
	// MaxDepth caps the nesting of arrays and objects in a register value
	// ("[[1]]" has depth 2, a scalar 0). Default 64.
	MaxDepth int
	// MaxRowBytes caps a row's merged state as [EncodeRow] writes it, so
	// that any row fits in one sync message: a snapshot sends a row whole
	// (sync.SnapshotRow), and the sync codec's defaults are 4 MiB per frame
	// (CodecConfig.MaxFrameBytes) and 16 MiB per decompressed message
	// (MaxMessageBytes). Default 2 MiB, which leaves room for the
	// envelope; a deployment that lowers MaxFrameBytes must lower this too.
	MaxRowBytes int
}

// WithDefaults returns l with every zero or negative field set to its default.
func (l Limits) WithDefaults() Limits {
	if l.MaxValueBytes <= 0 {
		l.MaxValueBytes = DefaultMaxValueBytes
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = DefaultMaxDepth
	}
	if l.MaxRowBytes <= 0 {
		l.MaxRowBytes = DefaultMaxRowBytes
	}
	return l
}

// ValidName reports whether s can name a collection or, with field set, a
// field: it matches [a-z][a-z0-9_]{0,62}, does not start with "sqlite_"
// (reserved by SQLite, whose tables and columns these names become) and,
// for a field, is not "id" (the row ID). The error wraps ErrInvalidName.
func ValidName(s string, field bool) error {
	switch {
	case !validIdent(s):
		return fmt.Errorf("%w: %.40q: use a lower-case letter, then up to 62 lower-case letters, digits or _", ErrInvalidName, s)
	case strings.HasPrefix(s, "sqlite_"):
		return fmt.Errorf("%w: %q: the sqlite_ prefix is reserved", ErrInvalidName, s)
	case field && s == "id":
		return fmt.Errorf("%w: \"id\" is the row ID, not a field", ErrInvalidName)
	}
	return nil
}

// validIdent reports whether s matches [a-z][a-z0-9_]{0,62}.
func validIdent(s string) bool {
	if len(s) == 0 || len(s) > 63 || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// ValidID reports whether id can identify a row: 1 to [MaxIDBytes] bytes
// of valid UTF-8. The error wraps ErrInvalidID.
func ValidID(id string) error {
	switch {
	case id == "":
		return fmt.Errorf("%w: empty", ErrInvalidID)
	case len(id) > MaxIDBytes:
		return fmt.Errorf("%w: %.40q… is %d bytes, max %d", ErrInvalidID, id, len(id), MaxIDBytes)
	case !utf8.ValidString(id):
		return fmt.Errorf("%w: %.40q is not valid UTF-8", ErrInvalidID, id)
	}
	return nil
}

// Schema is a declared schema as far as merging needs it: the collections
// and the kind of each of their fields. When a schema is given to
// [ValidateTx], only declared collections and fields may be written, each
// with its declared kind. (Conflict policies and indexes are the store's
// business; store.Schema declares them and returns its Schema.)
type Schema struct {
	// Version is the app's schema version.
	Version     int
	Collections []SchemaCollection
}

// SchemaCollection declares one collection and its fields.
type SchemaCollection struct {
	Name   string
	Fields []SchemaField
}

// SchemaField declares one field.
type SchemaField struct {
	Name string
	Kind Kind // zero means KindRegister
}

// Validate checks names, kinds and duplicates. Errors wrap
// ErrInvalidSchema (and ErrInvalidName for a bad name). A nil schema is
// valid: it declares nothing and restricts nothing.
func (s *Schema) Validate() error {
	if s == nil {
		return nil
	}
	seen := make(map[string]bool, len(s.Collections))
	for _, c := range s.Collections {
		if err := ValidName(c.Name, false); err != nil {
			return fmt.Errorf("%w: collection: %w", ErrInvalidSchema, err)
		}
		if seen[c.Name] {
			return fmt.Errorf("%w: collection %q declared twice", ErrInvalidSchema, c.Name)
		}
		seen[c.Name] = true
		fields := make(map[string]bool, len(c.Fields))
		for _, f := range c.Fields {
			if err := ValidName(f.Name, true); err != nil {
				return fmt.Errorf("%w: %s: %w", ErrInvalidSchema, c.Name, err)
			}
			if fields[f.Name] {
				return fmt.Errorf("%w: field %s.%s declared twice", ErrInvalidSchema, c.Name, f.Name)
			}
			fields[f.Name] = true
			if f.Kind != 0 && !f.Kind.Valid() {
				return fmt.Errorf("%w: field %s.%s: unknown kind %d", ErrInvalidSchema, c.Name, f.Name, f.Kind)
			}
		}
	}
	return nil
}

// Collection returns the declared collection, if any. A nil schema
// declares none.
func (s *Schema) Collection(name string) (*SchemaCollection, bool) {
	if s == nil {
		return nil, false
	}
	for i := range s.Collections {
		if s.Collections[i].Name == name {
			return &s.Collections[i], true
		}
	}
	return nil, false
}

// KindOf returns the declared kind of a field (KindRegister for a field
// declared without one); ok is false if the collection or field is not
// declared.
func (s *Schema) KindOf(collection, field string) (k Kind, ok bool) {
	c, ok := s.Collection(collection)
	if !ok {
		return 0, false
	}
	for i := range c.Fields {
		if c.Fields[i].Name == field {
			if c.Fields[i].Kind == 0 {
				return KindRegister, true
			}
			return c.Fields[i].Kind, true
		}
	}
	return 0, false
}

// ValidateTx checks everything about tx that does not depend on the state
// it applies to: that it is well formed ([Tx.Validate]), and for every op
// the collection name and row ID ([ValidName], [ValidID]), the field name,
// the value (see below) and, if s is not nil, that the collection and field
// are declared in s with the op's kind.
//
// Values: a register's OpSet carries exactly one JSON value (no trailing
// bytes), at most l.MaxValueBytes long and nested at most l.MaxDepth deep;
// a set's OpAdd and OpRemove carry a JSON scalar (a string, number or
// boolean); a doc's OpChange carries at most l.MaxValueBytes of Automerge
// change chunks, each authored by the transaction's site (the actor ID is
// the site ID) and, in builds with the Automerge library ([DocValidator]),
// decoding in full; other ops carry no value. A JSON value
// must also be one every reader stores as it is, Postgres jsonb included:
// its strings are valid UTF-8 with no \u0000 and no unpaired surrogate
// escape, and its numbers are at most 128 bytes long, have an exponent of
// at most 3 digits and are within float64's range (not beyond it, and not
// so small that they round to zero).
//
// The error wraps ErrMalformedOp, ErrInvalidName, ErrInvalidID,
// ErrInvalidValue or ErrUndeclared, and names the transaction, the op's
// index and its collection, row and field. ValidateTx does not allocate
// for a transaction without doc changes (they are hashed to be checked)
// unless it fails.
func ValidateTx(tx *Tx, s *Schema, l Limits) error {
	if err := tx.Validate(); err != nil {
		return fmt.Errorf("tx %s/%d: %w", tx.Site, tx.Seq, err)
	}
	l = l.WithDefaults()
	for i := range tx.Ops {
		if err := validateOp(&tx.Ops[i], s, &l); err != nil {
			op := &tx.Ops[i]
			if op.IsRowOp() {
				return fmt.Errorf("tx %s/%d op %d (%s %.40q/%.40q): %w", tx.Site, tx.Seq, i, op.Type, op.Collection, op.Row, err)
			}
			return fmt.Errorf("tx %s/%d op %d (%s %.40q/%.40q field %.40q): %w", tx.Site, tx.Seq, i, op.Type, op.Collection, op.Row, op.Field, err)
		}
	}
	return nil
}

// validateOp checks one op of a transaction [Tx.Validate] accepted.
func validateOp(op *Op, s *Schema, l *Limits) error {
	if err := ValidName(op.Collection, false); err != nil {
		return fmt.Errorf("collection: %w", err)
	}
	if err := ValidID(op.Row); err != nil {
		return err
	}
	if !op.IsRowOp() {
		if err := ValidName(op.Field, true); err != nil {
			return fmt.Errorf("field: %w", err)
		}
	}
	if s != nil {
		if err := declared(op, s); err != nil {
			return err
		}
	}
	if err := unused(op); err != nil {
		return err
	}
	switch {
	case op.Type == OpSet && op.Kind == KindRegister:
		return validJSON(op.Value, l, false)
	case op.Type == OpChange: // Tx.Validate checked the change headers
		if len(op.Value) > l.MaxValueBytes {
			return fmt.Errorf("%w: doc changes of %d bytes exceed %d (Limits.MaxValueBytes)", ErrInvalidValue, len(op.Value), l.MaxValueBytes)
		}
		if DocValidator != nil {
			if err := DocValidator(op.Value); err != nil {
				return fmt.Errorf("%w: %v", ErrInvalidValue, err)
			}
		}
		return nil
	case op.Type == OpAdd || op.Type == OpRemove:
		return validJSON(op.Value, l, true)
	}
	return nil
}

// declared checks op against the declared schema s.
func declared(op *Op, s *Schema) error {
	if op.IsRowOp() {
		if _, ok := s.Collection(op.Collection); !ok {
			return fmt.Errorf("%w: collection %.40q is not declared", ErrUndeclared, op.Collection)
		}
		return nil
	}
	k, ok := s.KindOf(op.Collection, op.Field)
	switch {
	case !ok:
		if _, ok := s.Collection(op.Collection); !ok {
			return fmt.Errorf("%w: collection %.40q is not declared", ErrUndeclared, op.Collection)
		}
		return fmt.Errorf("%w: field %.40q of %s is not declared", ErrUndeclared, op.Field, op.Collection)
	case k != op.Kind:
		return fmt.Errorf("%w: %s.%s is declared a %s, written as a %s", ErrUndeclared, op.Collection, op.Field, k, op.Kind)
	}
	return nil
}

// unused refuses parts of an op its type does not use and that could make
// it large: no correct writer sets them, and they would travel and be
// logged for nothing.
func unused(op *Op) error {
	switch {
	case op.IsRowOp() && (op.Field != "" || op.Kind != 0):
		return fmt.Errorf("%w: a %s op names no field and no kind", ErrMalformedOp, op.Type)
	case len(op.Value) > 0 && op.Type != OpSet && op.Type != OpAdd && op.Type != OpRemove && op.Type != OpChange:
		return fmt.Errorf("%w: a %s op carries no value, got %d bytes", ErrInvalidValue, op.Type, len(op.Value))
	case len(op.Context) > 0 && op.Type != OpSet:
		return fmt.Errorf("%w: a %s op carries no causal context", ErrMalformedOp, op.Type)
	case len(op.Tags) > 0 && op.Type != OpRemove:
		return fmt.Errorf("%w: a %s op carries no tags", ErrMalformedOp, op.Type)
	}
	return nil
}

// maxNumberBytes caps a JSON number literal: the shortest form of any
// float64 is 24 bytes at most, and Postgres refuses literals with more
// than 16,383 digits after the point (as it does exponents beyond about
// ±16,000, hence the 3-digit exponent) even when float64 can hold them.
const maxNumberBytes = 128

// validJSON checks a register value (or, with scalar, a set member).
func validJSON(v []byte, l *Limits, scalar bool) error {
	what := "value"
	if scalar {
		what = "set member"
	}
	if len(v) > l.MaxValueBytes {
		return fmt.Errorf("%w: %s of %d bytes exceeds %d (Limits.MaxValueBytes)", ErrInvalidValue, what, len(v), l.MaxValueBytes)
	}
	if !json.Valid(v) {
		return fmt.Errorf("%w: %s %.40q is not one JSON value", ErrInvalidValue, what, v)
	}
	if scalar {
		switch firstByte(v) {
		case '{', '[', 'n':
			return fmt.Errorf("%w: set member %.40s: use a string, number or boolean", ErrInvalidValue, v)
		}
	}
	if err := scanJSON(v, l.MaxDepth); err != nil {
		return fmt.Errorf("%w: %s: %s", ErrInvalidValue, what, err)
	}
	return nil
}

// firstByte returns the first byte of v after white space (0 if none).
func firstByte(v []byte) byte {
	for _, c := range v {
		if c != ' ' && c != '\t' && c != '\n' && c != '\r' {
			return c
		}
	}
	return 0
}

// jsonError is a reason scanJSON refuses a value; it is a string constant
// so that scanning does not allocate.
type jsonError string

func (e jsonError) Error() string { return string(e) }

const (
	errDepth       jsonError = "arrays and objects nested too deep (Limits.MaxDepth)"
	errUTF8        jsonError = "a string that is not valid UTF-8"
	errNUL         jsonError = `a string with \u0000, which Postgres cannot store`
	errSurrogate   jsonError = "a string with an unpaired surrogate escape"
	errLongNumber  jsonError = "a number literal over 128 bytes"
	errNumberRange jsonError = "a number beyond float64's range, or with an exponent of more than 3 digits"
)

// scanJSON checks, in a value json.Valid accepted, what json.Valid does
// not: the nesting depth, the strings and the numbers (see [ValidateTx]).
// It does not allocate.
func scanJSON(b []byte, maxDepth int) error {
	depth := 0
	for i := 0; i < len(b); {
		switch c := b[i]; {
		case c == '[' || c == '{':
			depth++
			if depth > maxDepth {
				return errDepth
			}
			i++
		case c == ']' || c == '}':
			depth--
			i++
		case c == '"':
			n, err := scanString(b[i+1:])
			if err != nil {
				return err
			}
			i += 1 + n
		case c == '-' || c >= '0' && c <= '9':
			j := i + 1
			for j < len(b) && isNumberByte(b[j]) {
				j++
			}
			if err := checkNumber(b[i:j]); err != nil {
				return err
			}
			i = j
		default: // white space, separators, true, false, null
			i++
		}
	}
	return nil
}

// scanString checks a JSON string body up to its closing quote and
// returns the number of bytes it took, the quote included.
func scanString(b []byte) (int, error) {
	for i := 0; i < len(b); {
		c := b[i]
		switch {
		case c == '"':
			return i + 1, nil
		case c == '\\':
			if b[i+1] != 'u' {
				i += 2
				continue
			}
			r := hex4(b[i+2 : i+6])
			switch {
			case r == 0:
				return 0, errNUL
			case r >= 0xdc00 && r < 0xe000:
				return 0, errSurrogate
			case r >= 0xd800 && r < 0xdc00:
				if i+12 > len(b) || b[i+6] != '\\' || b[i+7] != 'u' {
					return 0, errSurrogate
				}
				if lo := hex4(b[i+8 : i+12]); lo < 0xdc00 || lo >= 0xe000 {
					return 0, errSurrogate
				}
				i += 12
			default:
				i += 6
			}
		case c < utf8.RuneSelf:
			i++
		default:
			r, n := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && n == 1 {
				return 0, errUTF8
			}
			i += n
		}
	}
	return len(b), nil // unreachable after json.Valid
}

// hex4 decodes the four hex digits of a \u escape json.Valid accepted.
func hex4(b []byte) rune {
	var r rune
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		default:
			c -= 'A' - 10
		}
		r = r<<4 | rune(c)
	}
	return r
}

func isNumberByte(c byte) bool {
	return c >= '0' && c <= '9' || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-'
}

// checkNumber checks a JSON number literal json.Valid accepted.
func checkNumber(n []byte) error {
	if len(n) > maxNumberBytes {
		return errLongNumber
	}
	mant, exp := n, n[len(n):]
	if i := bytes.IndexAny(n, "eE"); i >= 0 {
		mant, exp = n[:i], n[i+1:]
		if exp[0] == '+' || exp[0] == '-' {
			exp = exp[1:]
		}
	}
	if len(exp) > 3 {
		return errNumberRange
	}
	f, err := strconv.ParseFloat(string(n), 64)
	if err != nil {
		return errNumberRange
	}
	if f == 0 && bytes.ContainsAny(mant, "123456789") {
		return errNumberRange // not zero, but rounds to it
	}
	return nil
}

// CheckRowSize returns an error wrapping ErrRowTooLarge if the merged
// state of row k, r, encodes ([EncodeRow]) to more than l.MaxRowBytes. A
// caller that already holds the encoding calls [CheckRowBytes] instead.
func CheckRowSize(k RowKey, r *Row, l Limits) error {
	return CheckRowBytes(k, len(EncodeRow(r)), l)
}

// CheckRowBytes is [CheckRowSize] for a row whose encoded state is n bytes.
func CheckRowBytes(k RowKey, n int, l Limits) error {
	if limit := l.WithDefaults().MaxRowBytes; n > limit {
		return fmt.Errorf("%w: %.40q/%.40q would be %d bytes, max %d (Limits.MaxRowBytes)", ErrRowTooLarge, k.Collection, k.Row, n, limit)
	}
	return nil
}
