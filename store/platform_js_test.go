//go:build js

package store_test

import (
	"errors"
	"path/filepath"
	"syscall/js"
	"testing"

	"github.com/unosync/uno/internal/jspromise"
	"github.com/unosync/uno/store"
	"github.com/unosync/uno/store/sqlitejs"
)

// platform is how the browser driver sets SQLite up (see driver_js.go).
var platform = struct {
	conns                    int // with Options.MaxConns = 3
	journalMode, lockingMode string
}{1, "memory", "exclusive"}

// A commit IndexedDB refuses fails with sqlitejs.ErrNotSaved and uses
// nothing: the next write takes the same sequence number, the outbox has
// no gap, and the refused write's row is not there, also after reopening.
func TestSQLite_CommitNotSaved(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "uno.db")
	s, err := store.OpenSQLite(ctx, path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, s, setJSON("todos", "a", "title", `"a"`))
	v, err := jspromise.Await(js.Global().Call("__unoLoadSQLite"))
	if err != nil {
		t.Fatal(err)
	}
	abort := js.FuncOf(func(_ js.Value, a []js.Value) any {
		a[0].Call("abort")
		return nil
	})
	defer abort.Release()
	v.Set("beforeCommit", abort)
	_, err = s.Write(ctx, setJSON("todos", "b", "title", `"b"`))
	v.Set("beforeCommit", js.Null())
	if !errors.Is(err, sqlitejs.ErrNotSaved) {
		t.Fatalf("a write IndexedDB refused: %v, want ErrNotSaved", err)
	}
	c := mustWrite(t, s, setJSON("todos", "c", "title", `"c"`))
	if c.Tx.Seq != 2 {
		t.Fatalf("the next write's sequence number = %d, want 2", c.Tx.Seq)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = store.OpenSQLite(ctx, path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	txs, err := s.Outbox(ctx, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(txs) != 2 || txs[0].Seq != 1 || txs[1].Seq != 2 || txs[1].Ops[0].Row != "c" {
		t.Fatalf("outbox after reopening: %d transactions, want seqs 1 and 2 (a, c)", len(txs))
	}
	if r, err := s.Row(ctx, "todos", "b"); err != nil || r != nil {
		t.Fatalf("the refused write's row: %v, %v; want none", r, err)
	}
}
