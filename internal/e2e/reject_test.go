package e2e

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/unosync/uno/client"
	"github.com/unosync/uno/crdt"
	"github.com/unosync/uno/server"
	usync "github.com/unosync/uno/sync"
)

// A write rule refuses some transactions: the refused ones reach no other
// replica, their client rolls them back (keeping its later writes), and
// they appear on its rejection feed with their code.
func TestSync_RejectedTransactionsRollBack(t *testing.T) {
	ctx := context.Background()
	noForbidden := func(_ context.Context, _ string, tx *crdt.Tx) error {
		for _, op := range tx.Ops {
			if bytes.Equal(op.Value, []byte(`"forbidden"`)) {
				return usync.Errorf(usync.CodeInvalidTx, "titles may not be %s", op.Value)
			}
		}
		return nil
	}
	e := startServerWith(t, server.Config{Validate: noForbidden})
	l := e.log

	a := e.client(t, "a", true)
	todos := a.Collection("todos")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(todos.Put(ctx, "t1", map[string]any{"title": "ok"}))        // 1
	must(todos.Put(ctx, "t1", map[string]any{"title": "forbidden"})) // 2: refused
	must(todos.Increment(ctx, "t1", "votes", 1))                     // 3: kept
	must(todos.Put(ctx, "t2", map[string]any{"title": "forbidden"})) // 4: refused, creates t2
	syncCtx(t, a)

	rej, err := a.Rejections(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(rej) != 2 || rej[0].Seq != 2 || rej[1].Seq != 4 || usync.Code(rej[0].Code) != usync.CodeInvalidTx || !strings.Contains(rej[0].Reason, "forbidden") {
		t.Fatalf("rejection feed %+v, want seqs 2 and 4 with CodeInvalidTx", rej)
	}
	d, err := todos.Get(ctx, "t1")
	if err != nil || string(d.Fields["title"]) != `"ok"` || string(d.Fields["votes"]) != "1" {
		t.Fatalf("t1 after rollback: %v, %v; want title ok, votes 1", d.Fields, err)
	}
	if _, err := todos.Get(ctx, "t2"); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("t2, created only by a refused transaction: %v, want ErrNotFound", err)
	}
	if n, _ := a.Pending(ctx); n != 0 {
		t.Fatalf("%d pending after the sync", n)
	}
	want, _ := l.RowsHash(ctx, "dev")
	if h, _ := a.Hash(ctx); h != want {
		t.Fatal("a differs from the server's read model after the rollback")
	}
	b := e.client(t, "b", true)
	syncCtx(t, b)
	if h, _ := b.Hash(ctx); h != want {
		t.Fatal("b differs from the server's read model")
	}
	if d, err := b.Collection("todos").Get(ctx, "t1"); err != nil || string(d.Fields["title"]) != `"ok"` {
		t.Fatalf("b sees t1 %v, %v; a refused write reached it", d.Fields, err)
	}
}
