package pglog_test

import (
	"bufio"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/unosync/uno/crdt"
	"github.com/unosync/uno/internal/pgtest"
	"github.com/unosync/uno/server/pglog"
	"github.com/unosync/uno/tenancy"
)

func TestPGRegistry(t *testing.T) {
	ctx := context.Background()
	admin := pgtest.NewDatabase(t)
	if err := pglog.Migrate(ctx, admin, pglog.SchemaVersion); err != nil {
		t.Fatal(err)
	}
	reg, err := pglog.OpenRegistry(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	if err := reg.Create(ctx, tenancy.Tenant{ID: "acme", OpsPerSec: 50}); err != nil {
		t.Fatal(err)
	}
	if err := reg.Create(ctx, tenancy.Tenant{ID: "globex"}); err != nil {
		t.Fatal(err)
	}
	if err := reg.Create(ctx, tenancy.Tenant{ID: "acme"}); err == nil {
		t.Fatal("a second tenant with the same ID was created")
	}
	if err := reg.Create(ctx, tenancy.Tenant{ID: ""}); err == nil {
		t.Fatal("a tenant without an ID was created")
	}
	list, err := reg.List(ctx)
	if err != nil || len(list) != 2 || list[0].ID != "acme" || list[0].OpsPerSec != 50 || list[1].ID != "globex" {
		t.Fatalf("List = %+v, %v", list, err)
	}
	if err := reg.SetSuspended(ctx, "acme", true); err != nil {
		t.Fatal(err)
	}
	if tn, err := reg.Tenant(ctx, "acme"); err != nil || !tn.Suspended {
		t.Fatalf("after suspend: %+v, %v", tn, err)
	}
	if err := reg.SetSuspended(ctx, "acme", false); err != nil {
		t.Fatal(err)
	}
	limits := tenancy.Tenant{ID: "acme", OpsPerSec: 10, MaxRows: 1000, MaxBytes: 1 << 20, RetentionDays: 30}
	if err := reg.SetLimits(ctx, limits); err != nil {
		t.Fatal(err)
	}
	if tn, err := reg.Tenant(ctx, "acme"); err != nil || tn.OpsPerSec != 10 || tn.MaxRows != 1000 || tn.MaxBytes != 1<<20 || tn.RetentionDays != 30 {
		t.Fatalf("after SetLimits: %+v, %v", tn, err)
	}
	if err := reg.SetLimits(ctx, tenancy.Tenant{ID: "acme", MaxRows: -1}); err == nil {
		t.Fatal("a negative quota was accepted")
	}
	if err := reg.SetLimits(ctx, tenancy.Tenant{ID: "nobody"}); !errors.Is(err, tenancy.ErrUnknownTenant) {
		t.Fatalf("limits of an unknown tenant: %v", err)
	}
	if _, err := reg.Tenant(ctx, "nobody"); !errors.Is(err, tenancy.ErrUnknownTenant) {
		t.Fatalf("unknown tenant: %v", err)
	}
	if err := reg.SetSuspended(ctx, "nobody", true); !errors.Is(err, tenancy.ErrUnknownTenant) {
		t.Fatalf("suspend unknown: %v", err)
	}
	// Export and delete see the tenant's data, and only its.
	l, err := pglog.Open(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for _, tenant := range []string{"acme", "globex"} {
		tx := crdt.Tx{Site: crdt.SiteID{9}, Seq: 1, Time: 1, Ops: []crdt.Op{{Type: crdt.OpSet, Kind: crdt.KindRegister, Collection: "c", Row: "r", Field: "f", CL: 1, Value: []byte(`1`)}}}
		if _, err := l.Append(ctx, tenant, []crdt.Tx{tx}); err != nil {
			t.Fatal(err)
		}
	}
	var out strings.Builder
	n, err := reg.Export(ctx, "acme", &out)
	if err != nil || n != 1 || !strings.Contains(out.String(), `"seq":1`) {
		t.Fatalf("Export = %d, %v:\n%s", n, err, out.String())
	}
	if lines := bufio.NewScanner(strings.NewReader(out.String())); !lines.Scan() {
		t.Fatal("export wrote no line")
	}
	if err := reg.Delete(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	if h, _ := l.Head(ctx, "acme"); h != 0 {
		t.Fatalf("acme's log head %d after delete", h)
	}
	if h, _ := l.Head(ctx, "globex"); h != 1 {
		t.Fatalf("deleting acme touched globex (head %d)", h)
	}
	if _, err := reg.Tenant(ctx, "acme"); !errors.Is(err, tenancy.ErrUnknownTenant) {
		t.Fatalf("acme after delete: %v", err)
	}
}

// Finding 10: the server's role reads only the entry of the tenant it
// asks for, never the list of tenants and their limits; retention learns
// IDs and days only.
func TestPGRegistry_ServerRoleSeesOneTenant(t *testing.T) {
	ctx := context.Background()
	admin := pgtest.NewDatabase(t)
	if err := pglog.Migrate(ctx, admin, pglog.SchemaVersion); err != nil {
		t.Fatal(err)
	}
	owner, err := pglog.OpenRegistry(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	defer owner.Close()
	for _, tn := range []tenancy.Tenant{{ID: "acme", MaxRows: 7, RetentionDays: 3}, {ID: "globex", MaxBytes: 99}} {
		if err := owner.Create(ctx, tn); err != nil {
			t.Fatal(err)
		}
	}
	app, err := pglog.OpenRegistry(ctx, pgtest.NewAppRole(t, admin))
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	if tn, err := app.Tenant(ctx, "globex"); err != nil || tn.MaxBytes != 99 {
		t.Fatalf("the server's role reading its tenant: %+v, %v", tn, err)
	}
	if list, err := app.List(ctx); err != nil || len(list) != 0 {
		t.Fatalf("the server's role listed tenants: %+v, %v", list, err)
	}
	ret, err := app.Retained(ctx)
	if err != nil || len(ret) != 1 || ret[0].ID != "acme" || ret[0].RetentionDays != 3 || ret[0].MaxRows != 0 {
		t.Fatalf("Retained as the server's role: %+v, %v", ret, err)
	}
}
