package store_test

import (
	"context"
	"testing"

	"github.com/unosync/uno/crdt"
	"github.com/unosync/uno/store"
)

func TestZZProbe(t *testing.T) {
	ctx := context.Background()
	sq, err := store.OpenSQLite(ctx, t.TempDir()+"/a.db", store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer sq.Close()
	other, _ := store.NewMemory(store.Options{})
	other.Write(ctx, func(b *crdt.Builder) error {
		return b.Set(crdt.RowKey{Collection: "c", Row: "x"}, `x"; DROP TABLE "_uno_outbox"; --`, crdt.KindRegister, []byte("1"))
	})
	txs, _ := other.Outbox(ctx, 0, 0)
	_, err = sq.Apply(ctx, txs)
	t.Logf("apply err %v", err)
	var n int
	err = sq.DB().QueryRow(`SELECT count(*) FROM sqlite_master WHERE name = '_uno_outbox'`).Scan(&n)
	t.Logf("outbox table count %d %v", n, err)
	_, err = sq.Pending(ctx)
	t.Logf("pending err %v", err)
}
