package server

import (
	"context"
	gosync "sync"
	"time"

	"github.com/unosync/uno/crdt"
	usync "github.com/unosync/uno/sync"
)

// sizeTTL is how old a tenant's size may be when a push is checked
// against its quotas: counting a large tenant's rows on every push would
// cost more than the push.
const sizeTTL = 5 * time.Second

// sizeCache keeps tenants' read model sizes for quota checks.
type sizeCache struct {
	mu gosync.Mutex
	m  map[string]tenantSize
}

type tenantSize struct {
	rows, bytes uint64
	at          time.Time
}

// tenantSize returns the tenant's rows and bytes, at most sizeTTL old.
func (s *Server) tenantSize(ctx context.Context, tenant string) (tenantSize, error) {
	now := s.cfg.Now()
	s.sizes.mu.Lock()
	sz, ok := s.sizes.m[tenant]
	s.sizes.mu.Unlock()
	if ok && now.Sub(sz.at) < sizeTTL {
		return sz, nil
	}
	sn, ok := s.cfg.Log.(Snapshotter)
	if !ok {
		return tenantSize{}, usync.Errorf(usync.CodeUnavailable, "quotas need a log with a rows read model")
	}
	rows, bytes, err := sn.SnapshotSize(ctx, tenant)
	if err != nil {
		return tenantSize{}, usync.Errorf(usync.CodeUnavailable, "tenant size: %v", err)
	}
	sz = tenantSize{rows: rows, bytes: bytes, at: now}
	s.sizes.mu.Lock()
	if s.sizes.m == nil {
		s.sizes.m = map[string]tenantSize{}
	}
	s.sizes.m[tenant] = sz
	s.sizes.mu.Unlock()
	return sz, nil
}

// quotaState is a push's quota check so far: the tenant's size and the
// rows its accepted transactions create.
type quotaState struct {
	size    *tenantSize
	created map[crdt.RowKey]bool
}

// checkQuota refuses a transaction that would take the tenant over its
// row or byte quota (CodeQuotaExceeded).
func (c *conn) checkQuota(ctx context.Context, tx *crdt.Tx, q *quotaState) error {
	lim := c.limits
	if lim.MaxRows == 0 && lim.MaxBytes == 0 || len(tx.Ops) == 0 {
		return nil
	}
	if q.size == nil {
		sz, err := c.s.tenantSize(ctx, c.tenant)
		if err != nil {
			return err
		}
		q.size, q.created = &sz, map[crdt.RowKey]bool{}
	}
	if lim.MaxBytes > 0 && q.size.bytes >= uint64(lim.MaxBytes) {
		return usync.Errorf(usync.CodeQuotaExceeded, "tenant %s holds %d bytes, its quota is %d: the operator can raise it (uno tenant limits)", c.tenant, q.size.bytes, lim.MaxBytes)
	}
	if lim.MaxRows == 0 {
		return nil
	}
	var keys []crdt.RowKey
	seen := map[crdt.RowKey]bool{}
	for i := range tx.Ops {
		k := crdt.RowKey{Collection: tx.Ops[i].Collection, Row: tx.Ops[i].Row}
		if !seen[k] && !q.created[k] {
			seen[k] = true
			keys = append(keys, k)
		}
	}
	if q.size.rows+uint64(len(q.created)+len(keys)) <= uint64(lim.MaxRows) {
		for _, k := range keys {
			q.created[k] = true // perhaps not new: counting it keeps the check safe
		}
		return nil
	}
	rs, ok := c.s.cfg.Log.(RowStater)
	if !ok {
		return usync.Errorf(usync.CodeUnavailable, "quotas need a log with a rows read model")
	}
	states, err := rs.RowStates(ctx, c.tenant, keys)
	if err != nil {
		return usync.Errorf(usync.CodeUnavailable, "read rows: %v", err)
	}
	var fresh []crdt.RowKey
	for i, st := range states {
		if st.State == nil {
			fresh = append(fresh, keys[i])
		}
	}
	if n := q.size.rows + uint64(len(q.created)+len(fresh)); len(fresh) > 0 && n > uint64(lim.MaxRows) {
		return usync.Errorf(usync.CodeQuotaExceeded, "tenant %s would hold %d rows, its quota is %d: the operator can raise it (uno tenant limits)", c.tenant, n, lim.MaxRows)
	}
	for _, k := range fresh {
		q.created[k] = true
	}
	return nil
}
