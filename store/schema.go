package store

import (
	"fmt"
	"strings"

	"github.com/unosync/uno/conflict"
	"github.com/unosync/uno/crdt"
)

// MaxIDBytes is the longest row ID, in bytes (crdt.MaxIDBytes).
const MaxIDBytes = crdt.MaxIDBytes

// ValidName reports whether s can name a collection or a field: it matches
// [a-z][a-z0-9_]{0,62}, does not start with "sqlite_" (reserved by SQLite)
// and, for fields, is not "id" (the row ID column). It is
// crdt.ValidName: the error wraps ErrInvalidName.
func ValidName(s string, field bool) error { return crdt.ValidName(s, field) }

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
			if ix.Name != "" {
				if err := ValidName(ix.Name, false); err != nil {
					return fmt.Errorf("%w: index name: %w", ErrInvalidSchema, err)
				}
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

// Declared returns the collections and field kinds s declares, as crdt's
// validation rules take them (crdt.ValidateTx): what a server enforces
// for this schema. It returns nil for a nil schema (nothing declared).
func (s *Schema) Declared() *crdt.Schema {
	if s == nil {
		return nil
	}
	out := &crdt.Schema{Version: s.Version, Collections: make([]crdt.SchemaCollection, len(s.Collections))}
	for i, c := range s.Collections {
		fields := make([]crdt.SchemaField, len(c.Fields))
		for j := range c.Fields {
			fields[j] = crdt.SchemaField{Name: c.Fields[j].Name, Kind: c.Fields[j].kind()}
		}
		out.Collections[i] = crdt.SchemaCollection{Name: c.Name, Fields: fields}
	}
	return out
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
