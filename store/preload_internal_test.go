package store

import (
	"bytes"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/unosync/uno/crdt"
)

// Preloading rows changes no outcome: the same writes with and without
// Builder.Preload, at any point of a transaction, of rows alive,
// deleted, never seen, in collections with and without a table, and
// rows the transaction touched already, leave the same rows, table for
// table.
func TestSQLite_PreloadSameOutcome(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		var stores [2]*SQLite // preloading, not
		base := time.Now()
		for n := range stores {
			stores[n] = openPreloadStore(rt, t, base, n == 1)
			defer stores[n].Close()
		}
		for i := range rapid.IntRange(1, 10).Draw(rt, "writes") {
			ops := drawPreloadOps(rt, fmt.Sprint("w", i), true)
			for _, s := range stores {
				if _, err := s.Write(rt.Context(), func(b *crdt.Builder) error { return applyPreloadOps(b, ops, i) }); err != nil {
					rt.Fatalf("Write: %v", err)
				}
			}
		}
		if d0, d1 := dumpStates(rt, stores[0]), dumpStates(rt, stores[1]); !slices.Equal(d0, d1) {
			rt.Fatalf("stored rows differ:\n%q\none by one:\n%q", d0, d1)
		}
	})
}

// Remote batches read their rows together (preload) with the same outcome
// as one by one: the same transactions, applied in the same batches to a
// store that preloads and to one that does not, leave the same rows.
func TestSQLite_ApplyPreloadSameOutcome(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		src, err := NewMemory(Options{Rand: bytes.NewReader(bytes.Repeat([]byte{5}, 16))})
		if err != nil {
			rt.Fatal(err)
		}
		var txs []*crdt.Tx
		for i := range rapid.IntRange(1, 12).Draw(rt, "writes") {
			ops := drawPreloadOps(rt, fmt.Sprint("w", i), false)
			c, err := src.Write(rt.Context(), func(b *crdt.Builder) error { return applyPreloadOps(b, ops, i) })
			if err != nil {
				rt.Fatal(err)
			}
			if c != nil && c.Tx != nil {
				txs = append(txs, c.Tx)
			}
		}
		var cuts []int // batch boundaries
		for i := 1; i < len(txs); i++ {
			if rapid.Bool().Draw(rt, fmt.Sprint("cut", i)) {
				cuts = append(cuts, i)
			}
		}
		var dumps [2][]string
		for n := range dumps {
			s := openPreloadStore(rt, t, time.Now(), n == 1)
			from := 0
			for _, to := range append(slices.Clone(cuts), len(txs)) {
				if _, err := s.Apply(rt.Context(), txs[from:to]); err != nil {
					rt.Fatalf("Apply(txs[%d:%d]): %v", from, to, err)
				}
				from = to
			}
			dumps[n] = dumpStates(rt, s)
			s.Close()
		}
		if !slices.Equal(dumps[0], dumps[1]) {
			rt.Fatalf("stored rows differ:\n%q\none by one:\n%q", dumps[0], dumps[1])
		}
	})
}

// openPreloadStore opens a store whose writes, given the same ones, match
// another's: one site, and a clock from now on by a millisecond a read.
// noPreload makes its transactions read their rows one by one.
func openPreloadStore(rt *rapid.T, t *testing.T, now time.Time, noPreload bool) *SQLite {
	site := crdt.SiteID{9}
	s, err := OpenSQLite(rt.Context(), filepath.Join(t.TempDir(), "uno.db"), Options{Synchronous: "NORMAL",
		Now:  func() time.Time { now = now.Add(time.Millisecond); return now },
		Rand: bytes.NewReader(site[:])})
	if err != nil {
		rt.Fatal(err)
	}
	s.testNoPreload = noPreload
	return s
}

// preloadOp is one op of a write in the preload tests.
type preloadOp struct {
	kind int // 0, 1 set; 2 increment; 3 add; 4 delete; 5 preload keys
	k    crdt.RowKey
	keys []crdt.RowKey
}

// drawPreloadOps draws a write's ops over a few rows of three
// collections, with preloads among them if preloads.
func drawPreloadOps(rt *rapid.T, label string, preloads bool) []preloadOp {
	key := func(l string) crdt.RowKey {
		return crdt.RowKey{Collection: rapid.SampledFrom([]string{"items", "other", "third"}).Draw(rt, l+"coll"),
			Row: rapid.SampledFrom([]string{"a", "b", "c", "d"}).Draw(rt, l+"id")}
	}
	kinds := 4
	if preloads {
		kinds = 5
	}
	var ops []preloadOp
	for j := range rapid.IntRange(1, 6).Draw(rt, label) {
		l := fmt.Sprint(label, ".", j)
		o := preloadOp{kind: rapid.IntRange(0, kinds).Draw(rt, l+"kind"), k: key(l)}
		if o.kind == 5 {
			for n := range rapid.IntRange(0, 5).Draw(rt, l+"n") {
				o.keys = append(o.keys, key(fmt.Sprint(l, ".", n)))
			}
		}
		ops = append(ops, o)
	}
	return ops
}

// applyPreloadOps builds the ops of write i. With preloads among them, it
// first preloads every row they touch, as the browser bridge does.
func applyPreloadOps(b *crdt.Builder, ops []preloadOp, i int) error {
	var all []crdt.RowKey
	for _, o := range ops {
		if o.kind == 5 {
			all = append(all, o.k)
		}
	}
	if len(all) > 0 {
		for _, o := range ops {
			all = append(all, o.k)
		}
		if err := b.Preload(all); err != nil {
			return err
		}
	}
	for _, o := range ops {
		var err error
		switch o.kind {
		case 0, 1:
			err = b.Set(o.k, "p", crdt.KindRegister, []byte(strconv.Itoa(i)))
		case 2:
			err = b.Increment(o.k, "n", 1)
		case 3:
			err = b.Add(o.k, "t", []byte(`"m"`))
		case 4:
			_, err = b.Delete(o.k)
		case 5:
			err = b.Preload(o.keys)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// dumpStates lists every stored row state of s, with where it is kept:
// each collection's table and _uno_deleted.
func dumpStates(t rapid.TB, s *SQLite) []string {
	var out []string
	read := func(query, where string) {
		rows, err := s.db.Query(query)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var id string
			var state []byte
			if err := rows.Scan(&id, &state); err != nil {
				t.Fatal(err)
			}
			out = append(out, fmt.Sprintf("%s %s %x", where, id, state))
		}
	}
	s.colMu.RLock()
	var colls []string
	for c := range s.cols {
		colls = append(colls, c)
	}
	s.colMu.RUnlock()
	slices.Sort(colls)
	for _, c := range colls {
		read(fmt.Sprintf(`SELECT id, _uno FROM %s ORDER BY id`, quote(c)), c)
	}
	read(`SELECT coll || '/' || id, state FROM _uno_deleted ORDER BY coll, id`, "deleted")
	return out
}
