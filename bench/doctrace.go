package bench

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/unosync/uno/client"
	"github.com/unosync/uno/crdt"
	"github.com/unosync/uno/server"
	"github.com/unosync/uno/store"
)

// The editing trace benchmarks replay the automerge-paper trace (259,778
// single-character edits of a LaTeX paper; see ../shared/data/README.md)
// into a doc field, TraceEditsPerTx edits per transaction — an editor
// that saves a burst of typing at a time — and check the final text
// against the trace's.

// TraceEditsPerTx is how many trace edits one transaction (and one
// Automerge change) carries.
const TraceEditsPerTx = 100

// ErrNoTrace reports that the trace file is not on this machine.
var ErrNoTrace = errors.New("bench: the automerge-paper editing trace is not here: set UNO_BENCH_DATA to the shared data directory (holding editing-traces/automerge-paper.json.gz); it is never downloaded")

// Trace is an editing trace: patches (position, characters deleted, text
// inserted) in order, and the text they make.
type Trace struct {
	Patches []TracePatch
	End     string
}

// TracePatch is one edit of a trace.
type TracePatch struct {
	Pos, Del int
	Ins      string
}

var (
	traceOnce sync.Once
	trace     *Trace
	traceErr  error
)

// LoadTrace reads the automerge-paper trace from $UNO_BENCH_DATA, or from
// ../shared/data beside the repository.
func LoadTrace() (*Trace, error) {
	traceOnce.Do(func() { trace, traceErr = loadTrace() })
	return trace, traceErr
}

func traceFile() string {
	const name = "editing-traces/automerge-paper.json.gz"
	if d := os.Getenv("UNO_BENCH_DATA"); d != "" {
		return filepath.Join(d, name)
	}
	// Walk up from the working directory to the repository's parent.
	dir, _ := os.Getwd()
	for range 6 {
		p := filepath.Join(dir, "..", "shared", "data", name)
		if _, err := os.Stat(p); err == nil {
			return p
		}
		dir = filepath.Dir(dir)
	}
	return ""
}

func loadTrace() (*Trace, error) {
	path := traceFile()
	if path == "" {
		return nil, ErrNoTrace
	}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, ErrNoTrace
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var raw struct {
		EndContent string `json:"endContent"`
		Txns       []struct {
			Patches [][3]json.RawMessage `json:"patches"`
		} `json:"txns"`
	}
	if err := json.NewDecoder(z).Decode(&raw); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	t := &Trace{End: raw.EndContent}
	for _, tx := range raw.Txns {
		for _, p := range tx.Patches {
			var tp TracePatch
			if err := errors.Join(json.Unmarshal(p[0], &tp.Pos), json.Unmarshal(p[1], &tp.Del), json.Unmarshal(p[2], &tp.Ins)); err != nil {
				return nil, fmt.Errorf("%s: patch %s: %w", path, p, err)
			}
			t.Patches = append(t.Patches, tp)
		}
	}
	return t, nil
}

// batches splits the patches into transactions of n.
func (t *Trace) batches(n int) [][]TracePatch {
	var out [][]TracePatch
	for i := 0; i < len(t.Patches); i += n {
		out = append(out, t.Patches[i:min(i+n, len(t.Patches))])
	}
	return out
}

func loadTraceOrFatal(b B) *Trace {
	b.Helper()
	t, err := LoadTrace()
	if err != nil {
		b.Fatal(err)
	}
	return t
}

var tracePath = client.Path{"text"}

// DocTraceLocal replays the trace into a doc field of a client's local
// store (a SQLite file, default durability: each transaction fsync'd), no
// server. It reports edits/s, the bytes of the row's state, of the
// document's chunks and of the database.
func DocTraceLocal(b B) { docTraceLocal(b, "FULL") }

// DocTraceLocalRelaxed is DocTraceLocal with SQLite's synchronous=NORMAL:
// a transaction survives the app crashing, not the machine losing power.
func DocTraceLocalRelaxed(b B) { docTraceLocal(b, "NORMAL") }

func docTraceLocal(b B, sync string) {
	t := loadTraceOrFatal(b)
	ctx := context.Background()
	defer func() { b.ReportMetric(float64(len(t.Patches))*float64(b.N())/b.Elapsed().Seconds(), "edits/s") }()
	for range b.N() {
		b.StopTimer()
		path := filepath.Join(b.TempDir(), "local.db")
		c, err := client.Open(ctx, client.Config{Path: path, Schema: traceSchema, Synchronous: sync})
		if err != nil {
			b.Fatal(err)
		}
		notes := c.Collection("notes")
		b.StartTimer()
		replayTrace(b, notes, t)
		b.StopTimer()
		checkTraceText(b, c, t)
		c.Close()
		reportDocBytes(b, path)
		b.StartTimer()
	}
}

// DocTraceSync replays the trace into a doc field on one client while a
// second client, syncing through an in-process server (the embedded
// SQLite log), follows; an iteration ends when the second client's text
// is the trace's final text. It reports edits/s end to end, the bytes of
// changes pushed and the frame bytes the server received and sent.
func DocTraceSync(b B) {
	t := loadTraceOrFatal(b)
	ctx := context.Background()
	for n := range b.N() {
		b.StopTimer()
		e := startSync(b, server.Config{})
		writer := e.client(b, fmt.Sprint("w", n), client.Config{Schema: traceSchema})
		reader := e.client(b, fmt.Sprint("r", n), client.Config{Schema: traceSchema})
		for _, c := range []*client.Client{writer, reader} {
			if err := c.Sync(ctx); err != nil {
				b.Fatal(err)
			}
		}
		w, err := reader.Collection("notes").WatchDoc(ctx, "paper", "body")
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		start := time.Now()
		var pushed int
		replayTrace(b, writer.Collection("notes"), t)
		want, _ := json.Marshal(map[string]string{"text": t.End})
		deadline := time.After(10 * time.Minute)
	wait:
		for {
			select {
			case u, ok := <-w.C:
				if !ok {
					b.Fatalf("watch stopped: %v", w.Err())
				}
				if string(u.JSON) == string(want) {
					break wait
				}
			case <-deadline:
				b.Fatal("the second client did not receive the whole trace in 10 minutes")
			}
		}
		elapsed := time.Since(start)
		b.StopTimer()
		w.Close()
		txs, err := writerChanges(ctx, e)
		if err != nil {
			b.Fatal(err)
		}
		pushed = txs
		b.ReportMetric(float64(len(t.Patches))/elapsed.Seconds(), "edits/s")
		b.ReportMetric(float64(pushed), "change-bytes")
		// What the sockets carried (frames, compressed), both ways.
		metrics := &serverProcess{url: e.url}
		b.ReportMetric(scrape(b, metrics, "uno_bytes_in_total"), "wire-bytes-in")
		b.ReportMetric(scrape(b, metrics, "uno_bytes_out_total"), "wire-bytes-out")
		b.StartTimer()
	}
}

// writerChanges sums the bytes of the doc changes the server's log holds.
func writerChanges(ctx context.Context, e *syncEnv) (int, error) {
	head, err := e.log.Head(ctx, "bench")
	if err != nil {
		return 0, err
	}
	var n int
	for from := uint64(0); from < head; {
		chs, err := e.log.Read(ctx, "bench", from, 1000, 8<<20)
		if err != nil {
			return 0, err
		}
		if len(chs) == 0 {
			break
		}
		for _, ch := range chs {
			for _, op := range ch.Tx.Ops {
				if op.Type == crdt.OpChange {
					n += len(op.Value)
				}
			}
			from = ch.Seq
		}
	}
	return n, nil
}

// replayTrace splices the trace into notes/paper's body, TraceEditsPerTx
// edits to a transaction.
func replayTrace(b B, notes *client.Collection, t *Trace) {
	b.Helper()
	for _, batch := range t.batches(TraceEditsPerTx) {
		if err := notes.EditDoc(context.Background(), "paper", "body", func(e *client.DocEdit) error {
			for _, p := range batch {
				if err := e.Splice(tracePath, p.Pos, p.Del, p.Ins); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			b.Fatal(err)
		}
	}
}

var traceSchema = &store.Schema{Collections: []store.Collection{{Name: "notes", Fields: []store.Field{{Name: "body", Kind: crdt.KindDoc}}}}}

func checkTraceText(b B, c *client.Client, t *Trace) {
	b.Helper()
	got, err := c.Collection("notes").Text(context.Background(), "paper", "body", tracePath)
	if err != nil {
		b.Fatal(err)
	}
	if got != t.End {
		i := 0
		for i < len(got) && i < len(t.End) && got[i] == t.End[i] {
			i++
		}
		b.Fatalf("replayed text differs from the trace's at byte %d of %d: %q", i, len(t.End), strings.TrimSpace(got[i:min(i+40, len(got))]))
	}
}

func reportDocBytes(b B, path string) {
	st, err := store.OpenSQLite(context.Background(), path, store.Options{Schema: traceSchema})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	r, err := st.Row(context.Background(), "notes", "paper")
	if err != nil || r == nil {
		b.Fatalf("row: %v", err)
	}
	split, _ := crdt.EncodeRowSplit(r)
	b.ReportMetric(float64(len(split)), "row-bytes")
	if f, ok := r.Field("body"); ok {
		b.ReportMetric(float64(f.Doc.Len()), "doc-bytes")
	}
	var size int64
	for _, suffix := range []string{"", "-wal"} {
		if fi, err := os.Stat(path + suffix); err == nil {
			size += fi.Size()
		}
	}
	b.ReportMetric(float64(size), "db-bytes")
}
