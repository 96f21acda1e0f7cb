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
