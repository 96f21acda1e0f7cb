package bench

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/unosync/uno/client"
)

// The tables: each section's rows, from the medians, with the ratios to
// the ceilings measured in the same run and the targets.

// get returns a workload's median of unit and whether it was measured.
func (r *Report) get(id, unit string) (float64, bool) {
	m := r.byID[id]
	if !m.ok() {
		return 0, false
	}
	v, ok := m.Median[unit]
	return v, ok
}

// fig formats a workload's median of unit with f, and the min–max over
// rounds when there are several.
func (r *Report) fig(id, unit string, f func(float64) string) string {
	m := r.byID[id]
	if !m.ok() {
		return ""
	}
	s := f(m.Median[unit])
	if len(m.Rounds) > 1 {
		s += fmt.Sprintf(" (%s–%s)", f(m.Min[unit]), f(m.Max[unit]))
	}
	return s
}

func ms(v float64) string { return fmt.Sprintf("%.2f ms", v) }

func perSec(unit string) func(float64) string {
	return func(v float64) string { return num(v) + " " + unit }
}

func nsDur(v float64) string {
	return time.Duration(v).Round(100 * time.Nanosecond).String()
}

// row starts a row for workload id, or says why it has no figures.
// It returns false if the workload was not selected.
func (r *Report) row(id string) (Row, bool) {
	m := r.byID[id]
	if m == nil {
		return Row{}, false
	}
	row := Row{ID: id, Workload: m.Title}
	switch {
	case m.Skipped != "":
		row.Uno = "not measured: " + m.Skipped
	case m.Error != "":
		row.Uno = "failed: " + m.Error
	case !m.ok():
		row.Uno = "failed: no figures"
	}
	return row, true
}

// latency formats p50, p99 and max of a latency workload.
func (r *Report) latency(id string) string {
	return "p50 " + r.fig(id, "p50-ms", ms) + ", p99 " + r.fig(id, "p99-ms", ms) + ", max " + r.fig(id, "max-ms", ms)
}

// build lays out the sections and the targets.
func (r *Report) build() {
	floorTx, haveFloor := r.get("fsync-floor", "tx/s")
	floorMs := 0.0
	if haveFloor {
		floorMs = 1000 / floorTx
	}
	add := func(s *section, row Row) {
		s.rows = append(s.rows, row)
		if row.Checked {
			r.Targets = append(r.Targets, row)
		}
	}

	local := section{title: "Local engine", after: localProse}
	if row, ok := r.row("local-tx1000"); ok {
		tx, ok1 := r.get("local-tx1000", "fieldops/s")
		plain, ok2 := r.get("plain-tx1000", "fieldops/s")
		if ok1 && ok2 {
			ratio := tx / plain
			row.Uno = r.fig("local-tx1000", "fieldops/s", perSec("field ops/s"))
			row.Ceiling = "plain SQLite: " + r.fig("plain-tx1000", "fieldops/s", perSec("field ops/s"))
			row.Ratio = fmt.Sprintf("%.0f%%", 100*ratio)
			row.Target, row.Pass, row.Checked = "≥ 80,000/s and ≥ 40%", tx >= 80_000 && ratio >= 0.40, true
		}
		add(&local, row)
	}
	if row, ok := r.row("local-single"); ok {
		single, ok1 := r.get("local-single", "ns/op")
		plain, ok2 := r.get("fsync-floor", "ns/op")
		if ok1 && ok2 {
			slow := single / plain
			row.Uno = r.fig("local-single", "tx/s", perSec("tx/s")) + ", " + nsDur(single) + "/tx"
			row.Ceiling = "the fsync floor: " + r.fig("fsync-floor", "tx/s", perSec("tx/s")) + ", " + nsDur(plain) + "/tx"
			row.Ratio = fmt.Sprintf("%.2f× the time", slow)
			row.Target, row.Pass, row.Checked = "≤ 1.3× the time", slow <= 1.3, true
		}
		add(&local, row)
	}
	single, haveSingle := r.get("local-apply", "cpu-ns/tx")
	for _, id := range []string{"local-apply", "local-apply-batch"} {
		if row, ok := r.row(id); ok {
			cpu, ok1 := r.get(id, "cpu-ns/tx")
			plain, ok2 := r.get("plain-apply", "cpu-ns/tx")
			if ok1 && ok2 {
				row.Uno = r.fig(id, "cpu-ns/tx", nsDur) + " CPU/tx, " + r.fig(id, "tx/s", perSec("tx/s"))
				row.Ceiling = "plain SQLite: " + r.fig("plain-apply", "cpu-ns/tx", nsDur) + " CPU/tx"
				row.Ratio = fmt.Sprintf("%.2f× the CPU", cpu/plain)
				if id == "local-apply" {
					row.Target, row.Pass, row.Checked = "≤ 60µs CPU/tx", cpu <= 60_000, true
				} else if haveSingle {
					row.Target, row.Pass, row.Checked = "below one per commit", cpu < single, true
				}
			}
			add(&local, row)
		}
	}
	for _, x := range []struct{ id, per string }{{"local-read", "/read"}, {"local-query", "/query"}, {"local-watch", ""}} {
		if row, ok := r.row(x.id); ok {
			if r.byID[x.id].ok() {
				row.Uno = r.fig(x.id, "ns/op", nsDur) + x.per
			}
			add(&local, row)
		}
	}

	clients := section{title: "Real clients through a server", before: clientsProse, after: clientsAfterProse}
	for _, m := range modes {
		if row, ok := r.row("clients-2-" + m.name); ok {
			id := "clients-2-" + m.name
			if v, ok := r.get(id, "updates/s"); ok {
				row.Uno = r.fig(id, "updates/s", perSec("updates/s"))
				if haveFloor {
					row.Ceiling = "the fsync floor: " + r.fig("fsync-floor", "tx/s", perSec("tx/s"))
					row.Ratio = fmt.Sprintf("%.0f%%", 100*v/floorTx)
				}
				// At full durability each client is a sequential durable
				// writer beside the other and the server: the floor shared
				// by two (and three) writers bounds it on one disk.
				if shared, ok := r.get("fsync-shared-2", "tx/s"); ok && m.d == client.DurabilityFull {
					row.Ceiling += "; 2 writers at once: " + r.fig("fsync-shared-2", "tx/s", perSec("tx/s"))
					row.Ratio += fmt.Sprintf("; %.0f%% of 2 at once", 100*v/shared)
					if three, ok := r.get("fsync-shared-3", "tx/s/writer"); ok {
						row.Ceiling += "; 3 at once: " + r.fig("fsync-shared-3", "tx/s/writer", perSec("tx/s")) + " each"
						row.Ratio += fmt.Sprintf(", %.0f%% of 2 of 3", 100*v/(2*three))
					}
				}
				if m.d == client.DurabilityFull { // full
					row.Target, row.Pass, row.Checked = "≥ 80% of the fsync floor", haveFloor && v >= 0.8*floorTx, true
				} else {
					row.Target, row.Pass, row.Checked = "≥ 10,000/s", v >= 10_000, true
				}
			}
			add(&clients, row)
		}
	}
	for _, m := range modes {
		id := "clients-50-" + m.name
		if row, ok := r.row(id); ok {
			if v, ok := r.get(id, "deliveries/s"); ok {
				row.Uno = r.fig(id, "deliveries/s", perSec("deliveries/s"))
				if c, ok := r.get("ws-broadcast", "deliveries/s"); ok {
					row.Ceiling = "raw broadcast: " + r.fig("ws-broadcast", "deliveries/s", perSec("deliveries/s"))
					row.Ratio = fmt.Sprintf("%.0f%%", 100*v/c)
				}
				want := 20_000.0
				if m.d == client.DurabilityRelaxed {
					want = 40_000
				}
				row.Target, row.Pass, row.Checked = "≥ "+num(want)+"/s", v >= want, true
			}
			add(&clients, row)
		}
	}
	for _, x := range []struct {
		id, relay, replicas string
		limit               float64
	}{{"paced-1", "relay-1", "relay-1-replicas", 4}, {"paced-49", "relay-49", "relay-49-replicas", 12}} {
		relaxed, haveRelaxed := r.get(x.id+"-relaxed", "p99-ms")
		for _, m := range modes {
			id := x.id + "-" + m.name
			row, ok := r.row(id)
			if !ok {
				continue
			}
			if p99, ok := r.get(id, "p99-ms"); ok {
				row.Uno = r.latency(id)
				var ceilings []string
				relay, haveRelay := r.get(x.relay, "p99-ms")
				if haveRelay {
					ceilings = append(ceilings, "a durable relay: p50 "+r.fig(x.relay, "p50-ms", ms)+", p99 "+r.fig(x.relay, "p99-ms", ms))
				}
				replicas, haveReplicas := r.get(x.replicas, "p99-ms")
				if haveReplicas {
					ceilings = append(ceilings, "the replica relay: p50 "+r.fig(x.replicas, "p50-ms", ms)+", p99 "+r.fig(x.replicas, "p99-ms", ms))
				}
				if _, ok := r.get("ws-echo", "p99-ms"); ok {
					ceilings = append(ceilings, "raw echo round trip: p50 "+r.fig("ws-echo", "p50-ms", ms)+", p99 "+r.fig("ws-echo", "p99-ms", ms))
				}
				if _, ok := r.get("fsync-paced", "p99-ms"); ok {
					ceilings = append(ceilings, "a paced durable commit: p50 "+r.fig("fsync-paced", "p50-ms", ms)+", p99 "+r.fig("fsync-paced", "p99-ms", ms))
				}
				row.Ceiling = strings.Join(ceilings, "; ")
				if m.d == client.DurabilityRelaxed {
					var ratios []string
					if haveReplicas && replicas > 0 {
						ratios = append(ratios, fmt.Sprintf("p99 %.1f× the replica relay's (%+.2f ms)", p99/replicas, p99-replicas))
					}
					if haveRelay && relay > 0 {
						ratios = append(ratios, fmt.Sprintf("p99 %.1f× the relay's (%+.2f ms)", p99/relay, p99-relay))
					}
					row.Ratio = strings.Join(ratios, "; ")
					row.Target, row.Pass, row.Checked = fmt.Sprintf("p99 ≤ %.0f ms", x.limit), p99 <= x.limit, true
					if haveRelay && relay > x.limit {
						// The bare relay is less than any durable sync
						// server does: none meets the target on this run's
						// machine.
						row.Bound = fmt.Sprintf("the durable relay alone takes p99 %.2f ms in this run", relay)
					}
				} else if haveRelaxed && haveFloor {
					limit := relaxed + 2*floorMs
					if d := p99 - relaxed; d >= 0 {
						row.Ratio = fmt.Sprintf("p99 %.2f ms over relaxed (%.1f fsync floors", d, d/floorMs)
						// The writer's durable commit is a paced one: on an
						// idle disk it costs several floors by itself.
						if paced, ok := r.get("fsync-paced", "p50-ms"); ok && paced > 0 {
							row.Ratio += fmt.Sprintf(", %.1f paced durable commits at their p50", d/paced)
						}
						row.Ratio += ")"
					} else {
						row.Ratio = fmt.Sprintf("p99 %.2f ms under relaxed", -d)
					}
					row.Target = fmt.Sprintf("p99 ≤ relaxed + 2 fsync floors (%.2f ms)", limit)
					row.Pass, row.Checked = p99 <= limit, true
				}
			}
			add(&clients, row)
		}
	}

	stages := r.stagesSection()

	ceilings := section{title: "Ceilings", before: ceilingsProse}
	if row, ok := r.row("fsync-floor"); ok {
		if r.byID["fsync-floor"].ok() {
			row.Uno = r.fig("fsync-floor", "tx/s", perSec("tx/s")) + ", " + r.fig("fsync-floor", "ns/op", nsDur) + "/tx"
		}
		add(&ceilings, row)
	}
	for _, id := range []string{"fsync-shared-2", "fsync-shared-3"} {
		if row, ok := r.row(id); ok {
			if r.byID[id].ok() {
				row.Uno = r.fig(id, "tx/s/writer", perSec("tx/s")) + " per writer, " + r.fig(id, "tx/s", perSec("tx/s")) + " in all"
			}
			add(&ceilings, row)
		}
	}
	if row, ok := r.row("fsync-paced"); ok {
		if r.byID["fsync-paced"].ok() {
			row.Uno = r.latency("fsync-paced")
		}
		add(&ceilings, row)
	}
	for _, id := range []string{"relay-1", "relay-49", "relay-1-replicas", "relay-49-replicas"} {
		if row, ok := r.row(id); ok {
			if r.byID[id].ok() {
				row.Uno = r.latency(id)
			}
			add(&ceilings, row)
		}
	}
	if row, ok := r.row("ws-echo"); ok {
		if r.byID["ws-echo"].ok() {
			row.Uno = r.latency("ws-echo") + fmt.Sprintf(" (frame %.0f bytes)", r.byID["ws-echo"].Median["frame-bytes"])
		}
		add(&ceilings, row)
	}
	if row, ok := r.row("ws-broadcast"); ok {
		if r.byID["ws-broadcast"].ok() {
			row.Uno = r.fig("ws-broadcast", "deliveries/s", perSec("deliveries/s"))
		}
		add(&ceilings, row)
	}
	if row, ok := r.row("pg-copy"); ok {
		if r.byID["pg-copy"].ok() {
			row.Uno = r.fig("pg-copy", "fieldops/s", perSec("field ops/s"))
		}
		add(&ceilings, row)
	}

	syncs := section{title: "The server under load generators", before: syncProse, after: roomProse}
	if row, ok := r.row("sync-updates"); ok {
		if v, ok := r.get("sync-updates", "updates/s"); ok {
			row.Uno = r.fig("sync-updates", "updates/s", perSec("updates/s"))
			row.Target, row.Pass, row.Checked = "≥ 20,000/s", v >= 20_000, true
		}
		add(&syncs, row)
	}
	if row, ok := r.row("room"); ok {
		if dps, ok := r.get("room", "deliveries/s"); ok {
			cpu := r.byID["room"].Median["server-µs-cpu/delivery"]
			row.Uno = r.fig("room", "deliveries/s", perSec("deliveries/s")) + ", " + r.fig("room", "server-µs-cpu/delivery", func(v float64) string { return fmt.Sprintf("%.1f µs", v) }) + " server CPU/delivery"
			if c, ok := r.get("ws-broadcast", "deliveries/s"); ok {
				row.Ceiling = "raw broadcast: " + r.fig("ws-broadcast", "deliveries/s", perSec("deliveries/s"))
				row.Ratio = fmt.Sprintf("%.0f%%", 100*dps/c)
			}
			row.Target, row.Pass, row.Checked = "≥ 150,000/s, ≤ 5 µs", dps >= 150_000 && cpu <= 5, true
		}
		add(&syncs, row)
	}
	if row, ok := r.row("room-latency"); ok {
		if p99, ok := r.get("room-latency", "p99-ms"); ok {
			row.Uno = r.latency("room-latency")
			row.Target, row.Pass, row.Checked = "p99 ≤ 10 ms", p99 <= 10, true
		}
		add(&syncs, row)
	}
	if row, ok := r.row("pg-ingest"); ok {
		if v, ok := r.get("pg-ingest", "fieldops/s"); ok {
			row.Uno = r.fig("pg-ingest", "fieldops/s", perSec("field ops/s"))
			row.Target, row.Checked = "≥ 50,000/s and ≥ 20% of COPY", true
			if c, ok := r.get("pg-copy", "fieldops/s"); ok {
				row.Ceiling = "COPY: " + r.fig("pg-copy", "fieldops/s", perSec("field ops/s"))
				row.Ratio = fmt.Sprintf("%.0f%%", 100*v/c)
				row.Pass = v >= 50_000 && v >= 0.2*c
			}
		}
		add(&syncs, row)
	}
	for _, id := range []string{"bootstrap", "bootstrap-pg"} {
		if row, ok := r.row(id); ok {
			if r.byID[id].ok() {
				m := r.byID[id].Median
				row.Uno = fmt.Sprintf("%.2f s, %.1f MB sent, client peak RSS %.0f MiB", m["s/bootstrap"], m["MB-sent"], m["peak-RSS-MiB"])
				if m["rows"] == BootstrapTargetRows {
					row.Target = "≤ 30 s, ≤ 300 MB"
					row.Pass, row.Checked = m["s/bootstrap"] <= 30 && m["peak-RSS-MiB"]*(1<<20) <= 300e6, true
				}
			}
			add(&syncs, row)
		}
	}

	query := section{title: "Query API", before: queryProse}
	for _, m := range r.Workloads {
		if m.Group != "query" {
			continue
		}
		row, _ := r.row(m.ID)
		if m.ok() {
			row.Uno = "p50 " + ms(m.Median["p50-ms"]) + ", p99 " + ms(m.Median["p99-ms"])
		}
		add(&query, row)
	}

	browser := section{title: "The browser", before: browserProse}
	if row, ok := r.row("browser"); ok {
		m := r.byID["browser"]
		if !m.ok() {
			add(&browser, row)
		}
		if _, ok := r.get("browser", "download:gzip-bytes"); ok {
			add(&browser, Row{ID: "browser-download", Workload: "the core download every page loads: uno.wasm, Go's loader, uno.js, the worker's script and SQLite, gzipped",
				Uno: r.fig("browser", "download:gzip-bytes", func(v float64) string { return fmt.Sprintf("%.2f MB", v/1e6) })})
		}
		if _, ok := r.get("browser", "first-page:ms-to-usable"); ok {
			add(&browser, Row{ID: "browser-first-page", Workload: "first page in a fresh profile: uno.wasm fetched, compiled and started, the database open",
				Uno: r.fig("browser", "first-page:ms-to-usable", func(v float64) string { return fmt.Sprintf("%.0f ms", v) })})
		}
		if warm, ok := r.get("browser", "writes:rows/s"); ok {
			cold := m.Median["writes:cold-rows/s"]
			row := Row{ID: "browser-writes", Workload: fmt.Sprintf("local batched writes: 10 transactions of 1,000 rows (4 fields), committed to IndexedDB through the Web Worker, %d times in one page", BrowserRounds)}
			row.Uno = fmt.Sprintf("%s once warm; the first 10,000 rows of a fresh browser %s, of a returning visit %s", r.fig("browser", "writes:rows/s", perSec("rows/s")),
				r.fig("browser", "writes:cold-rows/s", perSec("rows/s")), r.fig("browser", "writes:revisit-rows/s", perSec("rows/s")))
			if native, ok := r.get("browser", "native-writes:rows/s"); ok {
				row.Ceiling = "the native client (SQLite on disk, sync=FULL): " + r.fig("browser", "native-writes:rows/s", perSec("rows/s"))
				row.Ratio = fmt.Sprintf("%.0f%% once warm", 100*warm/native)
			}
			if cold > 0 && warm > 0 {
				// All the page's rows, the first (cold) ones included: how
				// the 4,068 rows/s before the worker was counted.
				all := BrowserRounds * 10_000 / (10_000/cold + (BrowserRounds-1)*10_000/warm)
				row.Uno += fmt.Sprintf("; all %s rows %s", num(BrowserRounds*10_000), perSec("rows/s")(all))
				row.Target, row.Pass, row.Checked = "≥ 8,136 rows/s over all rows (2× the 4,068 before the worker)", all >= 8_136, true
			}
			add(&browser, row)
		}
		if sec, ok := r.get("browser", "sync10k:s-to-synced"); ok {
			row := Row{ID: "browser-sync10k", Workload: "sync of 10,000 rows into a fresh browser, from navigation until up to date"}
			row.Uno = r.fig("browser", "sync10k:s-to-synced", func(v float64) string { return fmt.Sprintf("%.2f s", v) })
			row.Target, row.Pass, row.Checked = "≤ 5 s", sec <= 5, true
			add(&browser, row)
		}
	}

	docs := section{title: "Doc fields", before: docsProse, after: docsAfterProse}
	am, haveAM := r.get("doc-automerge", "ns/op")
	for _, id := range []string{"doc-local", "doc-local-relaxed"} {
		row, ok := r.row(id)
		if !ok {
			continue
		}
		if t, ok := r.get(id, "ns/op"); ok {
			m := r.byID[id].Median
			row.Uno = fmt.Sprintf("%s; row state %.0f B, document %.0f KB, db %.0f KB", r.fig(id, "edits/s", perSec("edits/s")),
				m["row-bytes"], m["doc-bytes"]/1e3, m["db-bytes"]/1e3)
			if haveAM {
				row.Ceiling = fmt.Sprintf("automerge-go: %s, saved %.0f KB", r.fig("doc-automerge", "edits/s", perSec("edits/s")), r.byID["doc-automerge"].Median["saved-bytes"]/1e3)
				ratio := t / am
				row.Ratio = fmt.Sprintf("%.2f× the time", ratio)
				row.Target, row.Pass, row.Checked = "≤ 1.5× the time", ratio <= 1.5, true
				if floor, ok := r.get("fsync-floor", "ns/op"); ok && id == "doc-local" {
					// A durable store commits each transaction with at
					// least one durable commit: Automerge's own work plus
					// one fsync floor per transaction is the least it takes.
					edits := math.Round(m["edits/s"] * t / 1e9)
					txs := math.Ceil(edits / TraceEditsPerTx)
					bound := am + txs*floor
					row.Ceiling += fmt.Sprintf("; automerge-go and one fsync floor per transaction (%s): %.2f× its time", num(txs), bound/am)
					row.Ratio += fmt.Sprintf("; %.2f× automerge-go and the fsync floors", t/bound)
					if bound > 1.5*am {
						row.Bound = fmt.Sprintf("automerge-go and one fsync floor per transaction take %.2f× its time in this run", bound/am)
					}
				}
			}
		}
		add(&docs, row)
	}
	if row, ok := r.row("doc-sync"); ok {
		if r.byID["doc-sync"].ok() {
			m := r.byID["doc-sync"].Median
			row.Uno = fmt.Sprintf("%s; changes %.0f KB, on the wire %.0f KB in and %.0f KB out", r.fig("doc-sync", "edits/s", perSec("edits/s")),
				m["change-bytes"]/1e3, m["wire-bytes-in"]/1e3, m["wire-bytes-out"]/1e3)
		}
		add(&docs, row)
	}
	if row, ok := r.row("doc-automerge"); ok && !r.byID["doc-automerge"].ok() {
		add(&docs, row) // its figures are in the rows above
	}

	for _, s := range []section{clients, stages, local, ceilings, syncs, query, browser, docs} {
		if len(s.rows) > 0 || s.before != "" {
			r.sections = append(r.sections, s)
		}
	}
}

// stagesSection is the table of where a paced write's time goes, from
// the traced run (PacedStages), beside the paced durable commit measured
// in the same run. It is empty when that run has no figures.
func (r *Report) stagesSection() section {
	const id = "paced-1-stages"
	m := r.byID[id]
	if !m.ok() {
		if row, ok := r.row(id); ok {
			return section{title: stagesTitle, rows: []Row{row}}
		}
		return section{}
	}
	us := func(unit string) string {
		v, _ := r.get(id, unit)
		if v < 1000 {
			return fmt.Sprintf("%.0f µs", v)
		}
		return fmt.Sprintf("%.2f ms", v/1000)
	}
	var b strings.Builder
	b.WriteString(stagesProse)
	fmt.Fprintf(&b, "\n%s. Figures are the medians over rounds of each round's p50 and p99.\n\n", m.Title)
	b.WriteString("| stage | starts, after the `Put` starts | takes | ceiling (same run) |\n|---|---|---|---|\n")
	for _, s := range stages {
		ceiling := ""
		if s.short == "append" {
			if _, ok := r.get("fsync-paced", "p50-ms"); ok {
				ceiling = "a paced durable commit: p50 " + r.fig("fsync-paced", "p50-ms", ms) + ", p99 " + r.fig("fsync-paced", "p99-ms", ms)
			}
		}
		fmt.Fprintf(&b, "| %s | p50 %s, p99 %s | p50 %s, p99 %s | %s |\n", s.title,
			us(s.short+"-at-p50-µs"), us(s.short+"-at-p99-µs"), us(s.short+"-p50-µs"), us(s.short+"-p99-µs"), dash(ceiling))
	}
	return section{title: stagesTitle, before: b.String()}
}

const stagesTitle = "Where a paced write's time goes"

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
