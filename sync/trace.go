package sync

import (
	"github.com/fxamacker/cbor/v2"

	"github.com/unosync/uno/crdt"
	"github.com/unosync/uno/internal/cborparse"
)

// Push and Change carry an optional trailing Trace element. CBOR arrays
// decoded into toarray structs must have exactly as many elements as the
// struct has fields, so both are encoded without the element when Trace
// is empty (what a version 1 peer sends and decodes) and decoded from
// either length.

type pushV1 struct {
	_   struct{} `cbor:",toarray"`
	Txs []crdt.Tx
}

type pushV2 struct {
	_     struct{} `cbor:",toarray"`
	Txs   []crdt.Tx
	Trace string
}

type pushV3 struct {
	_     struct{} `cbor:",toarray"`
	Txs   []crdt.Tx
	Trace string
	Epoch uint64
}

type changeV1 struct {
	_   struct{} `cbor:",toarray"`
	Seq uint64
	Tx  crdt.Tx
}

type changeV2 struct {
	_     struct{} `cbor:",toarray"`
	Seq   uint64
	Tx    crdt.Tx
	Trace string
}

// MarshalCBOR encodes m, leaving Epoch out when it is 0, and Trace too
// when both are empty.
func (m Push) MarshalCBOR() ([]byte, error) {
	switch {
	case m.Epoch != 0:
		return cbor.Marshal(pushV3{Txs: m.Txs, Trace: m.Trace, Epoch: m.Epoch})
	case m.Trace != "":
		return cbor.Marshal(pushV2{Txs: m.Txs, Trace: m.Trace})
	}
	return cbor.Marshal(pushV1{Txs: m.Txs})
}

// UnmarshalCBOR decodes a Push with or without Trace and Epoch.
func (m *Push) UnmarshalCBOR(b []byte) error {
	switch n, _ := arrayLen(b); n {
	case 1:
		var v pushV1
		if err := cbor.Unmarshal(b, &v); err != nil {
			return err
		}
		*m = Push{Txs: v.Txs}
		return nil
	case 3:
		var v pushV3
		if err := cbor.Unmarshal(b, &v); err != nil {
			return err
		}
		*m = Push{Txs: v.Txs, Trace: v.Trace, Epoch: v.Epoch}
		return nil
	}
	var v pushV2
	if err := cbor.Unmarshal(b, &v); err != nil {
		return err
	}
	*m = Push{Txs: v.Txs, Trace: v.Trace}
	return nil
}

// MarshalCBOR encodes m, leaving Trace out when it is empty.
func (m Change) MarshalCBOR() ([]byte, error) {
	if m.Trace == "" {
		return cbor.Marshal(changeV1{Seq: m.Seq, Tx: m.Tx})
	}
	return cbor.Marshal(changeV2{Seq: m.Seq, Tx: m.Tx, Trace: m.Trace})
}

// UnmarshalCBOR decodes a Change with or without Trace. A client decodes
// one per delivered transaction, so the plain encodings peers write are
// read without reflection (parseChange); anything else goes through the
// reflecting decoder, which gives the same Change or the error.
func (m *Change) UnmarshalCBOR(b []byte) error {
	if c, ok := parseChange(b); ok {
		*m = c
		return nil
	}
	return m.unmarshalReflect(b)
}

// parseChange reads a Change as UnmarshalCBOR would, for the encodings
// package cborparse takes; ok is false for any other.
func parseChange(b []byte) (Change, bool) {
	p := cborparse.Parser{B: b}
	major, n, ok := p.Head()
	if !ok || major != cborparse.MajorArray || n != 2 && n != 3 {
		return Change{}, false
	}
	seq, ok := p.Uint()
	if !ok {
		return Change{}, false
	}
	tx, used, ok := crdt.ParseTx(b[p.I:])
	if !ok {
		return Change{}, false
	}
	p.I += used
	c := Change{Seq: seq, Tx: tx}
	if n == 3 {
		if c.Trace, ok = p.Text(); !ok {
			return Change{}, false
		}
	}
	return c, p.Done()
}

// unmarshalReflect is UnmarshalCBOR through the reflecting decoder.
func (m *Change) unmarshalReflect(b []byte) error {
	if n, ok := arrayLen(b); ok && n == 2 {
		var v changeV1
		if err := cbor.Unmarshal(b, &v); err != nil {
			return err
		}
		*m = Change{Seq: v.Seq, Tx: v.Tx}
		return nil
	}
	var v changeV2
	if err := cbor.Unmarshal(b, &v); err != nil {
		return err
	}
	*m = Change{Seq: v.Seq, Tx: v.Tx, Trace: v.Trace}
	return nil
}

// arrayLen returns the length of the definite-length CBOR array b starts
// with (false if b does not start with one).
func arrayLen(b []byte) (uint64, bool) {
	p := cborparse.Parser{B: b}
	major, n, ok := p.Head()
	return n, ok && major == cborparse.MajorArray
}
