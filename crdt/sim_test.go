package crdt_test

// A small simulated network of replicas, driven by rapid, shared by the
// convergence, skew and merge properties. Each replica is a crdt.State with
// its own site, its own Clock and a wall clock skewed from real time. Local
// transactions are built with crdt.NewBuilder; deliveries carry encoded
// transactions and respect causal order (a transaction reaches a replica
// only after everything its author had applied when making it), but are
// otherwise in any order and may be duplicated.

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/unosync/uno/crdt"
	"pgregory.net/rapid"
)

// fataler is what the helpers need from *testing.T and *rapid.T.
type fataler interface {
	Fatalf(format string, args ...any)
}

var (
	simCollections = []string{"todo", "note"}
	simRowIDs      = []string{"r0", "r1", "r2"}
	simRegisters   = []string{"title", "done"}
	simMembers     = []string{`"x"`, `"y"`, `"z"`}
	simStart       = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
)

const (
	simCounter  = "n"
	simSet      = "tags"
	simMaxDrift = 72 * time.Hour
)

// simAllKeys is the key space of the simulations: 2 collections × 3 rows.
func simAllKeys() []crdt.RowKey {
	var keys []crdt.RowKey
	for _, c := range simCollections {
		for _, r := range simRowIDs {
			keys = append(keys, crdt.RowKey{Collection: c, Row: r})
		}
	}
	return keys
}

type simOp int

const (
	simOpSet simOp = iota
	simOpIncrement
	simOpAdd
	simOpRemove
	simOpDelete
	simOpCreate
)

var simAllOps = []simOp{simOpSet, simOpSet, simOpIncrement, simOpAdd, simOpRemove, simOpDelete, simOpDelete, simOpCreate}

type simConfig struct {
	minReplicas, maxReplicas int
	keys                     []crdt.RowKey
	ops                      []simOp // sampled uniformly; repeat one to weight it
	maxOpsPerTx              int
	maxSkew                  time.Duration
	clockJumps               bool // replicas' wall clocks jump by up to ±1h (within maxSkew)
	// mixedKinds makes every field op pick its field from simMixedFields,
	// whatever its kind, so replicas first write one field with different
	// kinds concurrently. The builder refuses an op that does not fit the
	// kind a replica already sees (ErrKindMismatch); the step skips it.
	mixedKinds bool
}

var simMixedFields = []string{"title", "n"}

func defaultSimConfig() simConfig {
	return simConfig{
		minReplicas: 3, maxReplicas: 5,
		keys:        simAllKeys(),
		ops:         simAllOps,
		maxOpsPerTx: 4,
		maxSkew:     24 * time.Hour,
		clockJumps:  true,
	}
}

// simTx is a transaction in the network's log with what the test knows
// about it.
type simTx struct {
	tx   *crdt.Tx
	enc  []byte
	deps map[crdt.SiteID]uint64 // what its author had applied when making it, its own earlier txs included
	incs []simInc               // increments as the test asked for them
}

// simInc is one Builder.Increment call: delta added to key's counter in life cl.
type simInc struct {
	key   crdt.RowKey
	cl    uint64
	delta int64
}

// after reports whether b's author had applied a when it made b.
func (b *simTx) after(a *simTx) bool { return b.deps[a.tx.Site] >= a.tx.Seq }

func (b *simTx) String() string {
	return fmt.Sprintf("tx %s/%d@%s", b.tx.Site.String()[:4], b.tx.Seq, b.tx.Time)
}

type replica struct {
	idx     int
	site    crdt.SiteID
	clock   *crdt.Clock
	skew    time.Duration
	state   crdt.State
	applied map[crdt.SiteID]uint64 // highest seq applied per site; gap-free by causal delivery
}

type world struct {
	cfg     simConfig
	elapsed time.Duration // real time since simStart
	reps    []*replica
	sites   []crdt.SiteID // in replica order
	log     map[crdt.SiteID][]*simTx
	byDot   map[crdt.Dot]*simTx
	ntx     int
}

func newWorld(t *rapid.T, cfg simConfig) *world {
	n := rapid.IntRange(cfg.minReplicas, cfg.maxReplicas).Draw(t, "replicas")
	// The first byte orders the sites; drawing its permutation makes the
	// site tie-break independent of the replica index.
	order := rapid.Permutation([]byte{0x10, 0x20, 0x30, 0x40, 0x50}).Draw(t, "siteOrder")
	w := &world{cfg: cfg, log: make(map[crdt.SiteID][]*simTx), byDot: make(map[crdt.Dot]*simTx)}
	for i := range n {
		var site crdt.SiteID
		site[0] = order[i]
		for j := 1; j < len(site); j++ {
			site[j] = byte(i*31 + j)
		}
		skewMS := rapid.Int64Range(-cfg.maxSkew.Milliseconds(), cfg.maxSkew.Milliseconds()).Draw(t, "skewMS")
		w.reps = append(w.reps, &replica{
			idx:     i,
			site:    site,
			clock:   crdt.NewClock(0, simMaxDrift),
			skew:    time.Duration(skewMS) * time.Millisecond,
			applied: make(map[crdt.SiteID]uint64),
		})
		w.sites = append(w.sites, site)
	}
	return w
}

func (w *world) wall(r *replica) time.Time { return simStart.Add(w.elapsed + r.skew) }

// run performs up to maxSteps random steps.
func (w *world) run(t *rapid.T, maxSteps int) {
	steps := rapid.IntRange(min(10, maxSteps), maxSteps).Draw(t, "steps")
	for range steps {
		w.step(t)
	}
}

// step advances real time a little and performs one random action.
func (w *world) step(t *rapid.T) {
	w.elapsed += time.Duration(rapid.IntRange(0, 20).Draw(t, "advanceMS")) * time.Millisecond
	r := w.reps[rapid.IntRange(0, len(w.reps)-1).Draw(t, "replica")]
	switch action := rapid.IntRange(0, 11).Draw(t, "action"); {
	case action <= 4:
		w.local(t, r)
	case action <= 8:
		cands := w.deliverable(r)
		if len(cands) == 0 {
			w.local(t, r)
			return
		}
		w.deliver(t, r, cands[rapid.IntRange(0, len(cands)-1).Draw(t, "deliver")])
	case action == 9:
		var seen []*simTx
		for site, seq := range r.applied {
			seen = append(seen, w.log[site][:seq]...)
		}
		if len(seen) == 0 {
			w.local(t, r)
			return
		}
		slices.SortFunc(seen, func(a, b *simTx) int { return a.tx.Dot().Compare(b.tx.Dot()) })
		w.deliver(t, r, seen[rapid.IntRange(0, len(seen)-1).Draw(t, "duplicate")])
	case action == 10 && w.cfg.clockJumps:
		jump := time.Duration(rapid.IntRange(-3600, 3600).Draw(t, "jumpS")) * time.Second
		r.skew = min(max(r.skew+jump, -w.cfg.maxSkew), w.cfg.maxSkew)
	default:
		// Restart: the clock comes back from its persisted Last.
		r.clock = crdt.NewClock(r.clock.Last(), simMaxDrift)
	}
}

// local makes a random transaction at r with a Builder and applies it there.
func (w *world) local(t *rapid.T, r *replica) {
	ts := r.clock.Now(w.wall(r))
	seq := r.applied[r.site] + 1
	st := &simTx{deps: maps.Clone(r.applied)}
	b := crdt.NewBuilder(r.site, seq, ts, func(k crdt.RowKey) (*crdt.Row, error) { return r.state.Row(k), nil })
	n := rapid.IntRange(1, w.cfg.maxOpsPerTx).Draw(t, "ops")
	for i := range n {
		k := rapid.SampledFrom(w.cfg.keys).Draw(t, "key")
		register, counter, set := rapid.SampledFrom(simRegisters).Draw(t, "field"), simCounter, simSet
		if w.cfg.mixedKinds {
			register = rapid.SampledFrom(simMixedFields).Draw(t, "field")
			counter, set = register, register
		}
		var err error
		switch rapid.SampledFrom(w.cfg.ops).Draw(t, "op") {
		case simOpSet:
			err = b.Set(k, register, crdt.KindRegister, fmt.Appendf(nil, `"%d.%d.%d"`, r.idx, seq, i))
		case simOpIncrement:
			delta := int64(rapid.IntRange(-3, 5).Draw(t, "delta"))
			if err = b.Increment(k, counter, delta); err == nil {
				row, _ := b.Row(k)
				st.incs = append(st.incs, simInc{key: k, cl: row.CL, delta: delta})
			}
		case simOpAdd:
			err = b.Add(k, set, []byte(rapid.SampledFrom(simMembers).Draw(t, "member")))
		case simOpRemove:
			err = b.Remove(k, set, []byte(rapid.SampledFrom(simMembers).Draw(t, "member")))
		case simOpDelete:
			_, err = b.Delete(k)
		case simOpCreate:
			err = b.Create(k)
		}
		if err != nil && !(w.cfg.mixedKinds && errors.Is(err, crdt.ErrKindMismatch)) {
			t.Fatalf("replica %d: builder: %v", r.idx, err)
		}
	}
	// The builder's working rows are what the state must hold once the
	// transaction is applied.
	want := make(map[crdt.RowKey][]byte)
	keys, rows := b.Touched()
	for i, k := range keys {
		want[k] = crdt.EncodeRow(rows[i])
	}
	tx := b.Tx()
	if len(tx.Ops) == 0 {
		return
	}
	effects, err := r.state.Apply(tx)
	if err != nil {
		t.Fatalf("replica %d: apply own %s: %v", r.idx, tx.Dot(), err)
	}
	for _, e := range effects {
		if e.Stale || len(e.Concurrent) > 0 {
			t.Fatalf("replica %d: own op %s %s.%s.%s: stale=%v concurrent=%v", r.idx, e.Op.Type, e.Op.Collection, e.Op.Row, e.Op.Field, e.Stale, e.Concurrent)
		}
	}
	for k, enc := range want {
		if got := encodedRow(&r.state, k); !bytes.Equal(got, enc) {
			t.Fatalf("replica %d: row %v after applying own tx differs from Builder.Touched:\n got %x\nwant %x", r.idx, k, got, enc)
		}
	}
	r.applied[r.site] = seq
	st.tx = tx
	st.enc = crdt.EncodeTx(tx)
	w.log[r.site] = append(w.log[r.site], st)
	if prev, dup := w.byDot[tx.Dot()]; dup {
		t.Fatalf("two transactions with one dot: %v and %v", prev, st)
	}
	w.byDot[tx.Dot()] = st
	w.ntx++
}

// encodedRow returns the encoding of k's row, a never-seen row encoding as
// the zero Row.
func encodedRow(s *crdt.State, k crdt.RowKey) []byte {
	r := s.Row(k)
	if r == nil {
		r = &crdt.Row{}
	}
	return crdt.EncodeRow(r)
}

// deliverable returns, in a stable order, the transactions r may receive
// next: for each other site the next one in its order, if r has applied
// everything its author had.
func (w *world) deliverable(r *replica) []*simTx {
	var out []*simTx
	for _, site := range w.sites {
		next := r.applied[site]
		if site == r.site || next >= uint64(len(w.log[site])) {
			continue
		}
		st := w.log[site][next]
		if covers(r.applied, st.deps) {
			out = append(out, st)
		}
	}
	return out
}

// covers reports whether vector a includes everything in b.
func covers(a, b map[crdt.SiteID]uint64) bool {
	for site, seq := range b {
		if a[site] < seq {
			return false
		}
	}
	return true
}

// deliver sends st to r: r observes its timestamp, decodes and applies it.
// A transaction r already applied (a duplicate) must change nothing.
func (w *world) deliver(t fataler, r *replica, st *simTx) {
	if err := r.clock.Observe(st.tx.Time, w.wall(r)); err != nil {
		t.Fatalf("replica %d (skew %s): observe %v: %v", r.idx, r.skew, st, err)
	}
	if r.clock.Last() < st.tx.Time {
		t.Fatalf("replica %d: clock %s behind observed %s", r.idx, r.clock.Last(), st.tx.Time)
	}
	tx, err := crdt.DecodeTx(st.enc)
	if err != nil {
		t.Fatalf("decode %v: %v", st, err)
	}
	dup := r.applied[tx.Site] >= tx.Seq
	if !dup && r.applied[tx.Site]+1 != tx.Seq {
		t.Fatalf("replica %d: test bug: %v delivered out of order", r.idx, st)
	}
	var before [32]byte
	if dup {
		before = r.state.Hash()
	}
	effects, err := r.state.Apply(tx)
	if err != nil {
		t.Fatalf("replica %d: apply %v: %v", r.idx, st, err)
	}
	if dup {
		if r.state.Hash() != before {
			t.Fatalf("replica %d: duplicate delivery of %v changed the state", r.idx, st)
		}
		for _, e := range effects {
			if len(e.Concurrent) > 0 {
				t.Fatalf("replica %d: duplicate delivery of %v reported concurrent entries %v", r.idx, st, e.Concurrent)
			}
		}
		return
	}
	r.applied[tx.Site] = tx.Seq
	// Every entry reported concurrent was written by a transaction that
	// st's author had not seen, and that had not seen st.
	for _, e := range effects {
		for _, c := range e.Concurrent {
			other := w.byDot[c.Dot]
			switch {
			case other == nil:
				t.Fatalf("replica %d: %v: concurrent entry %v is no known write", r.idx, st, c.Dot)
			case other == st || st.after(other) || other.after(st):
				t.Fatalf("replica %d: %v: entry of %v reported concurrent but they are causally related", r.idx, st, other)
			}
		}
	}
}

// deliverAll delivers every transaction everywhere in a random causal
// order, with some duplicates.
func (w *world) deliverAll(t fataler, rng *rand.Rand) {
	for {
		type cand struct {
			r  *replica
			st *simTx
		}
		var cands []cand
		for _, r := range w.reps {
			for _, st := range w.deliverable(r) {
				cands = append(cands, cand{r, st})
			}
		}
		if len(cands) == 0 {
			break
		}
		c := cands[rng.IntN(len(cands))]
		w.elapsed += time.Duration(rng.IntN(5)) * time.Millisecond
		w.deliver(t, c.r, c.st)
		if rng.IntN(8) == 0 {
			w.deliver(t, c.r, c.st)
		}
	}
	for _, r := range w.reps {
		for _, site := range w.sites {
			if got, want := r.applied[site], uint64(len(w.log[site])); got != want {
				t.Fatalf("test bug: replica %d applied %d of %d txs of a site after full delivery", r.idx, got, want)
			}
		}
	}
}

// replay applies every transaction of the log to a fresh State in a random
// causal order.
func (w *world) replay(t fataler, rng *rand.Rand) *crdt.State {
	var s crdt.State
	applied := make(map[crdt.SiteID]uint64)
	for {
		var cands []*simTx
		for _, site := range w.sites {
			next := applied[site]
			if next < uint64(len(w.log[site])) && covers(applied, w.log[site][next].deps) {
				cands = append(cands, w.log[site][next])
			}
		}
		if len(cands) == 0 {
			break
		}
		st := cands[rng.IntN(len(cands))]
		tx, err := crdt.DecodeTx(st.enc)
		if err != nil {
			t.Fatalf("decode %v: %v", st, err)
		}
		if _, err := s.Apply(tx); err != nil {
			t.Fatalf("replay %v: %v", st, err)
		}
		applied[st.tx.Site] = st.tx.Seq
	}
	return &s
}

// txs returns every transaction of the log, ordered by dot.
func (w *world) txs() []*simTx {
	var out []*simTx
	for _, l := range w.log {
		out = append(out, l...)
	}
	slices.SortFunc(out, func(a, b *simTx) int { return a.tx.Dot().Compare(b.tx.Dot()) })
	return out
}

// checkHLC checks that a transaction made after applying another has a
// greater timestamp, however skewed the wall clocks were.
func (w *world) checkHLC(t fataler) {
	all := w.txs()
	for _, b := range all {
		for _, a := range all {
			if a != b && b.after(a) && b.tx.Time <= a.tx.Time {
				t.Fatalf("%v was made after applying %v but is not later", b, a)
			}
		}
	}
}

// simWrite is one op of a logged transaction.
type simWrite struct {
	st *simTx
	op *crdt.Op
}

// checkModel checks a fully synced state against what the log implies,
// computed from causality alone:
//   - a row's causal length is the greatest one any op carried;
//   - a register holds exactly the writes of the current life that no
//     other write of that life was made after, and its winner is the
//     greatest of them by (timestamp, site): a write made after observing
//     another never loses to it;
//   - a counter's value is the sum of the increments of the current life;
//   - a set member is present when some add of the current life was not
//     followed (causally) by a remove of it in that life.
func (w *world) checkModel(t fataler, s *crdt.State) {
	ops := make(map[crdt.RowKey][]simWrite)
	for _, st := range w.txs() {
		for i := range st.tx.Ops {
			op := &st.tx.Ops[i]
			k := crdt.RowKey{Collection: op.Collection, Row: op.Row}
			ops[k] = append(ops[k], simWrite{st, op})
		}
	}
	if s.Len() != len(ops) {
		t.Fatalf("state has %d rows, the log touches %d", s.Len(), len(ops))
	}
	for k, kops := range ops {
		row := s.Row(k)
		if row == nil {
			t.Fatalf("row %v missing", k)
		}
		var cl uint64
		for _, o := range kops {
			cl = max(cl, o.op.CL)
		}
		if row.CL != cl {
			t.Fatalf("row %v: CL %d, want %d", k, row.CL, cl)
		}
		if !row.Alive() {
			if len(row.Fields) != 0 {
				t.Fatalf("deleted row %v keeps fields %v", k, fieldNames(row))
			}
			continue
		}
		life := slices.DeleteFunc(slices.Clone(kops), func(o simWrite) bool { return o.op.CL != cl || o.op.IsRowOp() })
		w.checkRegisters(t, k, row, life)
		w.checkCounter(t, k, row, cl)
		checkSet(t, k, row, life)
	}
}

func fieldNames(r *crdt.Row) []string {
	var names []string
	for _, f := range r.Fields {
		names = append(names, f.Name)
	}
	return names
}

func (w *world) checkRegisters(t fataler, k crdt.RowKey, row *crdt.Row, life []simWrite) {
	for _, name := range simRegisters {
		var writes []simWrite
		for _, o := range life {
			if o.op.Field == name {
				writes = append(writes, o)
			}
		}
		f, ok := row.Field(name)
		if len(writes) == 0 {
			if ok {
				t.Fatalf("row %v: field %s exists without writes in life %d", k, name, row.CL)
			}
			continue
		}
		if !ok {
			t.Fatalf("row %v: field %s missing", k, name)
		}
		var want crdt.Register
		ctx := make(map[crdt.SiteID]crdt.Timestamp)
		for _, o := range writes {
			ctx[o.st.tx.Site] = max(ctx[o.st.tx.Site], o.st.tx.Time)
			overwritten := slices.ContainsFunc(writes, func(later simWrite) bool { return later.st != o.st && later.st.after(o.st) })
			if !overwritten {
				want.Entries = append(want.Entries, crdt.Entry{Dot: o.st.tx.Dot(), Value: o.op.Value})
			}
		}
		slices.SortFunc(want.Entries, func(a, b crdt.Entry) int { return a.Dot.Compare(b.Dot) })
		for _, site := range slices.SortedFunc(maps.Keys(ctx), crdt.SiteID.Compare) {
			want.Context = append(want.Context, crdt.Dot{Site: site, Time: ctx[site]})
		}
		if got, wantEnc := encodeRegister(f.Register), encodeRegister(want); !bytes.Equal(got, wantEnc) {
			t.Fatalf("row %v field %s:\n got %s\nwant %s", k, name, showRegister(f.Register), showRegister(want))
		}
		// The winner is a write that no other write was made after.
		win, _ := f.Register.Winner()
		ws := w.byDot[win.Dot]
		for _, o := range writes {
			if o.st != ws && o.st.after(ws) {
				t.Fatalf("row %v field %s: winner %v was overwritten by %v, made after observing it", k, name, ws, o.st)
			}
		}
	}
}

func (w *world) checkCounter(t fataler, k crdt.RowKey, row *crdt.Row, cl uint64) {
	var want int64
	n := 0
	for _, st := range w.txs() {
		for _, inc := range st.incs {
			if inc.key == k && inc.cl == cl {
				want += inc.delta
				n++
			}
		}
	}
	f, ok := row.Field(simCounter)
	if n == 0 {
		if ok {
			t.Fatalf("row %v: counter exists without increments in life %d", k, cl)
		}
		return
	}
	if !ok {
		t.Fatalf("row %v: counter missing", k)
	}
	if got := f.Counter.Value(); got != want {
		t.Fatalf("row %v: counter %d, want %d", k, got, want)
	}
}

func checkSet(t fataler, k crdt.RowKey, row *crdt.Row, life []simWrite) {
	var want [][]byte
	written := false
	for _, m := range simMembers {
		present := false
		for _, a := range life {
			if a.op.Field != simSet {
				continue
			}
			written = true
			if a.op.Type != crdt.OpAdd || string(a.op.Value) != m {
				continue
			}
			removed := slices.ContainsFunc(life, func(r simWrite) bool {
				return r.op.Type == crdt.OpRemove && r.op.Field == simSet && string(r.op.Value) == m && r.st != a.st && r.st.after(a.st)
			})
			present = present || !removed
		}
		if present {
			want = append(want, []byte(m))
		}
	}
	f, ok := row.Field(simSet)
	if ok != written {
		t.Fatalf("row %v: set field exists=%v, written in this life=%v", k, ok, written)
	}
	if !ok {
		return
	}
	if got := f.Set.Values(); !slices.EqualFunc(got, want, bytes.Equal) {
		t.Fatalf("row %v: set %q, want %q", k, got, want)
	}
}

// encodeRegister, encodeCounter, encodeSet and encodeField give the
// canonical encoding of a field part by wrapping it in a row.
func encodeRegister(r crdt.Register) []byte {
	return crdt.EncodeRow(&crdt.Row{Fields: []crdt.Field{{Kind: crdt.KindRegister, Register: r}}})
}

func encodeCounter(c crdt.Counter) []byte {
	return crdt.EncodeRow(&crdt.Row{Fields: []crdt.Field{{Kind: crdt.KindCounter, Counter: c}}})
}

func encodeSet(s crdt.Set) []byte {
	return crdt.EncodeRow(&crdt.Row{Fields: []crdt.Field{{Kind: crdt.KindSet, Set: s}}})
}

func encodeField(f crdt.Field) []byte {
	return crdt.EncodeRow(&crdt.Row{Fields: []crdt.Field{f}})
}

func showRegister(r crdt.Register) string {
	var b bytes.Buffer
	for _, e := range r.Entries {
		fmt.Fprintf(&b, "%v=%s ", e.Dot, e.Value)
	}
	fmt.Fprintf(&b, "ctx %v", r.Context)
	return b.String()
}

// rowCopy returns a deep copy of r, through the codec.
func rowCopy(t fataler, r *crdt.Row) *crdt.Row {
	if r == nil {
		return &crdt.Row{}
	}
	c, err := crdt.DecodeRow(crdt.EncodeRow(r))
	if err != nil {
		t.Fatalf("decode row: %v", err)
	}
	return c
}

// joinAll returns a fresh State joining all of states, in order.
func joinAll(states ...*crdt.State) *crdt.State {
	var j crdt.State
	for _, s := range states {
		j.Join(s)
	}
	return &j
}
