package cborparse

import (
	"encoding/binary"
	"unicode/utf8"
)

// Parser reads CBOR items from B, at I. Each method reports false, with I
// left anywhere, for an item it does not take.
type Parser struct {
	B []byte
	I int
}

// CBOR major types.
const (
	MajorUint  = 0
	MajorBytes = 2
	MajorText  = 3
	MajorArray = 4
)

// Null is CBOR's null, which decodes into a nil slice.
const Null = 0xf6

// Head reads an item's head: its major type and argument (a definite
// length or an unsigned integer).
func (p *Parser) Head() (major byte, arg uint64, ok bool) {
	if p.I >= len(p.B) {
		return 0, 0, false
	}
	c := p.B[p.I]
	major, info := c>>5, c&0x1f
	p.I++
	var size int
	switch {
	case info < 24:
		return major, uint64(info), true
	case info == 24:
		size = 1
	case info == 25:
		size = 2
	case info == 26:
		size = 4
	case info == 27:
		size = 8
	default: // indefinite lengths and reserved values
		return 0, 0, false
	}
	if len(p.B)-p.I < size {
		return 0, 0, false
	}
	var buf [8]byte
	copy(buf[8-size:], p.B[p.I:p.I+size])
	p.I += size
	return major, binary.BigEndian.Uint64(buf[:]), true
}

// Uint reads an unsigned integer.
func (p *Parser) Uint() (uint64, bool) {
	major, v, ok := p.Head()
	return v, ok && major == MajorUint
}

// Uint8 reads an unsigned integer that fits a byte.
func (p *Parser) Uint8() (uint8, bool) {
	v, ok := p.Uint()
	return uint8(v), ok && v <= 0xff
}

// Array reads an array head of exactly n elements.
func (p *Parser) Array(n uint64) bool {
	major, v, ok := p.Head()
	return ok && major == MajorArray && v == n
}

// Count reads an array head and returns its length, or reports null (a
// nil slice). Each element takes at least min bytes (min ≥ 1), so a
// length the bytes left cannot hold, or one over max, is refused before
// the caller allocates.
func (p *Parser) Count(min, max int) (n int, null, ok bool) {
	if p.I < len(p.B) && p.B[p.I] == Null {
		p.I++
		return 0, true, true
	}
	major, v, ok := p.Head()
	if !ok || major != MajorArray || v > uint64(len(p.B)-p.I)/uint64(min) || v > uint64(max) {
		return 0, false, false
	}
	return int(v), false, true
}

// span reads the head of a byte or text string and returns its contents.
func (p *Parser) span(want byte) ([]byte, bool) {
	major, v, ok := p.Head()
	if !ok || major != want || v > uint64(len(p.B)-p.I) {
		return nil, false
	}
	s := p.B[p.I : p.I+int(v)]
	p.I += int(v)
	return s, true
}

// Text reads a text string of valid UTF-8.
func (p *Parser) Text() (string, bool) {
	s, ok := p.span(MajorText)
	if !ok || !utf8.Valid(s) {
		return "", false
	}
	return string(s), true
}

// Bytes reads a byte string (a copy, non-nil even when empty) or null
// (nil).
func (p *Parser) Bytes() ([]byte, bool) {
	if p.I < len(p.B) && p.B[p.I] == Null {
		p.I++
		return nil, true
	}
	s, ok := p.span(MajorBytes)
	if !ok {
		return nil, false
	}
	return append([]byte{}, s...), true
}

// Fixed reads a byte string of exactly len(dst) bytes into dst.
func (p *Parser) Fixed(dst []byte) bool {
	s, ok := p.span(MajorBytes)
	if !ok || len(s) != len(dst) {
		return false
	}
	copy(dst, s)
	return true
}

// Done reports whether every byte has been read.
func (p *Parser) Done() bool { return p.I == len(p.B) }
