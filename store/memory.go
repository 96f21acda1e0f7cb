package store

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/unosync/uno/crdt"
)

// Memory is a store held in memory, for tests. It follows the same
// contract as [SQLite] (it passes the same conformance suite) but keeps
// nothing across restarts.
type Memory struct {
	mu        sync.Mutex
	opts      Options
	declared  *crdt.Schema // opts.Schema.Declared(), for crdt.ValidateTx
	site      crdt.SiteID
	closed    bool
	clock     *crdt.Clock
	seq       uint64
	rows      map[crdt.RowKey]*crdt.Row
	marks     map[crdt.SiteID]uint64
	outbox    []*crdt.Tx
	deltas    [][]crdt.Delta // of outbox's entries
	epoch     uint64
	runs      runs
	cursor    uint64
	subs      []byte // the sync client's subscriptions record
	rejects   []Rejection
	conflicts []ConflictEntry
}

var _ Store = (*Memory)(nil)

// NewMemory returns an empty memory store.
func NewMemory(opts Options) (*Memory, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	site, err := crdt.NewSiteID(o.Rand)
	if err != nil {
		return nil, err
	}
	epoch, err := newEpoch()
	if err != nil {
		return nil, err
	}
	return &Memory{
		epoch:    epoch,
		opts:     o,
		declared: o.Schema.Declared(),
		site:     site,
		clock:    crdt.NewClock(0, o.MaxDrift),
		rows:     map[crdt.RowKey]*crdt.Row{},
		marks:    map[crdt.SiteID]uint64{},
	}, nil
}

// Schema implements Store.
func (m *Memory) Schema() *Schema { return m.opts.Schema }

// Site implements Store.
func (m *Memory) Site() crdt.SiteID {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.site
}

// Close implements Store.
func (m *Memory) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	return nil
}

func (m *Memory) lock() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return ErrClosed
	}
	return nil
}

// Write implements Store.
func (m *Memory) Write(ctx context.Context, fn func(b *crdt.Builder) error) (*Commit, error) {
	if err := m.lock(); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	lt, clock, err := buildLocal(*m.clock, m.opts.Now(), m.site, m.seq+1, m.declared, func(k crdt.RowKey) (*crdt.Row, error) { return m.rows[k], nil }, nil, fn)
	if err != nil {
		return nil, err
	}
	if lt == nil {
		return &Commit{}, nil // nothing built: no transaction, no sequence number used
	}
	tx := lt.tx
	for i, k := range lt.keys {
		m.rows[k] = lt.rows[i].Clone()
	}
	// The outbox keeps its own copy, as the SQLite store keeps bytes.
	stored, err := crdt.DecodeTx(crdt.EncodeTx(tx))
	if err != nil {
		panic("store: built tx does not decode: " + err.Error())
	}
	m.outbox = append(m.outbox, stored)
	m.deltas = append(m.deltas, lt.deltas)
	m.runs.wrote(tx.Seq, tx.Seq, m.epoch)
	m.seq = tx.Seq
	*m.clock = clock
	return &Commit{Tx: tx, Changed: lt.keys}, nil
}

// Apply implements Store.
func (m *Memory) Apply(ctx context.Context, txs []*crdt.Tx) (*Commit, error) {
	return m.apply(txs, nil, nil, nil)
}

// MergeRows implements Store.
func (m *Memory) MergeRows(ctx context.Context, rows []RowState, marks map[crdt.SiteID]uint64, cursor uint64) (*Commit, error) {
	return m.apply(nil, rows, &cursor, marks)
}

// ApplyRowsAt implements Store.
func (m *Memory) ApplyRowsAt(ctx context.Context, txs []*crdt.Tx, rows []RowState, cursor uint64) (*Commit, error) {
	return m.apply(txs, rows, &cursor, nil)
}

// Subscriptions implements Store.
func (m *Memory) Subscriptions(ctx context.Context) ([]byte, error) {
	if err := m.lock(); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	return m.subs, nil
}

// SetSubscriptions implements Store.
func (m *Memory) SetSubscriptions(ctx context.Context, b []byte) error {
	if err := m.lock(); err != nil {
		return err
	}
	defer m.mu.Unlock()
	if b == nil {
		b = []byte{}
	}
	m.subs = append([]byte(nil), b...)
	return nil
}

// Receive implements Store.
func (m *Memory) Receive(ctx context.Context, txs []*crdt.Tx, rows []RowState, cursor, ack uint64) (*Commit, error) {
	if ack > 0 {
		if err := m.lock(); err != nil {
			return nil, err
		}
		lost := ack > m.seq
		m.mu.Unlock()
		if lost {
			return nil, m.Ack(ctx, ack)
		}
	}
	c, err := m.apply(txs, rows, &cursor, nil)
	if err != nil || ack == 0 {
		return c, err
	}
	return c, m.Ack(ctx, ack)
}

// ApplyAt implements Store.
func (m *Memory) ApplyAt(ctx context.Context, txs []*crdt.Tx, cursor uint64) (*Commit, error) {
	return m.apply(txs, nil, &cursor, nil)
}

// Observe implements Store.
func (m *Memory) Observe(ctx context.Context, ts crdt.Timestamp) error {
	if err := m.lock(); err != nil {
		return err
	}
	defer m.mu.Unlock()
	m.clock.ObserveTrusted(ts)
	return nil
}

// Reject implements Store.
func (m *Memory) Reject(ctx context.Context, rej Rejection, rows []RowState) (*Commit, error) {
	if err := m.lock(); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	for _, rs := range rows {
		if err := validKey(rs.Key, rs.Row); err != nil {
			return nil, err
		}
	}
	var pending []*crdt.Tx
	for _, tx := range m.outbox {
		if tx.Seq > rej.Seq {
			pending = append(pending, tx)
		}
	}
	var changed []crdt.RowKey
	for _, rs := range rows {
		r := replay(rs.Key, rs.Row, pending)
		if r.CL == 0 && len(r.Fields) == 0 {
			delete(m.rows, rs.Key) // never existed: keep no trace of it
		} else {
			m.rows[rs.Key] = r
		}
		changed = append(changed, rs.Key)
	}
	rej.ID = uint64(len(m.rejects) + 1)
	m.rejects = append(m.rejects, rej)
	return &Commit{Changed: changed}, nil
}

// Rejections implements Store.
func (m *Memory) Rejections(ctx context.Context, after uint64, limit int) ([]Rejection, error) {
	if err := m.lock(); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	var out []Rejection
	for _, r := range m.rejects {
		if r.ID > after && (limit <= 0 || len(out) < limit) {
			out = append(out, r)
		}
	}
	return out, nil
}

// Cursor implements Store.
func (m *Memory) Cursor(ctx context.Context) (uint64, error) {
	if err := m.lock(); err != nil {
		return 0, err
	}
	defer m.mu.Unlock()
	return m.cursor, nil
}

func (m *Memory) apply(txs []*crdt.Tx, rows []RowState, cursor *uint64, snapMarks map[crdt.SiteID]uint64) (*Commit, error) {
	if err := m.lock(); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	clock := *m.clock
	wall := m.opts.Now()
	// Work on copies so a failing batch changes nothing.
	work := map[crdt.RowKey]*crdt.Row{}
	load := func(k crdt.RowKey) (*crdt.Row, error) {
		if r, ok := work[k]; ok {
			return r, nil
		}
		r := &crdt.Row{}
		if cur, ok := m.rows[k]; ok {
			r = cur.Clone()
		}
		work[k] = r
		return r, nil
	}
	var mg merger
	err := mg.run(mergeInput{
		own: m.site, ownSeq: m.seq, clock: &clock, wall: wall,
		txs: txs, rows: rows, snapMarks: snapMarks, gapsOK: cursor != nil,
		mark: func(site crdt.SiteID) (uint64, error) { return m.marks[site], nil },
		load: load, schema: m.opts.Schema,
	})
	if err != nil {
		return nil, err
	}
	for _, k := range mg.changed {
		m.rows[k] = work[k]
	}
	for site, seq := range mg.marks {
		m.marks[site] = seq
	}
	entries := make([]ConflictEntry, len(mg.conflicts))
	for i, r := range mg.conflicts {
		entries[i] = ConflictEntry{ID: uint64(len(m.conflicts) + 1), Record: r}
		m.conflicts = append(m.conflicts, entries[i])
	}
	*m.clock = clock
	if cursor != nil {
		m.cursor = max(m.cursor, *cursor)
	}
	return &Commit{Changed: mg.changed, Conflicts: entries}, nil
}

// Row implements Store.
func (m *Memory) Row(ctx context.Context, collection, id string) (*crdt.Row, error) {
	if err := m.lock(); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	r, ok := m.rows[crdt.RowKey{Collection: collection, Row: id}]
	if !ok {
		return nil, nil
	}
	return r.Clone(), nil
}

// Query implements Store, comparing values exactly as SQLite does.
func (m *Memory) Query(ctx context.Context, q Query) ([]Doc, error) {
	conds, err := q.compile()
	if err != nil {
		return nil, err
	}
	if err := m.lock(); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	type hit struct {
		doc Doc
		key any
	}
	value := func(id string, r *crdt.Row, field string) any {
		if field == "id" {
			return id
		}
		if f, ok := r.Field(field); ok {
			return columnValue(m.opts.Schema, q.Collection, f)
		}
		return nil
	}
	var hits []hit
	for k, r := range m.rows {
		if k.Collection != q.Collection || !r.Alive() {
			continue
		}
		ok := true
		for i := range conds {
			if !conds[i].match(value(k.Row, r, conds[i].field)) {
				ok = false
				break
			}
		}
		if !ok {
			continue
		}
		h := hit{doc: Doc{ID: k.Row, Row: r.Clone()}}
		if q.OrderBy != "" {
			h.key = value(k.Row, r, q.OrderBy)
		}
		hits = append(hits, h)
	}
	slices.SortFunc(hits, func(a, b hit) int {
		if q.OrderBy != "" && q.OrderBy != "id" {
			c := compareSQL(a.key, b.key)
			if q.Desc {
				c = -c
			}
			if c != 0 {
				return c
			}
			return compareSQL(a.doc.ID, b.doc.ID)
		}
		c := compareSQL(a.doc.ID, b.doc.ID)
		if q.Desc {
			c = -c
		}
		return c
	})
	if q.Limit > 0 && len(hits) > q.Limit {
		hits = hits[:q.Limit]
	}
	out := make([]Doc, len(hits))
	for i, h := range hits {
		out[i] = h.doc
	}
	return out, nil
}

// Pending implements Store.
func (m *Memory) Pending(ctx context.Context) (int, error) {
	if err := m.lock(); err != nil {
		return 0, err
	}
	defer m.mu.Unlock()
	return len(m.outbox), nil
}

// Outbox implements Store.
func (m *Memory) Outbox(ctx context.Context, after uint64, limit int) ([]*crdt.Tx, error) {
	if err := m.lock(); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	var out []*crdt.Tx
	for _, tx := range m.outbox {
		if tx.Seq > after && (limit <= 0 || len(out) < limit) {
			out = append(out, tx)
		}
	}
	return out, nil
}

// Ack implements Store.
func (m *Memory) Ack(ctx context.Context, seq uint64) error {
	if err := m.lock(); err != nil {
		return err
	}
	defer m.mu.Unlock()
	m.ackOutbox(seq)
	if seq > m.seq {
		was := m.seq
		m.seq, m.cursor = seq, 0
		return fmt.Errorf("%w: its writes %d to %d", ErrLostWrites, was+1, seq)
	}
	return nil
}

// ackOutbox drops the outbox entries up to seq.
func (m *Memory) ackOutbox(seq uint64) {
	n := 0
	for n < len(m.outbox) && m.outbox[n].Seq <= seq {
		n++
	}
	m.outbox, m.deltas = slices.Clone(m.outbox[n:]), slices.Clone(m.deltas[n:])
	m.runs.acked(seq)
}

// Runs implements Store.
func (m *Memory) Runs() ([]Run, uint64) { return m.runs.get() }

// Fork implements Store.
func (m *Memory) Fork(ctx context.Context, from uint64, code uint16) (crdt.SiteID, error) {
	if err := m.lock(); err != nil {
		return crdt.SiteID{}, err
	}
	defer m.mu.Unlock()
	i := 0
	for i < len(m.outbox) && m.outbox[i].Seq < from {
		i++
	}
	if i == len(m.outbox) {
		return m.site, nil
	}
	epochs := make([]uint64, len(m.outbox)-i)
	for j := range epochs {
		epochs[j] = m.epoch // one opening: a Memory store is never reopened
	}
	f := fork(m.outbox[i:], m.deltas[i:], epochs)
	site := f.site
	for _, k := range f.keys {
		r := f.rowOf(k)
		if r.CL == 0 && len(r.Fields) == 0 {
			delete(m.rows, k)
			continue
		}
		m.rows[k] = r
	}
	m.outbox, m.deltas = f.moved, f.deltas
	for _, seq := range f.dropped {
		m.rejects = append(m.rejects, Rejection{ID: uint64(len(m.rejects) + 1), Seq: seq, Code: code, Reason: forkReason})
	}
	m.site, m.seq, m.cursor = site, uint64(len(f.moved)), 0
	moved := f.runsOf()
	m.runs.set(moved.all, m.seq)
	return site, nil
}

// Conflicts implements Store.
func (m *Memory) Conflicts(ctx context.Context, after uint64, limit int) ([]ConflictEntry, error) {
	if err := m.lock(); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	var out []ConflictEntry
	for _, e := range m.conflicts {
		if e.ID > after && (limit <= 0 || len(out) < limit) {
			out = append(out, e)
		}
	}
	return out, nil
}

// Hash implements Store.
func (m *Memory) Hash(ctx context.Context) ([32]byte, error) {
	if err := m.lock(); err != nil {
		return [32]byte{}, err
	}
	defer m.mu.Unlock()
	keys := make([]crdt.RowKey, 0, len(m.rows))
	for k := range m.rows {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b crdt.RowKey) int {
		if c := compareSQL(a.Collection, b.Collection); c != 0 {
			return c
		}
		return compareSQL(a.Row, b.Row)
	})
	h := crdt.NewHasher()
	for _, k := range keys {
		h.Add(k, m.rows[k])
	}
	return h.Sum(), nil
}
