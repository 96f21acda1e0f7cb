package sqlitelog

import (
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
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

// Finding 6: 150 appends of 700 KB kept a gigabyte of entries in memory
// (4,096 per tenant, no byte bound). The log now holds at most its
// CacheBytes (64 MiB by default) of them, whatever they weigh.
func TestLog_LargeEntriesStayBounded(t *testing.T) {
	ctx := t.Context()
	l, err := Open(ctx, filepath.Join(t.TempDir(), "log.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	value := []byte(`"` + strings.Repeat("x", 700<<10) + `"`)
	for i := range 150 {
		tx := crdt.Tx{Site: crdt.SiteID{1}, Seq: uint64(i + 1), Time: crdt.Timestamp(i + 1), Ops: []crdt.Op{
			{Type: crdt.OpSet, Kind: crdt.KindRegister, Collection: "c", Row: fmt.Sprint("r", i), Field: "f", CL: 1, Value: value}}}
		if _, err := l.Append(ctx, "t1", []crdt.Tx{tx}); err != nil {
			t.Fatal(err)
		}
	}
	held, _ := l.tails.size()
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	t.Logf("entries held in memory: %d MiB; heap in use: %d MiB", held>>20, ms.HeapInuse>>20)
	if held > 64<<20 {
		t.Fatalf("the log holds %d bytes of entries, bound 64 MiB", held)
	}
	if ms.HeapInuse > 128<<20 {
		t.Fatalf("heap in use %d MiB after 105 MB of appends", ms.HeapInuse>>20)
	}
}
