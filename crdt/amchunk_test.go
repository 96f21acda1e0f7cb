package crdt_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/unosync/uno/crdt"
	"github.com/unosync/uno/crdt/crdttest"
)

// emptyChange is crdttest.EmptyChange.
var emptyChange = crdttest.EmptyChange

func TestEmptyChange_AsAutomergeWritesIt(t *testing.T) {
	// Bytes automerge-go wrote for two empty changes by actor 0a00…00 at time 0.
	want1 := []byte("\x85\x6f\x4a\x83\xb8\xe3\x84\x5c\x01\x18\x00\x10\x0a\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x01\x00\x00\x00\x00")
	c1, h1 := emptyChange(siteA, 1)
	if !bytes.Equal(c1, want1) {
		t.Fatalf("emptyChange(siteA, 1) = %x\nwant %x", c1, want1)
	}
	c2, _ := emptyChange(siteA, 2, h1)
	if !bytes.Equal(c2[:8], []byte("\x85\x6f\x4a\x83\x4b\x24\xd3\xdf")) {
		t.Fatalf("emptyChange(siteA, 2) checksum %x, want 4b24d3df", c2[4:8])
	}
}

func docChangeOp(v []byte) crdt.Op {
	return crdt.Op{Type: crdt.OpChange, Kind: crdt.KindDoc, Collection: "todos", Row: "r1", Field: "body", CL: 1, Value: v}
}

func TestDocOps_Malformed(t *testing.T) {
	good, _ := emptyChange(siteA, 1)
	byB, _ := emptyChange(siteB, 1)
	bad := bytes.Clone(good)
	bad[len(bad)-1] ^= 1 // the checksum no longer matches
	tests := []struct {
		name  string
		value []byte
	}{
		{"no changes", nil},
		{"not a chunk", []byte("hello")},
		{"truncated", good[:len(good)-2]},
		{"checksum", bad},
		{"another actor", byB},
		{"trailing bytes", append(bytes.Clone(good), 0x85)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tx := &crdt.Tx{Site: siteA, Seq: 1, Time: ts(1), Ops: []crdt.Op{docChangeOp(tt.value)}}
			if err := crdt.ValidateTx(tx, nil, crdt.Limits{}); !errors.Is(err, crdt.ErrInvalidValue) {
				t.Errorf("ValidateTx = %v, want ErrInvalidValue", err)
			}
			var s crdt.State
			if _, err := s.Apply(tx); err == nil || s.Len() != 0 {
				t.Errorf("State.Apply = %v with %d rows, want an error and no change", err, s.Len())
			}
		})
	}
	tx := &crdt.Tx{Site: siteA, Seq: 1, Time: ts(1), Ops: []crdt.Op{docChangeOp(good)}}
	if err := crdt.ValidateTx(tx, nil, crdt.Limits{}); err != nil {
		t.Errorf("ValidateTx(valid change) = %v", err)
	}
}

// must drops the hash emptyChange returns.
func must(c []byte, _ crdt.ChangeHash) []byte { return c }
