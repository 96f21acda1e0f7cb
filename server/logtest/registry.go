package logtest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/unosync/uno/crdt"
	"github.com/unosync/uno/server"
	usync "github.com/unosync/uno/sync"
	"github.com/unosync/uno/tenancy"
)

// RunRegistry runs the tenant registry suite. open returns a fresh, empty
// registry and the log on the same store, whose data Delete must remove
// and whose entries Export must write; the suite closes both.
func RunRegistry(t *testing.T, open func(t *testing.T) (tenancy.Admin, server.Log)) {
	t.Run("CreateListTenant", func(t *testing.T) { testRegistryCreate(t, open) })
	t.Run("SetLimitsAndSuspend", func(t *testing.T) { testRegistryUpdate(t, open) })
	t.Run("ExportAndDelete", func(t *testing.T) { testRegistryDelete(t, open) })
}

func openRegistry(t *testing.T, open func(t *testing.T) (tenancy.Admin, server.Log)) (tenancy.Admin, server.Log) {
	reg, l := open(t)
	t.Cleanup(func() {
		reg.Close()
		l.Close()
	})
	return reg, l
}

// sameTenant compares everything but CreatedAt.
func sameTenant(a, b tenancy.Tenant) bool {
	a.CreatedAt, b.CreatedAt = time.Time{}, time.Time{}
	return a == b
}

func testRegistryCreate(t *testing.T, open func(t *testing.T) (tenancy.Admin, server.Log)) {
	reg, _ := openRegistry(t, open)
	ctx := context.Background()
	if list, err := reg.List(ctx); err != nil || len(list) != 0 {
		t.Fatalf("List of an empty registry = %v, %v", list, err)
	}
	begin := time.Now()
	acme := tenancy.Tenant{ID: "acme", OpsPerSec: 50, MaxRows: 10, MaxBytes: 1000, RetentionDays: 7}
	for _, tn := range []tenancy.Tenant{{ID: "globex"}, acme, {ID: "Zeta"}} {
		if err := reg.Create(ctx, tn); err != nil {
			t.Fatalf("Create(%s): %v", tn.ID, err)
		}
	}
	for _, c := range []struct {
		tn   tenancy.Tenant
		want error
	}{
		{tenancy.Tenant{ID: "acme"}, tenancy.ErrTenantExists},
		{tenancy.Tenant{ID: ""}, tenancy.ErrInvalidTenant},
		{tenancy.Tenant{ID: strings.Repeat("x", 1000)}, tenancy.ErrInvalidTenant},
		{tenancy.Tenant{ID: "neg", MaxRows: -1}, tenancy.ErrInvalidLimits},
		{tenancy.Tenant{ID: "neg", OpsPerSec: -1}, tenancy.ErrInvalidLimits},
	} {
		if err := reg.Create(ctx, c.tn); !errors.Is(err, c.want) {
			t.Errorf("Create(%.20q): %v, want %v", c.tn.ID, err, c.want)
		}
	}
	list, err := reg.List(ctx)
	if err != nil || len(list) != 3 {
		t.Fatalf("List = %+v, %v; want 3 tenants", list, err)
	}
	// By ID, in byte order.
	for i, want := range []tenancy.Tenant{{ID: "Zeta"}, acme, {ID: "globex"}} {
		if !sameTenant(list[i], want) {
			t.Errorf("List[%d] = %+v, want %+v", i, list[i], want)
		}
		if c := list[i].CreatedAt; c.Before(begin.Add(-time.Hour)) || c.After(time.Now().Add(time.Hour)) {
			t.Errorf("%s created at %v", list[i].ID, c)
		}
	}
	if got, err := reg.Tenant(ctx, "acme"); err != nil || !sameTenant(got, acme) || !got.CreatedAt.Equal(list[1].CreatedAt) {
		t.Fatalf("Tenant(acme) = %+v, %v; want %+v", got, err, list[1])
	}
	if _, err := reg.Tenant(ctx, "nobody"); !errors.Is(err, tenancy.ErrUnknownTenant) {
		t.Fatalf("Tenant(nobody): %v, want ErrUnknownTenant", err)
	}
}

func testRegistryUpdate(t *testing.T, open func(t *testing.T) (tenancy.Admin, server.Log)) {
	reg, _ := openRegistry(t, open)
	ctx := context.Background()
	for _, id := range []string{"acme", "globex"} {
		if err := reg.Create(ctx, tenancy.Tenant{ID: id, OpsPerSec: 5}); err != nil {
			t.Fatal(err)
		}
	}
	expect := func(want tenancy.Tenant) {
		t.Helper()
		if got, err := reg.Tenant(ctx, want.ID); err != nil || !sameTenant(got, want) {
			t.Fatalf("Tenant(%s) = %+v, %v; want %+v", want.ID, got, err, want)
		}
	}
	limits := tenancy.Tenant{ID: "acme", OpsPerSec: 10, MaxRows: 1000, MaxBytes: 1 << 20, RetentionDays: 30}
	if err := reg.SetLimits(ctx, limits); err != nil {
		t.Fatal(err)
	}
	expect(limits)
	expect(tenancy.Tenant{ID: "globex", OpsPerSec: 5})
	// Retention sees only the tenants with one, with only their days.
	if ret, err := reg.Retained(ctx); err != nil || len(ret) != 1 || !sameTenant(ret[0], tenancy.Tenant{ID: "acme", RetentionDays: 30}) {
		t.Fatalf("Retained = %+v, %v; want acme's 30 days only", ret, err)
	}
	if err := reg.SetLimits(ctx, tenancy.Tenant{ID: "acme", MaxBytes: -1}); !errors.Is(err, tenancy.ErrInvalidLimits) {
		t.Fatalf("negative limits: %v, want ErrInvalidLimits", err)
	}
	expect(limits)
	if err := reg.SetLimits(ctx, tenancy.Tenant{ID: "nobody"}); !errors.Is(err, tenancy.ErrUnknownTenant) {
		t.Fatalf("limits of an unknown tenant: %v, want ErrUnknownTenant", err)
	}
	if err := reg.SetSuspended(ctx, "acme", true); err != nil {
		t.Fatal(err)
	}
	limits.Suspended = true
	expect(limits)
	// Limits and suspension are independent.
	limits.RetentionDays = 1
	if err := reg.SetLimits(ctx, limits); err != nil {
		t.Fatal(err)
	}
	expect(limits)
	if err := reg.SetSuspended(ctx, "acme", false); err != nil {
		t.Fatal(err)
	}
	limits.Suspended = false
	expect(limits)
	if err := reg.SetSuspended(ctx, "nobody", true); !errors.Is(err, tenancy.ErrUnknownTenant) {
		t.Fatalf("suspend an unknown tenant: %v, want ErrUnknownTenant", err)
	}
	if list, _ := reg.List(ctx); len(list) != 2 {
		t.Fatalf("List = %+v", list)
	}
}

// testRegistryDelete: Export writes the tenant's entries; Delete removes
// the tenant and every bit of its data, and nothing of another's.
func testRegistryDelete(t *testing.T, open func(t *testing.T) (tenancy.Admin, server.Log)) {
	reg, l := openRegistry(t, open)
	ctx := context.Background()
	for _, id := range []string{"acme", "globex"} {
		if err := reg.Create(ctx, tenancy.Tenant{ID: id}); err != nil {
			t.Fatal(err)
		}
		mustAppend(t, l, id, txs(site(1), 1, 3))
		mustAppend(t, l, id, txs(site(2), 1, 2))
	}
	mustAppend(t, l, "unlisted", txs(site(1), 1, 1)) // a log the registry does not hold
	sr, hasRuns := l.(server.SiteRunner)
	if hasRuns {
		for _, id := range []string{"acme", "globex"} {
			// The runs of the sites' next appends (a save at or below
			// a mark records nothing).
			for s, first := range map[crdt.SiteID]uint64{site(1): 4, site(2): 3} {
				if err := sr.SaveRun(ctx, id, s, usync.Run{First: first, Epoch: 42}); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	entries := readAll(t, l, "acme")
	var out bytes.Buffer
	n, err := reg.Export(ctx, "acme", &out)
	if err != nil || n != len(entries) {
		t.Fatalf("Export = %d, %v; want %d entries", n, err, len(entries))
	}
	lines := bufio.NewScanner(&out)
	for i := 0; lines.Scan(); i++ {
		var e struct {
			Seq     uint64 `json:"seq"`
			Site    string `json:"site"`
			SiteSeq uint64 `json:"site_seq"`
			Tx      string `json:"tx"`
		}
		if err := json.Unmarshal(lines.Bytes(), &e); err != nil || i >= len(entries) {
			t.Fatalf("export line %d %s: %v", i, lines.Bytes(), err)
		}
		want := entries[i]
		tx, _ := base64.StdEncoding.DecodeString(e.Tx)
		if e.Seq != want.Seq || e.Site != hex.EncodeToString(want.Tx.Site[:]) || e.SiteSeq != want.Tx.Seq || !bytes.Equal(tx, crdt.EncodeTx(&want.Tx)) {
			t.Fatalf("export line %d %s is not entry %d", i, lines.Bytes(), want.Seq)
		}
	}
	var none bytes.Buffer
	if n, err := reg.Export(ctx, "nobody", &none); err != nil || n != 0 || none.Len() != 0 {
		t.Fatalf("Export of a tenant with no log = %d, %v, %q", n, err, none.String())
	}

	if err := reg.Delete(ctx, "unlisted"); !errors.Is(err, tenancy.ErrUnknownTenant) {
		t.Fatalf("Delete of a tenant the registry does not hold: %v, want ErrUnknownTenant", err)
	}
	if h, _ := l.Head(ctx, "unlisted"); h != 1 {
		t.Fatalf("a refused Delete changed the log (head %d)", h)
	}
	var globexHash [32]byte
	rh, hasRows := l.(server.RowHasher)
	if hasRows {
		globexHash, _ = rh.RowsHash(ctx, "globex")
	}
	if err := reg.Delete(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Tenant(ctx, "acme"); !errors.Is(err, tenancy.ErrUnknownTenant) {
		t.Fatalf("Tenant(acme) after Delete: %v, want ErrUnknownTenant", err)
	}
	if err := reg.Delete(ctx, "acme"); !errors.Is(err, tenancy.ErrUnknownTenant) {
		t.Fatalf("second Delete: %v, want ErrUnknownTenant", err)
	}
	checkEmpty(t, l, "acme")
	// The other tenant keeps everything.
	if list, err := reg.List(ctx); err != nil || len(list) != 1 || list[0].ID != "globex" {
		t.Fatalf("List after Delete = %+v, %v", list, err)
	}
	if h, _ := l.Head(ctx, "globex"); h != 5 {
		t.Fatalf("globex head %d after acme's Delete, want 5", h)
	}
	if n := len(readAll(t, l, "globex")); n != 5 {
		t.Fatalf("globex holds %d entries after acme's Delete, want 5", n)
	}
	if hw, _ := l.HighWater(ctx, "globex", site(1)); hw != 3 {
		t.Fatalf("globex mark %d after acme's Delete, want 3", hw)
	}
	if hasRows {
		if got, _ := rh.RowsHash(ctx, "globex"); got != globexHash {
			t.Fatal("acme's Delete changed globex's rows")
		}
	}
	if hasRuns {
		if runs, err := sr.Runs(ctx, "globex", site(2), 1, 10, 10); err != nil || len(runs) != 1 || runs[0].Epoch != 42 {
			t.Fatalf("globex runs %v, %v after acme's Delete, want its run", runs, err)
		}
	}
	// A tenant created again starts an empty log from 1.
	if err := reg.Create(ctx, tenancy.Tenant{ID: "acme"}); err != nil {
		t.Fatal(err)
	}
	again := txs(site(3), 1, 1)
	if seqs := mustAppend(t, l, "acme", again); seqs[0] != 1 {
		t.Fatalf("first append after Delete got seq %d, want 1", seqs[0])
	}
	chs := readAll(t, l, "acme")
	if len(chs) != 1 || chs[0].Seq != 1 || !bytes.Equal(crdt.EncodeTx(&chs[0].Tx), crdt.EncodeTx(&again[0])) {
		t.Fatalf("after Delete and an append: %v", seqsOf(chs))
	}
	if enc, ok := l.(server.EncodedTail); ok {
		if got, ok := enc.Encoded("acme", chs); ok && !bytes.Equal(got[0], crdt.EncodeTx(&again[0])) {
			t.Fatal("Encoded serves a deleted entry")
		}
	}
}

// checkEmpty checks that the log holds nothing of tenant.
func checkEmpty(t *testing.T, l server.Log, tenant string) {
	t.Helper()
	ctx := context.Background()
	if h, err := l.Head(ctx, tenant); err != nil || h != 0 {
		t.Errorf("%s: head %d, %v; want 0", tenant, h, err)
	}
	for _, s := range []crdt.SiteID{site(1), site(2)} {
		if hw, err := l.HighWater(ctx, tenant, s); err != nil || hw != 0 {
			t.Errorf("%s: site mark %d, %v; want 0", tenant, hw, err)
		}
	}
	if chs, err := l.Read(ctx, tenant, 0, 10, 0); err != nil || len(chs) != 0 {
		t.Errorf("%s: reads %v, %v; want nothing", tenant, seqsOf(chs), err)
	}
	if r, ok := l.(server.Retainer); ok {
		if start, err := r.LogStart(ctx, tenant); err != nil || start != 1 {
			t.Errorf("%s: log start %d, %v; want 1", tenant, start, err)
		}
	}
	if sn, ok := l.(server.Snapshotter); ok {
		if n, b, err := sn.SnapshotSize(ctx, tenant); err != nil || n != 0 || b != 0 {
			t.Errorf("%s: %d rows of %d bytes, %v; want none", tenant, n, b, err)
		}
		if marks, err := sn.SnapshotSites(ctx, tenant); err != nil || len(marks) != 0 {
			t.Errorf("%s: site marks %v, %v; want none", tenant, marks, err)
		}
	}
	if sr, ok := l.(server.SiteRunner); ok {
		for _, s := range []crdt.SiteID{site(1), site(2)} {
			if runs, err := sr.Runs(ctx, tenant, s, 0, 10, 10); err != nil || len(runs) != 0 {
				t.Errorf("%s: runs %v, %v; want none", tenant, runs, err)
			}
		}
	}
	if rs, ok := l.(server.RowStater); ok {
		s := site(1)
		k := crdt.RowKey{Collection: "items", Row: fmt.Sprintf("%x-%d", s[:2], 1)}
		if states, err := rs.RowStates(ctx, tenant, []crdt.RowKey{k}); err != nil || states[0].State != nil {
			t.Errorf("%s: row %v still has a state (%v)", tenant, k, err)
		}
	}
}
