package store

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/unosync/uno/crdt"
)

// Writes waiting together commit in one SQL transaction (one fsync), each
// with its own sequence number and outcome: a write whose function fails
// or panics is left out (the panic reaches its own caller), and each
// write sees the ones committed before it in the batch.
func TestSQLite_GroupCommit(t *testing.T) {
	ctx := t.Context()
	s, err := OpenSQLite(ctx, filepath.Join(t.TempDir(), "uno.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	errRefused := errors.New("refused")
	const n = 8
	type outcome struct {
		c     *Commit
		err   error
		panic any
	}
	out := make([]outcome, n)
	s.mu.Lock() // a write in progress: the others queue behind it
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			defer func() { out[i].panic = recover() }()
			out[i].c, out[i].err = s.Write(ctx, func(b *crdt.Builder) error {
				switch i {
				case 3:
					return errRefused
				case 5:
					panic("boom")
				}
				k := crdt.RowKey{Collection: "c", Row: fmt.Sprint("r", i)}
				return errors.Join(b.Set(k, "f", crdt.KindRegister, []byte(`1`)),
					b.Increment(crdt.RowKey{Collection: "c", Row: "shared"}, "n", 1))
			})
		})
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		s.queueMu.Lock()
		queued := len(s.queue)
		s.queueMu.Unlock()
		if queued == n {
			break
		}
		if time.Now().After(deadline) {
			s.mu.Unlock()
			t.Fatalf("%d of %d writes queued", queued, n)
		}
		time.Sleep(time.Millisecond)
	}
	before := s.commits.Load()
	s.mu.Unlock()
	wg.Wait()

	if got := s.commits.Load() - before; got != 1 {
		t.Errorf("%d commits for %d queued writes, want 1", got, n)
	}
	var seqs []uint64
	for i, o := range out {
		switch i {
		case 3:
			if !errors.Is(o.err, errRefused) {
				t.Errorf("write %d: %v, want its own error", i, o.err)
			}
		case 5:
			if o.panic != "boom" {
				t.Errorf("write %d: panic %v, want its own", i, o.panic)
			}
		default:
			if o.err != nil || o.c == nil || o.c.Tx == nil {
				t.Fatalf("write %d: %+v", i, o)
			}
			seqs = append(seqs, o.c.Tx.Seq)
		}
	}
	slices.Sort(seqs)
	if !slices.Equal(seqs, []uint64{1, 2, 3, 4, 5, 6}) {
		t.Errorf("sequence numbers %v, want 1 to 6", seqs)
	}
	if p, err := s.Pending(ctx); err != nil || p != 6 {
		t.Errorf("Pending = %d, %v; want 6", p, err)
	}
	txs, err := s.Outbox(ctx, 0, 0)
	if err != nil || len(txs) != 6 {
		t.Fatalf("Outbox = %d entries, %v", len(txs), err)
	}
	r, err := s.Row(ctx, "c", "shared")
	if err != nil {
		t.Fatal(err)
	}
	if f, ok := r.Field("n"); !ok || f.Counter.Value() != 6 {
		t.Errorf("the shared counter is %v, want 6: each write saw the batch's earlier ones", f)
	}
	// The next write still works alone.
	c, err := s.Write(ctx, func(b *crdt.Builder) error {
		return b.Set(crdt.RowKey{Collection: "c", Row: "after"}, "f", crdt.KindRegister, []byte(`2`))
	})
	if err != nil || c.Tx.Seq != 7 {
		t.Fatalf("a write after the batch: %+v, %v", c, err)
	}
}
