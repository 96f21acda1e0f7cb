package crdt_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/unosync/uno/crdt"
	"pgregory.net/rapid"
)

// cmpOpts compares decoded values with the originals: nil and empty slices
// are the same value on the wire, and the blank `_` fields that carry the
// CBOR toarray tags hold nothing.
var cmpOpts = []cmp.Option{
	cmpopts.EquateEmpty(),
	cmpopts.IgnoreUnexported(crdt.Tx{}, crdt.Op{}, crdt.Dot{}, crdt.Row{}, crdt.Field{}, crdt.Register{},
		crdt.Entry{}, crdt.Counter{}, crdt.CounterPart{}, crdt.Set{}, crdt.Member{}),
}

var (
	genSite = rapid.Custom(func(t *rapid.T) crdt.SiteID {
		var s crdt.SiteID
		copy(s[:], rapid.SliceOfN(rapid.Byte(), 16, 16).Draw(t, "site"))
		return s
	})
	genTimestamp = rapid.Custom(func(t *rapid.T) crdt.Timestamp { return crdt.Timestamp(rapid.Uint64().Draw(t, "ts")) })
	genDot       = rapid.Custom(func(t *rapid.T) crdt.Dot {
		return crdt.Dot{Site: genSite.Draw(t, "site"), Time: genTimestamp.Draw(t, "time")}
	})
	genDots  = rapid.SliceOfN(genDot, 0, 4)
	genBytes = rapid.SliceOfN(rapid.Byte(), 0, 24)
	genName  = rapid.StringN(0, 12, 64)
	// genOp makes ops that pass validation, with arbitrary payloads.
	genOp = rapid.Custom(func(t *rapid.T) crdt.Op {
		op := crdt.Op{Collection: genName.Draw(t, "collection"), Row: genName.Draw(t, "row")}
		odd := rapid.Uint64Range(0, 1<<62).Draw(t, "life")*2 + 1
		switch typ := rapid.SampledFrom([]crdt.OpType{crdt.OpSet, crdt.OpIncrement, crdt.OpAdd, crdt.OpRemove, crdt.OpDelete, crdt.OpRevive, crdt.OpChange}).Draw(t, "type"); typ {
		case crdt.OpDelete:
			op.Type, op.CL = typ, odd+1
		case crdt.OpRevive:
			op.Type, op.CL = typ, odd
		default:
			op.Type, op.CL = typ, odd
			op.Field = rapid.StringN(1, 12, 64).Draw(t, "field")
			switch typ {
			case crdt.OpSet:
				op.Kind = crdt.KindRegister
				op.Value = genBytes.Draw(t, "value")
				var ctx crdt.Context // a context is sorted by site, one dot per site
				for _, d := range genDots.Draw(t, "context") {
					ctx = ctx.Add(d)
				}
				op.Context = ctx
			case crdt.OpIncrement:
				op.Kind = crdt.KindCounter
				op.P, op.N = rapid.Uint64().Draw(t, "p"), rapid.Uint64().Draw(t, "n")
			case crdt.OpAdd:
				op.Kind, op.Value = crdt.KindSet, genBytes.Draw(t, "member")
			case crdt.OpRemove:
				op.Kind, op.Value, op.Tags = crdt.KindSet, genBytes.Draw(t, "member"), genDots.Draw(t, "tags")
			case crdt.OpChange:
				op.Kind, op.Value = crdt.KindDoc, genBytes.Draw(t, "changes")
			}
		}
		return op
	})
	genTx = rapid.Custom(func(t *rapid.T) *crdt.Tx {
		tx := &crdt.Tx{
			Site: genSite.Filter(func(s crdt.SiteID) bool { return !s.IsZero() }).Draw(t, "site"),
			Seq:  rapid.Uint64Min(1).Draw(t, "seq"),
			Time: genTimestamp.Draw(t, "time"),
			Ops:  rapid.SliceOfN(genOp, 0, 5).Draw(t, "ops"),
		}
		for i := range tx.Ops { // doc changes must be Automerge changes by the site
			if op := &tx.Ops[i]; op.Type == crdt.OpChange {
				op.Value = must(emptyChange(tx.Site, uint64(i+1)))
			}
		}
		return tx
	})
	// genRow makes arbitrary rows of valid kinds, each field holding only
	// its kind's part (the encoding keeps only that), with the sorted
	// invariants DecodeRow checks; otherwise they need not be states a
	// replica could hold.
	genRow = rapid.Custom(func(t *rapid.T) *crdt.Row {
		r := &crdt.Row{CL: rapid.Uint64().Draw(t, "cl")}
		for range rapid.IntRange(0, 3).Draw(t, "fields") {
			f := crdt.Field{
				Name: genName.Draw(t, "name"),
				Kind: rapid.SampledFrom([]crdt.Kind{crdt.KindRegister, crdt.KindCounter, crdt.KindSet, crdt.KindDoc}).Draw(t, "kind"),
				CL:   rapid.Uint64().Draw(t, "cl"),
			}
			switch f.Kind {
			case crdt.KindCounter:
				for range rapid.IntRange(0, 3).Draw(t, "parts") {
					f.Counter.Parts = append(f.Counter.Parts, crdt.CounterPart{Site: genSite.Draw(t, "site"), P: rapid.Uint64().Draw(t, "p"), N: rapid.Uint64().Draw(t, "n")})
				}
			case crdt.KindSet:
				for range rapid.IntRange(0, 3).Draw(t, "members") {
					f.Set.Members = append(f.Set.Members, crdt.Member{Value: genBytes.Draw(t, "value"), Adds: genDots.Draw(t, "adds"), Removes: genDots.Draw(t, "removes")})
				}
			case crdt.KindDoc:
				for range rapid.IntRange(0, 3).Draw(t, "chunks") {
					f.Doc.Chunks = append(f.Doc.Chunks, genBytes.Draw(t, "chunk"))
				}
				for range rapid.IntRange(0, 3).Draw(t, "clock") {
					f.Doc.Clock = append(f.Doc.Clock, crdt.DocClock{Site: genSite.Draw(t, "site"), Seq: rapid.Uint64().Draw(t, "seq")})
				}
				for range rapid.IntRange(0, 3).Draw(t, "heads") {
					var h crdt.ChangeHash
					copy(h[:], rapid.SliceOfN(rapid.Byte(), 32, 32).Draw(t, "hash"))
					f.Doc.Heads = append(f.Doc.Heads, crdt.DocHead{Hash: h, Site: genSite.Draw(t, "site"), Seq: rapid.Uint64().Draw(t, "seq")})
				}
			default:
				for range rapid.IntRange(0, 3).Draw(t, "entries") {
					f.Register.Entries = append(f.Register.Entries, crdt.Entry{Dot: genDot.Draw(t, "dot"), Value: genBytes.Draw(t, "value")})
				}
				f.Register.Context = genDots.Draw(t, "context")
			}
			r.Fields = append(r.Fields, f)
		}
		sortRow(r)
		return r
	})
)

// sortRow establishes the order invariants of a row: fields by name,
// entries and tags by dot, contexts and counter parts by site, members by
// value, each without duplicates.
func sortRow(r *crdt.Row) {
	byDot := func(ds []crdt.Dot) []crdt.Dot {
		slices.SortFunc(ds, crdt.Dot.Compare)
		return slices.CompactFunc(ds, func(a, b crdt.Dot) bool { return a.Compare(b) == 0 })
	}
	slices.SortStableFunc(r.Fields, func(a, b crdt.Field) int { return strings.Compare(a.Name, b.Name) })
	r.Fields = slices.CompactFunc(r.Fields, func(a, b crdt.Field) bool { return a.Name == b.Name })
	for i := range r.Fields {
		f := &r.Fields[i]
		slices.SortStableFunc(f.Doc.Clock, func(a, b crdt.DocClock) int { return a.Site.Compare(b.Site) })
		f.Doc.Clock = slices.CompactFunc(f.Doc.Clock, func(a, b crdt.DocClock) bool { return a.Site == b.Site })
		slices.SortStableFunc(f.Doc.Heads, func(a, b crdt.DocHead) int { return a.Hash.Compare(b.Hash) })
		f.Doc.Heads = slices.CompactFunc(f.Doc.Heads, func(a, b crdt.DocHead) bool { return a.Hash == b.Hash })
		slices.SortStableFunc(f.Register.Entries, func(a, b crdt.Entry) int { return a.Dot.Compare(b.Dot) })
		f.Register.Entries = slices.CompactFunc(f.Register.Entries, func(a, b crdt.Entry) bool { return a.Dot.Compare(b.Dot) == 0 })
		slices.SortStableFunc(f.Register.Context, func(a, b crdt.Dot) int { return a.Site.Compare(b.Site) })
		f.Register.Context = slices.CompactFunc(f.Register.Context, func(a, b crdt.Dot) bool { return a.Site == b.Site })
		slices.SortStableFunc(f.Counter.Parts, func(a, b crdt.CounterPart) int { return a.Site.Compare(b.Site) })
		f.Counter.Parts = slices.CompactFunc(f.Counter.Parts, func(a, b crdt.CounterPart) bool { return a.Site == b.Site })
		slices.SortStableFunc(f.Set.Members, func(a, b crdt.Member) int { return bytes.Compare(a.Value, b.Value) })
		f.Set.Members = slices.CompactFunc(f.Set.Members, func(a, b crdt.Member) bool { return bytes.Equal(a.Value, b.Value) })
		for j := range f.Set.Members {
			f.Set.Members[j].Adds = byDot(f.Set.Members[j].Adds)
			f.Set.Members[j].Removes = byDot(f.Set.Members[j].Removes)
		}
	}
}

func TestEncodeTx_RoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		tx := genTx.Draw(t, "tx")
		enc := crdt.EncodeTx(tx)
		got, err := crdt.DecodeTx(enc)
		if err != nil {
			t.Fatalf("DecodeTx: %v", err)
		}
		if diff := cmp.Diff(tx, got, cmpOpts...); diff != "" {
			t.Fatalf("round trip (-want +got):\n%s", diff)
		}
		if again := crdt.EncodeTx(got); !bytes.Equal(again, enc) {
			t.Fatalf("re-encoding differs:\n%x\n%x", enc, again)
		}
	})
}

// TestParseTx_SameAsDecodeTx: ParseTx reads every EncodeTx encoding, into
// what DecodeTx gives (reflect.DeepEqual: nil and empty slices alike),
// and takes exactly its bytes.
func TestParseTx_SameAsDecodeTx(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		enc := crdt.EncodeTx(genTx.Draw(t, "tx"))
		want, err := crdt.DecodeTx(enc)
		if err != nil {
			t.Fatal(err)
		}
		got, n, ok := crdt.ParseTx(append(enc, 0xf6)) // a byte after it is not its
		if !ok || n != len(enc) {
			t.Fatalf("ParseTx: ok %v, %d bytes of %d", ok, n, len(enc))
		}
		if !reflect.DeepEqual(&got, want) {
			t.Fatalf("ParseTx read %#v, DecodeTx %#v", got, want)
		}
	})
}

func TestEncodeRow_RoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		r := genRow.Draw(t, "row")
		enc := crdt.EncodeRow(r)
		got, err := crdt.DecodeRow(enc)
		if err != nil {
			t.Fatalf("DecodeRow: %v", err)
		}
		if diff := cmp.Diff(r, got, cmpOpts...); diff != "" {
			t.Fatalf("round trip (-want +got):\n%s", diff)
		}
		if again := crdt.EncodeRow(got); !bytes.Equal(again, enc) {
			t.Fatalf("re-encoding differs:\n%x\n%x", enc, again)
		}
		if clone := crdt.EncodeRow(r.Clone()); !bytes.Equal(clone, enc) {
			t.Fatalf("Clone encodes differently")
		}
		// The split encoding is the row without its documents' chunks,
		// and knows the full encoding's length.
		split, full := crdt.EncodeRowSplit(r)
		if full != len(enc) {
			t.Fatalf("EncodeRowSplit full length %d, EncodeRow %d bytes", full, len(enc))
		}
		lean, err := crdt.DecodeRow(split)
		if err != nil {
			t.Fatalf("DecodeRow(split): %v", err)
		}
		want := r.Clone()
		for i := range want.Fields {
			want.Fields[i].Doc.Chunks = nil
		}
		if diff := cmp.Diff(want, lean, cmpOpts...); diff != "" {
			t.Fatalf("split round trip (-want +got):\n%s", diff)
		}
	})
}

// TestEncodeRow_Canonical: nil and empty slices encode alike, so a row
// built by Apply and the same row decoded from disk hash alike.
func TestEncodeRow_Canonical(t *testing.T) {
	a := crdt.Row{CL: 1, Fields: []crdt.Field{{Name: "f", Kind: crdt.KindRegister, CL: 1}}}
	b := crdt.Row{CL: 1, Fields: []crdt.Field{{Name: "f", Kind: crdt.KindRegister, CL: 1,
		Register: crdt.Register{Entries: []crdt.Entry{}, Context: crdt.Context{}},
		Counter:  crdt.Counter{Parts: []crdt.CounterPart{}},
		Set:      crdt.Set{Members: []crdt.Member{}},
	}}}
	if !bytes.Equal(crdt.EncodeRow(&a), crdt.EncodeRow(&b)) {
		t.Error("nil and empty slices encode differently")
	}
	if !bytes.Equal(crdt.EncodeRow(&crdt.Row{}), crdt.EncodeRow(&crdt.Row{Fields: []crdt.Field{}})) {
		t.Error("empty rows encode differently")
	}
}

// validTxEncodings returns encodings of real transactions, as seeds.
func validTxEncodings(tb testing.TB) [][]byte {
	a := &node{site: siteA}
	a.write(tb, ts(1), func(b *crdt.Builder) error {
		return errors.Join(
			b.Set(keyR0, "title", crdt.KindRegister, []byte(`"hello"`)),
			b.Increment(keyR0, "n", -2),
			b.Add(keyR0, "tags", []byte(`"x"`)))
	})
	a.write(tb, ts(2), func(b *crdt.Builder) error {
		_, err := b.Delete(keyR1)
		return errors.Join(err, b.Remove(keyR0, "tags", []byte(`"x"`)), b.Change(keyR0, "body", must(emptyChange(siteA, 1))))
	})
	a.write(tb, ts(3), deleteRow(keyR0))
	var out [][]byte
	for _, tx := range a.txs {
		out = append(out, crdt.EncodeTx(tx))
	}
	return out
}

func validRowEncodings(tb testing.TB) [][]byte {
	out := [][]byte{crdt.EncodeRow(&crdt.Row{})}
	var s crdt.State
	for _, enc := range validTxEncodings(tb) {
		tx, err := crdt.DecodeTx(enc)
		if err != nil {
			tb.Fatal(err)
		}
		mustApply(tb, &s, tx)
		for _, k := range s.Keys() {
			out = append(out, crdt.EncodeRow(s.Row(k)))
		}
	}
	return out
}

func TestDecodeTx_Bad(t *testing.T) {
	valid := validTxEncodings(t)[0]
	tests := []struct {
		name string
		b    []byte
	}{
		{"nil", nil},
		{"empty", []byte{}},
		{"break byte", []byte{0xff}},
		{"unsigned int", []byte{0x01}},
		{"empty array", []byte{0x80}},
		{"map", []byte{0xa1, 0x01, 0x02}},
		{"array of 5", []byte{0x85, 0x00, 0x00, 0x00, 0x00, 0x00}},
		{"site of 15 bytes", append([]byte{0x84, 0x4f}, make([]byte, 15+3)...)},
		{"indefinite-length array", []byte{0x9f, 0xff}},
		{"array claims 2^32 elements", []byte{0x9b, 0, 0, 0, 1, 0, 0, 0, 0}},
		{"ops claim 2^20+1 elements", append(append([]byte{0x84, 0x50}, make([]byte, 16)...), 0x01, 0x01, 0x9a, 0x00, 0x10, 0x00, 0x01)},
		{"deep nesting", append(bytes.Repeat([]byte{0x81}, 100), 0x00)},
		{"trailing byte", append(append([]byte{}, valid...), 0x00)},
		{"text seq", append(append([]byte{0x84, 0x50}, make([]byte, 16)...), 0x61, 'x', 0x01, 0x80)},
		{"invalid UTF-8 collection", opWithCollection([]byte{0xff})},
		{"a row encoding", validRowEncodings(t)[1]},
		{"oversized", make([]byte, 64<<20+1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tx, err := crdt.DecodeTx(tt.b); !errors.Is(err, crdt.ErrDecode) || tx != nil {
				t.Fatalf("DecodeTx = %v, %v; want nil, ErrDecode", tx, err)
			}
		})
	}
}

func TestDecodeRow_Bad(t *testing.T) {
	valid := validRowEncodings(t)
	last := valid[len(valid)-1]
	site := bytes.Repeat([]byte{0xAB}, 16)
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	tests := []struct {
		name string
		b    []byte
	}{
		{"nil", nil},
		{"empty", []byte{}},
		{"format 0", []byte{0x00, 0x01, 0x00, 0x00}},
		{"format 3", []byte{0x03, 0x01, 0x00, 0x00}},
		{"no CL", []byte{0x01}},
		{"CL varint overflows 64 bits", cat([]byte{0x01}, bytes.Repeat([]byte{0xff}, 10), []byte{0x01, 0x00, 0x00})},
		{"CL varint unterminated", []byte{0x01, 0x80}},
		{"site table claims more than is left", []byte{0x01, 0x01, 0x02, 0xAB}},
		{"site table claims 2^63", cat([]byte{0x01, 0x01}, binaryUvarint(1<<63), site)},
		{"fields claim 2^32", cat([]byte{0x01, 0x01, 0x00}, binaryUvarint(1<<32))},
		{"field of unknown kind", []byte{0x01, 0x01, 0x00, 0x01, 0x01, 'f', 0x09, 0x01, 0x00, 0x00}},
		{"field of kind 0", []byte{0x01, 0x01, 0x00, 0x01, 0x01, 'f', 0x00, 0x01, 0x00, 0x00}},
		{"site index out of range", []byte{0x01, 0x01, 0x00, 0x01, 0x01, 'f', byte(crdt.KindRegister), 0x01, 0x01, 0x00, 0x05, 0x00, 0x00}},
		{"site index out of range in a counter", cat([]byte{0x01, 0x01, 0x01}, site, []byte{0x01, 0x01, 'n', byte(crdt.KindCounter), 0x01, 0x01, 0x01, 0x05, 0x00})},
		{"value longer than input", []byte{0x01, 0x01, 0x00, 0x01, 0x01, 'f', byte(crdt.KindSet), 0x01, 0x01, 0x7f, 'x'}},
		{"name longer than input", []byte{0x01, 0x01, 0x00, 0x01, 0x7f, 'f'}},
		{"trailing byte", cat(last, []byte{0x00})},
		{"a tx encoding", validTxEncodings(t)[0]},
		{"oversized", make([]byte, 64<<20+1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if r, err := crdt.DecodeRow(tt.b); !errors.Is(err, crdt.ErrDecode) || r != nil {
				t.Fatalf("DecodeRow = %+v, %v; want nil, ErrDecode", r, err)
			}
		})
	}
}

func binaryUvarint(v uint64) []byte { return binary.AppendUvarint(nil, v) }

// TestDecodeRow_DoesNotAlias: the decoded row does not point into the
// caller's buffer, which a store reuses.
func TestDecodeRow_DoesNotAlias(t *testing.T) {
	valid := validRowEncodings(t)
	buf := bytes.Clone(valid[len(valid)-1])
	r, err := crdt.DecodeRow(buf)
	if err != nil {
		t.Fatal(err)
	}
	want := crdt.EncodeRow(r)
	for i := range buf {
		buf[i] = 0xEE
	}
	if !bytes.Equal(crdt.EncodeRow(r), want) {
		t.Fatal("overwriting the input buffer changed the decoded row")
	}
}

// opWithCollection encodes a tx with one op whose collection is the given
// raw bytes as a CBOR text string.
func opWithCollection(coll []byte) []byte {
	enc := crdt.EncodeTx(&crdt.Tx{Ops: []crdt.Op{{Type: crdt.OpRevive, Collection: "@", CL: 1}}})
	i := bytes.IndexByte(enc, '@')
	out := append([]byte{}, enc[:i-1]...)
	out = append(out, 0x60|byte(len(coll)))
	out = append(out, coll...)
	return append(out, enc[i+1:]...)
}

// TestDecode_Truncated: every strict prefix of a valid encoding is refused.
func TestDecode_Truncated(t *testing.T) {
	for _, enc := range validTxEncodings(t) {
		for n := range len(enc) {
			if tx, err := crdt.DecodeTx(enc[:n]); !errors.Is(err, crdt.ErrDecode) {
				t.Fatalf("DecodeTx of %d of %d bytes = %v, %v; want ErrDecode", n, len(enc), tx, err)
			}
		}
	}
	for _, enc := range validRowEncodings(t) {
		for n := range len(enc) {
			if r, err := crdt.DecodeRow(enc[:n]); !errors.Is(err, crdt.ErrDecode) {
				t.Fatalf("DecodeRow of %d of %d bytes = %v, %v; want ErrDecode", n, len(enc), r, err)
			}
		}
	}
}

// TestDecodeTx_MalformedOp: well-formed CBOR carrying a transaction or op
// no writer produces is refused with ErrMalformedOp.
func TestDecodeTx_MalformedOp(t *testing.T) {
	for _, tx := range []*crdt.Tx{
		{Seq: 1},      // no site
		{Site: siteA}, // seq 0
		{},            // neither
	} {
		if got, err := crdt.DecodeTx(crdt.EncodeTx(tx)); !errors.Is(err, crdt.ErrMalformedOp) || got != nil {
			t.Errorf("DecodeTx(site %v seq %d) = %v, %v; want ErrMalformedOp", tx.Site, tx.Seq, got, err)
		}
	}
	for _, op := range []crdt.Op{
		{Type: crdt.OpDelete, CL: 3},
		{Type: crdt.OpRevive, CL: 2},
		{Type: crdt.OpSet, Kind: crdt.KindRegister, CL: 2, Field: "f"},
		{Type: crdt.OpIncrement, Kind: crdt.KindRegister, CL: 1, Field: "f"},
		{Type: crdt.OpAdd, Kind: crdt.KindSet, CL: 1},
		{Type: 99, Kind: crdt.KindSet, CL: 1, Field: "f"},
	} {
		enc := crdt.EncodeTx(&crdt.Tx{Site: siteA, Seq: 1, Ops: []crdt.Op{{Type: crdt.OpRevive, CL: 1}, op}})
		if tx, err := crdt.DecodeTx(enc); !errors.Is(err, crdt.ErrMalformedOp) || tx != nil {
			t.Errorf("DecodeTx(%s CL %d) = %v, %v; want ErrMalformedOp", op.Type, op.CL, tx, err)
		}
	}
}

func FuzzDecodeTx(f *testing.F) {
	for _, enc := range validTxEncodings(f) {
		f.Add(enc)
		f.Add(enc[:len(enc)/2])
	}
	for _, junk := range [][]byte{nil, {0xff}, {0x9f, 0xff}, {0x84, 0x50}, bytes.Repeat([]byte{0x81}, 40), []byte(`{"site":1}`), crdt.EncodeTx(&crdt.Tx{})} {
		f.Add(junk)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		tx, err := crdt.DecodeTx(b)
		if err != nil {
			if tx != nil || !(errors.Is(err, crdt.ErrDecode) || errors.Is(err, crdt.ErrMalformedOp)) {
				t.Fatalf("DecodeTx = %v, %v; want nil and ErrDecode or ErrMalformedOp", tx, err)
			}
			return
		}
		enc := crdt.EncodeTx(tx)
		again, err := crdt.DecodeTx(enc)
		if err != nil {
			t.Fatalf("re-decoding a decoded tx: %v", err)
		}
		if !bytes.Equal(crdt.EncodeTx(again), enc) {
			t.Fatal("encoding is not stable")
		}
		// A decoded transaction applies (it passed validation), and
		// applying it twice is the same as once.
		var s crdt.State
		if _, err := s.Apply(tx); err != nil {
			t.Fatalf("Apply of a decoded tx: %v", err)
		}
		h := s.Hash()
		if _, err := s.Apply(again); err != nil || s.Hash() != h {
			t.Fatalf("re-applying changed the state (err %v)", err)
		}
	})
}

func FuzzDecodeRow(f *testing.F) {
	for _, enc := range validRowEncodings(f) {
		f.Add(enc)
		f.Add(enc[:len(enc)/2])
	}
	for _, junk := range [][]byte{nil, {0xff}, {0x01}, {0x01, 0x01, 0x00, 0x00}, {0x01, 0x01, 0x00, 0x01, 0x01, 'f', 0x03, 0x01, 0x01, 0x01, 'x', 0x01, 0x00, 0x01, 0x00, 0x00}, bytes.Repeat([]byte{0x81}, 40)} {
		f.Add(junk)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := crdt.DecodeRow(b)
		if err != nil {
			if r != nil || !errors.Is(err, crdt.ErrDecode) {
				t.Fatalf("DecodeRow = %v, %v; want nil, ErrDecode", r, err)
			}
			return
		}
		enc := crdt.EncodeRow(r)
		again, err := crdt.DecodeRow(enc)
		if err != nil {
			t.Fatalf("re-decoding a decoded row: %v", err)
		}
		if !bytes.Equal(crdt.EncodeRow(again), enc) || !bytes.Equal(crdt.EncodeRow(r.Clone()), enc) {
			t.Fatal("encoding is not stable")
		}
		// Whatever came off the disk, merging and hashing do not panic.
		j := r.Join(*again)
		h := crdt.NewHasher()
		h.Add(keyR0, &j)
		h.Sum()
	})
}

// TestDecodeTx_RejectsMalformedContext: an op's causal context is sorted by
// site with one dot per site; everything that reads it (Covers, Add, Join)
// relies on that. A context off the wire that is not is malformed input
// and must be refused (consistency rule 7), not merged: merged, it breaks
// the state's own context (duplicate sites, so Covers answers wrongly and
// replicas can diverge).
func TestDecodeTx_RejectsMalformedContext(t *testing.T) {
	a := &node{site: siteA}
	a.write(t, ts(10), setTitle(keyR0, `"a"`))
	for name, ctx := range map[string]crdt.Context{
		"unsorted":       {{Site: siteB, Time: ts(5)}, {Site: siteA, Time: ts(5)}},
		"duplicate site": {{Site: siteA, Time: ts(5)}, {Site: siteA, Time: ts(10)}},
	} {
		t.Run(name, func(t *testing.T) {
			tx := &crdt.Tx{Site: siteC, Seq: 1, Time: ts(30), Ops: []crdt.Op{{
				Type: crdt.OpSet, Kind: crdt.KindRegister, Collection: keyR0.Collection, Row: keyR0.Row,
				Field: "title", CL: 1, Value: []byte(`"c"`), Context: ctx,
			}}}
			_, decErr := crdt.DecodeTx(crdt.EncodeTx(tx))
			s := stateOf(t, a.txs...)
			_, applyErr := s.Apply(tx)
			if errors.Is(decErr, crdt.ErrMalformedOp) && errors.Is(applyErr, crdt.ErrMalformedOp) {
				return
			}
			f, _ := s.Row(keyR0).Field("title")
			t.Errorf("DecodeTx = %v, State.Apply = %v; want ErrMalformedOp from both.\nMerged, the register became %s",
				decErr, applyErr, showRegister(f.Register))
		})
	}
}

// A stored row whose sorted invariants are broken (disk corruption, a bug)
// must fail to decode rather than make lookups answer wrongly.
func TestDecodeRow_RejectsUnsorted(t *testing.T) {
	a, b := crdt.SiteID{1}, crdt.SiteID{2}
	d1 := crdt.Dot{Site: a, Time: 5}
	d2 := crdt.Dot{Site: b, Time: 7}
	rows := map[string]*crdt.Row{
		"fields": {CL: 1, Fields: []crdt.Field{{Name: "b", Kind: crdt.KindCounter, CL: 1}, {Name: "a", Kind: crdt.KindCounter, CL: 1}}},
		"entries": {CL: 1, Fields: []crdt.Field{{Name: "a", Kind: crdt.KindRegister, CL: 1,
			Register: crdt.Register{Entries: []crdt.Entry{{Dot: d2}, {Dot: d1}}}}}},
		"context": {CL: 1, Fields: []crdt.Field{{Name: "a", Kind: crdt.KindRegister, CL: 1,
			Register: crdt.Register{Context: crdt.Context{d2, d1}}}}},
		"parts": {CL: 1, Fields: []crdt.Field{{Name: "a", Kind: crdt.KindCounter, CL: 1,
			Counter: crdt.Counter{Parts: []crdt.CounterPart{{Site: b}, {Site: a}}}}}},
		"members": {CL: 1, Fields: []crdt.Field{{Name: "a", Kind: crdt.KindSet, CL: 1,
			Set: crdt.Set{Members: []crdt.Member{{Value: []byte("2")}, {Value: []byte("1")}}}}}},
		"adds": {CL: 1, Fields: []crdt.Field{{Name: "a", Kind: crdt.KindSet, CL: 1,
			Set: crdt.Set{Members: []crdt.Member{{Value: []byte("1"), Adds: []crdt.Dot{d2, d1}}}}}}},
	}
	for name, r := range rows {
		if _, err := crdt.DecodeRow(crdt.EncodeRow(r)); !errors.Is(err, crdt.ErrDecode) {
			t.Errorf("%s out of order: DecodeRow error %v, want ErrDecode", name, err)
		}
	}
}
