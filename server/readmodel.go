package server

import (
	"encoding/base64"
	"encoding/json"
	"fmt"

	usync "github.com/unosync/uno/sync"
)

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
