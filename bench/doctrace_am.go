//go:build cgo && (linux || darwin) && (amd64 || arm64)

package bench

import (
	"time"

	"github.com/automerge/automerge-go"
)

// DocTraceAutomerge replays the trace through automerge-go directly, one
// commit per TraceEditsPerTx edits as DocTraceLocal's transactions: the
// floor uno's doc fields are measured against. It reports edits/s and
// the saved document's bytes.
func DocTraceAutomerge(b B) {
	t := loadTraceOrFatal(b)
	defer func() { b.ReportMetric(float64(len(t.Patches))*float64(b.N())/b.Elapsed().Seconds(), "edits/s") }()
	for range b.N() {
		d := automerge.New()
		text := d.Path("text").Text()
		if err := d.Path("text").Set(automerge.NewText("")); err != nil {
			b.Fatal(err)
		}
		now := time.Now()
		for _, batch := range t.batches(TraceEditsPerTx) {
			for _, p := range batch {
				if err := text.Splice(p.Pos, p.Del, p.Ins); err != nil {
					b.Fatal(err)
				}
			}
			if _, err := d.Commit("", automerge.CommitOptions{Time: &now}); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		got, err := text.Get()
		if err != nil || got != t.End {
			b.Fatalf("automerge-go's text differs from the trace's (%v)", err)
		}
		b.ReportMetric(float64(len(d.Save())), "saved-bytes")
		b.StartTimer()
	}
}
