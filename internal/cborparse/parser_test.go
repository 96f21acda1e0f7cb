package cborparse

import "testing"

// TestParser_Refuses: a reader takes only what it reads whole, and never
// a length the bytes left cannot hold.
func TestParser_Refuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		b    []byte
		read func(p *Parser) bool
	}{
		{"empty", nil, func(p *Parser) bool { _, ok := p.Uint(); return ok }},
		{"cut integer", []byte{0x1a, 0, 1}, func(p *Parser) bool { _, ok := p.Uint(); return ok }},
		{"indefinite array", []byte{0x9f, 0xff}, func(p *Parser) bool { _, _, ok := p.Count(1, 10); return ok }},
		{"a count the bytes cannot hold", []byte{0x9a, 0xff, 0xff, 0xff, 0xff, 1, 2}, func(p *Parser) bool { _, _, ok := p.Count(1, 1<<40); return ok }},
		{"a count over max", []byte{0x83, 1, 2, 3}, func(p *Parser) bool { _, _, ok := p.Count(1, 2); return ok }},
		{"a string longer than the bytes", []byte{0x65, 'a'}, func(p *Parser) bool { _, ok := p.Text(); return ok }},
		{"invalid UTF-8", []byte{0x61, 0xff}, func(p *Parser) bool { _, ok := p.Text(); return ok }},
		{"bytes for text", []byte{0x41, 'a'}, func(p *Parser) bool { _, ok := p.Text(); return ok }},
		{"a negative integer", []byte{0x20}, func(p *Parser) bool { _, ok := p.Uint(); return ok }},
		{"a byte over 255", []byte{0x19, 1, 0}, func(p *Parser) bool { _, ok := p.Uint8(); return ok }},
		{"an array of another length", []byte{0x82, 1, 2}, func(p *Parser) bool { return p.Array(3) }},
		{"a fixed string of another length", []byte{0x42, 1, 2}, func(p *Parser) bool { return p.Fixed(make([]byte, 3)) }},
	} {
		if tc.read(&Parser{B: tc.b}) {
			t.Errorf("%s: % x taken", tc.name, tc.b)
		}
	}
}

// TestParser_Reads: what the reflecting decoder gives for each, nil and
// empty kept apart.
func TestParser_Reads(t *testing.T) {
	p := Parser{B: []byte{0x1b, 0, 0, 0, 1, 0, 0, 0, 0, 0x40, 0xf6, 0x63, 'a', 'b', 'c', 0x80, 0xf6}}
	if v, ok := p.Uint(); !ok || v != 1<<32 {
		t.Errorf("Uint = %d, %v", v, ok)
	}
	if b, ok := p.Bytes(); !ok || b == nil || len(b) != 0 {
		t.Errorf("Bytes of an empty string = %#v, %v; want empty, not nil", b, ok)
	}
	if b, ok := p.Bytes(); !ok || b != nil {
		t.Errorf("Bytes of null = %#v, %v; want nil", b, ok)
	}
	if s, ok := p.Text(); !ok || s != "abc" {
		t.Errorf("Text = %q, %v", s, ok)
	}
	if n, null, ok := p.Count(1, 10); !ok || null || n != 0 {
		t.Errorf("Count of [] = %d, %v, %v", n, null, ok)
	}
	if _, null, ok := p.Count(1, 10); !ok || !null {
		t.Errorf("Count of null: null %v, ok %v", null, ok)
	}
	if !p.Done() {
		t.Errorf("%d bytes left", len(p.B)-p.I)
	}
}
