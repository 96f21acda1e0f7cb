package pglog

import (
	"fmt"
	"testing"

	"github.com/unosync/uno/crdt"
	usync "github.com/unosync/uno/sync"
)

// The encodings kept stay within their byte bound; what is kept is handed
// out only for the transaction it was kept for.
func TestEncodings_Bound(t *testing.T) {
	const max = 32 << 10
	c := newEncodings(max)
	tx := func(site byte, seq uint64) crdt.Tx {
		return crdt.Tx{Site: crdt.SiteID{site}, Seq: seq, Time: crdt.Timestamp(seq), Ops: []crdt.Op{
			{Type: crdt.OpSet, Kind: crdt.KindRegister, Collection: "c", Row: "r", Field: "f", CL: 1, Value: fmt.Appendf(nil, "%0*d", 1+int(seq)%500, seq)}}}
	}
	for seq := uint64(1); seq <= 2000; seq++ {
		x := tx(1, seq)
		c.put("t1", seq, &x, crdt.EncodeTx(&x))
		if b, _ := c.size(); b > max {
			t.Fatalf("after %d entries: %d bytes kept, bound %d", seq, b, max)
		}
	}
	newest := tx(1, 2000)
	if encs, ok := c.get("t1", []usync.Change{{Seq: 2000, Tx: newest}}); !ok || string(encs[0]) != string(crdt.EncodeTx(&newest)) {
		t.Fatal("the newest entry is not kept")
	}
	if _, ok := c.get("t1", []usync.Change{{Seq: 1, Tx: tx(1, 1)}}); ok {
		t.Fatal("the oldest entry is still kept")
	}
	other := tx(2, 1) // the tenant's log started again
	if _, ok := c.get("t1", []usync.Change{{Seq: 2000, Tx: other}}); ok {
		t.Fatal("an encoding is handed out for another transaction")
	}
	if _, ok := c.get("t2", []usync.Change{{Seq: 2000, Tx: newest}}); ok {
		t.Fatal("an encoding is handed out for another tenant")
	}
}
