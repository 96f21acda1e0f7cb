package sync_test

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/unosync/uno/crdt"
	usync "github.com/unosync/uno/sync"
)

// allCodes lists every Code constant. A code added to code.go without a
// line here is not caught by the compiler: keep the two in step.
var allCodes = []usync.Code{
	usync.CodeBadMessage,
	usync.CodeUnknownType,
	usync.CodeUnsupportedVersion,
	usync.CodeTooLarge,
	usync.CodeBadCompression,
	usync.CodeUnexpected,
	usync.CodeUnauthorized,
	usync.CodeTokenExpired,
	usync.CodeForbidden,
	usync.CodeGap,
	usync.CodeMalformedTx,
	usync.CodeClockDrift,
	usync.CodeInvalidTx,
	usync.CodeWrongSite,
	usync.CodeQuotaExceeded,
	usync.CodeRowTooLarge,
	usync.CodeResync,
	usync.CodeSlowConsumer,
	usync.CodeRateLimited,
	usync.CodeForked,
	usync.CodeUnavailable,
	usync.CodeInternal,
	usync.CodeShuttingDown,
}

// sentinels pairs every code with its Err variable.
var sentinels = []struct {
	code usync.Code
	err  *usync.Error
}{
	{usync.CodeBadMessage, usync.ErrBadMessage},
	{usync.CodeUnknownType, usync.ErrUnknownType},
	{usync.CodeUnsupportedVersion, usync.ErrUnsupportedVersion},
	{usync.CodeTooLarge, usync.ErrTooLarge},
	{usync.CodeBadCompression, usync.ErrBadCompression},
	{usync.CodeUnexpected, usync.ErrUnexpected},
	{usync.CodeUnauthorized, usync.ErrUnauthorized},
	{usync.CodeTokenExpired, usync.ErrTokenExpired},
	{usync.CodeForbidden, usync.ErrForbidden},
	{usync.CodeGap, usync.ErrGap},
	{usync.CodeMalformedTx, usync.ErrMalformedTx},
	{usync.CodeClockDrift, usync.ErrClockDrift},
	{usync.CodeInvalidTx, usync.ErrInvalidTx},
	{usync.CodeWrongSite, usync.ErrWrongSite},
	{usync.CodeQuotaExceeded, usync.ErrQuotaExceeded},
	{usync.CodeRowTooLarge, usync.ErrRowTooLarge},
	{usync.CodeResync, usync.ErrResync},
	{usync.CodeSlowConsumer, usync.ErrSlowConsumer},
	{usync.CodeRateLimited, usync.ErrRateLimited},
	{usync.CodeForked, usync.ErrForked},
	{usync.CodeUnavailable, usync.ErrUnavailable},
	{usync.CodeInternal, usync.ErrInternal},
	{usync.CodeShuttingDown, usync.ErrShuttingDown},
}

// allTypes lists every message type, in value order.
var allTypes = []usync.Type{
	usync.TypeHello, usync.TypeWelcome, usync.TypePush, usync.TypeAck,
	usync.TypeChanges, usync.TypeSnapshot, usync.TypeReject, usync.TypeError,
	usync.TypePing, usync.TypePong, usync.TypeCredit, usync.TypeAuth, usync.TypeAuthOK,
	usync.TypeCheck, usync.TypeRuns,
}

func TestCode_String(t *testing.T) {
	names := map[string]usync.Code{}
	for _, c := range allCodes {
		name := c.String()
		if name == "" || strings.HasPrefix(name, "code ") {
			t.Errorf("Code %d has no name: String() = %q", uint16(c), name)
		}
		if other, ok := names[name]; ok {
			t.Errorf("codes %d and %d share the name %q", uint16(other), uint16(c), name)
		}
		names[name] = c
	}
	for _, c := range []usync.Code{0, 999, 1006, 65535} {
		if got, want := c.String(), fmt.Sprintf("code %d", uint16(c)); got != want {
			t.Errorf("Code(%d).String() = %q, want %q", uint16(c), got, want)
		}
	}
}

func TestCode_Unique(t *testing.T) {
	seen := map[usync.Code]int{}
	for i, c := range allCodes {
		if j, ok := seen[c]; ok {
			t.Errorf("allCodes[%d] and allCodes[%d] are both %d", j, i, uint16(c))
		}
		seen[c] = i
	}
	if len(sentinels) != len(allCodes) {
		t.Errorf("%d sentinels for %d codes", len(sentinels), len(allCodes))
	}
	for i, s := range sentinels {
		if s.err.Code != s.code {
			t.Errorf("sentinel for %d (%v) has code %d", uint16(s.code), s.code, uint16(s.err.Code))
		}
		for j, o := range sentinels {
			if i != j && errors.Is(s.err, o.err) {
				t.Errorf("errors.Is(%v, %v) = true for different codes", s.err, o.err)
			}
		}
	}
}

func TestCode_Retryable(t *testing.T) {
	want := map[usync.Code]bool{
		usync.CodeSlowConsumer: true,
		usync.CodeRateLimited:  true,
		usync.CodeUnavailable:  true,
		usync.CodeInternal:     true,
		usync.CodeResync:       true,
		usync.CodeShuttingDown: true,
		usync.CodeForked:       true,
	}
	for _, c := range allCodes {
		if got := c.Retryable(); got != want[c] {
			t.Errorf("%v (%d).Retryable() = %v, want %v", c, uint16(c), got, want[c])
		}
	}
	if usync.Code(999).Retryable() {
		t.Error("an unknown code is retryable")
	}
}

func TestError_Is(t *testing.T) {
	gap := usync.Errorf(usync.CodeGap, "a")
	if !errors.Is(gap, usync.ErrGap) {
		t.Errorf("errors.Is(%v, ErrGap) = false", gap)
	}
	if errors.Is(gap, usync.ErrClockDrift) {
		t.Errorf("errors.Is(%v, ErrClockDrift) = true", gap)
	}
	if other := usync.Errorf(usync.CodeGap, "b %d", 2); !errors.Is(gap, other) || !errors.Is(other, gap) {
		t.Errorf("errors.Is does not match %v and %v, two errors with the same code", gap, other)
	}
	wrapped := fmt.Errorf("push: %w", gap)
	if !errors.Is(wrapped, usync.ErrGap) {
		t.Errorf("errors.Is(%v, ErrGap) = false through a wrap", wrapped)
	}
	if errors.Is(wrapped, usync.ErrMalformedTx) {
		t.Errorf("errors.Is(%v, ErrMalformedTx) = true", wrapped)
	}
	if errors.Is(io.EOF, usync.ErrInternal) || errors.Is(usync.ErrInternal, io.EOF) {
		t.Error("a plain error matches ErrInternal")
	}
	for _, s := range sentinels {
		if e := usync.Errorf(s.code, "some %s", "text"); !errors.Is(e, s.err) {
			t.Errorf("errors.Is(Errorf(%d), its sentinel) = false", uint16(s.code))
		}
	}
}

func TestCodeOf(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want usync.Code
	}{
		{"error", usync.Errorf(usync.CodeForbidden, "no"), usync.CodeForbidden},
		{"sentinel", usync.ErrTokenExpired, usync.CodeTokenExpired},
		{"wrapped", fmt.Errorf("x: %w", usync.Errorf(usync.CodeGap, "seq 9 after 7")), usync.CodeGap},
		{"wrapped twice", fmt.Errorf("y: %w", fmt.Errorf("x: %w", usync.ErrWrongSite)), usync.CodeWrongSite},
		{"joined", errors.Join(io.EOF, usync.ErrRateLimited), usync.CodeRateLimited},
		{"plain", io.EOF, usync.CodeInternal},
		{"plain wrapped", fmt.Errorf("x: %w", io.EOF), usync.CodeInternal},
		{"nil", nil, usync.CodeInternal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := usync.CodeOf(tt.err); got != tt.want {
				t.Errorf("CodeOf(%v) = %v (%d), want %v (%d)", tt.err, got, uint16(got), tt.want, uint16(tt.want))
			}
		})
	}
}

// TestCode_Values pins the wire values of codes added after the first
// table: they are part of the protocol.
func TestCode_Values(t *testing.T) {
	if usync.CodeRowTooLarge != 1206 {
		t.Errorf("CodeRowTooLarge = %d, want 1206", uint16(usync.CodeRowTooLarge))
	}
	if got := usync.CodeRowTooLarge.String(); got != "row too large" {
		t.Errorf("CodeRowTooLarge.String() = %q", got)
	}
}

func TestTxCode(t *testing.T) {
	site := crdt.SiteID{1}
	op := crdt.Op{Type: crdt.OpSet, Kind: crdt.KindRegister, Collection: "todos", Row: "r1", Field: "title", CL: 1, Value: []byte(`"x"`)}
	validate := func(f func(op *crdt.Op), s *crdt.Schema) error {
		o := op
		f(&o)
		return crdt.ValidateTx(&crdt.Tx{Site: site, Seq: 1, Ops: []crdt.Op{o}}, s, crdt.Limits{})
	}
	schema := &crdt.Schema{Collections: []crdt.SchemaCollection{{Name: "todos"}}}
	tests := []struct {
		name string
		err  error
		want usync.Code
	}{
		{"bad name", validate(func(o *crdt.Op) { o.Collection = "Bad Name" }, nil), usync.CodeMalformedTx},
		{"bad row id", validate(func(o *crdt.Op) { o.Row = "" }, nil), usync.CodeMalformedTx},
		{"bad value", validate(func(o *crdt.Op) { o.Value = []byte(`1,"owner":"victim"`) }, nil), usync.CodeMalformedTx},
		{"malformed op", validate(func(o *crdt.Op) { o.CL = 2 }, nil), usync.CodeMalformedTx},
		{"undeclared", validate(func(o *crdt.Op) {}, schema), usync.CodeInvalidTx},
		{"row too large", crdt.CheckRowBytes(crdt.RowKey{Collection: "todos", Row: "r1"}, 3<<20, crdt.Limits{}), usync.CodeRowTooLarge},
		{"wrapped", fmt.Errorf("push: %w", crdt.ErrRowTooLarge), usync.CodeRowTooLarge},
		{"other", io.EOF, usync.CodeInternal},
		{"nil", nil, usync.CodeInternal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.err == nil && tt.name != "nil" {
				t.Fatal("the case's error is nil")
			}
			if got := usync.TxCode(tt.err); got != tt.want {
				t.Errorf("TxCode(%v) = %v (%d), want %v (%d)", tt.err, got, uint16(got), tt.want, uint16(tt.want))
			}
		})
	}
}

func TestError_Error(t *testing.T) {
	tests := []struct {
		err  *usync.Error
		want string
	}{
		{usync.ErrGap, "sync: gap in sequence (1200)"},
		{usync.Errorf(usync.CodeTooLarge, "frame of %d bytes", 9), "sync: too large (1003): frame of 9 bytes"},
		{&usync.Error{Code: 4242, Message: "from the future"}, "sync: code 4242 (4242): from the future"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
}

func TestErrorMessage_Err(t *testing.T) {
	m := &usync.ErrorMessage{Code: usync.CodeUnsupportedVersion, Message: "want 2"}
	err := m.Err()
	if !errors.Is(err, usync.ErrUnsupportedVersion) || err.Message != "want 2" {
		t.Errorf("Err() = %#v, want code %d with message %q", err, uint16(m.Code), m.Message)
	}
}

func TestType_String(t *testing.T) {
	want := []string{"Hello", "Welcome", "Push", "Ack", "Changes", "Snapshot", "Reject", "Error", "Ping", "Pong", "Credit", "Auth", "AuthOK", "Check", "Runs"}
	for i, typ := range allTypes {
		if got := typ.String(); got != want[i] {
			t.Errorf("Type(%d).String() = %q, want %q", uint8(typ), got, want[i])
		}
	}
	for _, typ := range []usync.Type{0, 16, 99, 255} {
		if got, want := typ.String(), fmt.Sprintf("Type(%d)", uint8(typ)); got != want {
			t.Errorf("Type(%d).String() = %q, want %q", uint8(typ), got, want)
		}
	}
}

// TestType_Values pins the wire values: they are part of the protocol.
func TestType_Values(t *testing.T) {
	for i, typ := range allTypes {
		if int(typ) != i+1 {
			t.Errorf("%v = %d, want %d", typ, uint8(typ), i+1)
		}
	}
	for i, m := range sampleMessages() {
		if m.Type() != allTypes[i] {
			t.Errorf("sampleMessages()[%d] is a %v, want a %v", i, m.Type(), allTypes[i])
		}
	}
}
