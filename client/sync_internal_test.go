package client

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

func TestRetryDelay_Ceiling(t *testing.T) {
	const never = time.Duration(math.MaxInt64)
	for _, tt := range []struct {
		lo, hi   time.Duration
		failures int
		want     time.Duration // the ceiling: the longest delay
	}{
		{200 * time.Millisecond, 30 * time.Second, 1, 200 * time.Millisecond},
		{200 * time.Millisecond, 30 * time.Second, 2, 400 * time.Millisecond},
		{200 * time.Millisecond, 30 * time.Second, 3, 800 * time.Millisecond},
		{200 * time.Millisecond, 30 * time.Second, 8, 25600 * time.Millisecond},
		{200 * time.Millisecond, 30 * time.Second, 9, 30 * time.Second}, // capped
		{200 * time.Millisecond, 30 * time.Second, 1000, 30 * time.Second},
		{200 * time.Millisecond, 30 * time.Second, math.MaxInt, 30 * time.Second}, // an error no retry can fix
		{200 * time.Millisecond, 30 * time.Second, 0, 200 * time.Millisecond},
		{time.Hour, time.Hour, 1, time.Hour},
		{time.Hour, time.Hour, 50, time.Hour},
		{time.Second, never, 100, never}, // doubling never overflows
		{time.Second, never, math.MaxInt, never},
	} {
		var asked int64
		longest := retryDelay(tt.lo, tt.hi, tt.failures, func(n int64) int64 { asked = n; return n - 1 })
		shortest := retryDelay(tt.lo, tt.hi, tt.failures, func(n int64) int64 { return 0 })
		if longest != tt.want || time.Duration(asked) != tt.want || shortest != 1 {
			t.Errorf("retryDelay(%s, %s, %d) ranges over [%s, %s] (drawn below %s), want (0, %s]",
				tt.lo, tt.hi, tt.failures, shortest, longest, time.Duration(asked), tt.want)
		}
	}
}

// Full jitter: delays spread over the whole of (0, ceiling].
func TestRetryDelay_Jitter(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const lo, hi, failures = 100 * time.Millisecond, 30 * time.Second, 4
	const ceil = 800 * time.Millisecond
	const draws = 10_000
	seen := map[time.Duration]bool{}
	shortest, longest, sum := time.Duration(math.MaxInt64), time.Duration(0), 0.0
	for range draws {
		d := retryDelay(lo, hi, failures, rng.Int64N)
		if d <= 0 || d > ceil {
			t.Fatalf("delay %s outside (0, %s]", d, ceil)
		}
		seen[d] = true
		shortest, longest = min(shortest, d), max(longest, d)
		sum += float64(d)
	}
	if len(seen) < draws*9/10 {
		t.Errorf("%d distinct delays of %d: not jittered", len(seen), draws)
	}
	if shortest > ceil/100 || longest < ceil*99/100 {
		t.Errorf("delays span [%s, %s], want nearly all of (0, %s]", shortest, longest, ceil)
	}
	if mean := time.Duration(sum / draws); mean < ceil*45/100 || mean > ceil*55/100 {
		t.Errorf("mean delay %s, want about half of %s", mean, ceil)
	}
}
