// Package pgtest gives tests a real PostgreSQL: a fresh database per call
// on the server named by UNO_PG_DSN, or, when it is unset, on a throwaway
// cluster this package starts (initdb and pg_ctl, as the postgres user
// when running as root, in a temp dir, on a free loopback port) and stops
// when the tests end. Tests that need Postgres fail, not skip, when it is
// missing: the test command installs it.
package pgtest
