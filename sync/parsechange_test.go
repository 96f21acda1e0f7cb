package sync_test

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/fxamacker/cbor/v2"
	"pgregory.net/rapid"

	"github.com/unosync/uno/crdt"
	usync "github.com/unosync/uno/sync"
)

// nilAsEmpty encodes as crdt.EncodeTx does (nil slices as empty ones),
// where Change.MarshalCBOR writes them as null: a peer decodes both.
var nilAsEmpty = func() cbor.EncMode {
	o := cbor.CoreDetEncOptions()
	o.NilContainers = cbor.NilContainerAsEmpty
	m, err := o.EncMode()
	if err != nil {
		panic(err)
	}
	return m
}()

// sameAsReflect checks parseChange against the reflecting decoder on b:
// where parseChange takes b, the reflecting decoder gives the same Change.
// It reports whether parseChange took it.
func sameAsReflect(t interface{ Fatalf(string, ...any) }, b []byte) bool {
	fast, ok := usync.ParseChange(b)
	if !ok {
		return false
	}
	slow, err := usync.UnmarshalChangeReflect(b)
	if err != nil {
		t.Fatalf("parseChange took % x, which the reflecting decoder refuses: %v", b, err)
	}
	if !reflect.DeepEqual(fast, slow) {
		t.Fatalf("parseChange and the reflecting decoder differ on % x:\n%#v\n%#v", b, fast, slow)
	}
	return true
}

// TestParseChange_SameAsReflect: every Change a peer writes (by
// MarshalCBOR, or around crdt.EncodeTx bytes as EncodeChanges does) is
// read without reflection, into what the reflecting decoder gives; with
// bytes changed anywhere, it is either read the same or left to the
// reflecting decoder.
func TestParseChange_SameAsReflect(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		c := usync.Change{Seq: rapid.Uint64().Draw(t, "seq"), Tx: genTx().Draw(t, "tx"), Trace: rapid.SampledFrom([]string{"", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}).Draw(t, "trace")}
		plain, err := c.MarshalCBOR()
		if err != nil {
			t.Fatal(err)
		}
		var empty []byte
		if c.Trace == "" {
			empty, err = nilAsEmpty.Marshal([]any{c.Seq, cbor.RawMessage(crdt.EncodeTx(&c.Tx))})
		} else {
			empty, err = nilAsEmpty.Marshal([]any{c.Seq, cbor.RawMessage(crdt.EncodeTx(&c.Tx)), c.Trace})
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range [][]byte{plain, empty} {
			if !sameAsReflect(t, b) {
				t.Fatalf("parseChange left a peer's encoding % x to the reflecting decoder", b)
			}
			if got, _ := usync.ParseChange(b); got.Seq != c.Seq || got.Trace != c.Trace || got.Tx.Site != c.Tx.Site || len(got.Tx.Ops) != len(c.Tx.Ops) {
				t.Fatalf("parseChange read %#v from %#v", got, c)
			}
			m := append([]byte{}, b...)
			i := rapid.IntRange(0, len(m)-1).Draw(t, "at")
			m[i] = rapid.Byte().Draw(t, "byte")
			sameAsReflect(t, m)
			sameAsReflect(t, m[:rapid.IntRange(0, len(m)).Draw(t, "cut")])
		}
	})
}

// FuzzParseChange holds parseChange to the reflecting decoder on any bytes.
func FuzzParseChange(f *testing.F) {
	tx := crdt.Tx{Site: crdt.SiteID{1}, Seq: 3, Time: 9, Ops: []crdt.Op{
		{Type: crdt.OpSet, Kind: crdt.KindRegister, Collection: "c", Row: "r", Field: "f", CL: 1, Value: []byte(`"v"`),
			Context: crdt.Context{{Site: crdt.SiteID{2}, Time: 5}}},
		{Type: crdt.OpIncrement, Kind: crdt.KindCounter, Collection: "c", Row: "r", Field: "n", CL: 1, P: 7, N: 1},
		{Type: crdt.OpRemove, Kind: crdt.KindSet, Collection: "c", Row: "r", Field: "s", CL: 1, Value: []byte(`1`), Tags: []crdt.Dot{{Site: crdt.SiteID{3}, Time: 4}}},
		{Type: crdt.OpDelete, Collection: "c", Row: "r", CL: 2},
	}}
	for _, c := range []usync.Change{{Seq: 1, Tx: tx}, {Seq: 1 << 40, Tx: tx, Trace: "t"}, {Seq: 2, Tx: crdt.Tx{Site: crdt.SiteID{9}, Seq: 1}}} {
		b, err := c.MarshalCBOR()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		e, err := nilAsEmpty.Marshal([]any{c.Seq, cbor.RawMessage(crdt.EncodeTx(&c.Tx))})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(e)
	}
	for _, b := range edgeChanges(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) { sameAsReflect(t, b) })
}

// wideOp is crdt.Op's wire shape with every field wide open, to write ops
// the real types cannot hold.
type wideOp struct {
	_                    struct{} `cbor:",toarray"`
	Type, Kind           any
	Collection, Row, Fld any
	CL                   any
	Value, Context       any
	P, N                 any
	Tags                 any
}

// edgeChanges are encodings a peer could send that the reflecting decoder
// refuses or reads in its own way: parseChange must leave each to it.
func edgeChanges(tb testing.TB) [][]byte {
	site := cbor.RawMessage(append([]byte{0x50}, make([]byte, 16)...))
	op := func(mod func(*wideOp)) wideOp {
		o := wideOp{Type: 1, Kind: 1, Collection: "c", Row: "r", Fld: "f", CL: 1, Value: []byte(`1`), Context: []any{}, P: 0, N: 0, Tags: []any{}}
		mod(&o)
		return o
	}
	change := func(seq any, ops ...wideOp) []byte {
		b, err := cbor.Marshal([]any{seq, []any{site, 1, 2, ops}})
		if err != nil {
			tb.Fatal(err)
		}
		return b
	}
	return [][]byte{
		change(1, op(func(o *wideOp) { o.Type = 256 })),                         // overflows OpType
		change(1, op(func(o *wideOp) { o.Kind = 1 << 20 })),                     // overflows Kind
		change(1, op(func(o *wideOp) { o.Collection = "\xff" })),                // not UTF-8
		change(1, op(func(o *wideOp) { o.Row = []byte("r") })),                  // a byte string for text
		change(1, op(func(o *wideOp) { o.Value = "text" })),                     // text for bytes
		change(1, op(func(o *wideOp) { o.CL = -1 })),                            // negative
		change(1, op(func(o *wideOp) { o.P = 1.5 })),                            // a float
		change(1, op(func(o *wideOp) { o.Context = []any{[]any{site, 1, 2}} })), // a dot of 3
		change(1, op(func(o *wideOp) { o.Tags = []any{[]any{[]byte("short"), 1}} })),
		change(-1, op(func(*wideOp) {})),
		change(cbor.Tag{Number: 2, Content: []byte{1}}, op(func(*wideOp) {})), // a bignum
		append(change(1, op(func(*wideOp) {})), 0),                            // a byte after
		{0x9f, 0x01, 0xff}, // indefinite length
	}
}

// TestParseChange_Edges: what parseChange leaves to the reflecting
// decoder it does leave, including integers too wide for the field.
func TestParseChange_Edges(t *testing.T) {
	for i, b := range edgeChanges(t) {
		if _, ok := usync.ParseChange(b); ok {
			if _, err := usync.UnmarshalChangeReflect(b); err != nil {
				t.Errorf("edge %d: parseChange took % x, which the reflecting decoder refuses (%v)", i, b, err)
			} else {
				sameAsReflect(t, b)
			}
		}
	}
}

// BenchmarkChange_Decode decodes one delivered one-field update (a Change
// as EncodeChanges writes it), without reflection and with it.
func BenchmarkChange_Decode(b *testing.B) {
	tx := crdt.Tx{Site: crdt.SiteID{1, 2, 3}, Seq: 42, Time: 1 << 50, Ops: []crdt.Op{{Type: crdt.OpSet, Kind: crdt.KindRegister,
		Collection: "items", Row: "w", Field: "seq", CL: 1, Value: []byte(`1234`), Context: crdt.Context{{Site: crdt.SiteID{1, 2, 3}, Time: 1<<50 - 1}}}}}
	enc, err := nilAsEmpty.Marshal([]any{uint64(7), cbor.RawMessage(crdt.EncodeTx(&tx))})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("parse", func(b *testing.B) {
		for b.Loop() {
			if _, ok := usync.ParseChange(enc); !ok {
				b.Fatal("not parsed")
			}
		}
	})
	b.Run("reflect", func(b *testing.B) {
		for b.Loop() {
			if _, err := usync.UnmarshalChangeReflect(enc); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkCodec_DecodeChanges decodes a Changes frame of 80 one-field
// updates, as a busy client receives them (compressed: over CompressAbove).
func BenchmarkCodec_DecodeChanges(b *testing.B) {
	c, err := usync.NewCodec(usync.CodecConfig{})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	var seqs []uint64
	var txs [][]byte
	for i := range 80 {
		tx := crdt.Tx{Site: crdt.SiteID{byte(i + 1)}, Seq: uint64(i + 1), Time: 1 << 50, Ops: []crdt.Op{{Type: crdt.OpSet, Kind: crdt.KindRegister,
			Collection: "items", Row: fmt.Sprint("c", i), Field: "n", CL: 1, Value: []byte(fmt.Sprint(i * 7919)), Context: crdt.Context{{Site: crdt.SiteID{byte(i + 1)}, Time: 1<<50 - 1}}}}}
		seqs, txs = append(seqs, uint64(i+1)), append(txs, crdt.EncodeTx(&tx))
	}
	frame, err := c.EncodeChanges(0, 80, seqs, txs)
	if err != nil {
		b.Fatal(err)
	}
	if !usync.Compressed(frame) {
		b.Fatalf("a frame of %d bytes is not compressed", len(frame))
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Decode(frame); err != nil {
			b.Fatal(err)
		}
	}
}
