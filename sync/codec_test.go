package sync_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/klauspost/compress/zstd"
	"pgregory.net/rapid"

	"github.com/unosync/uno/crdt"
	"github.com/unosync/uno/crdt/crdttest"
	usync "github.com/unosync/uno/sync"
)

// flagZstd is the frame flag bit for a zstd-compressed payload.
const flagZstd = 1

// msgOpts compares decoded messages: nil and empty slices are equal (CBOR
// null and [] both decode to "nothing"), and the blank `_ struct{}` fields
// that carry the toarray tags are ignored (they are unexported, and go-cmp
// refuses unexported fields it is not told about).
var msgOpts = cmp.Options{
	cmpopts.EquateEmpty(),
	cmp.FilterPath(func(p cmp.Path) bool {
		sf, ok := p.Last().(cmp.StructField)
		return ok && sf.Name() == "_"
	}, cmp.Ignore()),
}

// fataler is what the helpers need from *testing.T and *rapid.T.
type fataler interface {
	Helper()
	Fatalf(format string, args ...any)
}

func newCodec(tb testing.TB, cfg usync.CodecConfig) *usync.Codec {
	tb.Helper()
	c, err := usync.NewCodec(cfg)
	if err != nil {
		tb.Fatalf("NewCodec(%+v): %v", cfg, err)
	}
	tb.Cleanup(c.Close)
	return c
}

func mustEncode(tb fataler, c *usync.Codec, m usync.Message) []byte {
	tb.Helper()
	frame, err := c.Encode(m)
	if err != nil {
		tb.Fatalf("Encode(%T): %v", m, err)
	}
	if len(frame) == 0 {
		tb.Fatalf("Encode(%T) returned an empty frame", m)
	}
	return frame
}

// assertDecodes decodes frame with c and checks that it gives want.
func assertDecodes(tb fataler, c *usync.Codec, frame []byte, want usync.Message) {
	tb.Helper()
	got, err := c.Decode(frame)
	if err != nil {
		tb.Fatalf("Decode(Encode(%T)): %v", want, err)
	}
	if diff := cmp.Diff(want, got, msgOpts); diff != "" {
		tb.Fatalf("Decode(Encode(m)) differs from m (-want +got):\n%s", diff)
	}
	// A decoded message shares no memory with its frame: the server
	// reads the next frame into the same memory.
	used := bytes.Repeat([]byte{0xff}, len(frame))
	copy(used, frame)
	again, err := c.Decode(used)
	if err != nil {
		tb.Fatalf("Decode of a copy: %v", err)
	}
	for i := range used {
		used[i] = 0xa5
	}
	if diff := cmp.Diff(want, again, msgOpts); diff != "" {
		tb.Fatalf("a decoded message changed with its frame's memory (-want +got):\n%s", diff)
	}
}

// rawFrame returns a frame with the given flags byte and v as its CBOR
// payload, built without the codec so that tests can send what a correct
// peer never would.
func rawFrame(tb testing.TB, flags byte, v any) []byte {
	tb.Helper()
	b, err := cbor.Marshal(v)
	if err != nil {
		tb.Fatalf("cbor.Marshal(%#v): %v", v, err)
	}
	return append([]byte{flags}, b...)
}

// assertCode checks that err matches want with errors.Is and is an
// *usync.Error carrying want's code.
func assertCode(tb testing.TB, err error, want *usync.Error) {
	tb.Helper()
	if err == nil {
		tb.Fatalf("err = nil, want %v", want)
	}
	if !errors.Is(err, want) {
		tb.Errorf("err = %v, want errors.Is(err, %v)", err, want)
	}
	e, ok := err.(*usync.Error)
	if !ok {
		tb.Fatalf("err is a %T (%v), want a *usync.Error", err, err)
	}
	if e.Code != want.Code {
		tb.Errorf("err.Code = %d (%v), want %d (%v)", e.Code, e.Code, want.Code, want.Code)
	}
}

// Generators of valid values. Transactions pass crdt's Tx.Validate, and
// Changes hold strictly increasing sequence numbers in (From, To], so that
// every generated message is one the codec must accept.

func genString(maxRunes int) *rapid.Generator[string] { return rapid.StringN(0, maxRunes, -1) }

func genName() *rapid.Generator[string] { return rapid.StringN(1, 8, -1) }

func genBytes(maxLen int) *rapid.Generator[[]byte] { return rapid.SliceOfN(rapid.Byte(), 0, maxLen) }

// genJSON returns small JSON values, the kind ops and filters carry.
func genJSON() *rapid.Generator[[]byte] {
	return rapid.OneOf(
		rapid.Map(rapid.Int64(), func(n int64) []byte { return strconv.AppendInt(nil, n, 10) }),
		rapid.Map(rapid.StringMatching(`[a-z]{0,12}`), func(s string) []byte { return []byte(`"` + s + `"`) }),
		rapid.Just([]byte("null")),
		rapid.Just([]byte("true")),
	)
}

func genSite() *rapid.Generator[crdt.SiteID] {
	return rapid.Custom(func(t *rapid.T) crdt.SiteID {
		var s crdt.SiteID
		copy(s[:], rapid.SliceOfN(rapid.Byte(), len(s), len(s)).Draw(t, "site"))
		if s.IsZero() {
			s[len(s)-1] = 1
		}
		return s
	})
}

func genTime() *rapid.Generator[crdt.Timestamp] {
	return rapid.Map(rapid.Uint64(), func(n uint64) crdt.Timestamp { return crdt.Timestamp(n) })
}

func genDot() *rapid.Generator[crdt.Dot] {
	return rapid.Custom(func(t *rapid.T) crdt.Dot {
		return crdt.Dot{Site: genSite().Draw(t, "site"), Time: genTime().Draw(t, "time")}
	})
}

// genContext returns a causal context: sorted by site, one dot per site.
func genContext() *rapid.Generator[crdt.Context] {
	return rapid.Custom(func(t *rapid.T) crdt.Context {
		dots := rapid.SliceOfNDistinct(genDot(), 0, 3, func(d crdt.Dot) crdt.SiteID { return d.Site }).Draw(t, "dots")
		slices.SortFunc(dots, func(a, b crdt.Dot) int { return a.Site.Compare(b.Site) })
		return crdt.Context(dots)
	})
}

// genOp returns ops of every type with valid shapes: field ops on the
// right kind with a field name and an odd causal length, deletes with an
// even one, revives with an odd one.
func genOp() *rapid.Generator[crdt.Op] {
	types := []crdt.OpType{crdt.OpSet, crdt.OpIncrement, crdt.OpAdd, crdt.OpRemove, crdt.OpDelete, crdt.OpRevive, crdt.OpChange}
	return rapid.Custom(func(t *rapid.T) crdt.Op {
		op := crdt.Op{
			Type:       rapid.SampledFrom(types).Draw(t, "type"),
			Collection: genName().Draw(t, "collection"),
			Row:        genName().Draw(t, "row"),
		}
		life := rapid.Uint64Max(1<<40).Draw(t, "life")
		odd := 2*life + 1
		switch op.Type {
		case crdt.OpDelete:
			op.CL = 2*life + 2
			return op
		case crdt.OpRevive:
			op.CL = odd
			return op
		}
		op.Field = genName().Draw(t, "field")
		op.CL = odd
		switch op.Type {
		case crdt.OpSet:
			op.Kind = crdt.KindRegister
			op.Value = genJSON().Draw(t, "value")
			op.Context = genContext().Draw(t, "context")
		case crdt.OpChange:
			op.Kind = crdt.KindDoc // genTx fills in changes by the transaction's site
		case crdt.OpIncrement:
			op.Kind = crdt.KindCounter
			op.P = rapid.Uint64().Draw(t, "p")
			op.N = rapid.Uint64().Draw(t, "n")
		case crdt.OpAdd:
			op.Kind = crdt.KindSet
			op.Value = genJSON().Draw(t, "member")
		case crdt.OpRemove:
			op.Kind = crdt.KindSet
			op.Value = genJSON().Draw(t, "member")
			op.Tags = rapid.SliceOfN(genDot(), 0, 3).Draw(t, "tags")
		}
		return op
	})
}

func genTx() *rapid.Generator[crdt.Tx] {
	return rapid.Custom(func(t *rapid.T) crdt.Tx {
		tx := crdt.Tx{
			Site: genSite().Draw(t, "site"),
			Seq:  rapid.Uint64Min(1).Draw(t, "seq"),
			Time: genTime().Draw(t, "time"),
			Ops:  rapid.SliceOfN(genOp(), 0, 4).Draw(t, "ops"),
		}
		for i := range tx.Ops {
			if op := &tx.Ops[i]; op.Type == crdt.OpChange {
				op.Value, _ = crdttest.EmptyChange(tx.Site, uint64(i+1))
			}
		}
		if err := tx.Validate(); err != nil {
			t.Fatalf("generator made an invalid tx: %v", err)
		}
		return tx
	})
}

func genHello() *rapid.Generator[usync.Message] {
	filter := rapid.Custom(func(t *rapid.T) usync.Filter {
		return usync.Filter{Field: genName().Draw(t, "field"), Value: genJSON().Draw(t, "value")}
	})
	sub := rapid.Custom(func(t *rapid.T) usync.Subscription {
		return usync.Subscription{
			Collection: genName().Draw(t, "collection"),
			Where:      rapid.SliceOfN(filter, 0, 3).Draw(t, "where"),
		}
	})
	return rapid.Custom(func(t *rapid.T) usync.Message {
		return &usync.Hello{
			Versions:      rapid.SliceOfN(rapid.Uint16(), 0, 4).Draw(t, "versions"),
			Site:          genSite().Draw(t, "site"),
			Token:         genString(64).Draw(t, "token"),
			SchemaVersion: rapid.Int().Draw(t, "schema"),
			Cursor:        rapid.Uint64().Draw(t, "cursor"),
			Subscriptions: rapid.SliceOfN(sub, 0, 3).Draw(t, "subscriptions"),
			Credits:       rapid.Uint32().Draw(t, "credits"),
		}
	})
}

func genWelcome() *rapid.Generator[usync.Message] {
	return rapid.Custom(func(t *rapid.T) usync.Message {
		return &usync.Welcome{
			Version:    rapid.Uint16().Draw(t, "version"),
			ServerTime: genTime().Draw(t, "time"),
			HighWater:  rapid.Uint64().Draw(t, "highWater"),
			Head:       rapid.Uint64().Draw(t, "head"),
			Limits: usync.Limits{
				MaxMessageBytes: rapid.Uint32().Draw(t, "maxMessageBytes"),
				MaxPushTxs:      rapid.Uint32().Draw(t, "maxPushTxs"),
				MaxInFlight:     rapid.Uint32().Draw(t, "maxInFlight"),
			},
			Expires: rapid.Int64().Draw(t, "expires"),
		}
	})
}

func genPush() *rapid.Generator[usync.Message] {
	return rapid.Custom(func(t *rapid.T) usync.Message {
		return &usync.Push{
			Txs:   rapid.SliceOfN(genTx(), 0, 4).Draw(t, "txs"),
			Trace: rapid.SampledFrom([]string{"", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}).Draw(t, "trace"),
			Epoch: rapid.SampledFrom([]uint64{0, 1, 1<<63 | 5}).Draw(t, "epoch"),
		}
	})
}

func genAck() *rapid.Generator[usync.Message] {
	return rapid.Custom(func(t *rapid.T) usync.Message {
		return &usync.Ack{
			HighWater: rapid.Uint64().Draw(t, "highWater"),
			Seqs:      rapid.SliceOfN(rapid.Uint64(), 0, 8).Draw(t, "seqs"),
		}
	})
}

// genChanges returns batches with strictly increasing sequence numbers in
// (From, To]; To may exceed the last change (filtered-out entries).
func genChanges() *rapid.Generator[usync.Message] {
	return rapid.Custom(func(t *rapid.T) usync.Message {
		m := &usync.Changes{From: rapid.Uint64Max(1<<62).Draw(t, "from")}
		n := rapid.IntRange(0, 4).Draw(t, "n")
		seq := m.From
		for range n {
			seq += 1 + rapid.Uint64Max(1000).Draw(t, "gap")
			m.Changes = append(m.Changes, usync.Change{Seq: seq, Tx: genTx().Draw(t, "tx")})
		}
		m.To = seq + rapid.Uint64Max(1000).Draw(t, "tail")
		return m
	})
}

func genSnapshot() *rapid.Generator[usync.Message] {
	row := rapid.Custom(func(t *rapid.T) usync.SnapshotRow {
		return usync.SnapshotRow{
			Collection: genName().Draw(t, "collection"),
			Row:        genName().Draw(t, "row"),
			State:      genBytes(64).Draw(t, "state"),
		}
	})
	return rapid.Custom(func(t *rapid.T) usync.Message {
		return &usync.Snapshot{
			Seq:        rapid.Uint64().Draw(t, "seq"),
			After:      crdt.RowKey{Collection: genString(8).Draw(t, "afterCollection"), Row: genString(8).Draw(t, "afterRow")},
			Rows:       rapid.SliceOfN(row, 0, 4).Draw(t, "rows"),
			Last:       rapid.Bool().Draw(t, "last"),
			TotalRows:  rapid.Uint64().Draw(t, "totalRows"),
			TotalBytes: rapid.Uint64().Draw(t, "totalBytes"),
		}
	})
}

// genCode returns table codes and, now and then, codes from a newer peer.
func genCode() *rapid.Generator[usync.Code] {
	return rapid.OneOf(
		rapid.SampledFrom(allCodes),
		rapid.Map(rapid.Uint16(), func(n uint16) usync.Code { return usync.Code(n) }),
	)
}

func genReject() *rapid.Generator[usync.Message] {
	return rapid.Custom(func(t *rapid.T) usync.Message {
		return &usync.Reject{
			Site:   genSite().Draw(t, "site"),
			Seq:    rapid.Uint64Min(1).Draw(t, "seq"),
			Code:   genCode().Draw(t, "code"),
			Reason: genString(64).Draw(t, "reason"),
		}
	})
}

func genErrorMessage() *rapid.Generator[usync.Message] {
	return rapid.Custom(func(t *rapid.T) usync.Message {
		return &usync.ErrorMessage{Code: genCode().Draw(t, "code"), Message: genString(64).Draw(t, "message")}
	})
}

func genPing() *rapid.Generator[usync.Message] {
	return rapid.Custom(func(t *rapid.T) usync.Message { return &usync.Ping{Nonce: rapid.Uint64().Draw(t, "nonce")} })
}

func genPong() *rapid.Generator[usync.Message] {
	return rapid.Custom(func(t *rapid.T) usync.Message {
		return &usync.Pong{Nonce: rapid.Uint64().Draw(t, "nonce"), Head: rapid.Uint64().Draw(t, "head")}
	})
}

func genCredit() *rapid.Generator[usync.Message] {
	return rapid.Custom(func(t *rapid.T) usync.Message { return &usync.Credit{N: rapid.Uint32().Draw(t, "n")} })
}

func genAuth() *rapid.Generator[usync.Message] {
	return rapid.Custom(func(t *rapid.T) usync.Message { return &usync.Auth{Token: genString(64).Draw(t, "token")} })
}

func genCheck() *rapid.Generator[usync.Message] {
	return rapid.Custom(func(t *rapid.T) usync.Message { return &usync.Check{From: rapid.Uint64().Draw(t, "from")} })
}

func genRuns() *rapid.Generator[usync.Message] {
	run := rapid.Custom(func(t *rapid.T) usync.Run {
		return usync.Run{First: rapid.Uint64().Draw(t, "first"), Epoch: rapid.Uint64().Draw(t, "epoch")}
	})
	return rapid.Custom(func(t *rapid.T) usync.Message {
		return &usync.Runs{Runs: rapid.SliceOfN(run, 0, 4).Draw(t, "runs"), Through: rapid.Uint64().Draw(t, "through")}
	})
}

func genAuthOK() *rapid.Generator[usync.Message] {
	return rapid.Custom(func(t *rapid.T) usync.Message { return &usync.AuthOK{Expires: rapid.Int64().Draw(t, "expires")} })
}

// messageGens has one generator per message type; TestMessageGens checks
// that it covers them all.
var messageGens = []struct {
	typ usync.Type
	gen func() *rapid.Generator[usync.Message]
}{
	{usync.TypeHello, genHello},
	{usync.TypeWelcome, genWelcome},
	{usync.TypePush, genPush},
	{usync.TypeAck, genAck},
	{usync.TypeChanges, genChanges},
	{usync.TypeSnapshot, genSnapshot},
	{usync.TypeReject, genReject},
	{usync.TypeError, genErrorMessage},
	{usync.TypePing, genPing},
	{usync.TypePong, genPong},
	{usync.TypeCredit, genCredit},
	{usync.TypeAuth, genAuth},
	{usync.TypeAuthOK, genAuthOK},
	{usync.TypeCheck, genCheck},
	{usync.TypeRuns, genRuns},
}

func TestMessageGens(t *testing.T) {
	var got []usync.Type
	for _, g := range messageGens {
		got = append(got, g.typ)
	}
	if diff := cmp.Diff(allTypes, got); diff != "" {
		t.Errorf("messageGens does not cover every message type (-want +got):\n%s", diff)
	}
}

// testCompressAbove is the threshold of the compressing codec in the
// round-trip property: low, so that most random messages cross it.
const testCompressAbove = 32

// TestCodec_RoundTrip checks that every message type with random contents
// decodes to what was encoded, both as a plain frame and, above the
// threshold, as a zstd-compressed one.
func TestCodec_RoundTrip(t *testing.T) {
	plain := newCodec(t, usync.CodecConfig{CompressAbove: -1})
	zipped := newCodec(t, usync.CodecConfig{CompressAbove: testCompressAbove})
	// A compressed frame whose payload differs from any generated one at
	// every byte it can (a long token of one character).
	filler := mustEncode(t, zipped, &usync.Auth{Token: strings.Repeat("\u00a5", 4096)})
	if filler[0]&flagZstd == 0 {
		t.Fatal("the filler frame is not compressed")
	}
	for _, g := range messageGens {
		t.Run(g.typ.String(), func(t *testing.T) {
			gen := g.gen()
			rapid.Check(t, func(t *rapid.T) {
				m := gen.Draw(t, "m")
				if m.Type() != g.typ {
					t.Fatalf("generator for %v made a %v", g.typ, m.Type())
				}

				frame := mustEncode(t, plain, m)
				if frame[0] != 0 {
					t.Fatalf("plain frame flags = %#x, want 0", frame[0])
				}
				assertDecodes(t, plain, frame, m)
				assertDecodes(t, zipped, frame, m) // any codec reads plain frames

				payload := len(frame) - 1
				zframe := mustEncode(t, zipped, m)
				compressed := zframe[0]&flagZstd != 0
				if compressed != (payload > testCompressAbove) {
					t.Fatalf("payload of %d bytes: compressed = %v, want %v (threshold %d)", payload, compressed, !compressed, testCompressAbove)
				}
				if !compressed {
					if !bytes.Equal(zframe, frame) {
						t.Fatalf("uncompressed frames differ between codecs:\n%x\n%x", frame, zframe)
					}
					return
				}
				var h zstd.Header
				if err := h.Decode(zframe[1:]); err != nil {
					t.Fatalf("compressed frame without a zstd header: %v", err)
				}
				// The encoder leaves the content size out of frames under 256
				// bytes; when it is there, it must be right.
				if h.HasFCS && h.FrameContentSize != uint64(payload) {
					t.Fatalf("zstd header content size = %d, want %d", h.FrameContentSize, payload)
				}
				assertDecodes(t, zipped, zframe, m)
				assertDecodes(t, plain, zframe, m) // any codec reads compressed frames
				// Nor does it share memory with its decompressed payload,
				// which the next compressed frame is decompressed into.
				got, err := zipped.Decode(zframe)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := zipped.Decode(filler); err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(m, got, msgOpts); diff != "" {
					t.Fatalf("a decoded message changed with the next compressed frame (-want +got):\n%s", diff)
				}
			})
		})
	}
}

// sampleMessages returns one fixed message of each type, in type order.
func sampleMessages() []usync.Message {
	site := crdt.SiteID{0: 0xab, 15: 0x01}
	tx := crdt.Tx{Site: site, Seq: 7, Time: crdt.MakeTimestamp(1_700_000_000_000, 3), Ops: []crdt.Op{
		{Type: crdt.OpSet, Kind: crdt.KindRegister, Collection: "todos", Row: "r1", Field: "title", CL: 1,
			Value: []byte(`"buy milk"`), Context: crdt.Context{{Site: site, Time: 5}}},
		{Type: crdt.OpIncrement, Kind: crdt.KindCounter, Collection: "todos", Row: "r1", Field: "votes", CL: 1, P: 3, N: 1},
		{Type: crdt.OpAdd, Kind: crdt.KindSet, Collection: "todos", Row: "r1", Field: "tags", CL: 1, Value: []byte(`"home"`)},
		{Type: crdt.OpRemove, Kind: crdt.KindSet, Collection: "todos", Row: "r1", Field: "tags", CL: 1, Value: []byte(`"work"`),
			Tags: []crdt.Dot{{Site: site, Time: 4}}},
		{Type: crdt.OpDelete, Collection: "todos", Row: "r2", CL: 2},
		{Type: crdt.OpRevive, Collection: "todos", Row: "r3", CL: 3},
	}}
	return []usync.Message{
		&usync.Hello{Versions: []uint16{1}, Site: site, Token: "token", SchemaVersion: 3, Cursor: 42,
			Subscriptions: []usync.Subscription{{Collection: "todos", Where: []usync.Filter{{Field: "list", Value: []byte(`"inbox"`)}}}},
			Credits:       8, Resubscribe: true, Previous: []usync.Subscription{{Collection: "todos"}}},
		&usync.Welcome{Version: 1, ServerTime: crdt.MakeTimestamp(1_700_000_000_001, 0), HighWater: 6, Head: 99,
			Limits: usync.Limits{MaxMessageBytes: 16 << 20, MaxPushTxs: 256, MaxInFlight: 4}, Expires: 1_700_000_900_000},
		&usync.Push{Txs: []crdt.Tx{tx}},
		&usync.Ack{HighWater: 7, Seqs: []uint64{100, 0}},
		&usync.Changes{From: 10, To: 20, Changes: []usync.Change{{Seq: 11, Tx: tx}, {Seq: 15, Tx: tx}},
			Rows: []usync.SnapshotRow{{Collection: "todos", Row: "r1", State: []byte{1, 2, 3}}}},
		&usync.Snapshot{Seq: 99, After: crdt.RowKey{Collection: "todos", Row: "r0"},
			Rows: []usync.SnapshotRow{{Collection: "todos", Row: "r1", State: []byte{1, 2, 3}}}, Last: true, TotalRows: 1, TotalBytes: 3},
		&usync.Reject{Site: site, Seq: 7, Code: usync.CodeInvalidTx, Reason: "title required"},
		&usync.ErrorMessage{Code: usync.CodeUnauthorized, Message: "token expired"},
		&usync.Ping{Nonce: 1},
		&usync.Pong{Nonce: 1, Head: 99},
		&usync.Credit{N: 16},
		&usync.Auth{Token: "fresh token"},
		&usync.AuthOK{Expires: 1_700_003_600_000},
		&usync.Check{From: 5},
		&usync.Runs{Runs: []usync.Run{{First: 3, Epoch: 1 << 63}, {First: 6, Epoch: 42}}, Through: 8},
	}
}

// bigPush returns a Push whose payload is well over the default 4 KiB
// threshold and compresses well.
func bigPush() *usync.Push {
	site := crdt.SiteID{0: 1}
	tx := crdt.Tx{Site: site, Seq: 1, Time: 1}
	for i := range 200 {
		tx.Ops = append(tx.Ops, crdt.Op{Type: crdt.OpSet, Kind: crdt.KindRegister, Collection: "todos",
			Row: "row-" + strings.Repeat("x", i%7), Field: "title", CL: 1, Value: []byte(`"a fairly ordinary title"`)})
	}
	return &usync.Push{Txs: []crdt.Tx{tx}}
}

func TestCodec_Encode_Compression(t *testing.T) {
	c := newCodec(t, usync.CodecConfig{})
	t.Run("small", func(t *testing.T) {
		for _, m := range sampleMessages() {
			frame := mustEncode(t, c, m)
			if frame[0] != 0 {
				t.Errorf("%v: flags = %#x, want 0 (uncompressed)", m.Type(), frame[0])
			}
			assertDecodes(t, c, frame, m)
		}
	})
	t.Run("large", func(t *testing.T) {
		m := bigPush()
		plain := mustEncode(t, newCodec(t, usync.CodecConfig{CompressAbove: -1}), m)
		frame := mustEncode(t, c, m)
		if frame[0]&flagZstd == 0 {
			t.Fatalf("payload of %d bytes: flags = %#x, want the zstd bit", len(plain)-1, frame[0])
		}
		if len(frame) >= len(plain) {
			t.Errorf("compressed frame of %d bytes is not smaller than the plain one of %d", len(frame), len(plain))
		}
		assertDecodes(t, c, frame, m)
	})
	t.Run("threshold", func(t *testing.T) {
		// A payload of exactly CompressAbove bytes stays plain; one byte
		// more is compressed.
		plain := newCodec(t, usync.CodecConfig{CompressAbove: -1})
		limit := c.Limits().CompressAbove
		found := map[int]bool{}
		for n := limit - 64; n < limit+64; n++ {
			m := &usync.Hello{Token: strings.Repeat("t", n)}
			payload := len(mustEncode(t, plain, m)) - 1
			if payload != limit && payload != limit+1 {
				continue
			}
			found[payload] = true
			frame := mustEncode(t, c, m)
			if got, want := frame[0]&flagZstd != 0, payload > limit; got != want {
				t.Errorf("payload of %d bytes, threshold %d: compressed = %v, want %v", payload, limit, got, want)
			}
			assertDecodes(t, c, frame, m)
		}
		if !found[limit] || !found[limit+1] {
			t.Fatalf("no Hello with a payload of %d or %d bytes (found %v)", limit, limit+1, found)
		}
	})
}

// TestNewCodec_InvalidLimits pins what NewCodec does with limits below
// what its dependencies accept: it refuses them rather than silently
// raising them.
func TestNewCodec_InvalidLimits(t *testing.T) {
	for _, cfg := range []usync.CodecConfig{{MaxArrayElements: 15}, {MaxMessageBytes: 1023}} {
		if c, err := usync.NewCodec(cfg); err == nil {
			c.Close()
			t.Errorf("NewCodec(%+v) succeeded", cfg)
		}
	}
}

func TestCodec_Limits(t *testing.T) {
	c := newCodec(t, usync.CodecConfig{})
	want := usync.CodecConfig{MaxFrameBytes: 4 << 20, MaxMessageBytes: 16 << 20, CompressAbove: 4 << 10, MaxArrayElements: 1 << 16}
	if diff := cmp.Diff(want, c.Limits()); diff != "" {
		t.Errorf("default limits (-want +got):\n%s", diff)
	}
	cfg := usync.CodecConfig{MaxFrameBytes: 1, MaxMessageBytes: 1024, CompressAbove: -1, MaxArrayElements: 16}
	if diff := cmp.Diff(cfg, newCodec(t, cfg).Limits()); diff != "" {
		t.Errorf("explicit limits (-want +got):\n%s", diff)
	}
}

// seqs returns 1..n.
func seqs(n int) []uint64 {
	s := make([]uint64, n)
	for i := range s {
		s[i] = uint64(i + 1)
	}
	return s
}

func validTx() crdt.Tx {
	return crdt.Tx{Site: crdt.SiteID{0: 1}, Seq: 1, Time: 1, Ops: []crdt.Op{
		{Type: crdt.OpSet, Kind: crdt.KindRegister, Collection: "c", Row: "r", Field: "f", CL: 1, Value: []byte("1")},
	}}
}

func TestCodec_Decode_Errors(t *testing.T) {
	helloFrame := rawFrame(t, 0, []any{usync.TypeHello, sampleMessages()[0]})
	pingPayload := rawFrame(t, 0, []any{usync.TypePing, usync.Ping{Nonce: 1}})[1:]

	seq0 := validTx()
	seq0.Seq = 0
	noSite := validTx()
	noSite.Site = crdt.SiteID{}
	oddDelete := validTx()
	oddDelete.Ops = []crdt.Op{{Type: crdt.OpDelete, Collection: "c", Row: "r", CL: 3}}
	evenSet := validTx()
	evenSet.Ops[0].CL = 2
	noField := validTx()
	noField.Ops[0].Field = ""
	wrongKind := validTx()
	wrongKind.Ops[0].Kind = crdt.KindCounter

	changes := func(from, to uint64, seqs ...uint64) usync.Changes {
		m := usync.Changes{From: from, To: to}
		for _, s := range seqs {
			m.Changes = append(m.Changes, usync.Change{Seq: s, Tx: validTx()})
		}
		return m
	}

	tests := []struct {
		name  string
		cfg   usync.CodecConfig
		frame []byte
		want  *usync.Error
	}{
		{name: "empty frame", frame: nil, want: usync.ErrBadMessage},
		{name: "empty frame non-nil", frame: []byte{}, want: usync.ErrBadMessage},
		{name: "frame over MaxFrameBytes", cfg: usync.CodecConfig{MaxFrameBytes: 1024},
			frame: append([]byte{0}, bytes.Repeat([]byte{0x60}, 1024)...), want: usync.ErrTooLarge},
		{name: "compressed frame over MaxFrameBytes", cfg: usync.CodecConfig{MaxFrameBytes: 1024},
			frame: append([]byte{flagZstd}, bytes.Repeat([]byte{0}, 1024)...), want: usync.ErrTooLarge},
		{name: "plain payload over MaxMessageBytes", cfg: usync.CodecConfig{MaxFrameBytes: 4096, MaxMessageBytes: 1024},
			frame: rawFrame(t, 0, []any{usync.TypeHello, usync.Hello{Token: strings.Repeat("t", 2000)}}), want: usync.ErrTooLarge},
		{name: "unknown flag bit 1", frame: append([]byte{0x02}, pingPayload...), want: usync.ErrBadMessage},
		{name: "unknown flag bit 7", frame: append([]byte{0x80}, pingPayload...), want: usync.ErrBadMessage},
		{name: "unknown and zstd flags", frame: append([]byte{0x03}, pingPayload...), want: usync.ErrBadMessage},
		{name: "flags only", frame: []byte{0}, want: usync.ErrBadMessage},
		{name: "unknown type 99", frame: rawFrame(t, 0, []any{99, []any{}}), want: usync.ErrUnknownType},
		{name: "unknown type 0", frame: rawFrame(t, 0, []any{0, []any{uint64(1)}}), want: usync.ErrUnknownType},
		{name: "type over uint8", frame: rawFrame(t, 0, []any{256, []any{uint64(1)}}), want: usync.ErrBadMessage},
		{name: "negative type", frame: rawFrame(t, 0, []any{-1, []any{uint64(1)}}), want: usync.ErrBadMessage},
		{name: "truncated CBOR", frame: helloFrame[:len(helloFrame)/2], want: usync.ErrBadMessage},
		{name: "truncated CBOR one byte short", frame: helloFrame[:len(helloFrame)-1], want: usync.ErrBadMessage},
		{name: "trailing bytes", frame: append(slices.Clip(helloFrame), 0x00), want: usync.ErrBadMessage},
		{name: "envelope not an array", frame: rawFrame(t, 0, map[string]any{"type": 9}), want: usync.ErrBadMessage},
		{name: "envelope of one element", frame: rawFrame(t, 0, []any{usync.TypePing}), want: usync.ErrBadMessage},
		{name: "envelope of three elements", frame: rawFrame(t, 0, []any{usync.TypePing, []any{1}, 0}), want: usync.ErrBadMessage},
		{name: "indefinite-length envelope", frame: append([]byte{0, 0x9f, 0x09, 0x81, 0x01}, 0xff), want: usync.ErrBadMessage},
		{name: "Ping body is a string", frame: rawFrame(t, 0, []any{usync.TypePing, "hello"}), want: usync.ErrBadMessage},
		{name: "Ping body with a string nonce", frame: rawFrame(t, 0, []any{usync.TypePing, []any{"1"}}), want: usync.ErrBadMessage},
		{name: "Ping body too long", frame: rawFrame(t, 0, []any{usync.TypePing, []any{1, 2}}), want: usync.ErrBadMessage},
		{name: "Credit over uint32", frame: rawFrame(t, 0, []any{usync.TypeCredit, []any{uint64(1) << 32}}), want: usync.ErrBadMessage},
		{name: "Hello token not UTF-8", frame: rawFrame(t, 0, []any{usync.TypeHello, []any{
			[]uint16{1}, crdt.SiteID{}, cbor.RawMessage{0x62, 0xff, 0xfe}, 0, 0, nil, 0}}), want: usync.ErrBadMessage},
		{name: "Auth token not UTF-8", frame: rawFrame(t, 0, []any{usync.TypeAuth, []any{cbor.RawMessage{0x62, 0xff, 0xfe}}}), want: usync.ErrBadMessage},
		{name: "Auth token a number", frame: rawFrame(t, 0, []any{usync.TypeAuth, []any{1}}), want: usync.ErrBadMessage},
		{name: "Auth without a token", frame: rawFrame(t, 0, []any{usync.TypeAuth, []any{}}), want: usync.ErrBadMessage},
		{name: "Auth token over MaxMessageBytes", cfg: usync.CodecConfig{MaxFrameBytes: 4096, MaxMessageBytes: 1024},
			frame: rawFrame(t, 0, []any{usync.TypeAuth, usync.Auth{Token: strings.Repeat("t", 2000)}}), want: usync.ErrTooLarge},
		{name: "AuthOK expiry over int64", frame: rawFrame(t, 0, []any{usync.TypeAuthOK, []any{uint64(1) << 63}}), want: usync.ErrBadMessage},
		{name: "AuthOK body too long", frame: rawFrame(t, 0, []any{usync.TypeAuthOK, []any{1, 2}}), want: usync.ErrBadMessage},
		{name: "deeply nested body", frame: rawFrame(t, 0, []any{usync.TypePing, nested(40)}), want: usync.ErrBadMessage},
		{name: "array over MaxArrayElements", cfg: usync.CodecConfig{MaxArrayElements: 16},
			frame: rawFrame(t, 0, []any{usync.TypeAck, []any{1, seqs(17)}}), want: usync.ErrBadMessage},
		{name: "txs over MaxArrayElements", cfg: usync.CodecConfig{MaxArrayElements: 16},
			frame: rawFrame(t, 0, []any{usync.TypePush, usync.Push{Txs: slices.Repeat([]crdt.Tx{validTx()}, 17)}}), want: usync.ErrBadMessage},
		{name: "ops over MaxArrayElements", cfg: usync.CodecConfig{MaxArrayElements: 16},
			frame: rawFrame(t, 0, []any{usync.TypePush, usync.Push{Txs: []crdt.Tx{manyOps(17)}}}), want: usync.ErrBadMessage},
		{name: "array over default MaxArrayElements",
			frame: rawFrame(t, 0, []any{usync.TypeAck, []any{1, make([]uint64, 1<<16+1)}}), want: usync.ErrBadMessage},
		{name: "Push tx with seq 0", frame: rawFrame(t, 0, []any{usync.TypePush, usync.Push{Txs: []crdt.Tx{validTx(), seq0}}}), want: usync.ErrMalformedTx},
		{name: "Push tx without site", frame: rawFrame(t, 0, []any{usync.TypePush, usync.Push{Txs: []crdt.Tx{noSite}}}), want: usync.ErrMalformedTx},
		{name: "Push delete with odd CL", frame: rawFrame(t, 0, []any{usync.TypePush, usync.Push{Txs: []crdt.Tx{oddDelete}}}), want: usync.ErrMalformedTx},
		{name: "Push set with even CL", frame: rawFrame(t, 0, []any{usync.TypePush, usync.Push{Txs: []crdt.Tx{evenSet}}}), want: usync.ErrMalformedTx},
		{name: "Push set without field", frame: rawFrame(t, 0, []any{usync.TypePush, usync.Push{Txs: []crdt.Tx{noField}}}), want: usync.ErrMalformedTx},
		{name: "Push set on a counter", frame: rawFrame(t, 0, []any{usync.TypePush, usync.Push{Txs: []crdt.Tx{wrongKind}}}), want: usync.ErrMalformedTx},
		{name: "Changes out of order", frame: rawFrame(t, 0, []any{usync.TypeChanges, changes(0, 10, 3, 2)}), want: usync.ErrBadMessage},
		{name: "Changes repeated seq", frame: rawFrame(t, 0, []any{usync.TypeChanges, changes(0, 10, 3, 3)}), want: usync.ErrBadMessage},
		{name: "Changes seq at From", frame: rawFrame(t, 0, []any{usync.TypeChanges, changes(5, 10, 5)}), want: usync.ErrBadMessage},
		{name: "Changes seq below From", frame: rawFrame(t, 0, []any{usync.TypeChanges, changes(5, 10, 4)}), want: usync.ErrBadMessage},
		{name: "Changes seq above To", frame: rawFrame(t, 0, []any{usync.TypeChanges, changes(5, 10, 6, 11)}), want: usync.ErrBadMessage},
		{name: "Changes To below From", frame: rawFrame(t, 0, []any{usync.TypeChanges, changes(10, 5)}), want: usync.ErrBadMessage},
		{name: "Changes with a malformed tx", frame: rawFrame(t, 0, []any{usync.TypeChanges, usync.Changes{From: 0, To: 1,
			Changes: []usync.Change{{Seq: 1, Tx: seq0}}}}), want: usync.ErrMalformedTx},
		{name: "zstd flag with no payload", frame: []byte{flagZstd}, want: usync.ErrBadCompression},
		{name: "zstd flag with a plain payload", frame: append([]byte{flagZstd}, pingPayload...), want: usync.ErrBadCompression},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCodec(t, tt.cfg)
			m, err := c.Decode(tt.frame)
			if m != nil {
				t.Errorf("Decode returned a %T with its error", m)
			}
			assertCode(t, err, tt.want)
		})
	}
}

// manyOps returns a valid transaction of n ops.
func manyOps(n int) crdt.Tx {
	tx := validTx()
	tx.Ops = slices.Repeat(tx.Ops, n)
	return tx
}

// TestCodec_Decode_SiteIDLength sends site IDs that are not 16 bytes. The
// CBOR library fills a [16]byte from a byte string of any length, padding
// a short one with zeros and cutting a long one, so a malformed site ID
// decodes as some other site instead of being refused.
func TestCodec_Decode_SiteIDLength(t *testing.T) {
	c := newCodec(t, usync.CodecConfig{})
	tx := func(site any) []any {
		v := validTx()
		return []any{site, v.Seq, v.Time, v.Ops}
	}
	long := slices.Repeat([]byte{7}, 17)
	tests := []struct {
		name  string
		frame []byte
	}{
		{"Push tx site of 17 bytes", rawFrame(t, 0, []any{usync.TypePush, []any{[]any{tx(long)}}})},
		{"Push tx site of 3 bytes", rawFrame(t, 0, []any{usync.TypePush, []any{[]any{tx([]byte{1, 2, 3})}}})},
		{"Reject site of 17 bytes", rawFrame(t, 0, []any{usync.TypeReject, []any{long, 1, usync.CodeInvalidTx, "no"}})},
		{"Hello site of 3 bytes", rawFrame(t, 0, []any{usync.TypeHello, []any{
			[]uint16{1}, []byte{1, 2, 3}, "token", 1, 0, nil, 8}})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := c.Decode(tt.frame)
			if err == nil {
				t.Fatalf("Decode accepted it as %+v", m)
			}
			if !errors.Is(err, usync.ErrBadMessage) && !errors.Is(err, usync.ErrMalformedTx) {
				t.Errorf("err = %v, want ErrBadMessage or ErrMalformedTx", err)
			}
		})
	}
}

// nested returns n nested one-element arrays.
func nested(n int) any {
	var v any = 1
	for range n {
		v = []any{v}
	}
	return v
}

// TestCodec_Decode_AtLimits checks that the limits are not off by one:
// what is exactly at a limit decodes.
func TestCodec_Decode_AtLimits(t *testing.T) {
	t.Run("MaxArrayElements", func(t *testing.T) {
		c := newCodec(t, usync.CodecConfig{MaxArrayElements: 16})
		ack := &usync.Ack{HighWater: 1, Seqs: seqs(16)}
		assertDecodes(t, c, rawFrame(t, 0, []any{usync.TypeAck, ack}), ack)
		push := &usync.Push{Txs: slices.Repeat([]crdt.Tx{manyOps(16)}, 16)}
		assertDecodes(t, c, rawFrame(t, 0, []any{usync.TypePush, push}), push)
	})
	t.Run("MaxFrameBytes", func(t *testing.T) {
		m := &usync.Hello{Token: strings.Repeat("t", 1100)}
		frame := rawFrame(t, 0, []any{usync.TypeHello, m})
		c := newCodec(t, usync.CodecConfig{MaxFrameBytes: len(frame), MaxMessageBytes: len(frame) - 1, CompressAbove: -1})
		assertDecodes(t, c, frame, m)
		if got := mustEncode(t, c, m); !bytes.Equal(got, frame) {
			t.Errorf("Encode at the limits = %x, want %x", got, frame)
		}
	})
	t.Run("Changes To beyond the last seq", func(t *testing.T) {
		c := newCodec(t, usync.CodecConfig{})
		want := &usync.Changes{From: 5, To: 9, Changes: []usync.Change{{Seq: 6, Tx: validTx()}, {Seq: 7, Tx: validTx()}}}
		assertDecodes(t, c, rawFrame(t, 0, []any{usync.TypeChanges, want}), want)
		empty := &usync.Changes{From: 5, To: 5}
		assertDecodes(t, c, rawFrame(t, 0, []any{usync.TypeChanges, empty}), empty)
	})
}

func TestCodec_Encode_TooLarge(t *testing.T) {
	big := &usync.Hello{Token: strings.Repeat("t", 2000)}
	random := make([]byte, 4000)
	for i := range random {
		random[i] = byte(i*7919 + i*i*31 + i>>3) // incompressible enough for zstd's fastest level
	}
	incompressible := &usync.Snapshot{Rows: []usync.SnapshotRow{{Collection: "c", Row: "r", State: random}}}
	tests := []struct {
		name string
		cfg  usync.CodecConfig
		m    usync.Message
	}{
		{"over MaxMessageBytes", usync.CodecConfig{MaxMessageBytes: 1024}, big},
		{"over MaxMessageBytes though it compresses", usync.CodecConfig{MaxMessageBytes: 1024, CompressAbove: 16}, big},
		{"plain frame over MaxFrameBytes", usync.CodecConfig{MaxFrameBytes: 1024, CompressAbove: -1}, big},
		{"compressed frame over MaxFrameBytes", usync.CodecConfig{MaxFrameBytes: 1024, CompressAbove: 16}, incompressible},
		{"big Push over MaxMessageBytes", usync.CodecConfig{MaxMessageBytes: 4096}, bigPush()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			frame, err := newCodec(t, tt.cfg).Encode(tt.m)
			if frame != nil {
				t.Errorf("Encode returned a frame of %d bytes with its error", len(frame))
			}
			assertCode(t, err, usync.ErrTooLarge)
		})
	}
}

// zstdFrame compresses data as one zstd frame with opts.
func zstdFrame(tb testing.TB, data []byte, opts ...zstd.EOption) []byte {
	tb.Helper()
	enc, err := zstd.NewWriter(nil, opts...)
	if err != nil {
		tb.Fatal(err)
	}
	defer enc.Close()
	return enc.EncodeAll(data, nil)
}

// zstdStream compresses data with a streaming writer that is not told the
// size, so the frame header carries no content size.
func zstdStream(tb testing.TB, data []byte, opts ...zstd.EOption) []byte {
	tb.Helper()
	var buf bytes.Buffer
	w, err := zstd.NewWriter(&buf, opts...)
	if err != nil {
		tb.Fatal(err)
	}
	for chunk := range slices.Chunk(data, 1<<20) {
		if _, err := w.Write(chunk); err != nil {
			tb.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

func zstdHeader(tb testing.TB, z []byte) zstd.Header {
	tb.Helper()
	var h zstd.Header
	if err := h.Decode(z); err != nil {
		tb.Fatalf("zstd header: %v", err)
	}
	return h
}

// TestCodec_Decode_Bomb sends decompression bombs: payloads of a few KB
// that decompress to 64 MiB. Each must be refused fast, without a panic
// and without allocating much more than MaxMessageBytes.
func TestCodec_Decode_Bomb(t *testing.T) {
	const maxMessage = 1 << 20
	c := newCodec(t, usync.CodecConfig{MaxMessageBytes: maxMessage})

	zeros := make([]byte, 64<<20)

	withFCS := zstdFrame(t, zeros)
	if h := zstdHeader(t, withFCS); !h.HasFCS || h.FrameContentSize != uint64(len(zeros)) {
		t.Fatalf("EncodeAll header: content size %d (present %v), want %d", h.FrameContentSize, h.HasFCS, len(zeros))
	}
	noFCS := zstdStream(t, zeros, zstd.WithSingleSegment(false))
	if h := zstdHeader(t, noFCS); h.HasFCS {
		t.Fatalf("streamed frame has a content size (%d); the test needs one without", h.FrameContentSize)
	}
	// A small window gets past the decoder's window limit, so only the
	// running output count can stop it.
	noFCSSmallWindow := zstdStream(t, zeros, zstd.WithWindowSize(64<<10))
	if h := zstdHeader(t, noFCSSmallWindow); h.HasFCS || h.WindowSize > maxMessage {
		t.Fatalf("small-window stream: content size present %v, window %d", h.HasFCS, h.WindowSize)
	}
	noFCSWindowAtLimit := zstdStream(t, zeros, zstd.WithWindowSize(maxMessage))
	if h := zstdHeader(t, noFCSWindowAtLimit); h.HasFCS || h.WindowSize != maxMessage {
		t.Fatalf("window-at-limit stream: content size present %v, window %d", h.HasFCS, h.WindowSize)
	}
	lyingFCS := lieAboutContentSize(t, zstdFrame(t, zeros, zstd.WithSingleSegment(false), zstd.WithWindowSize(64<<10)), 1000)
	// Frames are concatenated: the first header is small and honest, the
	// ones after it are not checked by the header test.
	small := zstdFrame(t, rawFrame(t, 0, []any{usync.TypePing, usync.Ping{Nonce: 1}})[1:])
	concatenated := slices.Concat(small, withFCS)
	concatenatedNoFCS := slices.Concat(small, noFCSSmallWindow)
	bigThenNoFCS := slices.Concat(zstdFrame(t, zeros[:maxMessage*7/8]), noFCSSmallWindow)
	manyFrames := slices.Concat(small, bytes.Repeat(zstdFrame(t, zeros[:maxMessage/2]), 8))
	skippable := binary.LittleEndian.AppendUint32([]byte{0x50, 0x2a, 0x4d, 0x18}, 0xffffffff)

	garbage := make([]byte, 4096)
	for i := range garbage {
		garbage[i] = byte(i*131 + 7)
	}
	truncated := zstdFrame(t, bytes.Repeat([]byte("uno "), 1000))
	truncated = truncated[:len(truncated)/2]

	tests := []struct {
		name    string
		payload []byte
	}{
		{"64 MiB with content size", withFCS},
		{"64 MiB without content size", noFCS},
		{"64 MiB without content size, small window", noFCSSmallWindow},
		{"64 MiB without content size, window at the limit", noFCSWindowAtLimit},
		{"64 MiB with a content size that lies", lyingFCS},
		{"small frame then a 64 MiB frame", concatenated},
		{"small frame then a 64 MiB frame without content size", concatenatedNoFCS},
		{"frames adding up past the limit", manyFrames},
		{"large frame then a 64 MiB frame without content size", bigThenNoFCS},
		{"skippable frame of 4 GiB", skippable},
		{"garbage", garbage},
		{"zstd magic then garbage", append([]byte{0x28, 0xb5, 0x2f, 0xfd}, garbage...)},
		{"truncated frame", truncated},
	}
	// Warm the decoder up so that the measurements below see what each
	// message costs, not the decoder's one-off buffers.
	assertDecodes(t, c, mustEncode(t, newCodec(t, usync.CodecConfig{CompressAbove: 1}), bigPush()), bigPush())

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			frame := append([]byte{flagZstd}, tt.payload...)
			if len(frame) > c.Limits().MaxFrameBytes {
				t.Fatalf("bomb frame of %d bytes is over MaxFrameBytes: it tests nothing", len(frame))
			}
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			start := time.Now()
			m, err := c.Decode(frame)
			elapsed := time.Since(start)
			runtime.ReadMemStats(&after)

			if m != nil {
				t.Errorf("Decode returned a %T", m)
			}
			if !errors.Is(err, usync.ErrTooLarge) && !errors.Is(err, usync.ErrBadCompression) {
				t.Errorf("err = %v, want ErrTooLarge or ErrBadCompression", err)
			}
			if _, ok := err.(*usync.Error); !ok {
				t.Errorf("err is a %T, want a *usync.Error", err)
			}
			grown := after.TotalAlloc - before.TotalAlloc
			if limit := uint64(2*maxMessage + 1<<20); grown >= limit {
				t.Errorf("Decode allocated %d bytes, want < %d (2 × MaxMessageBytes + 1 MiB)", grown, limit)
			}
			if elapsed > time.Second {
				t.Errorf("Decode took %v", elapsed)
			}
			t.Logf("%v in %v, %d KiB allocated, frame of %d bytes", err, elapsed, grown>>10, len(frame))
		})
	}
}

// TestCodec_Decode_Streamed checks that payloads compressed by a streaming
// zstd writer, whose frame headers carry no content size, decode.
func TestCodec_Decode_Streamed(t *testing.T) {
	const maxMessage = 1 << 20
	c := newCodec(t, usync.CodecConfig{MaxMessageBytes: maxMessage})
	plain := newCodec(t, usync.CodecConfig{CompressAbove: -1})
	for _, size := range []int{10, 1000, 300 << 10, 900 << 10} {
		m := &usync.Hello{Token: strings.Repeat("0123456789abcdef", size/16+1)[:size]}
		payload := mustEncode(t, plain, m)[1:]
		for _, window := range []int{64 << 10, maxMessage} {
			z := zstdStream(t, payload, zstd.WithWindowSize(window))
			// The writer knows the size of what fits in its first block.
			if h := zstdHeader(t, z); h.HasFCS && size > 128<<10 {
				t.Fatalf("streamed frame of %d bytes has a content size", size)
			}
			assertDecodes(t, c, append([]byte{flagZstd}, z...), m)
		}
	}
}

// lieAboutContentSize rewrites the 4-byte frame content size of a zstd
// frame header (one with a window descriptor and no dictionary) to size.
func lieAboutContentSize(tb testing.TB, z []byte, size uint32) []byte {
	tb.Helper()
	z = slices.Clone(z)
	fhd := z[4]
	if fhd>>6 != 2 || fhd&(1<<5) != 0 || fhd&3 != 0 {
		tb.Fatalf("frame header descriptor %#x: want a 4-byte content size, a window descriptor and no dictionary", fhd)
	}
	binary.LittleEndian.PutUint32(z[6:10], size)
	if h := zstdHeader(tb, z); !h.HasFCS || h.FrameContentSize != uint64(size) {
		tb.Fatalf("rewritten header: content size %d (present %v), want %d", h.FrameContentSize, h.HasFCS, size)
	}
	return z
}

// fuzzConfig has limits small enough for the fuzzer to reach them.
var fuzzConfig = usync.CodecConfig{MaxFrameBytes: 64 << 10, MaxMessageBytes: 256 << 10, CompressAbove: 64, MaxArrayElements: 512}

// FuzzDecode feeds arbitrary frames to Decode. It must not panic; every
// error must be an *usync.Error; and a message it accepts must survive
// Encode and Decode again unchanged.
func FuzzDecode(f *testing.F) {
	plain := newCodec(f, usync.CodecConfig{CompressAbove: -1})
	zipped := newCodec(f, usync.CodecConfig{CompressAbove: 1})
	for _, m := range append(sampleMessages(), bigPush()) {
		f.Add(mustEncode(f, plain, m))
		f.Add(mustEncode(f, zipped, m))
	}
	f.Add([]byte{})
	f.Add([]byte{0})
	f.Add([]byte{flagZstd})
	f.Add([]byte{0x02, 0x82, 0x09, 0x81, 0x01})
	f.Add([]byte{0, 0x82, 0x18, 0x63, 0x80}) // type 99
	f.Add([]byte{0, 0x82, 0x09, 0x61, 0x78}) // Ping body "x"
	f.Add(append([]byte{flagZstd}, zstdStream(f, make([]byte, 1<<20), zstd.WithWindowSize(64<<10))...))
	f.Add(append([]byte{flagZstd, 0x28, 0xb5, 0x2f, 0xfd}, "garbage"...))

	c := newCodec(f, fuzzConfig)
	f.Fuzz(func(t *testing.T, frame []byte) {
		m, err := c.Decode(frame)
		if err != nil {
			if _, ok := err.(*usync.Error); !ok {
				t.Fatalf("Decode error is a %T, want a *usync.Error: %v", err, err)
			}
			if m != nil {
				t.Fatalf("Decode returned a %T with its error %v", m, err)
			}
			return
		}
		if m == nil {
			t.Fatal("Decode returned neither a message nor an error")
		}
		again, err := c.Encode(m)
		if err != nil {
			t.Fatalf("Encode of a decoded %v: %v", m.Type(), err)
		}
		assertDecodes(t, c, again, m)
	})
}

// EncodeChanges writes the same message Encode would, from transactions
// already encoded.
func TestCodec_EncodeChanges(t *testing.T) {
	c := newCodec(t, usync.CodecConfig{CompressAbove: 64})
	var scratch []byte // the frames' memory, reused
	rapid.Check(t, func(t *rapid.T) {
		from := rapid.Uint64Range(0, 1<<40).Draw(t, "from")
		n := rapid.IntRange(0, 20).Draw(t, "n")
		want := &usync.Changes{From: from, To: from + uint64(n) + rapid.Uint64Range(0, 300).Draw(t, "extra")}
		var seqs []uint64
		var encs [][]byte
		for i := range n {
			tx := crdt.Tx{Site: crdt.SiteID{1, byte(i)}, Seq: uint64(i + 1), Time: crdt.Timestamp(rapid.Uint64Range(0, 1<<60).Draw(t, "time")),
				Ops: []crdt.Op{{Type: crdt.OpSet, Kind: crdt.KindRegister, Collection: "c", Row: "r", Field: "f", CL: 1, Value: []byte(`"v"`)}}}
			want.Changes = append(want.Changes, usync.Change{Seq: from + uint64(i) + 1, Tx: tx})
			seqs = append(seqs, from+uint64(i)+1)
			encs = append(encs, crdt.EncodeTx(&tx))
		}
		frame, err := c.EncodeChanges(want.From, want.To, seqs, encs)
		if err != nil {
			t.Fatal(err)
		}
		// The same frame again, into the memory of earlier ones (left
		// as they were, then scribbled over).
		for i := range scratch[:cap(scratch)] {
			scratch[:cap(scratch)][i] = 0xff
		}
		again, err := c.AppendChangesTraced(scratch, want.From, want.To, seqs, nil, encs)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(again, frame) {
			t.Fatalf("AppendChangesTraced into used memory = %x, EncodeChanges = %x", again, frame)
		}
		if !usync.Compressed(again) && cap(scratch) >= len(again) && &again[0] != &scratch[:1][0] {
			t.Fatalf("a %d-byte frame was not built in a buffer of %d", len(again), cap(scratch))
		}
		if !usync.Compressed(again) && cap(again) != len(again) && cap(scratch) < len(again) {
			t.Fatalf("a %d-byte frame built in a new buffer of %d: its size is known", len(again), cap(again))
		}
		if cap(again) > cap(scratch) {
			scratch = again[:0]
		}
		got, err := c.Decode(frame)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(usync.Message(want), got, msgOpts); diff != "" {
			t.Fatalf("EncodeChanges round trip (-want +got):\n%s", diff)
		}
	})
	if _, err := c.EncodeChanges(0, 1, []uint64{1}, nil); err == nil {
		t.Fatal("EncodeChanges with mismatched slices succeeded")
	}
	// A server reusing its frames' memory allocates nothing for one.
	tx := crdt.Tx{Site: crdt.SiteID{1}, Seq: 1, Ops: []crdt.Op{{Type: crdt.OpSet, Kind: crdt.KindRegister, Collection: "c", Row: "r", Field: "f", CL: 1, Value: []byte(`"v"`)}}}
	encs := [][]byte{crdt.EncodeTx(&tx)}
	buf := make([]byte, 0, 256)
	if n := testing.AllocsPerRun(100, func() {
		if _, err := c.AppendChangesTraced(buf, 0, 1, []uint64{1}, nil, encs); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Fatalf("AppendChangesTraced into a buffer with room: %v allocations; want 0", n)
	}
}
