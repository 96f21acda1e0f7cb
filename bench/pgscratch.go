package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// pgDSNEnv names the variable holding the admin DSN of a Postgres server
// for uno bench --sync (go test ./bench uses internal/pgtest, which reads
// the same variable or starts a throwaway cluster).
const pgDSNEnv = "UNO_PG_DSN"

// scratchPG creates a database on the server at dsn (an admin DSN) and
// returns its admin DSN and app, which creates there a login role that is
// neither superuser nor owner nor BYPASSRLS, with the data privileges on
// every table, and returns a DSN connecting as it. When the run ends the
// database and the roles are dropped.
func scratchPG(b B, dsn string) (admin string, app func(admin string) string) {
	b.Helper()
	name := "uno_bench_" + randomHex()
	if err := pgExec(dsn, "CREATE DATABASE "+name); err != nil {
		b.Fatal(err)
	}
	var roles []string
	b.Cleanup(func() {
		if err := pgExec(dsn, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			b.Error(err)
		}
		for _, role := range roles {
			if err := pgExec(dsn, "DROP ROLE IF EXISTS "+role); err != nil {
				b.Error(err)
			}
		}
	})
	admin = withDSN(b, dsn, "dbname", name)
	return admin, func(admin string) string {
		role, password := "uno_bench_app_"+randomHex(), randomHex()
		roles = append(roles, role)
		err := pgExec(admin,
			"CREATE ROLE "+role+" LOGIN PASSWORD '"+password+"' NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE",
			"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO "+role)
		if err != nil {
			b.Fatal(err)
		}
		return withDSN(b, withDSN(b, admin, "user", role), "password", password)
	}
}

// pgExec runs statements on the database at dsn.
func pgExec(dsn string, statements ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	for _, s := range statements {
		if _, err := conn.Exec(ctx, s); err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
	}
	return nil
}

// withDSN returns dsn (a URL or keyword/value settings) with one setting
// (dbname, user or password) changed.
func withDSN(b B, dsn, key, value string) string {
	b.Helper()
	if !strings.HasPrefix(dsn, "postgres://") && !strings.HasPrefix(dsn, "postgresql://") {
		return fmt.Sprintf("%s %s='%s'", dsn, key, value) // the last setting of a key wins
	}
	u, err := url.Parse(dsn)
	if err != nil {
		b.Fatal(err)
	}
	switch key {
	case "dbname":
		u.Path = "/" + value
	case "user":
		if p, ok := u.User.Password(); ok {
			u.User = url.UserPassword(value, p)
		} else {
			u.User = url.User(value)
		}
	case "password":
		u.User = url.UserPassword(u.User.Username(), value)
	}
	return u.String()
}

// randomHex returns 12 random hex digits: a name no other run uses.
func randomHex() string {
	var b [6]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
