package server

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/unosync/uno/crdt"
	usync "github.com/unosync/uno/sync"
)

// rowDoc renders a row's merged state as the JSON object other services
// read: each field's value (a register's last-writer-wins value, a
// counter's number, a set's members, a doc's bytes as base64). A deleted
// row has no document (nil).
func rowDoc(r *crdt.Row) []byte {
	if !r.Alive() {
		return nil
	}
	b := make([]byte, 0, 32*len(r.Fields)+2)
	b = append(b, '{')
	for i := range r.Fields {
		f := &r.Fields[i]
		n := len(b) // to drop a field without a value
		if n > 1 {
			b = append(b, ',')
		}
		b = appendJSONName(b, f.Name)
		b = append(b, ':')
		switch f.Kind {
		case crdt.KindCounter:
			b = strconv.AppendInt(b, f.Counter.Value(), 10)
		case crdt.KindSet:
			b = append(b, '[')
			for j, m := range f.Set.Values() {
				if j > 0 {
					b = append(b, ',')
				}
				b = append(b, m...)
			}
			b = append(b, ']')
		case crdt.KindDoc:
			e, ok := f.Register.Winner()
			if !ok {
				b = b[:n]
				continue
			}
			// The base64 alphabet needs no escaping in JSON.
			b = append(b, '"')
			b = base64.StdEncoding.AppendEncode(b, e.Value)
			b = append(b, '"')
		default:
			e, ok := f.Register.Winner()
			if !ok {
				b = b[:n]
				continue
			}
			b = append(b, e.Value...)
		}
	}
	return append(b, '}')
}

// appendJSONName appends name as a JSON string, as encoding/json writes
// it.
func appendJSONName(b []byte, name string) []byte {
	for i := 0; i < len(name); i++ {
		if c := name[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			k, _ := json.Marshal(name)
			return append(b, k...)
		}
	}
	b = append(b, '"')
	b = append(b, name...)
	return append(b, '"')
}

// RowQuery is a query over the rows read model: the alive rows of one
// collection whose fields equal the Where values, ordered by Order (a
// field; "" orders by ID) then ID, after a cursor, at most Limit.
type RowQuery struct {
	Collection string
	Where      []FieldValue // all must match
	Order      string       // field to order by; "" for the row ID
	Desc       bool
	After      *QueryCursor // resume after this row (nil: from the start)
	Limit      int
}

// FieldValue is one equality filter: Field equals the JSON Value.
type FieldValue struct {
	Field string
	Value json.RawMessage
}

// QueryCursor marks a row in a query's order: its order value (JSON; null
// when ordering by ID or when the row lacks the field) and its ID.
type QueryCursor struct {
	Value json.RawMessage
	ID    string
}

// encode renders the cursor as the opaque string the API hands out.
func (c *QueryCursor) encode() string {
	b, _ := json.Marshal([]any{c.Value, c.ID})
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(s string) (*QueryCursor, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	var parts []json.RawMessage
	if err == nil {
		err = json.Unmarshal(b, &parts)
	}
	c := &QueryCursor{}
	if err == nil && len(parts) == 2 {
		err = json.Unmarshal(parts[1], &c.ID)
		c.Value = parts[0]
	} else if err == nil {
		err = fmt.Errorf("want [value, id]")
	}
	if err != nil {
		return nil, usync.Errorf(usync.CodeBadMessage, "cursor %q: %v: pass the next value of the previous page", s, err)
	}
	return c, nil
}

// QueryRow is one row of a query's result: its ID, its document and the
// value it was ordered by.
type QueryRow struct {
	ID    string
	Doc   json.RawMessage
	Order json.RawMessage
}

// rowQuerier is the optional capability of a log whose rows read model
// answers queries (both logs here have one).
type rowQuerier interface {
	QueryRows(ctx context.Context, tenant string, q RowQuery) ([]QueryRow, error)
}

// jsonPath is the SQLite JSON path of a top-level field.
func jsonPath(field string) string {
	b, _ := json.Marshal(field)
	return "$." + string(b)
}
