package tenancy

import (
	"container/list"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Limiter enforces each tenant's OpsPerSec with a token bucket
// (golang.org/x/time/rate): OpsPerSec transactions a second, in bursts of
// up to one second's worth. It keeps at most MaxTenants buckets, evicting
// the least recently used: a tenant evicted while idle only starts again
// with a full bucket. It is safe for concurrent use.
type Limiter struct {
	max int

	mu      sync.Mutex
	buckets map[string]*list.Element // of *bucket
	lru     list.List                // most recently used first
}

type bucket struct {
	tenant  string
	perSec  int
	limiter *rate.Limiter
}

// NewLimiter returns a limiter keeping at most maxTenants buckets
// (default 10,000 when maxTenants <= 0).
func NewLimiter(maxTenants int) *Limiter {
	if maxTenants <= 0 {
		maxTenants = 10_000
	}
	return &Limiter{max: maxTenants, buckets: map[string]*list.Element{}}
}

// Allow takes n transactions from the tenant's bucket at time now, or
// reports that it cannot. A push larger than one second's worth needs a
// full bucket. perSec <= 0 allows everything.
func (l *Limiter) Allow(tenant string, perSec, n int, now time.Time) bool {
	if perSec <= 0 {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	e, ok := l.buckets[tenant]
	if ok && e.Value.(*bucket).perSec != perSec {
		l.lru.Remove(e) // the limit changed: start a fresh bucket
		delete(l.buckets, tenant)
		ok = false
	}
	if !ok {
		e = l.lru.PushFront(&bucket{tenant: tenant, perSec: perSec, limiter: rate.NewLimiter(rate.Limit(perSec), perSec)})
		l.buckets[tenant] = e
		for l.lru.Len() > l.max {
			old := l.lru.Back()
			l.lru.Remove(old)
			delete(l.buckets, old.Value.(*bucket).tenant)
		}
	} else {
		l.lru.MoveToFront(e)
	}
	return e.Value.(*bucket).limiter.AllowN(now, min(n, perSec))
}

// Len returns the number of buckets kept.
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lru.Len()
}
