//go:build !js

package store

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/unosync/uno/crdt"
)

// Commits go on while the log is checkpointed beside them, and the log
// starts over near its preallocated space: without the background
// checkpoints SQLite's automatic one (at walBackstopPages) lets it grow
// to four times that. A store at full durability commits remote changes
// on a connection of its own (relaxed), so its writes alternate between
// two connections.
func TestSQLite_CheckpointsInTheBackground(t *testing.T) {
	for _, tc := range []struct {
		name   string
		sync   string
		remote bool
	}{{"local writes", "NORMAL", false}, {"local writes and remote changes", "FULL", true}} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			path := filepath.Join(t.TempDir(), "a.db")
			s, err := OpenSQLite(ctx, path, Options{Synchronous: tc.sync})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			other, err := OpenSQLite(ctx, filepath.Join(t.TempDir(), "b.db"), Options{Synchronous: "NORMAL"})
			if err != nil {
				t.Fatal(err)
			}
			defer other.Close()
			set := func(st *SQLite, row string, v int) *crdt.Tx {
				c, err := st.Write(ctx, func(b *crdt.Builder) error {
					return b.Set(crdt.RowKey{Collection: "c", Row: row}, "f", crdt.KindRegister, []byte(fmt.Sprint(v)))
				})
				if err != nil {
					t.Fatal(err)
				}
				return c.Tx
			}
			const writes = 2000 // ~7,000 pages of log, 14,000 with the remote changes
			for i := range writes {
				set(s, fmt.Sprint("r", i%500), i)
				if tc.remote {
					if _, err := s.ApplyAt(ctx, []*crdt.Tx{set(other, fmt.Sprint("o", i%500), i)}, uint64(i+1)); err != nil {
						t.Fatal(err)
					}
				}
			}
			deadline := time.Now().Add(30 * time.Second)
			for s.ckpt.runs.Load() == 0 {
				if time.Now().After(deadline) {
					t.Fatal("no background checkpoint completed")
				}
				time.Sleep(10 * time.Millisecond)
			}
			fi, err := os.Stat(path + "-wal")
			if err != nil {
				t.Fatal(err)
			}
			// Writes at full speed can outrun a checkpoint for a while
			// (some runs go up to twice the preallocated size), but not
			// to the backstop, 4 times it.
			if fi.Size() > 3*WALPrefill {
				t.Errorf("log of %d bytes after %d writes, want at most 3 times its preallocated %d", fi.Size(), writes, WALPrefill)
			}
			t.Logf("%d background checkpoints, log of %d bytes", s.ckpt.runs.Load(), fi.Size())
		})
	}
}
