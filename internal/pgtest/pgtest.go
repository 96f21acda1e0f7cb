package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// DSNEnv names the variable holding an admin DSN of an existing server.
const DSNEnv = "UNO_PG_DSN"

var (
	once     sync.Once
	admin    string // admin DSN
	stop     func()
	startErr error
)

// Main runs the tests and stops the throwaway cluster, if one was started.
// Call it from TestMain: os.Exit(pgtest.Main(m)).
func Main(m *testing.M) int {
	code := m.Run()
	if stop != nil {
		stop()
	}
	return code
}

// NewDatabase returns the DSN of a fresh, empty database.
func NewDatabase(tb testing.TB) string {
	tb.Helper()
	once.Do(func() { admin, stop, startErr = start() })
	if startErr != nil {
		tb.Fatalf("postgres for tests: %v (install it with: apt-get install -y postgresql, or set %s)", startErr, DSNEnv)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		tb.Fatalf("connect to test postgres: %v", err)
	}
	defer conn.Close(ctx)
	var b [6]byte
	rand.Read(b[:])
	name := "uno_test_" + hex.EncodeToString(b[:])
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		tb.Fatalf("create test database: %v", err)
	}
	cfg, err := pgx.ParseConfig(admin)
	if err != nil {
		tb.Fatal(err)
	}
	return dsnOf(cfg.User, cfg.Password, cfg.Host, cfg.Port, name)
}

// dsnOf returns a DSN connecting as user (with password, if any; a
// server that trusts loopback ignores it) to database on host:port.
func dsnOf(user, password, host string, port uint16, database string) string {
	u := url.URL{Scheme: "postgres", User: url.User(user), Host: net.JoinHostPort(host, strconv.Itoa(int(port))), Path: "/" + database, RawQuery: "sslmode=disable"}
	if password != "" {
		u.User = url.UserPassword(user, password)
	}
	return u.String()
}

// start finds or starts a server and returns its admin DSN.
func start() (string, func(), error) {
	if dsn := os.Getenv(DSNEnv); dsn != "" {
		return dsn, nil, nil
	}
	c, err := newCluster()
	if err != nil {
		return "", nil, err
	}
	return c.Admin, c.remove, nil
}

func binDir() (string, error) {
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(matches) > 0 {
		return filepath.Dir(matches[len(matches)-1]), nil
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", fmt.Errorf("initdb not found")
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// NewAppRole creates, in the database at dsn (an admin DSN from
// NewDatabase), a login role that is neither superuser nor owner nor
// BYPASSRLS, grants it the data privileges on every table and sequence
// there (the README's grants), and returns a DSN connecting as it: what a
// production server should use.
func NewAppRole(tb testing.TB, dsn string) string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close(ctx)
	var b [6]byte
	rand.Read(b[:])
	role := "uno_app_" + hex.EncodeToString(b[:])
	rand.Read(b[:])
	password := hex.EncodeToString(b[:]) // for a server that wants one (UNO_PG_DSN's)
	for _, s := range []string{
		"CREATE ROLE " + role + " LOGIN PASSWORD '" + password + "' NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE",
		"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO " + role,
		"GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO " + role,
	} {
		if _, err := conn.Exec(ctx, s); err != nil {
			tb.Fatalf("%s: %v", s, err)
		}
	}
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		tb.Fatal(err)
	}
	return dsnOf(role, password, cfg.Host, cfg.Port, cfg.Database)
}

// Cluster is a throwaway Postgres cluster of one test's own, which the
// test can kill and restart.
type Cluster struct {
	tb    testing.TB
	run   func(name string, args ...string) error
	data  string
	opts  string
	Admin string // admin DSN to the postgres database
}

// NewCluster starts a cluster for one test (needs the Postgres binaries).
func NewCluster(tb testing.TB) *Cluster {
	tb.Helper()
	c, err := newCluster()
	if err != nil {
		tb.Fatalf("postgres cluster: %v", err)
	}
	c.tb = tb
	tb.Cleanup(c.remove)
	return c
}

// remove stops the cluster and deletes its files.
func (c *Cluster) remove() {
	c.run("pg_ctl", "-D", c.data, "-m", "immediate", "-w", "stop")
	os.RemoveAll(filepath.Dir(c.data))
}

// Kill stops the server at once, as a crash would (pg_ctl -m immediate).
func (c *Cluster) Kill() {
	c.tb.Helper()
	if err := c.run("pg_ctl", "-D", c.data, "-m", "immediate", "-w", "stop"); err != nil {
		c.tb.Fatal(err)
	}
}

// Start starts the server again, on the same port.
func (c *Cluster) Start() {
	c.tb.Helper()
	if err := c.run("pg_ctl", "-D", c.data, "-l", filepath.Join(filepath.Dir(c.data), "log"), "-w", "-o", c.opts, "start"); err != nil {
		c.tb.Fatal(err)
	}
}

func newCluster() (*Cluster, error) {
	bin, err := binDir()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "uno-pg-")
	if err != nil {
		return nil, err
	}
	asPostgres := os.Geteuid() == 0
	if asPostgres {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, err
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			return nil, err
		}
	}
	run := func(name string, args ...string) error {
		cmd := exec.Command(filepath.Join(bin, name), args...)
		if asPostgres {
			cmd = exec.Command("runuser", append([]string{"-u", "postgres", "--", filepath.Join(bin, name)}, args...)...)
		}
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("%s: %v\n%s", name, err, out)
		}
		return nil
	}
	data := filepath.Join(dir, "data")
	if err := run("initdb", "-D", data, "-A", "trust", "-U", "postgres", "--no-sync"); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	c := &Cluster{run: run, data: data,
		opts:  fmt.Sprintf("-c port=%d -c listen_addresses=127.0.0.1 -c unix_socket_directories=%s -c fsync=off -c max_connections=200", port, dir),
		Admin: fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)}
	if err := run("pg_ctl", "-D", data, "-l", filepath.Join(dir, "log"), "-w", "-o", c.opts, "start"); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return c, nil
}
