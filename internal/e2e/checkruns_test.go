package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/unosync/uno/crdt"
	"github.com/unosync/uno/server"
	usync "github.com/unosync/uno/sync"
)

// A replica with more runs between its acknowledged writes and the
// server's high-water mark than one Runs answer carries (1,024) asks
// again from past the answer, until the runs reach the mark: the runs
// past the first answer are checked too. The server takes a further
// Check only from past the last answer and within what it holds.
func TestCheck_RunsInPages(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	e := startServer(t)
	site := crdt.SiteID{0xc4, 0xec, 0x4}
	const n = 1030 // one run per write: each push names another epoch
	p, _ := dialSite(t, ctx, e.url, e.auth.Token, site)
	for seq := uint64(1); seq <= n; seq++ {
		p.send(t, ctx, &usync.Push{Txs: []crdt.Tx{pushTx(site, seq, setOp("notes", "r", "n", []byte(`1`)))}, Epoch: 1000 + seq})
		if a, ok := p.recv(t, ctx).(*usync.Ack); !ok || a.HighWater != seq {
			t.Fatalf("push %d: got %#v, want its Ack", seq, a)
		}
	}
	p.ws.Close(websocket.StatusNormalClosure, "")

	p, w := dialSite(t, ctx, e.url, e.auth.Token, site)
	if w.HighWater != n {
		t.Fatalf("Welcome's high-water mark %d, want %d", w.HighWater, n)
	}
	ask := func(from uint64) *usync.Runs {
		t.Helper()
		p.send(t, ctx, &usync.Check{From: from})
		r, ok := p.recv(t, ctx).(*usync.Runs)
		if !ok {
			t.Fatalf("Check from %d: no Runs", from)
		}
		return r
	}
	first := ask(1)
	if len(first.Runs) != 1024 || first.Through != 1024 || first.Runs[1023].First != 1024 {
		t.Fatalf("first answer: %d runs through %d, want 1,024 through 1024", len(first.Runs), first.Through)
	}
	rest := ask(first.Through + 1)
	if rest.Through != n || len(rest.Runs) != n-1024 || rest.Runs[0].First != 1025 {
		t.Fatalf("second answer: %+v, want the runs from 1025 through %d", rest, n)
	}
	for i, r := range append(first.Runs, rest.Runs...) {
		if r.First != uint64(i)+1 || r.Epoch != 1001+uint64(i) {
			t.Fatalf("run %d: %+v, want from %d in epoch %d", i, r, i+1, 1001+i)
		}
	}
	// The client's side: its runs, the same but for another epoch in the
	// last, diverge there, which only the second answer shows.
	mine := append(append([]usync.Run(nil), first.Runs...), rest.Runs...)
	mine[n-1].Epoch = 7
	if got := usync.Diverged(mine, n, first.Runs, first.Through); got != 0 {
		t.Errorf("Diverged over the first answer = %d, want 0 (the last run is past it)", got)
	}
	if got := usync.Diverged(mine, n, rest.Runs, rest.Through); got != n {
		t.Errorf("Diverged over the second answer = %d, want %d", got, n)
	}

	// Asking again from within an answer ends the session.
	p.send(t, ctx, &usync.Check{From: n})
	if _, code := untilClosed(t, ctx, p); code != server.CloseCode(usync.CodeBadMessage) {
		t.Errorf("a Check from within the last answer: closed with %v, want %v", code, server.CloseCode(usync.CodeBadMessage))
	}
}
