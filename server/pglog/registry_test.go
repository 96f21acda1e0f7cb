package pglog_test

import (
	"context"
	"testing"

	"github.com/unosync/uno/internal/pgtest"
	"github.com/unosync/uno/server"
	"github.com/unosync/uno/server/logtest"
	"github.com/unosync/uno/server/pglog"
	"github.com/unosync/uno/tenancy"
)

// The Postgres registry passes the same suite as the SQLite one: the
// registry connects as the tables' owner (uno tenant does), the log as
// the application role.
func TestPGRegistry(t *testing.T) {
	logtest.RunRegistry(t, func(t *testing.T) (tenancy.Admin, server.Log) {
		ctx := context.Background()
		admin := pgtest.NewDatabase(t)
		if err := pglog.Migrate(ctx, admin, pglog.SchemaVersion); err != nil {
			t.Fatal(err)
		}
		l, err := pglog.Open(ctx, pgtest.NewAppRole(t, admin))
		if err != nil {
			t.Fatal(err)
		}
		reg, err := pglog.OpenRegistry(ctx, admin)
		if err != nil {
			l.Close()
			t.Fatal(err)
		}
		return reg, l
	})
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
