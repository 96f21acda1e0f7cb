package sync_test

import (
	"testing"

	"github.com/unosync/uno/crdt"
	usync "github.com/unosync/uno/sync"
)

// With CreditBatch, Applied grants credits a batch at a time, never more
// than the window, so the server is never left waiting for them.
func TestClientSession_CreditBatch(t *testing.T) {
	site := crdt.SiteID{1}
	c := usync.NewClientSession(usync.ClientConfig{Site: site, Window: 4, CreditBatch: 2}, 0)
	c.Start()
	if h := c.Ready().Send[0].(*usync.Hello); h.Credits != 4 {
		t.Fatalf("Hello grants %d credits, want the window of 4", h.Credits)
	}
	c.Advance(c.Ready())
	if err := c.Step(&usync.Welcome{Version: 1}); err != nil {
		t.Fatal(err)
	}
	c.Advance(c.Ready())
	var granted []uint32
	for i := range uint64(5) {
		if err := c.Step(&usync.Changes{From: i, To: i + 1}); err != nil {
			t.Fatal(err)
		}
		c.Applied()
		rd := c.Ready()
		for _, m := range rd.Send {
			if cr, ok := m.(*usync.Credit); ok {
				granted = append(granted, cr.N)
			}
		}
		c.Advance(rd)
	}
	if len(granted) != 2 || granted[0] != 2 || granted[1] != 2 {
		t.Fatalf("credits granted %v after 5 batches, want [2 2]", granted)
	}
	// A batch larger than the window is capped at it.
	c2 := usync.NewClientSession(usync.ClientConfig{Site: site, Window: 2, CreditBatch: 9}, 0)
	c2.Start()
	c2.Advance(c2.Ready())
	c2.Step(&usync.Welcome{Version: 1})
	c2.Advance(c2.Ready())
	for i := range uint64(2) {
		c2.Step(&usync.Changes{From: i, To: i + 1})
		c2.Applied()
	}
	if rd := c2.Ready(); len(rd.Send) != 1 || rd.Send[0].(*usync.Credit).N != 2 {
		t.Fatalf("with a batch over the window: %+v, want one Credit{2}", rd.Send)
	}
}
