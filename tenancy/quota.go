package tenancy

import (
	"container/list"
	"errors"
	"fmt"
	"sync"
	"time"
)

// ErrQuotaExceeded reports a write that would take a tenant over its row
// or byte quota.
var ErrQuotaExceeded = errors.New("tenancy: quota exceeded")

// Usage is how much of its quotas a tenant uses: the rows of its read
// model and their merge states' bytes.
type Usage struct {
	Rows, Bytes int64
}

// Quotas enforces tenants' row and byte quotas (Tenant.MaxRows and
// MaxBytes). It keeps each tenant's usage as measured from the read model
// (at most TTL old) plus what it admitted since, so a tenant's writes are
// counted the moment they are admitted: with one node, a tenant never
// exceeds a quota by more than the transaction that crosses it (its size
// is an upper bound of its growth, so it is refused instead), and
// between measurements it is refused early rather than late. With several
// nodes, each counts its own admissions until its next measurement.
//
// It keeps at most MaxTenants tenants, evicting the least recently used
// (they are measured again). It is safe for concurrent use.
type Quotas struct {
	ttl time.Duration
	max int

	mu  sync.Mutex
	m   map[string]*list.Element // of *usageEntry
	lru list.List
}

type usageEntry struct {
	tenant string
	Usage
	at time.Time
}

// NewQuotas returns a quota keeper that measures tenants again after ttl
// (default 5s) and keeps at most maxTenants (default 10,000).
func NewQuotas(ttl time.Duration, maxTenants int) *Quotas {
	if ttl <= 0 {
		ttl = 5 * time.Second
	}
	if maxTenants <= 0 {
		maxTenants = 10_000
	}
	return &Quotas{ttl: ttl, max: maxTenants, m: map[string]*list.Element{}}
}

// Reserve admits a write that adds rows and bytes to the tenant's usage,
// or refuses it with an error wrapping ErrQuotaExceeded. measure reads the
// tenant's usage from its read model; it is called, outside any lock,
// when the kept usage is older than the TTL or missing. Limits of 0 are
// not checked.
func (q *Quotas) Reserve(t Tenant, rows, bytes int64, now time.Time, measure func() (Usage, error)) error {
	if t.MaxRows == 0 && t.MaxBytes == 0 {
		return nil
	}
	q.mu.Lock()
	e, ok := q.m[t.ID]
	fresh := ok && now.Sub(e.Value.(*usageEntry).at) < q.ttl
	q.mu.Unlock()
	if !fresh {
		u, err := measure()
		if err != nil {
			return err
		}
		q.mu.Lock()
		if e, ok = q.m[t.ID]; ok {
			ue := e.Value.(*usageEntry)
			if now.Sub(ue.at) >= q.ttl { // nobody measured meanwhile
				ue.Usage, ue.at = u, now
			}
		} else {
			e = q.lru.PushFront(&usageEntry{tenant: t.ID, Usage: u, at: now})
			q.m[t.ID] = e
			for q.lru.Len() > q.max {
				old := q.lru.Back()
				q.lru.Remove(old)
				delete(q.m, old.Value.(*usageEntry).tenant)
			}
		}
		q.mu.Unlock()
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	e, ok = q.m[t.ID]
	if !ok { // evicted between the locks: admit against the measurement
		return nil
	}
	q.lru.MoveToFront(e)
	ue := e.Value.(*usageEntry)
	if t.MaxRows > 0 && rows > 0 && ue.Rows+rows > t.MaxRows {
		return fmt.Errorf("%w: tenant %s would hold %d rows, its quota is %d: the operator can raise it (uno tenant limits)", ErrQuotaExceeded, t.ID, ue.Rows+rows, t.MaxRows)
	}
	if t.MaxBytes > 0 && bytes > 0 && ue.Bytes+bytes > t.MaxBytes {
		return fmt.Errorf("%w: tenant %s would hold about %d bytes, its quota is %d: the operator can raise it (uno tenant limits)", ErrQuotaExceeded, t.ID, ue.Bytes+bytes, t.MaxBytes)
	}
	ue.Rows += rows
	ue.Bytes += bytes
	return nil
}

// Len returns the number of tenants kept.
func (q *Quotas) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.lru.Len()
}
