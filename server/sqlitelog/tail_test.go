package sqlitelog

import (
	"fmt"
	"testing"

	"github.com/unosync/uno/crdt"
)

// The entries kept in memory stay within their bounds in bytes and
// tenants, and what is kept reads back exactly.
func TestTails_Bounds(t *testing.T) {
	const maxBytes, maxTenants = 64 << 10, 4
	c := newTails(maxBytes, maxTenants)
	heads := map[string]uint64{}
	for i := range 2000 {
		tenant := fmt.Sprint("t", i%7)
		seq := heads[tenant] + 1
		tx := crdt.Tx{Site: crdt.SiteID{1}, Seq: seq, Time: crdt.Timestamp(seq), Ops: []crdt.Op{
			{Type: crdt.OpSet, Kind: crdt.KindRegister, Collection: "c", Row: "r", Field: "f", CL: 1, Value: fmt.Appendf(nil, "%0*d", 1+i%300, i)}}}
		c.add(tenant, []crdt.Tx{tx}, [][]byte{crdt.EncodeTx(&tx)}, []uint64{seq}, seq)
		heads[tenant] = seq
		if b, n := c.size(); b > maxBytes || n > maxTenants {
			t.Fatalf("after %d appends: %d bytes of %d tenants, bounds %d and %d", i+1, b, n, maxBytes, maxTenants)
		}
	}
	for tenant, head := range heads {
		h, ok := c.head(tenant)
		if ok && h != head {
			t.Fatalf("%s: head %d, want %d", tenant, h, head)
		}
		chs, ok := c.read(tenant, head-1, 10, 0)
		if ok && (len(chs) != 1 || chs[0].Seq != head) {
			t.Fatalf("%s: newest entry read as %v", tenant, chs)
		}
	}
	c.forget("t6")
	if _, ok := c.head("t6"); ok {
		t.Fatal("a forgotten tenant's head is still known")
	}
}
