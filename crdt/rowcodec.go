package crdt

import (
	"encoding/binary"
	"fmt"
)

// Row states are stored once per row and rewritten on every change, so
// they have a compact binary encoding of their own rather than CBOR: the
// 16-byte site IDs, repeated in every dot, are written once in a table
// and referred to by index.
//
//	row      = version:byte(1) cl:uvarint nsites:uvarint site[16]... nfields:uvarint field...
//	field    = name:bytes kind:byte cl:uvarint body
//	register = nentries:uvarint (dot value:bytes)... nctx:uvarint dot...
//	counter  = nparts:uvarint (site:uvarint p:uvarint n:uvarint)...
//	set      = nmembers:uvarint (value:bytes nadds:uvarint dot... nremoves:uvarint dot...)...
//	doc      = nchunks:uvarint chunk:bytes... nclock:uvarint (site:uvarint seq:uvarint)...
//	           nheads:uvarint (hash[32] site:uvarint seq:uvarint)...
//	dot      = site:uvarint time:uvarint
//	bytes    = len:uvarint byte...
//
// Sites are numbered in order of first use while encoding, which is
// deterministic, so equal rows have equal encodings. A doc's chunks are a
// representation (see [DocState]): the canonical encoding the state hash is
// built from leaves them out.
//
// Format 1 stored doc fields as registers of opaque bytes; they decode as
// empty documents.
const rowFormat = 2

type rowEncoder struct {
	buf   []byte
	sites map[SiteID]uint64
	order []SiteID
}

func (e *rowEncoder) site(s SiteID) uint64 {
	if i, ok := e.sites[s]; ok {
		return i
	}
	i := uint64(len(e.order))
	e.sites[s] = i
	e.order = append(e.order, s)
	return i
}

func (e *rowEncoder) uvarint(v uint64) { e.buf = binary.AppendUvarint(e.buf, v) }
func (e *rowEncoder) bytes(b []byte)   { e.uvarint(uint64(len(b))); e.buf = append(e.buf, b...) }
func (e *rowEncoder) dot(d Dot)        { e.uvarint(e.site(d.Site)); e.uvarint(uint64(d.Time)) }

func (e *rowEncoder) dots(ds []Dot) {
	e.uvarint(uint64(len(ds)))
	for _, d := range ds {
		e.dot(d)
	}
}

// EncodeRow returns the canonical encoding of a row state. Equal rows have
// equal encodings; the state hash is built from them.
func EncodeRow(r *Row) []byte { return encodeRow(r, false) }

// EncodeRowSplit returns a row's encoding without its doc fields' chunks
// (the canonical encoding: DecodeRow reads it back with the chunks left
// out), and the length EncodeRow would return. A store that keeps a
// document's chunks apart, appending a change instead of rewriting the
// document, stores the first and checks the second against the row size
// limit.
func EncodeRowSplit(r *Row) (split []byte, full int) {
	split = encodeRow(r, true)
	full = len(split)
	for i := range r.Fields {
		if d := &r.Fields[i].Doc; r.Fields[i].Kind == KindDoc && len(d.Chunks) > 0 {
			full += uvarintLen(uint64(len(d.Chunks))) - 1
			for _, c := range d.Chunks {
				full += uvarintLen(uint64(len(c))) + len(c)
			}
		}
	}
	return split, full
}

func uvarintLen(v uint64) int {
	n := 1
	for ; v >= 0x80; v >>= 7 {
		n++
	}
	return n
}

func encodeRow(r *Row, canonical bool) []byte {
	// The body is encoded first to learn the site table, then prefixed.
	e := rowEncoder{buf: make([]byte, 0, 64+48*len(r.Fields)), sites: map[SiteID]uint64{}}
	e.uvarint(uint64(len(r.Fields)))
	for i := range r.Fields {
		f := &r.Fields[i]
		e.bytes([]byte(f.Name))
		e.buf = append(e.buf, byte(f.Kind))
		e.uvarint(f.CL)
		switch f.Kind {
		case KindCounter:
			e.uvarint(uint64(len(f.Counter.Parts)))
			for _, p := range f.Counter.Parts {
				e.uvarint(e.site(p.Site))
				e.uvarint(p.P)
				e.uvarint(p.N)
			}
		case KindSet:
			e.uvarint(uint64(len(f.Set.Members)))
			for _, m := range f.Set.Members {
				e.bytes(m.Value)
				e.dots(m.Adds)
				e.dots(m.Removes)
			}
		case KindDoc:
			if canonical {
				e.uvarint(0)
			} else {
				e.uvarint(uint64(len(f.Doc.Chunks)))
				for _, c := range f.Doc.Chunks {
					e.bytes(c)
				}
			}
			e.uvarint(uint64(len(f.Doc.Clock)))
			for _, c := range f.Doc.Clock {
				e.uvarint(e.site(c.Site))
				e.uvarint(c.Seq)
			}
			e.uvarint(uint64(len(f.Doc.Heads)))
			for _, h := range f.Doc.Heads {
				e.buf = append(e.buf, h.Hash[:]...)
				e.uvarint(e.site(h.Site))
				e.uvarint(h.Seq)
			}
		default:
			e.uvarint(uint64(len(f.Register.Entries)))
			for _, en := range f.Register.Entries {
				e.dot(en.Dot)
				e.bytes(en.Value)
			}
			e.dots(f.Register.Context)
		}
	}
	out := make([]byte, 0, 1+2*binary.MaxVarintLen64+16*len(e.order)+len(e.buf))
	out = append(out, rowFormat)
	out = binary.AppendUvarint(out, r.CL)
	out = binary.AppendUvarint(out, uint64(len(e.order)))
	for _, s := range e.order {
		out = append(out, s[:]...)
	}
	return append(out, e.buf...)
}

type rowDecoder struct {
	b     []byte
	sites []SiteID
	err   error
}

func (d *rowDecoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: row: "+format, append([]any{ErrDecode}, args...)...)
	}
}

func (d *rowDecoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

// count reads a length and checks that at least min bytes per element remain,
// so hostile input cannot make the decoder allocate beyond its size.
func (d *rowDecoder) count(min int) int {
	n := d.uvarint()
	if d.err == nil && n > uint64(len(d.b)/min) {
		d.fail("count %d exceeds the %d bytes left", n, len(d.b))
		return 0
	}
	return int(n)
}

func (d *rowDecoder) bytes() []byte {
	n := d.count(1)
	if d.err != nil {
		return nil
	}
	out := d.b[:n:n]
	d.b = d.b[n:]
	return out
}

func (d *rowDecoder) byte1() byte {
	if d.err != nil {
		return 0
	}
	if len(d.b) == 0 {
		d.fail("truncated")
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *rowDecoder) site() SiteID {
	i := d.uvarint()
	if d.err == nil && i >= uint64(len(d.sites)) {
		d.fail("site index %d of %d", i, len(d.sites))
		return SiteID{}
	}
	if d.err != nil {
		return SiteID{}
	}
	return d.sites[i]
}

func (d *rowDecoder) dot() Dot {
	s := d.site()
	return Dot{Site: s, Time: Timestamp(d.uvarint())}
}

func (d *rowDecoder) dots() []Dot {
	n := d.count(2)
	out := make([]Dot, 0, n)
	for range n {
		out = append(out, d.dot())
	}
	return out
}

func (d *rowDecoder) register() Register {
	n := d.count(3)
	var r Register
	r.Entries = make([]Entry, 0, n)
	for range n {
		dt := d.dot()
		r.Entries = append(r.Entries, Entry{Dot: dt, Value: d.bytes()})
	}
	r.Context = d.dots()
	return r
}

// DecodeRow decodes a row state written by [EncodeRow]. Malformed input
// returns an error wrapping ErrDecode; it never panics.
func DecodeRow(b []byte) (*Row, error) {
	if len(b) > maxDecodeBytes {
		return nil, fmt.Errorf("%w: row of %d bytes exceeds %d", ErrDecode, len(b), maxDecodeBytes)
	}
	// Decoded values point into one private copy of b.
	d := rowDecoder{b: append([]byte(nil), b...)}
	format := d.byte1()
	if d.err == nil && format != rowFormat && format != 1 {
		return nil, fmt.Errorf("%w: row format %d, want %d", ErrDecode, format, rowFormat)
	}
	r := &Row{CL: d.uvarint()}
	nsites := d.count(16)
	d.sites = make([]SiteID, nsites)
	for i := range d.sites {
		copy(d.sites[i][:], d.b[:16])
		d.b = d.b[16:]
	}
	nfields := d.count(3)
	r.Fields = make([]Field, 0, nfields)
	for range nfields {
		f := Field{Name: string(d.bytes()), Kind: Kind(d.byte1()), CL: d.uvarint()}
		switch f.Kind {
		case KindCounter:
			n := d.count(3)
			f.Counter.Parts = make([]CounterPart, 0, n)
			for range n {
				s := d.site()
				f.Counter.Parts = append(f.Counter.Parts, CounterPart{Site: s, P: d.uvarint(), N: d.uvarint()})
			}
		case KindSet:
			n := d.count(3)
			f.Set.Members = make([]Member, 0, n)
			for range n {
				v := d.bytes()
				f.Set.Members = append(f.Set.Members, Member{Value: v, Adds: d.dots(), Removes: d.dots()})
			}
		case KindDoc:
			if format == 1 {
				d.register() // opaque bytes from before doc fields merged: dropped
				break
			}
			n := d.count(1)
			f.Doc.Chunks = make([][]byte, 0, n)
			for range n {
				f.Doc.Chunks = append(f.Doc.Chunks, d.bytes())
			}
			n = d.count(2)
			for range n {
				s := d.site()
				f.Doc.Clock = append(f.Doc.Clock, DocClock{Site: s, Seq: d.uvarint()})
			}
			n = d.count(34)
			for range n {
				var h DocHead
				if len(d.b) < 32 {
					d.fail("truncated head")
					break
				}
				copy(h.Hash[:], d.b[:32])
				d.b = d.b[32:]
				h.Site = d.site()
				h.Seq = d.uvarint()
				f.Doc.Heads = append(f.Doc.Heads, h)
			}
		case KindRegister:
			f.Register = d.register()
		default:
			d.fail("field %q: unknown kind %d", f.Name, f.Kind)
		}
		if d.err != nil {
			return nil, d.err
		}
		if n := len(r.Fields); n > 0 && r.Fields[n-1].Name >= f.Name {
			return nil, fmt.Errorf("%w: row: fields out of order at %q", ErrDecode, f.Name)
		}
		if err := f.checkOrder(); err != nil {
			return nil, err
		}
		r.Fields = append(r.Fields, f)
	}
	if d.err != nil {
		return nil, d.err
	}
	if len(d.b) != 0 {
		return nil, fmt.Errorf("%w: row: %d trailing bytes", ErrDecode, len(d.b))
	}
	return r, nil
}

// checkOrder verifies the sorted invariants that lookups rely on, so a
// corrupt stored row fails loudly instead of answering wrongly.
func (f *Field) checkOrder() error {
	bad := func(what string) error {
		return fmt.Errorf("%w: row: field %q: %s out of order", ErrDecode, f.Name, what)
	}
	for i := 1; i < len(f.Register.Entries); i++ {
		if f.Register.Entries[i-1].Dot.Compare(f.Register.Entries[i].Dot) >= 0 {
			return bad("entries")
		}
	}
	for i := 1; i < len(f.Register.Context); i++ {
		if f.Register.Context[i-1].Site.Compare(f.Register.Context[i].Site) >= 0 {
			return bad("context")
		}
	}
	for i := 1; i < len(f.Doc.Clock); i++ {
		if f.Doc.Clock[i-1].Site.Compare(f.Doc.Clock[i].Site) >= 0 {
			return bad("doc clock")
		}
	}
	for i := 1; i < len(f.Doc.Heads); i++ {
		if f.Doc.Heads[i-1].Hash.Compare(f.Doc.Heads[i].Hash) >= 0 {
			return bad("doc heads")
		}
	}
	for i := 1; i < len(f.Counter.Parts); i++ {
		if f.Counter.Parts[i-1].Site.Compare(f.Counter.Parts[i].Site) >= 0 {
			return bad("counter parts")
		}
	}
	for i, m := range f.Set.Members {
		if i > 0 && string(f.Set.Members[i-1].Value) >= string(m.Value) {
			return bad("set members")
		}
		for j := 1; j < len(m.Adds); j++ {
			if m.Adds[j-1].Compare(m.Adds[j]) >= 0 {
				return bad("set adds")
			}
		}
		for j := 1; j < len(m.Removes); j++ {
			if m.Removes[j-1].Compare(m.Removes[j]) >= 0 {
				return bad("set removes")
			}
		}
	}
	return nil
}
