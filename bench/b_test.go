package bench

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/unosync/uno/crdt"
	"github.com/unosync/uno/internal/pgtest"
)

// uno bench's B runs a body as go test -bench does: N = 1 first, then N
// grown until a run lasts the bench time, cleanups after each run, the
// last run's figures.
func TestMeasure_GrowsNToTheBenchTime(t *testing.T) {
	var ns []int
	var cleaned []string
	r, err := measure(func(b B) {
		ns = append(ns, b.N())
		b.Cleanup(func() { cleaned = append(cleaned, "first") })
		b.Cleanup(func() { cleaned = append(cleaned, "second") })
		dir := b.TempDir()
		b.Cleanup(func() {
			if _, err := os.Stat(dir); err != nil {
				t.Errorf("TempDir removed before a cleanup registered after it: %v", err)
			}
		})
		b.ReportMetric(1, "setup")
		b.StopTimer()
		time.Sleep(time.Millisecond) // untimed
		b.StartTimer()
		b.ResetTimer() // drops the setup metric too
		for range b.N() {
			time.Sleep(10 * time.Microsecond)
		}
		b.ReportMetric(float64(b.N()), "n")
	}, benchTime{d: 20 * time.Millisecond}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(ns) < 2 || ns[0] != 1 || !slices.IsSorted(ns) {
		t.Errorf("runs with N = %v, want 1 and then growing", ns)
	}
	if r.N != ns[len(ns)-1] || r.T < 20*time.Millisecond || r.Extra["n"] != float64(r.N) {
		t.Errorf("result %+v, want the last run (N = %d) of at least 20ms", r, ns[len(ns)-1])
	}
	if _, ok := r.Extra["setup"]; ok {
		t.Errorf("metrics %v: ResetTimer should have dropped the setup one", r.Extra)
	}
	if r.NsPerOp() != r.T.Nanoseconds()/int64(r.N) {
		t.Errorf("NsPerOp %d of %+v", r.NsPerOp(), r)
	}
	for i := 0; i < len(cleaned); i += 2 {
		if cleaned[i] != "second" || cleaned[i+1] != "first" {
			t.Fatalf("cleanups ran in order %v, want the last registered first after each run", cleaned)
		}
	}
	if len(cleaned) != 2*len(ns) {
		t.Errorf("%d cleanups for %d runs", len(cleaned), len(ns))
	}
}

func TestMeasure_FixedCount(t *testing.T) {
	var ns []int
	r, err := measure(func(b B) { ns = append(ns, b.N()) }, benchTime{n: 1000}, nil)
	if err != nil || !slices.Equal(ns, []int{1, 1000}) || r.N != 1000 {
		t.Errorf("runs with N = %v, result %+v, %v; want N = 1 then 1000", ns, r, err)
	}
	ns = nil
	if _, err := measure(func(b B) { ns = append(ns, b.N()) }, benchTime{n: 1}, nil); err != nil || !slices.Equal(ns, []int{1}) {
		t.Errorf("1x: runs with N = %v (%v), want one", ns, err)
	}
}

func TestMeasure_Failures(t *testing.T) {
	cleaned := false
	_, err := measure(func(b B) {
		b.Cleanup(func() { cleaned = true })
		b.Error("one")
		b.Fatalf("two %d", 2)
		t.Error("Fatalf returned")
	}, benchTime{d: time.Second}, nil)
	if err == nil || err.Error() != "one; two 2" || !cleaned {
		t.Errorf("error %v (cleaned up: %v), want both messages and the cleanup", err, cleaned)
	}
}

// uno bench --sync measures the query API over Postgres in a database and
// a role it makes on the UNO_PG_DSN server and drops after.
func TestScratchPG(t *testing.T) {
	server := pgtest.NewDatabase(t) // an admin DSN, standing in for UNO_PG_DSN
	var name, role string
	_, err := measure(func(b B) {
		admin, app := scratchPG(b, server)
		l := pgLog(b, admin, app)
		if _, err := l.Append(context.Background(), "bench", pgTxs(crdt.SiteID{9}, 0, 1)); err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, app(admin))
		if err != nil {
			b.Fatal(err)
		}
		defer conn.Close(ctx)
		if err := conn.QueryRow(ctx, "SELECT current_database(), current_user").Scan(&name, &role); err != nil {
			b.Fatal(err)
		}
	}, benchTime{n: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(name, "uno_bench_") || !strings.HasPrefix(role, "uno_bench_app_") {
		t.Fatalf("connected to %s as %s, want a scratch database and role", name, role)
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, server)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var left int
	if err := conn.QueryRow(ctx, "SELECT (SELECT count(*) FROM pg_database WHERE datname = $1) + (SELECT count(*) FROM pg_roles WHERE rolname = $2)", name, role).Scan(&left); err != nil {
		t.Fatal(err)
	}
	if left != 0 {
		t.Errorf("%d scratch databases and roles left after the run, want 0", left)
	}
	b := &trial{}
	for _, dsn := range []string{"host=127.0.0.1 dbname=x", "postgres://u:p@h:5432/x?sslmode=disable"} {
		got := withDSN(b, withDSN(b, withDSN(b, dsn, "dbname", "d"), "user", "r"), "password", "s")
		cfg, err := pgx.ParseConfig(got)
		if err != nil || cfg.Database != "d" || cfg.User != "r" || cfg.Password != "s" {
			t.Errorf("withDSN(%q) = %q (%v), want database d, user r, password s", dsn, got, err)
		}
	}
}
