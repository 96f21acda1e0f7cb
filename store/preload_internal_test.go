package store

import (
	"bytes"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"pgregory.net/rapid"

	"github.com/unosync/uno/crdt"
)

// Remote batches read their rows together (preload) with the same outcome
// as one by one: the same transactions, applied in the same batches to a
// store that preloads and to one that does not, leave the same rows,
// table for table.
func TestSQLite_ApplyPreloadSameOutcome(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		src, err := NewMemory(Options{Rand: bytes.NewReader(bytes.Repeat([]byte{5}, 16))})
		if err != nil {
			rt.Fatal(err)
		}
		colls, ids := []string{"items", "other"}, []string{"a", "b", "c", "d"}
		var txs []*crdt.Tx
		for i := range rapid.IntRange(1, 12).Draw(rt, "writes") {
			type op struct {
				kind int
				k    crdt.RowKey
			}
			var ops []op
			for j := range rapid.IntRange(1, 5).Draw(rt, fmt.Sprint("w", i)) {
				l := fmt.Sprint("w", i, ".", j)
				ops = append(ops, op{rapid.IntRange(0, 4).Draw(rt, l+"kind"), crdt.RowKey{
					Collection: rapid.SampledFrom(colls).Draw(rt, l+"coll"), Row: rapid.SampledFrom(ids).Draw(rt, l+"id")}})
			}
			c, err := src.Write(rt.Context(), func(b *crdt.Builder) error {
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
					}
					if err != nil {
						return err
					}
				}
				return nil
			})
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
		for n := range 2 {
			s, err := OpenSQLite(rt.Context(), filepath.Join(t.TempDir(), "uno.db"), Options{Synchronous: "NORMAL"})
			if err != nil {
				rt.Fatal(err)
			}
			s.testNoPreload = n == 1
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

// dumpStates lists every stored row state of s, with where it is kept.
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
	colls := slices.Sorted(func(yield func(string) bool) {
		for c := range s.cols {
			if !yield(c) {
				return
			}
		}
	})
	s.colMu.RUnlock()
	for _, c := range colls {
		read(fmt.Sprintf(`SELECT id, _uno FROM %s ORDER BY id`, quote(c)), c)
	}
	read(`SELECT coll || '/' || id, state FROM _uno_deleted ORDER BY coll, id`, "deleted")
	return out
}
