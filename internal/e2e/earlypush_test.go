package e2e

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/unosync/uno/client"
	"github.com/unosync/uno/store"
)

// gatedStore holds each group of local writes between their commit and
// their fsync until gate is closed.
type gatedStore struct {
	*store.SQLite
	gate chan struct{}
}

func (g *gatedStore) OnCommit(fn func()) {
	g.SQLite.OnCommit(func() {
		fn()
		<-g.gate
	})
}

// At full durability a local write reaches the server and the other
// replicas while its fsync is still to come: the sync loop pushes it as
// it commits, and Put returns only after the fsync.
func TestDurability_PushBeforeTheFsync(t *testing.T) {
	ctx := context.Background()
	e := startServer(t)
	st, err := store.OpenSQLite(ctx, filepath.Join(t.TempDir(), "a.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	g := &gatedStore{SQLite: st, gate: make(chan struct{})}
	a, err := client.Open(ctx, client.Config{Store: g, Server: e.url, Token: e.auth.Token, Durability: client.DurabilityFull})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b := e.client(t, "b", false)
	w, err := b.Collection("notes").Watch(ctx, client.Query{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	<-w.C // the empty result

	put := make(chan error, 1)
	go func() { put <- a.Collection("notes").Put(ctx, "n1", map[string]any{"text": "early"}) }()
	// Generous: one write crosses loopback in milliseconds.
	select {
	case docs := <-w.C:
		if len(docs) != 1 || string(docs[0].Fields["text"]) != `"early"` {
			t.Fatalf("b sees %v", docs)
		}
	case err := <-put:
		t.Fatalf("Put returned (%v) with its fsync held", err)
	case <-time.After(30 * time.Second):
		t.Fatal("b did not see the write while its fsync was held")
	}
	select {
	case err := <-put:
		t.Fatalf("Put returned (%v) with its fsync held", err)
	default:
	}
	close(g.gate)
	if err := <-put; err != nil {
		t.Fatal(err)
	}
}
