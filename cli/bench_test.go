package cli

import (
	"testing"

	"github.com/unosync/uno/bench"
)

// TestTargetLine: uno bench's closing lines say met or not met, and for a
// target out of reach on the run's machine, which ceiling stops it.
func TestTargetLine(t *testing.T) {
	for _, tc := range []struct {
		row  bench.Row
		want string
	}{
		{bench.Row{Workload: "w", Uno: "3 ms", Target: "≤ 4 ms", Pass: true}, "met      w: 3 ms (target ≤ 4 ms)"},
		{bench.Row{Workload: "w", Uno: "5 ms", Target: "≤ 4 ms"}, "not met  w: 5 ms (target ≤ 4 ms)"},
		{bench.Row{Workload: "w", Uno: "5 ms", Target: "≤ 4 ms", Bound: "the relay takes 4.5 ms"},
			"not met  w: 5 ms (target ≤ 4 ms; out of reach here: the relay takes 4.5 ms)"},
	} {
		if got := targetLine(tc.row); got != tc.want {
			t.Errorf("targetLine(%+v) = %q, want %q", tc.row, got, tc.want)
		}
	}
}
