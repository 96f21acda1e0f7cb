package crdt

import "slices"

// Delta is what one OpIncrement adds to its writer's part of a counter:
// the op carries the part after it (cumulative), which cannot give the
// increment back once the part before it is gone.
type Delta struct {
	_ struct{} `cbor:",toarray"`
	P uint64
	N uint64
}

// Deltas returns, for each OpIncrement of the transaction built, in op
// order, what it adds to the transaction's site's part of the counter.
func (b *Builder) Deltas() []Delta {
	var out []Delta
	for i := range b.tx.Ops {
		op := &b.tx.Ops[i]
		if op.Type != OpIncrement {
			continue
		}
		var p, n uint64
		if br := b.rows[RowKey{Collection: op.Collection, Row: op.Row}]; br != nil {
			if f, ok := br.base.Field(op.Field); ok && f.CL == op.CL && f.Kind == KindCounter {
				p, n = f.Counter.Part(b.tx.Site)
			}
		}
		out = append(out, Delta{P: op.P - p, N: op.N - n})
	}
	return out
}

// Resite returns txs, consecutive transactions of one site, as
// transactions of the site to numbered from seq on: what a replica
// does with writes that reuse sequence numbers its old site's log
// already holds for other transactions (its database went back to an
// earlier state), so that both sets of writes survive.
//
// Each op keeps its timestamp and meaning. What names the old site's
// writes among txs themselves moves to the new site: the remove tags of
// their set adds, and a register's causal context, whose old site's
// entry becomes prior (the old site's last time before txs, 0 when not
// known: the context then covers none of the old site's writes). A
// counter's part restarts from the new site's zero: deltas[i] holds
// Deltas of txs[i]. Doc changes cannot move (Automerge changes are
// authored by their site): they are left out, and docs lists the index
// of each transaction that had one. A transaction left with no op is
// dropped, and takes no sequence number.
func Resite(txs []*Tx, deltas [][]Delta, to SiteID, seq uint64, prior Timestamp) (out []*Tx, docs []int) {
	if len(txs) == 0 {
		return nil, nil
	}
	from, since := txs[0].Site, txs[0].Time
	type counterKey struct {
		coll, row, field string
		cl               uint64
	}
	parts := map[counterKey]Delta{}
	moved := func(d Dot) Dot {
		if d.Site == from && d.Time >= since {
			d.Site = to
		}
		return d
	}
	for i, tx := range txs {
		nt := &Tx{Site: to, Seq: seq, Time: tx.Time, Ops: make([]Op, 0, len(tx.Ops))}
		inc := 0
		for _, op := range tx.Ops {
			switch op.Type {
			case OpChange:
				if len(docs) == 0 || docs[len(docs)-1] != i {
					docs = append(docs, i)
				}
				continue
			case OpIncrement:
				var d Delta
				if i < len(deltas) && inc < len(deltas[i]) {
					d = deltas[i][inc]
				}
				inc++
				k := counterKey{op.Collection, op.Row, op.Field, op.CL}
				sum := parts[k]
				sum.P += d.P
				sum.N += d.N
				parts[k] = sum
				op.P, op.N = sum.P, sum.N
			case OpSet:
				op.Context = resiteContext(op.Context, from, to, since, prior)
			case OpRemove:
				tags := make([]Dot, len(op.Tags))
				for j, t := range op.Tags {
					tags[j] = moved(t)
				}
				slices.SortFunc(tags, Dot.Compare)
				op.Tags = tags
			}
			op.Value = slices.Clone(op.Value)
			nt.Ops = append(nt.Ops, op)
		}
		if len(nt.Ops) == 0 {
			continue
		}
		out = append(out, nt)
		seq++
	}
	return out, docs
}

// resiteContext moves the old site's entry of a causal context, when it
// names writes being moved (at or after since), to the new site, and
// leaves the old site at prior.
func resiteContext(c Context, from, to SiteID, since, prior Timestamp) Context {
	var t Timestamp
	var out Context
	for _, d := range c {
		if d.Site == from && d.Time >= since {
			t = d.Time
			continue
		}
		out = append(out, d)
	}
	if t == 0 {
		return c
	}
	if prior != 0 {
		out = out.Add(Dot{Site: from, Time: prior})
	}
	return out.Add(Dot{Site: to, Time: t})
}
