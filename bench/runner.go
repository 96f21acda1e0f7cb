package bench

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/unosync/uno/server"
)

// Options configure Run.
type Options struct {
	// BenchTime is how long each benchmark runs; default 2s.
	BenchTime time.Duration
	// Rounds is how many times each benchmark and its ceiling run,
	// alternating; the table shows the medians. Default 3.
	Rounds int
	// Progress, if set, is told which benchmark is running.
	Progress io.Writer
	// Sync also runs the sync benchmarks (end-to-end throughput, fan-out,
	// latency, bootstrap) and the query API's. Most start `uno serve` as a
	// process, so they need the Go toolchain. The query API is measured
	// over the SQLite log, and over Postgres too when UNO_PG_DSN names a
	// server (an admin DSN): each run creates a database and a role of
	// its own there and drops them after.
	Sync bool
	// Docs also runs the doc field benchmarks: the automerge-paper editing
	// trace into a doc field, locally beside automerge-go and end to end
	// through a server. They need the trace (see LoadTrace) and a build
	// with the Automerge library.
	Docs bool
}

// Row is one line of the results table.
type Row struct {
	Workload string
	Uno      string // uno's figure
	Ceiling  string // the plain-SQLite figure, if any
	Ratio    string
	Target   string
	Pass     bool
	Checked  bool // the row has a target
}

// Run runs the local benchmarks, each beside its ceiling where it has one,
// and returns the table rows. It runs each benchmark as go test -bench
// does (see B), so figures match go test's.
func Run(o Options) ([]Row, error) {
	if o.BenchTime <= 0 {
		o.BenchTime = 2 * time.Second
	}
	if o.Rounds <= 0 {
		o.Rounds = 3
	}
	var err error // the first benchmark that failed; the others are skipped
	run := func(name string, f func(B), bt benchTime) result {
		if err != nil {
			return result{}
		}
		if o.Progress != nil {
			fmt.Fprintf(o.Progress, "running %s...\n", name)
		}
		r, ferr := measure(f, bt, o.Progress)
		if ferr != nil {
			err = fmt.Errorf("bench: %s: %w", name, ferr)
		}
		return r
	}
	timed := benchTime{d: o.BenchTime}
	// pair runs a benchmark and its ceiling alternately, Rounds times,
	// and returns the runs with the median ns/op of each.
	pair := func(name string, f, ceiling func(B)) (result, result) {
		var a, b []result
		for i := range o.Rounds {
			a = append(a, run(fmt.Sprintf("%s (round %d/%d)", name, i+1, o.Rounds), f, timed))
			b = append(b, run(fmt.Sprintf("its ceiling (round %d/%d)", i+1, o.Rounds), ceiling, timed))
		}
		return median(a), median(b)
	}
	var rows []Row

	tx, plainTx := pair("WriteTx1000", WriteTx1000, PlainTx1000)
	if err != nil {
		return nil, err
	}
	txRate, plainRate := tx.Extra["fieldops/s"], plainTx.Extra["fieldops/s"]
	ratio := txRate / plainRate
	rows = append(rows, Row{
		Workload: fmt.Sprintf("1,000-op transactions (%d rows × %d fields), sync=FULL", TxOps/FieldsPerRow, FieldsPerRow),
		Uno:      fmt.Sprintf("%.0f field ops/s", txRate),
		Ceiling:  fmt.Sprintf("%.0f field ops/s", plainRate),
		Ratio:    fmt.Sprintf("%.0f%%", 100*ratio),
		Target:   "≥ 80,000/s and ≥ 40%",
		Pass:     txRate >= 80_000 && ratio >= 0.40,
		Checked:  true,
	})

	single, plainSingle := pair("WriteSingle", WriteSingle, PlainSingle)
	if err != nil {
		return nil, err
	}
	slow := float64(single.NsPerOp()) / float64(plainSingle.NsPerOp())
	rows = append(rows, Row{
		Workload: "single-op transactions, sync=FULL",
		Uno:      fmt.Sprintf("%.0f tx/s (%s/tx)", single.Extra["tx/s"], dur(single)),
		Ceiling:  fmt.Sprintf("%.0f tx/s (%s/tx)", plainSingle.Extra["tx/s"], dur(plainSingle)),
		Ratio:    fmt.Sprintf("%.2f× the time", slow),
		Target:   "≤ 1.3× the time",
		Pass:     slow <= 1.3,
		Checked:  true,
	})

	read := run("ReadByKey", ReadByKey, timed)
	rows = append(rows, Row{Workload: "read by key (10,000 rows)", Uno: dur(read) + "/read"})
	q := run("Query100", Query100, timed)
	rows = append(rows, Row{Workload: "query returning 100 of 10,000 rows (indexed)", Uno: dur(q) + "/query"})
	w := run("WatchLatency", WatchLatency, timed)
	rows = append(rows, Row{Workload: "watch: write → notification of a 100-row live query", Uno: dur(w)})
	once := benchTime{n: 1} // each is a whole scenario
	if err == nil && o.Docs {
		rows = append(rows, docRows(o, func(name string, f func(B)) result { return run(name, f, once) })...)
	}
	if err != nil || !o.Sync {
		return rows, err
	}
	su := run("SyncUpdates", SyncUpdates, once)
	rate := su.Extra["updates/s"]
	rows = append(rows, Row{Workload: "sync: 2 clients × 10,000 field updates through uno serve, durable",
		Uno: fmt.Sprintf("%.0f updates/s", rate), Target: "≥ 20,000/s", Pass: rate >= 20_000, Checked: true})
	room := run("Room", Room, once)
	dps, cpu := room.Extra["deliveries/s"], room.Extra["server-µs-cpu/delivery"]
	rows = append(rows, Row{Workload: "room: 50 clients × 40 writes, every write to all 50",
		Uno: fmt.Sprintf("%.0f deliveries/s, %.1f µs server CPU/delivery", dps, cpu), Target: "≥ 150,000/s, ≤ 5 µs",
		Pass: dps >= 150_000 && cpu <= 5, Checked: true})
	lat := run("PacedLatency", PacedLatency, once)
	p99 := lat.Extra["p99-ms"]
	rows = append(rows, Row{Workload: "latency: 1 writer at 50 Hz, 49 readers",
		Uno: fmt.Sprintf("p50 %.2f ms, p99 %.2f ms", lat.Extra["p50-ms"], p99), Target: "p99 ≤ 10 ms", Pass: p99 <= 10, Checked: true})
	boot := run("Bootstrap", Bootstrap, once)
	rows = append(rows, Row{Workload: "bootstrap: a new client, 100,000 rows",
		Uno: fmt.Sprintf("%.2f s, %.1f MB sent, client peak RSS %.0f MiB", boot.Extra["s/bootstrap"], boot.Extra["MB-sent"], boot.Extra["peak-RSS-MiB"])})
	// The query API: 1,000 requests each, so that p99 is a 10th-slowest.
	// Postgres only on a server of one's own (UNO_PG_DSN), in a database
	// made for each run and dropped after it.
	logs := []string{"sqlite"}
	open := map[string]func(B) server.Log{"sqlite": sqliteLog}
	if dsn := os.Getenv(pgDSNEnv); dsn != "" {
		logs = append(logs, "postgres")
		open["postgres"] = func(b B) server.Log {
			admin, app := scratchPG(b, dsn)
			return pgLog(b, admin, app)
		}
	}
	for _, backend := range logs {
		for _, cached := range []bool{true, false} {
			mode := "uncached (a write before each request)"
			if cached {
				mode = "cached"
			}
			qp := run(fmt.Sprintf("QueryPage/%s/%s", backend, strings.Fields(mode)[0]), queryPage(open[backend], cached), benchTime{n: 1000})
			rows = append(rows, Row{Workload: fmt.Sprintf("query API (%s log): a 100-row page of 10,000 over HTTP, %s", backend, mode),
				Uno: fmt.Sprintf("p50 %.2f ms, p99 %.2f ms", qp.Extra["p50-ms"], qp.Extra["p99-ms"])})
		}
	}
	return rows, err
}

func dur(r result) string {
	return time.Duration(r.NsPerOp()).Round(100 * time.Nanosecond).String()
}

// Markdown writes rows as a Markdown table.
func Markdown(w io.Writer, rows []Row) {
	fmt.Fprintln(w, "| workload | uno | plain SQLite (ceiling) | uno / ceiling | target | met |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|")
	for _, r := range rows {
		met := ""
		if r.Checked {
			met = "no"
			if r.Pass {
				met = "yes"
			}
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s |\n", r.Workload, r.Uno, dash(r.Ceiling), dash(r.Ratio), dash(r.Target), dash(met))
	}
}

func dash(s string) string {
	if s == "" {
		return "–"
	}
	return s
}

// Machine describes where the benchmarks ran.
func Machine() string {
	return fmt.Sprintf("%s/%s, %d CPUs, %s", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), strings.TrimSpace(runtime.Version()))
}
