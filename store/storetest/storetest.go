package storetest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"pgregory.net/rapid"

	"github.com/unosync/uno/conflict"
	"github.com/unosync/uno/crdt"
	"github.com/unosync/uno/store"
)

// Run runs the conformance suite against the store implementation that
// open creates. open returns a fresh, empty store built with opts and
// registers its cleanup on t; see the package documentation for the
// options it must honour.
func Run(t *testing.T, open func(t *testing.T, opts store.Options) store.Store) {
	s := &suite{open: open}
	t.Run("Write", s.testWrite)
	t.Run("Outbox", s.testOutbox)
	t.Run("Apply", s.testApply)
	t.Run("Conflicts", s.testConflicts)
	t.Run("RowLife", s.testRowLife)
	t.Run("Names", s.testNames)
	t.Run("Validation", s.testValidation)
	t.Run("Query", s.testQuery)
	t.Run("Convergence", s.testConvergence)
	t.Run("Concurrent", s.testConcurrent)
	t.Run("Closed", s.testClosed)
	t.Run("SyncState", s.testSyncState)
	t.Run("Fork", s.testFork)
}

// testSyncState: ApplyRowsAt joins transactions and whole row states and
// moves the cursor in one step; the subscriptions record round-trips.
func (s *suite) testSyncState(t *testing.T) {
	ctx := context.Background()
	a, b := s.replica(t, 1, store.Options{}), s.replica(t, 2, store.Options{})
	set(t, a, "todos", "t1", "title", `"x"`)
	set(t, a, "notes", "n1", "body", `"y"`)
	write(t, a, func(bld *crdt.Builder) error { return bld.Increment(key("notes", "n1"), "n", 2) })
	var txs []*crdt.Tx
	for _, tx := range outbox(t, a) {
		if tx.Ops[0].Collection == "todos" {
			txs = append(txs, tx)
		}
	}
	row, err := a.Row(ctx, "notes", "n1")
	if err != nil {
		t.Fatal(err)
	}
	c, err := b.ApplyRowsAt(ctx, txs, []store.RowState{{Key: key("notes", "n1"), Row: row}}, 7)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]crdt.RowKey{key("notes", "n1"), key("todos", "t1")}, sortedKeys(c.Changed)); diff != "" {
		t.Errorf("Changed (-want +got):\n%s", diff)
	}
	sameHash(t, a, b)
	if cur, err := b.Cursor(ctx); err != nil || cur != 7 {
		t.Errorf("Cursor = %d, %v; want 7", cur, err)
	}
	if got := shown(t, b, nil, "notes", "n1")["n"]; got != "2" {
		t.Errorf("merged counter = %s, want 2", got)
	}

	// Receive: a batch and an acknowledgement of b's own writes in one
	// transaction; an acknowledgement beyond b's writes applies nothing.
	set(t, b, "todos", "b1", "title", `"mine"`)
	set(t, b, "todos", "b2", "title", `"mine too"`)
	set(t, a, "todos", "t2", "title", `"z"`)
	last := outbox(t, a)[len(outbox(t, a))-1]
	if _, err := b.Receive(ctx, []*crdt.Tx{last}, nil, 9, 1); err != nil {
		t.Fatal(err)
	}
	if cur, err := b.Cursor(ctx); err != nil || cur != 9 {
		t.Errorf("Cursor after Receive = %d, %v; want 9", cur, err)
	}
	if n := pending(t, b); n != 1 {
		t.Errorf("Pending after Receive acknowledging 1 = %d, want 1", n)
	}
	if getRow(t, b, "todos", "t2") == nil {
		t.Error("Receive did not apply the batch")
	}
	h := hash(t, b)
	set(t, a, "todos", "t3", "title", `"w"`)
	last = outbox(t, a)[len(outbox(t, a))-1]
	if _, err := b.Receive(ctx, []*crdt.Tx{last}, nil, 10, 50); !errors.Is(err, store.ErrLostWrites) {
		t.Errorf("Receive acknowledging beyond the last write = %v, want ErrLostWrites", err)
	}
	if hash(t, b) != h {
		t.Error("Receive with ErrLostWrites applied its batch")
	}

	if got, err := b.Subscriptions(ctx); err != nil || got != nil {
		t.Errorf("Subscriptions before any were set = %q, %v; want nil", got, err)
	}
	for _, want := range [][]byte{[]byte("todos"), []byte("[]")} {
		if err := b.SetSubscriptions(ctx, want); err != nil {
			t.Fatal(err)
		}
		if got, err := b.Subscriptions(ctx); err != nil || got == nil || !bytes.Equal(got, want) {
			t.Errorf("Subscriptions = %q, %v; want %q", got, err, want)
		}
	}
}

type suite struct {
	open func(t *testing.T, opts store.Options) store.Store
}

// epoch is where every fake clock starts.
var epoch = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

// clock is a fake wall clock for Options.Now: every reading advances it by
// one millisecond, so consecutive local writes get distinct physical times.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(time.Millisecond)
	return c.now
}

// Set moves the clock to t (backwards is allowed).
func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// siteID is the site the suite gives the store it opens with number n.
// Greater n give greater site IDs.
func siteID(n byte) crdt.SiteID {
	return crdt.SiteID{n, 0x5e, 0x17, 0xe5, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, n}
}

// replica is a store opened by the suite with its fake clock.
type replica struct {
	store.Store
	clock *clock
}

// replica opens a store with site siteID(n), a fake clock at epoch and
// the other fields of opts.
func (s *suite) replica(t *testing.T, n byte, opts store.Options) *replica {
	t.Helper()
	c := &clock{now: epoch}
	opts.Now = c.Now
	site := siteID(n)
	opts.Rand = bytes.NewReader(site[:])
	st := s.open(t, opts)
	if st == nil {
		t.Fatal("open returned a nil store")
	}
	if got := st.Site(); got != site {
		t.Fatalf("Site() = %s, want %s (the first 16 bytes of Options.Rand)", got, site)
	}
	return &replica{Store: st, clock: c}
}

// fast are options for the randomised tests: durability is not what they test.
var fast = store.Options{Synchronous: "NORMAL"}

var errBoom = errors.New("storetest: boom")

func key(coll, row string) crdt.RowKey { return crdt.RowKey{Collection: coll, Row: row} }

// The helpers below take a rapid.TB rather than a testing.TB so that the
// property tests can call them with their *rapid.T too.

func write(tb rapid.TB, s store.Store, fn func(b *crdt.Builder) error) *store.Commit {
	tb.Helper()
	c, err := s.Write(context.Background(), fn)
	if err != nil {
		tb.Fatalf("Write: %v", err)
	}
	if c == nil {
		tb.Fatal("Write returned a nil Commit and no error")
	}
	return c
}

// set writes register fields of one row in one transaction: field, JSON
// value, field, JSON value...
func set(tb rapid.TB, s store.Store, coll, row string, kv ...string) *store.Commit {
	tb.Helper()
	return write(tb, s, func(b *crdt.Builder) error {
		for i := 0; i+1 < len(kv); i += 2 {
			if err := b.Set(key(coll, row), kv[i], crdt.KindRegister, []byte(kv[i+1])); err != nil {
				return err
			}
		}
		return nil
	})
}

func apply(tb rapid.TB, s store.Store, txs []*crdt.Tx) *store.Commit {
	tb.Helper()
	c, err := s.Apply(context.Background(), txs)
	if err != nil {
		tb.Fatalf("Apply: %v", err)
	}
	if c == nil {
		tb.Fatal("Apply returned a nil Commit and no error")
	}
	return c
}

func outbox(tb rapid.TB, s store.Store) []*crdt.Tx {
	tb.Helper()
	txs, err := s.Outbox(context.Background(), 0, 0)
	if err != nil {
		tb.Fatalf("Outbox: %v", err)
	}
	return txs
}

func pending(tb rapid.TB, s store.Store) int {
	tb.Helper()
	n, err := s.Pending(context.Background())
	if err != nil {
		tb.Fatalf("Pending: %v", err)
	}
	return n
}

func hash(tb rapid.TB, s store.Store) [32]byte {
	tb.Helper()
	h, err := s.Hash(context.Background())
	if err != nil {
		tb.Fatalf("Hash: %v", err)
	}
	return h
}

func getRow(tb rapid.TB, s store.Store, coll, id string) *crdt.Row {
	tb.Helper()
	r, err := s.Row(context.Background(), coll, id)
	if err != nil {
		tb.Fatalf("Row(%s, %s): %v", coll, id, err)
	}
	return r
}

func conflicts(tb rapid.TB, s store.Store, after uint64, limit int) []store.ConflictEntry {
	tb.Helper()
	cs, err := s.Conflicts(context.Background(), after, limit)
	if err != nil {
		tb.Fatalf("Conflicts: %v", err)
	}
	return cs
}

// shown returns what each field of a row shows (its resolved JSON) under
// schema, or nil if the row is not alive.
func shown(tb rapid.TB, s store.Store, schema *store.Schema, coll, id string) map[string]string {
	tb.Helper()
	vals := store.Resolve(schema, coll, getRow(tb, s, coll, id))
	if vals == nil {
		return nil
	}
	out := make(map[string]string, len(vals))
	for f, v := range vals {
		out[f] = string(v.JSON)
	}
	return out
}

func query(tb rapid.TB, s store.Store, q store.Query) []string {
	tb.Helper()
	docs, err := s.Query(context.Background(), q)
	if err != nil {
		tb.Fatalf("Query(%+v): %v", q, err)
	}
	ids := make([]string, len(docs))
	for i, d := range docs {
		ids[i] = d.ID
		if d.Row == nil || !d.Row.Alive() {
			tb.Fatalf("Query(%+v) returned %s with a row that is not alive", q, d.ID)
		}
	}
	return ids
}

// exchange delivers each replica's whole outbox to every other one.
func exchange(tb rapid.TB, rs ...*replica) {
	tb.Helper()
	boxes := make([][]*crdt.Tx, len(rs))
	for i, r := range rs {
		boxes[i] = outbox(tb, r)
	}
	for i, r := range rs {
		for j := range rs {
			if i != j {
				apply(tb, r, boxes[j])
			}
		}
	}
}

func sameHash(tb rapid.TB, rs ...*replica) {
	tb.Helper()
	h0 := hash(tb, rs[0])
	for _, r := range rs[1:] {
		if h := hash(tb, r); h != h0 {
			tb.Fatalf("hash of %s = %x, hash of %s = %x: replicas diverged", rs[0].Site(), h0, r.Site(), h)
		}
	}
}

// referenceHash is the hash of a crdt.State that applied txs.
func referenceHash(tb rapid.TB, txs ...[]*crdt.Tx) [32]byte {
	tb.Helper()
	var st crdt.State
	for _, batch := range txs {
		for _, tx := range batch {
			if _, err := st.Apply(tx); err != nil {
				tb.Fatalf("reference apply %s/%d: %v", tx.Site, tx.Seq, err)
			}
		}
	}
	return st.Hash()
}

// clone returns a deep copy of tx.
func clone(tb rapid.TB, tx *crdt.Tx) *crdt.Tx {
	tb.Helper()
	c, err := crdt.DecodeTx(crdt.EncodeTx(tx))
	if err != nil {
		tb.Fatalf("clone tx: %v", err)
	}
	return c
}

func sortedKeys(keys []crdt.RowKey) []crdt.RowKey {
	out := slices.Clone(keys)
	slices.SortFunc(out, func(a, b crdt.RowKey) int {
		return cmp3(strings.Compare(a.Collection, b.Collection), strings.Compare(a.Row, b.Row))
	})
	return out
}

func cmp3(a, b int) int {
	if a != 0 {
		return a
	}
	return b
}

// dotOpt lets go-cmp compare values holding crdt.Dot (its blank field is unexported).
var dotOpt = cmpopts.IgnoreUnexported(crdt.Dot{})

func (s *suite) testWrite(t *testing.T) {
	t.Run("Sequence", func(t *testing.T) {
		r := s.replica(t, 1, store.Options{})
		a, b := key("todos", "a"), key("todos", "b")
		steps := []struct {
			fn      func(b *crdt.Builder) error
			changed []crdt.RowKey
		}{
			{func(bld *crdt.Builder) error {
				return errors.Join(
					bld.Set(a, "title", crdt.KindRegister, []byte(`"buy milk"`)),
					bld.Increment(a, "n", 2),
					bld.Add(a, "tags", []byte(`"x"`)),
					bld.Add(a, "tags", []byte(`"y"`)),
				)
			}, []crdt.RowKey{a}},
			{func(bld *crdt.Builder) error {
				return errors.Join(
					bld.Set(b, "title", crdt.KindRegister, []byte(`"walk"`)),
					bld.Remove(a, "tags", []byte(`"x"`)),
					bld.Increment(a, "n", -1),
				)
			}, []crdt.RowKey{a, b}},
			{func(bld *crdt.Builder) error {
				_, err := bld.Delete(b)
				return err
			}, []crdt.RowKey{b}},
		}
		var last crdt.Timestamp
		for i, st := range steps {
			c := write(t, r, st.fn)
			if c.Tx == nil {
				t.Fatalf("write %d: Commit.Tx is nil", i+1)
			}
			if c.Tx.Seq != uint64(i+1) {
				t.Errorf("write %d: Seq = %d, want %d", i+1, c.Tx.Seq, i+1)
			}
			if c.Tx.Site != r.Site() {
				t.Errorf("write %d: Site = %s, want the store's %s", i+1, c.Tx.Site, r.Site())
			}
			if c.Tx.Time <= last {
				t.Errorf("write %d: Time %s not after the previous write's %s", i+1, c.Tx.Time, last)
			}
			last = c.Tx.Time
			if len(c.Tx.Ops) == 0 {
				t.Errorf("write %d: no ops", i+1)
			}
			if err := c.Tx.Validate(); err != nil {
				t.Errorf("write %d: %v", i+1, err)
			}
			if diff := cmp.Diff(sortedKeys(st.changed), sortedKeys(c.Changed)); diff != "" {
				t.Errorf("write %d: Changed (-want +got):\n%s", i+1, diff)
			}
			if len(c.Conflicts) != 0 {
				t.Errorf("write %d: a local write recorded conflicts: %v", i+1, c.Conflicts)
			}
		}
		want := map[string]string{"title": `"buy milk"`, "n": `1`, "tags": `["y"]`}
		if diff := cmp.Diff(want, shown(t, r, nil, "todos", "a")); diff != "" {
			t.Errorf("row a (-want +got):\n%s", diff)
		}
		rb := getRow(t, r, "todos", "b")
		if rb == nil || rb.Alive() || rb.CL != 2 {
			t.Errorf("row b after delete = %+v, want a deleted row with CL 2", rb)
		}
		if got := getRow(t, r, "todos", "never"); got != nil {
			t.Errorf("Row of a row never written = %+v, want nil", got)
		}
		if got := getRow(t, r, "nothing", "a"); got != nil {
			t.Errorf("Row in a collection never written = %+v, want nil", got)
		}
	})

	t.Run("Error", func(t *testing.T) {
		r := s.replica(t, 1, store.Options{})
		set(t, r, "todos", "a", "title", `"one"`)
		h := hash(t, r)
		c, err := r.Write(t.Context(), func(b *crdt.Builder) error {
			if err := b.Set(key("todos", "a"), "title", crdt.KindRegister, []byte(`"two"`)); err != nil {
				return err
			}
			if err := b.Increment(key("todos", "b"), "n", 1); err != nil {
				return err
			}
			return fmt.Errorf("wrapped: %w", errBoom)
		})
		if !errors.Is(err, errBoom) {
			t.Fatalf("Write = %v, %v; want the function's error", c, err)
		}
		if got := hash(t, r); got != h {
			t.Error("a failed Write changed the state")
		}
		if got := shown(t, r, nil, "todos", "a")["title"]; got != `"one"` {
			t.Errorf("title after failed Write = %s, want \"one\"", got)
		}
		if got := getRow(t, r, "todos", "b"); got != nil {
			t.Errorf("row b after failed Write = %+v, want nil", got)
		}
		if n := pending(t, r); n != 1 {
			t.Errorf("Pending after failed Write = %d, want 1", n)
		}
		// A kind mismatch from the builder fails the Write the same way.
		_, err = r.Write(t.Context(), func(b *crdt.Builder) error { return b.Increment(key("todos", "a"), "title", 1) })
		if !errors.Is(err, crdt.ErrKindMismatch) {
			t.Errorf("Increment of a register = %v, want crdt.ErrKindMismatch", err)
		}
		if c := set(t, r, "todos", "a", "title", `"three"`); c.Tx.Seq != 2 {
			t.Errorf("Seq after failed Writes = %d, want 2 (no number used)", c.Tx.Seq)
		}
	})

	t.Run("Empty", func(t *testing.T) {
		r := s.replica(t, 1, store.Options{})
		set(t, r, "todos", "a", "title", `"one"`)
		h := hash(t, r)
		fns := map[string]func(b *crdt.Builder) error{
			"nothing": func(*crdt.Builder) error { return nil },
			"read only": func(b *crdt.Builder) error {
				row, err := b.Row(key("todos", "a"))
				if err != nil {
					return err
				}
				if _, ok := row.Field("title"); !ok {
					return fmt.Errorf("builder does not see the committed title")
				}
				_, err = b.Row(key("todos", "never"))
				return err
			},
			"delete of a row never seen": func(b *crdt.Builder) error {
				_, err := b.Delete(key("todos", "never"))
				return err
			},
			"remove of a member never seen": func(b *crdt.Builder) error {
				return b.Remove(key("todos", "a"), "tags", []byte(`"x"`))
			},
		}
		for name, fn := range fns {
			c := write(t, r, fn)
			if c.Tx != nil || len(c.Changed) != 0 {
				t.Errorf("%s: Commit = %+v, want Tx nil and nothing changed", name, c)
			}
		}
		if got := hash(t, r); got != h {
			t.Error("empty Writes changed the state")
		}
		if n := pending(t, r); n != 1 {
			t.Errorf("Pending after empty Writes = %d, want 1", n)
		}
		if c := set(t, r, "todos", "a", "title", `"two"`); c.Tx.Seq != 2 {
			t.Errorf("Seq after empty Writes = %d, want 2 (no number used)", c.Tx.Seq)
		}
	})

	t.Run("Schema", func(t *testing.T) {
		if got := s.replica(t, 1, store.Options{}).Schema(); got != nil {
			t.Errorf("Schema() of a store opened without one = %+v, want nil", got)
		}
		schema := &store.Schema{Version: 3, Collections: []store.Collection{{
			Name: "todos", Fields: []store.Field{{Name: "n", Kind: crdt.KindCounter}, {Name: "body", Policy: conflict.MultiValue()}},
		}}}
		got := s.replica(t, 2, store.Options{Schema: schema}).Schema()
		if got == nil || got.Version != 3 || len(got.Collections) != 1 || got.Collections[0].Name != "todos" ||
			got.KindOf("todos", "n") != crdt.KindCounter || got.PolicyOf("todos", "body").Mode != conflict.ModeMultiValue {
			t.Errorf("Schema() = %+v, want the schema the store was opened with", got)
		}
	})

	t.Run("ReadYourWrites", func(t *testing.T) {
		r := s.replica(t, 1, store.Options{})
		k := key("todos", "a")
		for i := range 3 {
			write(t, r, func(b *crdt.Builder) error {
				row, err := b.Row(k)
				if err != nil {
					return err
				}
				if i > 0 {
					if f, ok := row.Field("n"); !ok || f.Counter.Value() != int64(i) {
						return fmt.Errorf("write %d: builder sees counter %v, want %d", i, f, i)
					}
				}
				return b.Increment(k, "n", 1)
			})
		}
		if got := shown(t, r, nil, "todos", "a")["n"]; got != "3" {
			t.Errorf("counter = %s, want 3", got)
		}
		want := referenceHash(t, outbox(t, r))
		if got := hash(t, r); got != want {
			t.Error("Hash differs from a crdt.State that applied the outbox")
		}
	})
}

func (s *suite) testOutbox(t *testing.T) {
	r := s.replica(t, 1, store.Options{})
	ctx := t.Context()
	var commits []*store.Commit
	for i := range 5 {
		commits = append(commits, write(t, r, func(b *crdt.Builder) error {
			return errors.Join(
				b.Set(key("todos", fmt.Sprint("r", i%2)), "title", crdt.KindRegister, []byte(fmt.Sprintf(`"t%d"`, i))),
				b.Increment(key("todos", "r0"), "n", int64(i)-2),
				b.Add(key("todos", "r1"), "tags", []byte(fmt.Sprint(i))),
			)
		}))
	}
	seqs := func(txs []*crdt.Tx) []uint64 {
		out := []uint64{}
		for _, tx := range txs {
			out = append(out, tx.Seq)
		}
		return out
	}
	page := func(after uint64, limit int) []uint64 {
		t.Helper()
		txs, err := r.Outbox(ctx, after, limit)
		if err != nil {
			t.Fatalf("Outbox(%d, %d): %v", after, limit, err)
		}
		return seqs(txs)
	}

	box := outbox(t, r)
	if len(box) != len(commits) {
		t.Fatalf("Outbox holds %d transactions, want %d", len(box), len(commits))
	}
	for i, tx := range box {
		if !bytes.Equal(crdt.EncodeTx(tx), crdt.EncodeTx(commits[i].Tx)) {
			t.Errorf("outbox entry %d differs from the committed transaction:\n got %+v\nwant %+v", i, tx, commits[i].Tx)
		}
	}
	if n := pending(t, r); n != 5 {
		t.Errorf("Pending = %d, want 5", n)
	}
	pages := []struct {
		after uint64
		limit int
		want  []uint64
	}{
		{0, 0, []uint64{1, 2, 3, 4, 5}},
		{0, 2, []uint64{1, 2}},
		{2, 2, []uint64{3, 4}},
		{4, 2, []uint64{5}},
		{3, 100, []uint64{4, 5}},
		{5, 0, []uint64{}},
		{99, 1, []uint64{}},
	}
	for _, p := range pages {
		if diff := cmp.Diff(p.want, page(p.after, p.limit)); diff != "" {
			t.Errorf("Outbox(%d, %d) seqs (-want +got):\n%s", p.after, p.limit, diff)
		}
	}

	acks := []struct {
		seq     uint64
		pending int
		seqs    []uint64
	}{
		{0, 5, []uint64{1, 2, 3, 4, 5}},
		{2, 3, []uint64{3, 4, 5}},
		{2, 3, []uint64{3, 4, 5}},
		{1, 3, []uint64{3, 4, 5}},
		{4, 1, []uint64{5}},
	}
	for _, a := range acks {
		if err := r.Ack(ctx, a.seq); err != nil {
			t.Fatalf("Ack(%d): %v", a.seq, err)
		}
		if n := pending(t, r); n != a.pending {
			t.Errorf("Pending after Ack(%d) = %d, want %d", a.seq, n, a.pending)
		}
		if diff := cmp.Diff(a.seqs, page(0, 0)); diff != "" {
			t.Errorf("Outbox after Ack(%d) (-want +got):\n%s", a.seq, diff)
		}
	}
	if got := page(0, 1); len(got) != 1 {
		t.Errorf("Outbox(0, 1) after acks = %v, want one entry", got)
	}

	// Acknowledging does not change the state, nor the next sequence number.
	h := hash(t, r)
	if err := r.Ack(ctx, 5); err != nil {
		t.Fatal(err)
	}
	if hash(t, r) != h {
		t.Error("Ack changed the state")
	}
	if n := pending(t, r); n != 0 {
		t.Errorf("Pending after acking everything = %d, want 0", n)
	}
	c := set(t, r, "todos", "r0", "title", `"after"`)
	if c.Tx.Seq != 6 {
		t.Errorf("Seq after Ack = %d, want 6", c.Tx.Seq)
	}
	if diff := cmp.Diff([]uint64{6}, page(0, 0)); diff != "" {
		t.Errorf("Outbox after a new write (-want +got):\n%s", diff)
	}
	// An Ack beyond the last write: the server holds writes the replica
	// lost. The next write goes past them, and the cursor back to 0 so
	// that the next connection bootstraps.
	if _, err := r.ApplyAt(ctx, nil, 7); err != nil {
		t.Fatal(err)
	}
	if err := r.Ack(ctx, 100); !errors.Is(err, store.ErrLostWrites) {
		t.Fatalf("Ack beyond the last seq = %v, want ErrLostWrites", err)
	}
	if n := pending(t, r); n != 0 {
		t.Errorf("Pending after Ack(100) = %d, want 0", n)
	}
	if cur, err := r.Cursor(ctx); err != nil || cur != 0 {
		t.Errorf("Cursor after Ack(100) = %d, %v; want 0", cur, err)
	}
	if c := set(t, r, "todos", "r0", "title", `"later"`); c.Tx.Seq != 101 {
		t.Errorf("Seq after Ack(100) = %d, want 101", c.Tx.Seq)
	}
}

func (s *suite) testApply(t *testing.T) {
	// fill writes a few transactions on rows a and b of "todos".
	fill := func(t *testing.T, r *replica, tag string) {
		t.Helper()
		write(t, r, func(b *crdt.Builder) error {
			return errors.Join(
				b.Set(key("todos", "a"), "title", crdt.KindRegister, []byte(`"`+tag+`"`)),
				b.Increment(key("todos", "a"), "n", 2),
				b.Add(key("todos", "a"), "tags", []byte(`"`+tag+`"`)),
			)
		})
		set(t, r, "todos", "b-"+tag, "title", `"b"`, "done", "false")
		write(t, r, func(b *crdt.Builder) error {
			return errors.Join(b.Increment(key("todos", "a"), "n", 3), b.Set(key("notes", tag), "body", crdt.KindRegister, []byte(`{"k":[1,2]}`)))
		})
	}

	t.Run("Exchange", func(t *testing.T) {
		a, b := s.replica(t, 1, store.Options{}), s.replica(t, 2, store.Options{})
		fill(t, a, "a")
		fill(t, b, "b")
		boxA, boxB := outbox(t, a), outbox(t, b)
		c := apply(t, b, boxA)
		if c.Tx != nil {
			t.Errorf("Apply returned Commit.Tx = %+v, want nil", c.Tx)
		}
		want := []crdt.RowKey{key("notes", "a"), key("todos", "a"), key("todos", "b-a")}
		if diff := cmp.Diff(want, sortedKeys(c.Changed)); diff != "" {
			t.Errorf("Changed (-want +got):\n%s", diff)
		}
		apply(t, a, boxB)
		sameHash(t, a, b)
		if got, want := hash(t, a), referenceHash(t, boxA, boxB); got != want {
			t.Error("hash after exchange differs from a crdt.State that applied both outboxes")
		}
		if got := shown(t, a, nil, "todos", "a")["n"]; got != "10" {
			t.Errorf("counter after exchange = %s, want 10", got)
		}
		if got := shown(t, b, nil, "todos", "a")["tags"]; got != `["a","b"]` {
			t.Errorf("set after exchange = %s, want [\"a\",\"b\"]", got)
		}
		// Applied transactions are not the store's own: they stay out of its outbox.
		if n := pending(t, b); n != 3 {
			t.Errorf("Pending after Apply = %d, want 3 (its own writes only)", n)
		}
		// A local write after Apply sees the merged row.
		write(t, b, func(bld *crdt.Builder) error { return bld.Increment(key("todos", "a"), "n", 1) })
		apply(t, a, outbox(t, b))
		sameHash(t, a, b)
		if got := shown(t, a, nil, "todos", "a")["n"]; got != "11" {
			t.Errorf("counter after merged write = %s, want 11", got)
		}
	})

	t.Run("Empty", func(t *testing.T) {
		a := s.replica(t, 1, store.Options{})
		fill(t, a, "a")
		h := hash(t, a)
		for _, txs := range [][]*crdt.Tx{nil, {}} {
			c := apply(t, a, txs)
			if len(c.Changed) != 0 || len(c.Conflicts) != 0 {
				t.Errorf("Apply(%v) = %+v, want nothing changed", txs, c)
			}
		}
		if hash(t, a) != h {
			t.Error("an empty Apply changed the state")
		}
	})

	t.Run("Duplicates", func(t *testing.T) {
		a, b := s.replica(t, 1, store.Options{}), s.replica(t, 2, store.Options{})
		fill(t, a, "a")
		box := outbox(t, a)
		apply(t, b, box)
		h := hash(t, b)
		for name, batch := range map[string][]*crdt.Tx{
			"again":           box,
			"twice in batch":  {box[0], box[0], box[1], box[1], box[2], box[0]},
			"decoded copies":  {clone(t, box[2]), clone(t, box[1])},
			"reversed prefix": {box[1], box[0]},
		} {
			c := apply(t, b, batch)
			if len(c.Changed) != 0 || len(c.Conflicts) != 0 {
				t.Errorf("%s: Apply = Changed %v, Conflicts %v; want nothing", name, c.Changed, c.Conflicts)
			}
			if hash(t, b) != h {
				t.Errorf("%s: applying duplicates changed the state", name)
			}
		}
		if got := shown(t, b, nil, "todos", "a")["n"]; got != "5" {
			t.Errorf("counter after duplicates = %s, want 5 (not doubled)", got)
		}
		// Duplicates inside the first delivery count once too.
		c := s.replica(t, 3, store.Options{})
		apply(t, c, []*crdt.Tx{box[0], box[1], box[0], box[1], box[2], box[2]})
		sameHash(t, b, c)
	})

	t.Run("HighWater", func(t *testing.T) {
		a, b := s.replica(t, 1, store.Options{}), s.replica(t, 2, store.Options{})
		fill(t, a, "a")
		box := outbox(t, a)
		apply(t, b, box[:2])
		// A transaction with a sequence number already applied is skipped
		// by number: a forged copy with another timestamp (so the merge
		// rules would not see duplicates) and other values changes nothing.
		forged := clone(t, box[1])
		forged.Time++
		for i := range forged.Ops {
			if forged.Ops[i].Type == crdt.OpSet {
				forged.Ops[i].Value = []byte(`"forged"`)
			}
		}
		h := hash(t, b)
		if c := apply(t, b, []*crdt.Tx{forged}); len(c.Changed) != 0 {
			t.Errorf("Apply of an already applied seq changed %v", c.Changed)
		}
		if hash(t, b) != h {
			t.Error("a transaction at the high-water mark was applied")
		}
		// Redelivering from the start applies only what is new.
		c := apply(t, b, box)
		want := []crdt.RowKey{key("notes", "a"), key("todos", "a")}
		if diff := cmp.Diff(want, sortedKeys(c.Changed)); diff != "" {
			t.Errorf("Changed when redelivering 1..3 after 1..2 (-want +got):\n%s", diff)
		}
		sameHash(t, a, b)
	})

	t.Run("Echo", func(t *testing.T) {
		a := s.replica(t, 1, store.Options{})
		fill(t, a, "a")
		box := outbox(t, a)
		h := hash(t, a)
		forged := clone(t, box[2])
		forged.Time++
		for i := range forged.Ops {
			forged.Ops[i].P += 100
			if forged.Ops[i].Type == crdt.OpSet {
				forged.Ops[i].Value = []byte(`"forged"`)
			}
		}
		for name, batch := range map[string][]*crdt.Tx{"outbox": box, "forged": {forged}} {
			c := apply(t, a, batch)
			if len(c.Changed) != 0 || len(c.Conflicts) != 0 {
				t.Errorf("%s: applying the store's own transactions = Changed %v, Conflicts %v; want nothing", name, c.Changed, c.Conflicts)
			}
		}
		if hash(t, a) != h {
			t.Error("applying the store's own transactions changed the state")
		}
		if c := set(t, a, "todos", "a", "title", `"next"`); c.Tx.Seq != 4 {
			t.Errorf("Seq after echoes = %d, want 4", c.Tx.Seq)
		}
	})

	t.Run("Gap", func(t *testing.T) {
		a, b := s.replica(t, 1, store.Options{}), s.replica(t, 2, store.Options{})
		c := s.replica(t, 3, store.Options{})
		fill(t, a, "a")
		fill(t, c, "c")
		box, boxC := outbox(t, a), outbox(t, c)
		// Each site's transactions apply in order: skipping one fails the
		// whole batch, whichever site's transactions come first in it.
		for name, batch := range map[string][]*crdt.Tx{
			"first missing":             {box[1], box[2]},
			"middle missing":            {box[0], box[2]},
			"after another site's txs":  {boxC[0], boxC[1], boxC[2], box[1]},
			"before another site's txs": {box[0], box[2], boxC[0]},
		} {
			h := hash(t, b)
			_, err := b.Apply(t.Context(), batch)
			if !errors.Is(err, store.ErrGap) {
				t.Errorf("%s: Apply = %v, want store.ErrGap", name, err)
			}
			if hash(t, b) != h {
				t.Errorf("%s: a batch with a gap changed the state", name)
			}
		}
		// Nothing of the failed batches counted as applied.
		apply(t, b, box[:1])
		if _, err := b.Apply(t.Context(), box[2:]); !errors.Is(err, store.ErrGap) {
			t.Errorf("Apply of seq 3 after 1 = %v, want store.ErrGap", err)
		}
		apply(t, b, box[1:])
		apply(t, b, boxC)
		if got, want := hash(t, b), referenceHash(t, box, boxC); got != want {
			t.Error("hash after the gaps were filled differs from the reference")
		}
	})

	t.Run("Malformed", func(t *testing.T) {
		bad := map[string]func(tx *crdt.Tx){
			"delete with odd CL": func(tx *crdt.Tx) {
				tx.Ops = append(tx.Ops, crdt.Op{Type: crdt.OpDelete, Collection: "todos", Row: "a", CL: 3})
			},
			"delete with CL 0": func(tx *crdt.Tx) {
				tx.Ops = append(tx.Ops, crdt.Op{Type: crdt.OpDelete, Collection: "todos", Row: "a"})
			},
			"revive with even CL": func(tx *crdt.Tx) {
				tx.Ops = append(tx.Ops, crdt.Op{Type: crdt.OpRevive, Collection: "todos", Row: "a", CL: 2})
			},
			"seq 0":     func(tx *crdt.Tx) { tx.Seq = 0 },
			"zero site": func(tx *crdt.Tx) { tx.Site = crdt.SiteID{} },
			"field op without field": func(tx *crdt.Tx) {
				tx.Ops[len(tx.Ops)-1].Field = ""
			},
			"set on a counter": func(tx *crdt.Tx) {
				tx.Ops = append(tx.Ops, crdt.Op{Type: crdt.OpSet, Kind: crdt.KindCounter, Collection: "todos", Row: "a", Field: "n", CL: 1, Value: []byte("1")})
			},
			"field op with even CL": func(tx *crdt.Tx) {
				tx.Ops[len(tx.Ops)-1].CL = 2
			},
		}
		for name, spoil := range bad {
			t.Run(strings.ReplaceAll(name, " ", "_"), func(t *testing.T) {
				a, b, c := s.replica(t, 1, fast), s.replica(t, 2, fast), s.replica(t, 3, fast)
				fill(t, a, "a")
				fill(t, c, "c")
				boxA, boxC := outbox(t, a), outbox(t, c)
				apply(t, b, boxA[:1])
				h, cs := hash(t, b), conflicts(t, b, 0, 0)
				// The bad transaction is the last of a site's batch, after
				// good ones of two sites: none of them may stick.
				spoilt := clone(t, boxC[2])
				spoil(spoilt)
				batch := append(slices.Clone(boxA), boxC[0], boxC[1], spoilt)
				_, err := b.Apply(t.Context(), batch)
				if !errors.Is(err, crdt.ErrMalformedOp) {
					t.Fatalf("Apply of a batch with a malformed tx = %v, want crdt.ErrMalformedOp", err)
				}
				if hash(t, b) != h {
					t.Error("a failed Apply changed the state")
				}
				if diff := cmp.Diff(cs, conflicts(t, b, 0, 0), dotOpt); diff != "" {
					t.Errorf("a failed Apply changed the conflict log:\n%s", diff)
				}
				// Nothing of the failed batch was recorded as applied.
				apply(t, b, boxA)
				apply(t, b, boxC)
				apply(t, a, outbox(t, b))
				apply(t, a, boxC)
				sameHash(t, a, b)
				if got, want := hash(t, b), referenceHash(t, boxA, boxC); got != want {
					t.Error("hash after a failed batch and a good one differs from the reference")
				}
			})
		}
	})

	t.Run("Drift", func(t *testing.T) {
		opts := store.Options{MaxDrift: time.Hour}
		a, b, f := s.replica(t, 1, opts), s.replica(t, 2, opts), s.replica(t, 3, opts)
		fill(t, b, "b")
		f.clock.Set(epoch.Add(2 * time.Hour))
		future := set(t, f, "todos", "a", "title", `"from the future"`).Tx
		fill(t, a, "a")
		h := hash(t, a)
		_, err := a.Apply(t.Context(), append(outbox(t, b), future))
		if !errors.Is(err, crdt.ErrClockDrift) {
			t.Fatalf("Apply of a tx 2h ahead with MaxDrift 1h = %v, want crdt.ErrClockDrift", err)
		}
		var de *crdt.DriftError
		if !errors.As(err, &de) || de.Remote != future.Time {
			t.Errorf("error %v does not carry a *crdt.DriftError for %s", err, future.Time)
		}
		if hash(t, a) != h {
			t.Error("a batch rejected for drift changed the state")
		}
		// The clock did not move either: the next local write is stamped
		// by the local clock, not after the rejected timestamp.
		if c := set(t, a, "todos", "z", "x", "1"); c.Tx.Time >= future.Time {
			t.Errorf("local write after a rejected batch stamped %s, at or after the rejected %s", c.Tx.Time, future.Time)
		}
		// The good part of the batch applies on its own; the future tx
		// applies once the local clock is within the drift bound.
		apply(t, a, outbox(t, b))
		a.clock.Set(epoch.Add(90 * time.Minute))
		apply(t, a, []*crdt.Tx{future})
		// Applying moves the clock past the remote timestamp, even with
		// the wall clock behind it.
		a.clock.Set(epoch)
		c := set(t, a, "todos", "a", "title", `"after"`)
		if c.Tx.Time <= future.Time {
			t.Errorf("local write after applying %s stamped %s, want later", future.Time, c.Tx.Time)
		}
		if got := shown(t, a, nil, "todos", "a")["title"]; got != `"after"` {
			t.Errorf("title = %s, want the later local write", got)
		}
	})
}

func (s *suite) testConflicts(t *testing.T) {
	t.Run("LWW", func(t *testing.T) {
		a, b := s.replica(t, 1, store.Options{}), s.replica(t, 2, store.Options{})
		b.clock.Set(epoch.Add(time.Second))
		txA := set(t, a, "todos", "r", "title", `"from a"`).Tx
		txB := set(t, b, "todos", "r", "title", `"from b"`).Tx
		want := store.ConflictEntry{Record: conflict.Record{
			Collection: "todos", Row: "r", Field: "title", Mode: conflict.ModeLWW,
			Winner: conflict.Value{Data: []byte(`"from b"`), Dot: txB.Dot()},
			Loser:  conflict.Value{Data: []byte(`"from a"`), Dot: txA.Dot()},
		}}
		ignoreID := cmpopts.IgnoreFields(store.ConflictEntry{}, "ID")
		for _, x := range []struct {
			r    *replica
			from *replica
		}{{a, b}, {b, a}} {
			c := apply(t, x.r, outbox(t, x.from))
			if diff := cmp.Diff([]store.ConflictEntry{want}, c.Conflicts, dotOpt, ignoreID); diff != "" {
				t.Errorf("%s: Commit.Conflicts (-want +got):\n%s", x.r.Site(), diff)
			}
			log := conflicts(t, x.r, 0, 0)
			if diff := cmp.Diff(c.Conflicts, log, dotOpt); diff != "" {
				t.Errorf("%s: Conflicts() differs from Commit.Conflicts (-commit +log):\n%s", x.r.Site(), diff)
			}
			if len(log) == 1 && log[0].ID == 0 {
				t.Errorf("%s: conflict ID 0, want IDs from 1", x.r.Site())
			}
			if got := shown(t, x.r, nil, "todos", "r")["title"]; got != `"from b"` {
				t.Errorf("%s: title = %s, want the greater dot's \"from b\"", x.r.Site(), got)
			}
		}
		sameHash(t, a, b)

		// A second round of concurrent writes: new records with greater IDs.
		first := conflicts(t, a, 0, 0)
		set(t, a, "todos", "r", "title", `"a2"`, "note", `"na"`)
		set(t, b, "todos", "r", "title", `"b2"`, "note", `"nb"`)
		exchange(t, a, b)
		sameHash(t, a, b)
		for _, r := range []*replica{a, b} {
			log := conflicts(t, r, 0, 0)
			if len(log) != 3 {
				t.Fatalf("%s: %d conflict records after two rounds, want 3: %v", r.Site(), len(log), log)
			}
			for i := 1; i < len(log); i++ {
				if log[i].ID <= log[i-1].ID {
					t.Errorf("%s: conflict IDs not increasing: %d then %d", r.Site(), log[i-1].ID, log[i].ID)
				}
			}
			if diff := cmp.Diff(log[1:], conflicts(t, r, log[0].ID, 0), dotOpt); diff != "" {
				t.Errorf("%s: Conflicts(after first) (-want +got):\n%s", r.Site(), diff)
			}
			if diff := cmp.Diff(log[:2], conflicts(t, r, 0, 2), dotOpt); diff != "" {
				t.Errorf("%s: Conflicts(0, 2) (-want +got):\n%s", r.Site(), diff)
			}
			if got := conflicts(t, r, log[2].ID, 0); len(got) != 0 {
				t.Errorf("%s: Conflicts after the last ID = %v, want none", r.Site(), got)
			}
			for _, e := range log[1:] {
				if e.ID <= first[0].ID {
					t.Errorf("%s: new record ID %d not above earlier %d", r.Site(), e.ID, first[0].ID)
				}
				if e.Winner.Dot.Compare(e.Loser.Dot) <= 0 {
					t.Errorf("%s: record %v: winner's dot not greater than loser's", r.Site(), e)
				}
			}
		}
	})

	t.Run("TieBySite", func(t *testing.T) {
		// Equal timestamps: the greater site wins, on both replicas.
		a, b := s.replica(t, 1, store.Options{}), s.replica(t, 2, store.Options{})
		a.clock.Set(epoch.Add(time.Minute))
		b.clock.Set(epoch.Add(time.Minute))
		txA := set(t, a, "todos", "r", "title", `"from a"`).Tx
		txB := set(t, b, "todos", "r", "title", `"from b"`).Tx
		if txA.Time != txB.Time {
			t.Fatalf("fake clocks gave %s and %s, want equal", txA.Time, txB.Time)
		}
		exchange(t, a, b)
		for _, r := range []*replica{a, b} {
			if got := shown(t, r, nil, "todos", "r")["title"]; got != `"from b"` {
				t.Errorf("%s: title = %s, want the greater site's \"from b\"", r.Site(), got)
			}
			log := conflicts(t, r, 0, 0)
			if len(log) != 1 || log[0].Winner.Dot != txB.Dot() || log[0].Loser.Dot != txA.Dot() {
				t.Errorf("%s: conflicts = %v, want one won by %s", r.Site(), log, txB.Dot())
			}
		}
		sameHash(t, a, b)
	})

	t.Run("NoConflict", func(t *testing.T) {
		a, b := s.replica(t, 1, store.Options{}), s.replica(t, 2, store.Options{})
		// Writes that saw each other are not concurrent.
		set(t, a, "todos", "r", "title", `"one"`)
		exchange(t, a, b)
		set(t, b, "todos", "r", "title", `"two"`)
		exchange(t, a, b)
		set(t, a, "todos", "r", "title", `"three"`)
		exchange(t, a, b)
		// Counters and sets merge without conflicts.
		for _, r := range []*replica{a, b} {
			write(t, r, func(bld *crdt.Builder) error {
				return errors.Join(bld.Increment(key("todos", "r"), "n", 5), bld.Add(key("todos", "r"), "tags", []byte(`"t"`)))
			})
		}
		exchange(t, a, b)
		for _, r := range []*replica{a, b} {
			if log := conflicts(t, r, 0, 0); len(log) != 0 {
				t.Errorf("%s: conflicts = %v, want none", r.Site(), log)
			}
			want := map[string]string{"title": `"three"`, "n": "10", "tags": `["t"]`}
			if diff := cmp.Diff(want, shown(t, r, nil, "todos", "r")); diff != "" {
				t.Errorf("%s: row (-want +got):\n%s", r.Site(), diff)
			}
		}
		sameHash(t, a, b)
	})

	t.Run("MultiValue", func(t *testing.T) {
		schema := &store.Schema{Collections: []store.Collection{{
			Name:   "notes",
			Fields: []store.Field{{Name: "body", Policy: conflict.MultiValue()}, {Name: "title"}},
		}}}
		opts := store.Options{Schema: schema}
		a, b := s.replica(t, 1, opts), s.replica(t, 2, opts)
		b.clock.Set(epoch.Add(time.Second))
		txA := set(t, a, "notes", "n", "body", `"from a"`, "title", `"ta"`).Tx
		txB := set(t, b, "notes", "n", "body", `"from b"`, "title", `"tb"`).Tx
		exchange(t, a, b)
		sameHash(t, a, b)
		wantSiblings := []conflict.Value{
			{Data: []byte(`"from a"`), Dot: txA.Dot()},
			{Data: []byte(`"from b"`), Dot: txB.Dot()},
		}
		for _, r := range []*replica{a, b} {
			vals := store.Resolve(schema, "notes", getRow(t, r, "notes", "n"))
			if got := string(vals["body"].JSON); got != `"from b"` {
				t.Errorf("%s: body shows %s, want the greater dot's \"from b\"", r.Site(), got)
			}
			if diff := cmp.Diff(wantSiblings, vals["body"].Siblings, dotOpt); diff != "" {
				t.Errorf("%s: body siblings (-want +got):\n%s", r.Site(), diff)
			}
			if got := vals["title"].Siblings; got != nil {
				t.Errorf("%s: last-writer-wins title has siblings %v", r.Site(), got)
			}
			if got := store.Resolve(nil, "notes", getRow(t, r, "notes", "n"))["body"]; got.Siblings != nil {
				t.Errorf("%s: without the schema, body has siblings %v", r.Site(), got.Siblings)
			}
			modes := map[string]conflict.Mode{}
			for _, e := range conflicts(t, r, 0, 0) {
				modes[e.Field] = e.Mode
			}
			if diff := cmp.Diff(map[string]conflict.Mode{"body": conflict.ModeMultiValue, "title": conflict.ModeLWW}, modes); diff != "" {
				t.Errorf("%s: conflict modes by field (-want +got):\n%s", r.Site(), diff)
			}
			if got := query(t, r, store.Query{Collection: "notes", Where: []store.Cond{{Field: "body", Op: store.Eq, Value: "from b"}}}); !slices.Equal(got, []string{"n"}) {
				t.Errorf("%s: query on the shown sibling = %v, want [n]", r.Site(), got)
			}
		}
		// A write that saw both siblings resolves them, everywhere.
		n := len(conflicts(t, b, 0, 0))
		set(t, a, "notes", "n", "body", `"merged"`)
		exchange(t, a, b)
		sameHash(t, a, b)
		for _, r := range []*replica{a, b} {
			vals := store.Resolve(schema, "notes", getRow(t, r, "notes", "n"))
			if got := string(vals["body"].JSON); got != `"merged"` || vals["body"].Siblings != nil {
				t.Errorf("%s: body = %s with siblings %v, want \"merged\" alone", r.Site(), got, vals["body"].Siblings)
			}
		}
		if got := len(conflicts(t, b, 0, 0)); got != n {
			t.Errorf("resolving write recorded %d new conflicts, want 0", got-n)
		}
	})
}

func (s *suite) testRowLife(t *testing.T) {
	all := store.Query{Collection: "todos"}

	t.Run("Delete", func(t *testing.T) {
		a := s.replica(t, 1, store.Options{})
		set(t, a, "todos", "a", "title", `"one"`)
		set(t, a, "todos", "b", "title", `"two"`)
		c := write(t, a, func(b *crdt.Builder) error {
			ok, err := b.Delete(key("todos", "a"))
			if err == nil && !ok {
				err = errors.New("delete of an alive row returned false")
			}
			return err
		})
		if diff := cmp.Diff([]crdt.RowKey{key("todos", "a")}, c.Changed); diff != "" {
			t.Errorf("Changed (-want +got):\n%s", diff)
		}
		if got := query(t, a, all); !slices.Equal(got, []string{"b"}) {
			t.Errorf("Query after delete = %v, want [b]", got)
		}
		if got := query(t, a, store.Query{Collection: "todos", Where: []store.Cond{{Field: "title", Op: store.Eq, Value: "one"}}}); len(got) != 0 {
			t.Errorf("Query on the deleted row's value = %v, want none", got)
		}
		r := getRow(t, a, "todos", "a")
		if r == nil || r.Alive() || r.CL != 2 || len(r.Fields) != 0 {
			t.Errorf("deleted row = %+v, want CL 2 and no fields", r)
		}
		if v := store.Resolve(nil, "todos", r); v != nil {
			t.Errorf("Resolve of a deleted row = %v, want nil", v)
		}
		// Deleting again builds nothing.
		if c := write(t, a, func(b *crdt.Builder) error { _, err := b.Delete(key("todos", "a")); return err }); c.Tx != nil {
			t.Errorf("second delete built %+v", c.Tx)
		}
		// A replica that applies the delete agrees.
		b := s.replica(t, 2, store.Options{})
		apply(t, b, outbox(t, a))
		sameHash(t, a, b)
		if got := query(t, b, all); !slices.Equal(got, []string{"b"}) {
			t.Errorf("Query on the other replica = %v, want [b]", got)
		}
	})

	for _, order := range []string{"deleter first", "updater first"} {
		t.Run("DeleteBeatsConcurrentUpdate/"+strings.ReplaceAll(order, " ", "_"), func(t *testing.T) {
			a, b := s.replica(t, 1, store.Options{}), s.replica(t, 2, store.Options{})
			set(t, a, "todos", "r", "title", `"one"`, "n", "1")
			set(t, a, "todos", "keep", "title", `"kept"`)
			exchange(t, a, b)
			write(t, a, func(bld *crdt.Builder) error { _, err := bld.Delete(key("todos", "r")); return err })
			// The update is later in time than the delete, and still loses.
			b.clock.Set(epoch.Add(time.Hour))
			write(t, b, func(bld *crdt.Builder) error {
				return errors.Join(
					bld.Set(key("todos", "r"), "title", crdt.KindRegister, []byte(`"two"`)),
					bld.Increment(key("todos", "r"), "count", 1),
				)
			})
			boxA, boxB := outbox(t, a), outbox(t, b)
			if order == "deleter first" {
				apply(t, b, boxA)
				apply(t, a, boxB)
			} else {
				apply(t, a, boxB)
				apply(t, b, boxA)
			}
			sameHash(t, a, b)
			if got, want := hash(t, a), referenceHash(t, boxA, boxB); got != want {
				t.Error("hash differs from a crdt.State that applied both outboxes")
			}
			for _, r := range []*replica{a, b} {
				if got := query(t, r, all); !slices.Equal(got, []string{"keep"}) {
					t.Errorf("%s: Query = %v, want [keep]", r.Site(), got)
				}
				if row := getRow(t, r, "todos", "r"); row == nil || row.Alive() {
					t.Errorf("%s: row = %+v, want deleted", r.Site(), row)
				}
			}
		})
	}

	t.Run("Revive", func(t *testing.T) {
		a, b := s.replica(t, 1, store.Options{}), s.replica(t, 2, store.Options{})
		set(t, a, "todos", "r", "title", `"one"`, "done", "true")
		write(t, a, func(bld *crdt.Builder) error { _, err := bld.Delete(key("todos", "r")); return err })
		set(t, a, "todos", "r", "title", `"again"`)
		row := getRow(t, a, "todos", "r")
		if row == nil || !row.Alive() || row.CL != 3 {
			t.Fatalf("row after revive = %+v, want alive with CL 3", row)
		}
		// The new life starts empty: fields of the old life are gone.
		if diff := cmp.Diff(map[string]string{"title": `"again"`}, shown(t, a, nil, "todos", "r")); diff != "" {
			t.Errorf("revived row (-want +got):\n%s", diff)
		}
		if got := query(t, a, store.Query{Collection: "todos", Where: []store.Cond{{Field: "done", Op: store.Eq, Value: nil}}}); !slices.Equal(got, []string{"r"}) {
			t.Errorf("Query done IS NULL after revive = %v, want [r]", got)
		}
		apply(t, b, outbox(t, a))
		sameHash(t, a, b)
		if got := query(t, b, all); !slices.Equal(got, []string{"r"}) {
			t.Errorf("Query on the other replica = %v, want [r]", got)
		}
		// A row revived with no fields is alive and queryable.
		write(t, a, func(bld *crdt.Builder) error { _, err := bld.Delete(key("todos", "r")); return err })
		write(t, a, func(bld *crdt.Builder) error { return bld.Create(key("todos", "r")) })
		if got := query(t, a, all); !slices.Equal(got, []string{"r"}) {
			t.Errorf("Query after reviving with no fields = %v, want [r]", got)
		}
		if row := getRow(t, a, "todos", "r"); row == nil || row.CL != 5 || len(row.Fields) != 0 {
			t.Errorf("row revived with no fields = %+v, want CL 5 and no fields", row)
		}
	})
}

// testNames checks that names outside [a-z][a-z0-9_]{0,62} never reach
// the store: in SQLite they name tables and columns.
func (s *suite) testNames(t *testing.T) {
	badColls := []string{"", "Todos", "1todos", "to-dos", "sqlite_master", "_uno_rows", `x"y`, "x'y", strings.Repeat("a", 64)}
	// An empty field name is a malformed op, see Apply/Malformed.
	badFields := []string{"Title", "id", "a b", `x"; DROP TABLE "_uno_outbox"; --`, strings.Repeat("f", 64)}

	t.Run("Write", func(t *testing.T) {
		r := s.replica(t, 1, fast)
		set(t, r, "todos", "a", "title", `"t"`)
		h := hash(t, r)
		try := func(what string, k crdt.RowKey, field string) {
			t.Helper()
			_, err := r.Write(t.Context(), func(b *crdt.Builder) error {
				return b.Set(k, field, crdt.KindRegister, []byte("1"))
			})
			if !errors.Is(err, store.ErrInvalidName) {
				t.Errorf("Write to %s = %v, want store.ErrInvalidName", what, err)
			}
		}
		for _, c := range badColls {
			try(fmt.Sprintf("collection %q", c), key(c, "a"), "title")
		}
		for _, f := range badFields {
			try(fmt.Sprintf("field %q", f), key("todos", "a"), f)
		}
		if hash(t, r) != h {
			t.Error("Writes with invalid names changed the state")
		}
		if n := pending(t, r); n != 1 {
			t.Errorf("Pending = %d, want 1", n)
		}
	})

	t.Run("Apply", func(t *testing.T) {
		r, other := s.replica(t, 1, fast), s.replica(t, 2, fast)
		set(t, r, "todos", "a", "title", `"t"`)
		tx := set(t, other, "todos", "a", "title", `"u"`).Tx
		h := hash(t, r)
		sites := byte(100)
		try := func(what string, spoil func(op *crdt.Op)) {
			t.Helper()
			// Each bad tx comes from a site of its own, so that a store
			// that wrongly applies one does not skip the next by seq.
			bad := clone(t, tx)
			sites++
			bad.Site = siteID(sites)
			for i := range bad.Ops {
				spoil(&bad.Ops[i])
			}
			_, err := r.Apply(t.Context(), []*crdt.Tx{bad})
			if !errors.Is(err, store.ErrInvalidName) {
				t.Errorf("Apply of a tx with %s = %v, want store.ErrInvalidName", what, err)
			}
		}
		for _, c := range badColls {
			try(fmt.Sprintf("collection %q", c), func(op *crdt.Op) { op.Collection = c })
		}
		for _, f := range badFields {
			try(fmt.Sprintf("field %q", f), func(op *crdt.Op) {
				if !op.IsRowOp() {
					op.Field = f
				}
			})
		}
		if hash(t, r) != h {
			t.Error("Apply of transactions with invalid names changed the state")
		}
		apply(t, r, []*crdt.Tx{tx})
		if got := shown(t, r, nil, "todos", "a")["title"]; got != `"u"` {
			t.Errorf("title after the valid tx = %s, want \"u\"", got)
		}
	})
}

// testValidation checks that both write paths run crdt's rules
// (crdt.ValidateTx): a value that not every replica can store is refused
// with the crdt error and changes nothing, whether it comes from the app or
// from another replica; a local write may not make a row larger than
// crdt's MaxRowBytes.
func (s *suite) testValidation(t *testing.T) {
	mib := crdt.DefaultMaxValueBytes
	str := func(n int) []byte { return []byte(`"` + strings.Repeat("x", n-2) + `"`) } // a JSON string of n bytes
	bad := []struct {
		name  string
		kind  crdt.Kind
		value []byte
	}{
		{"a value that is not JSON", crdt.KindRegister, []byte(`1,"owner":"victim"`)},
		{"two JSON values", crdt.KindRegister, []byte(`{"a":1}{}`)},
		{"an empty value", crdt.KindRegister, nil},
		{"invalid UTF-8", crdt.KindRegister, []byte("\"\xff\"")},
		{`\u0000`, crdt.KindRegister, []byte(`"\u0000"`)},
		{"a value nested 65 deep", crdt.KindRegister, []byte(strings.Repeat("[", 65) + strings.Repeat("]", 65))},
		{"a value of MaxValueBytes+1", crdt.KindRegister, str(mib + 1)},
		{"an object set member", crdt.KindSet, []byte(`{"a":1}`)},
		{"a null set member", crdt.KindSet, []byte(`null`)},
		{"doc changes that are not Automerge changes", crdt.KindDoc, []byte("not a change")},
	}
	build := func(k crdt.RowKey, kind crdt.Kind, v []byte) func(b *crdt.Builder) error {
		return func(b *crdt.Builder) error {
			switch kind {
			case crdt.KindSet:
				return b.Add(k, "f", v)
			case crdt.KindDoc:
				return b.Change(k, "f", v)
			}
			return b.Set(k, "f", kind, v)
		}
	}

	t.Run("Write", func(t *testing.T) {
		r := s.replica(t, 1, fast)
		set(t, r, "todos", "a", "title", `"t"`)
		h := hash(t, r)
		for _, tt := range bad {
			// In a transaction with a valid op first, so nothing of it may stay.
			_, err := r.Write(t.Context(), func(b *crdt.Builder) error {
				if err := b.Set(key("todos", "a"), "title", crdt.KindRegister, []byte(`"changed"`)); err != nil {
					return err
				}
				return build(key("todos", "b"), tt.kind, tt.value)(b)
			})
			if !errors.Is(err, crdt.ErrInvalidValue) {
				t.Errorf("Write of %s = %v, want crdt.ErrInvalidValue", tt.name, err)
			}
		}
		if hash(t, r) != h {
			t.Error("Writes of invalid values changed the state")
		}
		if c := set(t, r, "todos", "a", "title", `"u"`); c.Tx.Seq != 2 {
			t.Errorf("Seq after refused writes = %d, want 2 (a refused write uses no sequence number)", c.Tx.Seq)
		}
		// The limits are inclusive.
		write(t, r, build(key("todos", "c"), crdt.KindRegister, str(mib)))
		write(t, r, build(key("todos", "d"), crdt.KindRegister, []byte(strings.Repeat("[", 64)+strings.Repeat("]", 64))))
	})

	t.Run("Apply", func(t *testing.T) {
		r, other := s.replica(t, 1, fast), s.replica(t, 2, fast)
		set(t, r, "todos", "a", "title", `"t"`)
		good := set(t, other, "todos", "a", "title", `"u"`).Tx
		h := hash(t, r)
		for _, tt := range bad {
			// The other replica's first transaction, spoilt: a valid op,
			// then the bad value.
			tx := clone(t, good)
			op := crdt.Op{Type: crdt.OpSet, Kind: tt.kind, Collection: "todos", Row: "a", Field: "f", CL: 1, Value: tt.value}
			switch tt.kind {
			case crdt.KindSet:
				op.Type = crdt.OpAdd
			case crdt.KindDoc:
				op.Type = crdt.OpChange
			}
			tx.Ops = append(tx.Ops, op)
			for _, batch := range [][]*crdt.Tx{{tx}, {good, tx}} {
				if _, err := r.Apply(t.Context(), batch); !errors.Is(err, crdt.ErrInvalidValue) {
					t.Errorf("Apply of %s in a batch of %d = %v, want crdt.ErrInvalidValue", tt.name, len(batch), err)
				}
			}
			if _, err := r.ApplyAt(t.Context(), []*crdt.Tx{tx}, 9); !errors.Is(err, crdt.ErrInvalidValue) {
				t.Errorf("ApplyAt of %s = %v, want crdt.ErrInvalidValue", tt.name, err)
			}
		}
		if hash(t, r) != h {
			t.Error("Apply of transactions with invalid values changed the state")
		}
		if cur, err := r.Cursor(t.Context()); err != nil || cur != 0 {
			t.Errorf("Cursor after refused batches = %d, %v; want 0", cur, err)
		}
		// The refused transactions used no sequence number: the valid one applies.
		apply(t, r, []*crdt.Tx{good})
		if got := shown(t, r, nil, "todos", "a")["title"]; got != `"u"` {
			t.Errorf("title after the valid tx = %s, want \"u\"", got)
		}
	})

	t.Run("RowTooLarge", func(t *testing.T) {
		r := s.replica(t, 1, fast)
		k := key("todos", "big")
		// Two fields of 900 kB make a row of 1.8 MB: within the limit.
		write(t, r, func(b *crdt.Builder) error {
			return errors.Join(b.Set(k, "a", crdt.KindRegister, str(900_000)), b.Set(k, "b", crdt.KindRegister, str(900_000)))
		})
		h, box := hash(t, r), len(outbox(t, r))
		// A third, in a later transaction, would make it 2.7 MB.
		for name, fn := range map[string]func(b *crdt.Builder) error{
			"a third field": func(b *crdt.Builder) error { return b.Set(k, "c", crdt.KindRegister, str(900_000)) },
			"a third field beside a small write": func(b *crdt.Builder) error {
				return errors.Join(b.Set(key("todos", "small"), "a", crdt.KindRegister, []byte("1")), b.Set(k, "c", crdt.KindRegister, str(900_000)))
			},
			"a set member": func(b *crdt.Builder) error { return b.Add(k, "tags", str(900_000)) },
		} {
			if _, err := r.Write(t.Context(), fn); !errors.Is(err, crdt.ErrRowTooLarge) {
				t.Errorf("Write of %s = %v, want crdt.ErrRowTooLarge", name, err)
			}
		}
		if hash(t, r) != h || len(outbox(t, r)) != box {
			t.Error("Writes that made a row too large changed the state or the outbox")
		}
		if row := getRow(t, r, "todos", "small"); row != nil {
			t.Errorf("row written beside a refused one = %+v, want none", row)
		}
		// Shrinking the row is still allowed, and so is growing it again within the limit.
		write(t, r, func(b *crdt.Builder) error { return b.Set(k, "b", crdt.KindRegister, []byte("null")) })
		write(t, r, func(b *crdt.Builder) error { return b.Set(k, "c", crdt.KindRegister, str(900_000)) })
	})

	t.Run("Schema", func(t *testing.T) {
		schema := &store.Schema{Collections: []store.Collection{{
			Name: "todos", Fields: []store.Field{{Name: "title"}, {Name: "n", Kind: crdt.KindCounter}},
		}}}
		r := s.replica(t, 1, store.Options{Schema: schema})
		set(t, r, "todos", "a", "title", `"t"`)
		h := hash(t, r)
		for name, fn := range map[string]func(b *crdt.Builder) error{
			"an undeclared collection": func(b *crdt.Builder) error { return b.Set(key("notes", "a"), "title", crdt.KindRegister, []byte("1")) },
			"an undeclared field":      func(b *crdt.Builder) error { return b.Set(key("todos", "a"), "due", crdt.KindRegister, []byte("1")) },
			"a counter as a register":  func(b *crdt.Builder) error { return b.Set(key("todos", "a"), "n", crdt.KindRegister, []byte("1")) },
			"a register as a counter":  func(b *crdt.Builder) error { return b.Increment(key("todos", "b"), "title", 1) },
		} {
			if _, err := r.Write(t.Context(), fn); !errors.Is(err, crdt.ErrUndeclared) {
				t.Errorf("Write to %s = %v, want crdt.ErrUndeclared", name, err)
			}
		}
		if hash(t, r) != h {
			t.Error("Writes outside the schema changed the state")
		}
		// Another replica's writes apply whatever this replica declares:
		// the server enforces the schema, and a replica with an older one
		// must not stop syncing.
		other := s.replica(t, 2, fast)
		apply(t, r, []*crdt.Tx{set(t, other, "notes", "a", "title", `"n"`).Tx})
		if got := shown(t, r, schema, "notes", "a")["title"]; got != `"n"` {
			t.Errorf("undeclared collection from another replica shows %s, want \"n\"", got)
		}
	})
}

// queryFixture writes the rows the Query tests read:
//
//	id  s         i   f     b      m       n   t           other
//	a   "apple"   1   1.5   true   null    3   ["x"]
//	b   "banana"  2   -0.5  false  "x"
//	c   "Cherry"  2   2.5   true   1       -1  ["x","y"]
//	d   ""        -1  0.5          [1,2]
//	e                                                      1
//	f   "fig" (deleted)
func queryFixture(t *testing.T, r store.Store) {
	t.Helper()
	set(t, r, "items", "a", "s", `"apple"`, "i", "1", "f", "1.5", "b", "true", "m", "null")
	set(t, r, "items", "b", "s", `"banana"`, "i", "2", "f", "-0.5", "b", "false", "m", `"x"`)
	set(t, r, "items", "c", "s", `"Cherry"`, "i", "2", "f", "2.5", "b", "true", "m", "1")
	set(t, r, "items", "d", "s", `""`, "i", "-1", "f", "0.5", "m", "[1, 2]")
	set(t, r, "items", "e", "other", "1")
	set(t, r, "items", "f", "s", `"fig"`, "i", "2")
	write(t, r, func(b *crdt.Builder) error {
		return errors.Join(
			b.Increment(key("items", "a"), "n", 3),
			b.Add(key("items", "a"), "t", []byte(`"x"`)),
			b.Increment(key("items", "c"), "n", -1),
			b.Add(key("items", "c"), "t", []byte(`"y"`)),
			b.Add(key("items", "c"), "t", []byte(`"x"`)),
		)
	})
	write(t, r, func(b *crdt.Builder) error { _, err := b.Delete(key("items", "f")); return err })
}

func (s *suite) testQuery(t *testing.T) {
	r := s.replica(t, 1, store.Options{})
	queryFixture(t, r)
	where := func(conds ...store.Cond) store.Query { return store.Query{Collection: "items", Where: conds} }
	c := func(field string, op store.Op, v any) store.Cond { return store.Cond{Field: field, Op: op, Value: v} }

	t.Run("Where", func(t *testing.T) {
		cases := []struct {
			q    store.Query
			want []string
		}{
			{where(), []string{"a", "b", "c", "d", "e"}},
			// strings, bytewise
			{where(c("s", store.Eq, "apple")), []string{"a"}},
			{where(c("s", store.Ne, "apple")), []string{"b", "c", "d"}},
			{where(c("s", store.Lt, "apple")), []string{"c", "d"}},
			{where(c("s", store.Le, "banana")), []string{"a", "b", "c", "d"}},
			{where(c("s", store.Gt, "b")), []string{"b"}},
			{where(c("s", store.Ge, "apple")), []string{"a", "b"}},
			{where(c("s", store.Eq, "")), []string{"d"}},
			{where(c("s", store.Eq, "fig")), nil},
			// integers, and integers against floats
			{where(c("i", store.Eq, 2)), []string{"b", "c"}},
			{where(c("i", store.Eq, 2.0)), []string{"b", "c"}},
			{where(c("i", store.Ne, int64(2))), []string{"a", "d"}},
			{where(c("i", store.Lt, 1)), []string{"d"}},
			{where(c("i", store.Le, 1)), []string{"a", "d"}},
			{where(c("i", store.Gt, 1)), []string{"b", "c"}},
			{where(c("i", store.Ge, -1)), []string{"a", "b", "c", "d"}},
			{where(c("i", store.Lt, 1.5)), []string{"a", "d"}},
			{where(c("i", store.Gt, uint8(1))), []string{"b", "c"}},
			// floats
			{where(c("f", store.Eq, 2.5)), []string{"c"}},
			{where(c("f", store.Ne, 1.5)), []string{"b", "c", "d"}},
			{where(c("f", store.Lt, 0)), []string{"b"}},
			{where(c("f", store.Le, 1.5)), []string{"a", "b", "d"}},
			{where(c("f", store.Gt, 0.5)), []string{"a", "c"}},
			{where(c("f", store.Ge, 0.5)), []string{"a", "c", "d"}},
			{where(c("f", store.Gt, 1)), []string{"a", "c"}},
			{where(c("f", store.Lt, float32(0.5))), []string{"b"}},
			// booleans are 0 and 1
			{where(c("b", store.Eq, true)), []string{"a", "c"}},
			{where(c("b", store.Eq, false)), []string{"b"}},
			{where(c("b", store.Ne, true)), []string{"b"}},
			{where(c("b", store.Eq, 1)), []string{"a", "c"}},
			{where(c("b", store.Gt, false)), []string{"a", "c"}},
			{where(c("b", store.Le, false)), []string{"b"}},
			// null and missing values: only = nil and != nil see them
			{where(c("m", store.Eq, nil)), []string{"a", "e"}},
			{where(c("m", store.Ne, nil)), []string{"b", "c", "d"}},
			{where(c("b", store.Eq, nil)), []string{"d", "e"}},
			{where(c("s", store.Eq, nil)), []string{"e"}},
			{where(c("s", store.Ne, nil)), []string{"a", "b", "c", "d"}},
			{where(c("s", store.Ne, "nothing")), []string{"a", "b", "c", "d"}},
			// mixed types: NULL < numbers < text (objects and arrays as JSON text)
			{where(c("m", store.Gt, 0)), []string{"b", "c", "d"}},
			{where(c("m", store.Lt, "a")), []string{"c", "d"}},
			{where(c("m", store.Ge, "")), []string{"b", "d"}},
			{where(c("m", store.Eq, []int{1, 2})), []string{"d"}},
			{where(c("m", store.Eq, "[1,2]")), []string{"d"}},
			{where(c("m", store.Eq, "x")), []string{"b"}},
			// a field never written is NULL on every row
			{where(c("never", store.Eq, nil)), []string{"a", "b", "c", "d", "e"}},
			{where(c("never", store.Ne, nil)), nil},
			{where(c("never", store.Eq, 1)), nil},
			{where(c("never", store.Ne, 1)), nil},
			{where(c("never", store.Gt, "")), nil},
			// the row ID
			{where(c("id", store.Eq, "b")), []string{"b"}},
			{where(c("id", store.Ne, "a")), []string{"b", "c", "d", "e"}},
			{where(c("id", store.Lt, "c")), []string{"a", "b"}},
			{where(c("id", store.Le, "a")), []string{"a"}},
			{where(c("id", store.Gt, "b")), []string{"c", "d", "e"}},
			{where(c("id", store.Ge, "d")), []string{"d", "e"}},
			{where(c("id", store.Eq, "f")), nil},
			{where(c("id", store.Eq, nil)), nil},
			{where(c("id", store.Ne, nil)), []string{"a", "b", "c", "d", "e"}},
			// counters and sets
			{where(c("n", store.Eq, 3)), []string{"a"}},
			{where(c("n", store.Lt, 0)), []string{"c"}},
			{where(c("n", store.Eq, nil)), []string{"b", "d", "e"}},
			{where(c("t", store.Eq, []string{"x"})), []string{"a"}},
			{where(c("t", store.Eq, `["x","y"]`)), []string{"c"}},
			// conditions combine with AND
			{where(c("i", store.Eq, 2), c("b", store.Eq, true)), []string{"c"}},
			{where(c("s", store.Gt, "a"), c("i", store.Ge, 1)), []string{"a", "b"}},
			{where(c("i", store.Gt, 0), c("i", store.Lt, 2)), []string{"a"}},
			{where(c("s", store.Ne, nil), c("m", store.Eq, nil)), []string{"a"}},
		}
		for _, tc := range cases {
			got := query(t, r, tc.q)
			if diff := cmp.Diff(tc.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("Query(%v) (-want +got):\n%s", tc.q.Where, diff)
			}
		}
	})

	t.Run("Order", func(t *testing.T) {
		order := func(field string, desc bool, limit int, conds ...store.Cond) store.Query {
			return store.Query{Collection: "items", Where: conds, OrderBy: field, Desc: desc, Limit: limit}
		}
		cases := []struct {
			q    store.Query
			want []string
		}{
			{order("", false, 0), []string{"a", "b", "c", "d", "e"}},
			{order("", true, 0), []string{"e", "d", "c", "b", "a"}},
			{order("id", false, 0), []string{"a", "b", "c", "d", "e"}},
			{order("id", true, 0), []string{"e", "d", "c", "b", "a"}},
			// NULLs first ascending, last descending; ties by ID ascending
			{order("s", false, 0), []string{"e", "d", "c", "a", "b"}},
			{order("s", true, 0), []string{"b", "a", "c", "d", "e"}},
			{order("i", false, 0), []string{"e", "d", "a", "b", "c"}},
			{order("i", true, 0), []string{"b", "c", "a", "d", "e"}},
			{order("f", false, 0), []string{"e", "b", "d", "a", "c"}},
			{order("f", true, 0), []string{"c", "a", "d", "b", "e"}},
			{order("b", false, 0), []string{"d", "e", "b", "a", "c"}},
			{order("b", true, 0), []string{"a", "c", "b", "d", "e"}},
			{order("m", false, 0), []string{"a", "e", "c", "d", "b"}},
			{order("m", true, 0), []string{"b", "d", "c", "a", "e"}},
			{order("n", false, 0), []string{"b", "d", "e", "c", "a"}},
			{order("never", false, 0), []string{"a", "b", "c", "d", "e"}},
			{order("never", true, 0), []string{"a", "b", "c", "d", "e"}},
			// limits
			{order("i", false, 2), []string{"e", "d"}},
			{order("i", true, 3), []string{"b", "c", "a"}},
			{order("", false, 1), []string{"a"}},
			{order("", true, 2), []string{"e", "d"}},
			{order("s", false, 10), []string{"e", "d", "c", "a", "b"}},
			{order("f", true, 1, c("i", store.Eq, 2)), []string{"c"}},
			{order("s", false, 2, c("s", store.Ne, nil)), []string{"d", "c"}},
		}
		for _, tc := range cases {
			got := query(t, r, tc.q)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Query(order by %q desc %v limit %d where %v) (-want +got):\n%s", tc.q.OrderBy, tc.q.Desc, tc.q.Limit, tc.q.Where, diff)
			}
		}
	})

	t.Run("Docs", func(t *testing.T) {
		docs, err := r.Query(t.Context(), where(c("id", store.Eq, "c")))
		if err != nil || len(docs) != 1 {
			t.Fatalf("Query = %v, %v; want one doc", docs, err)
		}
		if want := getRow(t, r, "items", "c"); !bytes.Equal(crdt.EncodeRow(docs[0].Row), crdt.EncodeRow(want)) {
			t.Errorf("Doc.Row = %+v, want the row's state %+v", docs[0].Row, want)
		}
	})

	t.Run("Invalid", func(t *testing.T) {
		cases := []struct {
			name string
			q    store.Query
			want error
		}{
			{"empty collection", store.Query{}, store.ErrInvalidName},
			{"upper-case collection", store.Query{Collection: "Items"}, store.ErrInvalidName},
			{"collection with a quote", store.Query{Collection: `items"`}, store.ErrInvalidName},
			{"sqlite_ collection", store.Query{Collection: "sqlite_master"}, store.ErrInvalidName},
			{"internal collection", store.Query{Collection: "_uno_rows"}, store.ErrInvalidName},
			{"long collection", store.Query{Collection: strings.Repeat("a", 64)}, store.ErrInvalidName},
			{"negative limit", store.Query{Collection: "items", Limit: -1}, store.ErrInvalidQuery},
			{"unknown op", where(c("s", "~", "a")), store.ErrInvalidQuery},
			{"empty op", where(c("s", "", "a")), store.ErrInvalidQuery},
			{"LIKE", where(c("s", "LIKE", "a%")), store.ErrInvalidQuery},
			{"== op", where(c("s", "==", "a")), store.ErrInvalidQuery},
			{"< nil", where(c("s", store.Lt, nil)), store.ErrInvalidQuery},
			{"<= nil", where(c("s", store.Le, nil)), store.ErrInvalidQuery},
			{"> nil", where(c("s", store.Gt, nil)), store.ErrInvalidQuery},
			{">= nil", where(c("s", store.Ge, nil)), store.ErrInvalidQuery},
			{"bad field", where(c("S", store.Eq, "a")), store.ErrInvalidQuery},
			{"empty field", where(c("", store.Eq, "a")), store.ErrInvalidQuery},
			{"field with a quote", where(c(`s" OR 1=1 --`, store.Eq, "a")), store.ErrInvalidQuery},
			{"NaN", where(c("f", store.Eq, math.NaN())), store.ErrInvalidQuery},
			{"Inf", where(c("f", store.Lt, math.Inf(1))), store.ErrInvalidQuery},
			{"channel", where(c("f", store.Eq, make(chan int))), store.ErrInvalidQuery},
			{"func", where(c("f", store.Eq, func() {})), store.ErrInvalidQuery},
			{"bad order", store.Query{Collection: "items", OrderBy: "S"}, store.ErrInvalidQuery},
			{"order with SQL", store.Query{Collection: "items", OrderBy: "s; DROP TABLE items"}, store.ErrInvalidQuery},
			{"bad op, unknown collection", store.Query{Collection: "nothing", Where: []store.Cond{c("s", "~", 1)}}, store.ErrInvalidQuery},
			{"negative limit, unknown collection", store.Query{Collection: "nothing", Limit: -5}, store.ErrInvalidQuery},
		}
		for _, tc := range cases {
			docs, err := r.Query(t.Context(), tc.q)
			if !errors.Is(err, tc.want) {
				t.Errorf("%s: Query = %v, %v; want an error matching %v", tc.name, docs, err, tc.want)
			}
		}
		if got := query(t, r, where()); len(got) != 5 {
			t.Errorf("after invalid queries, Query = %v, want 5 rows", got)
		}
	})

	t.Run("NeverWritten", func(t *testing.T) {
		for _, q := range []store.Query{
			{Collection: "nothing"},
			{Collection: "nothing", Where: []store.Cond{c("s", store.Eq, "a"), c("id", store.Ne, nil)}, OrderBy: "s", Desc: true, Limit: 3},
			{Collection: "nothing", OrderBy: "id"},
		} {
			docs, err := r.Query(t.Context(), q)
			if err != nil || len(docs) != 0 {
				t.Errorf("Query(%+v) = %v, %v; want no rows and no error", q, docs, err)
			}
		}
	})

	t.Run("NumericIDs", func(t *testing.T) {
		// Row IDs are strings: they compare as text, after every number.
		r := s.replica(t, 1, fast)
		for _, id := range []string{"1", "10", "2"} {
			set(t, r, "nums", id, "v", "1")
		}
		all := []string{"1", "10", "2"}
		cases := []struct {
			cond store.Cond
			want []string
		}{
			{c("id", store.Eq, "1"), []string{"1"}},
			{c("id", store.Lt, "2"), []string{"1", "10"}},
			{c("id", store.Eq, 1), nil},
			{c("id", store.Ne, 1), all},
			{c("id", store.Gt, 1), all},
			{c("id", store.Gt, 100), all},
			{c("id", store.Lt, 5), nil},
			{c("id", store.Le, 10.5), nil},
			{c("id", store.Eq, true), nil},
		}
		for _, tc := range cases {
			got := query(t, r, store.Query{Collection: "nums", Where: []store.Cond{tc.cond}})
			if diff := cmp.Diff(tc.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("Query(id %s %v (%T)) (-want +got):\n%s", tc.cond.Op, tc.cond.Value, tc.cond.Value, diff)
			}
		}
	})

	t.Run("LargeNumbers", func(t *testing.T) {
		// Integers and floats compare by exact value, as SQLite compares
		// them, also beyond 2^53 where float64 cannot hold every integer.
		r := s.replica(t, 1, fast)
		set(t, r, "big", "a", "n", "9007199254740993")   // 2^53+1, an integer
		set(t, r, "big", "b", "n", "9007199254740992.0") // 2^53, a float
		set(t, r, "big", "c", "n", "9223372036854775807")
		cases := []struct {
			q    store.Query
			want []string
		}{
			{store.Query{Collection: "big", OrderBy: "n"}, []string{"b", "a", "c"}},
			{store.Query{Collection: "big", OrderBy: "n", Desc: true}, []string{"c", "a", "b"}},
			{store.Query{Collection: "big", Where: []store.Cond{c("n", store.Eq, int64(9007199254740993))}}, []string{"a"}},
			{store.Query{Collection: "big", Where: []store.Cond{c("n", store.Gt, int64(9007199254740992))}}, []string{"a", "c"}},
			{store.Query{Collection: "big", Where: []store.Cond{c("n", store.Lt, 9223372036854775808.0)}}, []string{"a", "b", "c"}},
			{store.Query{Collection: "big", Where: []store.Cond{c("n", store.Ge, 9223372036854775808.0)}}, nil},
		}
		for _, tc := range cases {
			got := query(t, r, tc.q)
			if diff := cmp.Diff(tc.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("Query(%+v) (-want +got):\n%s", tc.q, diff)
			}
		}
	})

	t.Run("Random", func(t *testing.T) {
		rapid.Check(t, func(rt *rapid.T) {
			r := s.replica(t, 1, fast)
			defer r.Close()
			ids := randomRows(rt, r)
			rows := map[string]*crdt.Row{}
			for _, id := range ids {
				rows[id] = getRow(rt, r, randomColl, id)
			}
			for i := range rapid.IntRange(1, 12).Draw(rt, "queries") {
				q := randomQuery(rt, fmt.Sprint("q", i))
				want := referenceQuery(rows, q)
				got := query(rt, r, q)
				if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
					rt.Fatalf("Query(%+v) differs from the reference (-want +got):\n%s", q, diff)
				}
			}
		})
	})
}

const randomColl = "items"

var (
	randomIDs      = []string{"r0", "r1", "r2", "r3", "r4", "r5"}
	randomRegister = []string{"null", "true", "false", "0", "1", "2", "-1", "1.0", "0.5", "-1.5", "2.5",
		`""`, `"a"`, `"ab"`, `"b"`, `"B"`, `"a b"`, "[1]", `["a"]`, `{"k":1}`, "[]"}
	randomMembers  = []string{`"a"`, `"b"`, "1"}
	randomQueryVal = []any{nil, 0, 1, 2, -1, int64(3), 0.5, 1.0, -1.5, 2.5, "", "a", "ab", "b", "B",
		true, false, []any{1}, "[1]", `["a"]`}
	randomOps = []store.Op{store.Eq, store.Ne, store.Lt, store.Le, store.Gt, store.Ge}
)

// randomRows writes random rows to r: registers p and q with values of
// every type, counter n, set t, deletes and revivals. It returns the IDs.
func randomRows(t *rapid.T, r store.Store) []string {
	for i := range rapid.IntRange(2, 12).Draw(t, "writes") {
		label := fmt.Sprint("w", i)
		write(t, r, func(b *crdt.Builder) error {
			for j := range rapid.IntRange(1, 4).Draw(t, label+"ops") {
				l := fmt.Sprint(label, ".", j)
				k := key(randomColl, rapid.SampledFrom(randomIDs).Draw(t, l+"id"))
				var err error
				switch rapid.IntRange(0, 5).Draw(t, l+"kind") {
				case 0, 1:
					f := rapid.SampledFrom([]string{"p", "q"}).Draw(t, l+"field")
					err = b.Set(k, f, crdt.KindRegister, []byte(rapid.SampledFrom(randomRegister).Draw(t, l+"value")))
				case 2:
					err = b.Increment(k, "n", rapid.Int64Range(-2, 2).Draw(t, l+"delta"))
				case 3:
					err = b.Add(k, "t", []byte(rapid.SampledFrom(randomMembers).Draw(t, l+"member")))
				case 4:
					err = b.Remove(k, "t", []byte(rapid.SampledFrom(randomMembers).Draw(t, l+"member")))
				case 5:
					_, err = b.Delete(k)
				}
				if err != nil {
					return err
				}
			}
			return nil
		})
	}
	return randomIDs
}

func randomQuery(t *rapid.T, label string) store.Query {
	fields := []string{"p", "q", "n", "t", "id", "zz"}
	q := store.Query{Collection: randomColl}
	for i := range rapid.IntRange(0, 3).Draw(t, label+"conds") {
		l := fmt.Sprint(label, ".", i)
		cond := store.Cond{
			Field: rapid.SampledFrom(fields).Draw(t, l+"field"),
			Op:    rapid.SampledFrom(randomOps).Draw(t, l+"op"),
			Value: rapid.SampledFrom(randomQueryVal).Draw(t, l+"value"),
		}
		if cond.Value == nil && cond.Op != store.Eq && cond.Op != store.Ne {
			cond.Op = store.Eq
		}
		q.Where = append(q.Where, cond)
	}
	q.OrderBy = rapid.SampledFrom(append([]string{""}, fields...)).Draw(t, label+"order")
	q.Desc = rapid.Bool().Draw(t, label+"desc")
	q.Limit = rapid.IntRange(0, 7).Draw(t, label+"limit")
	return q
}

// referenceQuery evaluates q over rows (by ID) as documented on store.Op
// and store.Query, independently of the stores' code: it is the oracle of
// the Query property test.
func referenceQuery(rows map[string]*crdt.Row, q store.Query) []string {
	type hit struct {
		id  string
		key any
	}
	var hits []hit
	for id, r := range rows {
		if r == nil || !r.Alive() {
			continue
		}
		ok := true
		for _, c := range q.Where {
			if !referenceMatch(c, referenceValue(r, q.Collection, id, c.Field)) {
				ok = false
				break
			}
		}
		if ok {
			hits = append(hits, hit{id: id, key: referenceValue(r, q.Collection, id, q.OrderBy)})
		}
	}
	slices.SortFunc(hits, func(a, b hit) int {
		if q.OrderBy == "" || q.OrderBy == "id" {
			c := strings.Compare(a.id, b.id)
			if q.Desc {
				c = -c
			}
			return c
		}
		c := referenceCompare(a.key, b.key)
		if q.Desc {
			c = -c
		}
		return cmp3(c, strings.Compare(a.id, b.id))
	})
	if q.Limit > 0 && len(hits) > q.Limit {
		hits = hits[:q.Limit]
	}
	ids := make([]string, len(hits))
	for i, h := range hits {
		ids[i] = h.id
	}
	return ids
}

// referenceValue is the SQL value of a field: NULL if missing, a counter's
// number, a set's JSON array text, a register's value mapped from JSON.
func referenceValue(r *crdt.Row, coll, id, field string) any {
	if field == "" {
		return nil
	}
	if field == "id" {
		return id
	}
	f, ok := r.Field(field)
	if !ok {
		return nil
	}
	v, ok := store.Resolve(nil, coll, r)[field]
	if !ok {
		return nil
	}
	switch f.Kind {
	case crdt.KindCounter:
		return f.Counter.Value()
	case crdt.KindSet:
		return string(v.JSON)
	}
	return referenceSQL(v.JSON)
}

// referenceSQL maps JSON to its SQL value: null to NULL, booleans to 0 and
// 1, integers to int64, other numbers to float64, strings to text, objects
// and arrays to their compact JSON text.
func referenceSQL(b []byte) any {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var x any
	if err := d.Decode(&x); err != nil {
		panic(fmt.Sprintf("storetest: reference value %q: %v", b, err))
	}
	switch x := x.(type) {
	case nil:
		return nil
	case bool:
		if x {
			return int64(1)
		}
		return int64(0)
	case string:
		return x
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		f, err := x.Float64()
		if err != nil {
			panic(err)
		}
		return f
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		panic(err)
	}
	return buf.String()
}

func referenceMatch(c store.Cond, v any) bool {
	b, err := json.Marshal(c.Value)
	if err != nil {
		panic(err)
	}
	want := referenceSQL(b)
	if want == nil {
		return (v == nil) == (c.Op == store.Eq)
	}
	if v == nil {
		return false
	}
	n := referenceCompare(v, want)
	switch c.Op {
	case store.Eq:
		return n == 0
	case store.Ne:
		return n != 0
	case store.Lt:
		return n < 0
	case store.Le:
		return n <= 0
	case store.Gt:
		return n > 0
	case store.Ge:
		return n >= 0
	}
	panic("storetest: reference op " + string(c.Op))
}

// referenceCompare orders SQL values: NULL < numbers (by exact value) <
// text (bytewise) < blobs.
func referenceCompare(a, b any) int {
	class := func(v any) int {
		switch v.(type) {
		case nil:
			return 0
		case int64, float64:
			return 1
		case string:
			return 2
		}
		return 3
	}
	ca, cb := class(a), class(b)
	switch {
	case ca != cb:
		return ca - cb
	case ca == 0:
		return 0
	case ca == 1:
		return exact(a).Cmp(exact(b))
	case ca == 2:
		return strings.Compare(a.(string), b.(string))
	}
	return bytes.Compare(a.([]byte), b.([]byte))
}

func exact(v any) *big.Float {
	if i, ok := v.(int64); ok {
		return new(big.Float).SetInt64(i)
	}
	return big.NewFloat(v.(float64))
}

// testConvergence is the strong-eventual-consistency property: replicas
// that write at random and receive each other's transactions in random
// batches (per-site order kept, as a server relays them, with duplicates
// and echoes) end equal, and equal to a crdt.State of every transaction.
func (s *suite) testConvergence(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		const n = 3
		rs := make([]*replica, n)
		for i := range rs {
			rs[i] = s.replica(t, byte(i+1), fast)
			defer rs[i].Close()
			skew := time.Duration(rapid.IntRange(-5000, 5000).Draw(rt, fmt.Sprint("skew", i))) * time.Millisecond
			rs[i].clock.Set(epoch.Add(skew))
		}
		logs := make([][]*crdt.Tx, n) // every transaction of each site, as a server holds them
		sent := make([][]uint64, n)   // sent[j][i]: highest seq of site i delivered to j
		for j := range sent {
			sent[j] = make([]uint64, n)
		}
		// deliverable returns a batch of site i's log that replica j may
		// receive: it starts at or before the first seq j has not seen.
		deliverable := func(j, i int, label string) []*crdt.Tx {
			log := logs[i]
			if len(log) == 0 {
				return nil
			}
			first := 1
			if i != j {
				first = rapid.IntRange(1, int(sent[j][i])+1).Draw(rt, label+"from")
			}
			if first > len(log) {
				return nil
			}
			last := rapid.IntRange(first, len(log)).Draw(rt, label+"to")
			if i != j {
				sent[j][i] = max(sent[j][i], uint64(last))
			}
			return log[first-1 : last]
		}
		steps := rapid.IntRange(5, 50).Draw(rt, "steps")
		for step := range steps {
			label := fmt.Sprint("s", step, ".")
			i := rapid.IntRange(0, n-1).Draw(rt, label+"replica")
			r := rs[i]
			switch rapid.IntRange(0, 3).Draw(rt, label+"action") {
			case 0, 1: // a local transaction
				c := write(rt, r, func(b *crdt.Builder) error { return randomOps3(rt, b, label) })
				if c.Tx == nil {
					continue
				}
				txs, err := r.Outbox(t.Context(), c.Tx.Seq-1, 0)
				if err != nil || len(txs) != 1 || !bytes.Equal(crdt.EncodeTx(txs[0]), crdt.EncodeTx(c.Tx)) {
					rt.Fatalf("Outbox after seq %d = %v, %v; want the committed tx", c.Tx.Seq-1, txs, err)
				}
				if want := uint64(len(logs[i]) + 1); c.Tx.Seq != want {
					rt.Fatalf("Seq = %d, want %d", c.Tx.Seq, want)
				}
				logs[i] = append(logs[i], txs[0])
				if rapid.IntRange(0, 3).Draw(rt, label+"ack") == 0 {
					if err := r.Ack(t.Context(), c.Tx.Seq); err != nil {
						rt.Fatal(err)
					}
				}
			default: // a batch from one or two sites, maybe with duplicates
				a := rapid.IntRange(0, n-1).Draw(rt, label+"from1")
				b := rapid.IntRange(0, n-1).Draw(rt, label+"from2")
				x := deliverable(i, a, label+"1")
				var y []*crdt.Tx
				if b != a {
					y = deliverable(i, b, label+"2")
				}
				var batch []*crdt.Tx
				for len(x) > 0 || len(y) > 0 {
					if len(y) == 0 || (len(x) > 0 && rapid.Bool().Draw(rt, label+"pick")) {
						batch, x = append(batch, x[0]), x[1:]
					} else {
						batch, y = append(batch, y[0]), y[1:]
					}
				}
				if rapid.IntRange(0, 3).Draw(rt, label+"dup") == 0 {
					batch = append(batch, batch...)
				}
				apply(rt, r, batch)
			}
		}
		// Deliver everything everywhere, then compare.
		for _, r := range rs {
			for i := range rs {
				apply(rt, r, logs[i])
			}
		}
		want := referenceHash(rt, logs...)
		for _, r := range rs {
			if got := hash(rt, r); got != want {
				rt.Fatalf("replica %s: hash %x, want %x (a crdt.State of every tx)", r.Site(), got, want)
			}
		}
		q := store.Query{Collection: "c"}
		ids := query(rt, rs[0], q)
		for _, r := range rs[1:] {
			if got := query(rt, r, q); !slices.Equal(got, ids) {
				rt.Fatalf("replica %s: Query = %v, replica %s: %v", r.Site(), got, rs[0].Site(), ids)
			}
		}
	})
}

// randomOps3 builds one to three random ops over a small key space.
func randomOps3(t *rapid.T, b *crdt.Builder, label string) error {
	for i := range rapid.IntRange(1, 3).Draw(t, label+"ops") {
		l := fmt.Sprint(label, i, ".")
		k := key(rapid.SampledFrom([]string{"c", "d"}).Draw(t, l+"coll"), rapid.SampledFrom([]string{"r0", "r1", "r2"}).Draw(t, l+"row"))
		var err error
		switch rapid.IntRange(0, 5).Draw(t, l+"op") {
		case 0, 1:
			err = b.Set(k, "x", crdt.KindRegister, []byte(rapid.SampledFrom([]string{"1", "2", `"a"`, `"b"`, "null"}).Draw(t, l+"value")))
		case 2:
			err = b.Increment(k, "n", rapid.Int64Range(-3, 3).Draw(t, l+"delta"))
		case 3:
			err = b.Add(k, "s", []byte(rapid.SampledFrom(randomMembers).Draw(t, l+"member")))
		case 4:
			err = b.Remove(k, "s", []byte(rapid.SampledFrom(randomMembers).Draw(t, l+"member")))
		case 5:
			_, err = b.Delete(k)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (s *suite) testConcurrent(t *testing.T) {
	r := s.replica(t, 1, fast)
	const writers, writes = 4, 10
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := range writers {
		wg.Go(func() {
			for i := range writes {
				_, err := r.Write(t.Context(), func(b *crdt.Builder) error {
					return errors.Join(
						b.Increment(key("todos", "count"), "n", 1),
						b.Set(key("todos", fmt.Sprint("w", w)), "i", crdt.KindRegister, []byte(fmt.Sprint(i))),
					)
				})
				if err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
			}
		})
	}
	var readers sync.WaitGroup
	readers.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := r.Query(t.Context(), store.Query{Collection: "todos", OrderBy: "i"}); err != nil {
				t.Errorf("Query: %v", err)
				return
			}
			if _, err := r.Hash(t.Context()); err != nil {
				t.Errorf("Hash: %v", err)
				return
			}
			if _, err := r.Outbox(t.Context(), 0, 5); err != nil {
				t.Errorf("Outbox: %v", err)
				return
			}
			if _, err := r.Row(t.Context(), "todos", "count"); err != nil {
				t.Errorf("Row: %v", err)
				return
			}
			// Let the writers run where goroutines are not preempted
			// (GOOS=js: one thread, a store that never blocks).
			runtime.Gosched()
		}
	})
	wg.Wait()
	close(stop)
	readers.Wait()
	box := outbox(t, r)
	if len(box) != writers*writes {
		t.Fatalf("Outbox holds %d transactions, want %d", len(box), writers*writes)
	}
	for i, tx := range box {
		if tx.Seq != uint64(i+1) {
			t.Fatalf("outbox entry %d has seq %d: not gap-free", i, tx.Seq)
		}
		if i > 0 && tx.Time <= box[i-1].Time {
			t.Errorf("tx %d stamped %s, not after tx %d's %s", tx.Seq, tx.Time, i, box[i-1].Time)
		}
	}
	if got := shown(t, r, nil, "todos", "count")["n"]; got != fmt.Sprint(writers*writes) {
		t.Errorf("counter = %s, want %d", got, writers*writes)
	}
	if got, want := hash(t, r), referenceHash(t, box); got != want {
		t.Error("hash differs from a crdt.State that applied the outbox")
	}
}

func (s *suite) testClosed(t *testing.T) {
	r := s.replica(t, 1, store.Options{})
	other := s.replica(t, 2, store.Options{})
	set(t, r, "todos", "a", "title", `"t"`)
	tx := set(t, other, "todos", "b", "title", `"u"`).Tx
	if err := r.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	ctx := t.Context()
	called := false
	calls := map[string]func() error{
		"Write": func() error {
			_, err := r.Write(ctx, func(b *crdt.Builder) error {
				called = true
				return b.Set(key("todos", "a"), "title", crdt.KindRegister, []byte("1"))
			})
			return err
		},
		"Apply":     func() error { _, err := r.Apply(ctx, []*crdt.Tx{tx}); return err },
		"Row":       func() error { _, err := r.Row(ctx, "todos", "a"); return err },
		"Query":     func() error { _, err := r.Query(ctx, store.Query{Collection: "todos"}); return err },
		"Pending":   func() error { _, err := r.Pending(ctx); return err },
		"Outbox":    func() error { _, err := r.Outbox(ctx, 0, 0); return err },
		"Ack":       func() error { return r.Ack(ctx, 1) },
		"Conflicts": func() error { _, err := r.Conflicts(ctx, 0, 0); return err },
		"Hash":      func() error { _, err := r.Hash(ctx); return err },
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, store.ErrClosed) {
			t.Errorf("%s after Close = %v, want store.ErrClosed", name, err)
		}
	}
	if called {
		t.Error("Write ran its function on a closed store")
	}
	if err := r.Close(); err != nil && !errors.Is(err, store.ErrClosed) {
		t.Errorf("second Close = %v, want nil or store.ErrClosed", err)
	}
	if got := r.Site(); got != siteID(1) {
		t.Errorf("Site after Close = %s, want %s", got, siteID(1))
	}
}
