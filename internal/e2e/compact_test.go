package e2e

import (
	"context"
	"log/slog"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/unosync/uno/client"
	"github.com/unosync/uno/server"
)

// The server replaces a long run of a document's changes in its log
// (compaction) once every live client is past them: client A writes many
// doc changes, client B is offline with an old cursor and an edit of its
// own, client C stays connected; after the compaction C keeps syncing
// from the log, B comes back, bootstraps from a snapshot and pushes its
// edit, and A, B and C end with equal documents and equal state hashes,
// equal to the read model's.
func TestCompaction_OfflineClientBootstraps(t *testing.T) {
	run := func(t *testing.T, cfg server.Config) {
		ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
		defer cancel()
		logs := &logBuffer{}
		cfg.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
		cfg.CompactInterval = -1 // compacted by hand below
		e := startServerWith(t, cfg)
		a, b := e.client(t, "a", true), e.client(t, "b", true)
		c := e.client(t, "c", false) // connected throughout
		splice := func(cl *client.Client, pos int, s string) {
			t.Helper()
			if err := cl.Collection("notes").Splice(ctx, "n1", "body", client.Path{"text"}, pos, 0, s); err != nil {
				t.Fatal(err)
			}
		}
		text := func(cl *client.Client) string {
			t.Helper()
			s, err := cl.Collection("notes").Text(ctx, "n1", "body", client.Path{"text"})
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
		splice(a, 0, "start.")
		syncCtx(t, a)
		syncCtx(t, b)
		syncCtx(t, c)
		// B goes offline with its cursor here, and edits.
		splice(b, 0, "B:")

		const n = 300 // past crdt's own compaction of the read model's doc (256 chunks)
		for i := range n {
			splice(a, len("start.")+i, "x")
			if i%50 == 49 {
				syncCtx(t, a)
			}
		}
		syncCtx(t, a)
		syncCtx(t, c)
		head, _ := e.log.Head(ctx, "dev")
		res, err := e.server.Compact(ctx, "dev", math.MaxUint64)
		if err != nil {
			t.Fatal(err)
		}
		if res.Rewritten < n || res.Saved <= 0 || res.Floor < head-1 {
			t.Fatalf("Compact = %+v with head %d: want %d entries or more rewritten, bytes saved, the floor at the head", res, head, n)
		}
		if recs := find(logs.records(t), "compaction", map[string]any{"tenant": "dev", "rewritten": res.Rewritten, "bytes_saved": res.Saved}); len(recs) != 1 {
			t.Fatalf("compaction not logged with its counts: %s", logs.text())
		}
		// C keeps syncing from the log.
		splice(a, 0, "A:")
		syncCtx(t, a)
		syncCtx(t, c)
		if got := text(c); !strings.HasPrefix(got, "A:start.") || len(got) != len("A:start.")+n {
			t.Fatalf("C holds %q", got)
		}
		// B comes back below the floor: it bootstraps and pushes its edit.
		syncCtx(t, b)
		starts := find(logs.records(t), "session start", map[string]any{"site": b.Site().String()})
		if len(starts) < 2 || starts[len(starts)-1]["snapshot"] != true {
			t.Fatalf("B's sessions: %v; want its last to bootstrap from a snapshot", starts)
		}
		for _, cl := range []*client.Client{a, c, b, a, c} {
			syncCtx(t, cl)
		}
		want := text(a)
		if !strings.Contains(want, "B:") || !strings.Contains(want, "A:") || len(want) != len("A:B:start.")+n {
			t.Fatalf("A's text %q lacks an edit", want)
		}
		wantDoc, err := a.Collection("notes").ReadDoc(ctx, "n1", "body", nil)
		if err != nil {
			t.Fatal(err)
		}
		wantHash, _ := e.log.RowsHash(ctx, "dev")
		for name, cl := range map[string]*client.Client{"a": a, "b": b, "c": c} {
			doc, err := cl.Collection("notes").ReadDoc(ctx, "n1", "body", nil)
			if err != nil || string(doc) != string(wantDoc) {
				t.Fatalf("%s's document %s, %v; want %s", name, doc, err, wantDoc)
			}
			if h, _ := cl.Hash(ctx); h != wantHash {
				t.Fatalf("%s's state hash differs from the read model's", name)
			}
		}
		if docs := queryDocs(t, e, "notes"); docs["n1"]["body"].(map[string]any)["text"] != want {
			t.Fatalf("the query API serves %v, want the text %q", docs["n1"]["body"], want)
		}
	}
	t.Run("sqlite", func(t *testing.T) { run(t, server.Config{}) })
	t.Run("postgres", func(t *testing.T) { run(t, server.Config{Log: newPG(t).log}) })
}
