package store

import (
	"encoding/json"
	"fmt"
)

// Query selects alive rows of one collection.
type Query struct {
	Collection string
	// Where holds conditions that must all hold.
	Where []Cond
	// OrderBy names the field (or "id") to sort by; rows with equal values,
	// and all rows when OrderBy is empty, are sorted by ID. NULLs (missing
	// values) sort first, or last with Desc.
	OrderBy string
	Desc    bool
	// Limit caps the number of rows; 0 means no limit.
	Limit int
	// Known, if set, is asked about each row found, with its stored
	// merge state (valid only during the call), by stores that keep the
	// state encoded: true means the caller already holds the row as of
	// that state, and the row comes back with Row nil, not decoded. A
	// live query asks it about the rows of its last result, so a
	// refresh decodes only the rows that changed.
	Known func(id string, state []byte) bool
}

// Op is a comparison operator.
type Op string

// Comparison operators. Values compare as SQLite compares them: NULL (a
// missing field or JSON null) < numbers and booleans (as 0 and 1) < strings
// (bytewise; objects and arrays as their JSON text). A condition on a
// missing value holds only for Eq nil (IS NULL) and Ne nil (IS NOT NULL
// fails).
const (
	Eq Op = "="
	Ne Op = "!="
	Lt Op = "<"
	Le Op = "<="
	Gt Op = ">"
	Ge Op = ">="
)

// Cond is one condition: Field Op Value. Value is any JSON-compatible Go
// value; nil with Eq or Ne tests for a missing value.
type Cond struct {
	Field string
	Op    Op
	Value any
}

// compiled is a validated condition with its SQL value.
type compiled struct {
	field string
	op    Op
	value any
}

func (q *Query) compile() ([]compiled, error) {
	if err := ValidName(q.Collection, false); err != nil {
		return nil, err
	}
	if q.Limit < 0 {
		return nil, fmt.Errorf("%w: negative limit %d", ErrInvalidQuery, q.Limit)
	}
	if q.OrderBy != "" && q.OrderBy != "id" {
		if err := ValidName(q.OrderBy, true); err != nil {
			return nil, fmt.Errorf("%w: order by: %w", ErrInvalidQuery, err)
		}
	}
	out := make([]compiled, len(q.Where))
	for i, c := range q.Where {
		if c.Field != "id" {
			if err := ValidName(c.Field, true); err != nil {
				return nil, fmt.Errorf("%w: where: %w", ErrInvalidQuery, err)
			}
		}
		switch c.Op {
		case Eq, Ne, Lt, Le, Gt, Ge:
		default:
			return nil, fmt.Errorf("%w: unknown operator %q", ErrInvalidQuery, c.Op)
		}
		b, err := json.Marshal(c.Value)
		if err != nil {
			return nil, fmt.Errorf("%w: value for %s: %w", ErrInvalidQuery, c.Field, err)
		}
		v, err := jsonToSQL(b)
		if err != nil {
			return nil, fmt.Errorf("%w: value for %s: %w", ErrInvalidQuery, c.Field, err)
		}
		if v == nil && c.Op != Eq && c.Op != Ne {
			return nil, fmt.Errorf("%w: %s %s null: only = and != take null", ErrInvalidQuery, c.Field, c.Op)
		}
		out[i] = compiled{field: c.Field, op: c.Op, value: v}
	}
	return out, nil
}

// match evaluates a condition on a column value with SQL semantics.
func (c *compiled) match(v any) bool {
	if c.value == nil {
		if c.op == Eq {
			return v == nil
		}
		return v != nil
	}
	if v == nil {
		return false
	}
	cmp := compareSQL(v, c.value)
	switch c.op {
	case Eq:
		return cmp == 0
	case Ne:
		return cmp != 0
	case Lt:
		return cmp < 0
	case Le:
		return cmp <= 0
	case Gt:
		return cmp > 0
	}
	return cmp >= 0
}

func (c *compiled) sql(column string) string {
	if c.value == nil {
		if c.op == Eq {
			return column + " IS NULL"
		}
		return column + " IS NOT NULL"
	}
	return column + " " + string(c.op) + " ?"
}
