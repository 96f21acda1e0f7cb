package crdttest

import (
	"crypto/sha256"
	"encoding/binary"

	"github.com/unosync/uno/crdt"
)

// EmptyChange returns an Automerge change with no operations by site (its
// actor), sequence number seq, depending on deps, built as Automerge
// writes one (automerge-go's Commit with AllowEmpty at time 0 gives the
// same bytes), and its hash.
func EmptyChange(site crdt.SiteID, seq uint64, deps ...crdt.ChangeHash) ([]byte, crdt.ChangeHash) {
	var c []byte
	c = binary.AppendUvarint(c, uint64(len(deps)))
	for _, d := range deps {
		c = append(c, d[:]...)
	}
	c = binary.AppendUvarint(c, uint64(len(site)))
	c = append(c, site[:]...)
	c = binary.AppendUvarint(c, seq)
	c = append(c, 1, 0, 0, 0, 0) // start op, time, message, other actors, columns
	body := append([]byte{1}, binary.AppendUvarint(nil, uint64(len(c)))...)
	body = append(body, c...)
	h := crdt.ChangeHash(sha256.Sum256(body))
	out := append([]byte{0x85, 0x6f, 0x4a, 0x83}, h[:4]...)
	return append(out, body...), h
}
