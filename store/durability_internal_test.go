//go:build !js

package store

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/unosync/uno/crdt"
)

// Local writes sync at the store's level; remote changes and
// acknowledgements commit with synchronous=NORMAL (no fsync in WAL mode),
// and the connection goes back to the pool at the store's level. (Not in
// the browser: its journal is not a WAL, and every commit syncs.)
//
// Both ways a store runs write transactions: on held connections (the
// default), and as *sql.Tx on a pool of one connection (as in the
// browser), where the pool's level after a relaxed commit is seen.
func TestSQLite_RemoteCommitsRelaxed(t *testing.T) {
	for _, conns := range []int{0, 1} {
		t.Run(fmt.Sprintf("MaxConns=%d", conns), func(t *testing.T) { testRemoteCommitsRelaxed(t, conns) })
	}
}

func testRemoteCommitsRelaxed(t *testing.T, conns int) {
	ctx := t.Context()
	s, err := OpenSQLite(ctx, filepath.Join(t.TempDir(), "a.db"), Options{MaxConns: conns})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	other, err := OpenSQLite(ctx, filepath.Join(t.TempDir(), "b.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()

	var levels []int
	s.testBegin = func(w *writeTx) {
		var level int
		if err := w.q.QueryRowContext(ctx, `PRAGMA synchronous`).Scan(&level); err != nil {
			t.Error(err)
		}
		levels = append(levels, level)
	}
	pool := func() int {
		var level int
		if err := s.DB().QueryRowContext(ctx, `PRAGMA synchronous`).Scan(&level); err != nil {
			t.Fatal(err)
		}
		return level
	}
	const normal, full = 1, 2
	write := func(st *SQLite, id string) *crdt.Tx {
		c, err := st.Write(ctx, func(b *crdt.Builder) error {
			return b.Set(crdt.RowKey{Collection: "c", Row: id}, "f", crdt.KindRegister, []byte(`1`))
		})
		if err != nil {
			t.Fatal(err)
		}
		return c.Tx
	}
	steps := []struct {
		name string
		do   func()
		want int
	}{
		{"a local write", func() { write(s, "mine") }, full},
		{"remote changes", func() {
			if _, err := s.ApplyAt(ctx, []*crdt.Tx{write(other, "theirs")}, 1); err != nil {
				t.Fatal(err)
			}
		}, normal},
		{"an acknowledgement", func() {
			if err := s.Ack(ctx, 1); err != nil {
				t.Fatal(err)
			}
		}, normal},
		{"another local write", func() { write(s, "mine2") }, full},
	}
	for _, st := range steps {
		levels = nil
		st.do()
		if len(levels) != 1 || levels[0] != st.want {
			t.Errorf("%s: synchronous in its transaction %v, want %d", st.name, levels, st.want)
		}
		if got := pool(); got != full {
			t.Errorf("after %s: the connection went back at synchronous %d, want %d", st.name, got, full)
		}
	}
}

// A native store opens with its log preallocated (package walfill), at
// every synchronous level.
func TestSQLite_PrefillsTheLog(t *testing.T) {
	for _, sync := range []string{"FULL", "EXTRA", "NORMAL"} {
		path := filepath.Join(t.TempDir(), "a.db")
		s, err := OpenSQLite(t.Context(), path, Options{Synchronous: sync})
		if err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(path + "-wal")
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() < WALPrefill {
			t.Errorf("synchronous=%s: log of %d bytes on open, want %d", sync, fi.Size(), WALPrefill)
		}
		s.Close()
	}
}
