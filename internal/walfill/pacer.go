package walfill

import "sync/atomic"

// Pacer decides when to checkpoint a write-ahead log in the background:
// its writers report the weight of each commit (Add), and it asks for a
// checkpoint once the weight since the last one stands for about
// TargetFrames of log. Pages per unit of weight depend on the workload
// (a new row dirties an index page an update does not), so each
// checkpoint reports how many frames the log held (Observed) and the
// next threshold follows: as often as SQLite's own automatic checkpoint,
// no more (checkpointing more often copies the same hot pages again: a
// client store's apply cost 14% more CPU at a fixed threshold 2.8 times
// too low).
type Pacer struct {
	target    int64
	weight    atomic.Int64 // since the last kick
	kicked    atomic.Int64 // the weight the last kick came at
	threshold atomic.Int64
}

// NewPacer returns a pacer aiming at target frames between checkpoints.
// It starts at a threshold of target/2 weight (two frames per unit of
// weight; a lone append of one transaction writes ~5 with a weight of 2).
func NewPacer(target int) *Pacer {
	p := &Pacer{target: int64(target)}
	p.threshold.Store(max(int64(target)/2, minThreshold))
	return p
}

// The thresholds a pacer keeps to.
const (
	minThreshold = 16
	maxThreshold = 1 << 16
)

// Add counts a commit of weight w and reports whether a checkpoint is due
// (the weight then starts again from 0).
func (p *Pacer) Add(w int) bool {
	n := p.weight.Add(int64(w))
	if n < p.threshold.Load() {
		return false
	}
	if !p.weight.CompareAndSwap(n, 0) {
		return false // another writer's Add crossed it too
	}
	p.kicked.Store(n)
	return true
}

// Observed reports that the log held frames frames when a checkpoint
// began, written since the one before (which let the log start over),
// while the weight of the last kick accumulated.
func (p *Pacer) Observed(frames int) {
	w := p.kicked.Load()
	if frames <= 0 || w <= 0 {
		return
	}
	next := p.target * w / int64(frames)
	t := (p.threshold.Load() + next) / 2 // smoothed: one checkpoint can come late
	p.threshold.Store(min(max(t, minThreshold), maxThreshold))
}

// Threshold returns the weight the next checkpoint comes at.
func (p *Pacer) Threshold() int64 { return p.threshold.Load() }
