package crdt

import (
	"bytes"
	"compress/flate"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
)

// Automerge stores documents and changes as chunks:
//
//	chunk   = magic:0x856f4a83 checksum:[4] type:byte length:uleb contents
//	type    = 0 document | 1 change | 2 change, contents DEFLATE-compressed
//	change  = ndeps:uleb hash[32]... actor:bytes seq:uleb start:uleb time:sleb ...
//
// A change's hash is the SHA-256 of type 1, the length and the uncompressed
// contents; the checksum is its first four bytes. This file reads only the
// headers: enough to identify a change, its author and its dependencies
// without the Automerge library, so doc fields merge, hash and validate in
// every build. Reading what a change does is the library's job (the
// platform files).

var amMagic = [4]byte{0x85, 0x6f, 0x4a, 0x83}

const (
	amDocument         = 0
	amChange           = 1
	amChangeCompressed = 2
)

// ChangeHash is the SHA-256 hash that identifies an Automerge change.
type ChangeHash [32]byte

func (h ChangeHash) String() string { return hex.EncodeToString(h[:]) }

// Compare orders hashes bytewise.
func (h ChangeHash) Compare(o ChangeHash) int { return bytes.Compare(h[:], o[:]) }

// amChangeHeader is what a change chunk says about itself.
type amChangeHeader struct {
	Raw   []byte // the whole chunk as received
	Hash  ChangeHash
	Deps  []ChangeHash
	Actor []byte
	Seq   uint64
	// StartOp is the counter of the change's first operation: one more
	// than the highest its author had seen, so it grows with the
	// document's operations.
	StartOp uint64
}

// splitChanges parses b as one or more concatenated change chunks, the
// value of an [OpChange]. maxInflate bounds the uncompressed size of a
// compressed change. Errors wrap ErrInvalidValue: the bytes are not what
// an Automerge writer produces.
func splitChanges(b []byte, maxInflate int) ([]amChangeHeader, error) {
	if len(b) == 0 {
		return nil, fmt.Errorf("%w: doc change without Automerge changes", ErrInvalidValue)
	}
	var out []amChangeHeader
	for len(b) > 0 {
		typ, contents, n, err := amChunk(b)
		if err != nil {
			return nil, err
		}
		h := amChangeHeader{Raw: b[:n:n]}
		switch typ {
		case amChange:
		case amChangeCompressed:
			contents, err = amInflate(contents, maxInflate)
			if err != nil {
				return nil, err
			}
		default:
			return nil, fmt.Errorf("%w: Automerge chunk of type %d where a change was expected (send changes, not saved documents)", ErrInvalidValue, typ)
		}
		sum := sha256.New()
		sum.Write([]byte{amChange})
		sum.Write(binary.AppendUvarint(nil, uint64(len(contents))))
		sum.Write(contents)
		sum.Sum(h.Hash[:0])
		if !bytes.Equal(h.Hash[:4], b[4:8]) && typ == amChange {
			return nil, fmt.Errorf("%w: Automerge change checksum mismatch", ErrInvalidValue)
		}
		if err := h.parse(contents); err != nil {
			return nil, err
		}
		out = append(out, h)
		b = b[n:]
	}
	return out, nil
}

// amChunk splits off the first chunk of b: its type, contents and length.
func amChunk(b []byte) (typ byte, contents []byte, n int, err error) {
	if len(b) < 9 || !bytes.Equal(b[:4], amMagic[:]) {
		return 0, nil, 0, fmt.Errorf("%w: not an Automerge chunk (bad magic bytes)", ErrInvalidValue)
	}
	typ = b[8]
	l, m := binary.Uvarint(b[9:])
	if m <= 0 || l > uint64(len(b)-9-m) {
		return 0, nil, 0, fmt.Errorf("%w: truncated Automerge chunk", ErrInvalidValue)
	}
	start := 9 + m
	return typ, b[start : start+int(l)], start + int(l), nil
}

func amInflate(b []byte, max int) ([]byte, error) {
	r := flate.NewReader(bytes.NewReader(b))
	defer r.Close()
	out, err := io.ReadAll(io.LimitReader(r, int64(max)+1))
	if err != nil {
		return nil, fmt.Errorf("%w: compressed Automerge change: %v", ErrInvalidValue, err)
	}
	if len(out) > max {
		return nil, fmt.Errorf("%w: compressed Automerge change inflates beyond %d bytes", ErrInvalidValue, max)
	}
	return out, nil
}

func (h *amChangeHeader) parse(c []byte) error {
	bad := func(what string) error {
		return fmt.Errorf("%w: Automerge change header: %s", ErrInvalidValue, what)
	}
	n, m := binary.Uvarint(c)
	if m <= 0 || n > uint64(len(c)-m)/32 {
		return bad("dependencies")
	}
	c = c[m:]
	h.Deps = make([]ChangeHash, n)
	for i := range h.Deps {
		copy(h.Deps[i][:], c[:32])
		c = c[32:]
	}
	l, m := binary.Uvarint(c)
	if m <= 0 || l > uint64(len(c)-m) {
		return bad("actor")
	}
	h.Actor = c[m : m+int(l)]
	c = c[m+int(l):]
	seq, m := binary.Uvarint(c)
	if m <= 0 || seq == 0 {
		return bad("sequence number")
	}
	h.Seq = seq
	c = c[m:]
	start, m := binary.Uvarint(c)
	if m <= 0 {
		return bad("start op")
	}
	h.StartOp = start
	return nil
}

// changeStartOp reads the start op of an uncompressed change chunk
// without hashing it; ok is false for any other chunk.
// It reads the header as parse does, skipping what parse keeps: it runs
// on every chunk of a document's state after each change to it
// (DocState.maybeCompact).
func changeStartOp(b []byte) (start uint64, ok bool) {
	typ, c, _, err := amChunk(b)
	if err != nil || typ != amChange {
		return 0, false
	}
	deps, m := binary.Uvarint(c)
	if m <= 0 || deps > uint64(len(c)-m)/32 {
		return 0, false
	}
	c = c[m+int(deps)*32:]
	l, m := binary.Uvarint(c)
	if m <= 0 || l > uint64(len(c)-m) {
		return 0, false
	}
	c = c[m+int(l):]
	seq, m := binary.Uvarint(c)
	if m <= 0 || seq == 0 {
		return 0, false
	}
	start, m = binary.Uvarint(c[m:])
	return start, m > 0
}
