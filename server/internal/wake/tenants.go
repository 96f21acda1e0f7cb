package wake

import (
	"context"
	"sync"
	"time"
)

// Tenants is a worker's queue of tenants to visit: an async projection's
// worker is kicked for each tenant whose log grew, and catches them up in
// rounds. A tenant kicked many times before a round is visited once, so
// the set holds at most one entry per tenant with new entries.
type Tenants struct {
	mu    sync.Mutex
	dirty map[string]bool
	wake  chan struct{} // 1-buffered
}

// NewTenants returns an empty queue.
func NewTenants() *Tenants {
	return &Tenants{dirty: map[string]bool{}, wake: make(chan struct{}, 1)}
}

// Kick asks for a visit of tenant in the next round.
func (q *Tenants) Kick(tenant string) {
	q.mu.Lock()
	q.dirty[tenant] = true
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// Work visits kicked tenants with visit until ctx ends. A visit that
// fails (other than by ctx) is reported to failed and retried in a later
// round, after a backoff that doubles from 100ms up to 10s while rounds
// keep failing.
func (q *Tenants) Work(ctx context.Context, visit func(ctx context.Context, tenant string) error, failed func(tenant string, err error)) {
	backoff := 100 * time.Millisecond
	for {
		select {
		case <-q.wake:
		case <-ctx.Done():
			return
		}
		q.mu.Lock()
		round := q.dirty
		q.dirty = map[string]bool{}
		q.mu.Unlock()
		ok := true
		for tenant := range round {
			if err := visit(ctx, tenant); err != nil {
				if ctx.Err() != nil {
					return
				}
				failed(tenant, err)
				ok = false
				q.Kick(tenant) // again, after the backoff
			}
		}
		if ok {
			backoff = 100 * time.Millisecond
			continue
		}
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return
		}
		backoff = min(2*backoff, 10*time.Second)
	}
}
