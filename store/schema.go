package store

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/unosync/uno/conflict"
	"github.com/unosync/uno/crdt"
)

// MaxIDBytes is the longest row ID, in bytes.
const MaxIDBytes = 256

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

// ValidName reports whether s can name a collection or a field: it matches
// [a-z][a-z0-9_]{0,62}, does not start with "sqlite_" (reserved by SQLite)
// and, for fields, is not "id" (the row ID column).
func ValidName(s string, field bool) error {
	switch {
	case !validIdent(s):
		return fmt.Errorf("%w: %q: names match [a-z][a-z0-9_]{0,62}", ErrInvalidName, s)
	case strings.HasPrefix(s, "sqlite_"):
		return fmt.Errorf("%w: %q: the sqlite_ prefix is reserved", ErrInvalidName, s)
	case field && s == "id":
		return fmt.Errorf("%w: \"id\" is the row ID, not a field", ErrInvalidName)
	}
	return nil
}

// Schema declares collections: their fields' kinds, conflict policies and
// indexes. It is optional: without one, any valid collection and field
// name may be written and fields are registers. With one, only declared
// collections and fields may be written (the client enforces this).
type Schema struct {
	// Version is the app's schema version, reported to servers.
	Version     int
	Collections []Collection
}

// Collection declares one collection.
type Collection struct {
	Name    string
	Fields  []Field
	Indexes []Index
}

// Field declares one field.
type Field struct {
	Name   string
	Kind   crdt.Kind       // zero means register
	Policy conflict.Policy // for register fields; zero means last-writer-wins
}

// Index declares an index on the materialised table, for queries.
type Index struct {
	Name   string   // SQL index name; empty means "<collection>_<fields joined by _>"
	Fields []string // columns in order; "id" is allowed
}

// Validate checks names, kinds, policies and duplicates.
func (s *Schema) Validate() error {
	if s == nil {
		return nil
	}
	seen := map[string]bool{}
	for _, c := range s.Collections {
		if err := ValidName(c.Name, false); err != nil {
			return fmt.Errorf("%w: collection: %w", ErrInvalidSchema, err)
		}
		if seen[c.Name] {
			return fmt.Errorf("%w: collection %q declared twice", ErrInvalidSchema, c.Name)
		}
		seen[c.Name] = true
		fields := map[string]bool{}
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
			if err := f.Policy.Validate(); err != nil {
				return fmt.Errorf("%w: field %s.%s: %w", ErrInvalidSchema, c.Name, f.Name, err)
			}
			if f.Policy.Mode != conflict.ModeLWW && f.kind() != crdt.KindRegister {
				return fmt.Errorf("%w: field %s.%s: conflict policies apply to registers, not a %s", ErrInvalidSchema, c.Name, f.Name, f.kind())
			}
		}
		for _, ix := range c.Indexes {
			if len(ix.Fields) == 0 {
				return fmt.Errorf("%w: index on %s without fields", ErrInvalidSchema, c.Name)
			}
			for _, f := range ix.Fields {
				if f != "id" && !fields[f] {
					return fmt.Errorf("%w: index on %s: unknown field %q", ErrInvalidSchema, c.Name, f)
				}
			}
			if ix.Name != "" && !validIdent(ix.Name) {
				return fmt.Errorf("%w: index name %q: names match [a-z][a-z0-9_]{0,62}", ErrInvalidSchema, ix.Name)
			}
		}
	}
	return nil
}

func (f *Field) kind() crdt.Kind {
	if f.Kind == 0 {
		return crdt.KindRegister
	}
	return f.Kind
}

// Collection returns the declared collection, if any.
func (s *Schema) Collection(name string) (*Collection, bool) {
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

// Field returns the declared field, if any.
func (c *Collection) Field(name string) (*Field, bool) {
	for i := range c.Fields {
		if c.Fields[i].Name == name {
			return &c.Fields[i], true
		}
	}
	return nil, false
}

// KindOf returns a field's declared kind; undeclared fields are registers.
func (s *Schema) KindOf(collection, field string) crdt.Kind {
	if c, ok := s.Collection(collection); ok {
		if f, ok := c.Field(field); ok {
			return f.kind()
		}
	}
	return crdt.KindRegister
}

// PolicyOf returns a field's conflict policy (last-writer-wins unless declared).
func (s *Schema) PolicyOf(collection, field string) conflict.Policy {
	if c, ok := s.Collection(collection); ok {
		if f, ok := c.Field(field); ok {
			return f.Policy
		}
	}
	return conflict.LWW()
}

func (ix *Index) name(collection string) string {
	if ix.Name != "" {
		return ix.Name
	}
	return collection + "_" + strings.Join(ix.Fields, "_")
}

// validateNames checks the collection and field names of every op of tx:
// in the SQLite store they name tables and columns.
func validateNames(tx *crdt.Tx) error {
	for i := range tx.Ops {
		op := &tx.Ops[i]
		if err := ValidName(op.Collection, false); err != nil {
			return fmt.Errorf("tx %s/%d: collection: %w", tx.Site, tx.Seq, err)
		}
		if op.Row == "" || len(op.Row) > MaxIDBytes || !utf8.ValidString(op.Row) {
			return fmt.Errorf("%w: tx %s/%d: row id %.40q: want 1 to %d bytes of UTF-8", ErrInvalidName, tx.Site, tx.Seq, op.Row, MaxIDBytes)
		}
		if !op.IsRowOp() {
			if err := ValidName(op.Field, true); err != nil {
				return fmt.Errorf("tx %s/%d: field: %w", tx.Site, tx.Seq, err)
			}
		}
	}
	return nil
}
