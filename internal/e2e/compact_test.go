//go:build cgo && (linux || darwin) && (amd64 || arm64)

package e2e

import (
	"context"
	"log/slog"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/unosync/uno/client"
	"github.com/unosync/uno/crdt"
	"github.com/unosync/uno/crdt/crdttest"
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
		if starts := find(logs.records(t), "session start", map[string]any{"site": c.Site().String()}); len(starts) != 1 {
			t.Fatalf("C's sessions: %v; want the one it kept throughout", starts)
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

// The background compaction (Config.CompactInterval) goes as far as the
// tenant's live sessions allow: a session connected at an old cursor
// keeps the entries after it; once it ends, the next pass compacts them.
func TestCompaction_BackgroundSparesLiveSessions(t *testing.T) {
	logKinds(t, server.Config{CompactInterval: 50 * time.Millisecond}, func(t *testing.T, e *env) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cp := e.log.(server.Compactor)
		floorIs := func(want uint64) {
			t.Helper()
			for {
				f, err := cp.CompactFloor(ctx, "dev")
				if err != nil {
					t.Fatal(err)
				}
				if f == want {
					return
				}
				if f > want || ctx.Err() != nil { // floors only rise
					t.Fatalf("compaction floor %d, want %d", f, want)
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
		site := crdt.SiteID{0xc0, 1}
		w, _ := openRaw(t, ctx, e.url, site, e.auth.Token, 16)
		ed := crdttest.NewEditor(t, site)
		push := func(seq uint64) {
			t.Helper()
			ch := ed.Change(func(d *crdt.Document) error { return d.Splice(crdt.Path{"text"}, 0, 0, "x") })
			var ops []crdt.Op
			if seq == 1 {
				ops = append(ops, reviveOp("notes", "n1"))
			}
			if rejected, _ := pushAll(t, ctx, w, pushTx(site, seq, append(ops, changeOp("notes", "n1", "body", ch))...)); len(rejected) > 0 {
				t.Fatalf("tx %d refused: %v", seq, rejected)
			}
		}
		// A reader connected at cursor 4, with no credit: it stays there.
		for seq := uint64(1); seq <= 4; seq++ {
			push(seq)
		}
		behind := dialRaw(t, ctx, e.url, e.auth.Token, 0, 4)
		for seq := uint64(5); seq <= 10; seq++ {
			push(seq)
		}
		// The writer's own session is at the head; the reader's at 4. A
		// pass now (besides the background ones) stops there.
		if err := e.server.ApplyCompaction(ctx); err != nil {
			t.Fatal(err)
		}
		floorIs(5)
		if got, err := e.log.Read(ctx, "dev", 4, 100, 0); err != nil || len(got) != 6 || got[0].Seq != 5 || len(got[0].Tx.Ops) != 1 {
			t.Fatalf("entries after the live cursor: %d, %v; want 5..10 with their changes", len(got), err)
		}
		behind.ws.Close(websocket.StatusNormalClosure, "")
		push(11) // the tenant is written to: the next pass visits it
		floorIs(12)
	})
}
