//go:build !js

package store

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/unosync/uno/crdt"
)

// walRestarts reads how many times the log at path has started over (the
// checkpoint sequence number in its header).
func walRestarts(t *testing.T, path string) uint32 {
	t.Helper()
	f, err := os.Open(path + "-wal")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var hdr [16]byte
	if _, err := f.ReadAt(hdr[:], 0); err != nil {
		t.Fatal(err)
	}
	return binary.BigEndian.Uint32(hdr[12:])
}

// waitCheckpoints waits until s has no background checkpoint asked for
// or running.
func waitCheckpoints(t *testing.T, s *SQLite) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for s.ckpt.dones.Load() != s.ckpt.kicks.Load() || len(s.ckpt.kick) > 0 {
		if time.Now().After(deadline) {
			t.Fatal("a background checkpoint did not finish within 30s")
		}
		time.Sleep(time.Millisecond)
	}
}

// An app that writes now and then (here: one row per commit, each once
// the last background checkpoint is done) never has SQLite checkpoint
// inside a commit: every time the log started over came after a
// background checkpoint, before the log reached SQLite's automatic
// checkpoint (1,000 pages). Without the background ones, the log starts
// over after SQLite's own, every ~490 of these commits.
func TestSQLite_CheckpointsBetweenWrites(t *testing.T) {
	for _, sync := range []string{"NORMAL", "FULL"} {
		t.Run(sync, func(t *testing.T) {
			ctx := t.Context()
			path := filepath.Join(t.TempDir(), "a.db")
			s, err := OpenSQLite(ctx, path, Options{Synchronous: sync})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			const writes = 1500 // ~4,500 pages of log
			for i := range writes {
				if _, err := s.Write(ctx, func(b *crdt.Builder) error {
					return b.Set(crdt.RowKey{Collection: "c", Row: fmt.Sprint("r", i%100)}, "f", crdt.KindRegister, []byte(fmt.Sprint(i)))
				}); err != nil {
					t.Fatal(err)
				}
				waitCheckpoints(t, s)
			}
			restarts, runs, most := walRestarts(t, path), s.ckpt.runs.Load(), s.ckpt.most.Load()
			t.Logf("the log started over %d times; %d background checkpoints left it to; the most frames one found: %d", restarts, runs, most)
			if restarts < 2 {
				t.Errorf("the log started over %d times in %d writes, want at least 2", restarts, writes)
			}
			if int64(restarts) > runs {
				t.Errorf("the log started over %d times, after only %d background checkpoints: SQLite checkpointed inside a commit", restarts, runs)
			}
			if most >= 1000 {
				t.Errorf("a background checkpoint found %d frames, past SQLite's automatic checkpoint", most)
			}
		})
	}
}

// Under writes at full speed the log stays within its preallocated size,
// as it does with SQLite's automatic checkpoint alone: a write waits for a
// background checkpoint under way. (With checkpoints beside the writes,
// on a machine kept busy by two other processes, it grew to 7–8 MB.) A
// store at full durability commits remote changes on a connection of its
// own (relaxed), so its writes alternate between two connections.
func TestSQLite_LogBoundedUnderFullSpeed(t *testing.T) {
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
			const writes = 3000
			var biggest int64
			for i := range writes {
				set(s, fmt.Sprint("r", i%500), i)
				if tc.remote {
					if _, err := s.ApplyAt(ctx, []*crdt.Tx{set(other, fmt.Sprint("o", i%500), i)}, uint64(i+1)); err != nil {
						t.Fatal(err)
					}
				}
				if i%100 == 0 {
					fi, err := os.Stat(path + "-wal")
					if err != nil {
						t.Fatal(err)
					}
					biggest = max(biggest, fi.Size())
				}
			}
			t.Logf("%d background checkpoints; the log's biggest size: %d bytes", s.ckpt.runs.Load(), biggest)
			if biggest > WALPrefill {
				t.Errorf("log of %d bytes during %d writes, want at most its preallocated %d", biggest, writes, WALPrefill)
			}
		})
	}
}
