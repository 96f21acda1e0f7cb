//go:build !js

package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/unosync/uno/crdt"
)

// Every transaction commits with synchronous=NORMAL (no fsync in WAL
// mode), and the connection goes back to the pool at the store's level;
// a local write then syncs the log once, before Write returns, where
// remote changes and acknowledgements sync nothing. (Not in the browser:
// its journal is not a WAL, and every commit syncs.)
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

	syncs := 0
	s.wal.testSync = func() error {
		syncs++
		return nil
	}
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
	theirs := write(other, "theirs")
	steps := []struct {
		name  string
		do    func()
		syncs int
	}{
		{"a local write", func() { write(s, "mine") }, 1},
		{"remote changes", func() {
			if _, err := s.ApplyAt(ctx, []*crdt.Tx{theirs}, 1); err != nil {
				t.Fatal(err)
			}
		}, 0},
		{"an acknowledgement", func() {
			if err := s.Ack(ctx, 1); err != nil {
				t.Fatal(err)
			}
		}, 0},
		{"another local write", func() { write(s, "mine2") }, 1},
	}
	for _, st := range steps {
		levels, syncs = nil, 0
		st.do()
		if len(levels) != 1 || levels[0] != normal {
			t.Errorf("%s: synchronous in its transaction %v, want %d", st.name, levels, normal)
		}
		if syncs != st.syncs {
			t.Errorf("%s: %d syncs of the log, want %d", st.name, syncs, st.syncs)
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

// A durable store's local write is visible (OnCommit, the outbox) while
// its sync runs, and Write returns only after the sync: a push need not
// wait for the writer's fsync, and what Write promises stays.
func TestSQLite_SyncAfterCommit(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "a.db")
	s, err := OpenSQLite(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	committed := make(chan struct{}, 1)
	s.OnCommit(func() { committed <- struct{}{} })
	started, release := make(chan struct{}), make(chan struct{})
	var synced atomic.Bool
	var seen []uint64 // the outbox as the sync began
	s.wal.testSync = func() error {
		close(started)
		select {
		case <-committed:
		case <-time.After(time.Minute):
			t.Error("the sync began before OnCommit's function ran")
		}
		txs, err := s.Outbox(ctx, 0, 0)
		if err != nil {
			t.Error(err)
		}
		for _, tx := range txs {
			seen = append(seen, tx.Seq)
		}
		<-release
		synced.Store(true)
		return nil
	}
	done := make(chan error, 1)
	var early bool
	go func() {
		_, err := s.Write(ctx, func(b *crdt.Builder) error {
			return b.Set(crdt.RowKey{Collection: "c", Row: "r"}, "f", crdt.KindRegister, []byte(`1`))
		})
		early = !synced.Load()
		done <- err
	}()
	select {
	case <-started:
	case err := <-done:
		t.Fatalf("Write returned (%v) and no sync began", err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if early {
		t.Error("Write returned before its sync ended")
	}
	if !slices.Equal(seen, []uint64{1}) {
		t.Errorf("the outbox during the sync: %v, want [1]", seen)
	}

	// The log synced is the database's: the file at path-wal.
	fi, err := s.wal.f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if now, err := os.Stat(path + "-wal"); err != nil || !os.SameFile(fi, now) {
		t.Errorf("the syncer holds another file than %s-wal (%v)", path, err)
	}
	for _, level := range []string{"NORMAL"} {
		n, err := OpenSQLite(ctx, filepath.Join(t.TempDir(), "n.db"), Options{Synchronous: level})
		if err != nil {
			t.Fatal(err)
		}
		if n.wal != nil {
			t.Errorf("synchronous=%s: the store syncs its log", level)
		}
		n.Close()
	}
	e, err := OpenSQLite(ctx, filepath.Join(t.TempDir(), "e.db"), Options{Synchronous: "EXTRA"})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if e.wal == nil {
		t.Error("synchronous=EXTRA: the store does not sync its log")
	}
}

// The sync holds the write lock: writes that come while it runs queue,
// and commit together after it, with one sync of their own.
func TestSQLite_SyncsShared(t *testing.T) {
	ctx := t.Context()
	s, err := OpenSQLite(ctx, filepath.Join(t.TempDir(), "a.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var syncs atomic.Int32
	first := make(chan struct{})
	var release sync.Once // a test that fails before releasing the sync still closes the store
	defer release.Do(func() { close(first) })
	s.wal.testSync = func() error {
		if syncs.Add(1) == 1 {
			<-first
		}
		return nil
	}
	const n = 10
	var wg sync.WaitGroup
	for i := range n + 1 {
		wg.Go(func() {
			if _, err := s.Write(ctx, func(b *crdt.Builder) error {
				return b.Set(crdt.RowKey{Collection: "c", Row: fmt.Sprint("r", i)}, "f", crdt.KindRegister, []byte(`1`))
			}); err != nil {
				t.Error(err)
			}
		})
		if i == 0 { // the first sync runs before the others write
			waitFor(t, func() bool { return syncs.Load() == 1 })
		}
	}
	waitFor(t, func() bool {
		s.queueMu.Lock()
		defer s.queueMu.Unlock()
		return len(s.queue) == n
	})
	if got := s.pending.Load(); got != 1 {
		t.Errorf("%d writes committed during the first sync, want 1 (the synced one)", got)
	}
	commits := s.commits.Load()
	release.Do(func() { close(first) })
	wg.Wait()
	if got := syncs.Load(); got != 2 {
		t.Errorf("%d syncs for %d writes, %d of them queued during the first sync: want 2", got, n+1, n)
	}
	if got := s.commits.Load() - commits; got != 1 {
		t.Errorf("%d commits of the %d queued writes, want 1", got, n)
	}
}

// A failed sync fails its writes with ErrNotDurable, and every local write
// after it, which commits nothing; reads and what the server sends go on.
func TestSQLite_SyncFails(t *testing.T) {
	ctx := t.Context()
	s, err := OpenSQLite(ctx, filepath.Join(t.TempDir(), "a.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	write := func(id string) error {
		_, err := s.Write(ctx, func(b *crdt.Builder) error {
			return b.Set(crdt.RowKey{Collection: "c", Row: id}, "f", crdt.KindRegister, []byte(`1`))
		})
		return err
	}
	if err := write("a"); err != nil {
		t.Fatal(err)
	}
	errDisk := errors.New("input/output error")
	s.wal.testSync = func() error { return errDisk }
	if err := write("b"); !errors.Is(err, ErrNotDurable) || !errors.Is(err, errDisk) {
		t.Fatalf("write with a failing sync: %v, want ErrNotDurable and the disk's error", err)
	}
	s.wal.testSync = nil
	if err := write("c"); !errors.Is(err, ErrNotDurable) {
		t.Fatalf("write after a failed sync: %v, want ErrNotDurable", err)
	}
	txs, err := s.Outbox(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(txs) != 2 {
		t.Errorf("outbox of %d entries, want 2 (a, and b which committed before its sync failed)", len(txs))
	}
	if err := s.Ack(ctx, 2); err != nil {
		t.Errorf("ack after a failed sync: %v", err)
	}
}

// waitFor polls cond until it holds, failing the test after a minute.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within a minute")
		}
	}
}

// The log the store syncs stays the database's while the store is open,
// even when the pool closes every connection it holds (as it does with
// connections it finds broken): SQLite deletes the log as the last
// connection closes, and the syncer keeps one open.
func TestSQLite_SyncsTheLogItKeeps(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "a.db")
	s, err := OpenSQLite(ctx, path, Options{MaxConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	write := func(id string) {
		if _, err := s.Write(ctx, func(b *crdt.Builder) error {
			return b.Set(crdt.RowKey{Collection: "c", Row: id}, "f", crdt.KindRegister, []byte(`1`))
		}); err != nil {
			t.Fatal(err)
		}
	}
	write("a")
	s.db.SetMaxIdleConns(0) // the pool closes its idle connection
	s.db.SetMaxIdleConns(1)
	write("b")
	fi, err := s.wal.f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	now, err := os.Stat(path + "-wal")
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(fi, now) {
		t.Errorf("the store syncs a log SQLite replaced")
	}
}
