package walfill

import "testing"

// The threshold follows the frames the checkpoints find: commits of 2
// frames each let the weight between checkpoints double.
func TestPacer_FollowsTheFrames(t *testing.T) {
	p := NewPacer(1000)
	if got := p.Threshold(); got != 500 {
		t.Fatalf("first threshold %d, want 500", got)
	}
	for range 10 {
		for !p.Add(1) {
		}
		w := p.Threshold()
		p.Observed(int(w) * 2) // 2 frames per unit of weight
	}
	if got := p.Threshold(); got < 480 || got > 500 {
		t.Errorf("threshold %d after commits of 2 frames, want about 500", got)
	}
	p.Observed(0) // a checkpoint that found nothing changes nothing
	if got := p.Threshold(); got < 480 || got > 500 {
		t.Errorf("threshold %d after an empty log", got)
	}
}
