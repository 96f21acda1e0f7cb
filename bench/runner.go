package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/unosync/uno/client"
	"github.com/unosync/uno/crdt"
	"github.com/unosync/uno/server"
	"github.com/unosync/uno/server/pglog"
)

// Options configure Run.
type Options struct {
	// BenchTime is how long each timed benchmark (the local ones and the
	// fsync floor) runs per round; default 2s, 50ms with Quick.
	BenchTime time.Duration
	// Rounds is how many times each workload runs; workloads and their
	// ceilings alternate, round by round. Tables show medians and the
	// min–max over rounds. Default 5; 1 with Quick.
	Rounds int
	// Quick runs every workload once at tiny sizes (2 clients × 20
	// updates, 5 × 4, 5 paced writes, ...): a check that everything
	// works, for tests and CI; its figures mean nothing. The doc trace
	// workloads, which have no small size, are skipped.
	Quick bool
	// Only, if set, runs only these groups or workloads (see Workloads);
	// the ceilings the selected ones are compared with run too.
	Only []string
	// Log, if set, receives the benchmarks' log output.
	Log io.Writer
	// Progress, if set, is called before each step.
	Progress func(Step)
}

// Step is one run of one workload, as Progress reports it.
type Step struct {
	Workload      string
	Round, Rounds int // 1-based
	Done, Total   int // steps done before this one, and in all
}

// Workload describes one workload Run knows.
type Workload struct {
	ID    string // the name for Options.Only and results.json
	Group string // local, clients, ceilings, sync, postgres, query, browser, docs
	Title string
	// Ceilings are the IDs of the workloads it is compared with.
	Ceilings []string
}

// def is a workload with its body.
type def struct {
	Workload
	f    func(B)
	bt   benchTime
	once bool   // one round whatever Options.Rounds says
	skip string // why it is not run here
}

// sizes are the workloads' parameters, full or quick.
type sizes struct {
	two, fifty      Fanout
	pacedOne, paced Paced
	echo            int
	bcastReceivers  int
	bcastMessages   int
	roomPeers       int
	roomWrites      int
	latReaders      int
	latWrites       int
	bootRows        int
	queryRequests   int
}

func (o Options) sizes() sizes {
	if o.Quick {
		return sizes{
			two: Fanout{2, 20}, fifty: Fanout{5, 4},
			pacedOne: Paced{Receivers: 1, Hz: 50, Writes: 5}, paced: Paced{Receivers: 4, Hz: 20, Writes: 5},
			echo: 50, bcastReceivers: 4, bcastMessages: 20,
			roomPeers: 5, roomWrites: 4, latReaders: 4, latWrites: 5, bootRows: 1000, queryRequests: 20,
		}
	}
	return sizes{
		two: TwoClients, fifty: FiftyClients, pacedOne: PacedOne, paced: PacedMany,
		echo: 2000, bcastReceivers: FiftyClients.Clients - 1, bcastMessages: FiftyClients.Clients * FiftyClients.Updates,
		roomPeers: 50, roomWrites: 40, latReaders: 49, latWrites: 250, bootRows: bootstrapRows(BootstrapTargetRows), queryRequests: 1000,
	}
}

var modes = []struct {
	name string
	d    client.Durability
}{{"full", client.DurabilityFull}, {"relaxed", client.DurabilityRelaxed}}

// defs lists every workload in the order a round runs them.
func (o Options) defs() []def {
	s := o.sizes()
	timed := benchTime{d: o.BenchTime}
	once := benchTime{n: 1}
	d := []def{
		{Workload: Workload{"local-tx1000", "local", fmt.Sprintf("1,000-op transactions (%d rows × %d fields), sync=FULL", TxOps/FieldsPerRow, FieldsPerRow), []string{"plain-tx1000"}}, f: WriteTx1000, bt: timed},
		{Workload: Workload{"plain-tx1000", "local", "plain SQLite: the same rows, one log row each", nil}, f: PlainTx1000, bt: timed},
		{Workload: Workload{"local-single", "local", "single-op transactions, sync=FULL", []string{"fsync-floor"}}, f: WriteSingle, bt: timed},
		{Workload: Workload{"fsync-floor", "ceilings", "the fsync floor: plain SQLite, one row and one log row per transaction, sync=FULL", nil}, f: PlainSingle, bt: timed},
		{Workload: Workload{"fsync-shared-2", "ceilings", "the fsync floor shared: 2 writers at once, each the fsync floor's sequential writer into a file of its own", nil}, f: PlainShared(2), bt: timed},
		{Workload: Workload{"fsync-shared-3", "ceilings", "the fsync floor shared: 3 writers at once (the 2-client workload's two stores and the server's log)", nil}, f: PlainShared(3), bt: timed},
		{Workload: Workload{"fsync-paced", "ceilings", fmt.Sprintf("a paced durable commit: the fsync floor's transaction at %.0f Hz (%d commits), its latency", s.pacedOne.Hz, s.pacedOne.Writes), nil}, f: PacedFsync(s.pacedOne), bt: once},
		{Workload: Workload{"local-apply", "local", "remote one-field transactions applied one per commit", []string{"plain-apply"}}, f: ApplyOne, bt: timed},
		{Workload: Workload{"local-apply-batch", "local", fmt.Sprintf("remote one-field transactions applied %d per commit", ApplyPerCommit), []string{"plain-apply"}}, f: ApplyBatch, bt: timed},
		{Workload: Workload{"plain-apply", "ceilings", "plain SQLite: upsert one row and a cursor per transaction, sync=NORMAL", nil}, f: PlainApply, bt: timed},
		{Workload: Workload{"local-read", "local", "read by key (10,000 rows)", nil}, f: ReadByKey, bt: timed},
		{Workload: Workload{"local-query", "local", "query returning 100 of 10,000 rows (indexed)", nil}, f: Query100, bt: timed},
		{Workload: Workload{"local-watch", "local", "watch: write → notification of a 100-row live query", nil}, f: WatchLatency, bt: timed},
		{Workload: Workload{"ws-echo", "ceilings", fmt.Sprintf("raw WebSocket echo on loopback, an update-sized frame, %s round trips", num(float64(s.echo))), nil}, f: WSEcho(s.echo), bt: once},
		{Workload: Workload{"relay-1", "ceilings", fmt.Sprintf("a durable relay: 1 writer at %.0f Hz (%d writes), a server that commits each (the fsync floor's transaction) and forwards it to %d receiver, raw WebSocket", s.pacedOne.Hz, s.pacedOne.Writes, s.pacedOne.Receivers), nil}, f: WSRelay(s.pacedOne), bt: once},
		{Workload: Workload{"relay-49", "ceilings", fmt.Sprintf("a durable relay: 1 writer at %.0f Hz (%d writes), forwarded to %d receivers, raw WebSocket", s.paced.Hz, s.paced.Writes, s.paced.Receivers), nil}, f: WSRelay(s.paced), bt: once},
		{Workload: Workload{"relay-1-replicas", "ceilings", fmt.Sprintf("a durable relay between replicas (the replica relay): the %d-receiver relay, the writer and the receiver each committing to a plain SQLite file of its own (sync=NORMAL), the receiver reading the row back", s.pacedOne.Receivers), nil}, f: WSRelayReplicas(s.pacedOne), bt: once},
		{Workload: Workload{"relay-49-replicas", "ceilings", fmt.Sprintf("a durable relay between replicas (the replica relay): the %d-receiver relay, each peer committing to a plain SQLite file of its own (sync=NORMAL), each receiver reading the row back", s.paced.Receivers), nil}, f: WSRelayReplicas(s.paced), bt: once},
		{Workload: Workload{"ws-broadcast", "ceilings", fmt.Sprintf("raw WebSocket broadcast on loopback: 1 sender, %d receivers, %s update-sized messages", s.bcastReceivers, num(float64(s.bcastMessages))), nil}, f: WSBroadcast(s.bcastReceivers, s.bcastMessages), bt: once},
	}
	for _, m := range modes {
		d = append(d,
			def{Workload: Workload{"clients-2-" + m.name, "clients", fmt.Sprintf("%d clients × %s updates, one per transaction, %s durability", s.two.Clients, num(float64(s.two.Updates)), m.name), []string{"fsync-floor", "fsync-shared-2", "fsync-shared-3"}}, f: ClientUpdates(s.two, m.d), bt: once},
			def{Workload: Workload{"clients-50-" + m.name, "clients", fmt.Sprintf("%d clients × %d updates, each to the other %d, %s durability", s.fifty.Clients, s.fifty.Updates, s.fifty.Clients-1, m.name), []string{"ws-broadcast"}}, f: ClientUpdates(s.fifty, m.d), bt: once},
			def{Workload: Workload{"paced-1-" + m.name, "clients", fmt.Sprintf("paced latency: 1 writer at %.0f Hz (%d writes), %d receiver, Put → Watch, %s durability", s.pacedOne.Hz, s.pacedOne.Writes, s.pacedOne.Receivers, m.name), []string{"relay-1", "relay-1-replicas", "ws-echo", "fsync-floor", "fsync-paced"}}, f: PacedWatch(s.pacedOne, m.d), bt: once},
			def{Workload: Workload{"paced-49-" + m.name, "clients", fmt.Sprintf("paced latency: 1 writer at %.0f Hz (%d writes), %d receivers, Put → Watch, %s durability", s.paced.Hz, s.paced.Writes, s.paced.Receivers, m.name), []string{"relay-49", "relay-49-replicas", "ws-echo", "fsync-floor", "fsync-paced"}}, f: PacedWatch(s.paced, m.d), bt: once},
		)
	}
	d = append(d,
		def{Workload: Workload{"paced-1-stages", "clients", fmt.Sprintf("paced latency, traced: 1 writer at %.0f Hz (%d writes), %d receiver, relaxed durability, each write's trace taken apart", s.pacedOne.Hz, s.pacedOne.Writes, s.pacedOne.Receivers), []string{"fsync-paced"}}, f: PacedStages(s.pacedOne), bt: once},
		def{Workload: Workload{"sync-updates", "sync", "2 clients × 10,000 field updates, 100 per transaction, durable", nil}, f: SyncUpdates, bt: once},
		def{Workload: Workload{"room", "sync", fmt.Sprintf("room: %d load-generating peers × %d writes, every write to the other %d", s.roomPeers, s.roomWrites, s.roomPeers-1), []string{"ws-broadcast"}}, f: room(s.roomPeers, s.roomWrites), bt: once},
		def{Workload: Workload{"room-latency", "sync", fmt.Sprintf("latency: 1 peer writing at 50 Hz (%d writes), %d reading peers, push → delivery", s.latWrites, s.latReaders), []string{"ws-echo"}}, f: pacedLatency(s.latReaders, s.latWrites), bt: once},
		def{Workload: Workload{"bootstrap", "sync", fmt.Sprintf("bootstrap: a new client, %s rows (3 fields each)", num(float64(s.bootRows))), nil}, f: func(b B) { bootstrap(b, startServerProcess(b), s.bootRows) }, bt: once, once: true},
	)
	logs := []string{"sqlite"}
	open := map[string]func(B) server.Log{"sqlite": sqliteLog}
	pgSkip := "set " + pgDSNEnv + " to an admin DSN of a Postgres server to measure it"
	ingestDB := func(B) (string, func(string) string) { return "", nil }
	copyDB := func(B) string { return "" }
	bootPG := func(B) *serverProcess { return nil }
	if dsn := os.Getenv(pgDSNEnv); dsn != "" {
		logs = append(logs, "postgres")
		open["postgres"] = func(b B) server.Log {
			admin, app := scratchPG(b, dsn)
			return pgLog(b, admin, app)
		}
		pgSkip = ""
		ingestDB = func(b B) (string, func(string) string) { return scratchPG(b, dsn) }
		copyDB = func(b B) string { admin, _ := scratchPG(b, dsn); return admin }
		bootPG = func(b B) *serverProcess {
			admin, app := scratchPG(b, dsn)
			if err := pglog.Migrate(context.Background(), admin, pglog.SchemaVersion); err != nil {
				b.Fatal(err)
			}
			return startServerProcess(b, "--postgres", app(admin))
		}
	}
	ingest := fmt.Sprintf("%d appenders × %d batches of %d transactions", IngestAppenders, IngestBatches, IngestBatch)
	d = append(d,
		def{Workload: Workload{"pg-ingest", "postgres", fmt.Sprintf("Postgres log ingest: %s (one new %d-field row each), one tenant, durable, as uno serve's role", ingest, FieldsPerRow), []string{"pg-copy"}},
			f: PGIngest(ingestDB, func(int) string { return "bench" }), bt: benchTime{n: 3}, skip: pgSkip},
		def{Workload: Workload{"pg-copy", "postgres", "Postgres COPY: the same transactions' bytes into a plain table, " + ingest, nil},
			f: PGCopy(copyDB), bt: benchTime{n: 3}, skip: pgSkip},
		def{Workload: Workload{"bootstrap-pg", "postgres", fmt.Sprintf("bootstrap from uno serve --postgres: a new client, %s rows (3 fields each)", num(float64(s.bootRows))), nil},
			f: func(b B) { bootstrap(b, bootPG(b), s.bootRows) }, bt: once, once: true, skip: pgSkip},
	)
	for _, backend := range logs {
		for _, cached := range []bool{true, false} {
			mode, title := "uncached", "uncached (a write before each request)"
			if cached {
				mode, title = "cached", "cached"
			}
			d = append(d, def{Workload: Workload{"query-" + backend + "-" + mode, "query", fmt.Sprintf("query API (%s log): a 100-row page of 10,000 over HTTP, %s", backend, title), nil},
				f: queryPage(open[backend], cached), bt: benchTime{n: s.queryRequests}, once: true})
		}
	}
	browserSkip := "skipped with --quick (it builds the WebAssembly client and drives Chromium)"
	if !o.Quick {
		browserSkip = browserSkipReason()
	}
	d = append(d, def{Workload: Workload{"browser", "browser", fmt.Sprintf("the browser: the client in Chromium (uno.wasm in a Web Worker, SQLite on IndexedDB), %d runs of each benchmark of internal/browser", BrowserRounds), nil},
		f: Browser, bt: once, once: true, skip: browserSkip})
	docSkip := ""
	switch {
	case o.Quick:
		docSkip = "skipped with --quick (the trace has no small size)"
	case !crdt.DocEditing:
		docSkip = crdt.ErrDocUnavailable.Error()
	default:
		if _, err := LoadTrace(); err != nil {
			docSkip = err.Error()
		}
	}
	trace := fmt.Sprintf("automerge-paper trace (259,778 edits, %d per transaction) into a doc field", TraceEditsPerTx)
	d = append(d,
		def{Workload: Workload{"doc-local", "docs", trace + ", local store, sync=FULL", []string{"doc-automerge"}}, f: DocTraceLocal, bt: once, skip: docSkip},
		def{Workload: Workload{"doc-local-relaxed", "docs", trace + ", local store, sync=NORMAL", []string{"doc-automerge"}}, f: DocTraceLocalRelaxed, bt: once, skip: docSkip},
		def{Workload: Workload{"doc-automerge", "docs", "automerge-go: the same trace, one commit per 100 edits", nil}, f: DocTraceAutomerge, bt: once, skip: docSkip},
		def{Workload: Workload{"doc-sync", "docs", "the same trace end to end: writer → server → a second client's WatchDoc", nil}, f: DocTraceSync, bt: once, skip: docSkip},
	)
	return d
}

// Workloads lists the workloads Run knows, in the order it runs them
// (with Options' sizes in their titles).
func (o Options) Workloads() []Workload {
	var ws []Workload
	for _, d := range o.withDefaults().defs() {
		ws = append(ws, d.Workload)
	}
	return ws
}

func (o Options) withDefaults() Options {
	if o.Rounds <= 0 {
		o.Rounds = 5
		if o.Quick {
			o.Rounds = 1
		}
	}
	if o.BenchTime <= 0 {
		o.BenchTime = 2 * time.Second
		if o.Quick {
			o.BenchTime = 50 * time.Millisecond
		}
	}
	return o
}

// selected returns the defs Only picks, with their ceilings.
func (o Options) selected() ([]def, error) {
	all := o.defs()
	if len(o.Only) == 0 {
		return all, nil
	}
	want := map[string]bool{}
	for _, name := range o.Only {
		found := false
		for _, d := range all {
			if d.ID == name || d.Group == name {
				want[d.ID], found = true, true
			}
		}
		if !found {
			return nil, fmt.Errorf("bench: no workload or group %q (groups: local, clients, ceilings, sync, postgres, query, browser, docs)", name)
		}
	}
	for _, d := range all {
		if want[d.ID] {
			for _, c := range d.Ceilings {
				want[c] = true
			}
		}
	}
	return slices.DeleteFunc(all, func(d def) bool { return !want[d.ID] }), nil
}

// Measured is one workload's figures.
type Measured struct {
	Workload
	// Rounds holds each round's figures (ReportMetric's units, plus
	// ns/op and iterations).
	Rounds []map[string]float64 `json:"rounds"`
	// Median, Min and Max are per figure, over rounds.
	Median map[string]float64 `json:"median,omitempty"`
	Min    map[string]float64 `json:"min,omitempty"`
	Max    map[string]float64 `json:"max,omitempty"`
	// Skipped says why it did not run; Error why it failed.
	Skipped string `json:"skipped,omitempty"`
	Error   string `json:"error,omitempty"`
}

// ok reports whether m has figures.
func (m *Measured) ok() bool { return m != nil && len(m.Median) > 0 }

// Run runs the selected workloads, Rounds times each (alternating, so
// that a workload and its ceiling see the same machine), and returns
// the report. A workload that fails is recorded with its error and not
// run again; Run then returns the report and an error naming it.
func Run(o Options) (*Report, error) {
	o = o.withDefaults()
	defs, err := o.selected()
	if err != nil {
		return nil, err
	}
	r := &Report{Date: time.Now().UTC(), Machine: machine(), Rounds: o.Rounds, BenchTime: o.BenchTime.String(), Quick: o.Quick, Only: o.Only,
		byID: map[string]*Measured{}}
	total := 0
	for _, d := range defs {
		m := &Measured{Workload: d.Workload, Skipped: d.skip}
		r.Workloads = append(r.Workloads, m)
		r.byID[d.ID] = m
		if d.skip == "" {
			total += d.rounds(o)
		}
	}
	done := 0
	for round := range o.Rounds {
		for _, d := range defs {
			m := r.byID[d.ID]
			if d.skip != "" || round >= d.rounds(o) {
				continue
			}
			if o.Progress != nil {
				o.Progress(Step{Workload: d.ID, Round: round + 1, Rounds: d.rounds(o), Done: done, Total: total})
			}
			done++
			if m.Error != "" {
				continue
			}
			res, err := measure(d.f, d.bt, o.Log)
			if err != nil {
				m.Error = err.Error()
				continue
			}
			fig := maps.Clone(res.Extra)
			fig["ns/op"] = float64(res.NsPerOp())
			fig["iterations"] = float64(res.N)
			m.Rounds = append(m.Rounds, fig)
		}
	}
	var errs []error
	for _, m := range r.Workloads {
		m.summarize()
		if m.Error != "" {
			errs = append(errs, fmt.Errorf("bench: %s: %s", m.ID, m.Error))
		}
	}
	r.build()
	return r, errors.Join(errs...)
}

func (d def) rounds(o Options) int {
	if d.once {
		return 1
	}
	return o.Rounds
}

// summarize sets the median, min and max of each figure.
func (m *Measured) summarize() {
	if len(m.Rounds) == 0 {
		return
	}
	m.Median, m.Min, m.Max = map[string]float64{}, map[string]float64{}, map[string]float64{}
	for unit := range m.Rounds[0] {
		var vs []float64
		for _, r := range m.Rounds {
			vs = append(vs, r[unit])
		}
		slices.Sort(vs)
		m.Median[unit], m.Min[unit], m.Max[unit] = vs[len(vs)/2], vs[0], vs[len(vs)-1]
	}
}

// num formats f with no decimals and thousands separated by commas.
func num(f float64) string {
	s := fmt.Sprintf("%.0f", f)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	if neg {
		s = "-" + s
	}
	return s
}
