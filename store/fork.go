package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"

	"github.com/unosync/uno/crdt"
)

// newEpoch draws a store opening's epoch: random, never 0 (which stands
// for "written before epochs"). Options.Rand is for site IDs (tests fix
// them); epochs and the sites Fork makes come from crypto/rand.
func newEpoch() (uint64, error) {
	var b [8]byte
	for {
		if _, err := io.ReadFull(rand.Reader, b[:]); err != nil {
			return 0, fmt.Errorf("draw epoch: %w", err)
		}
		if e := binary.LittleEndian.Uint64(b[:]); e != 0 {
			return e, nil
		}
	}
}

// runs keeps the outbox's runs and the replica's last sequence number
// in memory, for Runs.
type runs struct {
	mu   sync.Mutex
	all  []Run
	last uint64
}

func (r *runs) get() ([]Run, uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.all), r.last
}

func (r *runs) set(all []Run, last uint64) {
	r.mu.Lock()
	r.all, r.last = all, last
	r.mu.Unlock()
}

// wrote records outbox entries first..last written in epoch.
func (r *runs) wrote(first, last, epoch uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if n := len(r.all); n == 0 || r.all[n-1].Epoch != epoch {
		r.all = append(r.all, Run{First: first, Epoch: epoch})
	}
	r.last = last
}

// acked records that the entries up to seq left the outbox (an ack
// above the last seq moves the last seq to it: ErrLostWrites).
func (r *runs) acked(seq uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if seq >= r.last {
		r.all, r.last = nil, seq
		return
	}
	i := 0
	for i+1 < len(r.all) && r.all[i+1].First <= seq+1 {
		i++
	}
	r.all = r.all[i:]
	if len(r.all) > 0 && r.all[0].First <= seq {
		r.all[0].First = seq + 1
	}
}

// encodeDeltas stores a transaction's increments' deltas in the outbox
// (nil when it has none): P and N of each as uvarints.
func encodeDeltas(ds []crdt.Delta) []byte {
	if len(ds) == 0 {
		return nil
	}
	var b []byte
	for _, d := range ds {
		b = binary.AppendUvarint(b, d.P)
		b = binary.AppendUvarint(b, d.N)
	}
	return b
}

func decodeDeltas(b []byte) ([]crdt.Delta, error) {
	var out []crdt.Delta
	for len(b) > 0 {
		p, n := binary.Uvarint(b)
		if n <= 0 {
			return nil, fmt.Errorf("%w: outbox deltas", ErrCorrupt)
		}
		b = b[n:]
		q, m := binary.Uvarint(b)
		if m <= 0 {
			return nil, fmt.Errorf("%w: outbox deltas", ErrCorrupt)
		}
		b = b[m:]
		out = append(out, crdt.Delta{P: p, N: q})
	}
	return out, nil
}

// forkReason is the rejection feed's reason for a doc change Fork drops.
const forkReason = "a doc edit made after the replica's database went back to an earlier state: " +
	"its Automerge changes are authored by the replica's old site, whose sequence numbers the server holds for other writes, so it cannot be kept"

// forked is what Fork computes from the outbox entries it moves, the same
// for every store.
type forked struct {
	site    crdt.SiteID
	moved   []*crdt.Tx
	deltas  [][]crdt.Delta // of moved
	epochs  []uint64       // of moved: the epochs of the entries they came from
	keys    []crdt.RowKey  // every row the entries touched, each once
	dropped []uint64       // the old seqs of the entries that lost a doc change
}

// fork moves txs (the outbox from some seq on, with their deltas and
// epochs) to a new site.
//
// It is a function of txs alone, so that a replica restored again from
// a copy taken before a fork, which forks the same writes again, makes
// the very transactions the server holds already (it skips them), on the
// same site, labelled with the same epochs, rather than count them
// twice on another: the site is a hash of the old one and the first
// transaction moved; the moved ones keep their entries' epochs; and the
// register contexts name none of the old site's writes before them
// (crdt.Resite's prior 0), which the outbox may or may not still hold.
func fork(txs []*crdt.Tx, deltas [][]crdt.Delta, epochs []uint64) forked {
	h := sha256.New()
	h.Write([]byte("uno fork\x00"))
	h.Write(txs[0].Site[:])
	h.Write(crdt.EncodeTx(txs[0]))
	var site crdt.SiteID
	copy(site[:], h.Sum(nil))
	moved, docs := crdt.Resite(txs, deltas, site, 1, 0)
	f := forked{site: site, moved: moved}
	for _, i := range docs {
		f.dropped = append(f.dropped, txs[i].Seq)
	}
	seen := map[crdt.RowKey]bool{}
	for i, tx := range txs {
		kept := false
		for j := range tx.Ops {
			k := crdt.RowKey{Collection: tx.Ops[j].Collection, Row: tx.Ops[j].Row}
			if !seen[k] {
				seen[k] = true
				f.keys = append(f.keys, k)
			}
			kept = kept || tx.Ops[j].Type != crdt.OpChange
		}
		if kept {
			f.deltas = append(f.deltas, deltas[i])
			f.epochs = append(f.epochs, epochs[i])
		}
	}
	return f
}

// runsOf returns the runs of the moved transactions.
func (f *forked) runsOf() *runs {
	var r runs
	for i, tx := range f.moved {
		r.wrote(tx.Seq, tx.Seq, f.epochs[i])
	}
	return &r
}

// rowOf returns a row's state made of the moved transactions' ops alone.
func (f *forked) rowOf(k crdt.RowKey) *crdt.Row { return replay(k, &crdt.Row{}, f.moved) }

// Fork implements Store.
func (s *SQLite) Fork(ctx context.Context, from uint64, code uint16) (crdt.SiteID, error) {
	if err := s.check(); err != nil {
		return crdt.SiteID{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	w, err := s.begin(ctx, false) // durable: the replica's identity changes
	if err != nil {
		return crdt.SiteID{}, fmt.Errorf("fork: %w", err)
	}
	defer w.end()
	rows, err := w.q.QueryContext(w.ctx, `SELECT seq, tx, deltas, epoch FROM _uno_outbox WHERE seq >= ? ORDER BY seq`, int64(from))
	if err != nil {
		return crdt.SiteID{}, fmt.Errorf("fork: read outbox: %w", err)
	}
	var txs []*crdt.Tx
	var deltas [][]crdt.Delta
	var epochs []uint64
	for rows.Next() {
		var seq, epoch int64
		var b, d []byte
		if err := rows.Scan(&seq, &b, &d, &epoch); err != nil {
			rows.Close()
			return crdt.SiteID{}, fmt.Errorf("fork: read outbox: %w", err)
		}
		tx, err := crdt.DecodeTx(b)
		if err == nil && tx.Seq != uint64(seq) {
			err = fmt.Errorf("entry %d holds tx %d", seq, tx.Seq)
		}
		ds, derr := decodeDeltas(d)
		if err != nil || derr != nil {
			rows.Close()
			return crdt.SiteID{}, fmt.Errorf("%w: outbox entry %d: %w", ErrCorrupt, seq, errors.Join(err, derr))
		}
		txs, deltas, epochs = append(txs, tx), append(deltas, ds), append(epochs, uint64(epoch))
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return crdt.SiteID{}, fmt.Errorf("fork: read outbox: %w", err)
	}
	if len(txs) == 0 {
		return s.site, nil
	}
	f := fork(txs, deltas, epochs)
	site := f.site
	for _, k := range f.keys {
		r, err := w.load(k)
		if err != nil {
			return crdt.SiteID{}, err
		}
		*r = *f.rowOf(k)
		if err := w.put(k, r); err != nil {
			return crdt.SiteID{}, err
		}
	}
	if _, err := w.exec("", `DELETE FROM _uno_outbox`); err != nil {
		return crdt.SiteID{}, fmt.Errorf("fork: %w", err)
	}
	for i, tx := range f.moved {
		if _, err := w.exec("", `INSERT INTO _uno_outbox (seq, tx, epoch, deltas) VALUES (?, ?, ?, ?)`,
			int64(tx.Seq), crdt.EncodeTx(tx), int64(f.epochs[i]), encodeDeltas(f.deltas[i])); err != nil {
			return crdt.SiteID{}, fmt.Errorf("fork: %w", err)
		}
	}
	for _, seq := range f.dropped {
		if _, err := w.exec("", `INSERT INTO _uno_rejections (seq, code, reason) VALUES (?, ?, ?)`, int64(seq), int(code), forkReason); err != nil {
			return crdt.SiteID{}, fmt.Errorf("fork: record rejection: %w", err)
		}
	}
	if _, err := w.exec("", `UPDATE _uno_replica SET site = ?, seq = ?, clock = max(clock, ?) WHERE id = 1`,
		site[:], int64(len(f.moved)), int64(s.clock.Last())); err != nil {
		return crdt.SiteID{}, fmt.Errorf("fork: %w", err)
	}
	if _, err := w.exec("", `UPDATE _uno_sites SET seq = 0 WHERE site = `+cursorSite); err != nil {
		return crdt.SiteID{}, fmt.Errorf("fork: %w", err)
	}
	if err := w.commit(); err != nil {
		return crdt.SiteID{}, fmt.Errorf("fork: %w", err)
	}
	s.setSite(site)
	s.seq = uint64(len(f.moved))
	s.pending.Store(int64(len(f.moved)))
	moved := f.runsOf()
	s.runs.set(moved.all, s.seq)
	s.mergeColumns(w.pending)
	return site, nil
}
