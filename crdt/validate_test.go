package crdt_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/unosync/uno/crdt"
)

func TestValidName(t *testing.T) {
	tests := []struct {
		name  string
		field bool
		ok    bool
	}{
		{"todos", false, true},
		{"a", false, true},
		{"a" + strings.Repeat("b_9", 20) + "xy", false, true}, // 63 bytes
		{"a" + strings.Repeat("b", 63), false, false},         // 64 bytes
		{"", false, false},
		{"Bad Name", false, false},
		{"Todos", false, false},
		{"1todos", false, false},
		{"_uno_rows", false, false},
		{"to-dos", false, false},
		{`x"y`, false, false},
		{"é", false, false},
		{"sqlite_x", false, false},
		{"sqlite_x", true, false},
		{"sqlite", false, true},
		{"id", false, true},
		{"id", true, false},
		{"ids", true, true},
	}
	for _, tt := range tests {
		err := crdt.ValidName(tt.name, tt.field)
		if tt.ok && err != nil {
			t.Errorf("ValidName(%q, %v) = %v, want nil", tt.name, tt.field, err)
		}
		if !tt.ok && !errors.Is(err, crdt.ErrInvalidName) {
			t.Errorf("ValidName(%q, %v) = %v, want ErrInvalidName", tt.name, tt.field, err)
		}
	}
}

func TestValidID(t *testing.T) {
	tests := []struct {
		id string
		ok bool
	}{
		{"r", true},
		{"019436d2-7c3f-7000-8000-000000000000", true},
		{strings.Repeat("x", crdt.MaxIDBytes), true},
		{strings.Repeat("é", crdt.MaxIDBytes/2), true},
		{"a b/c\x00", true},
		{"", false},
		{strings.Repeat("x", crdt.MaxIDBytes+1), false},
		{strings.Repeat("é", crdt.MaxIDBytes/2) + "x", false},
		{"t\xff\xfe", false},
		{"\xed\xa0\x80", false}, // a surrogate encoded in UTF-8
	}
	for _, tt := range tests {
		err := crdt.ValidID(tt.id)
		if tt.ok && err != nil {
			t.Errorf("ValidID(%.20q) = %v, want nil", tt.id, err)
		}
		if !tt.ok && !errors.Is(err, crdt.ErrInvalidID) {
			t.Errorf("ValidID(%.20q) = %v, want ErrInvalidID", tt.id, err)
		}
	}
}

func TestLimits_WithDefaults(t *testing.T) {
	want := crdt.Limits{MaxValueBytes: 1 << 20, MaxDepth: 64, MaxRowBytes: 2 << 20}
	for _, l := range []crdt.Limits{{}, {MaxValueBytes: -1, MaxDepth: -1, MaxRowBytes: -1}} {
		if got := l.WithDefaults(); got != want {
			t.Errorf("%+v.WithDefaults() = %+v, want %+v", l, got, want)
		}
	}
	set := crdt.Limits{MaxValueBytes: 1, MaxDepth: 2, MaxRowBytes: 3}
	if got := set.WithDefaults(); got != set {
		t.Errorf("%+v.WithDefaults() = %+v, want it unchanged", set, got)
	}
}

// Ops for the ValidateTx tables, on todos/r1.
func regOp(v string) crdt.Op {
	return crdt.Op{Type: crdt.OpSet, Kind: crdt.KindRegister, Collection: "todos", Row: "r1", Field: "title", CL: 1, Value: []byte(v)}
}

func memberOp(t crdt.OpType, v string) crdt.Op {
	return crdt.Op{Type: t, Kind: crdt.KindSet, Collection: "todos", Row: "r1", Field: "tags", CL: 1, Value: []byte(v)}
}

// docOp returns an op adding Automerge changes v to todos/r1.body.
func docOp(v []byte) crdt.Op { return docChangeOp(v) }

// docBytes returns n bytes or more of valid Automerge changes by siteA.
func docBytes(n int) []byte {
	var out []byte
	for seq := uint64(1); len(out) < n; seq++ {
		c, _ := emptyChange(siteA, seq)
		out = append(out, c...)
	}
	return out
}

func incOp() crdt.Op {
	return crdt.Op{Type: crdt.OpIncrement, Kind: crdt.KindCounter, Collection: "todos", Row: "r1", Field: "n", CL: 1, P: 2}
}

func rowOp(t crdt.OpType, cl uint64) crdt.Op {
	return crdt.Op{Type: t, Collection: "todos", Row: "r1", CL: cl}
}

func with(op crdt.Op, f func(*crdt.Op)) crdt.Op { f(&op); return op }

func nested(open, close string, depth int) string {
	return strings.Repeat(open, depth) + "1" + strings.Repeat(close, depth)
}

var todoSchema = &crdt.Schema{Version: 2, Collections: []crdt.SchemaCollection{
	{Name: "todos", Fields: []crdt.SchemaField{
		{Name: "title"}, // zero kind: a register
		{Name: "tags", Kind: crdt.KindSet},
		{Name: "body", Kind: crdt.KindDoc},
		{Name: "n", Kind: crdt.KindCounter},
	}},
	{Name: "lists"},
}}

func TestValidateTx(t *testing.T) {
	const mib = 1 << 20
	str := func(n int) string { return `"` + strings.Repeat("x", n-2) + `"` } // a JSON string of n bytes
	tests := []struct {
		name   string
		op     crdt.Op
		schema *crdt.Schema
		limits crdt.Limits
		want   error // nil: valid
	}{
		// Register values: exactly one JSON value.
		{"string", regOp(`"buy milk"`), nil, crdt.Limits{}, nil},
		{"integer", regOp(`42`), nil, crdt.Limits{}, nil},
		{"negative zero", regOp(`-0`), nil, crdt.Limits{}, nil},
		{"float", regOp(`-1.5e300`), nil, crdt.Limits{}, nil},
		{"smallest float", regOp(`4.9e-324`), nil, crdt.Limits{}, nil},
		{"zero with an exponent", regOp(`0.0e-999`), nil, crdt.Limits{}, nil},
		{"big integer", regOp(`123456789012345678901234567890`), nil, crdt.Limits{}, nil},
		{"true", regOp(`true`), nil, crdt.Limits{}, nil},
		{"null", regOp(`null`), nil, crdt.Limits{}, nil},
		{"object", regOp(`{"a":[1,{"b":null}],"c":"d"}`), nil, crdt.Limits{}, nil},
		{"white space around", regOp(" [1, 2]\n"), nil, crdt.Limits{}, nil},
		{"escapes", regOp(`"a\"b\\c\/d\n\u00e9\u0001"`), nil, crdt.Limits{}, nil},
		{"surrogate pair", regOp(`"\ud83d\ude00"`), nil, crdt.Limits{}, nil},
		{"UTF-8", regOp(`{"é":"日本"}`), nil, crdt.Limits{}, nil},
		{"brackets in a string", regOp(`"` + strings.Repeat("[", 100) + `"`), nil, crdt.Limits{}, nil},
		{"depth 64", regOp(nested("[", "]", 64)), nil, crdt.Limits{}, nil},
		{"object depth 64", regOp(strings.Repeat(`{"a":`, 64) + "1" + strings.Repeat("}", 64)), nil, crdt.Limits{}, nil},
		{"MaxValueBytes", regOp(str(mib)), nil, crdt.Limits{}, nil},
		{"object injection", regOp(`1,"owner":"victim"`), nil, crdt.Limits{}, crdt.ErrInvalidValue},
		{"two values", regOp(`{"a":1}{}`), nil, crdt.Limits{}, crdt.ErrInvalidValue},
		{"trailing garbage", regOp(`"a"x`), nil, crdt.Limits{}, crdt.ErrInvalidValue},
		{"trailing comma", regOp(`[1],`), nil, crdt.Limits{}, crdt.ErrInvalidValue},
		{"empty", regOp(``), nil, crdt.Limits{}, crdt.ErrInvalidValue},
		{"bare word", regOp(`victim`), nil, crdt.Limits{}, crdt.ErrInvalidValue},
		{"unterminated", regOp(`{"a":`), nil, crdt.Limits{}, crdt.ErrInvalidValue},
		{"single quotes", regOp(`'a'`), nil, crdt.Limits{}, crdt.ErrInvalidValue},
		{"NaN", regOp(`NaN`), nil, crdt.Limits{}, crdt.ErrInvalidValue},
		{"invalid UTF-8 in a string", regOp("\"a\xffb\""), nil, crdt.Limits{}, crdt.ErrInvalidValue},
		{"invalid UTF-8 in a key", regOp("{\"\xc3\":1}"), nil, crdt.Limits{}, crdt.ErrInvalidValue},
		{"UTF-8 surrogate", regOp("\"\xed\xa0\x80\""), nil, crdt.Limits{}, crdt.ErrInvalidValue},
		{`\u0000`, regOp(`"a\u0000"`), nil, crdt.Limits{}, crdt.ErrInvalidValue},
		{`\u0000 in a key`, regOp(`{"\u0000":1}`), nil, crdt.Limits{}, crdt.ErrInvalidValue},
		{"lone high surrogate", regOp(`"\ud800"`), nil, crdt.Limits{}, crdt.ErrInvalidValue},
		{"lone low surrogate", regOp(`"\uDC00"`), nil, crdt.Limits{}, crdt.ErrInvalidValue},
		{"high surrogate and a letter", regOp(`"\ud800\u0041"`), nil, crdt.Limits{}, crdt.ErrInvalidValue},
		{"high surrogate and text", regOp(`"\ud800abcdef"`), nil, crdt.Limits{}, crdt.ErrInvalidValue},
		{"number overflows", regOp(`1e400`), nil, crdt.Limits{}, crdt.ErrInvalidValue},
		{"negative number overflows", regOp(`[-1e400]`), nil, crdt.Limits{}, crdt.ErrInvalidValue},
		{"number underflows", regOp(`1e-400`), nil, crdt.Limits{}, crdt.ErrInvalidValue},
		{"fraction underflows", regOp(`0.00001e-320`), nil, crdt.Limits{}, crdt.ErrInvalidValue},
		{"exponent of 4 digits", regOp(`0e1000`), nil, crdt.Limits{}, crdt.ErrInvalidValue},
		{"number of 129 bytes", regOp(`1.` + strings.Repeat("0", 127)), nil, crdt.Limits{}, crdt.ErrInvalidValue},
		{"depth 65", regOp(nested("[", "]", 65)), nil, crdt.Limits{}, crdt.ErrInvalidValue},
		{"object depth 65", regOp(strings.Repeat(`{"a":`, 65) + "1" + strings.Repeat("}", 65)), nil, crdt.Limits{}, crdt.ErrInvalidValue},
		{"depth 10001", regOp(nested("[", "]", 10001)), nil, crdt.Limits{}, crdt.ErrInvalidValue},
		{"MaxValueBytes+1", regOp(str(mib + 1)), nil, crdt.Limits{}, crdt.ErrInvalidValue},
		{"over a lower MaxValueBytes", regOp(str(11)), nil, crdt.Limits{MaxValueBytes: 10}, crdt.ErrInvalidValue},
		{"at a lower MaxValueBytes", regOp(str(10)), nil, crdt.Limits{MaxValueBytes: 10}, nil},
		{"over a lower MaxDepth", regOp(nested("[", "]", 3)), nil, crdt.Limits{MaxDepth: 2}, crdt.ErrInvalidValue},
		{"at a lower MaxDepth", regOp(nested("[", "]", 2)), nil, crdt.Limits{MaxDepth: 2}, nil},

		// Set members: JSON scalars.
		{"string member", memberOp(crdt.OpAdd, `"x"`), nil, crdt.Limits{}, nil},
		{"number member", memberOp(crdt.OpAdd, `1.5`), nil, crdt.Limits{}, nil},
		{"bool member", memberOp(crdt.OpAdd, `false`), nil, crdt.Limits{}, nil},
		{"removed member", memberOp(crdt.OpRemove, `"x"`), nil, crdt.Limits{}, nil},
		{"object member", memberOp(crdt.OpAdd, `{"a":1}`), nil, crdt.Limits{}, crdt.ErrInvalidValue},
		{"array member", memberOp(crdt.OpAdd, `[1]`), nil, crdt.Limits{}, crdt.ErrInvalidValue},
		{"null member", memberOp(crdt.OpAdd, `null`), nil, crdt.Limits{}, crdt.ErrInvalidValue},
		{"null member after space", memberOp(crdt.OpAdd, ` null`), nil, crdt.Limits{}, crdt.ErrInvalidValue},
		{"removed object", memberOp(crdt.OpRemove, `{}`), nil, crdt.Limits{}, crdt.ErrInvalidValue},
		{"two members", memberOp(crdt.OpAdd, `1,2`), nil, crdt.Limits{}, crdt.ErrInvalidValue},
		{"empty member", memberOp(crdt.OpAdd, ``), nil, crdt.Limits{}, crdt.ErrInvalidValue},
		{`member with \u0000`, memberOp(crdt.OpAdd, `"\u0000"`), nil, crdt.Limits{}, crdt.ErrInvalidValue},
		{"member overflows", memberOp(crdt.OpAdd, `1e999`), nil, crdt.Limits{}, crdt.ErrInvalidValue},
		{"member of MaxValueBytes+1", memberOp(crdt.OpAdd, str(mib+1)), nil, crdt.Limits{}, crdt.ErrInvalidValue},

		// Docs: bytes, not checked yet beyond their size.
		{"doc", docOp(docBytes(1)), nil, crdt.Limits{}, nil},
		{"doc without changes", docOp(nil), nil, crdt.Limits{}, crdt.ErrInvalidValue},
		{"doc not Automerge", docOp([]byte{0x85, 0x6f, 0xff, 0x00}), nil, crdt.Limits{}, crdt.ErrInvalidValue},
		{"doc of MaxValueBytes", docOp(docBytes(4000)), nil, crdt.Limits{MaxValueBytes: len(docBytes(4000))}, nil},
		{"doc of MaxValueBytes+1", docOp(docBytes(4000)), nil, crdt.Limits{MaxValueBytes: len(docBytes(4000)) - 1}, crdt.ErrInvalidValue},

		// Counters and row ops carry no value.
		{"increment", incOp(), nil, crdt.Limits{}, nil},
		{"delete", rowOp(crdt.OpDelete, 2), nil, crdt.Limits{}, nil},
		{"revive", rowOp(crdt.OpRevive, 3), nil, crdt.Limits{}, nil},
		{"increment with a value", with(incOp(), func(o *crdt.Op) { o.Value = []byte("1") }), nil, crdt.Limits{}, crdt.ErrInvalidValue},
		{"delete with a value", with(rowOp(crdt.OpDelete, 2), func(o *crdt.Op) { o.Value = []byte(`"x"`) }), nil, crdt.Limits{}, crdt.ErrInvalidValue},

		// Parts an op does not use.
		{"add with a context", with(memberOp(crdt.OpAdd, `"x"`), func(o *crdt.Op) { o.Context = crdt.Context{{Site: siteA, Time: ts(0)}} }), nil, crdt.Limits{}, crdt.ErrMalformedOp},
		{"set with tags", with(regOp(`1`), func(o *crdt.Op) { o.Tags = []crdt.Dot{{Site: siteA, Time: ts(0)}} }), nil, crdt.Limits{}, crdt.ErrMalformedOp},
		{"delete of a field", with(rowOp(crdt.OpDelete, 2), func(o *crdt.Op) { o.Field = "title" }), nil, crdt.Limits{}, crdt.ErrMalformedOp},
		{"revive with a kind", with(rowOp(crdt.OpRevive, 1), func(o *crdt.Op) { o.Kind = crdt.KindSet }), nil, crdt.Limits{}, crdt.ErrMalformedOp},
		{"even causal length", with(regOp(`1`), func(o *crdt.Op) { o.CL = 2 }), nil, crdt.Limits{}, crdt.ErrMalformedOp},

		// Names and row IDs.
		{"collection with a space", with(regOp(`1`), func(o *crdt.Op) { o.Collection = "Bad Name" }), nil, crdt.Limits{}, crdt.ErrInvalidName},
		{"sqlite_ collection", with(regOp(`1`), func(o *crdt.Op) { o.Collection = "sqlite_x" }), nil, crdt.Limits{}, crdt.ErrInvalidName},
		{"empty collection", with(rowOp(crdt.OpDelete, 2), func(o *crdt.Op) { o.Collection = "" }), nil, crdt.Limits{}, crdt.ErrInvalidName},
		{"field named id", with(regOp(`1`), func(o *crdt.Op) { o.Field = "id" }), nil, crdt.Limits{}, crdt.ErrInvalidName},
		{"sqlite_ field", with(regOp(`1`), func(o *crdt.Op) { o.Field = "sqlite_x" }), nil, crdt.Limits{}, crdt.ErrInvalidName},
		{"field with a quote", with(incOp(), func(o *crdt.Op) { o.Field = `n"; DROP TABLE x; --` }), nil, crdt.Limits{}, crdt.ErrInvalidName},
		{"empty row id", with(regOp(`1`), func(o *crdt.Op) { o.Row = "" }), nil, crdt.Limits{}, crdt.ErrInvalidID},
		{"row id of 257 bytes", with(regOp(`1`), func(o *crdt.Op) { o.Row = strings.Repeat("r", 257) }), nil, crdt.Limits{}, crdt.ErrInvalidID},
		{"row id not UTF-8", with(rowOp(crdt.OpRevive, 1), func(o *crdt.Op) { o.Row = "r\xff" }), nil, crdt.Limits{}, crdt.ErrInvalidID},
		{"row id of 256 bytes", with(regOp(`1`), func(o *crdt.Op) { o.Row = strings.Repeat("r", 256) }), nil, crdt.Limits{}, nil},

		// A declared schema.
		{"declared register", regOp(`1`), todoSchema, crdt.Limits{}, nil},
		{"declared set", memberOp(crdt.OpAdd, `"x"`), todoSchema, crdt.Limits{}, nil},
		{"declared doc", docOp(docBytes(1)), todoSchema, crdt.Limits{}, nil},
		{"declared counter", incOp(), todoSchema, crdt.Limits{}, nil},
		{"delete in a declared collection", rowOp(crdt.OpDelete, 2), todoSchema, crdt.Limits{}, nil},
		{"revive in a collection without fields", with(rowOp(crdt.OpRevive, 1), func(o *crdt.Op) { o.Collection = "lists" }), todoSchema, crdt.Limits{}, nil},
		{"undeclared collection", with(regOp(`1`), func(o *crdt.Op) { o.Collection = "notes" }), todoSchema, crdt.Limits{}, crdt.ErrUndeclared},
		{"delete in an undeclared collection", with(rowOp(crdt.OpDelete, 2), func(o *crdt.Op) { o.Collection = "notes" }), todoSchema, crdt.Limits{}, crdt.ErrUndeclared},
		{"undeclared field", with(regOp(`1`), func(o *crdt.Op) { o.Field = "due" }), todoSchema, crdt.Limits{}, crdt.ErrUndeclared},
		{"field of another collection", with(regOp(`1`), func(o *crdt.Op) { o.Collection = "lists" }), todoSchema, crdt.Limits{}, crdt.ErrUndeclared},
		{"register written as a doc", with(docOp(docBytes(1)), func(o *crdt.Op) { o.Field = "title" }), todoSchema, crdt.Limits{}, crdt.ErrUndeclared},
		{"counter written as a register", with(regOp(`1`), func(o *crdt.Op) { o.Field = "n" }), todoSchema, crdt.Limits{}, crdt.ErrUndeclared},
		{"set written as a counter", with(incOp(), func(o *crdt.Op) { o.Field = "tags" }), todoSchema, crdt.Limits{}, crdt.ErrUndeclared},
		{"undeclared field without a schema", with(regOp(`1`), func(o *crdt.Op) { o.Field = "due" }), nil, crdt.Limits{}, nil},
	}
	sentinels := []error{crdt.ErrMalformedOp, crdt.ErrInvalidName, crdt.ErrInvalidID, crdt.ErrInvalidValue, crdt.ErrUndeclared}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The op under test comes second, after a valid one.
			tx := &crdt.Tx{Site: siteA, Seq: 7, Time: ts(1), Ops: []crdt.Op{rowOp(crdt.OpRevive, 1), tt.op}}
			tx.Ops[0].Collection = tt.op.Collection
			if tt.schema != nil {
				if _, ok := tt.schema.Collection(tt.op.Collection); !ok {
					tx.Ops = tx.Ops[1:] // the revive would fail first
				}
			}
			err := crdt.ValidateTx(tx, tt.schema, tt.limits)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("ValidateTx = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("ValidateTx = %v, want %v", err, tt.want)
			}
			for _, s := range sentinels {
				if s != tt.want && errors.Is(err, s) {
					t.Errorf("ValidateTx = %v, which also matches %v", err, s)
				}
			}
			if msg := err.Error(); !strings.Contains(msg, fmt.Sprintf("tx %s/7", siteA)) || len(msg) > 600 {
				t.Errorf("error %q does not name the tx, or is too long", msg)
			}
		})
	}
}

func TestValidateTx_NamesTheOp(t *testing.T) {
	tx := &crdt.Tx{Site: siteA, Seq: 3, Time: ts(1), Ops: []crdt.Op{
		regOp(`"ok"`),
		with(regOp(`1,"owner":"victim"`), func(o *crdt.Op) { o.Row = strings.Repeat("r", 200); o.Field = "owner" }),
	}}
	err := crdt.ValidateTx(tx, nil, crdt.Limits{})
	if !errors.Is(err, crdt.ErrInvalidValue) {
		t.Fatalf("ValidateTx = %v, want ErrInvalidValue", err)
	}
	msg := err.Error()
	for _, want := range []string{fmt.Sprintf("tx %s/3 op 1", siteA), `"todos"`, `"owner"`, `"` + strings.Repeat("r", 40) + `"`} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not contain %q", msg, want)
		}
	}
	if strings.Contains(msg, strings.Repeat("r", 41)) {
		t.Errorf("error %q quotes the long row ID whole", msg)
	}
}

func TestValidateTx_Malformed(t *testing.T) {
	for name, tx := range map[string]*crdt.Tx{
		"no site":       {Seq: 1, Ops: []crdt.Op{regOp(`1`)}},
		"seq 0":         {Site: siteA, Ops: []crdt.Op{regOp(`1`)}},
		"no field":      {Site: siteA, Seq: 1, Ops: []crdt.Op{with(regOp(`1`), func(o *crdt.Op) { o.Field = "" })}},
		"kind mismatch": {Site: siteA, Seq: 1, Ops: []crdt.Op{with(regOp(`1`), func(o *crdt.Op) { o.Kind = crdt.KindCounter })}},
	} {
		if err := crdt.ValidateTx(tx, nil, crdt.Limits{}); !errors.Is(err, crdt.ErrMalformedOp) {
			t.Errorf("%s: ValidateTx = %v, want ErrMalformedOp", name, err)
		}
	}
}

// Every transaction the Builder makes from valid input passes.
func TestValidateTx_Builder(t *testing.T) {
	for _, enc := range validTxEncodings(t) {
		tx, err := crdt.DecodeTx(enc)
		if err != nil {
			t.Fatal(err)
		}
		if err := crdt.ValidateTx(tx, nil, crdt.Limits{}); err != nil {
			t.Errorf("ValidateTx of a built tx = %v", err)
		}
	}
}

func TestValidateTx_Allocs(t *testing.T) {
	tx := &crdt.Tx{Site: siteA, Seq: 1, Time: ts(1), Ops: []crdt.Op{
		rowOp(crdt.OpRevive, 1), regOp(`{"title":"buy milk","due":1.5e3,"tags":["a","b"],"x":"\u00e9"}`),
		memberOp(crdt.OpAdd, `"x"`), incOp(),
	}} // doc changes are hashed to check them, which allocates
	if n := testing.AllocsPerRun(100, func() {
		if err := crdt.ValidateTx(tx, todoSchema, crdt.Limits{}); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("ValidateTx of a valid tx makes %v allocations, want 0", n)
	}
}

func TestSchema_Validate(t *testing.T) {
	if err := todoSchema.Validate(); err != nil {
		t.Fatalf("Validate = %v", err)
	}
	if err := (*crdt.Schema)(nil).Validate(); err != nil {
		t.Errorf("nil schema: Validate = %v", err)
	}
	tests := []struct {
		name string
		s    crdt.Schema
		also error
	}{
		{"bad collection", crdt.Schema{Collections: []crdt.SchemaCollection{{Name: "Bad Name"}}}, crdt.ErrInvalidName},
		{"field named id", crdt.Schema{Collections: []crdt.SchemaCollection{{Name: "t", Fields: []crdt.SchemaField{{Name: "id"}}}}}, crdt.ErrInvalidName},
		{"duplicate collection", crdt.Schema{Collections: []crdt.SchemaCollection{{Name: "t"}, {Name: "t"}}}, nil},
		{"duplicate field", crdt.Schema{Collections: []crdt.SchemaCollection{{Name: "t", Fields: []crdt.SchemaField{{Name: "a"}, {Name: "a", Kind: crdt.KindSet}}}}}, nil},
		{"unknown kind", crdt.Schema{Collections: []crdt.SchemaCollection{{Name: "t", Fields: []crdt.SchemaField{{Name: "a", Kind: 9}}}}}, nil},
	}
	for _, tt := range tests {
		err := tt.s.Validate()
		if !errors.Is(err, crdt.ErrInvalidSchema) || (tt.also != nil && !errors.Is(err, tt.also)) {
			t.Errorf("%s: Validate = %v, want ErrInvalidSchema (and %v)", tt.name, err, tt.also)
		}
	}
}

func TestSchema_KindOf(t *testing.T) {
	tests := []struct {
		coll, field string
		want        crdt.Kind
		ok          bool
	}{
		{"todos", "title", crdt.KindRegister, true},
		{"todos", "tags", crdt.KindSet, true},
		{"todos", "n", crdt.KindCounter, true},
		{"todos", "body", crdt.KindDoc, true},
		{"todos", "due", 0, false},
		{"lists", "title", 0, false},
		{"notes", "title", 0, false},
	}
	for _, tt := range tests {
		if got, ok := todoSchema.KindOf(tt.coll, tt.field); got != tt.want || ok != tt.ok {
			t.Errorf("KindOf(%s, %s) = %v, %v; want %v, %v", tt.coll, tt.field, got, ok, tt.want, tt.ok)
		}
	}
	if _, ok := (*crdt.Schema)(nil).KindOf("todos", "title"); ok {
		t.Error("a nil schema declares a field")
	}
}

func TestCheckRowSize(t *testing.T) {
	row := func(values ...int) *crdt.Row {
		r := &crdt.Row{}
		for i, n := range values {
			op := regOp(`"` + strings.Repeat("x", n) + `"`)
			op.Field = fmt.Sprintf("f%d", i)
			if _, err := r.Apply(&op, crdt.Dot{Site: siteA, Time: ts(1)}); err != nil {
				t.Fatal(err)
			}
		}
		return r
	}
	small, big := row(10), row(900_000, 900_000, 900_000)
	if err := crdt.CheckRowSize(keyR0, small, crdt.Limits{}); err != nil {
		t.Errorf("CheckRowSize of a small row = %v", err)
	}
	err := crdt.CheckRowSize(keyR0, big, crdt.Limits{})
	if !errors.Is(err, crdt.ErrRowTooLarge) || !strings.Contains(err.Error(), `"todo"/"r0"`) {
		t.Errorf("CheckRowSize of a 2.7 MB row = %v, want ErrRowTooLarge naming the row", err)
	}
	if err := crdt.CheckRowSize(keyR0, big, crdt.Limits{MaxRowBytes: 4 << 20}); err != nil {
		t.Errorf("CheckRowSize under a raised MaxRowBytes = %v", err)
	}
	n := len(crdt.EncodeRow(small))
	if err := crdt.CheckRowSize(keyR0, small, crdt.Limits{MaxRowBytes: n}); err != nil {
		t.Errorf("CheckRowSize at exactly MaxRowBytes = %v", err)
	}
	if err := crdt.CheckRowSize(keyR0, small, crdt.Limits{MaxRowBytes: n - 1}); !errors.Is(err, crdt.ErrRowTooLarge) {
		t.Errorf("CheckRowSize one byte over MaxRowBytes = %v, want ErrRowTooLarge", err)
	}
	for _, tt := range []struct {
		n  int
		ok bool
	}{{2 << 20, true}, {2<<20 + 1, false}} {
		if err := crdt.CheckRowBytes(keyR0, tt.n, crdt.Limits{}); (err == nil) != tt.ok || (err != nil && !errors.Is(err, crdt.ErrRowTooLarge)) {
			t.Errorf("CheckRowBytes(%d) = %v, want ok %v", tt.n, err, tt.ok)
		}
	}
}

// FuzzValidateTx: whatever a peer sends, validation never panics, fails
// only with the validation sentinels, and what it accepts applies and
// reads back as JSON.
func FuzzValidateTx(f *testing.F) {
	for _, enc := range validTxEncodings(f) {
		f.Add(enc)
	}
	for _, op := range []crdt.Op{
		regOp(`1,"owner":"victim"`), regOp(`{"a":1}{}`), regOp(`"\ud800"`), regOp(`"a\u0000"`), regOp(nested("[", "]", 65)),
		regOp(`1e-400`), regOp(`"ok"`), memberOp(crdt.OpAdd, `{}`), memberOp(crdt.OpRemove, `"x"`), docOp([]byte{0xff}),
		with(regOp(`1`), func(o *crdt.Op) { o.Collection = "Bad Name" }), with(regOp(`1`), func(o *crdt.Op) { o.Field = "id" }),
		with(regOp(`1`), func(o *crdt.Op) { o.Row = "" }), with(regOp(`1`), func(o *crdt.Op) { o.Field = "due" }),
		with(incOp(), func(o *crdt.Op) { o.Value = []byte("1") }),
	} {
		f.Add(crdt.EncodeTx(&crdt.Tx{Site: siteA, Seq: 1, Time: ts(1), Ops: []crdt.Op{op}}))
	}
	sentinels := []error{crdt.ErrMalformedOp, crdt.ErrInvalidName, crdt.ErrInvalidID, crdt.ErrInvalidValue, crdt.ErrUndeclared}
	f.Fuzz(func(t *testing.T, b []byte) {
		tx, err := crdt.DecodeTx(b)
		if err != nil {
			return
		}
		for _, s := range []*crdt.Schema{nil, todoSchema} {
			for _, l := range []crdt.Limits{{}, {MaxValueBytes: 16, MaxDepth: 2}} {
				err := crdt.ValidateTx(tx, s, l)
				if err != nil {
					known := false
					for _, e := range sentinels {
						known = known || errors.Is(err, e)
					}
					if !known {
						t.Fatalf("ValidateTx = %v, which wraps no validation error", err)
					}
					continue
				}
				var st crdt.State
				if _, err := st.Apply(tx); err != nil {
					t.Fatalf("Apply of a valid tx: %v", err)
				}
				for _, op := range tx.Ops {
					if op.Kind == crdt.KindRegister || op.Kind == crdt.KindSet {
						var v any
						if err := json.Unmarshal(op.Value, &v); err != nil {
							t.Fatalf("valid value %q does not decode: %v", op.Value, err)
						}
						if _, err := json.Marshal(v); err != nil {
							t.Fatalf("valid value %q does not encode again: %v", op.Value, err)
						}
					}
					if op.Kind == crdt.KindSet && (bytes.HasPrefix(bytes.TrimSpace(op.Value), []byte("{")) || bytes.HasPrefix(bytes.TrimSpace(op.Value), []byte("["))) {
						t.Fatalf("valid set member %q is not a scalar", op.Value)
					}
				}
			}
		}
	})
}

// BenchmarkValidateTx measures the rules on a typical local write: a
// revive and three register fields, as one Put of a small document makes.
func BenchmarkValidateTx(b *testing.B) {
	tx := &crdt.Tx{Site: siteA, Seq: 1, Time: ts(1), Ops: []crdt.Op{
		rowOp(crdt.OpRevive, 1),
		with(regOp(`"buy milk and eggs"`), func(o *crdt.Op) { o.Field = "title" }),
		with(regOp(`false`), func(o *crdt.Op) { o.Field = "done" }),
		with(regOp(`{"list":"groceries","rank":3.5,"tags":["a","b"]}`), func(o *crdt.Op) { o.Field = "meta" }),
	}}
	b.ReportAllocs()
	for b.Loop() {
		if err := crdt.ValidateTx(tx, nil, crdt.Limits{}); err != nil {
			b.Fatal(err)
		}
	}
}
