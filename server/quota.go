package server

import (
	"context"
	"errors"

	"github.com/unosync/uno/crdt"
	usync "github.com/unosync/uno/sync"
	"github.com/unosync/uno/tenancy"
)

// quotaState is a push's quota check so far: the rows its accepted
// transactions touched (counted once).
type quotaState struct {
	touched map[crdt.RowKey]bool
}

// checkQuota refuses a transaction that would take the tenant over its
// row or byte quota (CodeQuotaExceeded). The transaction itself counts:
// its size bounds what it adds to the read model, and the rows it may
// create count as new unless that would cross the quota, when the read
// model says which are. Admitted transactions are counted at once
// (tenancy.Quotas), so concurrent sessions of a tenant cannot cross it
// together.
func (c *conn) checkQuota(ctx context.Context, tx *crdt.Tx, q *quotaState) error {
	lim := c.limits
	if lim.MaxRows == 0 && lim.MaxBytes == 0 || len(tx.Ops) == 0 {
		return nil
	}
	if q.touched == nil {
		q.touched = map[crdt.RowKey]bool{}
	}
	var keys []crdt.RowKey
	for i := range tx.Ops {
		k := crdt.RowKey{Collection: tx.Ops[i].Collection, Row: tx.Ops[i].Row}
		if !q.touched[k] {
			q.touched[k] = true
			keys = append(keys, k)
		}
	}
	measure := func() (tenancy.Usage, error) {
		sn, ok := c.s.cfg.Log.(Snapshotter)
		if !ok {
			return tenancy.Usage{}, usync.Errorf(usync.CodeUnavailable, "quotas need a log with a rows read model")
		}
		rows, bytes, err := sn.SnapshotSize(ctx, c.tenant)
		if err != nil {
			return tenancy.Usage{}, c.s.unavailable("read tenant size", err, "tenant", c.tenant)
		}
		return tenancy.Usage{Rows: int64(rows), Bytes: int64(bytes)}, nil
	}
	size := int64(tx.SizeBound())
	now := c.s.cfg.Now()
	err := c.s.quotas.Reserve(lim, int64(len(keys)), size, now, measure)
	if errors.Is(err, tenancy.ErrQuotaExceeded) && lim.MaxRows > 0 && len(keys) > 0 {
		// Counting every touched row as new crossed the row quota: count
		// only those the read model does not hold.
		fresh, ferr := c.freshRows(ctx, keys)
		if ferr != nil {
			return ferr
		}
		err = c.s.quotas.Reserve(lim, int64(fresh), size, now, measure)
	}
	if errors.Is(err, tenancy.ErrQuotaExceeded) {
		return usync.Errorf(usync.CodeQuotaExceeded, "%v", err)
	}
	return err
}

// freshRows counts the rows of keys the read model does not hold.
func (c *conn) freshRows(ctx context.Context, keys []crdt.RowKey) (int, error) {
	rs, ok := c.s.cfg.Log.(RowStater)
	if !ok {
		return 0, usync.Errorf(usync.CodeUnavailable, "quotas need a log with a rows read model")
	}
	states, err := rs.RowStates(ctx, c.tenant, keys)
	if err != nil {
		return 0, c.s.unavailable("read rows", err, "tenant", c.tenant)
	}
	n := 0
	for _, st := range states {
		if st.State == nil {
			n++
		}
	}
	return n, nil
}
