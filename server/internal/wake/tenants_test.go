package wake

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// Kicks before a round coalesce into one visit; a failed visit is
// reported and retried until it succeeds.
func TestTenants_Work(t *testing.T) {
	q := NewTenants()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var mu sync.Mutex
	visits := map[string]int{}
	fails := 0
	done := make(chan struct{})
	for range 5 {
		q.Kick("a")
	}
	q.Kick("b")
	go q.Work(ctx, func(_ context.Context, tenant string) error {
		mu.Lock()
		defer mu.Unlock()
		visits[tenant]++
		if tenant == "b" && visits["b"] < 3 {
			return errors.New("not yet")
		}
		if visits["b"] == 3 {
			select {
			case <-done:
			default:
				close(done)
			}
		}
		return nil
	}, func(tenant string, err error) {
		mu.Lock()
		fails++
		mu.Unlock()
	})
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatal("the failing tenant was not retried")
	}
	mu.Lock()
	defer mu.Unlock()
	if visits["a"] != 1 || fails != 2 {
		t.Fatalf("visits %v, failures %d: want a once (five kicks, one round) and b failing twice", visits, fails)
	}
}
