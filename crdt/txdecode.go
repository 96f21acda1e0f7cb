package crdt

import "github.com/unosync/uno/internal/cborparse"

// ParseTx decodes the CBOR encoding of a transaction at the start of b
// without reflection and returns it with the number of bytes it took. It
// takes only the plain encodings EncodeTx and the sync codec write (see
// package cborparse): for anything else, or for input that is not a
// transaction, ok is false, and the caller decodes with the reflecting
// decoder, which gives the same transaction or the error. Where ok is
// true the result is the one that decoder gives: a fuzz test holds the
// two together. It does not validate the ops (see Tx.Validate).
func ParseTx(b []byte) (tx Tx, n int, ok bool) {
	p := cborparse.Parser{B: b}
	if !parseTx(&p, &tx) {
		return Tx{}, 0, false
	}
	return tx, p.I, true
}

// A site ID is a 16-byte string (SiteID.UnmarshalCBOR takes nothing else).
func parseSite(p *cborparse.Parser, s *SiteID) bool {
	if len(p.B)-p.I < 17 || p.B[p.I] != 0x50 {
		return false
	}
	return p.Fixed(s[:])
}

// parseDots reads a Context or Tags: [site, time] pairs, or null.
func parseDots(p *cborparse.Parser) ([]Dot, bool) {
	n, null, ok := p.Count(19, maxDecodeArray) // a pair takes 1 + 17 + 1 bytes at least
	if !ok || null {
		return nil, ok
	}
	ds := make([]Dot, n)
	for i := range ds {
		if !p.Array(2) || !parseSite(p, &ds[i].Site) {
			return nil, false
		}
		t, ok := p.Uint()
		if !ok {
			return nil, false
		}
		ds[i].Time = Timestamp(t)
	}
	return ds, true
}

func parseOp(p *cborparse.Parser, o *Op) bool {
	if !p.Array(11) {
		return false
	}
	t, ok1 := p.Uint8()
	k, ok2 := p.Uint8()
	if !ok1 || !ok2 {
		return false
	}
	o.Type, o.Kind = OpType(t), Kind(k)
	var ok bool
	if o.Collection, ok = p.Text(); !ok {
		return false
	}
	if o.Row, ok = p.Text(); !ok {
		return false
	}
	if o.Field, ok = p.Text(); !ok {
		return false
	}
	if o.CL, ok = p.Uint(); !ok {
		return false
	}
	if o.Value, ok = p.Bytes(); !ok {
		return false
	}
	if o.Context, ok = parseDots(p); !ok {
		return false
	}
	if o.P, ok = p.Uint(); !ok {
		return false
	}
	if o.N, ok = p.Uint(); !ok {
		return false
	}
	o.Tags, ok = parseDots(p)
	return ok
}

func parseTx(p *cborparse.Parser, tx *Tx) bool {
	if !p.Array(4) || !parseSite(p, &tx.Site) {
		return false
	}
	seq, ok1 := p.Uint()
	t, ok2 := p.Uint()
	if !ok1 || !ok2 {
		return false
	}
	tx.Seq, tx.Time = seq, Timestamp(t)
	n, null, ok := p.Count(12, maxDecodeArray) // an op takes 12 bytes at least
	if !ok {
		return false
	}
	if !null {
		tx.Ops = make([]Op, n)
		for i := range tx.Ops {
			if !parseOp(p, &tx.Ops[i]) {
				return false
			}
		}
	}
	return true
}
