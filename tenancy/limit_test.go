package tenancy

import (
	"fmt"
	"testing"
	"time"
)

func TestLimiter_Allow(t *testing.T) {
	l := NewLimiter(0)
	now := time.Unix(1000, 0)
	if !l.Allow("a", 10, 10, now) {
		t.Fatal("a full bucket refused one second's worth")
	}
	if l.Allow("a", 10, 1, now) {
		t.Fatal("an empty bucket allowed more")
	}
	if !l.Allow("b", 10, 5, now) {
		t.Fatal("one tenant's use limited another")
	}
	if !l.Allow("a", 10, 5, now.Add(500*time.Millisecond)) {
		t.Fatal("the bucket did not refill at 10/s")
	}
	if !l.Allow("a", 0, 1_000_000, now) {
		t.Fatal("no limit refused")
	}
	if !l.Allow("c", 10, 50, now) {
		t.Fatal("a push larger than a second's worth refused with a full bucket")
	}
}

// Buckets are keyed by tenant; the map must not grow without bound.
func TestLimiter_Evicts(t *testing.T) {
	l := NewLimiter(100)
	now := time.Unix(1000, 0)
	for i := range 10_000 {
		l.Allow(fmt.Sprintf("t%d", i), 5, 1, now)
	}
	if n := l.Len(); n != 100 {
		t.Fatalf("Len = %d after 10,000 tenants, want 100", n)
	}
	if l.Allow("t9999", 5, 5, now) {
		t.Fatal("the most recent tenant's bucket was evicted")
	}
}
